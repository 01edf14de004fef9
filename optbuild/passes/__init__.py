"""Graph-surgery pass registry.

A pass is a registered function over an onnx-graphsurgeon Graph (or, for whole-model tools such
as the opset converter and onnxslim, an onnx ModelProto), with a pydantic model for its
parameters (unknown or mistyped parameters fail naming them), a docstring saying what it does
and guarantees, and the tolerance within which its outputs must match the graph before it.
Recipes name passes; they never name code. Third-party passes arrive as Python entry points in
the group `optbuild.passes`: the entry point's name is the pass name, its object a function
decorated with `@optbuild.passes.register(name, ...)`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from importlib import metadata
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from pydantic import ValidationError as PydanticError

from optbuild.errors import OptbuildError, first_line

ENTRY_POINT_GROUP = "optbuild.passes"
BUILTIN_MODULES = ("structure", "shapes", "rewrite", "preprocess", "quantization")


class PassParams(BaseModel):
    """Base of every pass's parameters: `verify: false` skips the numerical check after it."""

    model_config = ConfigDict(extra="forbid")
    verify: bool = True


@dataclass(frozen=True)
class Tolerance:
    """How far outputs may move, per element: an element matches when
    |after - before| <= atol * max(1, max|before|)  or  |after - before| <= rtol * |before|.
    (Polygraphy's elementwise check, with atol scaled to the output's magnitude so that one
    tolerance fits logits and probabilities alike.)"""

    rtol: float
    atol: float


EXACT = Tolerance(rtol=1e-6, atol=1e-7)  # same arithmetic: equal up to float rounding
ROUNDING = Tolerance(rtol=1e-4, atol=1e-5)  # reordered float arithmetic (folding, fusion, batching)

# The tolerance may depend on the pass's parameters (e.g. a lossy option).
ToleranceRule = Tolerance | Callable[[dict[str, Any]], Tolerance]


@dataclass(frozen=True)
class PassInfo:
    name: str
    fn: Callable[..., Any]
    params: type[BaseModel]
    doc: str
    tolerance: ToleranceRule = ROUNDING
    works_on: Literal["graph", "model"] = "graph"  # onnx-graphsurgeon Graph or onnx ModelProto
    # Builds the numerical check's inputs when the default (same feeds, outputs by position) does
    # not fit the pass, e.g. a pass that changes the input layout. See optbuild.passes.check.
    probe: Callable[..., Any] | None = None
    origin: str = "builtin"  # "builtin", or the plugin distribution "name==version"
    # The pass changes what the graph takes (names, shapes, types of its inputs): the recipe's
    # model.inputs then describe the graph after surgery, not the source model.
    changes_inputs: bool = False

    def tolerance_for(self, params: dict[str, Any]) -> Tolerance:
        rule = self.tolerance
        return rule if isinstance(rule, Tolerance) else rule(params)


@dataclass(frozen=True)
class PassSpec:
    name: str
    params: dict[str, Any] = field(default_factory=dict)
    origin: str = "builtin"

    def stage_entry(self) -> dict[str, Any]:
        """What the surgery stage receives; a plugin's version enters the cache key with it."""
        entry: dict[str, Any] = {"name": self.name, "params": self.params}
        if self.origin != "builtin":
            entry["origin"] = self.origin
        return entry


_REGISTRY: dict[str, PassInfo] = {}


def register(name: str, params: type[BaseModel] = PassParams, *, tolerance: ToleranceRule = ROUNDING,
             works_on: Literal["graph", "model"] = "graph",
             probe: Callable[..., Any] | None = None, changes_inputs: bool = False) -> Callable[[Callable], Callable]:
    """Register `fn(graph_or_model, **params) -> graph_or_model` as pass `name`."""

    def decorate(fn: Callable) -> Callable:
        known = _REGISTRY.get(name)
        if known is not None and _qualified(known.fn) != _qualified(fn):
            raise OptbuildError(
                f"pass '{name}' is registered twice ({_qualified(known.fn)} and {_qualified(fn)}); "
                "rename one of them"
            )
        _REGISTRY[name] = PassInfo(name, fn, params, (fn.__doc__ or "").strip(), tolerance, works_on, probe,
                                   changes_inputs=changes_inputs)
        return fn

    return decorate


def _qualified(fn: Callable) -> str:
    return f"{fn.__module__}.{fn.__qualname__}"


def _load_builtins() -> None:
    import importlib

    for module in BUILTIN_MODULES:
        importlib.import_module(f"optbuild.passes.{module}")


def _plugin_entry_points() -> dict[str, metadata.EntryPoint]:
    return {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def _origin(ep: metadata.EntryPoint) -> str:
    return f"{ep.dist.name}=={ep.dist.version}" if ep.dist is not None else ep.value


def _load_plugin(ep: metadata.EntryPoint) -> PassInfo:
    where = f"entry point '{ep.name} = {ep.value}' ({_origin(ep)}) in group {ENTRY_POINT_GROUP}"
    try:
        loaded = ep.load()
    except OptbuildError as err:
        raise OptbuildError(f"pass plugin {where} cannot be loaded: {err.message}") from err
    except Exception as err:  # noqa: BLE001 - any import failure of third-party code means the same
        first = first_line(err)
        raise OptbuildError(
            f"pass plugin {where} cannot be loaded ({type(err).__name__}: {first}); fix or uninstall it"
        ) from err
    info = _REGISTRY.get(ep.name)
    if info is None or info.fn is not loaded:
        raise OptbuildError(
            f"pass plugin {where} did not register a pass named '{ep.name}': decorate the function "
            f"with @optbuild.passes.register('{ep.name}', ...)"
        )
    info = replace(info, origin=_origin(ep))
    _REGISTRY[ep.name] = info
    return info


def names() -> list[str]:
    """Every pass name, built-in and installed plugins, without importing the plugins."""
    _load_builtins()
    return sorted(set(_REGISTRY) | set(_plugin_entry_points()))


def get(name: str) -> PassInfo:
    _load_builtins()
    info = _REGISTRY.get(name)
    if info is not None and info.origin != "builtin":
        return info  # a plugin, already loaded
    plugins = _plugin_entry_points()
    if name in plugins:
        if info is not None and info.fn.__module__.startswith("optbuild."):
            raise OptbuildError(
                f"pass plugin '{plugins[name].value}' ({_origin(plugins[name])}) takes the name of the "
                f"built-in pass '{name}': the plugin must choose another name"
            )
        return _load_plugin(plugins[name])
    if info is None:
        raise OptbuildError(f"unknown pass '{name}'; available: {', '.join(names())}")
    return info


def available() -> dict[str, PassInfo]:
    """Every pass with its metadata (loads the installed plugins)."""
    return {name: get(name) for name in names()}


def parse_passes(items: list[Any]) -> list[PassSpec]:
    """Recipe `passes:` entries (a name or {name: ..., params}) as validated PassSpecs."""
    specs, known = [], names()
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
        if name not in known:
            raise OptbuildError(f"unknown pass '{name}' at passes[{index}]; available: {', '.join(known)}")
        info = get(name)
        try:
            params = info.params.model_validate(raw).model_dump(mode="json")
        except PydanticError as err:
            first = err.errors()[0]
            key = ".".join(str(p) for p in first["loc"])
            raise OptbuildError(
                f"pass '{name}' (passes[{index}]): parameter '{key}': {first['msg']}"
                + (f"; its parameters: {', '.join(info.params.model_fields)}"
                   if first["type"] == "extra_forbidden" else "")
            ) from err
        specs.append(PassSpec(name, params, info.origin))
    return specs
