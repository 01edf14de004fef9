"""Stage `surgery`: the recipe's ordered graph passes, each checked against the graph before it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from optbuild.errors import OptbuildError
from optbuild.passes import available

RTOL, ATOL_SCALE = 1e-3, 1e-4


def run_passes(inputs: dict[str, str], params: dict[str, Any], out_dir: str) -> dict[str, Any]:
    import onnx
    import onnx_graphsurgeon as gs

    model = onnx.load(inputs["model.onnx"])
    registry = available()
    report = []
    for spec in params["passes"]:
        before = model
        graph = gs.import_onnx(model)
        try:
            kwargs = {k: v for k, v in spec["params"].items() if k != "verify"}
            graph = registry[spec["name"]].fn(graph, **kwargs)
            model = gs.export_onnx(graph)
            model = onnx.shape_inference.infer_shapes(model)
            onnx.checker.check_model(model)
        except OptbuildError:
            raise
        except Exception as err:  # noqa: BLE001
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise OptbuildError(f"pass '{spec['name']}' failed: {first}") from err
        report.append({"pass": spec["name"], **_diff(before, model), **_check(before, model, spec)})
    onnx.save(model, str(Path(out_dir, "model.onnx")))
    return {"files": ["model.onnx"], "data": {"passes": report}}


def _diff(before: Any, after: Any) -> dict[str, Any]:
    old, new = Counter(n.op_type for n in before.graph.node), Counter(n.op_type for n in after.graph.node)
    return {
        "nodes_before": sum(old.values()),
        "nodes_after": sum(new.values()),
        "removed": dict(sorted((old - new).items())),
        "added": dict(sorted((new - old).items())),
    }


def _feeds(model: Any, seed: int) -> dict[str, np.ndarray] | None:
    import onnx

    rng = np.random.default_rng(seed)
    feeds = {}
    for tensor in model.graph.input:
        dims = [d.dim_value if d.HasField("dim_value") else 1 for d in tensor.type.tensor_type.shape.dim]
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor.type.tensor_type.elem_type)
        if not np.issubdtype(dtype, np.floating):
            return None
        feeds[tensor.name] = rng.standard_normal(dims).astype(dtype)
    return feeds


def _accepts(model: Any, feeds: dict[str, np.ndarray]) -> bool:
    """False when a pass changed static input shapes: the old inputs no longer fit."""
    for tensor in model.graph.input:
        dims = tensor.type.tensor_type.shape.dim
        shape = feeds.get(tensor.name, np.empty(0)).shape
        if tensor.name not in feeds or len(dims) != len(shape):
            return False
        if any(d.HasField("dim_value") and d.dim_value != s for d, s in zip(dims, shape)):
            return False
    return True


def _check(before: Any, after: Any, spec: dict[str, Any]) -> dict[str, Any]:
    """Both graphs on the same seeded inputs with ONNX Runtime; outputs must agree."""
    import onnxruntime as ort

    feeds = _feeds(before, seed=0)
    if feeds is None or spec["params"].get("verify") is False or not _accepts(after, feeds):
        return {"verified": False}
    run = lambda m: ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)  # noqa: E731
    try:
        old, new = run(before), run(after)
    except Exception as err:  # noqa: BLE001 - a graph ORT cannot run after a pass is the pass's fault
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise OptbuildError(f"pass '{spec['name']}' produced a graph ONNX Runtime cannot run: {first}") from err
    worst = 0.0
    for index, (a, b) in enumerate(zip(old, new)):
        atol = ATOL_SCALE * float(np.abs(a).max() or 1.0)
        if a.shape != b.shape or not np.allclose(a, b, rtol=RTOL, atol=atol):
            err = float(np.abs(a - b).max()) if a.shape == b.shape else float("inf")
            name = after.graph.output[index].name
            raise OptbuildError(
                f"pass '{spec['name']}' changed the model's output '{name}' (max abs error {err:.3g}, "
                f"shapes {a.shape} vs {b.shape}); remove the pass or report it"
            )
        worst = max(worst, float(np.abs(a - b).max()))
    return {"verified": True, "max_abs_error": worst}
