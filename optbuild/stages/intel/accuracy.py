"""Accuracy-aware INT8 for the intel target: NNCF's quantize_with_accuracy_control.

NNCF quantizes, measures the metric on the validation set, ranks groups of quantizers by how
much reverting each one recovers, and reverts the worst groups (their operations then run in the
device's float precision) until the drop is within `max_drop`. The metric is top-1 accuracy when
the validation set has labels, else top-1 agreement with the FP32 model (ONNX Runtime).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from optbuild.data import DatasetRequest, Feeds, batches, load_labeled, rows
from optbuild.errors import OptbuildError
from optbuild.passes.onnx_io import cpu_session
from optbuild.stages.metrics import control_metric, control_score

# Operations whose precision the manifest reports: the ones that carry weights.
WEIGHTED_OPS = ("Convolution", "GroupConvolution", "ConvolutionBackpropData", "MatMul")


def _weights_quantized(op: Any) -> bool:
    """NNCF stores quantized weights as an int8 Constant -> Convert -> (Subtract) -> Multiply
    chain, or as a FakeQuantize on a float Constant: look up the weight input for either."""
    pending, seen = [op.input(1).get_source_output().get_node()], 0
    while pending and seen < 6:
        node, seen = pending.pop(), seen + 1
        kind = node.get_type_name()
        if kind == "FakeQuantize":
            return True
        if kind == "Constant":
            if node.get_element_type().get_type_name() in ("i8", "u8", "i4", "u4"):
                return True
        elif kind in ("Convert", "Multiply", "Subtract", "Reshape"):
            pending += [port.get_source_output().get_node() for port in node.inputs()]
    return False


def layers_in_float(model: Any) -> list[str]:
    """Weighted operations whose weights are not quantized: they run in float precision."""
    return sorted(op.get_friendly_name() for op in model.get_ordered_ops()
                  if op.get_type_name() in WEIGHTED_OPS and not _weights_quantized(op))


def quantize_with_control(model: Any, calibration_items: list[Feeds], reference_onnx: str,
                          validation: DatasetRequest, control: dict[str, Any],
                          options: dict[str, Any] | None = None) -> Any:
    """(quantized model, record for the manifest)."""
    import nncf
    from nncf.quantization.advanced_parameters import AdvancedAccuracyRestorerParameters

    data = load_labeled(validation)
    metric = control_metric(control["metric"], data.labels is not None)
    batch = validation.batch
    reference = cpu_session(reference_onnx)
    samples = batches(data.samples, batch)
    labels = [b["labels"] for b in batches({"labels": data.labels}, batch)] if data.labels is not None \
        else [None] * len(samples)
    # Each item: a batch, the FP32 model's first output on it, its labels (when the data has them).
    items = [(x, reference.run(None, x)[0], y) for x, y in zip(samples, labels)]
    if not items:
        raise OptbuildError(f"validation set has {rows(data.samples)} samples, fewer than the batch {batch}: "
                            "raise validate.num_samples")

    def validation_fn(compiled: Any, dataset: Any) -> tuple[float, list[float]]:
        scores = [control_score(metric, ref, np.asarray(compiled(x)[0]), y) for x, ref, y in dataset]
        return float(np.mean(scores)), scores

    advanced = AdvancedAccuracyRestorerParameters()
    if control.get("max_iterations") is not None:
        advanced.max_num_iterations = control["max_iterations"]
    quantized = nncf.quantize_with_accuracy_control(
        model, nncf.Dataset(calibration_items), nncf.Dataset(items), validation_fn,
        max_drop=control["max_drop"], drop_type=nncf.DropType.ABSOLUTE, subset_size=len(calibration_items),
        advanced_accuracy_restorer_parameters=advanced, **(options or {}))
    record = {
        "method": "nncf.quantize_with_accuracy_control",
        "metric": metric,
        "max_drop": control["max_drop"],
        "validation_samples": len(items) * batch,
        "weighted_layers": sum(1 for op in quantized.get_ordered_ops() if op.get_type_name() in WEIGHTED_OPS),
    }
    return quantized, record
