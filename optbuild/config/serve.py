"""The `serve` section: what the artifact takes from a client.

With `embed_preprocess`, an image model's artifact takes 8-bit pixels as a client has them
(decoded, in `layout` and `color` order) and does the recipe's own `model.preprocess`
conversion inside: to float, mean/std, to the model's NCHW/RGB (intel: OpenVINO's
PrePostProcessor, which the CPU plugin fuses into the first layers; nvidia: the same steps as
ONNX ops at the graph input). `resize` (intel) also takes any H×W and resizes inside.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from pydantic import ConfigDict

from optbuild.config.choices import ColorOrder, Layout


@dataclass
class ServeConfig:
    __pydantic_config__ = ConfigDict(extra="forbid")
    # null: on for image recipes (one [N, 1|3, H, W] float input, validated on image or
    # synthetic data); false: the artifact takes the model's own float input.
    embed_preprocess: Optional[bool] = None
    layout: Layout = Layout.NHWC
    color: ColorOrder = ColorOrder.RGB
    # intel: any H×W in, resized inside (antialiased bilinear, as PIL) to the model's input size;
    # optbuild.load first cuts the centre the recipe's crop keeps (a free numpy view). For clients
    # that cannot resize: slower than resizing in PIL on CPU (BENCHMARKS.md).
    resize: bool = False
