"""Runtime tuning (intel) through the real CLI: the measured best candidate wins, its settings
ship in runtime.json and are what the benchmark measures; bad settings fail before any work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import manifest_of

from optbuild.core.digest import sha256_file

NO_EVAL = ("validate.enabled=false", "benchmark.enabled=false")


def distinct(tuning: dict) -> list[dict]:
    return [c for c in tuning["candidates"] if "same_as" not in c]


def check_choice(tuning: dict, metric: str, higher_is_better: bool) -> dict:
    """The chosen setting is the best measured one, unless none beat the defaults (then the
    defaults are kept, and the record says why)."""
    sign = 1 if higher_is_better else -1
    measured = distinct(tuning)
    top = max(measured, key=lambda c: sign * c[metric])
    chosen = tuning["chosen"]
    if chosen["default"]:
        beaten = sign * top[metric] > sign * tuning["default"][metric]
        assert not beaten or tuning["confirmation"]["gain"] <= 1.0
        assert tuning["gain_vs_default"] == 1.0
    else:
        assert chosen[metric] == top[metric]
        assert tuning["candidates"][chosen["index"]][metric] == top[metric]
        assert tuning["gain_vs_default"] == tuning["confirmation"]["gain"] > 1.0
    return chosen


def test_throughput_tuning_ships_the_best_measured_setting(cli, tmp_path: Path):
    result = cli("recipe=tiny_int8", "tune.enabled=true", "tune.objective=throughput", "tune.hints=[THROUGHPUT]",
                 "tune.streams=[1,2]", "tune.batches=[1,4]", "tune.seconds=0.2", "validate.enabled=false",
                 "benchmark.iterations=3", "benchmark.warmup=1", "benchmark.throughput_seconds=0.2")
    assert result.returncode == 0, result.stderr
    version = tmp_path / "outputs/tiny_int8/intel-int8/v1"
    manifest = manifest_of(version)
    names = [s["name"] for s in manifest["stages"]]
    assert names.index("tune") == names.index("build") + 1
    tuning = manifest["tuning"]
    # streams × batches × (device default, f32, ...): at least 4 settings, each measured or a duplicate
    assert len(tuning["candidates"]) >= 4 and tuning["objective"] == "throughput"
    for candidate in tuning["candidates"]:
        assert candidate["properties"]["PERFORMANCE_HINT"] == "THROUGHPUT"
        assert "samples_per_s" in candidate or isinstance(candidate["same_as"], (int, str))
    chosen = check_choice(tuning, "samples_per_s", higher_is_better=True)
    assert tuning["default"]["properties"] == {}  # int8: OpenVINO's own defaults
    # The shipped runtime.json is the tuned one, recorded under its own digest.
    runtime = json.loads((version / "runtime.json").read_text())
    assert runtime == tuning["runtime"]
    assert runtime["properties"] == chosen["properties"] and runtime["batch"] == chosen["batch"]
    assert runtime["objective"] == "throughput" and runtime["device"] == "CPU"
    artifact = {a["path"]: a for a in manifest["artifacts"]}["runtime.json"]
    assert artifact["sha256"] == sha256_file(version / "runtime.json")
    # The benchmark measures the artifact's throughput as tuned.
    bench = manifest["benchmark"]
    assert bench["runtime"]["tuned_for"] == "throughput"
    assert bench["runtime"]["throughput"]["properties"] == runtime["properties"]
    assert bench["throughput"]["artifact"]["batch"] == runtime["batch"]
    assert "tuned for throughput" in result.stderr
    assert manifest["runtime"] == runtime
    # verify: the model files come from `build`, runtime.json from `tune`; both chain.
    checked = cli("verify", str(version))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "artifacts from 'build, tune'" in checked.stdout


def test_latency_tuning_searches_batch_one_only(cli, tmp_path: Path):
    result = cli("recipe=tiny", "tune.enabled=true", "tune.objective=latency", "tune.streams=[0,2]",
                 "tune.seconds=0.2", *NO_EVAL)
    assert result.returncode == 0, result.stderr
    tuning = manifest_of(tmp_path / "outputs/tiny/intel-fp32/v1")["tuning"]
    assert {c["batch"] for c in tuning["candidates"]} == {1}
    # fp32 promises f32 compute: every candidate keeps it.
    assert {c["resolved"]["INFERENCE_PRECISION_HINT"] for c in tuning["candidates"]} == {"f32"}
    assert len(tuning["candidates"]) == 4  # 2 hints × 2 streams × 1 batch × f32
    check_choice(tuning, "median_ms", higher_is_better=False)





@pytest.mark.parametrize("precision, capabilities, expected", [
    ("fp32", ["FP32", "BF16", "FP16"], ["f32"]),
    ("bf16", ["FP32", "BF16"], ["bf16"]),
    ("bf16", ["FP32"], [None]),  # not native: the build's own setting, resolved by the device
    ("fp16", ["FP32", "BF16"], [None]),
    ("fp16", ["FP32", "FP16"], ["f16"]),
    ("int8", ["FP32", "INT8"], [None, "f32"]),
    ("int8", ["FP32", "BF16", "INT8"], [None, "f32", "bf16"]),
])
def test_default_inference_precisions_never_go_below_the_build(precision, capabilities, expected):
    from optbuild.config.choices import ALLOWED_INFERENCE_PRECISIONS, PrecisionName
    from optbuild.stages.intel.cpu import default_inference_precisions

    chosen = default_inference_precisions(precision, capabilities)
    assert chosen == expected
    assert all(p is None or p in ALLOWED_INFERENCE_PRECISIONS[PrecisionName(precision)] for p in chosen)
