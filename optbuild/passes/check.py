"""The numerical check after each pass: the graph after it against the graph before it.

A probe turns the two graphs into cases: feeds for the new graph and the outputs the old graph
gives for the same data. The default probe feeds both graphs the same seeded random inputs and
matches inputs and outputs by position (so renames are fine). Passes that change what the graph
takes (a new input layout, a dynamic batch, a cut-out subgraph) bring their own probe.
The comparison is Polygraphy's elementwise one; a miss names the pass and the worst output.

A dynamic dimension is probed at the recipe's sizes for it (`model.inputs[].dims`): at `opt`, at
`min`, and at `max` when that is cheap (a few million values per probe); one the recipe does
not declare is probed at 1. Integer inputs draw from the recipe's `[low, high)` where given
(token ids stay inside the vocabulary).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from optbuild.errors import OptbuildError, first_line
from optbuild.passes import PassInfo, Tolerance
from optbuild.passes.onnx_io import TensorSpec, graph_inputs, graph_outputs, random_array, session

SEED = 0
BOUNDS = ("opt", "min", "max")
CHEAP_VALUES = 1 << 22  # a probe at `max` runs when all its inputs together hold at most this many values


@dataclass
class Case:
    feeds: dict[str, np.ndarray]  # inputs of the graph after the pass
    expected: dict[str, np.ndarray]  # its outputs, as the graph before the pass computes them


class Unverifiable(Exception):
    """The pass changed the graph's interface so that the old graph's results do not apply."""


class Sessions:
    """ONNX Runtime sessions by model; the graph after one pass is the graph before the next."""

    def __init__(self, scratch: str | None = None) -> None:
        self.scratch = scratch
        self._cache: dict[int, tuple[Any, Any]] = {}  # id(model) -> (model, session)

    def run(self, model: Any, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if id(model) not in self._cache:
            self._cache[id(model)] = (model, session(model, self.scratch))
        sess = self._cache[id(model)][1]
        names = [o.name for o in sess.get_outputs()]
        return dict(zip(names, sess.run(names, feeds)))

    def keep_only(self, *models: Any) -> None:
        keep = {id(m) for m in models}
        self._cache = {k: v for k, v in self._cache.items() if k in keep}


@dataclass
class Graphs:
    """What a probe sees."""

    before: Any  # onnx ModelProto, shapes inferred
    after: Any
    params: dict[str, Any]
    rng: np.random.Generator
    run: Callable[[Any, dict[str, np.ndarray]], dict[str, np.ndarray]]
    declared: dict[str, dict[str, Any]] = field(default_factory=dict)  # the recipe's inputs, by name
    bound: str = "opt"  # which size of each declared range this probe uses

    def shape(self, before: TensorSpec, after: TensorSpec | None = None) -> list[int]:
        """A shape both graphs accept for this input (see concrete_shape), dynamic dimensions at
        the probe's bound of the recipe's range."""
        return concrete_shape(before, after or before, self.sizes(before.name))

    def array(self, spec: TensorSpec, shape: list[int]) -> np.ndarray:
        """Seeded test data for an input, integers inside the recipe's [low, high) when given."""
        declared = self.declared.get(spec.name) or {}
        if np.issubdtype(np.dtype(spec.dtype), np.integer) and declared.get("high") is not None:
            low = int(declared.get("low") or 0)
            return self.rng.integers(low, max(int(declared["high"]), low + 1), shape).astype(spec.dtype)
        return random_array(self.rng, spec.dtype, shape)

    def sizes(self, name: str) -> list[int] | None:
        """The recipe's shape for input `name` at this probe's bound (None: not declared)."""
        declared = self.declared.get(name)
        return None if declared is None else declared_shape(declared, self.bound)


def declared_shape(spec: dict[str, Any], bound: str) -> list[int]:
    """A declared input's shape with each dynamic dimension at `bound` of its range (1 when the
    recipe gives none: a dynamic batch)."""
    dims = spec.get("dims") or {}
    shape = []
    for axis, dim in enumerate(spec["shape"]):
        if isinstance(dim, int) and dim != -1:
            shape.append(dim)
        else:
            key = dim if isinstance(dim, str) else str(axis)
            shape.append(int((dims.get(key) or {}).get(bound, 1)))
    return shape


def probe_bounds(declared: dict[str, dict[str, Any]]) -> list[str]:
    """The bounds worth probing: opt, then min and max where they give other shapes (max only
    when cheap). Without declared ranges: one probe."""
    chosen: list[str] = []
    seen: list[list[list[int]]] = []
    for bound in BOUNDS:
        shapes = [declared_shape(spec, bound) for spec in declared.values()]
        if shapes in seen:
            continue
        if bound == "max" and sum(int(np.prod(s)) for s in shapes) > CHEAP_VALUES:
            continue
        chosen.append(bound)
        seen.append(shapes)
    return chosen or ["opt"]


def concrete_shape(before: TensorSpec, after: TensorSpec, sizes: list[int] | None = None) -> list[int]:
    """A shape both graphs accept: static dims of either; symbolic/unknown ones from `sizes` (the
    recipe's declared shape, when its rank fits), else 1."""
    b_shape, a_shape = before.shape or [], after.shape or []
    if before.shape is not None and after.shape is not None and len(b_shape) != len(a_shape):
        raise Unverifiable(f"input '{after.name}' changed rank from {b_shape} to {a_shape}")
    dims = []
    for axis, (b, a) in enumerate(zip(b_shape or a_shape, a_shape or b_shape)):
        if isinstance(b, int) and isinstance(a, int) and a != b:
            raise Unverifiable(f"input '{after.name}' changed shape from {b_shape} to {a_shape}")
        declared = sizes[axis] if sizes is not None and len(sizes) == len(b_shape or a_shape) else 1
        dims.append(a if isinstance(a, int) else b if isinstance(b, int) else declared)
    return dims


def default_probe(graphs: Graphs) -> list[Case]:
    """Same seeded inputs into both graphs; inputs and outputs matched by position."""
    old_in, new_in = graph_inputs(graphs.before), graph_inputs(graphs.after)
    old_out, new_out = graph_outputs(graphs.before), graph_outputs(graphs.after)
    if len(old_in) != len(new_in) or len(old_out) != len(new_out):
        raise Unverifiable("the pass changed the number of graph inputs or outputs")
    old_feeds, new_feeds = {}, {}
    for old, new in zip(old_in, new_in):
        if old.dtype != new.dtype:
            raise Unverifiable(f"input '{new.name}' changed type from {old.dtype} to {new.dtype}")
        value = graphs.array(old, graphs.shape(old, new))
        old_feeds[old.name], new_feeds[new.name] = value, value
    reference = graphs.run(graphs.before, old_feeds)
    return [Case(new_feeds, {n.name: reference[o.name] for o, n in zip(old_out, new_out)})]


@dataclass
class OutputDiff:
    name: str
    max_abs: float
    max_rel: float
    mean_abs: float
    mismatched: int
    elements: int
    allowed_abs: float
    excess: float  # > 1: beyond tolerance; the worst output has the largest

    def line(self, tolerance: Tolerance) -> str:
        return (
            f"output '{self.name}' beyond its tolerance: {self.mismatched} of {self.elements} values, "
            f"max abs diff {self.max_abs:.3g} (allowed {self.allowed_abs:.3g}), max rel diff "
            f"{self.max_rel:.3g} (allowed {tolerance.rtol:g}), mean abs diff {self.mean_abs:.3g}"
        )


def diff(name: str, expected: np.ndarray, actual: np.ndarray, tolerance: Tolerance) -> OutputDiff:
    ref = expected.astype(np.float64)
    got = actual.astype(np.float64)
    absdiff = np.abs(got - ref)
    both_nan = np.isnan(ref) & np.isnan(got)
    absdiff = np.where(both_nan, 0.0, np.where(np.isnan(absdiff), np.inf, absdiff))
    finite = ref[np.isfinite(ref)]
    allowed_abs = tolerance.atol * max(1.0, float(np.abs(finite).max()) if finite.size else 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        reldiff = np.where(absdiff == 0, 0.0, absdiff / np.abs(ref))
        over_abs = absdiff / allowed_abs if allowed_abs > 0 else np.where(absdiff > 0, np.inf, 0.0)
        over_rel = reldiff / tolerance.rtol if tolerance.rtol > 0 else np.where(reldiff > 0, np.inf, 0.0)
    excess = np.minimum(over_abs, over_rel)
    finite_rel = reldiff[np.isfinite(reldiff)]
    return OutputDiff(
        name=name,
        max_abs=float(absdiff.max()) if absdiff.size else 0.0,
        max_rel=float(finite_rel.max()) if finite_rel.size else 0.0,  # x/0 would not be JSON
        mean_abs=float(absdiff.mean()) if absdiff.size else 0.0,
        mismatched=int((excess > 1).sum()),
        elements=int(absdiff.size),
        allowed_abs=allowed_abs,
        excess=float(excess.max()) if excess.size else 0.0,
    )


def verify(info: PassInfo, params: dict[str, Any], before: Any, after: Any, sessions: Sessions,
           declared: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Run the check; returns its record for the report, raises OptbuildError on a mismatch.
    `declared`: the recipe's inputs by name, whose ranges give the probed sizes."""
    tolerance = info.tolerance_for(params)
    record: dict[str, Any] = {"tolerance": asdict(tolerance)}
    if params.get("verify") is False:
        return {"verified": False, "reason": "verify: false", **record}
    rng = np.random.default_rng(SEED)
    bounds = probe_bounds(declared or {})
    try:
        cases = [case for bound in bounds
                 for case in (info.probe or default_probe)(Graphs(before, after, params, rng, sessions.run,
                                                                  declared or {}, bound))]
    except Unverifiable as why:
        return {"verified": False, "reason": str(why), **record}
    except ValueError as why:  # no test data for an input type
        return {"verified": False, "reason": str(why), **record}
    except Exception as err:  # noqa: BLE001 - the reference graph itself does not run
        return {"verified": False, "reason": f"ONNX Runtime cannot run the graph before the pass: "
                f"{first_line(err)}", **record}
    diffs: dict[str, OutputDiff] = {}
    for case in cases:
        try:
            actual = sessions.run(after, case.feeds)
        except Exception as err:  # noqa: BLE001 - a graph ORT cannot run after a pass is the pass's fault
            raise OptbuildError(
                f"pass '{info.name}' produced a graph ONNX Runtime cannot run: {first_line(err)}"
            ) from err
        for name, expected in case.expected.items():
            got = actual[name]
            if got.shape != expected.shape:
                raise OptbuildError(
                    f"pass '{info.name}' changed output '{name}' from shape {list(expected.shape)} to "
                    f"{list(got.shape)}; fix or remove the pass"
                )
            result = diff(name, expected, got, tolerance)
            if name not in diffs or result.excess > diffs[name].excess:
                diffs[name] = result
    worst = max(diffs.values(), key=lambda d: d.excess)
    if worst.excess > 1:
        failing = sum(1 for d in diffs.values() if d.excess > 1)
        others = f" ({failing - 1} more output(s) also differ)" if failing > 1 else ""
        raise OptbuildError(
            f"pass '{info.name}' changed the model's {worst.line(tolerance)}{others}; fix or "
            f"remove the pass, or set `verify: false` on it if the change is intended"
        )
    return {"verified": True, "cases": len(cases), "probed_at": bounds, "worst_output": worst.name,
            "max_abs_error": max(d.max_abs for d in diffs.values()),
            "max_rel_error": max(d.max_rel for d in diffs.values()), **record}


