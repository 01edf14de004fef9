"""Sweeps: per-job records, the report, the exit code, and the parallel and cluster launchers.

Each launcher runs the tiny recipe for real (joblib worker processes, a local Ray instance,
submitit's local executor); the report is checked from the files a user would open.
"""

from __future__ import annotations

import json
from pathlib import Path

from conftest import error_line, manifest_of

from optbuild.sweep.record import JobRecord, write_record
from optbuild.sweep.report import mark_pareto, write_report

FAST = ("benchmark.enabled=false",)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def sweep_dir(root: Path) -> Path:
    (found,) = list((root / "outputs/.multirun").iterdir())
    return found


def summary(folder: Path) -> dict:
    return json.loads((folder / "summary.json").read_text())


def stage_runs(rows: list[dict], stage: str) -> int:
    """How many jobs really ran `stage` (the others took it from the cache)."""
    return sum(stage in row["stages_ran"] for row in rows)


MEASURING = {"benchmark", "tune"}  # the stages that time things, whatever the runner calls them


def overlaps(records: list[dict]) -> list[str]:
    """Each measuring stage that ran while a build stage of another job ran (or another
    measuring stage of any job): what the machine-wide turns forbid."""
    ran = [(record["job"], entry) for record in records for entry in record["stages"] if not entry["cache_hit"]]
    found = []
    for job, measuring in ((j, e) for j, e in ran if e["stage"] in MEASURING):
        for other_job, other in ran:
            if other is measuring or (other_job == job and other["stage"] not in MEASURING):
                continue
            if measuring["started"] < other["ended"] and other["started"] < measuring["ended"]:
                found.append(f"job {job} {measuring['stage']} overlapped job {other_job} {other['stage']}")
    return found


def test_parallel_sweep_writes_report_and_shares_stages(cli, tmp_path: Path):
    result = cli("-m", "recipe=tiny", "precision=fp32,fp16,int8", "benchmark.iterations=3",
                 "benchmark.warmup=1", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2")
    assert result.returncode == 0, result.stderr
    folder = sweep_dir(tmp_path)
    report = summary(folder)
    rows = report["rows"]
    # Measuring stages ran alone: no build stage of another job (nor another measurement) meanwhile.
    records = [json.loads((folder / str(job) / "result.json").read_text()) for job in range(3)]
    assert overlaps(records) == []
    ran = [e for r in records for e in r["stages"] if not e["cache_hit"]]
    assert sum(e["stage"] == "benchmark" and e["measuring"] for e in ran) == 3 and all(e["ok"] for e in ran)
    assert len({r["pid"] for r in records}) == 2  # two workers really ran jobs side by side
    for row in rows:  # each row says where and how it was measured, with its spread
        low, high = row["latency_ci_ms"]
        assert low <= row["latency_ms"] <= high and row["latency_p10_ms"] <= row["latency_p90_ms"]
        assert row["measured_host"] == records[0]["host"] and row["measured_in_sweep"] is True
        assert isinstance(row["contended"], bool) and row["method"]["iterations"] == 3
    assert not any(r["method_differs"] for r in rows)
    assert [r["swept"] for r in rows] == [{"precision": p} for p in ("fp32", "fp16", "int8")]
    assert {r["status"] for r in rows} == {"ok"} and report["failed"] == 0
    for row in rows:
        manifest = manifest_of(Path(row["artifact"]))
        assert row["precision"] == manifest["precision"]
        assert row["size_bytes"] == sum(a["bytes"] for a in manifest["artifacts"])
        assert row["latency_ms"] == manifest["benchmark"]["artifact"]["median_ms"]
        assert row["speedup"] == manifest["benchmark"]["speedup_median"]
        assert row["quality"] == manifest["validation"]["top1_agreement"]
        assert row["throughput_per_s"] > 0 and row["build_seconds"] > 0
        assert row["cache_hits"] == sum(s["cache_hit"] for s in manifest["stages"])
    # Jobs ran side by side, yet the stages they share ran once (the others waited, then hit).
    assert stage_runs(rows, "source") == 1 and stage_runs(rows, "surgery") == 1
    assert any(r["pareto"] for r in rows)

    markdown = (folder / "summary.md").read_text()
    assert "| job | precision | status |" in markdown and "int8" in markdown
    assert (folder / "pareto.png").read_bytes().startswith(PNG_MAGIC)
    html = (folder / "summary.html").read_text()
    assert "<table>" in html and "data:image/png;base64," in html

    # `optbuild report DIR` regenerates the same report from the records and manifests.
    for name in ("summary.json", "summary.md", "summary.html", "pareto.png"):
        (folder / name).unlink()
    again = cli("report", str(folder))
    assert again.returncode == 0, again.stderr
    assert summary(folder)["rows"] == rows
    assert (folder / "pareto.png").is_file() and "summary.md" in again.stderr


def test_a_broken_job_is_reported_and_the_sweep_exits_nonzero(cli, tmp_path: Path):
    # int8 without calibration data is invalid on purpose; fp32 must still be built.
    result = cli("-m", "recipe=tiny", "precision=fp32,int8", "calibration.dataset=null", *FAST,
                 "hydra/launcher=joblib")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("optbuild: error: 1 of 2 sweep jobs failed") and "summary.md" in last
    folder = sweep_dir(tmp_path)
    ok, broken = summary(folder)["rows"]
    assert ok["status"] == "ok" and Path(ok["artifact"], "manifest.json").is_file()
    assert broken["status"] == "failed" and "calibration" in broken["reason"]
    record = json.loads((folder / "1" / "result.json").read_text())
    assert record["status"] == "failed" and record["overrides"][1] == "precision=int8"
    assert "## Failed jobs" in (folder / "summary.md").read_text()
    # Regenerating the report says the same, with one error line.
    line = error_line(cli("report", str(folder)))
    assert "1 of 2 sweep jobs failed" in line


def test_any_key_can_be_swept_including_pass_lists(cli, tmp_path: Path):
    result = cli("-m", "recipe=tiny_int8", "passes=[fold_constants,cleanup],[cleanup]",
                 "calibration.num_samples=8,12", *FAST, "validate.num_samples=4")
    assert result.returncode == 0, result.stderr
    rows = summary(sweep_dir(tmp_path))["rows"]
    assert [r["swept"] for r in rows] == [
        {"passes": "[fold_constants,cleanup]", "calibration.num_samples": "8"},
        {"passes": "[fold_constants,cleanup]", "calibration.num_samples": "12"},
        {"passes": "[cleanup]", "calibration.num_samples": "8"},
        {"passes": "[cleanup]", "calibration.num_samples": "12"},
    ]
    assert {r["status"] for r in rows} == {"ok"}
    # One source for all; one surgery per pass list; every job quantized with its own sample count.
    assert stage_runs(rows, "source") == 1 and stage_runs(rows, "surgery") == 2
    assert stage_runs(rows, "quantize") == 4
    samples = [manifest_of(Path(r["artifact"]))["quantization"]["calibration_samples"] for r in rows]
    assert samples == [8, 12, 8, 12]


def test_ray_launcher_on_a_local_instance(cli, tmp_path: Path):
    result = cli("-m", "recipe=tiny", "precision=fp32,fp16", *FAST, "hydra/launcher=ray",
                 "hydra.launcher.init.num_cpus=2", "hydra.launcher.init.object_store_memory=100000000",
                 timeout=300)
    assert result.returncode == 0, result.stderr
    rows = summary(sweep_dir(tmp_path))["rows"]
    assert [r["status"] for r in rows] == ["ok", "ok"]
    assert stage_runs(rows, "source") == 1


def test_submitit_local_executor_and_the_slurm_config(cli, tmp_path: Path):
    result = cli("-m", "recipe=tiny", "precision=fp32,fp16", *FAST, "hydra/launcher=submitit_local",
                 timeout=300)
    assert result.returncode == 0, result.stderr
    rows = summary(sweep_dir(tmp_path))["rows"]
    assert [r["status"] for r in rows] == ["ok", "ok"]
    assert stage_runs(rows, "source") == 1
    # The shipped Slurm launcher config composes onto hydra-submitit-launcher's Slurm launcher.
    shown = cli("--cfg", "hydra", "-p", "hydra.launcher", "recipe=tiny", "hydra/launcher=slurm")
    assert shown.returncode == 0, shown.stderr
    assert "submitit_launcher.SlurmLauncher" in shown.stdout and "timeout_min: 120" in shown.stdout


def test_report_counts_jobs_that_died_and_marks_the_pareto_front(tmp_path: Path):
    folder = tmp_path / "sweep"

    def finished(job: int, precision: str, latency: float, agreement: float) -> None:
        version = tmp_path / f"v{job}"
        version.mkdir()
        (version / "manifest.json").write_text(json.dumps({
            "target": "intel", "precision": precision, "artifacts": [{"bytes": 10}],
            "stages": [{"name": "source", "cache_hit": job > 0}],
            "validation": {"top1_agreement": agreement, "cosine_mean": 0.99},
            "benchmark": {"batch": 1, "artifact": {"median_ms": latency}, "speedup_median": 2.0},
        }))
        record = JobRecord(job, ["recipe=x", f"precision={precision}"], "x", "log")
        record.succeeded(str(version), reused=False)
        write_record(folder / str(job), record)

    finished(0, "fp32", latency=4.0, agreement=1.0)
    finished(1, "fp16", latency=2.0, agreement=0.9)
    finished(2, "bf16", latency=3.0, agreement=0.8)  # slower and worse than fp16: dominated
    write_record(folder / "3", JobRecord(3, ["recipe=x", "precision=int8"], "x", "log"))  # still "running"
    (folder / "4").mkdir()  # never wrote a record
    report = write_report(folder)
    rows = {r["job"]: r for r in report.rows}
    assert [rows[j]["pareto"] for j in range(5)] == [True, True, False, False, False]
    assert rows[3]["status"] == "failed" and "without finishing" in rows[3]["reason"]
    assert rows[4]["status"] == "failed" and "no result.json" in rows[4]["reason"]
    assert len(report.failed) == 2


def test_pareto_ignores_failed_jobs_and_ties_keep_the_faster():
    rows = [
        {"status": "ok", "latency_ms": 1.0, "quality": 0.5, "pareto": False},
        {"status": "ok", "latency_ms": 2.0, "quality": 0.5, "pareto": False},
        {"status": "failed", "latency_ms": None, "quality": None, "pareto": False},
        {"status": "ok", "latency_ms": 3.0, "quality": 0.7, "pareto": False},
    ]
    mark_pareto(rows)
    assert [r["pareto"] for r in rows] == [True, False, False, True]


def test_report_of_a_folder_without_jobs_is_one_line(cli, tmp_path: Path):
    line = error_line(cli("report", str(tmp_path)))
    assert "holds no sweep jobs" in line
