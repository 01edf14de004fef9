"""One model version folder in a server's repository, `DIR/<name>/<version>/`, and the record of
where it came from (optbuild.json: the artifact, its manifest's sha256, each copied file's sha256).

Files are copied, never linked (a repository outlives the outputs tree it came from), 0644 in a
0755 folder, and checked against the manifest's digests after copying. A folder is assembled
under a hidden name and renamed into place, so a server polling the repository never loads half
a version. Deploying the same thing again changes nothing; replacing a different deployment
takes --force, except giving a kit's placeholder version the engine built from that same kit.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optbuild.core.digest import sha256_file
from optbuild.errors import OptbuildError, file_problem
from optbuild.publish.package import DIR_MODE, FILE_MODE
from optbuild.publish.published import Artifact

RECORD = "optbuild.json"
SCHEMA = "optbuild.deployment/v1"
ENGINE = "model.plan"
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class Deployed:
    """What a deploy did, for the summary it prints."""

    version_dir: Path
    outcome: str  # "written", "replaced" or "unchanged"
    config: Path  # config.pbtxt, or OVMS's config.json
    summary: str  # what the server is told, in a few words
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Source:
    """A file to copy into the version folder: where it is, the sha256 it must have, where it came from."""

    path: Path
    sha256: str
    origin: str  # "artifact", or "--engine" for a plan built from a kit


def model_name(recipe: str, requested: str | None) -> str:
    """--name as given (refused unless a plain folder name), else the recipe's name made one."""
    if requested is not None:
        if not _NAME.match(requested):
            raise OptbuildError(f"deploy: --name {requested!r} is not a usable model name: use letters, digits, "
                                "'_', '-' and '.', not starting with '.' or '-'")
        return requested
    return re.sub(r"[^A-Za-z0-9_.-]", "_", recipe).lstrip(".-") or "model"


def record(artifact: Artifact, server: str, name: str, version: int, files: dict[str, Source],
           settings: dict[str, Any]) -> dict[str, Any]:
    """optbuild.json: no time stamp and no local path, so the same deployment records the same bytes."""
    return {
        "schema": SCHEMA,
        "server": server,
        "model": name,
        "version": version,
        "artifact": {"recipe": artifact.recipe, "target": artifact.target, "precision": artifact.precision,
                     "version": artifact.version, "kind": artifact.kind.value,
                     "manifest_sha256": artifact.manifest_sha256},
        "files": [{"path": n, "sha256": s.sha256, "bytes": s.path.stat().st_size, "from": s.origin}
                  for n, s in sorted(files.items())],
        **settings,
    }


def place_version(folder: Path, files: dict[str, Source], notes: dict[str, str], wanted: dict[str, Any],
                  force: bool) -> str:
    """Write the version folder; returns "written", "replaced" or "unchanged"."""
    existing = _read_record(folder) if folder.exists() else None
    if folder.exists():
        if existing == wanted and _intact(folder, wanted):
            return "unchanged"
        # The same deployment with a damaged file is repaired; anything else needs --force.
        if not (force or existing == wanted or _engine_for_placeholder(existing, wanted)):
            raise OptbuildError(f"deploy: {folder} already holds {_describe(existing)}; give another --version, or "
                                "--force to replace it")
    try:
        staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}-"))
    except OSError as err:
        raise OptbuildError(f"deploy: {file_problem(err)}") from err
    try:
        _fill(staging, files, notes, wanted)
        if folder.exists():
            old = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}-old-"))
            os.rename(folder, old / folder.name)
            os.rename(staging, folder)
            shutil.rmtree(old, ignore_errors=True)
            return "replaced"
        os.rename(staging, folder)
        return "written"
    except OSError as err:
        raise OptbuildError(f"deploy: {file_problem(err)}") from err
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _fill(staging: Path, files: dict[str, Source], notes: dict[str, str], wanted: dict[str, Any]) -> None:
    for name, source in files.items():
        shutil.copyfile(source.path, staging / name)  # the bytes, even when the source is a symlink
        if sha256_file(staging / name) != source.sha256:
            raise OptbuildError(f"deploy: {source.path} changed while it was copied; run the deploy again")
    for name, text in notes.items():
        (staging / name).write_text(text)
    (staging / RECORD).write_text(json.dumps(wanted, indent=2) + "\n")  # last: a folder with it is complete
    for path in staging.iterdir():
        path.chmod(FILE_MODE)
    staging.chmod(DIR_MODE)


def _read_record(folder: Path) -> dict[str, Any] | None:
    try:
        value = json.loads((folder / RECORD).read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) and value.get("schema") == SCHEMA else None


def _intact(folder: Path, wanted: dict[str, Any]) -> bool:
    return all((folder / f["path"]).is_file() and sha256_file(folder / f["path"]) == f["sha256"]
               for f in wanted["files"])


def _engine_for_placeholder(existing: dict[str, Any] | None, wanted: dict[str, Any]) -> bool:
    """A kit deployed before its engine was built, now given that engine: nothing is lost."""
    def has_engine(entry: dict[str, Any]) -> bool:
        return any(f["path"] == ENGINE for f in entry["files"])

    return (existing is not None and existing["artifact"] == wanted["artifact"] and existing["server"] ==
            wanted["server"] and not has_engine(existing) and has_engine(wanted))


def _describe(existing: dict[str, Any] | None) -> str:
    if existing is None:
        return "files optbuild did not deploy"
    a = existing["artifact"]
    return f"another deployment ({a['recipe']} {a['target']}-{a['precision']} v{a['version']}, manifest " \
           f"sha256 {str(a['manifest_sha256'])[:12]})"
