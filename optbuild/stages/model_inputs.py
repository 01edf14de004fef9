"""The model's inputs as the recipe declares them must be the graph's inputs."""

from __future__ import annotations

from typing import Any

from optbuild.errors import OptbuildError


def _describe(tensor: Any) -> str:
    dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
            for d in tensor.type.tensor_type.shape.dim]
    return f"{tensor.name}{dims}"


def check_inputs(model: Any, expected: list[dict[str, Any]]) -> None:
    """Names must match; static dims must equal the recipe's (symbolic dims accept any size)."""
    graph_inputs = {t.name: t for t in model.graph.input}
    initializers = {t.name for t in model.graph.initializer}
    actual = ", ".join(_describe(t) for n, t in graph_inputs.items() if n not in initializers)
    for spec in expected:
        tensor = graph_inputs.get(spec["name"])
        if tensor is None:
            raise OptbuildError(
                f"the model has no input '{spec['name']}' (its inputs: {actual}); fix model.inputs"
            )
        dims = tensor.type.tensor_type.shape.dim
        static = [d.dim_value if d.HasField("dim_value") else None for d in dims]
        if len(static) != len(spec["shape"]) or any(
            s is not None and s != want for s, want in zip(static, spec["shape"])
        ):
            raise OptbuildError(
                f"model.inputs gives '{spec['name']}' shape {spec['shape']} but the model has "
                f"{_describe(tensor)}; fix model.inputs (or add a set_input_shape pass)"
            )
