"""One build: plan the stages, run them through the cache, check the gates, publish.

Target-agnostic: everything target-specific arrives in the Plan (optbuild/planning/).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from optbuild.config.paths import portable_config, portable_overrides
from optbuild.config.recipes import RecipeFile
from optbuild.config.schema import Config
from optbuild.errors import OptbuildError
from optbuild.pipeline.progress import StageProgress
from optbuild.pipeline.runner import Runner
from optbuild.pipeline.stage import StageResult, StageSpec
from optbuild.planning import Plan, plan
from optbuild.publish.gates import check_gates
from optbuild.publish.manifest import PROVENANCE, skeleton, stage_entry
from optbuild.publish.package import Packaged, package
from optbuild.publish.provenance import statement
from optbuild.publish.summary import summary
from optbuild.store import Store

log = logging.getLogger("optbuild")


@dataclass(frozen=True)
class BuildOutcome:
    packaged: Packaged
    manifest: dict[str, Any]


def _run(config: Config, stages: list[StageSpec], log_path: str | None, console: Console,
         timeline: list[dict[str, Any]] | None) -> tuple[Runner, dict[str, StageResult]]:
    out_dir = Path(config.out_dir)
    store = Store(config.cache_dir or out_dir / ".cache", local=out_dir / ".cache")  # local half of a URL cache_dir
    progress = StageProgress(console, enabled=config.progress)
    runner = Runner(store, progress, log_path, timeline)
    try:
        return runner, {r.name: r for r in runner.run(stages)}
    finally:
        progress.stop()


def passes_dry_run(config: Config, log_path: str | None, console: Console,
                   timeline: list[dict[str, Any]] | None = None) -> None:
    """`passes_only=true`: the stages up to surgery (cached like any build), then what each
    pass changed. Nothing is published; a later full build reuses these stages."""
    from optbuild.publish.inspect import surgery_lines

    build_plan = plan(config)
    runner, results = _run(config, build_plan.through(build_plan.surgery), log_path, console, timeline)
    for line in surgery_lines(results[build_plan.surgery].reported("passes")):
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    console.print(f"graph after surgery: {runner.output_path(build_plan.surgery, 'model.onnx')} "
                  "(optbuild inspect it; nothing was published)", soft_wrap=True)


def _measured(build_plan: Plan, results: dict[str, StageResult]) -> dict[str, Any]:
    """The manifest fields the plan declares and its stages report, in the plan's order."""
    fields: dict[str, Any] = dict(build_plan.manifest)
    for spec in build_plan.stages:
        for name, path in spec.reports.items():
            value = results[spec.name].reported(path)
            # Notes add up over the stages; any other field is one stage's to report.
            fields[name] = [*(fields.get(name) or []), *(value or [])] if name == "notes" else value
    return fields


def warn_about(measured: dict[str, Any], gates: list[dict[str, Any]]) -> None:
    """What the numbers cannot say, on the terminal as well as in the manifest."""
    for note in measured.get("notes") or []:
        log.warning("%s", note)
    for field in ("validation", "cpu_proxy"):
        for output, why in ((measured.get(field) or {}).get("reference_degenerate") or {}).items():
            log.warning("the FP32 reference's output '%s' is degenerate on the validation set (%s): agreement "
                        "with it means nothing; check the weights (model.weights=null is a random init) and the "
                        "data", output, why)
    for gate in gates:
        if gate["passed"] is None:
            log.warning("gate %s not checked: %s", gate["rule"], gate["reason"])


def build(config: Config, recipe: RecipeFile, overrides: list[str], resolved: dict[str, Any],
          log_path: str | None, console: Console, timeline: list[dict[str, Any]] | None = None) -> BuildOutcome:
    """`timeline`, when given, receives each stage's entry as the runner goes (pipeline/runner.py)."""
    build_plan = plan(config)
    runner, results = _run(config, build_plan.stages, log_path, console, timeline)
    measured = _measured(build_plan, results)
    gates = [gate for record in build_plan.gated
             for gate in check_gates(config.validate, measured.get(record.field), record.label)]
    misses = [g["reason"] for g in gates if g["passed"] is False]
    warn_about(measured, gates)

    shipped = {name: results[source.stage].outputs[source.file] for name, source in build_plan.artifact.items()}
    files = {name: runner.output_path(*source) for name, source in build_plan.artifact.items()}
    artifacts = [{"path": n, "sha256": b.sha256, "bytes": b.bytes} for n, b in sorted(shipped.items())]
    target, precision = config.target.name.value, config.precision.name.value
    manifest = skeleton(
        recipe={"name": recipe.name, "path": recipe.path.name, "sha256": recipe.sha256, "packaged": recipe.packaged},
        target=target, precision=precision, overrides=portable_overrides(overrides), config=portable_config(resolved),
        stages=[stage_entry(results[s.name], s.unstable) for s in build_plan.stages], artifacts=artifacts,
        status="failed" if misses else "passed",
        failure=("validation gate failed: " + "; ".join(misses)) if misses else None, gates=gates,
    )
    manifest.update(measured)
    packaged = package(Path(config.out_dir) / recipe.name / f"{target}-{precision}", files, manifest,
                       lambda final: {PROVENANCE: statement(final)}, promote=not misses)
    summary(console, manifest, str(packaged.path), packaged.reused,
            tuple((record.field, record.title) for record in build_plan.gated))
    if misses:  # published for inspection as a failed version; `latest` stays where it was
        raise OptbuildError(f"{manifest['failure']} — not promoted to latest; its manifest: "
                            f"{packaged.path / 'manifest.json'}")
    return BuildOutcome(packaged, manifest)
