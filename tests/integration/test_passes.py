"""Graph-surgery passes on real ONNX graphs: structure changes and numerical equivalence."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import real_models
from onnx import TensorProto, helper, numpy_helper

from optbuild.errors import OptbuildError
from optbuild.passes import PassParams, onnx_io, parse_passes, register
from optbuild.publish.model_facts import onnx_facts
from optbuild.stages.surgery import run_passes

# Its module fixtures are expensive: its tests share one worker (make test: --dist loadgroup).
pytestmark = pytest.mark.xdist_group("passes")



def surgery(model_path: Path, out: Path, passes: list) -> tuple[onnx.ModelProto, list[dict]]:
    specs = [s.stage_entry() for s in parse_passes(passes)]
    out.mkdir(exist_ok=True)
    result = run_passes({"model.onnx": str(model_path)}, {"passes": specs}, str(out))
    return onnx.load(str(out / "model.onnx")), result["data"]["passes"]


def run(model: onnx.ModelProto | str, x: np.ndarray) -> np.ndarray:
    source = model if isinstance(model, str) else model.SerializeToString()
    session = ort.InferenceSession(source, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


@pytest.fixture()
def foldable(tmp_path: Path) -> Path:
    """y = x * (a + b) + unused: the Add of two constants folds, the unused branch goes."""
    a = numpy_helper.from_array(np.full((4,), 2.0, np.float32), "a")
    b = numpy_helper.from_array(np.full((4,), 0.5, np.float32), "b")
    nodes = [
        helper.make_node("Add", ["a", "b"], ["ab"]),
        helper.make_node("Mul", ["x", "ab"], ["y"]),
        helper.make_node("Relu", ["x"], ["dead"]),
    ]
    graph = helper.make_graph(
        nodes, "foldable",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])],
        initializer=[a, b],
    )
    path = tmp_path / "foldable.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_fold_constants_removes_constant_subgraphs_and_keeps_outputs(foldable: Path, tmp_path: Path):
    model, report = surgery(foldable, tmp_path / "out", ["fold_constants"])
    assert [n.op_type for n in model.graph.node] == ["Mul"]
    assert report[0]["removed"] == {"Add": 1, "Relu": 1}
    assert report[0]["verified"] is True
    x = np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32)
    np.testing.assert_allclose(run(model, x), run(str(foldable), x), rtol=1e-6)


def test_dynamic_batch_runs_at_any_batch(tiny_onnx: Path, tmp_path: Path):
    model, report = surgery(tiny_onnx, tmp_path / "out", ["fold_constants", "dynamic_batch"])
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert report[1]["verified"] is True
    x = np.random.default_rng(1).standard_normal((3, 3, 32, 32)).astype(np.float32)
    batched = run(model, x)
    assert batched.shape == (3, 10)
    single = np.concatenate([run(str(tiny_onnx), x[i : i + 1]) for i in range(3)])
    np.testing.assert_allclose(batched, single, rtol=1e-4, atol=1e-5)


def test_set_input_shape_on_an_unknown_input_names_the_inputs(tiny_onnx: Path, tmp_path: Path):
    with pytest.raises(OptbuildError, match="no input 'image'.*input"):
        surgery(tiny_onnx, tmp_path / "out", [{"name": "set_input_shape", "input": "image", "shape": [1, 3, 8, 8]}])


def test_set_input_shape_changes_the_static_shape(tiny_onnx: Path, tmp_path: Path):
    model, report = surgery(tiny_onnx, tmp_path / "out",
                            [{"name": "set_input_shape", "input": "input", "shape": [2, 3, 64, 64]}])
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [2, 3, 64, 64]
    assert report[0]["verified"] is False  # old inputs no longer fit: nothing to compare
    assert run(model, np.zeros((2, 3, 64, 64), np.float32)).shape == (2, 10)


class _Scale(PassParams):
    factor: float = 1.5


@register("test_corrupt_weights", _Scale)
def _corrupt_weights(graph, factor: float):
    """Test-only: scales every float initializer, which changes the model's outputs."""
    for tensor in graph.tensors().values():
        if hasattr(tensor, "values") and tensor.values.dtype == np.float32:
            tensor.values = tensor.values * factor
    return graph


def test_a_pass_that_changes_outputs_fails_naming_itself(tiny_onnx: Path, tmp_path: Path):
    with pytest.raises(OptbuildError, match="pass 'test_corrupt_weights' changed the model's output 'logits'"):
        surgery(tiny_onnx, tmp_path / "out", ["cleanup", "test_corrupt_weights"])
    # With verification off, the same pass goes through: the check is what caught it.
    surgery(tiny_onnx, tmp_path / "out2", [{"name": "test_corrupt_weights", "verify": False}])


def test_pass_entries_are_validated():
    with pytest.raises(OptbuildError, match="passes\\[0\\] must be a pass name"):
        parse_passes([42])
    with pytest.raises(OptbuildError, match="parameter 'size_threshold_bytes'"):
        parse_passes([{"name": "fold_constants", "size_threshold_bytes": "big"}])


# ---- real graphs: EfficientNet-Lite0 (ImageNet weights) and ResNet-50 -----------------------

@pytest.fixture(scope="session")
def effnet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return real_models.efficientnet_lite0(tmp_path_factory.getbasetemp() / "real_models")


@pytest.fixture(scope="session")
def resnet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return real_models.resnet50(tmp_path_factory.getbasetemp() / "real_models")


@pytest.fixture(scope="session")
def photos() -> np.ndarray:
    return real_models.normalized(real_models.photo_batch(2))


def ops(model: onnx.ModelProto | Path) -> Counter:
    model = onnx.load(str(model)) if isinstance(model, Path) else model
    return Counter(n.op_type for n in model.graph.node)


def outputs(model: onnx.ModelProto | Path, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    source = str(model) if isinstance(model, Path) else model.SerializeToString()
    return ort.InferenceSession(source, providers=["CPUExecutionProvider"]).run(None, feeds)


def per_sample(model: Path, x: np.ndarray) -> np.ndarray:
    return np.concatenate([outputs(model, {"input": x[i : i + 1]})[0] for i in range(len(x))])


def test_fold_constants_folds_efficientnet_same_padding_chains(effnet: Path, tmp_path: Path, photos):
    before = ops(effnet)
    assert before["ConstantOfShape"] == before["Slice"] == before["Pad"] == 17
    model, report = surgery(effnet, tmp_path / "out", ["fold_constants"])
    after = ops(model)
    # Each "same" padding chain (ConstantOfShape/Concat/Reshape/Slice/Transpose/Reshape/Cast)
    # folds into one constant pads tensor; the Pads themselves remain.
    for op in ("ConstantOfShape", "Concat", "Slice", "Transpose", "Cast", "Constant"):
        assert after[op] == 0, op
    assert after["Pad"] == 17 and after["Conv"] == 49
    assert report[0]["removed"]["ConstantOfShape"] == 17 and report[0]["verified"] is True
    pads = {n.input[1] for n in model.graph.node if n.op_type == "Pad"}
    assert pads <= {t.name for t in model.graph.initializer}
    np.testing.assert_allclose(per_sample(Path(tmp_path / "out/model.onnx"), photos),
                               per_sample(effnet, photos), rtol=1e-4, atol=1e-4)


def test_simplify_fuses_efficientnet_padding_into_convs(effnet: Path, tmp_path: Path, photos):
    model, report = surgery(effnet, tmp_path / "out", ["simplify", "fold_constants"])
    assert dict(ops(model)) == {"Conv": 49, "Clip": 33, "Add": 9, "GlobalAveragePool": 1, "Reshape": 1, "Gemm": 1}
    assert report[0]["removed"]["Pad"] == 17 and report[0]["verified"] is True
    assert report[1]["nodes_before"] == report[1]["nodes_after"] == 94
    reference, simplified = per_sample(effnet, photos), per_sample(tmp_path / "out/model.onnx", photos)
    np.testing.assert_allclose(simplified, reference, rtol=1e-4, atol=1e-4)
    assert (simplified.argmax(1) == reference.argmax(1)).all()


def test_cleanup_removes_dead_branches_and_keeps_order_valid(resnet: Path, tmp_path: Path, photos):
    model = onnx.load(str(resnet))
    tapped = model.graph.node[5].output[0]
    model.graph.node.insert(0, helper.make_node("Relu", [tapped], ["dead"]))  # dead and out of order
    model.graph.node.append(helper.make_node("Sigmoid", ["dead"], ["dead2"]))
    dirty = tmp_path / "dirty.onnx"
    onnx.save(model, str(dirty))
    cleaned, report = surgery(dirty, tmp_path / "out", ["cleanup"])
    assert report[0]["removed"] == {"Relu": 1, "Sigmoid": 1} and report[0]["added"] == {}
    assert report[0]["verified"] is True and report[0]["max_abs_error"] == 0.0
    onnx.checker.check_model(cleaned)
    np.testing.assert_array_equal(outputs(cleaned, {"input": photos[:1]})[0], outputs(resnet, {"input": photos[:1]})[0])


def test_remove_identity_on_resnet_keeps_outputs_bit_exact(resnet: Path, tmp_path: Path, photos):
    assert ops(resnet)["Identity"] == 47
    model, report = surgery(resnet, tmp_path / "out", ["remove_identity"])
    assert ops(model)["Identity"] == 0 and report[0]["removed"] == {"Identity": 47}
    assert [o.name for o in model.graph.output] == ["logits"]
    np.testing.assert_array_equal(outputs(model, {"input": photos[:1]})[0], outputs(resnet, {"input": photos[:1]})[0])


def test_remove_identity_keeps_a_graph_output_name(tmp_path: Path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Dropout", ["r"], ["d"]),
             helper.make_node("Identity", ["d"], ["y"])]
    path = tmp_path / "ids.onnx"
    onnx.save(helper.make_model(helper.make_graph(nodes, "ids", [x], [y]),
                                opset_imports=[helper.make_opsetid("", 17)]), str(path))
    model, report = surgery(path, tmp_path / "out", ["remove_identity"])
    assert [n.op_type for n in model.graph.node] == ["Relu"] and model.graph.node[0].output[0] == "y"
    assert report[0]["removed"] == {"Dropout": 1, "Identity": 1}


def test_dynamic_batch_on_efficientnet_patches_the_flatten_reshape(effnet: Path, tmp_path: Path):
    model, report = surgery(effnet, tmp_path / "out", ["fold_constants", "dynamic_batch"])
    assert report[1]["verified"] is True and report[1]["cases"] == 1
    assert report[1]["io_after"]["inputs"][0]["shape"] == ["batch", 3, 224, 224]
    assert report[1]["io_after"]["outputs"][0]["shape"][0] == "batch"
    # The Reshape before the classifier hard-coded batch 1 as [1, -1]: now [0, -1], "copy the
    # batch from the input".
    reshapes = [n for n in model.graph.node if n.op_type == "Reshape"]
    initializers = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    assert [initializers[n.input[1]].tolist() for n in reshapes] == [[0, -1]]
    x = real_models.normalized(real_models.photo_batch(3))
    batched = outputs(model, {"input": x})[0]
    assert batched.shape == (3, 1000)
    np.testing.assert_allclose(batched, per_sample(effnet, x), rtol=1e-4, atol=1e-4)


def test_set_input_shape_on_resnet_from_dynamic_back_to_static_is_verified(resnet: Path, tmp_path: Path):
    passes = ["dynamic_batch", {"name": "set_input_shape", "input": "input", "shape": [2, 3, 224, 224]}]
    model, report = surgery(resnet, tmp_path / "out", passes)
    assert report[1]["verified"] is True  # batch → 2: both graphs accept the same data
    assert report[1]["io_after"]["inputs"][0]["shape"] == [2, 3, 224, 224]
    # A new static resolution cannot be compared with the old graph: said so, not silently passed.
    model, report = surgery(resnet, tmp_path / "out2", [{"name": "set_input_shape", "input": "input",
                                                         "shape": [1, 3, 160, 160]}])
    assert report[0]["verified"] is False and "changed shape" in report[0]["reason"]
    assert outputs(model, {"input": np.zeros((1, 3, 160, 160), np.float32)})[0].shape == (1, 1000)


def test_rename_io_on_resnet(resnet: Path, tmp_path: Path, photos):
    model, report = surgery(resnet, tmp_path / "out", [
        {"name": "rename_io", "inputs": {"input": "image"}, "outputs": {"logits": "scores"}}])
    assert [i.name for i in model.graph.input] == ["image"] and [o.name for o in model.graph.output] == ["scores"]
    assert report[0]["verified"] is True and report[0]["max_abs_error"] == 0.0
    np.testing.assert_array_equal(outputs(model, {"image": photos[:1]})[0], outputs(resnet, {"input": photos[:1]})[0])
    with pytest.raises(OptbuildError, match="no input 'data'; inputs: input"):
        surgery(resnet, tmp_path / "out2", [{"name": "rename_io", "inputs": {"data": "x"}}])


def test_extract_subgraph_of_resnet_computes_what_the_full_graph_computes(resnet: Path, tmp_path: Path, photos):
    cut_in, cut_out = "/maxpool/MaxPool_output_0", "/layer1/layer1.0/relu_2/Relu_output_0"
    model, report = surgery(resnet, tmp_path / "out", [
        {"name": "extract_subgraph", "inputs": [cut_in], "outputs": [cut_out]}])
    assert [i.name for i in model.graph.input] == [cut_in] and [o.name for o in model.graph.output] == [cut_out]
    assert ops(model)["Conv"] == 4 and "Gemm" not in ops(model) and report[0]["verified"] is True
    # Numerics: tap the full graph at both cuts and feed the middle to the subgraph.
    full = onnx.load(str(resnet))
    full.graph.output.extend([onnx.ValueInfoProto(name=cut_in), onnx.ValueInfoProto(name=cut_out)])
    middle, expected = outputs(full, {"input": photos[:1]})[1:]
    np.testing.assert_allclose(outputs(model, {cut_in: middle})[0], expected, rtol=1e-5, atol=1e-6)
    # Cut after the stem's ReLU, the residual branch still needs the MaxPool, hence the image.
    with pytest.raises(OptbuildError, match="also depend on tensor 'input', which is not among `inputs`"):
        surgery(resnet, tmp_path / "out2", [{"name": "extract_subgraph", "outputs": [cut_out],
                                             "inputs": ["/layer1/layer1.0/relu/Relu_output_0"]}])


def test_replace_op_equivalent_passes_and_inequivalent_fails_naming_the_pass(resnet: Path, tmp_path: Path, photos):
    model, report = surgery(resnet, tmp_path / "out", [
        {"name": "replace_op", "op": "Relu", "by": "LeakyRelu", "attrs": {"alpha": 0.0}}])
    assert ops(model)["Relu"] == 0 and ops(model)["LeakyRelu"] == 49
    assert report[0]["removed"] == {"Relu": 49} and report[0]["added"] == {"LeakyRelu": 49}
    np.testing.assert_allclose(outputs(model, {"input": photos[:1]})[0], outputs(resnet, {"input": photos[:1]})[0],
                               rtol=1e-5, atol=1e-4)  # ORT fuses Conv+Relu, not Conv+LeakyRelu
    with pytest.raises(OptbuildError, match=r"pass 'replace_op' changed the model's output 'logits' beyond its "
                                            r"tolerance: \d+ of 1000 values, max abs diff"):
        surgery(resnet, tmp_path / "out2", [{"name": "replace_op", "op": "Relu", "by": "Sigmoid"}])


@pytest.fixture(scope="session")
def gelu_mlp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A torch MLP with exact GELU (nn.GELU): the exporter writes Div/Erf/Add/Mul/Mul chains."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(16, 64), nn.GELU(), nn.Linear(64, 64), nn.GELU(), nn.Linear(64, 10)).eval()
    path = tmp_path_factory.mktemp("gelu") / "mlp.onnx"
    torch.onnx.export(net, (torch.zeros(4, 16),), str(path), dynamo=False, opset_version=17,
                      input_names=["x"], output_names=["y"])
    return path


def test_gelu_tanh_replaces_erf_gelu_within_the_approximation_error(gelu_mlp: Path, tmp_path: Path):
    assert ops(gelu_mlp)["Erf"] == 2
    model, report = surgery(gelu_mlp, tmp_path / "out", ["gelu_tanh"])
    assert ops(model)["Erf"] == 0 and ops(model)["Tanh"] == 2 and ops(model)["Div"] == 0
    assert report[0]["verified"] is True and report[0]["tolerance"] == {"rtol": 0.01, "atol": 0.005}
    x = np.random.default_rng(3).standard_normal((4, 16)).astype(np.float32) * 3
    old, new = outputs(gelu_mlp, {"x": x})[0], outputs(model, {"x": x})[0]
    assert 0 < np.abs(old - new).max() < 5e-3  # changed, by the approximation's error only
    with pytest.raises(OptbuildError, match="gelu_tanh: the graph has no Erf-based GELU"):
        surgery(relu_model(tmp_path), tmp_path / "out2", ["gelu_tanh"])


def relu_model(tmp_path: Path) -> Path:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
    path = tmp_path / "relu.onnx"
    onnx.save(helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x],
                                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])]),
                                opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


@pytest.mark.parametrize("which,opset", [("effnet", 14), ("resnet", 21)])
def test_convert_opset_down_and_up(which: str, opset: int, request, tmp_path: Path, photos):
    source = request.getfixturevalue(which)
    model, report = surgery(source, tmp_path / "out", ["fold_constants", {"name": "convert_opset", "opset": opset}])
    assert {o.domain: o.version for o in model.opset_import}[""] == opset
    assert report[1]["verified"] is True
    np.testing.assert_allclose(outputs(model, {"input": photos[:1]})[0], outputs(source, {"input": photos[:1]})[0],
                               rtol=1e-4, atol=1e-4)
    if which == "effnet":  # onnx has no adapter taking Add below opset 14: one line saying so
        with pytest.raises(OptbuildError, match="convert_opset: .* from opset 17 to 13: .*No Adapter"):
            surgery(source, tmp_path / "out2", [{"name": "convert_opset", "opset": 13}])


def test_embed_preprocess_takes_raw_photos(resnet: Path, tmp_path: Path):
    model, report = surgery(resnet, tmp_path / "out", ["embed_preprocess"])
    (image,) = model.graph.input
    assert image.name == "input" and image.type.tensor_type.elem_type == TensorProto.UINT8
    assert [d.dim_value for d in image.type.tensor_type.shape.dim] == [1, 224, 224, 3]
    assert report[0]["added"] == {"Cast": 1, "Mul": 1, "Sub": 1, "Transpose": 1} and report[0]["verified"] is True
    pixels = real_models.photo_batch(1)
    np.testing.assert_allclose(outputs(model, {"input": pixels})[0],
                               outputs(resnet, {"input": real_models.normalized(pixels)})[0], rtol=1e-4, atol=1e-4)
    # BGR pixels (OpenCV) give the same result once the pass knows.
    model, _ = surgery(resnet, tmp_path / "bgr", [{"name": "embed_preprocess", "bgr": True}])
    np.testing.assert_allclose(outputs(model, {"input": pixels[..., ::-1].copy()})[0],
                               outputs(resnet, {"input": real_models.normalized(pixels)})[0], rtol=1e-4, atol=1e-4)


@pytest.fixture(scope="session")
def effnet_qdq(effnet: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """EfficientNet-Lite0 quantized by ONNX Runtime in QDQ format: uint8 activations (zero
    point 0 after its ReLU6s), int8 weights — what TensorRT cannot take as is."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Photos(CalibrationDataReader):
        def __init__(self) -> None:
            batch = real_models.normalized(real_models.photo_batch(4))
            self.items = iter([{"input": batch[i : i + 1]} for i in range(4)])

        def get_next(self):
            return next(self.items, None)

    path = tmp_path_factory.mktemp("qdq") / "effnet_qdq.onnx"
    quantize_static(str(effnet), str(path), Photos(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return path


def test_qdq_to_signed_makes_tensorrt_style_int8(effnet_qdq: Path, tmp_path: Path, photos):
    before = onnx_facts(effnet_qdq)["quantization"]
    assert before["QuantizeLinear"] == {"uint8": 96}
    # Exact form: zero points shifted by -128, same scales, same numbers bit for bit.
    model, report = surgery(effnet_qdq, tmp_path / "exact", [{"name": "qdq_to_signed", "symmetric": False}])
    assert onnx_facts(tmp_path / "exact/model.onnx")["quantization"]["QuantizeLinear"] == {"int8": 96}
    assert report[0]["max_abs_error"] == 0.0 and report[0]["tolerance"]["atol"] < 1e-6
    np.testing.assert_array_equal(outputs(model, {"input": photos[:1]})[0], outputs(effnet_qdq, {"input": photos[:1]})[0])
    # Symmetric (TensorRT): every zero point 0; the old saturation is kept with Clips.
    model, report = surgery(effnet_qdq, tmp_path / "sym", ["qdq_to_signed"])
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    zero_points = [inits[n.input[2]] for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")
                   and inits[n.input[2]].dtype == np.int8]
    assert len(zero_points) == 96 + 96 + 50 and all((z == 0).all() for z in zero_points)
    symmetric_already = sum(1 for n in onnx.load(str(effnet_qdq)).graph.node if n.op_type == "QuantizeLinear"
                            and {t.name: numpy_helper.to_array(t) for t in onnx.load(str(effnet_qdq)).graph.initializer}
                            [n.input[2]] == 128)
    assert report[0]["added"]["Clip"] == 96 - symmetric_already  # zero point 128 needs no Clip
    new, old = per_sample(tmp_path / "sym/model.onnx", photos), per_sample(effnet_qdq, photos)
    assert (new.argmax(1) == old.argmax(1)).all()
    assert np.abs(new - old).max() < 0.1 * np.abs(old).max()


def test_every_pass_handles_models_with_external_data(effnet: Path, tmp_path: Path, monkeypatch, photos):
    """Models over 2 GB keep weights in external data: the same code path, on a small model
    that is treated as large."""
    monkeypatch.setattr(onnx_io, "LARGE_MODEL_BYTES", 100_000)
    model = onnx.load(str(effnet))
    folder = tmp_path / "split"
    folder.mkdir()
    assert onnx_io.save(model, folder / "model.onnx") == ["model.onnx", "model.onnx.data"]
    assert (folder / "model.onnx").stat().st_size < 200_000
    passes = ["fold_constants", "cleanup", "remove_identity", "simplify", {"name": "convert_opset", "opset": 18},
              "dynamic_batch", {"name": "rename_io", "outputs": {"logits": "scores"}},
              {"name": "replace_op", "op": "Clip", "by": "Clip"}, "embed_preprocess",
              {"name": "set_input_shape", "input": "input", "shape": [2, 224, 224, 3]},
              {"name": "extract_subgraph", "inputs": ["input"], "outputs": ["scores"]}]
    specs = [s.stage_entry() for s in parse_passes(passes)]
    out = tmp_path / "out"
    out.mkdir()
    result = run_passes({"model.onnx": str(folder / "model.onnx")}, {"passes": specs}, str(out))
    assert result["files"] == ["model.onnx", "model.onnx.data"]
    assert all(entry["verified"] for entry in result["data"]["passes"])
    pixels = real_models.photo_batch(2)
    np.testing.assert_allclose(outputs(out / "model.onnx", {"input": pixels})[0], per_sample(effnet, photos),
                               rtol=1e-4, atol=1e-4)


def test_onnx_source_with_external_data_keys_on_the_data(effnet: Path, tmp_path: Path):
    from optbuild.sources.onnx_file import import_onnx, source_identity

    folder = tmp_path / "ext"
    folder.mkdir()
    onnx_io.save(onnx.load(str(effnet)), folder / "net.onnx", external=True)
    identity = source_identity(str(folder / "net.onnx"))
    assert list(identity["external_data_sha256"]) == ["net.onnx.data"]
    out = tmp_path / "out"
    out.mkdir()
    assert import_onnx({}, {"model": str(folder / "net.onnx")}, str(out))["files"] == ["model.onnx"]
    data = bytearray((folder / "net.onnx.data").read_bytes())
    data[1000] ^= 0xFF
    (folder / "net.onnx.data").write_bytes(bytes(data))
    assert source_identity(str(folder / "net.onnx")) != identity  # new weights, new cache key
    (folder / "net.onnx.data").unlink()
    with pytest.raises(OptbuildError, match="net.onnx.data', which is missing"):
        source_identity(str(folder / "net.onnx"))


def test_unknown_pass_and_mistyped_parameter_name_what_is_wrong():
    with pytest.raises(OptbuildError, match=r"unknown pass 'fold_constant' at passes\[1\]; available: .*fold_constants"):
        parse_passes(["cleanup", "fold_constant"])
    with pytest.raises(OptbuildError, match=r"pass 'set_input_shape' \(passes\[0\]\): parameter 'shap'.*"
                                            r"its parameters: verify, input, shape"):
        parse_passes([{"name": "set_input_shape", "input": "x", "shape": [1], "shap": [1]}])
    with pytest.raises(OptbuildError, match="parameter 'input': Field required"):
        parse_passes([{"name": "set_input_shape", "shape": [1]}])
