"""One build: plan the stages, run them through the cache, check the gates, package."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from optbuild.errors import OptbuildError
from optbuild.package import PROVENANCE, Packaged, package
from optbuild.plan import artifact_stage, plan
from optbuild.provenance import statement
from optbuild.recipe_index import RecipeFile
from optbuild.runner import Runner, StageResult
from optbuild.schema import Config, TargetName
from optbuild.store import Store
from optbuild.toolchain import platform_info, toolchain
from optbuild.ui import StageProgress, summary

MANIFEST_SCHEMA = "optbuild.manifest/v1"


@dataclass(frozen=True)
class BuildOutcome:
    packaged: Packaged
    manifest: dict[str, Any]


def _gates(config: Config, validation: dict[str, Any] | None) -> list[str]:
    misses = []
    rules = config.validate
    if validation is None:
        return misses
    if rules.min_top1_agreement is not None and validation["top1_agreement"] < rules.min_top1_agreement:
        misses.append(f"top-1 agreement {validation['top1_agreement']:.3f} < validate.min_top1_agreement "
                      f"{rules.min_top1_agreement}")
    if rules.min_cosine is not None and validation["cosine_mean"] < rules.min_cosine:
        misses.append(f"cosine {validation['cosine_mean']:.4f} < validate.min_cosine {rules.min_cosine}")
    return misses


def _stage_entry(result: StageResult) -> dict[str, Any]:
    """A stage as the manifest records it: enough to recompute its key and follow the chain."""
    material = result.material
    return {
        "name": result.name,
        "key": result.key,
        "cache_hit": result.cache_hit,
        "seconds": result.seconds,
        "inputs": [{"path": name, "sha256": digest, "from": result.sources[name]}
                   for name, digest in sorted(result.inputs.items())],
        "outputs": [{"path": name, "sha256": b.sha256, "bytes": b.bytes} for name, b in sorted(result.outputs.items())],
        **{field: material[field] for field in ("version", "params", "external", "tools", "platform")},
    }


def _run(config: Config, stages: list, log_path: str | None, console: Console) -> tuple[Runner, dict]:
    out_dir = Path(config.out_dir)
    store = Store(config.cache_dir or out_dir / ".cache", local=out_dir / ".cache")  # local half of a URL cache_dir
    progress = StageProgress(console, enabled=config.progress)
    runner = Runner(store, progress, log_path)
    try:
        return runner, {r.name: r for r in runner.run(stages)}
    finally:
        progress.stop()


def passes_dry_run(config: Config, log_path: str | None, console: Console) -> None:
    """`passes_only=true`: the stages up to surgery (cached like any build), then what each
    pass changed. Nothing is published; a later full build reuses these stages."""
    from optbuild.inspection import surgery_lines

    stages = plan(config)
    names = [s.name for s in stages]
    runner, results = _run(config, stages[: names.index("surgery") + 1], log_path, console)
    for line in surgery_lines(results["surgery"].data["passes"]):
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    console.print(f"graph after surgery: {runner.output_path('surgery', 'model.onnx')} "
                  "(optbuild inspect it; nothing was published)", soft_wrap=True)


def build(config: Config, recipe: RecipeFile, overrides: list[str], resolved: dict[str, Any],
          log_path: str | None, console: Console) -> BuildOutcome:
    stages = plan(config)
    out_dir = Path(config.out_dir)
    runner, results = _run(config, stages, log_path, console)

    validation = results["validate"].data["validation"] if "validate" in results else None
    benchmark = results["benchmark"].data["benchmark"] if "benchmark" in results else None
    # nvidia: the CPU proxy (ONNX Runtime on the prepared graph) is gated too; a kit has nothing else.
    proxy = results["cpu_proxy"].data["cpu_proxy"] if "cpu_proxy" in results else None
    misses = _gates(config, validation) + [f"CPU proxy {miss}" for miss in _gates(config, proxy)]
    if misses:
        raise OptbuildError("validation gate failed: " + "; ".join(misses) + " — the artifact was not "
                            "published; relax the threshold or change the build (e.g. more calibration samples)")

    artifact_from = artifact_stage(config)
    built = results[artifact_from]
    files = {name: runner.output_path(artifact_from, name) for name in built.outputs}
    artifacts = [{"path": n, "sha256": b.sha256, "bytes": b.bytes} for n, b in sorted(built.outputs.items())]
    target, precision = config.target.name.value, config.precision.name.value
    manifest = {
        "schema": MANIFEST_SCHEMA,
        "recipe": {"name": recipe.name, "path": str(recipe.path), "sha256": recipe.sha256},
        "target": target,
        "precision": precision,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "overrides": overrides,
        "config": resolved,
        "stages": [_stage_entry(results[s.name]) for s in stages],
        "artifacts": artifacts,
        "runtime": built.data.get("runtime"),
        "resolved_inference_precision": built.data.get("resolved_inference_precision"),
        "surgery": results["surgery"].data.get("passes"),
        "quantization": results["quantize" if "quantize" in results else "precision"].data,
        "validation": validation,
        "benchmark": benchmark,
        "toolchain": toolchain(),
        "platform": platform_info(),
    }
    if config.target.name is TargetName.nvidia:
        from optbuild.stages.nvidia.planning import manifest_fields

        manifest.update(manifest_fields(config, results))
    packaged = package(out_dir / recipe.name / f"{target}-{precision}", files, artifacts, manifest,
                       {PROVENANCE: statement(manifest)})
    summary(console, manifest, str(packaged.path), packaged.reused)
    if manifest.get("cpu_proxy"):
        proxy = manifest["cpu_proxy"]
        console.print(f"CPU proxy (ONNX Runtime on the prepared ONNX vs FP32): agreement {proxy['top1_agreement']:.1%}"
                      f"   cosine: {proxy['cosine_mean']:.4f}   max-abs: {proxy['max_abs_error']:.3g}")
    if manifest.get("engine_built") is False:
        console.print(manifest["statement"])
    return BuildOutcome(packaged, manifest)
