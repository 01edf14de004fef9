"""Comparison and latency statistics shared by the validate and benchmark stages."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Model = Callable[[np.ndarray], np.ndarray]


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
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Both models on the same batches of `samples` (a trailing partial batch is dropped)."""
    ref_out, cand_out = [], []
    for start in range(0, len(samples) - batch + 1, batch):
        x = samples[start : start + batch]
        ref_out.append(reference(x))
        cand_out.append(np.asarray(candidate(x), dtype=np.float32))
    return np.concatenate(ref_out), np.concatenate(cand_out)
