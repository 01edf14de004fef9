"""The recipe's gates checked against a measured record: the validate.* shorthands, and every
metric of validate.metrics given a `min` or `max`.

A gate on an agreement metric whose FP32 reference is degenerate (all outputs near zero, or
the same for every sample) is reported as not meaningful (`passed: null`): it neither passes nor
fails the build, and the build says why.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from optbuild.config.datasets import ValidateConfig


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
AGREEMENT_SHORTHANDS = ("top1_agreement",)
NOT_MEANINGFUL = "not meaningful: the FP32 reference is degenerate"


def _gate(rule: str, threshold: float, value: Any, minimum: bool, label: str, what: str,
          meaningful: bool = True) -> dict[str, Any]:
    if value is None:  # a labeled metric on data without labels
        passed, why = False, "needs a labeled validation set (image_folder class folders, or fashion_mnist)"
    elif not meaningful:
        passed, why = None, f"{label} {NOT_MEANINGFUL}"
    else:
        passed = value >= threshold if minimum else value <= threshold
        why = "" if passed else f"{label} {value:.4f} {'<' if minimum else '>'} {rule} {threshold}"
    return {"rule": rule, "threshold": threshold, "value": value, "passed": passed,
            "measured_on": what.strip() or "artifact", "reason": None if passed else f"{what}{why}"}


def check_gates(rules: ValidateConfig, record: dict[str, Any] | None, what: str = "") -> list[dict[str, Any]]:
    """Each threshold the recipe sets, with the measured value and whether it passed."""
    if record is None:
        return []
    degenerate = record.get("reference_degenerate") or {}
    first_degenerate = bool(degenerate) and next(iter(record.get("outputs") or {"": None})) in degenerate
    results = []
    for gate in GATES:
        threshold = getattr(rules, gate.key)
        if threshold is not None:
            meaningful = not (gate.metric in AGREEMENT_SHORTHANDS and first_degenerate)
            results.append(_gate(f"validate.{gate.key}", threshold, record.get(gate.metric), gate.minimum,
                                 gate.label, what, meaningful))
    for measured in record.get("metrics") or []:
        label = f"{measured['name']}({measured['output']})"
        for bound, minimum in (("min", True), ("max", False)):
            if measured.get(bound) is not None:
                rule = f"validate.metrics[{measured['name']}].{bound}"
                results.append(_gate(rule, measured[bound], measured["value"], minimum, label, what,
                                     measured.get("meaningful", True)))
    return results
