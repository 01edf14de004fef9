"""A decoded image (PIL, or an 8-bit H×W×C array of any size) as a pixel input's client form."""

from __future__ import annotations

from typing import Any

import numpy as np

from optbuild.data.images import fit_to_input
from optbuild.errors import OptbuildError
from optbuild.serving.contract import image_size


def _as_pil(image: Any, channels: int) -> Any:
    from PIL import Image

    if isinstance(image, Image.Image):
        return image.convert("L" if channels == 1 else "RGB")
    array = np.asarray(image)
    if array.dtype != np.uint8 or array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
        raise OptbuildError(f"an image is a PIL image or an 8-bit H×W, H×W×1, H×W×3 or H×W×4 array; got "
                            f"{array.dtype} {list(array.shape)}")
    if array.ndim == 3 and array.shape[2] == 1:  # gray with its channel axis: PIL takes it without
        array = array[..., 0]
    return Image.fromarray(array).convert("L" if channels == 1 else "RGB")


def centre_cut(pixels: np.ndarray, geometry: dict[str, Any], height: int, width: int) -> np.ndarray:
    """The part of an H×W×C image the recipe's resize/crop would keep (a view, no copy): for a
    square input the centre square of crop/resize of the short side; for another `crop` fit, the
    largest centre box of the input's aspect ratio; `stretch` and `pad` keep the whole image."""
    h, w = pixels.shape[:2]
    if geometry["fit"] != "crop":
        return pixels
    if height == width:
        side = max(1, round(min(h, w) * geometry["crop"] / geometry["resize"]))
        cut_h = cut_w = side
    else:
        scale = min(h / height, w / width)
        cut_h, cut_w = max(1, round(height * scale)), max(1, round(width * scale))
    top, left = (h - cut_h) // 2, (w - cut_w) // 2
    return pixels[top:top + cut_h, left:left + cut_w]


def recipe_fit(picture: Any, pre: dict[str, Any], width: int, height: int) -> Any:
    """The recipe's resize + crop (data/images.py), computed as one resize of the source region
    the crop keeps (PIL's `box`): the same filter taps at the same positions, so the same pixels
    (a few differ by one level from float rounding), in about 60% of the time, since the parts
    the crop throws away are never resized."""
    from PIL import Image

    geometry, (w, h) = pre["geometry"], picture.size
    if geometry["fit"] == "crop" and height == width == geometry["crop"]:
        resize, crop = geometry["resize"], geometry["crop"]
        size = (resize, int(resize * h / w)) if w <= h else (int(resize * w / h), resize)
        left, top = int(round((size[0] - crop) / 2.0)), int(round((size[1] - crop) / 2.0))
    elif geometry["fit"] == "crop" and height != width:
        scale = max(width / w, height / h)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        left, top = (size[0] - width) // 2, (size[1] - height) // 2
    else:  # stretch, pad, or a crop resized again to the input: the recipe's own steps
        return fit_to_input(picture, {**geometry, "mean": pre["mean"]}, width, height)
    sx, sy = w / size[0], h / size[1]
    box = (left * sx, top * sy, (left + width) * sx, (top + height) * sy)
    return picture.resize((width, height), Image.Resampling.BILINEAR, box=box)


def image_pixels(image: Any, spec: dict[str, Any]) -> np.ndarray:
    """One decoded image as the input's client form, batch of one: the recipe's resize + crop
    (`recipe_fit`), or when the artifact resizes inside, only the centre the crop keeps."""
    pre, (height, width, channels) = spec["preprocess"], image_size(spec)
    picture = _as_pil(image, channels)
    if pre["resize_inside"]:
        pixels = centre_cut(np.asarray(picture).reshape(picture.height, picture.width, channels),
                            pre["geometry"], height, width)
    else:
        pixels = np.asarray(recipe_fit(picture, pre, width, height)).reshape(height, width, channels)
    if spec["color"] == "BGR":
        pixels = pixels[..., ::-1]
    pixels = pixels[None] if spec["layout"] == "NHWC" else pixels.transpose(2, 0, 1)[None]
    return np.ascontiguousarray(pixels)
