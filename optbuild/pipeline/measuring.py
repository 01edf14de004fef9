"""Stages that time things take turns across the machine.

Jobs of a parallel sweep (joblib, Ray on one node) would otherwise benchmark and tune at the
same time and record each other's load as their own latency. A file lock in the system temp
directory serializes the measuring stages of every optbuild process of this user on this
machine; other stages still run alongside, so the cleanest numbers still come from a sweep
that runs its jobs one after another (Hydra's default launcher).

A stage waits at most WAIT_SECONDS (OPTBUILD_MEASURING_WAIT overrides it) and then fails naming
the holder (process, stage, since when), which it finds in a file next to the lock.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from optbuild.errors import OptbuildError

Stage = Callable[[dict[str, str], dict[str, Any], str], dict[str, Any]]
WAIT_SECONDS = 3600.0


def lock_path() -> Path:
    return Path(tempfile.gettempdir()) / f"optbuild-measuring-{os.getuid()}.lock"


def _holder_path() -> Path:
    return lock_path().with_suffix(".holder")


def _wait_seconds() -> float:
    try:
        return float(os.environ.get("OPTBUILD_MEASURING_WAIT", WAIT_SECONDS))
    except ValueError:
        return WAIT_SECONDS


def holder() -> str:
    """Who holds the lock, as its holder wrote it down (or that nobody said)."""
    try:
        info = json.loads(_holder_path().read_text())
        return f"process {info['pid']} on {info['host']} ({info['stage']}, since {info['since']})"
    except (OSError, ValueError, KeyError, TypeError):
        return "a process that did not say who it is"


def exclusive(stage: Stage) -> Stage:
    """The stage function, run while holding the machine-wide measuring lock."""

    @functools.wraps(stage)
    def run(inputs: dict[str, str], params: dict[str, Any], out_dir: str) -> dict[str, Any]:
        wait = _wait_seconds()
        lock = FileLock(str(lock_path()))
        try:
            lock.acquire(timeout=wait)
        except Timeout:
            raise OptbuildError(f"waited {wait:.0f}s for the machine's measuring lock {lock_path()}, held by "
                                f"{holder()}: let it finish, or stop it if it hangs") from None
        try:
            _holder_path().write_text(json.dumps({  # the build process: this worker dies with it
                "pid": os.getppid(), "host": socket.gethostname(), "stage": stage.__name__,
                "since": dt.datetime.now().isoformat(timespec="seconds")}))
            return stage(inputs, params, out_dir)
        finally:
            lock.release()

    return run
