"""Image decoding and the ImageNet eval preprocessing every image kind shares.

The preprocessing matches torchvision's Resize + CenterCrop + Normalize on PIL images, so a model
trained with torchvision sees the same pixels here. PIL is imported only when images are decoded:
fingerprints (build-cache keys) must not pay for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from optbuild.data.files import oneline
from optbuild.data.request import DatasetRequest
from optbuild.errors import OptbuildError

if TYPE_CHECKING:
    from PIL import Image


def plain_preprocess(preprocess: Mapping[str, Any]) -> dict[str, Any]:
    """resize/crop as ints and mean/std as float lists: equal settings give equal fingerprints
    however they were written (256 or 256.0, 1 or 1.0)."""
    return {
        "resize": int(preprocess["resize"]),
        "crop": int(preprocess["crop"]),
        "mean": [float(v) for v in preprocess["mean"]],
        "std": [float(v) for v in preprocess["std"]],
    }


def open_image(file: Path) -> Image.Image:
    """The decoded image; a file that is not one is named, so the user can replace it."""
    from PIL import Image

    try:
        with Image.open(file) as image:
            image.load()
            return image
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise OptbuildError(
            f"cannot decode image '{file}' ({oneline(exc)}): replace or remove the file"
        ) from None


def preprocess_image(image: Image.Image, preprocess: Mapping[str, Any],
                     input_shape: list[int]) -> np.ndarray:
    """ImageNet eval preprocessing, matching torchvision's Resize + CenterCrop on PIL images."""
    from PIL import Image

    _, channels, height, width = input_shape
    # Convert first: Pillow resizes palette images with nearest-neighbour regardless of filter.
    image = image.convert("L" if channels == 1 else "RGB")
    resize, crop = preprocess["resize"], preprocess["crop"]
    w, h = image.size
    size = (resize, int(resize * h / w)) if w <= h else (int(resize * w / h), resize)
    image = image.resize(size, Image.Resampling.BILINEAR)
    left = int(round((image.width - crop) / 2.0))
    top = int(round((image.height - crop) / 2.0))
    image = image.crop((left, top, left + crop, top + crop))
    if image.size != (width, height):
        image = image.resize((width, height), Image.Resampling.BILINEAR)
    pixels = np.asarray(image, dtype=np.float32).reshape(height, width, channels) / 255.0
    mean = np.asarray(preprocess["mean"][:channels], dtype=np.float32)
    std = np.asarray(preprocess["std"][:channels], dtype=np.float32)
    return ((pixels - mean) / std).transpose(2, 0, 1)


def to_samples(images: Iterable[Image.Image], request: DatasetRequest) -> np.ndarray:
    """The images preprocessed for the request's input, as one contiguous float32 array."""
    preprocess = plain_preprocess(request.preprocess)
    batch = [preprocess_image(image, preprocess, request.input_shape) for image in images]
    return np.ascontiguousarray(np.stack(batch), dtype=np.float32)
