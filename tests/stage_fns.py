"""Tiny stage functions for tests/test_runner.py.

They run in a freshly spawned interpreter (optbuild/isolate.py), so they must be top-level
functions of an importable module. Signature: fn(paths, params, out_dir) -> {"files", "data"}.
Each appends its name to params["log"] (a `location`, so it never enters the cache key) when
given, which lets a test count real executions independently of the runner's own report.
"""

from __future__ import annotations

import os
from pathlib import Path

from optbuild.errors import OptbuildError


def _record(params: dict, name: str) -> None:
    if params.get("log"):
        with open(params["log"], "a") as f:
            f.write(f"{name} {os.getpid()}\n")


def produce(paths: dict, params: dict, out_dir: str) -> dict:
    """Stage 1: writes a.txt from params["text"]."""
    _record(params, "produce")
    Path(out_dir, "a.txt").write_text(params["text"])
    return {"files": ["a.txt"], "data": {"length": len(params["text"])}}


def transform(paths: dict, params: dict, out_dir: str) -> dict:
    """Stage 2: reads its input a.txt, writes b.txt = upper(a) + params["suffix"]."""
    _record(params, "transform")
    text = Path(paths["a.txt"]).read_text()
    Path(out_dir, "b.txt").write_text(text.upper() + params["suffix"])
    return {"files": ["b.txt"], "data": {"input": text}}


def fail(paths: dict, params: dict, out_dir: str) -> dict:
    _record(params, "fail")
    raise OptbuildError(params["message"])
