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
from pathlib import Path
from typing import Any

from optbuild.core.digest import sha256_file
from optbuild.core.platform import toolchain
from optbuild.errors import OptbuildError
from optbuild.pipeline.stage import KeyMaterial
from optbuild.publish.manifest import MANIFEST, PROVENANCE, Finding, load_manifest
from optbuild.publish.rebuild import check_rebuild


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
        if KeyMaterial.from_record(stage).key() != stage["key"]:
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


def verify_version(version_dir: Path, rebuild: bool = False) -> list[Finding]:
    manifest = load_manifest(version_dir)
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
