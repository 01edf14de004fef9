"""Validation metrics: how close an artifact's outputs are to the FP32 reference's, and how
good they are against labels, each a number with a direction that a recipe can gate on.

A metric compares the reference's and the artifact's values of one output, both shaped [N, ...]
(N samples). Built in: agreement metrics for classifiers, sequences and embeddings, mask IoU for
dense maps, error and similarity measures for anything, and accuracy against labels. Third-party
metrics install as entry points in the group `optbuild.metrics`: the entry point's name is the
metric's name, its object a `Metric`. Recipes name metrics; they never name code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import numpy as np

from optbuild.errors import OptbuildError, first_line

ENTRY_POINT_GROUP = "optbuild.metrics"
# fn(reference, candidate, labels or None, params) -> value
MetricFn = Callable[[np.ndarray, np.ndarray, "np.ndarray | None", dict[str, Any]], float]


@dataclass(frozen=True)
class Metric:
    name: str
    fn: MetricFn
    higher_is_better: bool
    doc: str
    ranks: tuple[int, ...] = ()  # output ranks it makes sense for ([N, C] is 2); empty: any
    needs_labels: bool = False
    # Agreement with the reference: meaningless when the reference is degenerate (all outputs
    # near zero or the same for every sample), where any artifact agrees or none does.
    agreement: bool = False

    def misfit(self, shape: tuple[int, ...]) -> str | None:
        """Why the metric does not fit an output of this shape (None: it fits)."""
        if self.ranks and len(shape) not in self.ranks:
            wants = " or ".join(f"rank {rank}" for rank in self.ranks)
            return f"{self.name} needs an output of {wants}, this one is {list(shape)}"
        return None


def _flat(x: np.ndarray) -> np.ndarray:
    return x.reshape(len(x), -1).astype(np.float64)


def cosines(reference: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """Per-sample cosine similarity (0 where either side is all zeros)."""
    ref, cand = _flat(reference), _flat(candidate)
    norms = np.linalg.norm(ref, axis=1) * np.linalg.norm(cand, axis=1)
    return np.sum(ref * cand, axis=1) / np.where(norms == 0, 1.0, norms)


def topk_hits(logits: np.ndarray, labels: np.ndarray, k: int = 1) -> np.ndarray:
    """Per sample: whether its k highest outputs include an accepted label. `labels` is [N, K]
    of accepted output indices, padded with -1 (a dataset class may map to several outputs)."""
    scores = logits.reshape(len(logits), -1)
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    hit = (top[:, :, None] == labels[:, None, :]) & (labels[:, None, :] >= 0)
    return hit.any(axis=(1, 2))


def topk_accuracy(logits: np.ndarray, labels: np.ndarray, k: int) -> float:
    return float(topk_hits(logits, labels, k).mean())


def _topk_agreement(ref: np.ndarray, cand: np.ndarray, labels: Any, params: dict[str, Any]) -> float:
    k = int(params.get("k", 1))
    top = np.argsort(-_flat(cand), axis=1, kind="stable")[:, :k]
    return float(np.mean((top == _flat(ref).argmax(1)[:, None]).any(axis=1)))


def _sequence_agreement(ref: np.ndarray, cand: np.ndarray, labels: Any, params: dict[str, Any]) -> float:
    return float(np.mean(ref.argmax(-1) == cand.argmax(-1)))


def _retrieval_agreement(ref: np.ndarray, cand: np.ndarray, labels: Any, params: dict[str, Any]) -> float:
    """Each sample's nearest neighbour among the others (cosine): the same in both?"""
    def neighbours(x: np.ndarray) -> np.ndarray:
        unit = _flat(x) / np.maximum(np.linalg.norm(_flat(x), axis=1, keepdims=True), 1e-12)
        similarity = unit @ unit.T
        np.fill_diagonal(similarity, -np.inf)
        return similarity.argmax(1)

    if len(ref) < 2:
        raise OptbuildError("retrieval_agreement needs at least 2 validation samples")
    return float(np.mean(neighbours(ref) == neighbours(cand)))


def _masks(x: np.ndarray, params: dict[str, Any]) -> np.ndarray:
    channel = params.get("channel")
    if channel is not None:
        x = x[:, int(channel)]
    elif x.ndim == 4 and x.shape[1] > 1:  # class scores per pixel: the foreground is any class but 0
        return x.argmax(1) != 0
    return x.reshape(len(x), -1) > float(params.get("threshold", 0.5))


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    union = (a | b).sum(1)
    return np.where(union == 0, 1.0, (a & b).sum(1) / np.maximum(union, 1))


def _mask_iou(ref: np.ndarray, cand: np.ndarray, labels: Any, params: dict[str, Any]) -> float:
    return float(_iou(_masks(ref, params), _masks(cand, params)).mean())


def _cosine_mean(ref: np.ndarray, cand: np.ndarray, labels: Any, params: dict[str, Any]) -> float:
    return float(cosines(ref, cand).mean())


def _cosine_min(ref: np.ndarray, cand: np.ndarray, labels: Any, params: dict[str, Any]) -> float:
    return float(cosines(ref, cand).min())


def _max_abs(ref: np.ndarray, cand: np.ndarray, labels: Any, params: dict[str, Any]) -> float:
    return float(np.abs(_flat(ref) - _flat(cand)).max())


def _mean_abs(ref: np.ndarray, cand: np.ndarray, labels: Any, params: dict[str, Any]) -> float:
    return float(np.abs(_flat(ref) - _flat(cand)).mean())


def _rel_l2(ref: np.ndarray, cand: np.ndarray, labels: Any, params: dict[str, Any]) -> float:
    error = np.linalg.norm(_flat(ref) - _flat(cand))
    return float(error / max(float(np.linalg.norm(_flat(ref))), 1e-30))


def _snr_db(ref: np.ndarray, cand: np.ndarray, labels: Any, params: dict[str, Any]) -> float:
    noise = float(np.sum((_flat(ref) - _flat(cand)) ** 2))
    signal = float(np.sum(_flat(ref) ** 2))
    return float("inf") if noise == 0 else float(10 * np.log10(max(signal, 1e-30) / noise))


def _topk_accuracy(ref: np.ndarray, cand: np.ndarray, labels: Any, params: dict[str, Any]) -> float:
    return topk_accuracy(cand, labels[: len(cand)], int(params.get("k", 1)))


def _miou(ref: np.ndarray, cand: np.ndarray, labels: Any, params: dict[str, Any]) -> float:
    """Mean over classes of the IoU of the artifact's per-pixel classes with the label masks."""
    labels = labels[: len(cand)]
    predicted = cand.argmax(1) if cand.ndim == 4 and cand.shape[1] > 1 else _masks(cand, params).reshape(labels.shape)
    classes = np.union1d(np.unique(labels), np.unique(predicted))
    return float(np.mean([_iou(predicted[None] == c, labels[None] == c)[0] for c in classes]))


BUILTIN = {metric.name: metric for metric in (
    Metric("topk_agreement", _topk_agreement, True, "the reference's top class is in the artifact's top k (k=1)",
           ranks=(2,), agreement=True),
    Metric("sequence_agreement", _sequence_agreement, True, "per-position argmax agreement of [N, T, classes]",
           ranks=(3,), agreement=True),
    Metric("retrieval_agreement", _retrieval_agreement, True, "each embedding's nearest neighbour is the same",
           ranks=(2,), agreement=True),
    Metric("mask_iou", _mask_iou, True, "IoU of the masks above `threshold` (0.5), or of the non-background "
           "classes of [N, C, H, W] scores", ranks=(3, 4), agreement=True),
    Metric("cosine", _cosine_mean, True, "mean per-sample cosine similarity"),
    Metric("cosine_min", _cosine_min, True, "the worst sample's cosine similarity"),
    Metric("max_abs", _max_abs, False, "largest absolute difference"),
    Metric("mean_abs", _mean_abs, False, "mean absolute difference"),
    Metric("rel_l2", _rel_l2, False, "relative L2 error ||artifact - reference|| / ||reference||"),
    Metric("snr_db", _snr_db, True, "signal-to-noise ratio of the reference over the difference, in dB"),
    Metric("top1", _topk_accuracy, True, "top-1 accuracy against the labels", ranks=(2,), needs_labels=True),
    Metric("top5", lambda r, c, labels, p: _topk_accuracy(r, c, labels, {**p, "k": 5}), True,
           "top-5 accuracy against the labels", ranks=(2,), needs_labels=True),
    Metric("miou", _miou, True, "mean IoU over classes against label masks", ranks=(3, 4), needs_labels=True),
)}


# What each model.task measures when the recipe lists no validate.metrics.
TASK_METRICS: dict[str, tuple[str, ...]] = {
    "classification": ("topk_agreement", "cosine"),
    "dense": ("cosine", "rel_l2"),
    "embedding": ("cosine", "retrieval_agreement"),
    "sequence": ("sequence_agreement", "cosine"),
    "generic": ("cosine", "rel_l2"),
}


def _plugins() -> dict[str, metadata.EntryPoint]:
    return {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def names() -> list[str]:
    return sorted(set(BUILTIN) | set(_plugins()))


def get(name: str) -> Metric:
    if name in BUILTIN:
        return BUILTIN[name]
    plugin = _plugins().get(name)
    if plugin is None:
        raise OptbuildError(f"unknown metric '{name}'; available: {', '.join(names())} (third-party metrics "
                            f"install as entry points in the group {ENTRY_POINT_GROUP})")
    try:
        loaded = plugin.load()
    except Exception as err:  # noqa: BLE001 - any failure of third-party code means the same
        raise OptbuildError(f"metric plugin '{name} = {plugin.value}' cannot be loaded ({first_line(err)})") from err
    if not isinstance(loaded, Metric):
        raise OptbuildError(f"metric plugin '{name} = {plugin.value}' is not an optbuild.stages.quality.Metric")
    return loaded
