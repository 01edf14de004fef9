"""The largest batch a server may form for a model whose first dimension is dynamic.

A TensorRT engine runs no batch past its optimization profiles' max (build_spec.json, the same
for a kit and a built engine): that is the bound, and a larger --max-batch is refused. An
OpenVINO IR built with target.dynamic_shapes carries its own bound; otherwise the recipe's range
for the batch axis (model.inputs[].dims) is used, and without one DEFAULT_MAX_BATCH.
"""

from __future__ import annotations

import json
from typing import Any

from optbuild.deploy.interface import Interface
from optbuild.errors import OptbuildError
from optbuild.publish.published import Artifact, ModelKind

# A dynamic-batch IR with no recorded range: enough for a server to group concurrent requests on a
# CPU, small enough to keep its memory near the single-request case. --max-batch chooses another.
DEFAULT_MAX_BATCH = 8


def max_batch(artifact: Artifact, interface: Interface, requested: int | None) -> int:
    """0 for a static batch (the server passes whole shapes); else the bound, or what was asked within it."""
    if not interface.batched:
        if requested is not None:
            raise OptbuildError(f"deploy: --max-batch needs a dynamic batch, and {artifact.label}'s first dimension "
                                "is fixed; build it with the dynamic_batch pass")
        return 0
    limit = _limit(artifact, interface)
    if requested is not None and limit is not None and requested > limit:
        raise OptbuildError(f"deploy: --max-batch {requested} is more than {artifact.label} runs (at most {limit}); "
                            "choose at most that, or rebuild with a larger batch range in model.inputs[].dims")
    return requested or limit or DEFAULT_MAX_BATCH


def _limit(artifact: Artifact, interface: Interface) -> int | None:
    if artifact.kind is not ModelKind.openvino:
        return _profile_max(artifact)
    bounds = [t.batch_bound for t in interface.inputs if t.batch_bound]
    return min(bounds) if bounds else _recipe_max(artifact.manifest)


def _profile_max(artifact: Artifact) -> int | None:
    """Per input, the largest batch any profile admits; the least of those over the inputs."""
    spec = json.loads(artifact.file("build_spec.json").read_text())
    best: dict[str, int] = {}
    for profile in spec.get("tensorrt", {}).get("profiles") or []:
        for shape in profile["shapes"]:
            best[shape["input"]] = max(best.get(shape["input"], 0), int(shape["max"][0]))
    return min(best.values()) if best else None


def _recipe_max(manifest: dict[str, Any]) -> int | None:
    """The recipe's range for the batch axis, keyed by its index ("0") or its symbolic name."""
    found = []
    for spec in ((manifest.get("config") or {}).get("model") or {}).get("inputs") or []:
        first = (spec.get("shape") or [None])[0]
        key = first if isinstance(first, str) else "0"
        limits = (spec.get("dims") or {}).get(key)
        if limits:
            found.append(int(limits["max"]))
    return min(found) if found else None
