"""Graph-surgery passes on real ONNX graphs: structure changes and numerical equivalence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from optbuild.errors import OptbuildError
from optbuild.passes import PassParams, parse_passes, register
from optbuild.stages.surgery import run_passes


def surgery(model_path: Path, out: Path, passes: list) -> tuple[onnx.ModelProto, list[dict]]:
    specs = [{"name": s.name, "params": s.params} for s in parse_passes(passes)]
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
