"""The sweep report's caveats on latency: contention measured for real (a busy optbuild process
beside a measurement), median intervals that overlap are Pareto ties, methods that differ, and
benchmarks cached from an earlier session. Job records and manifests are written on disk as the
jobs write them; the report reads them back."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from optbuild.core import machine
from optbuild.sweep.record import JobRecord, write_record
from optbuild.sweep.report import mark_pareto, write_report

BUSY_LOOP = "import time\nend = time.time() + 20\nwhile time.time() < end: pass\n"
# The measurement in a child of this process, like a stage worker of a joblib job; the busy
# optbuild process another child (another job's worker, its sibling): not the measurer's own.
MEASURE = ("import json, os, time\nfrom optbuild.core import machine\n"
           "before = machine.snapshot()\ntime.sleep(1.0)\n"
           "print(json.dumps(machine.conditions(before, machine.snapshot(), threads=1, build_pid=os.getppid())))\n")


def measured_beside_a_busy_optbuild_process() -> tuple[dict[str, Any], int]:
    """Machine conditions over one second while an optbuild process (known by its marker alone)
    spins beside the measuring process, and that process's pid."""
    busy = subprocess.Popen([sys.executable, "-c", BUSY_LOOP], env={**os.environ, machine.MARKER: "1"})
    try:
        time.sleep(0.3)  # it is running
        measured = subprocess.run([sys.executable, "-c", MEASURE], capture_output=True, text=True, check=True)
    finally:
        busy.kill()
        busy.wait()
    return json.loads(measured.stdout), busy.pid


def bench(median: float, ci: tuple[float, float], measured: dict[str, Any], iterations: int = 50) -> dict[str, Any]:
    return {"batch": 1, "speedup_median": 1.0, "iterations": iterations,
            "artifact": {"median_ms": median, "median_ci_ms": list(ci), "p10_ms": ci[0] - 1, "p90_ms": ci[1] + 1},
            "method": {"iterations": iterations, "warmup": 10, "batch": 1, "threads": 2, "hint": "LATENCY",
                       "streams": 1},
            "measured": measured}


def quiet(pid: int, started: float) -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": pid, "started": started, "contended": False, "why": []}


def finish(folder: Path, job: int, precision: str, agreement: float, benchmark: dict[str, Any]) -> None:
    version = folder.parent / f"v{job}"
    version.mkdir()
    (version / "manifest.json").write_text(json.dumps({
        "target": "intel", "precision": precision, "artifacts": [{"bytes": 10}],
        "stages": [{"name": "benchmark", "cache_hit": False}],
        "validation": {"top1_agreement": agreement}, "benchmark": benchmark}))
    record = JobRecord(job, ["recipe=x", f"precision={precision}"], "x", "log")
    record.pid = 1000 + job  # each job its own build process
    record.succeeded(str(version), reused=False)
    write_record(folder / str(job), record)


def test_a_row_measured_beside_a_busy_optbuild_process_is_marked(tmp_path: Path) -> None:
    busy, spinner = measured_beside_a_busy_optbuild_process()
    assert busy["contended"] is True and any(why.startswith(f"optbuild process {spinner} used") for why in busy["why"])
    assert busy["other_optbuild_cores"] >= machine.BUSY_CORES and busy["other_optbuild_processes"] >= 1
    assert busy["pid"] == os.getpid() and len(busy["load_after"]) == 3

    folder = tmp_path / "sweep"
    now = time.time()
    finish(folder, 0, "fp32", 1.0, bench(20.0, (19.0, 21.0), quiet(1000, now + 5)))
    finish(folder, 1, "int8", 0.9, bench(9.0, (8.5, 9.5), {**busy, "pid": 1001, "started": now + 5}))
    report = write_report(folder)
    rows = {r["job"]: r for r in report.rows}
    assert rows[1]["contended"] is True and rows[0]["contended"] is False
    markdown = (folder / "summary.md").read_text()
    assert "9.00 ± 0.50 ⚠" in markdown and "20.00 ± 1.00 |" in markdown
    assert "## Measurement notes" in markdown and "job 1: measured under contention (optbuild process" in markdown
    assert "job 0:" not in markdown
    assert "9.00 ± 0.50 ⚠" in (folder / "summary.html").read_text()
    assert rows[0]["measured_in_sweep"] is True and rows[0]["measured_host"] == socket.gethostname()


def test_overlapping_median_intervals_are_ties_on_the_pareto_front() -> None:
    def row(median: float, ci: tuple[float, float], quality: float) -> dict[str, Any]:
        return {"status": "ok", "latency_ms": median, "latency_ci_ms": list(ci), "quality": quality, "pareto": False}

    int8 = row(9.0, (8.0, 12.0), 0.97)  # faster by the medians, but its interval reaches fp16's
    fp16 = row(10.0, (9.5, 10.5), 0.99)
    fp32 = row(20.0, (19.0, 21.0), 0.995)
    noisy = row(25.0, (22.0, 28.0), 0.98)  # clearly slower than fp16 and worse: dominated
    rows = [int8, fp16, fp32, noisy]
    mark_pareto(rows)
    assert [r["pareto"] for r in rows] == [False, True, True, False]  # int8 ties fp16 on latency, loses on quality
    # Without the spread the medians would rank noise: int8 would be on the front.
    for r in rows:
        r["latency_ci_ms"] = None
    mark_pareto(rows)
    assert [r["pareto"] for r in rows] == [True, True, True, False]


def test_methods_that_differ_and_benchmarks_from_an_earlier_session_are_marked(tmp_path: Path) -> None:
    folder = tmp_path / "sweep"
    now = time.time()
    finish(folder, 0, "fp32", 1.0, bench(20.0, (19.0, 21.0), quiet(1000, now + 5)))
    finish(folder, 1, "fp16", 0.99, bench(10.0, (9.5, 10.5), quiet(1001, now + 5)))
    finish(folder, 2, "int8", 0.98, bench(9.0, (8.5, 9.5), quiet(1002, now + 5), iterations=5))
    finish(folder, 3, "bf16", 0.98, bench(9.8, (9.5, 10.1), quiet(4242, now - 86400)))  # cached from yesterday
    rows = {r["job"]: r for r in write_report(folder).rows}
    assert [rows[j]["method_differs"] for j in range(4)] == [False, False, True, False]
    assert [rows[j]["measured_in_sweep"] for j in range(4)] == [True, True, True, False]
    markdown = (folder / "summary.md").read_text()
    assert "5 it, 2 thr, latency ≠" in markdown and "(cached: earlier session)" in markdown
    assert "job 2: method differs: 5 it, 2 thr, latency" in markdown
    assert "job 3: benchmark cached from an earlier session" in markdown and "benchmark.remeasure" in markdown
