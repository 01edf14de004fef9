"""How each row of a sweep report was measured, and whether its latency compares with the others.

From a manifest's `benchmark` record: the spread of the artifact's latency, where it was measured
and under what load (stages/intel/benchmark.py, core/machine.py), and its method. Across rows:
which rows used another method than most, and which benchmarks were measured in an earlier
session (a cached benchmark stage, or a reused version) rather than by a job of this sweep.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

METHOD_KEYS = ("iterations", "warmup", "batch", "threads", "hint", "streams")


def _method(bench: dict[str, Any]) -> dict[str, Any]:
    """The benchmark's method; older records have no `method`: rebuilt from the fields they have."""
    if bench.get("method"):
        return {key: bench["method"].get(key) for key in METHOD_KEYS}
    resolved = ((bench.get("runtime") or {}).get("latency") or {}).get("resolved") or {}
    return {"iterations": bench.get("iterations"), "warmup": bench.get("warmup"), "batch": bench.get("batch"),
            "threads": resolved.get("INFERENCE_NUM_THREADS"), "hint": resolved.get("PERFORMANCE_HINT"),
            "streams": resolved.get("NUM_STREAMS")}


def measurement_fields(bench: dict[str, Any] | None) -> dict[str, Any]:
    """A row's measurement columns (all None without a benchmark)."""
    fields: dict[str, Any] = {"latency_ci_ms": None, "latency_p10_ms": None, "latency_p90_ms": None,
                              "measured_host": None, "measured_pid": None, "measured_at": None,
                              "measured_started": None, "contended": None, "contention": None,
                              "method": None, "method_differs": False, "measured_in_sweep": None}
    if not bench:
        return fields
    artifact = bench.get("artifact") or {}
    measured = bench.get("measured") or {}
    started = measured.get("started")
    fields.update(
        latency_ci_ms=artifact.get("median_ci_ms"), latency_p10_ms=artifact.get("p10_ms"),
        latency_p90_ms=artifact.get("p90_ms"), measured_host=measured.get("host"), measured_pid=measured.get("pid"),
        measured_started=started,
        measured_at=dt.datetime.fromtimestamp(started).isoformat(timespec="seconds") if started else None,
        contended=measured.get("contended"), contention=measured.get("why"), method=_method(bench),
    )
    return fields


def method_text(method: dict[str, Any] | None) -> str:
    if not method:
        return "method?"
    threads = method.get("threads")
    hint = str(method.get("hint") or "?").lower()
    return f"{method.get('iterations')} it, {threads if threads is not None else '?'} thr, {hint}"


def mark_measurements(rows: list[dict[str, Any]], records: list[dict[str, Any]]) -> None:
    """Flag rows measured with another method than most rows, and say for each whether its
    benchmark was measured by a job of this sweep (its build process and host, at or after that
    job's start) or earlier (from the cache, or a reused version)."""
    measured = [row for row in rows if row["method"] is not None]
    methods = Counter(_key(row["method"]) for row in measured)
    if len(methods) > 1:
        usual, _ = methods.most_common(1)[0]
        for row in measured:
            row["method_differs"] = _key(row["method"]) != usual
    job_started: dict[tuple[Any, Any], float] = {}
    for record in records:
        where = (record.get("host"), record.get("pid"))
        if where[1] is not None and record.get("started") is not None:
            job_started[where] = min(job_started.get(where, float("inf")), float(record["started"]))
    for row in measured:
        where = (row["measured_host"], row["measured_pid"])
        if row["measured_started"] is None or where[1] is None:
            row["measured_in_sweep"] = None  # an older record that does not say
        else:
            row["measured_in_sweep"] = where in job_started and row["measured_started"] >= job_started[where] - 1.0


def latency_text(row: dict[str, Any]) -> str:
    """median ± spread (the larger side of the median's 95% CI); ⚠ when measured under contention."""
    if row["latency_ms"] is None:
        return "–"
    text = f"{row['latency_ms']:.2f}"
    if row.get("latency_ci_ms"):
        low, high = row["latency_ci_ms"]
        text += f" ± {max(high - row['latency_ms'], row['latency_ms'] - low):.2f}"
    return text + (" ⚠" if row.get("contended") else "")


def measured_text(row: dict[str, Any]) -> str:
    """Where and how: host and method; ≠ when the method differs from the other rows'; cached
    when the benchmark comes from an earlier session's cache."""
    if row["latency_ms"] is None:
        return "–"
    parts = [row.get("measured_host") or "host?", method_text(row.get("method"))]
    text = ", ".join(parts) + (" ≠" if row.get("method_differs") else "")
    return text + (" (cached: earlier session)" if row.get("measured_in_sweep") is False else "")


LEGEND = ("latency = median ± the larger side of its 95% confidence interval; rows whose intervals overlap are "
          "tied on latency for the Pareto front. ⚠ = measured while the machine was busy; ≠ = measured with "
          "another method than most rows; cached = benchmark measured in an earlier session (re-measure with "
          "benchmark.remeasure=<any token>).")


def measurement_notes(rows: list[dict[str, Any]]) -> list[str]:
    """One line per row whose latency needs a caveat."""
    notes = []
    for r in rows:
        why = []
        if r.get("contended"):
            why.append("measured under contention (" + "; ".join(r.get("contention") or ["no detail"]) + ")")
        if r.get("method_differs"):
            why.append(f"method differs: {method_text(r.get('method'))}")
        if r.get("measured_in_sweep") is False:
            why.append(f"benchmark cached from an earlier session (measured {r.get('measured_at') or 'at an unknown time'}"
                       f" on {r.get('measured_host') or 'an unknown host'})")
        if why:
            notes.append(f"job {r['job']}: " + "; ".join(why))
    return notes


def _key(method: dict[str, Any]) -> tuple[str, ...]:
    return tuple(str(method.get(key)) for key in METHOD_KEYS)
