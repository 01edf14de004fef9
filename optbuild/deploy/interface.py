"""A model's inputs and outputs as a server declares them: name, dtype, dims (-1 dynamic).

The manifest's `interface` field, when the build recorded one, is what the artifact promises;
otherwise the model file itself is read: the OpenVINO IR with OpenVINO, the ONNX graph a TensorRT
engine or kit was built from (the engine's bindings keep its names and types) without its weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from optbuild.errors import OptbuildError, first_line
from optbuild.publish.published import Artifact, ModelKind

DYNAMIC = -1
# OpenVINO element types by their names, as numpy (and ml_dtypes) name them.
_OPENVINO_TYPES = {"f32": "float32", "f16": "float16", "bf16": "bfloat16", "f64": "float64", "i8": "int8",
                   "u8": "uint8", "i16": "int16", "u16": "uint16", "i32": "int32", "u32": "uint32", "i64": "int64",
                   "u64": "uint64", "boolean": "bool", "string": "string"}


@dataclass(frozen=True)
class Tensor:
    name: str
    dtype: str  # numpy name: float32, float16, bfloat16, uint8, int64, bool, ...
    shape: tuple[int, ...]  # DYNAMIC where the model leaves a dimension open
    batch_bound: int | None = None  # an IR's upper bound on a dynamic first dimension, when it has one


@dataclass(frozen=True)
class Interface:
    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]
    source: str  # where it was read: the manifest's interface field or the model file

    @property
    def batched(self) -> bool:
        """Every input and output has a dynamic first dimension: a batch a server may fill."""
        return all(t.shape and t.shape[0] == DYNAMIC for t in self.inputs + self.outputs)


def read_interface(artifact: Artifact) -> Interface:
    recorded = artifact.manifest.get("interface")
    if recorded:
        return _recorded(recorded)
    if artifact.kind is ModelKind.openvino:
        return _from_openvino(artifact)
    return _from_onnx(artifact)


def _dim(value: Any) -> int:
    """-1, None, 0 and symbolic names are dynamic; a positive int is a size."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else DYNAMIC


def _recorded(recorded: dict[str, Any]) -> Interface:
    try:
        sides = [tuple(Tensor(str(t["name"]), _OPENVINO_TYPES.get(str(t["dtype"]), str(t["dtype"])),
                              _recorded_shape(t))
                       for t in recorded[side]) for side in ("inputs", "outputs")]
    except (KeyError, TypeError) as err:
        raise OptbuildError(f"deploy: the manifest's interface is malformed (no {err}); rebuild the artifact") from err
    return Interface(sides[0], sides[1], "manifest interface")


def _recorded_shape(tensor: dict[str, Any]) -> tuple[int, ...]:
    """An input contract records its opt sizes in `shape` and what may vary in `dynamic`."""
    dims = [_dim(d) for d in tensor["shape"]]
    for axis in tensor.get("dynamic") or {}:
        dims[int(axis)] = DYNAMIC
    return tuple(dims)


def _from_openvino(artifact: Artifact) -> Interface:
    try:
        import openvino as ov
    except ImportError as err:
        raise OptbuildError("deploy: reading the OpenVINO IR needs openvino: pip install 'optbuild[intel]'") from err
    try:
        model = ov.Core().read_model(str(artifact.file("model.xml")))
    except Exception as err:  # noqa: BLE001 - a broken IR reads as any of several errors
        raise OptbuildError(f"deploy: {artifact.file('model.xml')} is not a readable OpenVINO IR: "
                            f"{first_line(err)}") from err
    return Interface(tuple(_openvino_port(p) for p in model.inputs), tuple(_openvino_port(p) for p in model.outputs),
                     "model.xml")


def _openvino_port(port: Any) -> Tensor:
    dims = list(port.get_partial_shape())
    shape = tuple(d.get_length() if d.is_static else DYNAMIC for d in dims)
    bound = dims[0].get_max_length() if dims and dims[0].is_dynamic and dims[0].get_max_length() > 0 else None
    kind = port.get_element_type().get_type_name()
    return Tensor(port.get_any_name(), _OPENVINO_TYPES.get(kind, kind), shape, bound)


def _from_onnx(artifact: Artifact) -> Interface:
    import onnx

    from optbuild.passes.onnx_io import graph_inputs, graph_outputs

    model = onnx.load(str(artifact.file("model.onnx")), load_external_data=False)  # the graph, not its weights
    sides = [tuple(Tensor(t.name, t.dtype, tuple(_dim(d) for d in t.shape or ())) for t in specs)
             for specs in (graph_inputs(model), graph_outputs(model))]
    return Interface(sides[0], sides[1], "model.onnx")
