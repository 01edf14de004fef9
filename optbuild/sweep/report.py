"""The sweep report: one row per job, from the jobs' records and their artifacts' manifests.

Written into the multirun directory at the end of a sweep (optbuild/sweep_callback.py) and by
`optbuild report DIR`: summary.json, summary.md, pareto.png (agreement or accuracy against
latency, Pareto front marked) and summary.html (table and plot in one file).

Latency is a median with its spread (the 95% confidence interval of the median, from the
benchmark's samples). Rows whose intervals overlap are tied on latency: the Pareto front does not
rank noise. Each row says where and how it was measured, and is marked when it was measured
under contention, with another method than the other rows, or in an earlier session (a cached
benchmark: `benchmark.remeasure=<token>` measures again).
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optbuild.core.files import atomic_write_text
from optbuild.errors import OptbuildError
from optbuild.sweep.measurement import (
    LEGEND,
    latency_text,
    mark_measurements,
    measured_text,
    measurement_fields,
    measurement_notes,
)
from optbuild.sweep.record import RESULT, read_records

log = logging.getLogger("optbuild.report")
SCHEMA = "optbuild.sweep-report/v1"
PLOT = "pareto.png"


@dataclass(frozen=True)
class Report:
    sweep_dir: Path
    rows: list[dict[str, Any]]
    files: list[Path]

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [row for row in self.rows if row["status"] != "ok"]


def _overrides(record: dict[str, Any]) -> dict[str, str]:
    return dict(item.split("=", 1) for item in record.get("overrides", []) if "=" in item)


def _read_manifest(record: dict[str, Any]) -> dict[str, Any] | None:
    try:
        return json.loads(Path(record["manifest"]).read_text())
    except (KeyError, TypeError, OSError, ValueError):
        return None


def _quality(manifest: dict[str, Any]) -> tuple[float | None, str | None, float | None, bool]:
    """(value, what it is, cosine, higher is better): labeled accuracy when the set had labels,
    else the recipe's primary metric (validate.metrics[0], or its task's first), else top-1
    agreement with FP32; a TensorRT build kit has only its CPU proxy's numbers."""
    for section, prefix in (("validation", ""), ("cpu_proxy", "cpu_proxy ")):
        numbers = manifest.get(section) or {}
        primary = numbers.get("primary")
        if numbers.get("artifact_top1") is not None:
            return float(numbers["artifact_top1"]), prefix + "accuracy", numbers.get("cosine_mean"), True
        if primary and primary.get("meaningful", True):
            return (float(primary["value"]), f"{prefix}{primary['name']}({primary['output']})",
                    numbers.get("cosine_mean"), bool(primary["higher_is_better"]))
        if numbers.get("top1_agreement") is not None:
            return float(numbers["top1_agreement"]), prefix + "top1_agreement", numbers.get("cosine_mean"), True
    return None, None, None, True


def _row(record: dict[str, Any], swept: list[str]) -> dict[str, Any]:
    given = _overrides(record)
    row: dict[str, Any] = {
        "job": record.get("job"),
        "overrides": record.get("overrides", []),
        "swept": {key: given.get(key) for key in swept},
        "status": record.get("status", "failed"),
        "reason": record.get("reason"),
        "failed_stage": record.get("failed_stage"),
        "artifact": record.get("artifact"),
        "manifest": record.get("manifest"),
        "host": record.get("host"),
        "target": None, "precision": None,
        "build_seconds": record.get("seconds"),
        "size_bytes": None, "latency_ms": None, "throughput_per_s": None, "speedup": None,
        "quality": None, "quality_kind": None, "quality_higher_is_better": True, "cosine": None,
        "cache_hits": None, "stages": None, "stages_ran": None, "pareto": False,
        **measurement_fields(None),
    }
    manifest = _read_manifest(record) if row["status"] == "ok" else None
    if row["status"] == "ok" and manifest is None:
        row.update(status="failed", reason=f"the artifact's manifest {record.get('manifest')} is missing or unreadable")
    if manifest is None:
        return row
    row["target"], row["precision"] = manifest.get("target"), manifest.get("precision")
    row["size_bytes"] = sum(int(a["bytes"]) for a in manifest.get("artifacts", []))
    bench = manifest.get("benchmark")
    if bench:
        median = bench["artifact"]["median_ms"]
        row["latency_ms"] = median
        measured = (bench.get("throughput") or {}).get("artifact", {}).get("samples_per_s")
        # Async throughput when measured (all requests busy); else what batch-1 latency implies.
        row["throughput_per_s"] = measured or (bench.get("batch", 1) * 1000.0 / median if median else None)
        row["speedup"] = bench.get("speedup_median")
        row.update(measurement_fields(bench))
    row["quality"], row["quality_kind"], row["cosine"], row["quality_higher_is_better"] = _quality(manifest)
    stages = manifest.get("stages", [])
    row["stages"] = len(stages)
    row["cache_hits"] = sum(1 for s in stages if s.get("cache_hit"))
    row["stages_ran"] = [s["name"] for s in stages if not s.get("cache_hit")]
    return row


def _swept_keys(records: list[dict[str, Any]]) -> list[str]:
    """The override keys whose values differ between jobs, in command-line order."""
    seen: dict[str, set[str | None]] = {}
    for record in records:
        for key in _overrides(record):
            seen.setdefault(key, set())
    for key in seen:
        seen[key] = {_overrides(r).get(key) for r in records}
    return [key for key, values in seen.items() if len(values) > 1] or list(seen)[:1]


def _interval(row: dict[str, Any]) -> tuple[float, float]:
    low, high = row.get("latency_ci_ms") or (row["latency_ms"], row["latency_ms"])
    return float(low), float(high)


def _dominates(a: dict[str, Any], b: dict[str, Any], better: dict[int, float]) -> bool:
    """a is at least as good as b on both axes and better on one; latencies whose intervals
    overlap are equal (a tie), not ordered by their medians."""
    (a_low, a_high), (b_low, b_high) = _interval(a), _interval(b)
    faster, slower = a_high < b_low, b_high < a_low
    qa, qb = better[id(a)], better[id(b)]
    return not slower and qa >= qb and (faster or qa > qb)


def mark_pareto(rows: list[dict[str, Any]]) -> None:
    """Pareto front of (lower latency, better quality) among successful jobs: the rows no other
    row dominates (see _dominates: overlapping latency intervals are ties)."""
    points = [r for r in rows if r["status"] == "ok" and r["latency_ms"] is not None and r["quality"] is not None]
    better = {id(r): r["quality"] if r.get("quality_higher_is_better", True) else -r["quality"] for r in points}
    for row in points:
        row["pareto"] = not any(_dominates(other, row, better) for other in points if other is not row)


def build_rows(sweep_dir: Path) -> list[dict[str, Any]]:
    records = read_records(sweep_dir)
    swept = _swept_keys(records)
    rows = [_row(record, swept) for record in records]
    mark_measurements(rows, records)
    mark_pareto(rows)
    return rows


# -- rendering -------------------------------------------------------------------------------
def _fmt(value: Any, spec: str = "") -> str:
    if value is None:
        return "–"
    return format(value, spec) if spec else str(value)


def _size(n: int | None) -> str:
    if n is None:
        return "–"
    if n < 1024:
        return f"{n} B"
    return f"{n / 1024:.1f} KiB" if n < 1024 ** 2 else f"{n / 1024 ** 2:.1f} MiB"


def _quality_label(rows: list[dict[str, Any]]) -> str:
    kinds = {r["quality_kind"] for r in rows if r["quality_kind"]}
    names = {kind.removeprefix("cpu_proxy ") for kind in kinds}
    proxy = " (nvidia kits: CPU proxy)" if any(k.startswith("cpu_proxy") for k in kinds) else ""
    if names == {"accuracy"}:
        return "accuracy" + proxy
    if names <= {"top1_agreement", "topk_agreement(logits)"}:
        return "top-1 agreement vs FP32" + proxy
    return (" / ".join(sorted(names)) if len(names) <= 2 else "quality (each row's primary metric)") + proxy


def _quality_text(row: dict[str, Any]) -> str:
    """A fraction as a percentage (accuracy, agreement, IoU, cosine); anything else as a number."""
    fraction = row["quality_higher_is_better"] and row["quality"] is not None and 0.0 <= row["quality"] <= 1.0
    return _fmt(row["quality"], ".1%" if fraction else ".4g")


def table(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Column headers and cells shared by the terminal, Markdown and HTML renderings."""
    swept = list(rows[0]["swept"]) if rows else []
    headers = ["job", *swept, "status", "size", "latency ms", "throughput /s", "speed-up",
               _quality_label(rows), "measured", "build s", "cache hits", "artifact"]
    cells = []
    for r in rows:
        hits = f"{r['cache_hits']}/{r['stages']}" if r["stages"] is not None else "–"
        status = r["status"] + (" ★" if r["pareto"] else "")
        cells.append([
            _fmt(r["job"]), *(_fmt(r["swept"].get(k)) for k in swept), status, _size(r["size_bytes"]),
            latency_text(r), _fmt(r["throughput_per_s"], ".0f"),
            _fmt(r["speedup"], ".2f") + ("×" if r["speedup"] is not None else ""),
            _quality_text(r), measured_text(r), _fmt(r["build_seconds"], ".1f"), hits, _fmt(r["artifact"]),
        ])
    return headers, cells


def _markdown(sweep_dir: Path, rows: list[dict[str, Any]], plot: bool) -> str:
    headers, cells = table(rows)
    escape = lambda text: text.replace("|", "\\|")  # noqa: E731
    lines = [f"# Sweep report: {sweep_dir}", "",
             f"{len(rows)} jobs, {sum(r['status'] == 'ok' for r in rows)} ok, "
             f"{sum(r['status'] != 'ok' for r in rows)} failed. ★ = on the Pareto front "
             f"(lower latency, higher {_quality_label(rows)}).", "",
             "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(escape(c) for c in row) + " |" for row in cells]
    lines += ["", LEGEND]
    notes = measurement_notes(rows)
    if notes:
        lines += ["", "## Measurement notes", "", *(f"- {note}" for note in notes)]
    failed = [r for r in rows if r["status"] != "ok"]
    if failed:
        lines += ["", "## Failed jobs", ""]
        for r in failed:
            stage = f" (stage {r['failed_stage']})" if r.get("failed_stage") else ""
            lines.append(f"- job {r['job']} `{' '.join(r['overrides'])}`{stage}: {r['reason']}")
    if plot:
        lines += ["", f"![latency vs {_quality_label(rows)}]({PLOT})"]
    return "\n".join(lines) + "\n"


def _plot(rows: list[dict[str, Any]], path: Path) -> bool:
    points = [r for r in rows if r["status"] == "ok" and r["latency_ms"] is not None and r["quality"] is not None]
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: no display on build machines
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("matplotlib is not installed: no %s (pip install 'optbuild[sweep]')", PLOT)
        return False
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    if points:
        ax.scatter([r["latency_ms"] for r in points], [r["quality"] for r in points], color="tab:blue",
                   label="job", zorder=2)
        front = sorted((r for r in points if r["pareto"]), key=lambda r: r["latency_ms"])
        ax.step([r["latency_ms"] for r in front], [r["quality"] for r in front], where="post", color="tab:red",
                label="Pareto front", zorder=1)
        ax.scatter([r["latency_ms"] for r in front], [r["quality"] for r in front], s=120, facecolors="none",
                   edgecolors="tab:red", zorder=3)
        for r in points:
            label = " ".join(str(v) for v in r["swept"].values() if v is not None) or f"job {r['job']}"
            ax.annotate(label, (r["latency_ms"], r["quality"]), textcoords="offset points", xytext=(5, 4),
                        fontsize=8)
        ax.legend(loc="lower right")
    else:
        ax.text(0.5, 0.5, "no job has both a benchmark and a validation result", ha="center", va="center",
                transform=ax.transAxes)
    unplotted = len(rows) - len(points)
    if unplotted:  # failed jobs, and builds without a benchmark (e.g. nvidia build kits)
        ax.set_title(f"{unplotted} job(s) without both numbers are in the table only", fontsize=9)
    ax.margins(x=0.15, y=0.1)
    ax.set_xlabel("latency, batch median (ms) — lower is better")
    ax.set_ylabel(_quality_label(points))
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


_HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>optbuild sweep {{ name }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em; }
table { border-collapse: collapse; font-size: 14px; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; }
tr.failed td { background: #fde8e8; } tr.pareto td { background: #e8f5e9; }
</style></head><body>
<h1>Sweep report</h1>
<p>{{ sweep_dir }}: {{ rows|length }} jobs, {{ ok }} ok, {{ rows|length - ok }} failed.
★ = on the Pareto front (lower latency, higher {{ quality }}).</p>
<table><tr>{% for h in headers %}<th>{{ h }}</th>{% endfor %}</tr>
{% for row, r in cells %}<tr class="{{ 'failed' if r.status != 'ok' else ('pareto' if r.pareto else '') }}">
{% for c in row %}<td>{{ c }}</td>{% endfor %}</tr>
{% endfor %}</table>
<p>{{ legend }}</p>
{% if notes %}<h2>Measurement notes</h2><ul>{% for n in notes %}<li>{{ n }}</li>{% endfor %}</ul>{% endif %}
{% if failed %}<h2>Failed jobs</h2><ul>
{% for r in failed %}<li>job {{ r.job }} <code>{{ r.overrides|join(' ') }}</code>{% if r.failed_stage %} (stage {{ r.failed_stage }}){% endif %}: {{ r.reason }}</li>
{% endfor %}</ul>{% endif %}
{% if plot %}<h2>Latency against {{ quality }}</h2><img alt="Pareto plot" src="data:image/png;base64,{{ plot }}">{% endif %}
</body></html>
"""


def _html(sweep_dir: Path, rows: list[dict[str, Any]], plot_path: Path | None) -> str | None:
    try:
        import jinja2
    except ImportError:
        log.warning("jinja2 is not installed: no summary.html (pip install 'optbuild[sweep]')")
        return None
    headers, cells = table(rows)
    plot = base64.b64encode(plot_path.read_bytes()).decode() if plot_path else None
    template = jinja2.Environment(autoescape=True).from_string(_HTML)
    return template.render(name=sweep_dir.name, sweep_dir=sweep_dir, rows=rows, headers=headers,
                           cells=list(zip(cells, rows)), ok=sum(r["status"] == "ok" for r in rows),
                           failed=[r for r in rows if r["status"] != "ok"], quality=_quality_label(rows),
                           plot=plot, legend=LEGEND, notes=measurement_notes(rows))


def write_report(sweep_dir: str | Path) -> Report:
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir() or not any(p.is_dir() and p.name.isdigit() for p in sweep_dir.iterdir()):
        raise OptbuildError(
            f"{sweep_dir} holds no sweep jobs (numbered folders with {RESULT}): pass a multirun directory, "
            "e.g. outputs/.multirun/<time>"
        )
    rows = build_rows(sweep_dir)
    try:
        plot_path = sweep_dir / PLOT
        plotted = _plot(rows, plot_path)
        summary = {"schema": SCHEMA, "sweep_dir": str(sweep_dir.absolute()), "jobs": len(rows),
                   "failed": sum(r["status"] != "ok" for r in rows), "rows": rows}
        atomic_write_text(sweep_dir / "summary.json", json.dumps(summary, indent=1) + "\n")
        atomic_write_text(sweep_dir / "summary.md", _markdown(sweep_dir, rows, plotted))
        files = [sweep_dir / "summary.md", sweep_dir / "summary.json"] + ([plot_path] if plotted else [])
        html = _html(sweep_dir, rows, plot_path if plotted else None)
        if html is not None:
            atomic_write_text(sweep_dir / "summary.html", html)
            files.append(sweep_dir / "summary.html")
    except OSError as err:
        raise OptbuildError(f"cannot write the sweep report into {sweep_dir} ({err.strerror}): check its "
                            f"permissions and free space, then run `optbuild report {sweep_dir}`") from err
    return Report(sweep_dir, rows, files)


def show(report: Report) -> None:
    """The table on the terminal (stderr, like the rest of optbuild's chatter)."""
    from rich.console import Console
    from rich.table import Table

    headers, cells = table(report.rows)
    short = {"latency ms": "ms (median ± CI)", "throughput /s": "/s", "agreement/accuracy": "agree", "build s": "s",
             "cache hits": "hits"}
    shown = Table(title=f"sweep: {len(report.rows)} jobs, {len(report.failed)} failed", min_width=40)
    for header in headers[:-1]:  # artifact paths are in the files; the terminal stays narrow
        shown.add_column(short.get(header, header), no_wrap=True)
    for row, r in zip(cells, report.rows):
        shown.add_row(*row[:-1], style="red" if r["status"] != "ok" else None)
    import sys

    # Logs of cluster and CI runs are not terminals: give them the whole table, not 80 columns.
    console = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 160)
    console.print(shown)
    for note in measurement_notes(report.rows):
        console.print(f"note: {note}", soft_wrap=True)
    console.print(f"report: {report.sweep_dir}/{{{', '.join(p.name for p in report.files)}}}", soft_wrap=True)


def failure_message(report: Report) -> str:
    first = report.failed[0]
    return (f"{len(report.failed)} of {len(report.rows)} sweep jobs failed (job {first['job']}: {first['reason']}); "
            f"see {report.sweep_dir / 'summary.md'}")


def run(args: list[str]) -> int:
    """`optbuild report DIR`: regenerate a sweep's report from its job records and manifests."""
    if len(args) != 1 or args[0].startswith("-"):
        raise OptbuildError("usage: optbuild report DIR (a multirun directory, e.g. outputs/.multirun/<time>)")
    report = write_report(args[0])
    show(report)
    if report.failed:
        raise OptbuildError(failure_message(report))
    return 0
