"""Third-party passes and model sources, installed for real: a distribution (`*.dist-info` with
`entry_points.txt`) on the CLI's PYTHONPATH, found by importlib.metadata like any pip install."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import REPO, error_line, manifest_of

PLUGIN = '''
"""optbuild test plugin: a pass that corrupts weights, and a model source."""
import numpy as np
from onnx import TensorProto, helper, numpy_helper

from optbuild.passes import PassParams, register


class Corrupt(PassParams):
    factor: float = 1.5


@register("corrupt_weights", Corrupt)
def corrupt_weights(graph, factor):
    """Test plugin: scales every float weight, which changes what the model computes."""
    for tensor in graph.tensors().values():
        if hasattr(tensor, "values") and tensor.values.dtype == np.float32:
            tensor.values = tensor.values * factor
    return graph


class TinyNet:
    """Test plugin source: one seeded 3x3 conv, global pooling and a linear layer."""

    def identity(self, model):
        return {"tinynet": 1, "seed": model["seed"]}

    def write_onnx(self, model, path):
        rng = np.random.default_rng(model["seed"])
        spec = model["inputs"][0]
        weights = [numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)
                   for name, shape in (("w", [8, 3, 3, 3]), ("fc", [8, 10]))]
        nodes = [helper.make_node("Conv", [spec["name"], "w"], ["c"], pads=[1, 1, 1, 1]),
                 helper.make_node("Relu", ["c"], ["r"]),
                 helper.make_node("GlobalAveragePool", ["r"], ["p"]),
                 helper.make_node("Flatten", ["p"], ["f"]),
                 helper.make_node("MatMul", ["f", "fc"], [model["output_names"][0]])]
        graph = helper.make_graph(
            nodes, "tinynet", [helper.make_tensor_value_info(spec["name"], TensorProto.FLOAT, spec["shape"])],
            [helper.make_tensor_value_info(model["output_names"][0], TensorProto.FLOAT, [spec["shape"][0], 10])],
            initializer=weights)
        import onnx
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
'''

ENTRY_POINTS = """\
[optbuild.passes]
corrupt_weights = optbuild_test_plugin:corrupt_weights

[optbuild.sources]
tinynet = optbuild_test_plugin:TinyNet
"""


def install(root: Path, dist: str, module: str, code: str, entry_points: str) -> Path:
    """What `pip install` leaves in site-packages: the module and its dist-info."""
    root.mkdir(parents=True)
    (root / f"{module}.py").write_text(code)
    info = root / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(entry_points)
    return root


@pytest.fixture()
def plugin_env(tmp_path: Path) -> dict[str, str]:
    site = install(tmp_path / "site", "optbuild-test-plugin", "optbuild_test_plugin", PLUGIN, ENTRY_POINTS)
    return {"PYTHONPATH": os.pathsep.join([str(REPO), str(site)])}


def test_a_plugin_pass_that_corrupts_weights_fails_the_build_naming_it(cli, tmp_path: Path, plugin_env):
    listed = cli("passes", env=plugin_env)
    assert listed.returncode == 0, listed.stderr
    assert "corrupt_weights(factor: float = 1.5)  [plugin optbuild-test-plugin==0.1]" in listed.stdout

    line = error_line(cli("recipe=tiny", "passes=[cleanup,corrupt_weights]", env=plugin_env))
    assert line.startswith("optbuild: error: pass 'corrupt_weights' changed the model's output 'logits' "
                           "beyond its tolerance:"), line
    assert not (tmp_path / "outputs/tiny").exists()  # nothing published


def test_an_unverified_pass_is_marked_and_validated_against_the_model_before_surgery(cli, tmp_path: Path,
                                                                                    plugin_env):
    """`verify: false` skips the pass's own check; validation then compares with the model as
    it was before surgery, so the changed function is caught by the gate, not published."""
    passes = "passes=[cleanup,{name:corrupt_weights,factor:3.0,verify:false}]"
    line = error_line(cli("recipe=tiny", passes, "validate.min_cosine=0.999", "benchmark.enabled=false",
                          env=plugin_env))
    assert "validation gate failed: cosine" in line
    manifest = manifest_of(tmp_path / "outputs/tiny/intel-fp32/v1")
    assert manifest["status"] == "failed" and manifest["unverified_passes"] == ["corrupt_weights"]
    assert manifest["surgery"][1] | {"verified": False, "reason": "verify: false"} == manifest["surgery"][1]
    validate = next(s for s in manifest["stages"] if s["name"] == "validate")
    assert next(i["from"] for i in validate["inputs"] if i["path"] == "reference.onnx") == "source/model.onnx"
    result = cli("recipe=tiny", passes, "benchmark.enabled=false", env=plugin_env)
    assert "not verified (verify: false): pass corrupt_weights" in result.stderr


def test_a_broken_plugin_is_one_line_naming_it(cli, tmp_path: Path):
    site = install(tmp_path / "site", "optbuild-broken-plugin", "optbuild_broken_plugin",
                   "import a_module_that_is_not_installed\n",
                   "[optbuild.passes]\nbroken_pass = optbuild_broken_plugin:run\n")
    env = {"PYTHONPATH": os.pathsep.join([str(REPO), str(site)])}
    line = error_line(cli("recipe=tiny", "passes=[broken_pass]", env=env))
    assert "pass plugin entry point 'broken_pass = optbuild_broken_plugin:run' (optbuild-broken-plugin==0.1)" in line
    assert "No module named 'a_module_that_is_not_installed'" in line and "fix or uninstall it" in line
    # Builds that do not use it are not affected.
    assert cli("recipe=tiny", "benchmark.enabled=false", "validate.enabled=false", env=env).returncode == 0


def test_a_plugin_source_builds_and_unknown_sources_list_it(cli, tmp_path: Path, plugin_env):
    result = cli("recipe=tiny", "model.source=tinynet", "model.path=null", "benchmark.enabled=false", env=plugin_env)
    assert result.returncode == 0, result.stderr
    manifest = manifest_of(tmp_path / "outputs/tiny/intel-fp32/v1")
    assert manifest["surgery"][0]["verified"] is True
    assert manifest["validation"]["cosine_mean"] > 0.999
    line = error_line(cli("recipe=tiny", "model.source=nonesuch", env=plugin_env))
    assert "unknown model.source 'nonesuch'; available: torchvision, efficientnet_lite0, onnx, huggingface, tinynet" in line


def test_pass_errors_from_the_command_line_are_one_line(cli):
    line = error_line(cli("recipe=tiny", "passes=[fold_constants,dynamic_batsh]"))
    assert "unknown pass 'dynamic_batsh' at passes[1]; available:" in line and "dynamic_batch" in line
    line = error_line(cli("recipe=tiny", "passes=[{name:fold_constants,size_threshold:10}]"))
    assert "pass 'fold_constants' (passes[0]): parameter 'size_threshold': Extra inputs are not permitted" in line
    assert "its parameters: verify, size_threshold_bytes" in line
