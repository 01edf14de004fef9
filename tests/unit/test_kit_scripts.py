"""The build kit's scripts, checked without TensorRT: every trtexec flag they use exists in
trtexec 10.0, 10.8, 10.13 and 11.1 (tests/data/trtexec_flags.json, extracted from each release's
samples/common/sampleOptions.cpp by tools/trtexec_flags.py), profiles are numbered as trtexec
requires, the shell script parses and refuses a changed model, and build_engine.py compiles."""

from __future__ import annotations

import json
import py_compile
import runpy
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import REPO
from onnx import TensorProto, helper, numpy_helper

from optbuild.config.compose import compose
from optbuild.config.recipes import discover
from optbuild.planning import FixedHost, plan
from optbuild.stages.nvidia.kit import BUILD_DIR, TRTEXEC, make_kit

FLAGS = json.loads((REPO / "tests/data/trtexec_flags.json").read_text())["releases"]
NO_GPU = FixedHost(missing=("no NVIDIA GPU driver (libcuda) was found",))


def dynamic_model(path: Path, width: int = 4, outputs: int = 2) -> Path:
    """[batch, width] -> [batch, outputs], batch dynamic."""
    weight = numpy_helper.from_array(np.ones((width, outputs), np.float32), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "dyn",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", width])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", outputs])], [weight])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def kit_params(tmp_path: Path, model: Path, *overrides: str, width: int = 4) -> dict:
    recipe = tmp_path / "recipes"
    recipe.mkdir(exist_ok=True)
    (recipe / "dyn.yaml").write_text(
        "# @package _global_\n"
        f"model: {{source: onnx, name: dyn, path: {model}, task: generic, output_names: [y],\n"
        f"        inputs: [{{name: x, shape: [batch, {width}], dims: {{batch: {{min: 1, opt: 4, max: 16}}}}}}]}}\n"
        "calibration: {dataset: synthetic, num_samples: 4}\n"
        "validate: {dataset: synthetic, num_samples: 4}\n")
    config, _ = compose("dyn", ["target=nvidia", "target.engine=kit", *overrides], discover((recipe,)))
    kit = next(spec for spec in plan(config, NO_GPU).stages if spec.name == "kit")
    return kit.params


@pytest.fixture()
def kit(tmp_path: Path) -> Path:
    model = dynamic_model(tmp_path / "model.onnx")
    out = tmp_path / "kit"
    out.mkdir()
    make_kit({"model.onnx": str(model)}, kit_params(tmp_path, model), str(out))
    return out


def command_flags(script: str) -> list[str]:
    line = next(line for line in script.splitlines() if line.startswith("trtexec "))
    return [token.split("=", 1)[0] for token in line.split() if token.startswith("--")]


@pytest.mark.parametrize("release", sorted(FLAGS))
def test_every_trtexec_flag_exists_in_each_supported_release(kit: Path, release: str):
    used = set(command_flags((kit / TRTEXEC).read_text()))
    assert {"--stronglyTyped", "--profile", "--minShapes", "--verbose"} <= used
    assert used <= set(FLAGS[release]["flags"]), used - set(FLAGS[release]["flags"])
    assert not used & {"--int8", "--fp16", "--best", "--bf16", "--fp8"}  # precision is in the graph


def test_each_profile_follows_its_index(tmp_path: Path):
    model = dynamic_model(tmp_path / "model.onnx")
    profiles = ("target.tensorrt.profiles=[{shapes: [{input: x, min: [1, 4], opt: [1, 4], max: [1, 4]}]},"
                "{shapes: [{input: x, min: [2, 4], opt: [8, 4], max: [16, 4]}]}]")
    out = tmp_path / "kit"
    out.mkdir()
    make_kit({"model.onnx": str(model)}, kit_params(tmp_path, model, profiles), str(out))
    script = (out / TRTEXEC).read_text()
    assert ("--profile=0 --minShapes=x:1x4 --optShapes=x:1x4 --maxShapes=x:1x4 "
            "--profile=1 --minShapes=x:2x4 --optShapes=x:8x4 --maxShapes=x:16x4") in script


def test_scripts_parse_and_write_only_into_the_build_folder(kit: Path):
    script = (kit / TRTEXEC).read_text()
    subprocess.run(["bash", "-n", str(kit / TRTEXEC)], check=True)
    py_compile.compile(str(kit / "build_engine.py"), doraise=True)
    outputs = [token for token in script.split() if token.startswith(("--saveEngine", "--exportLayerInfo",
                                                                       "--timingCacheFile"))]
    assert len(outputs) == 3 and all(token.split("=", 1)[1].startswith(f"{BUILD_DIR}/") for token in outputs)
    assert f"tee {BUILD_DIR}/trtexec.log" in script


def test_trtexec_script_refuses_a_model_that_is_not_the_kits(kit: Path, tmp_path: Path):
    """A fake trtexec on PATH records that it ran; a changed model.onnx stops the script first."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "trtexec"
    fake.write_text('#!/usr/bin/env bash\necho "ran $*"\n')
    fake.chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin"}
    ran = subprocess.run(["bash", str(kit / TRTEXEC)], capture_output=True, text=True, env=env)
    assert ran.returncode == 0 and "ran --onnx=model.onnx" in ran.stdout
    assert "ran --onnx" in (kit / BUILD_DIR / "trtexec.log").read_text()

    with open(kit / "model.onnx", "ab") as handle:
        handle.write(b"\0")
    refused = subprocess.run(["bash", str(kit / TRTEXEC)], capture_output=True, text=True, env=env)
    assert refused.returncode == 1 and "ran" not in refused.stdout
    assert "model.onnx does not match build_spec.json" in refused.stderr


def test_build_engine_refuses_a_model_that_is_not_the_kits_before_needing_tensorrt(kit: Path, capsys):
    from optbuild.stages.nvidia import engine

    with open(kit / "model.onnx", "ab") as handle:
        handle.write(b"\0")
    assert engine.main(["--spec", str(kit / "build_spec.json"), "--onnx", str(kit / "model.onnx"),
                        "--out-dir", str(kit / BUILD_DIR)]) == 1
    assert "model.onnx does not match build_spec.json" in capsys.readouterr().err


def kit_stage(tmp_path: Path, model: Path, *overrides: str, width: int = 4):
    params = kit_params(tmp_path, model, *overrides, width=width)  # writes the recipe
    config, _ = compose("dyn", ["target=nvidia", "target.engine=kit", *overrides], discover((tmp_path / "recipes",)))
    return next(spec for spec in plan(config, NO_GPU).stages if spec.name == "kit"), params


def test_kit_ships_samples_and_fp32_outputs_and_its_check_flags_a_wrong_engine(tmp_path: Path, monkeypatch):
    from polygraphy.json import load_json

    from optbuild.stages.nvidia import check_engine

    model = dynamic_model(tmp_path / "model.onnx")
    spec, _ = kit_stage(tmp_path, model, "validate.min_cosine=0.999")
    out = tmp_path / "kit"
    out.mkdir()
    result = make_kit({"model.onnx": str(model), "reference.onnx": str(model)}, spec.worker_params(), str(out))
    assert {"samples.json", "reference.json", "check_engine.py"} <= set(result["files"])
    assert result["data"]["engine_check"]["min_cosine"] == 0.999  # the recipe's cosine gate
    samples, reference = load_json(str(out / "samples.json")), load_json(str(out / "reference.json"))
    assert len(samples) == len(reference["outputs"]) == 1 and samples[0]["x"].shape == (4, 4)  # 4 synthetic, batch opt 4
    np.testing.assert_allclose(reference["outputs"][0]["y"], samples[0]["x"] @ np.ones((4, 2)), rtol=1e-6)
    py_compile.compile(str(out / "check_engine.py"), doraise=True)
    (out / BUILD_DIR).mkdir()
    (out / BUILD_DIR / "model.plan").write_bytes(b"engine")
    (out / BUILD_DIR / "build_report.json").write_text(json.dumps({"tensorrt": "10.13"}))  # as build_engine.py leaves it
    shipped = runpy.run_path(str(out / "check_engine.py"))  # the kit's own copy, as a GPU machine runs it
    # TensorRT cannot run here: the engine's outputs are stood in for, right and then wrong.
    for outputs, code in ((reference["outputs"], 0), ([{"y": -o["y"]} for o in reference["outputs"]], 1)):
        monkeypatch.setitem(shipped["main"].__globals__, "_run", lambda path, feeds, outputs=outputs: outputs)
        assert shipped["main"]([]) == code
        report = json.loads((out / BUILD_DIR / "check.json").read_text())
        assert report["passed"] is (code == 0) and report["outputs"]["y"]["cosine_mean"] == pytest.approx(1 - 2 * code)
        build_report = json.loads((out / BUILD_DIR / "build_report.json").read_text())
        assert build_report["tensorrt"] == "10.13" and build_report["engine_check"] == report  # the build's record too
    assert check_engine.compare([{"y": np.ones((1, 2))}], [{"y": np.ones((1, 3))}], 0.9)["outputs"]["y"]["error"] \
        == "shape mismatch: (1, 2) vs (1, 3)"


def test_without_a_cosine_gate_the_engine_must_come_close_to_the_cpu_proxy(tmp_path: Path):
    model = dynamic_model(tmp_path / "model.onnx")
    spec, _ = kit_stage(tmp_path, model)
    out = tmp_path / "kit"
    out.mkdir()
    check = make_kit({"model.onnx": str(model), "reference.onnx": str(model)}, spec.worker_params(),
                     str(out))["data"]["engine_check"]
    assert check["min_cosine"] == pytest.approx(0.99) and "CPU proxy cosine" in check["min_cosine_from"]


def test_strict_fp32_reaches_trtexec_as_no_tf32(tmp_path: Path):
    model = dynamic_model(tmp_path / "model.onnx")
    for tf32, flag in (("true", False), ("false", True)):
        out = tmp_path / f"kit-{tf32}"
        out.mkdir()
        make_kit({"model.onnx": str(model)}, kit_params(tmp_path, model, f"target.tensorrt.tf32={tf32}"), str(out))
        assert ("--noTF32" in command_flags((out / TRTEXEC).read_text())) is flag


def test_an_int4_kit_is_strongly_typed_and_checks_its_engine_against_the_int4_graph(tmp_path: Path):
    """INT4 weight-only needs no precision flag either: --stronglyTyped keeps the INT4 weights."""
    from optbuild.stages.nvidia import int4

    model = dynamic_model(tmp_path / "model.onnx", width=256, outputs=256)
    quantized = tmp_path / "int4.onnx"
    int4.quantize(str(model), str(quantized), [], {"calibration_method": "rtn_dq", "block_size": 128})
    spec, _ = kit_stage(tmp_path, model, "precision=int4", "target.tensorrt.int4_method=rtn_dq", width=256)
    out = tmp_path / "kit"
    out.mkdir()
    result = make_kit({"model.onnx": str(quantized), "reference.onnx": str(model)}, spec.worker_params(), str(out))
    build_spec = json.loads((out / "build_spec.json").read_text())
    assert build_spec["precision"] == "int4" and not {"int4_method", "int4_block_size"} & set(build_spec["tensorrt"])
    used = set(command_flags((out / TRTEXEC).read_text()))
    assert "--stronglyTyped" in used and not used & {"--int8", "--fp16", "--best", "--bf16", "--fp8", "--int4"}
    assert all(used <= set(release["flags"]) for release in FLAGS.values())
    subprocess.run(["bash", "-n", str(out / TRTEXEC)], check=True)
    py_compile.compile(str(out / "build_engine.py"), doraise=True)
    # The engine check's fallback threshold comes from the INT4 graph on ONNX Runtime (a ones weight: exact in INT4).
    assert result["data"]["engine_check"]["min_cosine"] == pytest.approx(0.99, abs=1e-6)
