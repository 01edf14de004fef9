"""Kind `sample_photos`: real photos shipped inside scikit-image, scikit-learn and matplotlib, so
a build can calibrate and validate offline with no data of its own.

Eight photos are too few samples, so each sample is a seeded random-resized crop with a random
flip (torchvision's RandomResizedCrop recipe), cycling through the photos so all are used. No
labels. Its fingerprint names the photos and the versions of the packages that ship them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from optbuild.data.files import versions
from optbuild.data.images import samples_and_decoded
from optbuild.data.request import DatasetRequest, LabeledSamples
from optbuild.errors import OptbuildError

if TYPE_CHECKING:
    from PIL import Image

SAMPLE_PHOTOS: tuple[str, ...] = (
    "skimage:astronaut",
    "skimage:chelsea",
    "skimage:coffee",
    "skimage:rocket",
    "skimage:hubble_deep_field",
    "sklearn:china.jpg",
    "sklearn:flower.jpg",
    "matplotlib:grace_hopper.jpg",
)
PHOTO_PACKAGES = ("scikit-image", "scikit-learn", "matplotlib")
CROP_SCALE = (0.3, 1.0)  # fraction of the photo's area
CROP_RATIO = (3 / 4, 4 / 3)  # aspect ratio


def fingerprint(request: DatasetRequest) -> dict[str, Any]:
    """The photos are inside the packages: their versions stand for the content."""
    return {"versions": versions(PHOTO_PACKAGES), "photos": list(SAMPLE_PHOTOS)}


def load(request: DatasetRequest, labeled: bool) -> LabeledSamples:
    crops = sample_crops(request.num_samples, np.random.default_rng(request.seed))
    feeds, decoded = samples_and_decoded(crops, request)
    return LabeledSamples(feeds, None, None, decoded)


@lru_cache(maxsize=1)
def photos() -> tuple[Image.Image, ...]:
    """The SAMPLE_PHOTOS as RGB images, in that order (imports are slow, so only done here)."""
    from PIL import Image

    try:
        import matplotlib.cbook
        import skimage.data
        from sklearn.datasets import load_sample_images
    except ImportError as exc:
        raise OptbuildError(
            f"dataset 'sample_photos' needs '{exc.name}': pip install 'optbuild[data]'"
        ) from None
    bunch = load_sample_images()
    sklearn_by_name = {Path(f).name: array for f, array in zip(bunch.filenames, bunch.images)}
    loaded = []
    for entry in SAMPLE_PHOTOS:
        source, name = entry.split(":")
        if source == "skimage":
            loaded.append(Image.fromarray(getattr(skimage.data, name)()))
        elif source == "sklearn":
            loaded.append(Image.fromarray(sklearn_by_name[name]))
        else:
            with Image.open(matplotlib.cbook.get_sample_data(name, asfileobj=False)) as image:
                loaded.append(image.convert("RGB"))
    return tuple(photo.convert("RGB") for photo in loaded)


def sample_crops(num_samples: int, rng: np.random.Generator) -> Iterator[Image.Image]:
    """Seeded random-resized crops with random flips, cycling through the photos so all are used."""
    from PIL import Image

    all_photos = photos()
    order = rng.permutation(len(all_photos))
    for i in range(num_samples):
        photo = all_photos[order[i % len(all_photos)]]
        crop = photo.crop(random_box(photo.width, photo.height, rng))
        if rng.random() < 0.5:
            crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        yield crop


def random_box(width: int, height: int, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """torchvision's RandomResizedCrop box: a random area fraction and aspect ratio."""
    area = width * height
    log_ratio = (math.log(CROP_RATIO[0]), math.log(CROP_RATIO[1]))
    for _ in range(10):
        target = area * rng.uniform(*CROP_SCALE)
        aspect = math.exp(rng.uniform(*log_ratio))
        w = round(math.sqrt(target * aspect))
        h = round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            left = int(rng.integers(0, width - w + 1))
            top = int(rng.integers(0, height - h + 1))
            return left, top, left + w, top + h
    side = min(width, height)  # fallback: the central square
    left, top = (width - side) // 2, (height - side) // 2
    return left, top, left + side, top + side
