"""Stages that time things take turns across the machine.

Jobs of a parallel sweep (joblib, Ray on one node) would otherwise benchmark and tune at the
same time and record each other's load as their own latency. A file lock in the system temp
directory serializes the measuring stages of every optbuild process of this user on this
machine; other stages still run alongside, so the cleanest numbers still come from a sweep
that runs its jobs one after another (Hydra's default launcher).
"""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from filelock import FileLock

Stage = Callable[[dict[str, str], dict[str, Any], str], dict[str, Any]]


def lock_path() -> Path:
    return Path(tempfile.gettempdir()) / f"optbuild-measuring-{os.getuid()}.lock"


def exclusive(stage: Stage) -> Stage:
    """The stage function, run while holding the machine-wide measuring lock."""

    @functools.wraps(stage)
    def run(inputs: dict[str, str], params: dict[str, Any], out_dir: str) -> dict[str, Any]:
        with FileLock(str(lock_path())):
            return stage(inputs, params, out_dir)

    return run
