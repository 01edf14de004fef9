"""target=nvidia end to end on a CPU-only machine: the prepared ONNX, its checks, the build kit,
and the one-line refusal to pretend an engine was built."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import Cli, error_line, manifest_of
from onnx import TensorProto, numpy_helper

from optbuild.stages.nvidia.lint import lint

# Its module fixtures are expensive: its tests share one worker (make test: --dist loadgroup).
pytestmark = pytest.mark.xdist_group("nvidia_kit")


KIT_FILES = {"model.onnx", "build_spec.json", "trtexec.sh", "build_engine.py", "samples.json", "reference.json",
             "check_engine.py"}  # the last three because the recipe validates
RESNET = ("model.weights=null", "target=nvidia", "target.engine=kit", "calibration.num_samples=16",
          "validate.num_samples=8")
# Documented in docs/nvidia.md: the fp16 graph on ONNX Runtime vs FP32.
FP16_MIN_COSINE, FP16_MAX_ABS_FRACTION = 0.999, 0.01


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    """One output tree and cache for the ResNet-50 builds, so they share source/export/surgery."""
    return Cli(tmp_path_factory.mktemp("nvidia"), None)


@pytest.fixture(scope="module")
def resnet_int8(shared: Cli) -> Path:
    """The ResNet-50 INT8 kit, built first in `shared` (the fp16 test reuses its export)."""
    result = shared("recipe=resnet50_int8", *RESNET)
    assert result.returncode == 0, result.stderr
    return shared.cwd / "outputs/resnet50_int8/nvidia-int8/v1"


def stage_hits(manifest: dict) -> dict[str, bool]:
    return {s["name"]: s["cache_hit"] for s in manifest["stages"]}


def initializer_types(model: onnx.ModelProto) -> set[int]:
    return {t.data_type for t in model.graph.initializer}


def test_no_tensorrt_or_gpu_fails_in_one_line_and_writes_nothing(cli, tmp_path: Path):
    result = cli("recipe=resnet50_int8", "target=nvidia", "model.weights=null")
    line = error_line(result)
    assert "TensorRT" in line and "GPU" in line and "target.engine=kit" in line
    assert not (tmp_path / "outputs/resnet50_int8").exists()
    assert not list((tmp_path / "outputs/.cache").glob("actions/*")), "no stage may have run"


def test_resnet50_int8_kit_is_signed_symmetric_and_passes_the_lint(shared: Cli, resnet_int8: Path):
    version = resnet_int8
    assert {p.name for p in version.iterdir()} == KIT_FILES | {"manifest.json", "provenance.json"}
    model = onnx.load(str(version / "model.onnx"))
    assert lint(model) == []
    constants = {t.name: t for t in model.graph.initializer}
    qdq = [n for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    assert len(qdq) > 100
    for node in qdq:
        zero_point = constants[node.input[2]]
        assert zero_point.data_type == TensorProto.INT8, node.name
        assert not numpy_helper.to_array(zero_point).any(), node.name
    trtexec = (version / "trtexec.sh").read_text()
    assert "trtexec --onnx=model.onnx --saveEngine=build/model.plan --stronglyTyped" in trtexec
    for removed in ("--int8", "--fp16", "--bf16", "--best", "--calib"):
        assert removed not in trtexec.split("set -euo pipefail")[-1]
    spec = json.loads((version / "build_spec.json").read_text())
    assert spec["precision"] == "int8" and spec["onnx"]["sha256"]
    manifest = manifest_of(version)
    assert manifest["engine_built"] is False and manifest["engine"] is None
    assert manifest["statement"].startswith("No TensorRT engine was built")
    assert manifest["tensorrt_lint"]["passed"] is True
    assert manifest["quantization"]["activations"] == "int8 symmetric per-tensor"
    assert manifest["quantization"]["quantizer"].startswith("nvidia-modelopt ")
    assert "residual-add" in manifest["tensorrt_lint"]["rules"]
    # TensorRT's placement: each residual Add reads one Conv output unquantized (Conv+Add fuse).
    producers = {o: n for n in model.graph.node for o in n.output}
    adds = [n for n in model.graph.node if n.op_type == "Add" and not set(n.input) & set(constants)]
    assert len(adds) == 16
    for add in adds:
        assert any(producers[i].op_type == "Conv" for i in add.input), add.name
    assert manifest["cpu_proxy"]["samples"] == 8
    check = manifest["engine_check"]  # the engine is checked on the first validation batches
    assert check["samples"] == 8 and check["script"] == "check_engine.py" and 0.9 < check["min_cosine"] < 1
    assert [a["path"] for a in manifest["artifacts"]] == sorted(KIT_FILES)
    assert shared("verify", str(version)).returncode == 0
    # A GPU build of the kit writes into build/: the kit still verifies, and says so.
    (version / "build").mkdir()
    (version / "build/model.plan").write_bytes(b"engine")
    checked = shared("verify", str(version))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "build/: a GPU build of this kit" in checked.stdout
    (version / "stray.txt").write_text("x")
    assert "stray.txt: extra file not in the manifest" in error_line(shared("verify", str(version)))


def test_resnet50_fp16_kit_keeps_float32_io_and_stays_close_to_fp32(shared: Cli, resnet_int8: Path):
    result = shared("recipe=resnet50", "precision=fp16", *RESNET)
    assert result.returncode == 0, result.stderr
    version = shared.cwd / "outputs/resnet50/nvidia-fp16/v1"
    manifest = manifest_of(version)
    # Shared with the int8 kit above: the model was exported once.
    assert stage_hits(manifest)["export"] is True and stage_hits(manifest)["surgery"] is True
    model = onnx.load(str(version / "model.onnx"))
    # client pixels in (normalised in float32 inside), float32 out
    assert {t.type.tensor_type.elem_type for t in model.graph.input} == {TensorProto.UINT8}
    assert {t.type.tensor_type.elem_type for t in model.graph.output} == {TensorProto.FLOAT}
    conv_weights = {n.input[1] for n in model.graph.node if n.op_type == "Conv"}
    assert {t.data_type for t in model.graph.initializer if t.name in conv_weights} == {TensorProto.FLOAT16}
    proxy = manifest["cpu_proxy"]
    assert proxy["cosine_min"] >= FP16_MIN_COSINE
    assert proxy["max_abs_error"] <= FP16_MAX_ABS_FRACTION * proxy["reference_max_abs"]
    assert manifest["quantization"]["io_types"] == "float32"
    assert "kept_float32_nodes" in manifest["quantization"]


def test_resnet50_fp8_kit_is_e4m3_qdq_checked_on_the_cpu(shared: Cli, resnet_int8: Path):
    result = shared("recipe=resnet50_int8", "precision=fp8", *RESNET)
    assert result.returncode == 0, result.stderr
    version = shared.cwd / "outputs/resnet50_int8/nvidia-fp8/v1"
    manifest = manifest_of(version)
    assert stage_hits(manifest)["export"] is True  # shared with the int8 kit
    quantization = manifest["quantization"]
    assert quantization["mode"] == "fp8" and quantization["activations"] == "fp8 e4m3 per-tensor"
    assert quantization["quantized_layers"] >= 50 and manifest["tensorrt_lint"]["passed"]
    model = onnx.load(str(version / "model.onnx"))
    assert lint(model, "fp8") == [] and lint(model, "int8") != []  # E4M3 zero-points, not INT8 ones
    zero_points = {n.input[2] for n in model.graph.node if n.op_type == "QuantizeLinear"}
    assert {t.data_type for t in model.graph.initializer if t.name in zero_points} == {TensorProto.FLOAT8E4M3FN}
    assert manifest["cpu_proxy"]["cosine_min"] >= 0.99  # ONNX Runtime's CPU provider runs E4M3 Q/DQ
    assert "--fp8" not in (version / "trtexec.sh").read_text()  # strongly typed: the graph says FP8

def test_efficientnet_lite0_int8_kit_records_cpu_proxy_agreement(cli, tmp_path: Path):
    result = cli("recipe=efficientnet_lite0_int8", "target=nvidia", "target.engine=kit")  # the acceptance command
    assert result.returncode == 0, result.stderr
    manifest = manifest_of(tmp_path / "outputs/efficientnet_lite0_int8/nvidia-int8/v1")
    proxy = manifest["cpu_proxy"]
    assert proxy["samples"] == 32
    assert proxy["top1_agreement"] >= 0.8 and proxy["cosine_mean"] >= 0.95  # the recipe's gates
    assert "CPU proxy" in result.stderr


def test_sweep_over_intel_and_nvidia_runs_shared_stages_once(cli, tmp_path: Path):
    result = cli("-m", "recipe=tiny_int8", "target=intel,nvidia", "target.engine=kit", "benchmark.enabled=false")
    assert result.returncode == 0, result.stderr
    intel = manifest_of(tmp_path / "outputs/tiny_int8/intel-int8/v1")
    nvidia = manifest_of(tmp_path / "outputs/tiny_int8/nvidia-int8/v1")
    keys = lambda m: {s["name"]: s["key"] for s in m["stages"]}  # noqa: E731
    assert keys(intel)["surgery"] == keys(nvidia)["surgery"]
    assert keys(intel)["source"] == keys(nvidia)["source"]
    assert stage_hits(nvidia)["surgery"] is True  # the second job reused the first job's surgery


def test_dynamic_input_gets_its_profile_from_the_recipe_or_the_override(cli, tmp_path: Path):
    """A dynamic batch made by a pass: the profile comes from model.inputs (a fixed batch of 1,
    or its dims range), target.tensorrt.profiles overrides it."""
    args = ("recipe=tiny", "target=nvidia", "target.engine=kit", "passes=[fold_constants,cleanup,dynamic_batch]")
    result = cli(*args)
    assert result.returncode == 0, result.stderr
    kit = tmp_path / "outputs/tiny/nvidia-fp32/v1"
    # the kit's engine takes 8-bit NHWC pixels (serve.embed_preprocess): its shapes are the client's
    assert "--profile=0 --minShapes=input:1x32x32x3 --optShapes=input:1x32x32x3 --maxShapes=input:1x32x32x3" in \
        (kit / "trtexec.sh").read_text()
    ranged = "model.inputs=[{name:input,shape:[-1,3,32,32],dims:{0:{min:1,opt:2,max:16}}}]"
    assert cli(*args, ranged).returncode == 0
    assert "--profile=0 --minShapes=input:1x32x32x3 --optShapes=input:2x32x32x3 --maxShapes=input:16x32x32x3" in \
        (tmp_path / "outputs/tiny/nvidia-fp32/latest/trtexec.sh").read_text()
    profile = "target.tensorrt.profiles=[{shapes:[{input:input,min:[1,3,32,32],opt:[4,3,32,32],max:[8,3,32,32]}]}]"
    result = cli(*args, profile)
    assert result.returncode == 0, result.stderr
    trtexec = (tmp_path / "outputs/tiny/nvidia-fp32/latest/trtexec.sh").read_text()
    # the recipe's profile is in the model's layout; the engine's follows the client's
    assert "--profile=0 --minShapes=input:1x32x32x3 --optShapes=input:4x32x32x3 --maxShapes=input:8x32x32x3" in trtexec
    spec = json.loads((tmp_path / "outputs/tiny/nvidia-fp32/latest/build_spec.json").read_text())
    assert spec["tensorrt"]["profiles"][0]["shapes"][0]["opt"] == [4, 32, 32, 3]


def _digits_cnn(folder: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    """A small CNN trained on scikit-learn's digits (real labels); returns the ONNX file and the
    held-out images and labels."""
    import torch
    from sklearn.datasets import load_digits
    from torch import nn

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None]
    order = np.random.default_rng(0).permutation(len(images))
    train, test = order[:1300], order[1300:]
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
                        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(32 * 16, 10))
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    x, y = torch.from_numpy(images[train]), torch.from_numpy(digits.target[train])
    for _ in range(15):
        for start in range(0, len(x), 64):
            optimizer.zero_grad()
            nn.functional.cross_entropy(net(x[start:start + 64]), y[start:start + 64]).backward()
            optimizer.step()
    path = folder / "digits.onnx"
    torch.onnx.export(net.eval(), (torch.zeros(1, 1, 8, 8),), str(path), dynamo=False, opset_version=17,
                      input_names=["input"], output_names=["logits"])
    np.savez(folder / "calib.npz", images=images[train])
    np.savez(folder / "val.npz", images=images[test])
    return path, images[test], digits.target[test]


def _accuracy(path: Path, images: np.ndarray, labels: np.ndarray) -> float:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    predictions = [session.run(None, {"input": image[None]})[0].argmax() for image in images]
    return float(np.mean(np.array(predictions) == labels))


def test_int8_graph_of_a_real_labelled_model_loses_at_most_one_point(tmp_path: Path):
    model, images, labels = _digits_cnn(tmp_path)
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    (recipes / "digits.yaml").write_text(f"""\
# @package _global_
defaults:
  - override /target: nvidia
  - override /precision: int8
  - _self_
model:
  source: onnx
  name: digits
  path: {model}
  inputs: [{{name: input, shape: [1, 1, 8, 8]}}]
  preprocess: {{resize: 8, crop: 8, mean: [0.0], std: [1.0]}}
target: {{engine: kit}}
calibration: {{dataset: npz, path: {tmp_path / 'calib.npz'}, num_samples: 256}}
validate: {{dataset: npz, path: {tmp_path / 'val.npz'}, num_samples: 64}}
""")
    result = Cli(tmp_path, recipes)("recipe=digits")
    assert result.returncode == 0, result.stderr
    fp32 = _accuracy(model, images, labels)
    int8 = _accuracy(tmp_path / "outputs/digits/nvidia-int8/v1/model.onnx", images, labels)
    assert fp32 > 0.9, "the reference model should have learned the digits"
    assert fp32 - int8 <= 0.01, (fp32, int8)


def wide_batchnorm_model(path: Path) -> Path:
    """Conv -> BatchNormalization whose variance for half the channels (1.05e7) float16 cannot
    hold, scaled back by gamma so the outputs are ordinary -> Relu -> pool -> Gemm."""
    from onnx import helper

    rng = np.random.default_rng(0)
    variance = np.where(np.arange(8) % 2 == 0, 1.05e7, 1.0).astype(np.float32)
    gamma = np.sqrt(variance).astype(np.float32)
    weights = {"w": rng.standard_normal((8, 3, 3, 3)) * 0.3, "gamma": gamma, "beta": rng.standard_normal(8) * 0.1,
               "mean": rng.standard_normal(8) * 0.1, "var": variance, "fc": rng.standard_normal((10, 8)) * 0.5,
               "fc_b": np.zeros(10)}
    nodes = [helper.make_node("Conv", ["input", "w"], ["c"], "conv", pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", "gamma", "beta", "mean", "var"], ["bn"], "bn"),
             helper.make_node("Relu", ["bn"], ["r"], "relu"),
             helper.make_node("GlobalAveragePool", ["r"], ["p"], "pool"),
             helper.make_node("Flatten", ["p"], ["f"], "flatten"),
             helper.make_node("Gemm", ["f", "fc", "fc_b"], ["logits"], "fc", transB=1)]
    graph = helper.make_graph(nodes, "wide_bn", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 32, 32])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])],
                              [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in weights.items()])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_fp16_kit_keeps_constants_float16_cannot_hold_in_float32(cli, recipe_dir: Path, tmp_path: Path):
    """Clamping the variance to 65504 would scale those channels up ~13x: the gate would fail."""
    from conftest import tiny_recipe

    model = wide_batchnorm_model(tmp_path / "wide_bn.onnx")
    (recipe_dir / "wide_bn.yaml").write_text(tiny_recipe(model, precision="fp16", name="wide_bn", passes="[]"))
    result = cli("recipe=wide_bn", "target=nvidia", "target.engine=kit", "validate.min_cosine=0.999")
    assert result.returncode == 0, result.stderr
    manifest = manifest_of(tmp_path / "outputs/wide_bn/nvidia-fp16/v1")
    assert manifest["quantization"]["kept_float32_for_constants"] == ["bn"]
    assert manifest["cpu_proxy"]["cosine_min"] >= 0.999
    kept = onnx.load(str(tmp_path / "outputs/wide_bn/nvidia-fp16/v1/model.onnx"))
    variance = next(t for t in kept.graph.initializer if t.name == "var")
    assert variance.data_type == TensorProto.FLOAT and numpy_helper.to_array(variance).max() > 1e7
