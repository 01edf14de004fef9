"""What else the machine was doing while something was measured (Linux /proc; elsewhere less).

A measurement is bracketed by two snapshots; `conditions(before, after, threads)` says whether it
was contended. The rule, chosen because both parts are measured over the measurement itself:

- another optbuild process was busy: it used at least BUSY_CORES of CPU on average, or
- everything outside this process and its ancestors and children used at least OTHER_CORES.

Load averages are recorded too, but not used for the flag: they trail by a minute and include
the measurement's own threads (a benchmark on 2 threads raises its own load towards 2).

An optbuild process is one whose command line names optbuild, or whose environment carries
MARKER (set by the CLI and each job, so joblib/loky workers and stage workers are found too).
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MARKER = "OPTBUILD_PROCESS"
BUSY_CORES = 0.05  # another optbuild process using more than this (on average) was working, not waiting
OTHER_CORES = 0.25  # CPU used by everything else beyond this is contention, optbuild or not
_PROC = Path("/proc")


def mark_process() -> None:
    """Make this process's future children findable as optbuild processes."""
    os.environ.setdefault(MARKER, "1")


def _ticks_per_second() -> int:
    try:
        return int(os.sysconf("SC_CLK_TCK"))
    except (ValueError, OSError, AttributeError):
        return 100


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, CPU ticks used: user + system) of a process, None when it is gone."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = text.rpartition(")")[2].split()  # the name in parentheses may hold spaces
    try:
        return int(fields[1]), int(fields[11]) + int(fields[12])
    except (IndexError, ValueError):
        return None


def _pids() -> list[int]:
    try:
        return [int(p.name) for p in _PROC.iterdir() if p.name.isdigit()]
    except OSError:
        return []


def _is_optbuild(pid: int) -> bool:
    try:
        if b"optbuild" in (_PROC / str(pid) / "cmdline").read_bytes():
            return True
        return f"\0{MARKER}=".encode() in b"\0" + (_PROC / str(pid) / "environ").read_bytes()
    except OSError:  # gone, or another user's
        return False


def _family(parents: dict[int, int]) -> set[int]:
    """This process, its ancestors (waiting for it) and its descendants (working for it)."""
    own = {os.getpid()}
    grew = True
    while grew:  # descendants first: from the ancestors they would take in siblings (other jobs)
        children = {child for child, parent in parents.items() if parent in own and child not in own}
        own |= children
        grew = bool(children)
    pid = os.getpid()
    while pid in parents and parents[pid] > 1:
        pid = parents[pid]
        own.add(pid)
    return own


def _busy_ticks() -> int | None:
    """Machine-wide CPU ticks spent working (user, nice, system, irq, softirq)."""
    try:
        first = (_PROC / "stat").read_text().splitlines()[0].split()
        user, nice, system, _idle, _iowait, irq, softirq = (int(v) for v in first[1:8])
    except (OSError, IndexError, ValueError):
        return None
    return user + nice + system + irq + softirq


@dataclass(frozen=True)
class Snapshot:
    wall: float
    load: tuple[float, float, float] | None
    busy_ticks: int | None
    own_ticks: int
    optbuild: dict[int, int] = field(default_factory=dict)  # other optbuild pid -> CPU ticks


def snapshot() -> Snapshot:
    stats = {pid: stat for pid in _pids() if (stat := _stat(pid)) is not None}
    own = _family({pid: parent for pid, (parent, _) in stats.items()})
    try:
        load: tuple[float, float, float] | None = os.getloadavg()
    except OSError:
        load = None
    return Snapshot(
        wall=time.time(), load=load, busy_ticks=_busy_ticks(),
        own_ticks=sum(stats[pid][1] for pid in own if pid in stats),
        optbuild={pid: ticks for pid, (_, ticks) in stats.items() if pid not in own and _is_optbuild(pid)},
    )


def conditions(before: Snapshot, after: Snapshot, threads: int, build_pid: int) -> dict[str, Any]:
    """The machine's state over a measurement, and whether it was contended (see the module doc);
    `build_pid` is the optbuild process the measurement belongs to (a report matches it to a job)."""
    seconds = max(after.wall - before.wall, 1e-6)
    per_second = _ticks_per_second()
    busy = {pid: (after.optbuild[pid] - ticks) / per_second / seconds
            for pid, ticks in before.optbuild.items() if pid in after.optbuild}
    others = None
    if before.busy_ticks is not None and after.busy_ticks is not None:
        spent = (after.busy_ticks - before.busy_ticks) - (after.own_ticks - before.own_ticks)
        others = max(spent, 0) / per_second / seconds
    why = [f"optbuild process {pid} used {cores:.2f} cores" for pid, cores in sorted(busy.items())
           if cores >= BUSY_CORES]
    if others is not None and others >= OTHER_CORES:
        why.append(f"other processes used {others:.2f} cores")
    return {
        "host": socket.gethostname(),
        "pid": build_pid,
        "started": round(before.wall, 3), "ended": round(after.wall, 3),
        "threads": threads, "cores": os.cpu_count(),
        "load_before": list(before.load) if before.load else None,
        "load_after": list(after.load) if after.load else None,
        "other_optbuild_processes": len(set(before.optbuild) | set(after.optbuild)),
        "other_optbuild_cores": round(sum(busy.values()), 3),
        "other_cores": round(others, 3) if others is not None else None,
        "contended": bool(why),
        "why": why,
        "rule": f"contended when another optbuild process used >= {BUSY_CORES} cores or all other processes "
                f">= {OTHER_CORES} cores during the measurement",
    }
