"""Comparison, accuracy and latency statistics shared by the validate, proxy and benchmark stages."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from optbuild.data import Feeds, batches
from optbuild.errors import OptbuildError
from optbuild.stages.quality import topk_accuracy, topk_hits

Model = Callable[[Feeds], Sequence[np.ndarray]]  # a batch of inputs in, the model's outputs in order


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


def accuracy(reference: np.ndarray, candidate: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """Top-1 (and top-5 when there are more than five outputs) of both models, and the drop."""
    result: dict[str, Any] = {"labeled_samples": int(len(labels))}
    ks = (1, 5) if reference.reshape(len(reference), -1).shape[1] > 5 else (1,)
    for k in ks:
        ref, cand = topk_accuracy(reference, labels, k), topk_accuracy(candidate, labels, k)
        result.update({f"reference_top{k}": ref, f"artifact_top{k}": cand, f"top{k}_drop": ref - cand})
    return result


def validation_metrics(reference: Sequence[np.ndarray], candidate: Sequence[np.ndarray],
                       names: Sequence[str], labels: np.ndarray | None,
                       specs: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """The validation record: the first output's comparison at the top level (what the
    validate.min_* shorthands read), every output's comparison under `outputs`, accuracy against
    labels on the first output when it is a classifier's scores, and the recipe's metrics
    (`metrics`, the first one `primary`), each with the bounds it is gated on."""
    per_output = {name: compare(r, c) for name, r, c in zip(names, reference, candidate)}
    result: dict[str, Any] = {**per_output[names[0]], "outputs": per_output, "labeled": labels is not None}
    if labels is not None and labels.ndim == 2 and reference[0].ndim == 2:
        result.update(accuracy(reference[0], candidate[0], labels[: len(reference[0])]))
    outputs_ref, outputs_cand = dict(zip(names, reference)), dict(zip(names, candidate))
    degenerate = {name: why for name, values in outputs_ref.items() if (why := degenerate_reference(values))}
    measured = evaluate(specs, outputs_ref, outputs_cand, labels, degenerate)
    result.update(metrics=measured, primary=measured[0] if measured else None, reference_degenerate=degenerate or None)
    return result


def degenerate_reference(values: np.ndarray) -> str | None:
    """Why an FP32 output cannot tell a good artifact from a bad one (None: it can)."""
    peak = float(np.abs(values).max()) if values.size else 0.0
    if peak < 1e-6:
        return f"every value is near zero (largest {peak:.2g})"
    flat = values.reshape(len(values), -1).astype(np.float64)
    if len(flat) > 1 and float(flat.std(axis=0).max()) <= 1e-6 * peak:
        return "every sample gives the same output"
    return None


def evaluate(specs: Sequence[dict[str, Any]], reference: dict[str, np.ndarray], candidate: dict[str, np.ndarray],
             labels: np.ndarray | None, degenerate: dict[str, str]) -> list[dict[str, Any]]:
    """Each metric on its output (or on every output it fits), with its bounds."""
    from optbuild.stages.quality import get

    measured = []
    for spec in specs:
        metric = get(spec["name"])
        for output in _outputs_for(spec, metric, reference):
            value = metric.fn(reference[output], candidate[output], labels, spec.get("params") or {})
            measured.append({"name": metric.name, "output": output, "params": spec.get("params") or {},
                             "value": value, "higher_is_better": metric.higher_is_better,
                             "meaningful": not (metric.agreement and output in degenerate),
                             "min": spec.get("min"), "max": spec.get("max")})
    return measured


def _outputs_for(spec: dict[str, Any], metric: Any, reference: dict[str, np.ndarray]) -> list[str]:
    if metric.needs_labels and spec.get("labels") is False:
        return []
    if spec.get("output"):
        if spec["output"] not in reference:
            raise OptbuildError(f"validate.metrics: {metric.name} names output '{spec['output']}', which the model "
                                f"does not have (its outputs: {', '.join(reference)})")
        if (why := metric.misfit(reference[spec["output"]].shape)) is not None:
            raise OptbuildError(f"validate.metrics: {why} ('{spec['output']}'): choose a metric that fits it")
        return [spec["output"]]
    fitting = [name for name, values in reference.items() if metric.misfit(values.shape) is None]
    if not fitting and not spec.get("default"):
        shapes = ", ".join(f"{name} {list(values.shape)}" for name, values in reference.items())
        raise OptbuildError(f"validate.metrics: {metric.name} fits none of the model's outputs ({shapes}): choose "
                            "a metric that fits them")
    return fitting


def control_metric(kind: str, has_labels: bool) -> str:
    """The metric accuracy control optimizes: `auto` is top-1 with labels, else agreement; or
    any higher-is-better metric of optbuild.stages.quality by name."""
    if kind == "auto":
        return "top1" if has_labels else "agreement"
    if kind == "top1" and not has_labels:
        raise OptbuildError("quantize.accuracy_control.metric=top1 needs a labeled validation set "
                            "(image_folder class folders, or fashion_mnist): use metric=agreement or label the data")
    return kind


def control_score(metric: str, reference: np.ndarray, candidate: np.ndarray, labels: np.ndarray | None) -> float:
    """The accuracy-control metric of the candidate's first output (higher is better)."""
    from optbuild.stages.quality import get

    if metric == "top1":
        assert labels is not None
        return float(topk_hits(candidate, labels[: len(candidate)]).mean())
    if metric == "agreement":
        return float(topk_hits(candidate, reference.reshape(len(reference), -1).argmax(1)[:, None]).mean())
    return float(get(metric).fn(reference, candidate, labels, {}))


def latency_stats(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000.0
    return {
        "median_ms": float(np.median(ms)),
        "p90_ms": float(np.percentile(ms, 90)),
        "p99_ms": float(np.percentile(ms, 99)),
        "mean_ms": float(ms.mean()),
        "runs": int(len(ms)),
    }


CI_LEVEL = 0.95
_CI_Z = 1.959964  # two-sided normal quantile of CI_LEVEL


def latency_spread(seconds: list[float]) -> dict[str, Any]:
    """p10/p50/p90 and a distribution-free confidence interval of the median: the order
    statistics at ranks n/2 -+ z*sqrt(n)/2 (binomial, normal approximation), which cover the true
    median with about CI_LEVEL probability whatever the latency distribution looks like. With few
    runs the interval widens to the extreme samples."""
    ms = np.sort(np.asarray(seconds) * 1000.0)
    n = len(ms)
    half = _CI_Z * np.sqrt(n) / 2
    low, high = max(int(round(n / 2 - half)), 1), min(int(round(1 + n / 2 + half)), n)  # 1-based ranks
    return {
        "p10_ms": float(np.percentile(ms, 10)), "p50_ms": float(np.median(ms)), "p90_ms": float(np.percentile(ms, 90)),
        "median_ci_ms": [float(ms[low - 1]), float(ms[high - 1])], "median_ci_level": CI_LEVEL,
    }


def paired_outputs(samples: Feeds, batch: int, reference: Model, candidate: Model
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
