"""Comparison, accuracy and latency statistics shared by the validate, proxy and benchmark stages."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from optbuild.data import batches
from optbuild.errors import OptbuildError

Model = Callable[[np.ndarray], Sequence[np.ndarray]]  # a batch in, the model's outputs in order


def compare(reference: np.ndarray, candidate: np.ndarray) -> dict[str, float]:
    """Per-sample top-1 agreement and cosine similarity, and error magnitudes, over a batch of
    outputs shaped [N, ...]."""
    ref = reference.reshape(len(reference), -1).astype(np.float64)
    cand = candidate.reshape(len(candidate), -1).astype(np.float64)
    norms = np.linalg.norm(ref, axis=1) * np.linalg.norm(cand, axis=1)
    cosine = np.sum(ref * cand, axis=1) / np.where(norms == 0, 1.0, norms)
    diff = np.abs(ref - cand)
    return {
        "samples": int(len(ref)),
        "top1_agreement": float(np.mean(ref.argmax(1) == cand.argmax(1))),
        "cosine_mean": float(cosine.mean()),
        "cosine_min": float(cosine.min()),
        "max_abs_error": float(diff.max()),
        "mean_abs_error": float(diff.mean()),
    }


def topk_hits(logits: np.ndarray, labels: np.ndarray, k: int = 1) -> np.ndarray:
    """Per sample: whether its k highest outputs include an accepted label. `labels` is [N, K]
    of accepted output indices, padded with -1 (a dataset class may map to several outputs)."""
    scores = logits.reshape(len(logits), -1)
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    hit = (top[:, :, None] == labels[:, None, :]) & (labels[:, None, :] >= 0)
    return hit.any(axis=(1, 2))


def topk_accuracy(logits: np.ndarray, labels: np.ndarray, k: int) -> float:
    return float(topk_hits(logits, labels, k).mean())


def accuracy(reference: np.ndarray, candidate: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """Top-1 (and top-5 when there are more than five outputs) of both models, and the drop."""
    result: dict[str, Any] = {"labeled_samples": int(len(labels))}
    ks = (1, 5) if reference.reshape(len(reference), -1).shape[1] > 5 else (1,)
    for k in ks:
        ref, cand = topk_accuracy(reference, labels, k), topk_accuracy(candidate, labels, k)
        result.update({f"reference_top{k}": ref, f"artifact_top{k}": cand, f"top{k}_drop": ref - cand})
    return result


def validation_metrics(reference: Sequence[np.ndarray], candidate: Sequence[np.ndarray],
                       names: Sequence[str], labels: np.ndarray | None) -> dict[str, Any]:
    """The validation record: the first output's comparison at the top level (it is what gates
    and reports read), every output's comparison under `outputs`, and accuracy against labels
    computed on the first output (the classifier's scores)."""
    per_output = {name: compare(r, c) for name, r, c in zip(names, reference, candidate)}
    result: dict[str, Any] = {**per_output[names[0]], "outputs": per_output, "labeled": labels is not None}
    if labels is not None:
        result.update(accuracy(reference[0], candidate[0], labels[: len(reference[0])]))
    return result


def control_metric(kind: str, has_labels: bool) -> str:
    """The metric accuracy control optimizes: `auto` is top-1 with labels, else agreement."""
    if kind == "auto":
        return "top1" if has_labels else "agreement"
    if kind == "top1" and not has_labels:
        raise OptbuildError("quantize.accuracy_control.metric=top1 needs a labeled validation set "
                            "(image_folder class folders, or fashion_mnist): use metric=agreement or label the data")
    return kind


def latency_stats(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000.0
    return {
        "median_ms": float(np.median(ms)),
        "p90_ms": float(np.percentile(ms, 90)),
        "p99_ms": float(np.percentile(ms, 99)),
        "mean_ms": float(ms.mean()),
        "runs": int(len(ms)),
    }


def paired_outputs(samples: np.ndarray, batch: int, reference: Model, candidate: Model
                   ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Both models on the same batches of `samples` (a trailing partial batch is dropped): each
    model's outputs, concatenated over the batches, in output order."""
    ref_out: list[list[np.ndarray]] = []
    cand_out: list[list[np.ndarray]] = []
    for x in batches(samples, batch):
        ref_out.append([np.asarray(o, dtype=np.float32) for o in reference(x)])
        cand_out.append([np.asarray(o, dtype=np.float32) for o in candidate(x)])
    return ([np.concatenate(outs) for outs in zip(*ref_out)],
            [np.concatenate(outs) for outs in zip(*cand_out)])
