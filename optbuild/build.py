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


# (config key, what it reads from the validation record, the direction that passes)
_GATES = (
    ("min_top1_agreement", "top1_agreement", "min"),
    ("min_cosine", "cosine_mean", "min"),
    ("max_top1_drop", "top1_drop", "max"),
    ("max_top5_drop", "top5_drop", "max"),
    ("min_top1", "artifact_top1", "min"),
)
_LABELS = {"top1_agreement": "top-1 agreement", "cosine_mean": "cosine", "top1_drop": "top-1 drop",
           "top5_drop": "top-5 drop", "artifact_top1": "top-1"}


def check_gates(config: Config, validation: dict[str, Any] | None, what: str = "") -> list[dict[str, Any]]:
    """Each threshold the recipe sets, with the measured value and whether it passed."""
    if validation is None:
        return []
    results = []
    for key, metric, direction in _GATES:
        threshold = getattr(config.validate, key)
        if threshold is None:
            continue
        value = validation.get(metric)
        if value is None:  # a labeled metric on data without labels
            passed, why = False, "needs a labeled validation set (image_folder class folders, or fashion_mnist)"
        else:
            passed = value >= threshold if direction == "min" else value <= threshold
            sign = "<" if direction == "min" else ">"
            why = "" if passed else f"{_LABELS[metric]} {value:.4f} {sign} validate.{key} {threshold}"
        results.append({"rule": f"validate.{key}", "threshold": threshold, "value": value, "passed": passed,
                        "measured_on": what or "artifact", "reason": f"{what}{why}" if not passed else None})
    return results


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
    gates = check_gates(config, validation) + check_gates(config, proxy, "CPU proxy ")
    misses = [g["reason"] for g in gates if not g["passed"]]

    artifact_from = artifact_stage(config)
    built = results[artifact_from]
    shipped = {name: (artifact_from, blob) for name, blob in built.outputs.items()}
    if "tune" in results:  # the tuned runtime.json replaces the build's
        shipped["runtime.json"] = ("tune", results["tune"].outputs["runtime.json"])
    files = {name: runner.output_path(stage, name) for name, (stage, _) in shipped.items()}
    artifacts = [{"path": n, "sha256": b.sha256, "bytes": b.bytes} for n, (_, b) in sorted(shipped.items())]
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
        "runtime": results["tune"].data["tuning"]["runtime"] if "tune" in results else built.data.get("runtime"),
        "resolved_inference_precision": built.data.get("resolved_inference_precision"),
        "surgery": results["surgery"].data.get("passes"),
        "quantization": results["quantize" if "quantize" in results else "precision"].data,
        "status": "failed" if misses else "passed",
        "failure": ("validation gate failed: " + "; ".join(misses)) if misses else None,
        "gates": gates,
        "validation": validation,
        "validation_dataset": (results["validate"].material["external"].get("dataset")
                               if "validate" in results else None),
        "benchmark": benchmark,
        "tuning": results["tune"].data["tuning"] if "tune" in results else None,
        "toolchain": toolchain(),
        "platform": platform_info(),
    }
    if config.target.name is TargetName.nvidia:
        from optbuild.stages.nvidia.planning import manifest_fields

        manifest.update(manifest_fields(config, results))
    packaged = package(out_dir / recipe.name / f"{target}-{precision}", files, artifacts, manifest,
                       {PROVENANCE: statement(manifest)}, promote=not misses)
    summary(console, manifest, str(packaged.path), packaged.reused)
    if misses:  # published for inspection as a failed version; `latest` stays where it was
        raise OptbuildError(f"{manifest['failure']} — not promoted to latest; its manifest: "
                            f"{packaged.path / 'manifest.json'}")
    return BuildOutcome(packaged, manifest)
