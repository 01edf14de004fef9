"""Every target × precision × engine mode plans, without a GPU probe: stage order, what each
stage reads, what the artifact is made of, which manifest fields the stages report."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from optbuild.config.choices import Engine, PrecisionName, TargetName
from optbuild.config.compose import compose
from optbuild.config.recipes import discover
from optbuild.core.digest import canonical_json
from optbuild.errors import OptbuildError
from optbuild.planning import TARGETS, FixedHost, plan
from optbuild.publish.manifest import FIELDS

NO_GPU = FixedHost(missing=("no NVIDIA GPU driver (libcuda) was found",))
GPU = FixedHost(gpu_facts={"name": "NVIDIA H100", "compute_capability": "9.0"})

EXPECTED = {
    # (target, engine builds?) -> stages after source, surgery
    ("intel", False): ["quantize", "build", "validate", "benchmark"],
    ("nvidia", False): ["precision", "cpu_proxy", "kit"],
    ("nvidia", True): ["precision", "cpu_proxy", "engine", "validate", "benchmark"],
}
ARTIFACT = {
    ("intel", False): {"model.xml": "build", "model.bin": "build", "runtime.json": "build"},
    ("nvidia", False): dict.fromkeys(["model.onnx", "build_spec.json", "trtexec.sh", "build_engine.py", "samples.json",
                                      "reference.json", "check_engine.py"], "kit"),
    ("nvidia", True): dict.fromkeys(["model.plan", "model.onnx", "build_spec.json", "engine.json", "timing.cache"],
                                    "engine"),
}


@pytest.fixture(scope="module")
def recipes(small_recipe_dir: Path) -> dict:
    return discover((small_recipe_dir,))


CASES = [(t, p, e) for t, p, e in itertools.product(TargetName, PrecisionName, Engine)
         if not (t is TargetName.intel and (e is Engine.build or p.nvidia_only))]  # fp8, int4: nvidia only


@pytest.mark.parametrize(("target", "precision", "engine"), CASES, ids=lambda v: v.value)
def test_plan_table(recipes: dict, small_recipe_dir: Path, target: TargetName, precision: PrecisionName, engine: Engine) -> None:
    config, _ = compose("small", [f"target={target.value}", f"precision={precision.value}",
                                  f"target.engine={engine.value}"], recipes)
    builds = target is TargetName.nvidia and engine is not Engine.kit
    built = plan(config, GPU if builds else NO_GPU)
    assert built.target is target
    assert built.names() == ["source", "surgery", *EXPECTED[(target.value, builds)]]
    assert {name: source.stage for name, source in built.artifact.items()} == ARTIFACT[(target.value, builds)]
    specs = {spec.name: spec for spec in built.stages}
    # What each stage reads comes from an earlier stage's declared outputs (Plan checks order).
    first = specs[built.names()[2]]
    assert first.inputs["model.onnx"] == ("surgery", "model.onnx")
    reported = {field for spec in built.stages for field in spec.reports}
    assert reported <= set(FIELDS) | set(built.manifest)
    assert {"surgery", "quantization", "validation" if target is TargetName.intel else "cpu_proxy"} <= reported
    # The calibration set is a dependency of the quantizing stage for int8/fp8 (and int4 with AWQ)
    # only; its location (paths) never enters the key, its fingerprint does.
    quantizer = specs["quantize" if target is TargetName.intel else "precision"]
    assert ("calibration" in quantizer.deps) == (config.calibrates() or (
        target is TargetName.nvidia and precision is PrecisionName.fp16))
    for spec in built.stages:  # where files are never enters a key
        material = spec.material({name: "0" * 64 for name in spec.inputs})
        assert set(material.external) == set(spec.deps)
        assert str(small_recipe_dir.parent) not in canonical_json(material.as_json())
    if builds:
        assert specs["engine"].deps["gpu"].fingerprint["name"] == "NVIDIA H100"
        assert built.manifest["engine_built"] is True
    elif target is TargetName.nvidia:
        assert built.manifest["engine_built"] is False and "build kit" in built.manifest["statement"]


def test_int4_with_round_to_nearest_needs_no_calibration_set(recipes: dict) -> None:
    config, _ = compose("small", ["target=nvidia", "target.engine=kit", "precision=int4", "calibration.dataset=null",
                                  "target.tensorrt.int4_method=rtn_dq", "target.tensorrt.int4_block_size=64"], recipes)
    precision = {spec.name: spec for spec in plan(config, NO_GPU).stages}["precision"]
    assert "calibration" not in precision.deps and "nvidia-modelopt" in precision.tools
    assert precision.params["quantizer"] == {"mode": "int4", "calibration_method": "rtn_dq", "block_size": 64}


@pytest.mark.parametrize("target", ["intel", "nvidia"])
def test_remeasure_changes_only_the_benchmark_key(recipes: dict, target: str) -> None:
    host = GPU if target == "nvidia" else NO_GPU  # nvidia benchmarks an engine built here

    def keys(*overrides: str) -> dict[str, str]:
        config, _ = compose("small", [f"target={target}", *overrides], recipes)
        return {spec.name: canonical_json(spec.material({}).as_json()) for spec in plan(config, host).stages}

    before, after, number = keys(), keys("benchmark.remeasure=2026-11-29"), keys("benchmark.remeasure=7")
    assert [name for name in before if before[name] != after[name]] == ["benchmark"]
    assert after["benchmark"] != number["benchmark"] and '"remeasure":"7"' in number["benchmark"]


@pytest.mark.parametrize("engine", [Engine.auto, Engine.build])
def test_nvidia_engine_without_a_gpu_fails_before_any_stage(recipes: dict, engine: Engine) -> None:
    config, _ = compose("small", ["target=nvidia", f"target.engine={engine.value}"], recipes)
    with pytest.raises(OptbuildError, match="cannot build the TensorRT engine here: no NVIDIA GPU driver .*"
                                            "target.engine=kit"):
        plan(config, NO_GPU)


def test_options_that_add_stages(recipes: dict) -> None:
    config, _ = compose("small", ["precision=int8", "tune.enabled=true", "benchmark.enabled=false"], recipes)
    built = plan(config, NO_GPU)
    assert built.names() == ["source", "surgery", "quantize", "build", "tune", "validate"]
    assert built.artifact["runtime.json"] == ("tune", "runtime.json")  # the tuned one ships
    specs = {spec.name: spec for spec in built.stages}
    assert specs["validate"].inputs["runtime.json"] == ("tune", "runtime.json")
    assert specs["tune"].unstable == ("runtime.json",)
    config, _ = compose("small", ["precision=int8", "quantize.accuracy_control.enabled=true"], recipes)
    quantize = {spec.name: spec for spec in plan(config, NO_GPU).stages}["quantize"]
    assert set(quantize.deps) == {"calibration", "validation"}
    assert quantize.params["accuracy_control"]["enabled"] is True
    config, _ = compose("small", ["validate.enabled=false", "benchmark.enabled=false"], recipes)
    assert plan(config, NO_GPU).names() == ["source", "surgery", "quantize", "build"]


def test_a_dataset_location_is_not_in_the_key(recipes: dict, tmp_path: Path) -> None:
    """The same npz at two paths: the same keys; other contents: another key."""
    import numpy as np

    data = np.random.default_rng(0).standard_normal((4, 3, 32, 32)).astype(np.float32)
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        np.savez(tmp_path / name / "calib.npz", x=data)
    keys = []
    for name in ("a", "b"):
        config, _ = compose("small", ["precision=int8", "calibration.dataset=npz", "calibration.num_samples=4",
                                      f"calibration.path={tmp_path / name / 'calib.npz'}"], recipes)
        quantize = {spec.name: spec for spec in plan(config, NO_GPU).stages}["quantize"]
        assert quantize.worker_params()["calibration"]["path"] == str(tmp_path / name / "calib.npz")
        keys.append(quantize.material({"model.onnx": "0" * 64}).key())
    assert keys[0] == keys[1]
    np.savez(tmp_path / "b" / "calib.npz", x=data + 1)
    config, _ = compose("small", ["precision=int8", "calibration.dataset=npz", "calibration.num_samples=4",
                                  f"calibration.path={tmp_path / 'b' / 'calib.npz'}"], recipes)
    quantize = {spec.name: spec for spec in plan(config, NO_GPU).stages}["quantize"]
    assert quantize.material({"model.onnx": "0" * 64}).key() != keys[0]


def test_every_target_has_a_planner() -> None:
    assert set(TARGETS) == set(TargetName)
