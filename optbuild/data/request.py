"""What a dataset is asked for, and what loading it gives back.

A `DatasetRequest` comes from a validated config (`optbuild.config.schema.DatasetConfig` plus the
model's inputs and preprocessing), so the data layer trusts its fields and checks only the data
itself. It travels between processes as plain data (`as_data` / `from_data`). A sample is a
mapping input name -> array: `LabeledSamples.samples` holds one array per model input, the
samples along the first axis.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Protocol

from optbuild.config.model import IMAGENET_MEAN, IMAGENET_STD
from optbuild.config.schema import as_data

if TYPE_CHECKING:
    import numpy as np


def _imagenet_preprocess() -> dict[str, Any]:
    return {"resize": 256, "crop": 224, "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD), "fit": "crop"}


def image_input(name: str = "input", shape: list[int] | None = None) -> dict[str, Any]:
    """An input as requests carry it: name, dtype, shape (concrete: dynamic dimensions at their
    opt size), and the value range synthetic data draws integers from."""
    return {"name": name, "dtype": "float32", "shape": list(shape or [1, 3, 224, 224]), "low": None, "high": None}


@dataclass(frozen=True)
class DatasetRequest:
    kind: str  # a DatasetKind value: sample_photos | image_folder | npz | fashion_mnist
    path: str | None
    num_samples: int
    seed: int
    key: str | None = None  # npz: the array's name
    split: str | None = None  # fashion_mnist: test (when None) or train
    # Class name -> model output index (or list of accepted indices); None or empty: class i -> i.
    label_map: dict[str, Any] | None = None
    # resize, crop, mean, std, fit: the model's preprocessing (config model.preprocess).
    preprocess: dict[str, Any] = field(default_factory=_imagenet_preprocess)
    # The model's inputs (see image_input()), in the model's order.
    inputs: list[dict[str, Any]] = field(default_factory=lambda: [image_input()])
    tokenizer: str | None = None  # text: a tokenizer.json, or a folder holding one
    targets: str = "classes"  # fashion_mnist: class labels, or `masks` (each image's garment pixels)
    # Image kinds: also return each image as decoded (8-bit H×W×C, its own size), for an artifact
    # that resizes inside. The same data: not part of the fingerprint.
    decoded: bool = False

    def __post_init__(self) -> None:
        # A DatasetKind member is a str already; keep the plain value so as_data is plain JSON.
        object.__setattr__(self, "kind", getattr(self.kind, "value", self.kind))

    def as_data(self) -> dict[str, Any]:
        """Every field as plain JSON-able data (deep copies), the form stage params carry."""
        return {f.name: as_data(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> DatasetRequest:
        """The inverse of `as_data`. Missing optional fields take their defaults; an unknown
        key is a TypeError, so params of another shape fail loudly instead of loading other data."""
        return cls(**{name: as_data(value) for name, value in data.items()})

    @property
    def batch(self) -> int:
        """The model's batch size: consumers feed the samples in batches of this many."""
        return int(self.inputs[0]["shape"][0])

    @property
    def image(self) -> dict[str, Any]:
        """The input images are decoded for: the first [N, 1|3, H, W] float input."""
        return next((i for i in self.inputs if len(i["shape"]) == 4 and i["dtype"] in ("float32", "float16")
                     and i["shape"][1] in (1, 3)), self.inputs[0])

    @property
    def input_shape(self) -> list[int]:
        """The image input's shape."""
        return list(self.image["shape"])


Feeds = dict[str, "np.ndarray"]  # input name -> array, samples (or a batch) along the first axis


@dataclass(frozen=True)
class LabeledSamples:
    samples: Feeds  # one array per model input, of its dtype
    # int64 [N, K]: the model output indices accepted for each sample, padded with -1.
    # None when the data has no labels (sample_photos, npz, a flat image folder).
    labels: np.ndarray | None
    classes: list[str] | None  # the dataset's class names that were kept, in label_map order
    decoded: list[np.ndarray] | None = None  # request.decoded: each sample's image before resize/crop


class DatasetKindModule(Protocol):
    """What each kind's module provides (the values of `optbuild.data.KINDS`)."""

    def fingerprint(self, request: DatasetRequest) -> dict[str, Any]:
        """The kind's own part of the fingerprint (`versions` in it are merged, not replaced)."""
        ...

    def load(self, request: DatasetRequest, labeled: bool) -> LabeledSamples:
        """The seeded subset; labels only when `labeled` and the data has them."""
        ...
