"""The check after each pass probes dynamic dimensions at the recipe's sizes, not at 1: a pass
that breaks a model only at real sizes is caught, and token ids stay inside the vocabulary."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from optbuild.errors import OptbuildError
from optbuild.passes import get
from optbuild.passes.check import CHEAP_VALUES, Sessions, declared_shape, probe_bounds, verify

IDS = {"name": "input_ids", "dtype": "int64", "shape": ["batch", "seq"], "high": 50,
       "dims": {"batch": {"min": 1, "opt": 2, "max": 8}, "seq": {"min": 4, "opt": 16, "max": 64}}}
VOCAB = 50


def embedding(rows: int = VOCAB) -> onnx.ModelProto:
    """Token ids [batch, seq] -> embeddings [batch, seq, 8] through a Gather over `rows` rows."""
    table = numpy_helper.from_array(np.arange(rows * 8, dtype=np.float32).reshape(rows, 8) / 100, "table")
    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "input_ids"], ["hidden"])], "embedding",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"])],
        [helper.make_tensor_value_info("hidden", TensorProto.FLOAT, ["batch", "seq", 8])], [table])
    return onnx.shape_inference.infer_shapes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))


class Recording(Sessions):
    """Sessions that remember the shapes and values each graph was fed."""

    def __init__(self) -> None:
        super().__init__()
        self.fed: list[np.ndarray] = []

    def run(self, model, feeds):
        self.fed.extend(feeds.values())
        return super().run(model, feeds)


def test_declared_shape_takes_each_bound_and_a_dynamic_batch_without_range_is_one():
    assert declared_shape(IDS, "opt") == [2, 16] and declared_shape(IDS, "max") == [8, 64]
    assert declared_shape({"shape": [-1, 3, 48, 192]}, "max") == [1, 3, 48, 192]
    assert declared_shape({"shape": [-1, 3], "dims": {"0": {"min": 1, "opt": 4, "max": 4}}}, "opt") == [4, 3]


def test_bounds_skip_repeats_and_an_expensive_max():
    assert probe_bounds({}) == ["opt"]
    assert probe_bounds({"input_ids": IDS}) == ["opt", "min", "max"]
    fixed = {"name": "x", "shape": [1, 3, 8, 8]}
    assert probe_bounds({"x": fixed}) == ["opt"]
    huge = {**IDS, "dims": {"batch": {"min": 1, "opt": 1, "max": 64}, "seq": {"min": 1, "opt": 128,
                                                                                 "max": CHEAP_VALUES}}}
    assert probe_bounds({"input_ids": huge}) == ["opt", "min"]


def test_a_pass_is_checked_at_every_declared_size_with_ids_inside_the_vocabulary():
    model = embedding()
    sessions = Recording()
    record = verify(get("cleanup"), {}, model, embedding(), sessions, {"input_ids": IDS})
    assert record["verified"] and record["probed_at"] == ["opt", "min", "max"]
    ids = [fed for fed in sessions.fed if fed.dtype == np.int64]
    assert {fed.shape for fed in ids} == {(2, 16), (1, 4), (8, 64)}
    assert all(0 <= fed.min() and fed.max() < VOCAB for fed in ids)


def test_a_change_seen_only_at_real_sizes_fails_the_pass():
    """The graph after differs from the one before only for token ids >= 4: at the sizes and
    ids of the old probe (dimensions at 1, integers 0..3) both agreed."""
    after = embedding()
    table = after.graph.initializer[0]
    values = numpy_helper.to_array(table).copy()
    values[4:] += 1.0
    table.CopyFrom(numpy_helper.from_array(values, "table"))
    with pytest.raises(OptbuildError, match="pass 'cleanup' changed the model's output 'hidden'"):
        verify(get("cleanup"), {}, embedding(), after, Sessions(), {"input_ids": IDS})
