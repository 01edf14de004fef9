"""`optbuild inspect` on ONNX files, OpenVINO IRs and artifacts; an outside ONNX file built to a
dynamic-batch INT8 artifact by a recipe alone."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import real_models
from conftest import REPO, error_line, tiny_recipe

# Its module fixtures are expensive: its tests share one worker (make test: --dist loadgroup).
pytestmark = pytest.mark.xdist_group("inspect")



@pytest.fixture(scope="session")
def effnet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return real_models.efficientnet_lite0(tmp_path_factory.getbasetemp() / "real_models")


def inspect_json(cli, *args: str) -> dict:
    result = cli("inspect", *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_inspect_an_onnx_file_without_importing_torch(cli, effnet: Path, tmp_path: Path):
    probe = ("import sys; from optbuild.cli import main; rc = main(['inspect', %r]);"
             " print('HEAVY', [m for m in ('torch', 'openvino', 'nncf') if m in sys.modules]); sys.exit(rc)" % str(effnet))
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=cli.env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout
    assert "input: float32[1,3,224,224]" in result.stdout and "opset: ai.onnx 17" in result.stdout
    assert "quantization: none" in result.stdout

    facts = inspect_json(cli, str(effnet))
    assert facts["opsets"] == {"ai.onnx": 17}
    assert facts["inputs"] == [{"name": "input", "dtype": "float32", "shape": [1, 3, 224, 224]}]
    assert facts["outputs"][0]["name"] == "logits" and facts["outputs"][0]["shape"][1] == 1000
    assert facts["ops"]["Conv"] == 49 and facts["ops"]["Pad"] == 17 and facts["nodes"] == sum(facts["ops"].values())
    # EfficientNet-Lite0 has 4.65 M weights (conv, classifier); float32 is 4 bytes each.
    params = facts["parameters"]
    assert 4.6e6 < params["by_dtype"]["float32"] < 4.7e6
    assert params["bytes"] >= 4 * params["by_dtype"]["float32"]
    assert facts["quantization"] == {}


def test_dynamic_batch_int8_from_an_outside_onnx_file_by_recipe_alone(cli, recipe_dir: Path, tiny_onnx: Path,
                                                                     tmp_path: Path):
    assert not tiny_onnx.resolve().is_relative_to(REPO)
    (recipe_dir / "outside.yaml").write_text(tiny_recipe(
        tiny_onnx, precision="int8", name="outside", benchmark="{enabled: false}",
        passes="[fold_constants, cleanup, dynamic_batch]"))
    result = cli("recipe=outside")
    assert result.returncode == 0, result.stderr
    artifact = tmp_path / "outputs/outside/intel-int8"

    facts = inspect_json(cli, str(artifact))
    assert (facts["recipe"]["name"], facts["target"], facts["precision"], facts["version"]) == ("outside", "intel", "int8", 1)
    batch = facts["surgery"][2]
    assert batch["pass"] == "dynamic_batch" and batch["verified"] is True
    assert batch["io_before"]["inputs"][0]["shape"] == [1, 3, 32, 32]
    assert batch["io_after"]["inputs"][0]["shape"] == ["batch", 3, 32, 32]
    model = facts["model"]
    # the IR keeps the dynamic batch and takes 8-bit NHWC pixels (serve.embed_preprocess by default)
    assert model["kind"] == "openvino" and model["inputs"][0]["shape"] == ["?", 32, 32, 3]
    assert facts["interface"]["inputs"][0]["dynamic"] == {"0": [1, 1 << 20]}
    assert model["quantization"]["FakeQuantize"]["256 levels"] > 0

    text = cli("inspect", str(artifact)).stdout
    assert "3. dynamic_batch(dim_name=\"batch\")" in text
    assert "inputs: input: float32[1,3,32,32]  ->  input: float32[batch,3,32,32]" in text
    assert "outside intel-int8 v1" in text and "FakeQuantize" in text

    # The stage outputs, from the build cache: the ONNX before and after surgery.
    assert inspect_json(cli, str(artifact), "--stage", "source")["inputs"][0]["shape"] == [1, 3, 32, 32]
    assert inspect_json(cli, str(artifact), "--stage=surgery")["inputs"][0]["shape"] == ["batch", 3, 32, 32]
    assert "stages with one: source, surgery" in error_line(cli("inspect", str(artifact), "--stage", "build"))

    # The artifact runs at any batch, through the load API too.
    import openvino as ov

    import optbuild

    compiled = ov.Core().compile_model(str(artifact / "latest/model.xml"), "CPU")
    x = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    assert compiled(x)[0].shape == (3, 10)
    assert optbuild.load(artifact)(x)["logits"].shape == (3, 10)
    assert inspect_json(cli, str(artifact / "latest/model.xml"))["inputs"][0]["shape"] == ["?", 32, 32, 3]


def test_inspect_errors_are_one_line(cli, tmp_path: Path):
    assert "does not exist" in error_line(cli("inspect", str(tmp_path / "nope.onnx")))
    junk = tmp_path / "junk.onnx"
    junk.write_text("not a model")
    assert "is not an ONNX model" in error_line(cli("inspect", str(junk)))
    assert "is not an artifact directory" in error_line(cli("inspect", str(tmp_path)))
    assert "unknown option --fast" in error_line(cli("inspect", str(junk), "--fast"))
    assert "give one path" in error_line(cli("inspect"))


def test_inspect_passes_lists_every_pass_with_parameters_and_tolerance(cli):
    listed = inspect_json(cli, "--passes")
    by_name = {p["name"]: p for p in listed}
    assert {"fold_constants", "cleanup", "remove_identity", "set_input_shape", "dynamic_batch", "rename_io",
            "extract_subgraph", "replace_op", "gelu_tanh", "convert_opset", "simplify", "embed_preprocess",
            "qdq_to_signed"} <= set(by_name)
    shape = {p["name"]: p for p in by_name["set_input_shape"]["params"]}
    assert shape["input"]["required"] and shape["shape"]["type"] == "list[int | str]"
    assert by_name["cleanup"]["tolerance"]["rtol"] <= 1e-6
    # The docs describe every pass.
    docs = (REPO / "docs/passes.md").read_text()
    for name in by_name:
        assert f"### `{name}`" in docs, name
