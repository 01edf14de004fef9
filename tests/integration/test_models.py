"""Models that are not square-image classifiers, built end to end on both targets: several named
inputs of different dtypes with symbolic dimensions and several outputs, a non-square image with a
dynamic batch, a sentence-embedding transformer from a Hugging Face folder, and a segmenter on
real masks. Each is checked by the metrics its task needs, and a gate on them refuses a build."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import REPO, Cli, error_line, manifest_of, small_model
from onnx import TensorProto, helper, numpy_helper

from optbuild.stages.nvidia.lint import lint

BENCH = "{iterations: 5, warmup: 1, throughput_seconds: 0.3}"


def _weights(rng: np.random.Generator, name: str, *shape: int, scale: float = 0.5) -> onnx.TensorProto:
    return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)


def multi_io_model(path: Path) -> Path:
    """Token ids and a mask (int64, [batch, seq]) and dense features (float, [batch, 4]) in;
    class logits [batch, 3] and per-token hidden states [batch, seq, 16] out (16 wide: NVIDIA's
    quantizer leaves narrower GEMMs in float)."""
    rng = np.random.default_rng(0)
    nodes = [
        helper.make_node("Gather", ["emb", "input_ids"], ["e"], "embed"),
        helper.make_node("Cast", ["attention_mask"], ["m"], "cast", to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["m", "axis2"], ["m3"], "unsqueeze"),
        helper.make_node("Mul", ["e", "m3"], ["masked"], "mask"),
        helper.make_node("MatMul", ["masked", "wseq"], ["hidden_pre"], "seq_proj"),
        helper.make_node("Relu", ["hidden_pre"], ["hidden"], "relu"),
        helper.make_node("ReduceMean", ["hidden"], ["pooled"], "pool", axes=[1], keepdims=0),
        helper.make_node("Concat", ["pooled", "feats"], ["joined"], "concat", axis=1),
        helper.make_node("MatMul", ["joined", "wcls"], ["logits"], "classifier"),
    ]
    graph = helper.make_graph(
        nodes, "multi_io",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"]),
         helper.make_tensor_value_info("feats", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3]),
         helper.make_tensor_value_info("hidden", TensorProto.FLOAT, ["batch", "seq", 16])],
        [_weights(rng, "emb", 50, 16), _weights(rng, "wseq", 16, 16, scale=0.25), _weights(rng, "wcls", 20, 3),
         numpy_helper.from_array(np.array([2], np.int64), "axis2")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="optbuild-tests")
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


MULTI_RECIPE = """\
# @package _global_
defaults:
  - override /precision: int8
  - _self_
model:
  source: onnx
  name: multi-io
  path: {path}
  task: generic
  inputs:
    - {{name: input_ids, dtype: int64, shape: [batch, seq], high: 50,
       dims: {{batch: {{min: 1, opt: 2, max: 8}}, seq: {{min: 4, opt: 16, max: 64}}}}}}
    - {{name: attention_mask, dtype: int64, shape: [batch, seq],
       dims: {{batch: {{min: 1, opt: 2, max: 8}}, seq: {{min: 4, opt: 16, max: 64}}}}}}
    - {{name: feats, shape: [batch, 4], dims: {{batch: {{min: 1, opt: 2, max: 8}}}}}}
  output_names: [logits, hidden]
calibration: {{dataset: synthetic, num_samples: 32}}
validate:
  dataset: synthetic
  num_samples: 16
  metrics:
    - {{name: cosine, min: 0.99}}
    - {{name: sequence_agreement, output: hidden}}
    - {{name: rel_l2, output: logits, max: 0.2}}
benchmark: {bench}
"""


def wide_image_model(path: Path) -> Path:
    """A conv net on [N, 3, 48, 192] (a text line, a banner) with a dynamic batch N."""
    return small_model(path, ("N", 3, 48, 192), seed=1)


WIDE_RECIPE = """\
# @package _global_
defaults:
  - override /precision: int8
  - _self_
model:
  source: onnx
  name: wide
  path: {path}
  inputs: [{{name: input, shape: [-1, 3, 48, 192], dims: {{0: {{min: 1, opt: 2, max: 4}}}}}}]
  preprocess: {{fit: pad}}
calibration: {{dataset: sample_photos, num_samples: 8}}
validate: {{num_samples: 4, min_cosine: 0.98}}
benchmark: {bench}
"""


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A recipe directory with `multi_io` and `wide` and the ONNX files they name."""
    folder = tmp_path_factory.mktemp("models")
    (folder / "recipes").mkdir()
    multi = multi_io_model(folder / "multi_io.onnx")
    (folder / "recipes/multi_io.yaml").write_text(MULTI_RECIPE.format(path=multi, bench=BENCH))
    wide = wide_image_model(folder / "wide.onnx")
    (folder / "recipes/wide.yaml").write_text(WIDE_RECIPE.format(path=wide, bench=BENCH))
    return folder / "recipes"


@pytest.fixture()
def build(tmp_path: Path, models: Path) -> Cli:
    return Cli(tmp_path, models)


def metric_values(record: dict) -> dict[tuple[str, str], float]:
    return {(m["name"], m["output"]): m["value"] for m in record["metrics"]}


def test_multi_input_multi_output_int8_for_intel(build: Cli, tmp_path: Path):
    import openvino as ov

    result = build("recipe=multi_io", "target.dynamic_shapes=true")
    assert result.returncode == 0, result.stderr
    version = tmp_path / "outputs/multi_io/intel-int8/v1"
    manifest = manifest_of(version)
    assert manifest["status"] == "passed" and all(g["passed"] for g in manifest["gates"])
    validation = manifest["validation"]
    assert set(validation["outputs"]) == {"logits", "hidden"}
    values = metric_values(validation)
    assert {("cosine", "logits"), ("cosine", "hidden"), ("sequence_agreement", "hidden"),
            ("rel_l2", "logits")} == set(values)
    assert values[("cosine", "logits")] >= 0.99 and values[("rel_l2", "logits")] <= 0.2
    assert manifest["benchmark"]["shapes"] == {"input_ids": [2, 16], "attention_mask": [2, 16], "feats": [2, 4]}
    assert "metrics: cosine(logits)" in result.stderr

    # The IR keeps the recipe's ranges (target.dynamic_shapes) and dtypes, and runs anywhere in them.
    model = ov.Core().read_model(str(version / "model.xml"))
    inputs = {port.get_any_name(): port for port in model.inputs}
    assert [inputs[n].get_element_type().get_type_name() for n in ("input_ids", "attention_mask", "feats")] == \
        ["i64", "i64", "f32"]
    assert str(inputs["input_ids"].get_partial_shape()) == "[1..8,4..64]"
    compiled = ov.Core().compile_model(model, "CPU")
    for batch, seq in ((1, 4), (8, 64)):
        out = compiled({"input_ids": np.ones((batch, seq), np.int64), "attention_mask": np.ones((batch, seq), np.int64),
                        "feats": np.zeros((batch, 4), np.float32)})
        assert out[compiled.output("hidden")].shape == (batch, seq, 16)
        assert out[compiled.output("logits")].shape == (batch, 3)


def test_multi_input_int8_kit_for_nvidia_gets_one_profile_for_all_inputs(build: Cli, tmp_path: Path):
    result = build("recipe=multi_io", "target=nvidia", "target.engine=kit")
    assert result.returncode == 0, result.stderr
    version = tmp_path / "outputs/multi_io/nvidia-int8/v1"
    manifest = manifest_of(version)
    assert manifest["status"] == "passed" and manifest["engine_built"] is False
    proxy = manifest["cpu_proxy"]
    assert set(proxy["outputs"]) == {"logits", "hidden"}
    assert metric_values(proxy)[("cosine", "logits")] >= 0.99
    assert {g["measured_on"] for g in manifest["gates"]} == {"CPU proxy"}
    script = (version / "trtexec.sh").read_text()
    assert "--minShapes=input_ids:1x4,attention_mask:1x4,feats:1x4" in script
    assert "--optShapes=input_ids:2x16,attention_mask:2x16,feats:2x4" in script
    assert "--maxShapes=input_ids:8x64,attention_mask:8x64,feats:8x4" in script
    model = onnx.load(str(version / "model.onnx"))
    assert lint(model) == []
    assert [i.type.tensor_type.elem_type for i in model.graph.input] == [TensorProto.INT64, TensorProto.INT64,
                                                                         TensorProto.FLOAT]
    assert any(n.op_type == "QuantizeLinear" for n in model.graph.node)
    assert manifest["quantization"]["quantized_layers"] >= 1  # seq_proj; the 3-class classifier is too narrow


def test_a_missed_metric_gate_refuses_the_build_and_names_the_metric(build: Cli, tmp_path: Path):
    result = build("recipe=multi_io", "validate.metrics=[{name: rel_l2, output: logits, max: 0.0001}]",
                   "benchmark.enabled=false")
    line = error_line(result)
    assert "rel_l2(logits)" in line and "validate.metrics[rel_l2].max 0.0001" in line and "not promoted" in line
    root = tmp_path / "outputs/multi_io/intel-int8"
    assert not (root / "latest").exists()
    assert manifest_of(root / "v1")["status"] == "failed"


def test_declared_inputs_that_the_model_lacks_fail_before_any_stage(build: Cli, tmp_path: Path):
    line = error_line(build("recipe=multi_io", "model.inputs.0.name=token_ids"))
    assert "token_ids" in line and "input_ids" in line
    assert not list((tmp_path / "outputs/.cache").glob("actions/*"))


def test_non_square_image_with_a_dynamic_batch_on_both_targets(build: Cli, tmp_path: Path):
    intel = build("recipe=wide")
    assert intel.returncode == 0, intel.stderr
    manifest = manifest_of(tmp_path / "outputs/wide/intel-int8/v1")
    assert manifest["status"] == "passed" and manifest["validation"]["cosine_mean"] >= 0.98
    # the batch's opt size, as a client sends it: 8-bit NHWC pixels (serve.embed_preprocess by default)
    assert manifest["benchmark"]["shapes"] == {"input": [2, 48, 192, 3]}
    assert manifest["benchmark"]["end_to_end"] is None  # one decoded image is not a batch of 2
    nvidia = build("recipe=wide", "target=nvidia", "target.engine=kit", "precision=fp16")
    assert nvidia.returncode == 0, nvidia.stderr
    version = tmp_path / "outputs/wide/nvidia-fp16/v1"
    script = (version / "trtexec.sh").read_text()
    assert "--minShapes=input:1x48x192x3" in script and "--maxShapes=input:4x48x192x3" in script
    assert manifest_of(version)["cpu_proxy"]["cosine_mean"] >= 0.999


# --- A Hugging Face transformer: all-MiniLM-L6-v2 from its pip package, real English sentences.

@pytest.mark.xdist_group("minilm")
class TestMiniLM:
    """One output tree for both targets, so they share the source and export stages."""

    @pytest.fixture(scope="class")
    def shared(self, tmp_path_factory: pytest.TempPathFactory) -> Cli:
        return Cli(tmp_path_factory.mktemp("minilm"), None)

    def test_int8_for_intel_keeps_embeddings_and_neighbours(self, shared: Cli):
        result = shared("recipe=minilm_l6_int8", "benchmark.iterations=5", "benchmark.warmup=1",
                        "benchmark.throughput_seconds=0.5")
        assert result.returncode == 0, result.stderr
        manifest = manifest_of(shared.cwd / "outputs/minilm_l6_int8/intel-int8/v1")
        assert manifest["status"] == "passed"
        values = metric_values(manifest["validation"])
        assert values[("cosine", "sentence_embedding")] >= 0.98
        assert values[("retrieval_agreement", "sentence_embedding")] >= 0.85
        assert manifest["validation"]["samples"] == 128
        assert manifest["quantization"]["settings"]["model_type"] == "transformer"

    def test_fp16_kit_for_nvidia_passes_the_same_gates(self, shared: Cli):
        result = shared("recipe=minilm_l6_int8", "target=nvidia", "target.engine=kit", "precision=fp16")
        assert result.returncode == 0, result.stderr
        version = shared.cwd / "outputs/minilm_l6_int8/nvidia-fp16/v1"
        manifest = manifest_of(version)
        assert manifest["status"] == "passed"
        assert metric_values(manifest["cpu_proxy"])[("cosine", "sentence_embedding")] >= 0.999
        script = (version / "trtexec.sh").read_text()
        assert "--maxShapes=input_ids:32x256,attention_mask:32x256,token_type_ids:32x256" in script


    def test_int8_kit_for_nvidia_quantizes_the_matmuls_after_smoothquant(self, shared: Cli):
        result = shared("recipe=minilm_l6_int8", "target=nvidia", "target.engine=kit")
        assert result.returncode == 0, result.stderr
        version = shared.cwd / "outputs/minilm_l6_int8/nvidia-int8/v1"
        manifest = manifest_of(version)
        assert manifest["status"] == "passed" and manifest["tensorrt_lint"]["passed"]
        values = metric_values(manifest["cpu_proxy"])
        assert values[("cosine", "sentence_embedding")] >= 0.98
        assert values[("retrieval_agreement", "sentence_embedding")] >= 0.85
        quantization = manifest["quantization"]
        assert quantization["quantized_op_types"] == ["MatMul"] and quantization["smooth_quant"]["alpha"] == 0.9
        assert quantization["quantized_layers"] >= 36  # six layers of Q, K, V, output and two FFN GEMMs
        model = onnx.load(str(version / "model.onnx"))
        dequantized = {n.output[0] for n in model.graph.node if n.op_type == "DequantizeLinear"}
        assert {n.op_type for n in model.graph.node if set(n.input) & dequantized} == {"MatMul"}

    def test_int4_kit_for_nvidia_stores_the_matmul_weights_in_int4_blocks(self, shared: Cli):
        """awq_lite on 32 calibration sentences measured embedding cosine 0.950 (min 0.916) on the 128
        validation sentences; rtn_dq (no data) measured 0.933, so the 0.94 gate holds AWQ to its gain.
        Nearest-neighbour agreement drops to 0.69 in INT4: recorded, not gated."""
        result = shared("recipe=minilm_l6_int8", "target=nvidia", "target.engine=kit", "precision=int4",
                        "calibration.num_samples=32",
                        "validate.metrics=[{name:cosine,min:0.94},{name:cosine_min,min:0.9},{name:retrieval_agreement}]")
        assert result.returncode == 0, result.stderr
        version = shared.cwd / "outputs/minilm_l6_int8/nvidia-int4/v1"
        manifest = manifest_of(version)
        assert manifest["status"] == "passed" and manifest["tensorrt_lint"]["passed"]
        assert "weight-only" in manifest["tensorrt_lint"]["rules"]
        values = metric_values(manifest["cpu_proxy"])
        assert values[("cosine", "sentence_embedding")] >= 0.94 and values[("cosine_min", "sentence_embedding")] >= 0.9
        quantization = manifest["quantization"]
        assert (quantization["calibration_method"], quantization["block_size"]) == ("awq_lite", 128)
        assert quantization["int4_weights"] == 36  # six layers of Q, K, V, output and two FFN GEMMs
        assert quantization["bytes"] < 0.65 * quantization["bytes_before"]  # the float word embeddings stay
        model = onnx.load(str(version / "model.onnx"))
        constants = {t.name: t.data_type for t in model.graph.initializer}
        dequantizers = [n for n in model.graph.node if n.op_type == "DequantizeLinear"]
        assert all(constants[n.input[0]] == onnx.TensorProto.INT4 for n in dequantizers)
        assert not [n for n in model.graph.node if n.op_type == "QuantizeLinear"]
        dequantized = {n.output[0] for n in dequantizers}
        assert {n.op_type for n in model.graph.node if set(n.input) & dequantized} == {"MatMul"}
        assert "--stronglyTyped" in (version / "trtexec.sh").read_text()

# --- A segmenter trained here on real Fashion-MNIST masks.

@pytest.mark.xdist_group("segmenter")
class TestSegmenter:
    @pytest.fixture(scope="class")
    def segmenter(self, tmp_path_factory: pytest.TempPathFactory) -> Path:
        out = tmp_path_factory.mktemp("segmenter") / "segmenter.onnx"
        done = subprocess.run([sys.executable, str(REPO / "examples/fashion_mnist/train_segmenter.py"),
                               "--train-samples", "20000", "--out", str(out)],
                              capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr
        return out

    @pytest.fixture(scope="class")
    def shared(self, tmp_path_factory: pytest.TempPathFactory) -> Cli:
        return Cli(tmp_path_factory.mktemp("segment"), None)

    def run(self, shared: Cli, segmenter: Path, *overrides: str):
        return shared("recipe=fashion_mnist_segmenter_int8", f"model.path={segmenter}", "benchmark.enabled=false",
                      *overrides)

    def test_int8_on_both_targets_keeps_the_masks(self, shared: Cli, segmenter: Path):
        assert (intel := self.run(shared, segmenter)).returncode == 0, intel.stderr
        manifest = manifest_of(shared.cwd / "outputs/fashion_mnist_segmenter_int8/intel-int8/v1")
        values = metric_values(manifest["validation"])
        assert values[("miou", "mask_logits")] >= 0.95 and values[("mask_iou", "mask_logits")] >= 0.97
        assert manifest["validation"]["samples"] == 2000
        assert (kit := self.run(shared, segmenter, "target=nvidia", "target.engine=kit")).returncode == 0, kit.stderr
        proxy = manifest_of(shared.cwd / "outputs/fashion_mnist_segmenter_int8/nvidia-int8/v1")["cpu_proxy"]
        assert metric_values(proxy)[("mask_iou", "mask_logits")] >= 0.97

    def test_a_calibration_that_hurts_the_masks_is_refused(self, shared: Cli, segmenter: Path, tmp_path: Path):
        """Calibration inputs 20x narrower than real images: INT8 ranges clip the real inputs
        (mIoU 0.23 here; 40x wider inputs instead cost this segmenter nothing)."""
        narrow = tmp_path / "narrow.npz"
        np.savez(narrow, input=(np.random.default_rng(0).standard_normal((8, 1, 28, 28)) * 0.05).astype(np.float32))
        line = error_line(self.run(shared, segmenter, "calibration.dataset=npz", f"calibration.path={narrow}",
                                   "calibration.num_samples=8", "calibration.split=null"))
        assert "miou(mask_logits)" in line and "validate.metrics[miou].min 0.95" in line
        assert "mask_iou(mask_logits)" in line and "not promoted" in line
        root = shared.cwd / "outputs/fashion_mnist_segmenter_int8/intel-int8"
        failed = [manifest_of(v) for v in root.glob("v*") if manifest_of(v)["status"] == "failed"]
        assert len(failed) == 1 and metric_values(failed[0]["validation"])[("miou", "mask_logits")] < 0.95
