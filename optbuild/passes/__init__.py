"""Graph-surgery pass registry.

A pass is a registered function `(graph, params) -> graph` over an onnx-graphsurgeon Graph, with
a pydantic model for its parameters (unknown or mistyped parameters fail naming them) and a
docstring saying what it does and guarantees. Recipes name passes; they never name code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic import ValidationError as PydanticError

from optbuild.errors import OptbuildError


class PassParams(BaseModel):
    """Base of every pass's parameters: `verify: false` skips the numerical check after it."""

    model_config = ConfigDict(extra="forbid")
    verify: bool = True


@dataclass(frozen=True)
class PassInfo:
    name: str
    fn: Callable[..., Any]
    params: type[BaseModel]
    doc: str


@dataclass(frozen=True)
class PassSpec:
    name: str
    params: dict[str, Any] = field(default_factory=dict)


_REGISTRY: dict[str, PassInfo] = {}


def register(name: str, params: type[BaseModel] = PassParams) -> Callable[[Callable], Callable]:
    def decorate(fn: Callable) -> Callable:
        _REGISTRY[name] = PassInfo(name, fn, params, (fn.__doc__ or "").strip())
        return fn

    return decorate


def available() -> dict[str, PassInfo]:
    from optbuild.passes import builtin  # noqa: F401  (registers the built-in passes)

    return dict(sorted(_REGISTRY.items()))


def parse_passes(items: list[Any]) -> list[PassSpec]:
    """Recipe `passes:` entries (a name or {name: ..., params}) as validated PassSpecs."""
    registry = available()
    specs = []
    for index, item in enumerate(items):
        if isinstance(item, str):
            name, raw = item, {}
        elif isinstance(item, dict) and isinstance(item.get("name"), str):
            raw = {k: v for k, v in item.items() if k != "name"}
            name = item["name"]
        else:
            raise OptbuildError(
                f"passes[{index}] must be a pass name or a mapping with 'name': got {item!r}"
            )
        if name not in registry:
            raise OptbuildError(
                f"unknown pass '{name}' at passes[{index}]; available: {', '.join(registry)}"
            )
        try:
            params = registry[name].params.model_validate(raw).model_dump(mode="json")
        except PydanticError as err:
            first = err.errors()[0]
            key = ".".join(str(p) for p in first["loc"])
            raise OptbuildError(
                f"pass '{name}' (passes[{index}]): parameter '{key}': {first['msg']}"
            ) from err
        specs.append(PassSpec(name, params))
    return specs
