"""The benchmark stage through the real CLI: latency percentiles and throughput of the artifact
and its baselines, the ratios, and what the numbers were measured with."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import manifest_of

QUICK = ("validate.enabled=false", "benchmark.iterations=6", "benchmark.warmup=2",
         "benchmark.throughput_seconds=0.3")
STATS = {"median_ms", "p90_ms", "p99_ms", "mean_ms", "runs", "p10_ms", "p50_ms", "median_ci_ms", "median_ci_level"}


def check_latency(stats: dict, runs: int) -> None:
    assert set(stats) == STATS and stats["runs"] == runs
    assert 0 < stats["p10_ms"] <= stats["median_ms"] == stats["p50_ms"] <= stats["p90_ms"] <= stats["p99_ms"]
    low, high = stats["median_ci_ms"]
    assert low <= stats["median_ms"] <= high and stats["median_ci_level"] == 0.95


def test_benchmark_records_latency_throughput_ratios_and_settings(cli, tmp_path: Path):
    result = cli("recipe=tiny", *QUICK)
    assert result.returncode == 0, result.stderr
    bench = manifest_of(tmp_path / "outputs/tiny/intel-fp32/v1")["benchmark"]
    check_latency(bench["artifact"], 6)
    check_latency(bench["baseline_onnxruntime_fp32"], 6)
    assert bench["baseline_torch_eager"] is None  # an ONNX source has no torch model
    assert bench["speedup_latency_vs_onnxruntime"] == pytest.approx(
        bench["baseline_onnxruntime_fp32"]["median_ms"] / bench["artifact"]["median_ms"])
    assert bench["speedup_median"] == bench["speedup_latency_vs_onnxruntime"]
    art_tp, ort_tp = bench["throughput"]["artifact"], bench["throughput"]["onnxruntime_fp32"]
    assert art_tp["batch"] == 1 and art_tp["requests"] >= 1 and art_tp["inferences"] > 0
    assert art_tp["samples_per_s"] > 0
    assert ort_tp["inferences_per_s"] == max(ort_tp["sequential_per_s"], ort_tp["parallel"]["inferences_per_s"])
    assert bench["speedup_throughput_vs_onnxruntime"] == pytest.approx(
        art_tp["samples_per_s"] / ort_tp["inferences_per_s"])
    # The settings the numbers came from: requested, and what the device resolved them to.
    latency, throughput = bench["runtime"]["latency"], bench["runtime"]["throughput"]
    assert latency["properties"] == {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"}
    assert latency["resolved"]["INFERENCE_PRECISION_HINT"] == "f32"
    assert latency["resolved"]["NUM_STREAMS"] >= 1 and latency["resolved"]["INFERENCE_NUM_THREADS"] >= 1
    assert throughput["properties"]["PERFORMANCE_HINT"] == "THROUGHPUT"
    assert throughput["requests"] == throughput["resolved"]["OPTIMAL_NUMBER_OF_INFER_REQUESTS"]
    cpu = bench["cpu"]
    assert cpu["cpu"] and cpu["full_device_name"] and "FP32" in cpu["optimization_capabilities"]
    assert isinstance(cpu["isa"], list) and cpu["usable_cores"] >= 1
    assert bench["onnxruntime"]["intra_op_threads"] == cpu["usable_cores"]
    assert "throughput (batch 1" in result.stderr and "ONNX Runtime FP32" in result.stderr
    # How and under what load: the method a report compares rows by, and the machine meanwhile.
    assert bench["method"] == {"iterations": 6, "warmup": 2, "batch": 1, "hint": "LATENCY",
                               "threads": latency["resolved"]["INFERENCE_NUM_THREADS"],
                               "streams": latency["resolved"]["NUM_STREAMS"]}
    measured = bench["measured"]
    assert measured["host"] and measured["started"] <= measured["ended"] and measured["threads"] == cpu["usable_cores"]
    assert len(measured["load_before"]) == len(measured["load_after"]) == 3
    assert isinstance(measured["contended"], bool) and measured["contended"] == bool(measured["why"])
    assert measured["other_optbuild_processes"] >= 0 and bench["remeasure"] is None


TORCH_RECIPE = """\
# @package _global_
defaults:
  - override /precision: fp32
  - _self_
model:
  source: torchvision
  name: mobilenet_v3_small
  weights: null
  inputs: [{name: input, shape: [1, 3, 64, 64]}]
  preprocess: {resize: 72, crop: 64}
"""


def test_torch_source_is_also_timed_in_torch_eager(cli, recipe_dir: Path, tmp_path: Path):
    (recipe_dir / "small_torch.yaml").write_text(TORCH_RECIPE)
    result = cli("recipe=small_torch", *QUICK)
    assert result.returncode == 0, result.stderr
    bench = manifest_of(tmp_path / "outputs/small_torch/intel-fp32/v1")["benchmark"]
    check_latency(bench["baseline_torch_eager"], 6)
    assert bench["speedup_latency_vs_torch"] == pytest.approx(
        bench["baseline_torch_eager"]["median_ms"] / bench["artifact"]["median_ms"])
    assert bench["torch"]["threads"] == bench["cpu"]["usable_cores"] and bench["torch"]["inference_mode"] is True
    assert bench["speedup_throughput_vs_torch"] > 0
    assert "torch eager" in result.stderr
