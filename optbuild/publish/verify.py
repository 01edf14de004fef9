"""`optbuild verify PATH [--rebuild]`: check what an artifact is and how it was made.

- integrity: every file against the manifest's digests; missing, extra or changed files named;
  a recorded path that would leave the version directory is refused, never read;
- provenance: its subjects are exactly the artifacts, and it binds the manifest's digest, so an
  edited claim (status, gates, validation, benchmark, config) fails;
- chain: each stage's inputs are earlier stages' recorded outputs, each recorded cache key
  recomputes from its recorded material, and the artifacts are stage outputs;
- toolchain: differences between the recorded and the installed tool versions (a note);
- latest: in a tree, every `latest` points at an existing version that passed its gates;
- --rebuild: a fresh build from the manifest's recorded config (publish/rebuild.py).

What verify cannot prove, without a signature over provenance.json, is who made a version: a
forger who rewrites the manifest and the statement consistently passes. See docs/security.md.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from optbuild.core.args import Parser
from optbuild.core.digest import sha256_file, sha256_json
from optbuild.core.platform import toolchain
from optbuild.errors import OptbuildError
from optbuild.pipeline.stage import KeyMaterial
from optbuild.publish.manifest import MANIFEST, PROVENANCE, Finding, load_manifest
from optbuild.publish.package import latest_version, versions
from optbuild.publish.provenance import manifest_digest
from optbuild.stages.nvidia.kit import BUILD_DIR as KIT_BUILD_DIR

# (version directory, its manifest, where to look for the files it names) -> findings
Rebuilder = Callable[[Path, dict[str, Any], list[Path]], list[Finding]]


def confined(name: Any) -> bool:
    """A recorded artifact path names a file directly inside the version directory."""
    path = PurePosixPath(str(name))
    return isinstance(name, str) and len(path.parts) == 1 and name not in ("", ".", "..") and "\\" not in name


def check_integrity(version_dir: Path, manifest: dict[str, Any]) -> list[Finding]:
    findings = []
    recorded = {a["path"]: a for a in manifest["artifacts"]}
    for name, entry in sorted(recorded.items(), key=lambda item: str(item[0])):
        path = version_dir / str(name)
        if not confined(name):
            findings.append(Finding(False, "integrity", f"{name!r}: a path outside the version directory"))
        elif not path.is_file() or path.is_symlink():
            findings.append(Finding(False, "integrity", f"{name}: missing"))
        elif path.stat().st_size != entry["bytes"] or sha256_file(path) != entry["sha256"]:
            findings.append(Finding(False, "integrity", f"{name}: changed (digest differs from the manifest)"))
        else:
            findings.append(Finding(True, "integrity", f"{name}: sha256 matches"))
    expected = set(recorded) | {MANIFEST, PROVENANCE}
    for path in sorted(version_dir.iterdir()):
        if path.name == KIT_BUILD_DIR and path.is_dir() and manifest.get("engine_built") is False:
            findings.append(Finding(True, "integrity", f"{KIT_BUILD_DIR}/: a GPU build of this kit (its outputs are "
                                                       "not part of the artifact and are not checked)"))
        elif path.name not in expected:
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
    if manifest_digest(statement) != sha256_json(manifest):
        return [Finding(False, "provenance", f"{MANIFEST} is not the one {PROVENANCE} binds: its claims were "
                                             "edited after the build")]
    return [Finding(True, "provenance", f"{len(subjects)} subjects match the artifacts; it binds this manifest")]


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
    origins: dict[str, str] = {}  # each artifact must be an output of a recorded stage
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
    recorded, installed = manifest.get("toolchain") or {}, toolchain()
    changed = [f"{k} {recorded.get(k)} -> {installed.get(k)}" for k in sorted(set(recorded) | set(installed))
               if recorded.get(k) != installed.get(k)]
    if changed:  # a note, not a failure: --rebuild says whether it matters
        return [Finding(True, "toolchain", "installed toolchain differs: " + ", ".join(changed))]
    return [Finding(True, "toolchain", "installed toolchain equals the recorded one")]


def check_latest(root: Path) -> list[Finding]:
    """`latest` of a `<target>-<precision>` folder: an existing version that passed."""
    link = root / "latest"
    if not link.is_symlink():
        return []
    version = latest_version(root)
    if version is None or version not in versions(root):
        return [Finding(False, "latest", f"{link} points at {link.readlink()}, which is not a version here")]
    try:
        status = load_manifest(root / f"v{version}").get("status", "passed")
    except OptbuildError as err:
        return [Finding(False, "latest", f"{link} points at v{version}, which is not readable: {err.message}")]
    if status != "passed":
        return [Finding(False, "latest", f"{link} points at v{version}, which {status} its gates")]
    return [Finding(True, "latest", f"{link.name} -> v{version}, a version that passed")]


def verify_version(version_dir: Path, rebuild: Rebuilder | None = None,
                   data: list[Path] | None = None) -> list[Finding]:
    manifest = load_manifest(version_dir)
    try:
        findings = check_integrity(version_dir, manifest) + check_provenance(version_dir, manifest)
        findings += check_chain(manifest) + check_toolchain(manifest)
    except (KeyError, TypeError, AttributeError) as err:
        raise OptbuildError(f"{version_dir / MANIFEST} is not a complete optbuild manifest (no {err})") from err
    if manifest.get("status") == "failed":  # a fact to show, not a verification problem
        findings.append(Finding(True, "status", f"this version FAILED its gates and is not `latest`: "
                                                f"{manifest.get('failure')}"))
    if rebuild is not None:
        if any(not f.ok for f in findings):
            findings.append(Finding(False, "rebuild", "not rebuilt: the version's own checks failed, so its "
                                                      "recorded config cannot be trusted"))
        else:
            findings += rebuild(version_dir, manifest, list(data or []))
    return findings


def version_dirs(path: Path) -> list[Path]:
    """PATH itself when it is an artifact version, else every published version under it."""
    path = path.resolve()
    if (path / MANIFEST).is_file():
        return [path]
    if path.is_file():
        raise OptbuildError(f"{path} is a file, not an artifact: give a version directory (…/v1), its "
                            "`<target>-<precision>` folder or an outputs tree")
    if not path.is_dir():
        raise OptbuildError(f"{path} does not exist: give an artifact directory or an outputs tree")
    found = sorted(p for p in path.glob("**/v*") if p.is_dir() and p.name[1:].isdigit()
                   and not any(part.startswith(".") for part in p.relative_to(path).parts))
    if not found:
        raise OptbuildError(f"no artifact (v<N>/{MANIFEST}) under {path}")
    return found


def run(args: list[str], rebuild: Rebuilder | None = None) -> int:
    """The `verify` verb: print every check, exit non-zero with one error line on any failure.
    `rebuild` is the rebuilder `--rebuild` uses (the build lives above this package)."""
    from rich.console import Console

    parser = Parser("optbuild verify", __doc__.split("\n\n")[0])
    parser.add_argument("path", type=Path, help="an artifact version directory or an outputs tree")
    parser.add_argument("--rebuild", action="store_true", help="rebuild from the recorded config and compare")
    parser.add_argument("--data", type=Path, action="append", default=[],
                        help="--rebuild: a directory where the model and data files named in the manifest are")
    options = parser.parse_args(args)
    console = Console(highlight=False, soft_wrap=True)
    failures: list[str] = []
    targets = version_dirs(options.path)
    for version_dir in targets:
        console.print(f"[bold]{version_dir}[/]")
        try:
            findings = verify_version(version_dir, _rebuilder(rebuild) if options.rebuild else None, options.data)
        except OptbuildError as err:  # a bad manifest: said, and the walk goes on
            findings = [Finding(False, "manifest", err.message)]
        _show(console, findings, version_dir, failures)
    for root in sorted({v.parent for v in targets if (v.parent / "latest").is_symlink()}):
        _show(console, check_latest(root), root, failures)
    if failures:
        raise OptbuildError(f"verification failed ({len(failures)} problem(s)); first: {failures[0]}")
    return 0


def _rebuilder(rebuild: Rebuilder | None) -> Rebuilder:
    if rebuild is None:
        raise OptbuildError("verify --rebuild is not available here")
    return rebuild


def _show(console: Any, findings: list[Finding], where: Path, failures: list[str]) -> None:
    for finding in findings:
        mark = "[green]✓[/]" if finding.ok else "[red]✗[/]"
        console.print(f"  {mark} {finding.check:<10} {finding.message}")
        if not finding.ok:
            failures.append(f"{where.name}: {finding.message}")
