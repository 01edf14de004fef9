"""Accuracy-aware INT8 for TensorRT: keep the most sensitive layers out of Q/DQ.

1. Quantize with the configured float layers (int8.quantize) and measure the metric on the
   validation set with ONNX Runtime (Q/DQ run as written). Within `max_drop`: done.
2. Sensitivity, per quantized weighted layer: quantize again with only that layer also excluded
   (the calibration ranges are cached, so this is cheap) and measure how much closer the outputs
   get to FP32's on a ranking subset.
3. Bisection for the fewest most-sensitive layers whose exclusion brings the drop on the whole
   validation set within `max_drop` (at most `max_iterations` layers). The result is the
   quantizer's own output, lint-checked like any other.

The metric is top-1 accuracy with labels, else top-1 agreement with the FP32 model.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from optbuild.data import Feeds, batches, rows
from optbuild.stages.metrics import control_metric, control_score
from optbuild.stages.nvidia import int8
from optbuild.stages.nvidia.proxy import qdq_session

WEIGHTED_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")
RANKING_SAMPLES = 32  # the error is continuous, so a small subset orders layers well


def _outputs(model: Any, samples: Feeds, batch: int) -> np.ndarray:
    """The model's first output over the samples, in batches."""
    session = qdq_session(model)
    return np.concatenate([session.run(None, x)[0] for x in batches(samples, batch)])


def restore_accuracy(source: str, target: str, calibration: list[Feeds],
                     keep_float: list[str], samples: Feeds, labels: np.ndarray | None,
                     control: dict[str, Any], batch: int) -> dict[str, Any]:
    """Quantize `source` into `target` keeping sensitive layers in float; the int8 report with
    an `accuracy_control` record."""
    import onnx

    metric = control_metric(control["metric"], labels is not None)
    reference = _outputs(source, samples, batch)
    baseline = control_score(metric, reference, reference, labels)
    subset = {name: array[:RANKING_SAMPLES] for name, array in samples.items()}

    with tempfile.TemporaryDirectory(prefix="optbuild-sensitivity-") as tmp:
        cache, trial = str(Path(tmp, "ranges.json")), str(Path(tmp, "trial.onnx"))

        def excluding(layers: list[str], path: str = trial) -> dict[str, Any]:
            return int8.quantize(source, path, calibration, keep_float + layers, cache)

        def drop(path: str) -> float:
            return baseline - control_score(metric, reference, _outputs(path, samples, batch), labels)

        report = excluding([], target)
        initial = drop(target)
        record: dict[str, Any] = {"method": "per-layer sensitivity (exclusion from Q/DQ), on ONNX Runtime",
                                  "metric": metric, "max_drop": control["max_drop"],
                                  "validation_samples": len(reference), "reference": baseline,
                                  "initial_drop": initial, "ranking": [], "layers_in_float": []}
        if initial > control["max_drop"]:
            fp32_names = {n.name for n in onnx.load(source, load_external_data=False).graph.node if n.name}
            candidates = [n.name for n in onnx.load(target, load_external_data=False).graph.node
                          if n.op_type in WEIGHTED_OPS and n.name in fp32_names
                          and n.name not in report["kept_float_nodes"]]
            near = reference[: rows(subset)]
            base_error = float(np.mean((_outputs(target, subset, batch) - near) ** 2))
            gains = {}
            for name in candidates:
                excluding([name])
                gains[name] = base_error - float(np.mean((_outputs(trial, subset, batch) - near) ** 2))
            ranking = sorted(candidates, key=lambda name: -gains[name])
            record["ranking"] = [{"layer": name, "error_reduction": gains[name]} for name in ranking]
            low, high = 1, min(control.get("max_iterations") or len(ranking), len(ranking))
            while low < high:  # the fewest top-ranked layers that meet max_drop
                middle = (low + high) // 2
                excluding(ranking[:middle])
                if drop(trial) <= control["max_drop"]:
                    high = middle
                else:
                    low = middle + 1
            report = excluding(ranking[:low], target)
            record["layers_in_float"] = ranking[:low]
        final = drop(target)
    record.update({"final_drop": final, "reached": final <= control["max_drop"]})
    return {**report, "accuracy_control": record}
