"""Measuring stages run on a quiet machine: a machine-wide reader/writer lock over stages.

Jobs of a parallel sweep (joblib, Ray or Slurm on one node) would otherwise time a model while
another job quantizes or exports beside it, and record that job's load as their own latency.
Every stage that runs (cache hits take no turn) takes a turn through two `flock` files in the
system temp directory, one pair per user and machine:

- a build stage (any stage not in MEASURING_STAGES) takes the *gate* exclusively for a moment,
  then the *work* file SHARED for as long as it runs: build stages of any number of optbuild
  processes run side by side;
- a measuring stage takes the gate EXCLUSIVELY (no new build stage may start while it waits or
  measures), then the work file EXCLUSIVELY (it waits for the running build stages to end),
  measures, and releases both.

So a measuring stage runs only when no build stage of any optbuild process on this machine
runs, measuring stages run one at a time, and a waiting measurer is not starved by build stages
that keep arriving (writer preference). The runner takes the turn in the build process around
the stage's fresh worker process; a job's stages run one after another, so a process never
waits for a turn it holds itself. Machines of a cluster are each quiet only from their own
optbuild work: `flock` does not reach across machines.

A stage waits at most WAIT_SECONDS (OPTBUILD_MEASURING_WAIT overrides it) and then fails naming
the holders (process, stage, since when), which each holder writes into a folder next to the
lock files.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import logging
import os
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import IO

from optbuild.errors import OptbuildError

log = logging.getLogger("optbuild.measuring")
# Stage names that time things, on every target (intel benchmark and tune, nvidia benchmark).
MEASURING_STAGES = frozenset({"benchmark", "tune"})
WAIT_SECONDS = 3600.0
POLL_SECONDS = 0.05  # flock has no timeout: try without blocking, this often


def measures(stage: str) -> bool:
    return stage in MEASURING_STAGES


def _wait_seconds() -> float:
    try:
        return float(os.environ.get("OPTBUILD_MEASURING_WAIT", WAIT_SECONDS))
    except ValueError:
        return WAIT_SECONDS


class MachineTurns:
    """The lock files of one directory (the system temp directory unless a test gives one)."""

    def __init__(self, directory: str | Path | None = None, wait: float | None = None) -> None:
        self.base = Path(directory or tempfile.gettempdir()) / f"optbuild-measuring-{os.getuid()}"
        self.wait = _wait_seconds() if wait is None else wait

    @property
    def gate_path(self) -> Path:
        return self.base.with_suffix(".gate")

    @property
    def work_path(self) -> Path:
        return self.base.with_suffix(".work")

    @property
    def holders_dir(self) -> Path:
        return self.base.with_suffix(".holders")

    @contextmanager
    def building(self, stage: str) -> Iterator[None]:
        """A build stage's turn: alongside other build stages, never beside a measuring one."""
        with self._locked(self.gate_path, fcntl.LOCK_EX, stage):
            work = self._acquire(self.work_path, fcntl.LOCK_SH, stage)
        try:
            with self._holding(stage, "building"):
                yield
        finally:
            work.close()  # closing the file releases its flock

    @contextmanager
    def measuring(self, stage: str) -> Iterator[None]:
        """A measuring stage's turn: alone on the machine, as far as optbuild is concerned."""
        # Named as holder from the gate on: builders queued behind it can say whom they wait for.
        with self._locked(self.gate_path, fcntl.LOCK_EX, stage), self._holding(stage, "measuring"):
            with self._locked(self.work_path, fcntl.LOCK_EX, stage):
                yield

    def turn(self, stage: str) -> AbstractContextManager[None]:
        return self.measuring(stage) if measures(stage) else self.building(stage)

    def holders(self) -> str:
        """Who holds a turn, as the holders wrote it down (or that nobody said)."""
        found = []
        for path in sorted(self.holders_dir.glob("*.json")) if self.holders_dir.is_dir() else []:
            try:
                info = json.loads(path.read_text())
                if _alive(int(info["pid"])):
                    found.append(f"process {info['pid']} on {info['host']} ({info['stage']}, {info['role']} "
                                 f"since {info['since']})")
            except (OSError, ValueError, KeyError, TypeError):
                continue
        return ", ".join(found) or "a process that did not say who it is"

    @contextmanager
    def _locked(self, path: Path, mode: int, stage: str) -> Iterator[None]:
        handle = self._acquire(path, mode, stage)
        try:
            yield
        finally:
            handle.close()

    def _acquire(self, path: Path, mode: int, stage: str) -> IO[bytes]:
        handle = open(path, "ab")  # noqa: SIM115 - the caller closes it, which releases the lock
        deadline = time.monotonic() + self.wait
        said = False
        while True:
            try:
                fcntl.flock(handle.fileno(), mode | fcntl.LOCK_NB)
                return handle
            except BlockingIOError:
                if not said:  # the run's log says why a stage did not start at once
                    log.info("stage %s waits for its turn on this machine (%s): held by %s", stage,
                             "to measure alone" if measures(stage) else "a measurement runs", self.holders())
                    said = True
                if time.monotonic() >= deadline:
                    handle.close()
                    raise OptbuildError(
                        f"waited {self.wait:.0f}s for the machine's measuring lock {self.base}.*, held by "
                        f"{self.holders()}: let it finish, or stop it if it hangs") from None
                time.sleep(POLL_SECONDS)

    @contextmanager
    def _holding(self, stage: str, role: str) -> Iterator[None]:
        path = self.holders_dir / f"{os.getpid()}.json"
        try:
            self.holders_dir.mkdir(exist_ok=True)
            path.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "stage": stage,
                                        "role": role, "since": dt.datetime.now().isoformat(timespec="seconds")}))
        except OSError:
            pass  # who holds the lock is a courtesy for the error message, not part of the lock
        try:
            yield
        finally:
            path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def turn(stage: str) -> AbstractContextManager[None]:
    """The machine-wide turn a running stage takes: measuring or building, by its name."""
    return MachineTurns().turn(stage)
