"""Each job's outcome on disk: `result.json` in the job's Hydra output directory.

Jobs of a sweep may run in other processes (joblib) or on other machines (Ray, Slurm), so the
launching process learns what happened only from these files. A job writes its record as
"running" when it starts and rewrites it when it ends; a record still "running" at the end of
the sweep, or a job directory without one, belongs to a job that died.

`stages` is the job's timeline: each stage in order, whether it was a cache hit, and for those
that ran, when (wall clock, epoch seconds, inside the stage's machine-wide turn) and whether it
was a measuring stage. `pid`, `host` and `started` let the report tell a benchmark measured by
this job from one cached by an earlier session.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from optbuild.core.files import write_json

RESULT = "result.json"
SCHEMA = "optbuild.sweep-job/v1"


@dataclass
class JobRecord:
    job: int | None
    overrides: list[str]
    recipe: str | None
    log: str
    status: str = "running"  # running | ok | failed
    reason: str | None = None
    failed_stage: str | None = None
    artifact: str | None = None  # the published version directory
    manifest: str | None = None
    reused: bool = False
    seconds: float = 0.0
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    started: float = field(default_factory=lambda: round(time.time(), 3))
    stages: list[dict[str, Any]] = field(default_factory=list)
    schema: str = SCHEMA

    def succeeded(self, artifact: str, reused: bool) -> None:
        self.status, self.artifact, self.reused = "ok", artifact, reused
        self.manifest = str(Path(artifact) / "manifest.json")

    def failed(self, reason: str, stage: str | None) -> None:
        self.status, self.reason, self.failed_stage = "failed", reason, stage


def write_record(job_dir: Path, record: JobRecord) -> None:
    job_dir.mkdir(parents=True, exist_ok=True)
    write_json(job_dir / RESULT, dataclasses.asdict(record), indent=1)


def _job_number(path: Path) -> int:
    return int(path.name) if path.name.isdigit() else 1 << 30


def read_records(sweep_dir: Path) -> list[dict[str, Any]]:
    """One record per job directory (named by job number), in job order; a missing, unreadable
    or unfinished record becomes a failure that says so."""
    records = []
    for job_dir in sorted((p for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit()), key=_job_number):
        path = job_dir / RESULT
        try:
            record = json.loads(path.read_text())
        except FileNotFoundError:
            record = {"job": int(job_dir.name), "overrides": [], "status": "failed",
                      "reason": f"the job left no {RESULT} (it never started, or was killed)"}
        except (OSError, ValueError):
            record = {"job": int(job_dir.name), "overrides": [], "status": "failed",
                      "reason": f"{path} is unreadable"}
        if record.get("status") == "running":
            record = {**record, "status": "failed",
                      "reason": "the job ended without finishing its record (killed, or out of memory?): "
                                f"see {record.get('log', job_dir / 'optbuild.log')}"}
        records.append(record)
    return records
