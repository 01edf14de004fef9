"""runtime.json: how an IR is compiled to behave as built (device and compile properties; the
batch and objective too when it was tuned). Shipped with the artifact."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RUNTIME_FILE = "runtime.json"


def read_runtime(path: str) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def write_runtime(out_dir: str, runtime: dict[str, Any]) -> None:
    Path(out_dir, RUNTIME_FILE).write_text(json.dumps(runtime, indent=2, sort_keys=True) + "\n")


def runtime_properties(precision: dict[str, Any]) -> dict[str, str]:
    """The compile-time properties the artifact needs to behave as built."""
    hint = precision.get("inference_precision")
    return {"INFERENCE_PRECISION_HINT": hint} if hint else {}


def settings(runtime_json: str) -> tuple[str, dict[str, Any]]:
    """(device, compile properties) from an artifact's runtime.json: what a deployment uses."""
    runtime = read_runtime(runtime_json)
    return runtime["device"], dict(runtime["properties"])
