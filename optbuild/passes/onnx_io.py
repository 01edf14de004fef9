"""Loading, saving, checking and running ONNX models of any size.

Protobuf cannot serialize a message of 2 GiB or more, so a model past LARGE_MODEL_BYTES is
never serialized whole: it is saved with its weights in one external `<name>.data` file, and
the checker, shape inference and ONNX Runtime read it from disk. Smaller models stay in memory.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

LARGE_MODEL_BYTES = 1_800_000_000  # headroom under protobuf's 2 GiB limit
DATA_SUFFIX = ".data"


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str  # numpy name, e.g. float32
    shape: list[int | str | None] | None  # ints static, strings symbolic, None unknown

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "shape": self.shape}


def _spec(value_info: Any) -> TensorSpec:
    import onnx

    kind = value_info.type.tensor_type
    dtype = onnx.helper.tensor_dtype_to_np_dtype(kind.elem_type).name if kind.elem_type else "unknown"
    shape: list[int | str | None] | None = None
    if kind.HasField("shape"):
        shape = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in kind.shape.dim]
    return TensorSpec(value_info.name, dtype, shape)


def graph_inputs(model: Any) -> list[TensorSpec]:
    """The inputs a caller feeds (old IR versions also list initializers as inputs)."""
    initializers = {t.name for t in model.graph.initializer}
    return [_spec(v) for v in model.graph.input if v.name not in initializers]


def graph_outputs(model: Any) -> list[TensorSpec]:
    return [_spec(v) for v in model.graph.output]


def io_summary(model: Any) -> dict[str, list[dict[str, Any]]]:
    return {"inputs": [t.as_dict() for t in graph_inputs(model)],
            "outputs": [t.as_dict() for t in graph_outputs(model)]}


def byte_size(model: Any) -> int:
    try:
        return int(model.ByteSize())
    except Exception:  # noqa: BLE001 - some protobuf builds refuse to size a >2 GiB message
        return sum(len(t.raw_data) for t in model.graph.initializer)


def is_large(model: Any) -> bool:
    return byte_size(model) > LARGE_MODEL_BYTES


def load(path: str | Path) -> Any:
    """The model with its weights (external data is read from next to the file)."""
    import onnx

    return onnx.load(str(path))


def save(model: Any, path: str | Path, external: bool | None = None) -> list[str]:
    """Write `model`; weights go to `<name>.data` when the model is large (or `external`).
    Returns the names of the files written. `model` is left as it was, weights included."""
    import onnx

    path = Path(path)
    if not (is_large(model) if external is None else external):
        onnx.save(model, str(path))
        return [path.name]
    data = path.name + DATA_SUFFIX
    (path.parent / data).unlink(missing_ok=True)  # onnx appends to an existing data file
    onnx.save(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
              location=data, size_threshold=1024)
    # Saving moved the weights out of `model` into the file: read them back in.
    onnx.external_data_helper.load_external_data_for_model(model, str(path.parent))
    return [path.name, data]


@contextmanager
def on_disk(model: Any, scratch: str | None = None) -> Iterator[str]:
    """A temporary file of `model` with external weights, for tools that must read a path."""
    with tempfile.TemporaryDirectory(prefix="optbuild-onnx-", dir=scratch) as folder:
        path = Path(folder, "model.onnx")
        save(model, path, external=True)
        yield str(path)


def checked(model: Any, scratch: str | None = None, check: bool = True) -> Any:
    """ONNX shape inference, then (if `check`) the ONNX checker; returns the model with
    inferred shapes."""
    import onnx

    if not is_large(model):
        inferred = onnx.shape_inference.infer_shapes(model)
        if check:
            onnx.checker.check_model(inferred)
        return inferred
    with on_disk(model, scratch) as path:
        inferred_path = str(Path(path).with_name("inferred.onnx"))
        onnx.shape_inference.infer_shapes_path(path, inferred_path)
        if check:
            onnx.checker.check_model(inferred_path)
        return onnx.load(inferred_path)


def cpu_session(model: Any, *, optimization: str = "all", threads: int | None = None, spinning: bool = True,
                scratch: str | None = None, disabled: tuple[str, ...] = ()) -> Any:
    """An ONNX Runtime CPU session of a model path, serialized bytes or ModelProto.

    `optimization`: "all" (ONNX Runtime's default), "basic" (Q/DQ nodes run as the graph
    writes them) or "none" (the graph's own arithmetic, for comparing graphs). `spinning=False`
    keeps its idle workers from stealing the cores of whatever runs next (benchmarks). `disabled`:
    ONNX Runtime graph rewrites to leave out, by name."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = {
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    }[optimization]
    options.log_severity_level = 3
    if threads is not None:
        options.intra_op_num_threads = threads
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    kwargs: dict[str, Any] = {"providers": ["CPUExecutionProvider"]}
    if disabled:
        kwargs["disabled_optimizers"] = list(disabled)
    if isinstance(model, (str, bytes, Path)):
        return ort.InferenceSession(str(model) if isinstance(model, Path) else model, options, **kwargs)
    if not is_large(model):
        return ort.InferenceSession(model.SerializeToString(), options, **kwargs)
    with on_disk(model, scratch) as path:
        return ort.InferenceSession(path, options, **kwargs)


def session(model: Any, scratch: str | None = None) -> Any:
    """A session running the graph as written (no ORT graph rewrites, so that what is compared
    is the graph's own arithmetic)."""
    return cpu_session(model, optimization="none", scratch=scratch)


def random_array(rng: np.random.Generator, dtype: str, shape: list[int]) -> np.ndarray:
    """Seeded test data: normal floats, full-range 8-bit integers, small other integers."""
    kind = np.dtype(dtype)
    if kind == np.bool_:
        return rng.random(shape) < 0.5
    if np.issubdtype(kind, np.floating):
        return rng.standard_normal(shape).astype(kind)
    if kind in (np.uint8, np.int8):
        info = np.iinfo(kind)
        return rng.integers(info.min, int(info.max) + 1, shape).astype(kind)
    if np.issubdtype(kind, np.integer):
        return rng.integers(0, 4, shape).astype(kind)
    raise ValueError(f"no test data for inputs of type {dtype}")
