"""The recipe's validate.* thresholds checked against a measured record."""

from __future__ import annotations

from typing import Any, NamedTuple

from optbuild.config.schema import ValidateConfig


class Gate(NamedTuple):
    key: str  # the validate.* config key
    metric: str  # what it reads from the validation record
    label: str  # how a miss names the metric
    minimum: bool  # True: the value must be >= the threshold; False: <=


GATES = (
    Gate("min_top1_agreement", "top1_agreement", "top-1 agreement", True),
    Gate("min_cosine", "cosine_mean", "cosine", True),
    Gate("max_top1_drop", "top1_drop", "top-1 drop", False),
    Gate("max_top5_drop", "top5_drop", "top-5 drop", False),
    Gate("min_top1", "artifact_top1", "top-1", True),
)
LABELED_GATES = ("max_top1_drop", "max_top5_drop", "min_top1")


def check_gates(rules: ValidateConfig, record: dict[str, Any] | None, what: str = "") -> list[dict[str, Any]]:
    """Each threshold the recipe sets, with the measured value and whether it passed."""
    if record is None:
        return []
    results = []
    for gate in GATES:
        threshold = getattr(rules, gate.key)
        if threshold is None:
            continue
        value = record.get(gate.metric)
        if value is None:  # a labeled metric on data without labels
            passed, why = False, "needs a labeled validation set (image_folder class folders, or fashion_mnist)"
        else:
            passed = value >= threshold if gate.minimum else value <= threshold
            sign = "<" if gate.minimum else ">"
            why = "" if passed else f"{gate.label} {value:.4f} {sign} validate.{gate.key} {threshold}"
        results.append({"rule": f"validate.{gate.key}", "threshold": threshold, "value": value, "passed": passed,
                        "measured_on": what or "artifact", "reason": None if passed else f"{what}{why}"})
    return results
