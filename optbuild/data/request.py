"""What a dataset is asked for, and what loading it gives back.

A `DatasetRequest` comes from a validated config (`optbuild.config.schema.DatasetConfig` plus the
model's preprocessing and input shape), so the data layer trusts its fields and checks only the
data itself. It travels between processes as plain data (`as_data` / `from_data`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Protocol

from optbuild.config.schema import IMAGENET_MEAN, IMAGENET_STD, as_data

if TYPE_CHECKING:
    import numpy as np


def _imagenet_preprocess() -> dict[str, Any]:
    return {"resize": 256, "crop": 224, "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}


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
    # resize, crop, mean, std: the model's preprocessing (config model.preprocess).
    preprocess: dict[str, Any] = field(default_factory=_imagenet_preprocess)
    input_shape: list[int] = field(default_factory=lambda: [1, 3, 224, 224])

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
        return int(self.input_shape[0])


@dataclass(frozen=True)
class LabeledSamples:
    samples: np.ndarray  # float32 [N, C, H, W]
    # int64 [N, K]: the model output indices accepted for each sample, padded with -1.
    # None when the data has no labels (sample_photos, npz, a flat image folder).
    labels: np.ndarray | None
    classes: list[str] | None  # the dataset's class names that were kept, in label_map order


class DatasetKindModule(Protocol):
    """What each kind's module provides (the values of `optbuild.data.KINDS`)."""

    def fingerprint(self, request: DatasetRequest) -> dict[str, Any]:
        """The kind's own part of the fingerprint (`versions` in it are merged, not replaced)."""
        ...

    def load(self, request: DatasetRequest, labeled: bool) -> LabeledSamples:
        """The seeded subset; labels only when `labeled` and the data has them."""
        ...
