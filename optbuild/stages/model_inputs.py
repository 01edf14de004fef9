"""The model's inputs as the recipe declares them must be the graph's inputs."""

from __future__ import annotations

from typing import Any

from optbuild.errors import OptbuildError


def _dims(tensor: Any) -> list[int | str]:
    """A graph input's dimensions: sizes, symbolic names, or '?' for an unnamed dynamic one."""
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in tensor.type.tensor_type.shape.dim]


def _dtype(tensor: Any) -> str:
    import onnx

    kind = tensor.type.tensor_type.elem_type
    return onnx.helper.tensor_dtype_to_np_dtype(kind).name if kind else "unknown"


def graph_inputs(model: Any) -> dict[str, Any]:
    """The inputs a caller feeds (old IR versions also list initializers as inputs)."""
    initializers = {t.name for t in model.graph.initializer}
    return {t.name: t for t in model.graph.input if t.name not in initializers}


def describe(model: Any) -> str:
    return ", ".join(f"{name} {_dtype(t)}{_dims(t)}" for name, t in graph_inputs(model).items())


def _check_ranges(spec: dict[str, Any], dims: list[int | str]) -> None:
    """A dimension the recipe makes dynamic must be one the model lets vary."""
    for axis, (want, have) in enumerate(zip(spec["shape"], dims)):
        dynamic = isinstance(want, str) or want == -1
        if dynamic and isinstance(have, int):
            key = want if isinstance(want, str) else str(axis)
            bounds = (spec.get("dims") or {}).get(key) or {"min": 1, "opt": 1, "max": 1}
            if not bounds["min"] == bounds["max"] == have:
                raise OptbuildError(f"model.inputs '{spec['name']}' dimension {axis} ranges {bounds['min']}.."
                                    f"{bounds['max']}, but the model fixes it at {have}: drop the range, or make it "
                                    "dynamic first (the dynamic_batch pass, or export it so)")


def check_inputs(model: Any, expected: list[dict[str, Any]]) -> None:
    """Names and element types must match, ranks too; a size the recipe gives must be the
    graph's, unless the graph leaves that dimension dynamic (the build then fixes it)."""
    graph = graph_inputs(model)
    for spec in expected:
        tensor = graph.get(spec["name"])
        if tensor is None:
            raise OptbuildError(f"the model has no input '{spec['name']}' (its inputs: {describe(model)}); "
                                "fix model.inputs")
        dtype = _dtype(tensor)
        if spec.get("dtype", "float32") != dtype:
            raise OptbuildError(f"model.inputs gives '{spec['name']}' dtype {spec.get('dtype', 'float32')} but the "
                                f"model takes {dtype}; set model.inputs[].dtype: {dtype}")
        dims, shape = _dims(tensor), spec["shape"]
        static = [isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape]
        if len(dims) != len(shape) or any(
            fixed and isinstance(have, int) and have != want for fixed, have, want in zip(static, dims, shape)
        ):
            raise OptbuildError(f"model.inputs gives '{spec['name']}' shape {shape} but the model has "
                                f"{spec['name']}{dims}; fix model.inputs (or add a set_input_shape pass)")
        _check_ranges(spec, dims)
    missing = [name for name in graph if name not in {spec["name"] for spec in expected}]
    if missing:
        raise OptbuildError(f"the model also takes {', '.join(missing)}, which model.inputs does not list (its "
                            f"inputs: {describe(model)}); add them to model.inputs")
