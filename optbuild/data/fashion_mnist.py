"""Kind `fashion_mnist`: the real Fashion-MNIST idx files of the Debian package
dataset-fashion-mnist (or a folder holding the same files), labeled with its ten classes.

The 28x28 gray images go through the same preprocessing as any image, so they fit a model's own
input size. The seeded subset is drawn from the split's images of the classes the label_map keeps;
choosing it reads only the small labels file. The fingerprint hashes both files of the split,
never the folder's path. Damaged files are named, with how to repair them.
"""

from __future__ import annotations

import gzip
import math
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from optbuild.data import labels as labels_
from optbuild.data.files import cached_sha256, oneline, stat_key
from optbuild.data.images import samples_and_decoded
from optbuild.data.request import DatasetRequest, LabeledSamples
from optbuild.errors import OptbuildError

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
FASHION_MNIST_SPLITS = {
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
}
REINSTALL = "reinstall dataset-fashion-mnist"


@dataclass(frozen=True)
class Selection:
    split: str
    files: tuple[Path, Path]  # images, labels
    indices: np.ndarray  # the seeded subset, in order
    labels: np.ndarray
    classes: list[str]
    label_map: dict[str, list[int]]


def fingerprint(request: DatasetRequest) -> dict[str, Any]:
    chosen = select(request)
    return {
        "split": chosen.split,
        "label_map": chosen.label_map,
        "content_sha256": [cached_sha256(file) for file in chosen.files],
        **({"targets": "masks", "silhouette": SILHOUETTE} if request.targets == "masks" else {}),
    }


SILHOUETTE = 25  # a garment pixel: brighter than this (of 255) on the black background


def load(request: DatasetRequest, labeled: bool) -> LabeledSamples:
    """Labeled even for calibration: the labels cost nothing once the subset is chosen."""
    from PIL import Image

    chosen = select(request)
    pixels, _ = fashion_mnist_arrays(chosen.split, request.path)
    images = (Image.fromarray(pixels[i]) for i in chosen.indices)  # uint8 2-D: mode "L"
    feeds, decoded = samples_and_decoded(images, request)
    if request.targets == "masks":
        return LabeledSamples(feeds, silhouettes(pixels[chosen.indices], request), ["garment"], decoded)
    return LabeledSamples(feeds, chosen.labels, chosen.classes, decoded)


def silhouettes(pixels: np.ndarray, request: DatasetRequest) -> np.ndarray:
    """Each image's garment pixels (above SILHOUETTE of 255) as an int64 [N, H, W] mask of 0/1,
    at the image input's H×W (nearest-neighbour when it differs from 28×28)."""
    from PIL import Image

    _, _, height, width = request.input_shape
    masks = pixels > SILHOUETTE
    if masks.shape[1:] != (height, width):
        masks = np.stack([np.asarray(Image.fromarray(m).resize((width, height), Image.Resampling.NEAREST))
                          for m in masks.astype(np.uint8)]) > 0
    return masks.astype(np.int64)


def fashion_mnist_arrays(split: str = "test",
                         path: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The raw Fashion-MNIST split: uint8 images [N, 28, 28] and uint8 class ids [N]."""
    images_file, labels_file = split_files(path, split)
    images, ids = read_idx(images_file, 3), read_idx(labels_file, 1)
    if images.shape[1:] != (28, 28) or len(images) != len(ids) or ids.max() >= 10:
        raise OptbuildError(
            f"Fashion-MNIST files at '{images_file.parent}' do not match (images "
            f"{list(images.shape)}, {len(ids)} labels): {REINSTALL}"
        )
    return images, ids


def select(request: DatasetRequest) -> Selection:
    """The seeded subset of the split; reads only the (small) labels file."""
    split = request.split or "test"
    files = split_files(request.path, split)
    ids = read_idx(files[1], 1)
    if len(ids) and ids.max() >= len(FASHION_MNIST_CLASSES):
        raise OptbuildError(f"Fashion-MNIST file '{files[1]}' has class ids above 9: {REINSTALL}")
    mapping = labels_.resolve(request.label_map, FASHION_MNIST_CLASSES, "fashion_mnist")
    wanted = [FASHION_MNIST_CLASSES.index(name) for name in mapping]
    kept = np.flatnonzero(np.isin(ids, wanted))
    num_samples = request.num_samples
    if len(kept) < num_samples:
        raise labels_.too_few(f"fashion_mnist split '{split}'", "images", len(kept), num_samples,
                              len(kept) < len(ids))
    indices = kept[np.random.default_rng(request.seed).permutation(len(kept))[:num_samples]]
    labels = labels_.label_array(mapping, [FASHION_MNIST_CLASSES[i] for i in ids[indices]])
    return Selection(split, files, indices, labels, list(mapping), mapping)


def split_files(path: str | None, split: str) -> tuple[Path, Path]:
    """The split's images and labels files, in `path` or the Debian package's folder."""
    if split not in FASHION_MNIST_SPLITS:  # only direct callers of fashion_mnist_arrays get here
        raise OptbuildError(
            f"fashion_mnist split '{split}' does not exist: use {' or '.join(FASHION_MNIST_SPLITS)}"
        )
    folder = Path(path or FASHION_MNIST_DIR).expanduser()
    names = FASHION_MNIST_SPLITS[split]
    missing = [name for name in names if not (folder / name).is_file()]
    if missing:
        raise OptbuildError(
            f"Fashion-MNIST {split} files {missing} are not in '{folder}': "
            "apt-get install dataset-fashion-mnist, or point 'path' at a folder with them"
        )
    return folder / names[0], folder / names[1]


def read_idx(file: Path, dims: int) -> np.ndarray:
    """The file's array, read once per process while it stays unchanged (read-only: shared)."""
    return _read_idx_by_stat(stat_key(file), dims)


@lru_cache(maxsize=4)
def _read_idx_by_stat(key: tuple[str, int, int], dims: int) -> np.ndarray:
    """A gzipped idx file of unsigned bytes (LeCun's MNIST format)."""
    file = key[0]
    try:
        with gzip.open(file, "rb") as f:
            data = f.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise OptbuildError(
            f"cannot read Fashion-MNIST file '{file}' ({oneline(exc)}): it is damaged; {REINSTALL}"
        ) from None
    header = 4 + 4 * dims
    # Magic: two zero bytes, the element type (0x08: unsigned byte), the number of dimensions.
    magic = bytes([0, 0, 8, dims])
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    if data[:4] != magic or len(data) != header + math.prod(shape):
        raise OptbuildError(
            f"Fashion-MNIST file '{file}' is not a valid {dims}-d idx file of bytes: it is "
            f"damaged; {REINSTALL}"
        )
    array = np.frombuffer(data, np.uint8, offset=header).reshape(shape)
    array.flags.writeable = False  # shared through the cache
    return array
