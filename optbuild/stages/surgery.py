"""Stage `surgery`: the recipe's ordered graph passes, each checked against the graph before it.

After every pass the graph gets ONNX shape inference and the ONNX checker, then (unless the pass
says `verify: false`) runs against the graph before it on seeded random inputs in ONNX Runtime,
at the recipe's sizes of each dynamic dimension (passes/check.py);
outputs must agree within the pass's declared tolerance. The report records, per pass, what
changed (op counts, inputs/outputs) and the check's result.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

from optbuild.errors import OptbuildError, first_line
from optbuild.passes import PassInfo, get
from optbuild.passes.check import Sessions, verify
from optbuild.passes.onnx_io import checked, io_summary, load, save

MODEL = "model.onnx"


def run_passes(inputs: dict[str, str], params: dict[str, Any], out_dir: str) -> dict[str, Any]:
    scratch = str(Path(out_dir).parent)  # the stage's own scratch folder, next to its outputs
    # Shapes for the passes to read; the source stage checked the model already.
    model = checked(load(inputs[MODEL]), scratch, check=False)
    sessions = Sessions(scratch)
    declared = {spec["name"]: spec for spec in params.get("inputs", ())}  # probe sizes and value ranges
    report = []
    for spec in params["passes"]:
        info = get(spec["name"])
        started = time.perf_counter()
        after = apply(info, spec["params"], model, scratch)
        entry: dict[str, Any] = {"pass": info.name, "params": without_verify(spec["params"]),
                                 **changes(model, after)}
        entry.update(verify(info, spec["params"], model, after, sessions, declared))
        entry["seconds"] = round(time.perf_counter() - started, 3)
        report.append(entry)
        sessions.keep_only(after)
        model = after
    files = save(model, Path(out_dir, MODEL))
    return {"files": files, "data": {"passes": report}}


def without_verify(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if k != "verify"}


def apply(info: PassInfo, params: dict[str, Any], model: Any, scratch: str | None = None) -> Any:
    """One pass on a copy of `model`: its result, shape-inferred and accepted by the checker."""
    import onnx
    import onnx_graphsurgeon as gs

    kwargs = without_verify(params)
    try:
        if info.works_on == "graph":
            result = gs.export_onnx(info.fn(gs.import_onnx(model), **kwargs))
        else:
            copy = onnx.ModelProto()
            copy.CopyFrom(model)
            result = info.fn(copy, **kwargs)
        return checked(result, scratch)
    except OptbuildError:
        raise
    except Exception as err:  # noqa: BLE001 - graph tools raise anything; the pass is to blame
        first = first_line(err)
        raise OptbuildError(f"pass '{info.name}' failed: {type(err).__name__}: {first}") from err


def changes(before: Any, after: Any) -> dict[str, Any]:
    """Op counts and the graph interface before and after a pass."""
    old = Counter(n.op_type for n in before.graph.node)
    new = Counter(n.op_type for n in after.graph.node)
    entry: dict[str, Any] = {
        "nodes_before": sum(old.values()),
        "nodes_after": sum(new.values()),
        "removed": dict(sorted((old - new).items())),
        "added": dict(sorted((new - old).items())),
        "io_before": io_summary(before),
        "io_after": io_summary(after),
    }
    return entry
