"""Image decoding and the eval preprocessing every image kind shares.

For a square input the preprocessing matches torchvision's Resize + CenterCrop + Normalize on
PIL images, so a model trained with torchvision sees the same pixels here. A non-square input
(an OCR line, a detector) takes the image by `fit`: cover and center-crop, stretch, or fit inside
and pad with the mean colour (which normalises to zero). PIL is imported only when images are
decoded: fingerprints (build-cache keys) must not pay for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from optbuild.data.files import oneline
from optbuild.data.request import DatasetRequest, Feeds
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
        "fit": str(getattr(fit := preprocess.get("fit", "crop"), "value", fit)),
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


def preprocess_image(image: Image.Image, preprocess: Mapping[str, Any], input_shape: list[int]) -> np.ndarray:
    """One image as the input's [C, H, W] floats, normalised by mean/std."""
    _, channels, height, width = input_shape
    # Convert first: Pillow resizes palette images with nearest-neighbour regardless of filter.
    image = fit_to_input(image.convert("L" if channels == 1 else "RGB"), preprocess, width, height)
    pixels = np.asarray(image, dtype=np.float32).reshape(height, width, channels) / 255.0
    mean = np.asarray(preprocess["mean"][:channels], dtype=np.float32)
    std = np.asarray(preprocess["std"][:channels], dtype=np.float32)
    return ((pixels - mean) / std).transpose(2, 0, 1)


def fit_to_input(image: Image.Image, preprocess: Mapping[str, Any], width: int, height: int) -> Image.Image:
    """The recipe's resize/crop (or fit) of an image to the input's W×H, in 8-bit pixels."""
    if height == width:
        return _resize_and_crop(image, preprocess, width, height)
    return _fit(image, preprocess, width, height)


def _resize_and_crop(image: Image.Image, preprocess: Mapping[str, Any], width: int, height: int) -> Image.Image:
    """torchvision's Resize(resize) + CenterCrop(crop), then to the input's size if it differs."""
    from PIL import Image

    resize, crop = preprocess["resize"], preprocess["crop"]
    w, h = image.size
    size = (resize, int(resize * h / w)) if w <= h else (int(resize * w / h), resize)
    image = image.resize(size, Image.Resampling.BILINEAR)
    left = int(round((image.width - crop) / 2.0))
    top = int(round((image.height - crop) / 2.0))
    image = image.crop((left, top, left + crop, top + crop))
    if image.size != (width, height):
        image = image.resize((width, height), Image.Resampling.BILINEAR)
    return image


def _fit(image: Image.Image, preprocess: Mapping[str, Any], width: int, height: int) -> Image.Image:
    """A non-square input: `crop` covers W×H and cuts the centre, `stretch` resizes to W×H, `pad`
    fits inside keeping the ratio and fills the rest with the mean colour."""
    from PIL import Image

    fit, (w, h) = preprocess.get("fit", "crop"), image.size
    if fit == "stretch":
        return image.resize((width, height), Image.Resampling.BILINEAR)
    scale = max(width / w, height / h) if fit == "crop" else min(width / w, height / h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    image = image.resize(size, Image.Resampling.BILINEAR)
    if fit == "crop":
        left, top = (size[0] - width) // 2, (size[1] - height) // 2
        return image.crop((left, top, left + width, top + height))
    fill = tuple(round(m * 255) for m in preprocess["mean"][: len(image.getbands())])
    canvas = Image.new(image.mode, (width, height), fill if len(fill) > 1 else fill[0])
    canvas.paste(image, ((width - size[0]) // 2, (height - size[1]) // 2))
    return canvas


def to_samples(images: Iterable[Image.Image], request: DatasetRequest) -> Feeds:
    """The images preprocessed for the request's image input, as one contiguous array of its type."""
    preprocess, image_input = plain_preprocess(request.preprocess), request.image
    batch = [preprocess_image(image, preprocess, image_input["shape"]) for image in images]
    return {image_input["name"]: np.ascontiguousarray(np.stack(batch), dtype=image_input["dtype"])}


DECODED_LIMIT = 4  # a kept decoded image's long side is at most this many times the input's


def samples_and_decoded(images: Iterable[Image.Image], request: DatasetRequest) -> tuple[Feeds, list[np.ndarray] | None]:
    """`to_samples`, and with request.decoded each image as a client would have it: 8-bit
    H×W×C at its own size (a very large one shrunk to DECODED_LIMIT × the input's size, so a
    folder of camera photos does not fill the memory)."""
    if not request.decoded:
        return to_samples(images, request), None
    _, channels, height, width = request.image["shape"]
    limit = DECODED_LIMIT * max(height, width)
    kept: list[np.ndarray] = []

    def keep(stream: Iterable[Image.Image]) -> Iterable[Image.Image]:
        for image in stream:
            copy = image.convert("L" if channels == 1 else "RGB")
            copy.thumbnail((limit, limit))
            kept.append(np.asarray(copy).reshape(copy.height, copy.width, channels))
            yield image

    return to_samples(keep(images), request), kept

