"""`optbuild verify PATH [--rebuild]`: check what an artifact is and how it was made.

- integrity: every file against the manifest's digests; missing, extra or changed files named;
- chain: each stage's inputs are earlier stages' recorded outputs, each recorded cache key
  recomputes from its recorded material, and the artifacts are the build stage's outputs;
- provenance: its subjects are exactly the artifacts;
- toolchain: differences between the recorded and the installed tool versions (a note);
- --rebuild: a fresh build from the recorded recipe and overrides into a temporary store (no
  cache), compared byte for byte, naming the first stage whose outputs diverge.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optbuild.digest import sha256_file, sha256_json
from optbuild.errors import OptbuildError
from optbuild.package import MANIFEST, PROVENANCE
from optbuild.toolchain import toolchain

# Overrides that only say where or how verbosely a build ran: not part of what was built.
_PLACE_KEYS = ("out_dir", "cache_dir", "progress", "debug")


@dataclass(frozen=True)
class Finding:
    ok: bool
    check: str
    message: str


def _load_manifest(version_dir: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((version_dir / MANIFEST).read_text())
    except FileNotFoundError as err:
        raise OptbuildError(f"{version_dir} has no {MANIFEST}: it is not an optbuild artifact") from err
    except (OSError, ValueError) as err:
        raise OptbuildError(f"{version_dir / MANIFEST} is unreadable or not JSON: {err}") from err
    if not isinstance(manifest, dict) or not str(manifest.get("schema", "")).startswith("optbuild.manifest/"):
        raise OptbuildError(f"{version_dir / MANIFEST} is not an optbuild manifest")
    return manifest


def check_integrity(version_dir: Path, manifest: dict[str, Any]) -> list[Finding]:
    findings = []
    recorded = {a["path"]: a for a in manifest["artifacts"]}
    for name, entry in sorted(recorded.items()):
        path = version_dir / name
        if not path.is_file():
            findings.append(Finding(False, "integrity", f"{name}: missing"))
        elif path.stat().st_size != entry["bytes"] or sha256_file(path) != entry["sha256"]:
            findings.append(Finding(False, "integrity", f"{name}: changed (digest differs from the manifest)"))
        else:
            findings.append(Finding(True, "integrity", f"{name}: sha256 matches"))
    expected = set(recorded) | {MANIFEST, PROVENANCE}
    for path in sorted(version_dir.iterdir()):
        if path.name not in expected:
            findings.append(Finding(False, "integrity", f"{path.name}: extra file not in the manifest"))
    return findings


def check_provenance(version_dir: Path, manifest: dict[str, Any]) -> list[Finding]:
    try:
        statement = json.loads((version_dir / PROVENANCE).read_text())
        subjects = {s["name"]: s["digest"]["sha256"] for s in statement["subject"]}
    except (OSError, ValueError, KeyError, TypeError):
        return [Finding(False, "provenance", f"{PROVENANCE} is missing or malformed")]
    artifacts = {a["path"]: a["sha256"] for a in manifest["artifacts"]}
    if subjects != artifacts:
        return [Finding(False, "provenance", "provenance subjects differ from the manifest's artifacts")]
    return [Finding(True, "provenance", f"{len(subjects)} subjects match the artifacts")]


def check_chain(manifest: dict[str, Any]) -> list[Finding]:
    findings = []
    produced: dict[str, str] = {}
    for stage in manifest["stages"]:
        name = stage["name"]
        for item in stage["inputs"]:
            if produced.get(item["from"]) != item["sha256"]:
                findings.append(Finding(False, "chain", f"{name}: input {item['path']} is not the recorded "
                                                        f"output {item['from']} of an earlier stage"))
        material = {
            "stage": name,
            "version": stage["version"],
            "inputs": {item["path"]: item["sha256"] for item in stage["inputs"]},
            **{field: stage[field] for field in ("params", "external", "tools", "platform")},
        }
        if sha256_json(material) != stage["key"]:
            findings.append(Finding(False, "chain", f"{name}: recorded key does not recompute from its "
                                                    "inputs, config slice and toolchain"))
        for output in stage["outputs"]:
            produced[f"{name}/{output['path']}"] = output["sha256"]
    # Each artifact must be an output of a recorded stage (a tuned runtime.json comes from
    # `tune`, the model files from the build stage).
    origins: dict[str, str] = {}
    for artifact in manifest["artifacts"]:
        sources = [key.split("/", 1)[0] for key, digest in produced.items()
                   if key.split("/", 1)[1] == artifact["path"] and digest == artifact["sha256"]]
        if not sources:
            findings.append(Finding(False, "chain", f"artifact {artifact['path']} is not the output of any "
                                                    "recorded stage"))
        else:
            origins[artifact["path"]] = sources[-1]
    if not any(not f.ok for f in findings):
        came_from = ", ".join(sorted(set(origins.values())))
        findings.append(Finding(True, "chain", f"{len(manifest['stages'])} stages: keys recompute, "
                                               f"inputs link to outputs, artifacts from '{came_from}'"))
    return findings


def check_toolchain(manifest: dict[str, Any]) -> list[Finding]:
    recorded, installed = manifest.get("toolchain", {}), toolchain()
    changed = [f"{k} {recorded.get(k)} -> {installed.get(k)}" for k in sorted(set(recorded) | set(installed))
               if recorded.get(k) != installed.get(k)]
    if changed:  # a note, not a failure: --rebuild says whether it matters
        return [Finding(True, "toolchain", "installed toolchain differs: " + ", ".join(changed))]
    return [Finding(True, "toolchain", "installed toolchain equals the recorded one")]


def _rebuild_command(manifest: dict[str, Any], out_dir: Path) -> list[str]:
    overrides = [o for o in manifest["overrides"] if o.split("=", 1)[0].lstrip("+~") not in _PLACE_KEYS]
    return [sys.executable, "-m", "optbuild.cli", f"recipe={manifest['recipe']['name']}", *overrides,
            f"out_dir={out_dir}", f"cache_dir={out_dir / '.cache'}", "progress=false"]


def check_rebuild(manifest: dict[str, Any]) -> list[Finding]:
    from optbuild.recipe_index import discover

    recipe = manifest["recipe"]
    env = dict(os.environ)
    recorded_dir = Path(recipe["path"]).parent
    if recorded_dir.is_dir():  # a user recipe: make its directory visible to the rebuild too
        env["OPTBUILD_RECIPE_PATH"] = os.pathsep.join(p for p in (str(recorded_dir), env.get("OPTBUILD_RECIPE_PATH")) if p)
    extra = (recorded_dir,) if recorded_dir.is_dir() else ()
    found = discover(extra).get(recipe["name"])
    if found is None:
        return [Finding(False, "rebuild", f"recipe '{recipe['name']}' is not available here to rebuild from")]
    if found.sha256 != recipe["sha256"]:
        return [Finding(False, "rebuild", f"recipe {found.path} changed since the build (sha256 differs)")]
    with tempfile.TemporaryDirectory(prefix="optbuild-verify-") as tmp:
        result = subprocess.run(_rebuild_command(manifest, Path(tmp)), env=env, capture_output=True, text=True)
        fresh_dir = Path(tmp, recipe["name"], f"{manifest['target']}-{manifest['precision']}", "v1")
        # A version that failed its gates reproduces by failing them again, with the same outputs.
        failed_again = manifest.get("status") == "failed" and (fresh_dir / MANIFEST).is_file()
        if result.returncode != 0 and not failed_again:
            last = (result.stderr.strip().splitlines() or ["no output"])[-1]
            return [Finding(False, "rebuild", f"the rebuild failed: {last}")]
        fresh = _load_manifest(fresh_dir)
    return _compare_stages(manifest, fresh)


# TensorRT engines are not byte-reproducible (tactic timing differs run to run): an engine
# reproduces when its layer/tactic hash is the same and its outputs agree within tolerance.
ENGINE_STAGE = "engine"
ENGINE_NONDETERMINISTIC = ("model.plan", "engine.json", "timing.cache")
ENGINE_COSINE_TOLERANCE = 1e-3


def _compare_engine(recorded: dict[str, Any], fresh: dict[str, Any]) -> Finding | None:
    """A divergence of the engine stage, or None when it reproduces."""
    old, new = recorded.get("engine") or {}, fresh.get("engine") or {}
    if old.get("layer_hash") != new.get("layer_hash"):
        return Finding(False, "rebuild", "first diverged at stage 'engine': the layer/tactic hash differs")
    old_val, new_val = recorded.get("validation") or {}, fresh.get("validation") or {}
    if old_val and new_val and abs(old_val["cosine_mean"] - new_val["cosine_mean"]) > ENGINE_COSINE_TOLERANCE:
        return Finding(False, "rebuild", "first diverged at stage 'engine': outputs differ beyond tolerance "
                                         f"(cosine {old_val['cosine_mean']:.5f} vs {new_val['cosine_mean']:.5f})")
    return None


# Runtime tuning picks settings by timing them: a rebuild may measure a different winner.
TUNE_STAGE = "tune"
TUNE_MEASURED = ("runtime.json",)


def _comparable(outputs: dict[str, str], stage: str) -> dict[str, str]:
    skip = {ENGINE_STAGE: ENGINE_NONDETERMINISTIC, TUNE_STAGE: TUNE_MEASURED}.get(stage, ())
    return {path: digest for path, digest in outputs.items() if path not in skip}


def _artifact_skips(manifest: dict[str, Any]) -> tuple[str, ...]:
    names = {s["name"] for s in manifest["stages"]}
    return ((ENGINE_NONDETERMINISTIC if ENGINE_STAGE in names else ())
            + (TUNE_MEASURED if TUNE_STAGE in names else ()))


def _compare_stages(recorded: dict[str, Any], fresh: dict[str, Any]) -> list[Finding]:
    rebuilt = {s["name"]: {o["path"]: o["sha256"] for o in s["outputs"]} for s in fresh["stages"]}
    for stage in recorded["stages"]:
        if stage["name"] == ENGINE_STAGE and stage["name"] in rebuilt:
            if (divergence := _compare_engine(recorded, fresh)) is not None:
                return [divergence]
        outputs = _comparable({o["path"]: o["sha256"] for o in stage["outputs"]}, stage["name"])
        if stage["name"] in rebuilt and outputs != _comparable(rebuilt[stage["name"]], stage["name"]):
            again = _comparable(rebuilt[stage["name"]], stage["name"])
            differing = sorted(p for p in outputs if outputs[p] != again.get(p))
            return [Finding(False, "rebuild", f"first diverged at stage '{stage['name']}': "
                                              f"{', '.join(differing) or 'different outputs'} differ")]
    skips = _artifact_skips(recorded)
    artifacts = [{a["path"]: a["sha256"] for a in m["artifacts"] if a["path"] not in skips}
                 for m in (recorded, fresh)]
    if artifacts[0] != artifacts[1]:
        return [Finding(False, "rebuild", "rebuilt artifacts differ from the recorded ones")]
    names = {s["name"] for s in recorded["stages"]}
    findings = []
    if TUNE_STAGE in names:
        same = _tuned_runtime(recorded) == _tuned_runtime(fresh)
        findings.append(Finding(True, "rebuild", "runtime tuning is a measurement: the rebuild chose "
                                + ("the same settings" if same else "different settings (not an error)")))
    if ENGINE_STAGE in names:
        return findings + [Finding(True, "rebuild", "a fresh build reproduces every stage: bytes, and for the "
                                   "TensorRT engine its layer/tactic hash and outputs within tolerance")]
    what = "every stage" + (" but the tuned runtime.json" if TUNE_STAGE in names else "")
    return findings + [Finding(True, "rebuild", f"a fresh build without the cache gives byte-identical outputs at {what}")]


def _tuned_runtime(manifest: dict[str, Any]) -> Any:
    return (manifest.get("tuning") or {}).get("chosen")


def verify_version(version_dir: Path, rebuild: bool = False) -> list[Finding]:
    manifest = _load_manifest(version_dir)
    findings = check_integrity(version_dir, manifest) + check_provenance(version_dir, manifest)
    findings += check_chain(manifest) + check_toolchain(manifest)
    if manifest.get("status") == "failed":  # a fact to show, not a verification problem
        findings.append(Finding(True, "status", f"this version FAILED its gates and is not `latest`: "
                                                f"{manifest.get('failure')}"))
    if rebuild:
        findings += check_rebuild(manifest)
    return findings


def version_dirs(path: Path) -> list[Path]:
    """PATH itself when it is an artifact version, else every published version under it."""
    path = path.resolve()
    if (path / MANIFEST).is_file():
        return [path]
    if not path.is_dir():
        raise OptbuildError(f"{path} does not exist: give an artifact directory or an outputs tree")
    found = sorted(p.parent for p in path.glob("**/v*/" + MANIFEST)
                   if not any(part.startswith(".") for part in p.relative_to(path).parts))
    if not found:
        raise OptbuildError(f"no artifact (v<N>/{MANIFEST}) under {path}")
    return found


def run(args: list[str]) -> int:
    """The `verify` verb: print every check, exit non-zero with one error line on any failure."""
    import argparse

    from rich.console import Console

    parser = argparse.ArgumentParser(prog="optbuild verify", description=__doc__.split("\n\n")[0])
    parser.add_argument("path", type=Path, help="an artifact version directory or an outputs tree")
    parser.add_argument("--rebuild", action="store_true", help="rebuild without the cache and compare")
    options = parser.parse_args(args)
    console = Console(highlight=False, soft_wrap=True)
    failures: list[str] = []
    for version_dir in version_dirs(options.path):
        console.print(f"[bold]{version_dir}[/]")
        for finding in verify_version(version_dir, options.rebuild):
            mark = "[green]✓[/]" if finding.ok else "[red]✗[/]"
            console.print(f"  {mark} {finding.check:<10} {finding.message}")
            if not finding.ok:
                failures.append(f"{version_dir.name}: {finding.message}")
    if failures:
        raise OptbuildError(f"verification failed ({len(failures)} problem(s)); first: {failures[0]}")
    return 0
