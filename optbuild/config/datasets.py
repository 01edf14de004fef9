"""Calibration and validation data settings (`calibration`, `validate`), with their rules."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, Optional

from omegaconf import MISSING
from pydantic import ConfigDict, field_validator, model_validator

from optbuild.config.choices import FASHION_MNIST_SPLITS, UNLABELED_KINDS, DatasetKind, Targets
from optbuild.config.rules import MAX_SAMPLES, MAX_SEED, RuleError, at_least, fraction, within

_STRICT = ConfigDict(extra="forbid")


@dataclass
class DatasetConfig:
    __pydantic_config__ = _STRICT
    dataset: Optional[DatasetKind] = None
    path: Optional[str] = None
    num_samples: int = 300
    seed: int = 0
    key: Optional[str] = None  # npz: the array's name
    split: Optional[str] = None  # fashion_mnist: test (default) or train
    # Labels to model outputs: dataset class name -> output index (or a list of accepted indices).
    # Samples of classes left out are skipped. Empty: class i -> output i (image_folder: sorted
    # class-folder names; fashion_mnist: its ten classes in their official order). Not Optional:
    # Hydra cannot override a None dict with `key={a: 1}`.
    label_map: dict[str, Any] = field(default_factory=dict)
    # text: the model's tokenizer.json (or a folder holding one); a huggingface model's own by default.
    tokenizer: Optional[str] = None
    targets: Targets = Targets.classes  # fashion_mnist: class labels, or masks (garment silhouettes)

    @field_validator("num_samples")
    @classmethod
    def _samples(cls, value: int) -> int:
        at_least("num_samples", value, 1)
        within("num_samples", value, 1, MAX_SAMPLES)
        return value

    @field_validator("seed")
    @classmethod
    def _seed(cls, value: int) -> int:
        at_least("seed", value, 0)
        within("seed", value, 0, MAX_SEED)
        return value

    @field_validator("label_map")
    @classmethod
    def _label_map(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name, indices in value.items():
            listed = indices if isinstance(indices, list) else [indices]
            if not listed or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in listed):
                raise RuleError(f"label_map.{name}", f"label_map['{name}'] is {indices!r}: give a model output "
                                                     "index (integer >= 0) or a non-empty list of them")
        return value

    @model_validator(mode="after")
    def _fields_of_kind(self) -> DatasetConfig:
        kind = self.dataset
        if kind is None:
            return self
        if kind in (DatasetKind.sample_photos, DatasetKind.synthetic) and (self.path is not None or
                                                                             self.key is not None):
            raise RuleError("dataset", f"dataset '{kind.value}' does not use 'path' or 'key': remove them, or "
                                       "pick dataset 'image_folder' / 'npz' / 'text' to use your own data")
        if kind is not DatasetKind.npz and self.key is not None:
            raise RuleError("key", f"dataset '{kind.value}' does not use 'key': remove it")
        if self.targets is Targets.masks and kind is not DatasetKind.fashion_mnist:
            raise RuleError("targets", f"dataset '{kind.value}' has no masks: targets=masks is fashion_mnist's "
                                       "(garment silhouettes)")
        if kind is not DatasetKind.text and self.tokenizer is not None:
            raise RuleError("tokenizer", f"dataset '{kind.value}' does not use 'tokenizer': remove it")
        if kind in (DatasetKind.image_folder, DatasetKind.npz, DatasetKind.text) and self.path is None:
            raise RuleError("path", f"dataset '{kind.value}' needs a 'path': set it to your data")
        if self.split is not None and kind is not DatasetKind.fashion_mnist:
            raise RuleError("split", f"dataset '{kind.value}' has no splits: remove 'split'")
        if self.split is not None and self.split not in FASHION_MNIST_SPLITS:
            raise RuleError("split", f"fashion_mnist split '{self.split}' does not exist: use "
                                     f"{' or '.join(FASHION_MNIST_SPLITS)}")
        if self.label_map and kind in UNLABELED_KINDS:
            raise RuleError("label_map", f"dataset '{kind.value}' has no labels, so 'label_map' means nothing: "
                                         "remove it")
        return self

    @property
    def unlabeled(self) -> bool:
        """A kind of data that never has labels."""
        return self.dataset in UNLABELED_KINDS


@dataclass
class MetricSpec:
    """A validation metric (optbuild passes lists them), on one output or on every output it
    fits; `min`/`max` make it a gate."""

    __pydantic_config__ = _STRICT
    name: str = MISSING
    output: Optional[str] = None
    params: dict[str, Any] = field(default_factory=dict)
    min: Optional[float] = None
    max: Optional[float] = None

    @model_validator(mode="after")
    def _bounds(self) -> MetricSpec:
        for bound in ("min", "max"):
            value = getattr(self, bound)
            if value is not None and not math.isfinite(value):
                raise RuleError(bound, f"{{key}}={value}: a gate is a finite number")
        return self


@dataclass
class ValidateConfig(DatasetConfig):
    __pydantic_config__ = _STRICT
    enabled: bool = True
    dataset: Optional[DatasetKind] = DatasetKind.sample_photos
    num_samples: int = 32
    seed: int = 1
    # Gates: a build that misses one is published as failed, never as `latest`.
    min_top1_agreement: Optional[float] = None  # with the FP32 reference, 0..1
    min_cosine: Optional[float] = None
    max_top1_drop: Optional[float] = None  # labeled data: reference top-1 minus artifact top-1, 0..1
    max_top5_drop: Optional[float] = None
    min_top1: Optional[float] = None  # labeled data: the artifact's top-1 accuracy, 0..1
    # The metrics to measure (the first is the primary one, e.g. the sweep report's quality);
    # empty: model.task's defaults. See docs/models.md.
    metrics: list[MetricSpec] = field(default_factory=list)

    LABELED_GATES = ("max_top1_drop", "max_top5_drop", "min_top1")

    @model_validator(mode="after")
    def _gates(self) -> ValidateConfig:
        for key in (f.name for f in fields(self) if f.name.startswith(("min_", "max_"))):
            fraction(f"validate.{key}", getattr(self, key))
        if self.unlabeled:
            given = [key for key in self.LABELED_GATES if getattr(self, key) is not None]
            if given:
                raise RuleError(given[0], f"validate.{given[0]} needs labels but validate.dataset="
                                          f"{self.dataset.value if self.dataset else None} has none: use a labeled set (image_folder "
                                          "with class folders, or fashion_mnist) or drop it")
        return self
