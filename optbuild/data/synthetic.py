"""Kind `synthetic`: seeded arrays of each input's dtype and shape, for a model that has no
data at hand (a first build, a throughput benchmark, a smoke test). It measures nothing about
real inputs: the manifest records it as synthetic, and labeled gates refuse it.

Floats are standard normal. Integers draw from the input's [low, high) when the recipe gives it
(token ids: [0, vocabulary size)); an integer input named like a mask (`attention_mask`) is all
ones, one named like a segment id (`token_type_ids`) all zeros; other integers draw from [0, 2).
Booleans are true. uint8 is [0, 256): pixels.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from optbuild.data.request import DatasetRequest, LabeledSamples


def fingerprint(request: DatasetRequest) -> dict[str, Any]:
    return {"synthetic": True, "inputs": request.inputs}


def array(spec: dict[str, Any], rows: int, rng: np.random.Generator) -> np.ndarray:
    """`rows` samples of one input."""
    dtype, shape, name = np.dtype(spec["dtype"]), [rows, *spec["shape"][1:]], spec["name"].lower()
    if dtype.kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    if dtype.kind == "b":
        return np.ones(shape, dtype)
    if spec.get("low") is not None or spec.get("high") is not None:
        low = int(spec.get("low") or 0)
        high = int(spec["high"]) if spec.get("high") is not None else low + 2
        return rng.integers(low, max(high, low + 1), shape).astype(dtype)
    if "mask" in name:
        return np.ones(shape, dtype)
    if "type" in name or "segment" in name:
        return np.zeros(shape, dtype)
    if dtype == np.uint8:
        return rng.integers(0, 256, shape).astype(dtype)
    return rng.integers(0, 2, shape).astype(dtype)


def load(request: DatasetRequest, labeled: bool) -> LabeledSamples:
    rng = np.random.default_rng(request.seed)
    return LabeledSamples({spec["name"]: array(spec, request.num_samples, rng) for spec in request.inputs},
                          None, None)
