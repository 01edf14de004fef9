"""An artifact's input contract: what a client sends, checked before it reaches the runtime.

A contract is plain data (recorded in the manifest's `interface`, passed to stages as params),
one entry per input:

    name, dtype, shape        the shape at its opt sizes, in the client's layout
    dynamic                   {axis: [min, max]} for each dimension that may vary
    layout, color             NHWC|NCHW and RGB|BGR|GRAY for pixel inputs, else null
    preprocess                what the artifact does inside (mean/std on 0..1 pixels, resize),
                              null when it takes the model's own input as it is

`to_pixels` and `normalize` are the two directions between the model's float input and the
client's pixels; `normalize` is also the hand-written flow a client would otherwise run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from optbuild.config.model import MAX_DIM
from optbuild.errors import OptbuildError

Feeds = dict[str, np.ndarray]
PIXEL_SCALE = 255.0


def pixel_order(layout: str) -> tuple[int, ...]:
    """The model's NCHW axes in the order the client's `layout` lays them out."""
    return (0, 2, 3, 1) if layout == "NHWC" else (0, 1, 2, 3)


def image_size(spec: Mapping[str, Any]) -> tuple[int, int, int]:
    """(height, width, channels) of a pixel input."""
    shape = spec["shape"]
    return (shape[1], shape[2], shape[3]) if spec["layout"] == "NHWC" else (shape[2], shape[3], shape[1])


def pixel_inputs(contract: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [spec for spec in contract if spec.get("preprocess")]


def _channel_axis(spec: dict[str, Any]) -> int:
    return 3 if spec["layout"] == "NHWC" else 1


def _column(values: list[float], channels: int) -> np.ndarray:
    return np.asarray(values[:channels], dtype=np.float64).reshape(1, channels, 1, 1)


def to_pixels(samples: Mapping[str, np.ndarray], contract: list[dict[str, Any]]) -> Feeds:
    """Model-form float images (NCHW, RGB, normalised) back to what a client sends: 8-bit
    pixels in the contract's layout and colour order. Exact for images that were 8-bit before
    normalisation (every image dataset); other floats are clipped to the pixel range."""
    out = dict(samples)
    for spec in pixel_inputs(contract):
        x = np.asarray(samples[spec["name"]], dtype=np.float64)
        pre, channels = spec["preprocess"], x.shape[1]
        pixels = (x * _column(pre["std"], channels) + _column(pre["mean"], channels)) * PIXEL_SCALE
        pixels = np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
        if spec["color"] == "BGR":
            pixels = pixels[:, ::-1]
        if spec["layout"] == "NHWC":
            pixels = pixels.transpose(0, 2, 3, 1)
        out[spec["name"]] = np.ascontiguousarray(pixels)
    return out


def normalize(feeds: Mapping[str, np.ndarray], contract: list[dict[str, Any]]) -> Feeds:
    """Client pixels to the model's own input (what the artifact does inside, in numpy):
    NCHW, RGB, (pixel / 255 - mean) / std."""
    out = dict(feeds)
    for spec in pixel_inputs(contract):
        x = np.asarray(feeds[spec["name"]])
        if spec["layout"] == "NHWC":
            x = x.transpose(0, 3, 1, 2)
        if spec["color"] == "BGR":
            x = x[:, ::-1]
        pre, channels = spec["preprocess"], x.shape[1]
        # float32 arithmetic in the same order as the image datasets (data/images.py), so that
        # normalize(to_pixels(samples)) gives the samples back bit for bit
        mean = _column(pre["mean"], channels).astype(np.float32)
        std = _column(pre["std"], channels).astype(np.float32)
        x = (x.astype(np.float32) / np.float32(PIXEL_SCALE) - mean) / std
        out[spec["name"]] = np.ascontiguousarray(x, dtype=pre["model_dtype"])
    return out


def describe(spec: dict[str, Any]) -> str:
    """One input's contract in words: `input: uint8 [1, 224, 224, 3] NHWC RGB`."""
    shape = list(spec["shape"])
    for axis, (low, high) in spec.get("dynamic", {}).items():
        shape[int(axis)] = "any" if low <= 1 and high >= MAX_DIM else f"{low}..{high}" if low != high else low
    words = [f"{spec['name']}: {spec['dtype']} [{', '.join(str(d) for d in shape)}]"]
    words += [w for w in (spec.get("layout"), spec.get("color")) if w]
    return " ".join(words)


def check_feeds(feeds: Mapping[str, Any], contract: list[dict[str, Any]]) -> Feeds:
    """The client's arrays, checked against the contract: every input present, nothing else,
    the exact dtype (no silent casts: a float image sent to a pixel input would be garbage), the
    rank and every dimension within its range. One line names what is wrong and what is expected."""
    names = [spec["name"] for spec in contract]
    unknown = sorted(set(feeds) - set(names))
    missing = [name for name in names if name not in feeds]
    if unknown or missing:
        raise OptbuildError(f"inputs {sorted(feeds)} do not match the artifact's: expected "
                            f"{'; '.join(describe(spec) for spec in contract)}")
    checked = {}
    for spec in contract:
        value = feeds[spec["name"]]
        if not isinstance(value, np.ndarray):
            raise OptbuildError(f"input '{spec['name']}' is a {type(value).__name__}: give a numpy array "
                                f"({describe(spec)})")
        if value.dtype != np.dtype(spec["dtype"]):
            hint = " (8-bit pixels: np.asarray(image) of a decoded image)" if spec.get("preprocess") else ""
            raise OptbuildError(f"input '{spec['name']}' is {value.dtype}, the artifact takes {spec['dtype']}"
                                f"{hint}: expected {describe(spec)}")
        _check_shape(spec, value.shape)
        checked[spec["name"]] = value
    return checked


def _check_shape(spec: dict[str, Any], shape: tuple[int, ...]) -> None:
    expected, dynamic = spec["shape"], {int(axis): bounds for axis, bounds in spec.get("dynamic", {}).items()}
    fits = len(shape) == len(expected) and all(
        (dynamic[axis][0] <= size <= dynamic[axis][1]) if axis in dynamic else size == expected[axis]
        for axis, size in enumerate(shape))
    if not fits:
        raise OptbuildError(f"input '{spec['name']}' has shape {list(shape)}: expected {describe(spec)}")
