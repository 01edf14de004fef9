"""The validate.* gates against measured records: which pass, which fail, and what they say."""

from __future__ import annotations

from optbuild.config.datasets import ValidateConfig
from optbuild.publish.gates import GATES, check_gates

RECORD = {"top1_agreement": 0.9, "cosine_mean": 0.99, "top1_drop": 0.02, "top5_drop": 0.0, "artifact_top1": 0.7}


def test_unset_gates_are_not_checked_and_no_record_means_no_gates() -> None:
    assert check_gates(ValidateConfig(), RECORD) == []
    assert check_gates(ValidateConfig(min_cosine=0.9), None) == []


def test_each_gate_passes_and_fails_in_its_direction() -> None:
    for gate in GATES:
        value = RECORD[gate.metric]
        passing = value - 0.01 if gate.minimum else value + 0.01
        failing = value + 0.01 if gate.minimum else value - 0.01
        (ok,) = check_gates(ValidateConfig(**{gate.key: passing}), RECORD)
        assert ok["passed"] and ok["reason"] is None and ok["value"] == value
        (miss,) = check_gates(ValidateConfig(**{gate.key: failing}), RECORD, "CPU proxy ")
        assert not miss["passed"]
        assert miss["rule"] == f"validate.{gate.key}" and miss["threshold"] == failing
        sign = "<" if gate.minimum else ">"
        assert miss["reason"] == f"CPU proxy {gate.label} {value:.4f} {sign} validate.{gate.key} {failing}"
        assert miss["measured_on"] == "CPU proxy"


def test_a_threshold_equal_to_the_value_passes() -> None:
    (gate,) = check_gates(ValidateConfig(min_top1_agreement=0.9), RECORD)
    assert gate["passed"]


def test_a_labeled_gate_without_labels_fails_saying_why() -> None:
    (gate,) = check_gates(ValidateConfig(dataset="fashion_mnist", min_top1=0.5), {"top1_agreement": 1.0})
    assert not gate["passed"] and gate["value"] is None
    assert "needs a labeled validation set" in gate["reason"]
