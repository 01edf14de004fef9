"""Accuracy-aware INT8 for TensorRT: keep the most sensitive layers out of Q/DQ.

1. Quantize with the configured float layers (int8.quantize, calibrating once) and measure the
   metric on the validation set with ONNX Runtime (Q/DQ run as written). Within `max_drop`: done.
2. Sensitivity, per quantized layer (a node reading a quantized tensor, directly or through
   pools and reshapes: int8.quantized_layers): the same Q/DQ graph with only that layer reading
   float inputs (int8.dequantized; every other tensor keeps its calibrated range), and how much
   closer the outputs get to FP32's on a ranking subset.
3. Bisection for the fewest most-sensitive layers whose float inputs bring the drop on the whole
   validation set within `max_drop` (at most `max_iterations` layers). The result is lint-checked
   like any other INT8 graph.

The metric is top-1 accuracy with labels, else top-1 agreement with the FP32 model.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from optbuild.data import Feeds, batches, rows
from optbuild.stages.metrics import control_metric, control_score
from optbuild.stages.nvidia import int8
from optbuild.stages.nvidia.proxy import qdq_session

RANKING_SAMPLES = 32  # the error is continuous, so a small subset orders layers well


def _outputs(model: Any, samples: Feeds, batch: int) -> np.ndarray:
    """The model's first output over the samples, in batches."""
    session = qdq_session(model)
    return np.concatenate([session.run(None, x)[0] for x in batches(samples, batch)])


def restore_accuracy(source: str, target: str, calibration: list[Feeds], keep_float: list[str],
                     settings: dict[str, Any], samples: Feeds, labels: np.ndarray | None,
                     control: dict[str, Any], batch: int) -> dict[str, Any]:
    """Quantize `source` into `target` keeping sensitive layers in float; the int8 report with
    an `accuracy_control` record."""
    import onnx

    metric = control_metric(control["metric"], labels is not None)
    reference = _outputs(source, samples, batch)
    baseline = control_score(metric, reference, reference, labels)
    subset = {name: array[:RANKING_SAMPLES] for name, array in samples.items()}

    report = int8.quantize(source, target, calibration, keep_float, settings)
    quantized = onnx.load(target)

    def excluding(layers: list[str]) -> Any:
        return int8.dequantized(quantized, layers).SerializeToString()

    def drop(model: Any) -> float:
        return baseline - control_score(metric, reference, _outputs(model, samples, batch), labels)

    initial = drop(target)
    record: dict[str, Any] = {"method": "per-layer sensitivity (float inputs for one layer at a time), on ONNX "
                                        "Runtime", "metric": metric, "max_drop": control["max_drop"],
                              "validation_samples": len(reference), "reference": baseline,
                              "initial_drop": initial, "ranking": [], "layers_in_float": []}
    final = initial
    if initial > control["max_drop"]:
        candidates = [name for name in int8.quantized_layers(quantized) if name not in report["kept_float_nodes"]]
        near = reference[: rows(subset)]
        base_error = float(np.mean((_outputs(target, subset, batch) - near) ** 2))
        gains = {name: base_error - float(np.mean((_outputs(excluding([name]), subset, batch) - near) ** 2))
                 for name in candidates}
        ranking = sorted(candidates, key=lambda name: -gains[name])
        record["ranking"] = [{"layer": name, "error_reduction": gains[name]} for name in ranking]
        low, high = 1, min(control.get("max_iterations") or len(ranking), len(ranking))
        while low < high:  # the fewest top-ranked layers that meet max_drop
            middle = (low + high) // 2
            if drop(excluding(ranking[:middle])) <= control["max_drop"]:
                high = middle
            else:
                low = middle + 1
        chosen = int8.dequantized(quantized, ranking[:low])
        onnx.save(chosen, target)
        record["layers_in_float"] = ranking[:low]
        report = {**report, "kept_float_nodes": sorted(set(report["kept_float_nodes"]) | set(ranking[:low])),
                  "bytes": len(chosen.SerializeToString()), "quantized_layers": len(int8.quantized_layers(chosen))}
        final = drop(target)
    record.update({"final_drop": final, "reached": final <= control["max_drop"]})
    return {**report, "accuracy_control": record}
