"""`optbuild deploy`: real artifacts (an OpenVINO IR with a fixed and with a dynamic batch, a TensorRT
kit) become Triton and OVMS repositories; Triton's configs are parsed with Triton's own schema, the
OVMS layout is loaded and run the way the server does."""

from __future__ import annotations

import hashlib
import json
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest
from conftest import error_line
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from optbuild.cli import main
from optbuild.core.files import write_json
from optbuild.publish.provenance import statement

pytestmark = pytest.mark.xdist_group("deploy")  # the artifacts are built once, for the module

DYNAMIC = ("passes=[fold_constants,cleanup,dynamic_batch]",
           "model.inputs=[{name:input,shape:[-1,3,32,32],dims:{0:{min:1,opt:2,max:16}}}]")
QUICK = ("benchmark.enabled=false", "progress=false")


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory, small_recipe_dir: Path) -> Path:
    """small intel-fp32 v1 (batch fixed at 1) and v2 (dynamic batch, 1..16), and the nvidia-fp32 kit
    (dynamic batch, profile max 16)."""
    folder = tmp_path_factory.mktemp("deploy")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OPTBUILD_RECIPE_PATH", str(small_recipe_dir))
        patch.chdir(folder)
        assert main(["recipe=small", *QUICK]) == 0
        assert main(["recipe=small", *DYNAMIC, *QUICK]) == 0
        assert main(["recipe=small", "target=nvidia", "target.engine=kit", *DYNAMIC, *QUICK]) == 0
    return folder / "outputs/small"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def triton_config(path: Path) -> model_config_pb2.ModelConfig:
    return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())


def tensors(items) -> list[tuple[str, str, list[int]]]:
    return [(t.name, model_config_pb2.DataType.Name(t.data_type), list(t.dims)) for t in items]


def test_fixed_batch_ir_becomes_a_triton_openvino_model(run, outputs: Path, tmp_path: Path):
    artifact = outputs / "intel-fp32/v1"
    result = run("deploy", str(artifact), "--to", "triton", "repo")
    assert result.returncode == 0, result.stderr
    config = triton_config(tmp_path / "repo/small/config.pbtxt")
    assert config.name == "small" and config.backend == "openvino" and config.platform == ""
    assert config.max_batch_size == 0 and config.WhichOneof("scheduling_choice") is None  # whole shapes
    # the artifact takes 8-bit NHWC pixels (serve.embed_preprocess): so does the server
    assert tensors(config.input) == [("input", "TYPE_UINT8", [1, 32, 32, 3])]
    assert tensors(config.output) == [("logits", "TYPE_FP32", [1, 10])]
    assert [(g.count, g.kind) for g in config.instance_group] == [(1, model_config_pb2.ModelInstanceGroup.KIND_CPU)]
    # The f32 hint the artifact was validated with has no Triton openvino parameter: said, and recorded.
    assert "INFERENCE_PRECISION_HINT=f32" in result.stderr and "PERFORMANCE_HINT" not in config.parameters
    version = tmp_path / "repo/small/1"
    assert sorted(p.name for p in version.iterdir()) == ["model.bin", "model.xml", "optbuild.json"]
    for name in ("model.xml", "model.bin"):
        copied = version / name
        assert not copied.is_symlink() and stat.S_IMODE(copied.stat().st_mode) == 0o644
        assert sha256(copied) == sha256(artifact / name)
    record = json.loads((version / "optbuild.json").read_text())
    assert record["artifact"] == {"recipe": "small", "target": "intel", "precision": "fp32", "version": 1,
                                  "kind": "OpenVINO IR", "manifest_sha256": sha256(artifact / "manifest.json")}
    assert {f["path"]: f["sha256"] for f in record["files"]} == {n: sha256(artifact / n) for n in ("model.xml",
                                                                                                    "model.bin")}
    assert record["not_applied"] == {"INFERENCE_PRECISION_HINT": "f32"} and record["interface_from"] == "manifest interface"
    again = run("deploy", str(artifact), "--to", "triton", "repo")
    assert again.returncode == 0 and "unchanged" in again.stdout


def test_dynamic_batch_gets_dynamic_batching_up_to_the_recipe_range(run, outputs: Path, tmp_path: Path):
    result = run("deploy", str(outputs / "intel-fp32/latest"), "--to", "triton", "repo", "--name", "dyn")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "repo/dyn/2/model.xml").is_file()  # latest is v2: its version by default
    config = triton_config(tmp_path / "repo/dyn/config.pbtxt")
    assert config.max_batch_size == 16 and config.HasField("dynamic_batching")
    assert tensors(config.input) == [("input", "TYPE_UINT8", [32, 32, 3])]  # without the batch axis
    assert tensors(config.output) == [("logits", "TYPE_FP32", [10])]
    assert run("deploy", str(outputs / "intel-fp32/v2"), "--to", "triton", "repo", "--name", "dyn4",
               "--max-batch", "4").returncode == 0
    assert triton_config(tmp_path / "repo/dyn4/config.pbtxt").max_batch_size == 4


def test_kit_becomes_a_tensorrt_model_waiting_for_its_engine(run, outputs: Path, tmp_path: Path):
    kit = outputs / "nvidia-fp32/v1"
    result = run("deploy", str(kit), "--to", "triton", "repo")
    assert result.returncode == 0, result.stderr
    config = triton_config(tmp_path / "repo/small/config.pbtxt")
    assert config.platform == "tensorrt_plan" and config.backend == ""
    assert config.max_batch_size == 16 and config.HasField("dynamic_batching")  # the kit's profile max
    assert tensors(config.input) == [("input", "TYPE_UINT8", [32, 32, 3])]
    assert [g.kind for g in config.instance_group] == [model_config_pb2.ModelInstanceGroup.KIND_GPU]
    version = tmp_path / "repo/small/1"
    assert sorted(p.name for p in version.iterdir()) == ["README.md", "optbuild.json"]  # no pretend plan
    readme = (version / "README.md").read_text()
    assert "bash trtexec.sh" in readme and "build/model.plan" in readme and "--engine" in readme
    assert "NO ENGINE YET" in result.stdout
    assert "at most 16" in error_line(run("deploy", str(kit), "--to", "triton", "other", "--max-batch", "32"))
    # The engine built from the kit on a GPU machine joins the same version, without --force.
    (kit / "build").mkdir()
    (kit / "build/model.plan").write_bytes(b"a serialized engine")
    try:
        placed = run("deploy", str(kit), "--to", "triton", "repo", "--engine", str(kit / "build/model.plan"))
    finally:
        shutil.rmtree(kit / "build")
    assert placed.returncode == 0, placed.stderr
    assert sorted(p.name for p in version.iterdir()) == ["model.plan", "optbuild.json"]
    record = json.loads((version / "optbuild.json").read_text())
    assert record["files"] == [{"path": "model.plan", "sha256": hashlib.sha256(b"a serialized engine").hexdigest(),
                                "bytes": 19, "from": "--engine"}]


def serve_like_ovms(repository: Path, batch: int) -> tuple[dict, np.ndarray, object]:
    """What OVMS does with config.json: each model's newest numeric version under base_path (relative
    to the config file), read, compiled with target_device and plugin_config, run once."""
    import openvino as ov

    entry = json.loads((repository / "config.json").read_text())["model_config_list"][-1]["config"]
    base = repository / entry["base_path"]
    newest = max((p for p in base.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    core = ov.Core()
    compiled = core.compile_model(core.read_model(str(newest / "model.xml")), entry["target_device"],
                                  entry.get("plugin_config", {}))
    port = compiled.input(0)
    shape = [batch if d.is_dynamic else d.get_length() for d in port.get_partial_shape()]
    data = np.random.default_rng(0).standard_normal(shape).astype(port.get_element_type().to_dtype())
    return entry, compiled(data)[compiled.output(0)], compiled


def test_ovms_repository_loads_and_runs_as_the_server_does(run, outputs: Path, tmp_path: Path):
    result = run("deploy", str(outputs / "intel-fp32/v1"), "--to", "ovms", "models")
    assert result.returncode == 0, result.stderr
    entry, logits, compiled = serve_like_ovms(tmp_path / "models", batch=1)
    assert entry == {"name": "small", "base_path": "small", "target_device": "CPU",
                     "plugin_config": {"INFERENCE_PRECISION_HINT": "f32"}}
    assert logits.shape == (1, 10) and np.isfinite(logits).all()
    assert str(compiled.get_property("INFERENCE_PRECISION_HINT")) == "<Type: 'float32'>"  # runs as validated
    record = json.loads((tmp_path / "models/small/1/optbuild.json").read_text())
    assert record["artifact"]["manifest_sha256"] == sha256(outputs / "intel-fp32/v1/manifest.json")
    # A second model joins the same config.json; the first keeps its entry.
    assert run("deploy", str(outputs / "intel-fp32/v2"), "--to", "ovms", "models", "--name", "dyn").returncode == 0
    names = [m["config"]["name"] for m in json.loads((tmp_path / "models/config.json").read_text())["model_config_list"]]
    assert names == ["small", "dyn"]
    _, batched, _ = serve_like_ovms(tmp_path / "models", batch=3)
    assert batched.shape == (3, 10)


def test_a_tampered_artifact_is_not_deployed(run, outputs: Path, tmp_path: Path):
    copy = tmp_path / "outputs/small/intel-fp32/v1"
    shutil.copytree(outputs / "intel-fp32/v1", copy)
    data = bytearray((copy / "model.bin").read_bytes())
    data[100] ^= 0xFF
    (copy / "model.bin").write_bytes(bytes(data))
    line = error_line(run("deploy", str(copy), "--to", "triton", "repo"))
    assert "model.bin: changed" in line and "optbuild verify" in line
    assert not (tmp_path / "repo/small").exists()


def test_a_manifest_interface_is_preferred_to_the_model_file(run, outputs: Path, tmp_path: Path):
    """The interface a build records (the manifest's `interface`) is what the server is told."""
    copy = tmp_path / "outputs/small/intel-fp32/v1"
    shutil.copytree(outputs / "intel-fp32/v1", copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["interface"] = {"inputs": [{"name": "input", "dtype": "float32", "shape": [1, 3, 32, 32]}],
                             "outputs": [{"name": "logits", "dtype": "float16", "shape": [1, 10]}]}
    write_json(copy / "manifest.json", manifest)
    write_json(copy / "provenance.json", statement(manifest))  # as a build that records it would
    result = run("deploy", str(copy), "--to", "triton", "repo")
    assert result.returncode == 0, result.stderr
    assert tensors(triton_config(tmp_path / "repo/small/config.pbtxt").output) == [("logits", "TYPE_FP16", [1, 10])]
    assert json.loads((tmp_path / "repo/small/1/optbuild.json").read_text())["interface_from"] == "manifest interface"


def test_one_line_refusals(run, outputs: Path, tmp_path: Path):
    kit, ir = str(outputs / "nvidia-fp32/v1"), str(outputs / "intel-fp32/v1")
    assert "serves OpenVINO IR only" in error_line(run("deploy", kit, "--to", "ovms", "models"))
    assert not (tmp_path / "models/small").exists()
    assert "unknown --to 'kserve'" in error_line(run("deploy", ir, "--to", "kserve", "repo"))
    assert "needs one repository directory" in error_line(run("deploy", ir, "--to", "triton"))
    assert "not an artifact version" in error_line(run("deploy", str(outputs), "--to", "triton", "repo"))
    assert "does not exist" in error_line(run("deploy", ir, "--to", "triton", "no/such/parent/repo"))
    assert "--engine is for a TensorRT kit" in error_line(run("deploy", ir, "--to", "triton", "repo", "--engine", ir))
    # A version folder holding another deployment is replaced only with --force.
    assert run("deploy", ir, "--to", "triton", "repo").returncode == 0
    dynamic = str(outputs / "intel-fp32/v2")
    assert "--force" in error_line(run("deploy", dynamic, "--to", "triton", "repo", "--version", "1"))
    replaced = run("deploy", dynamic, "--to", "triton", "repo", "--version", "1", "--force")
    assert replaced.returncode == 0 and "replaced" in replaced.stdout
    assert json.loads((tmp_path / "repo/small/1/optbuild.json").read_text())["artifact"]["version"] == 2
