"""Publishing: the versioned artifact directory, its manifest, and `latest`.

    <out_dir>/<recipe>/<target>-<precision>/v<N>/   artifact files + manifest.json + provenance.json
    <out_dir>/<recipe>/<target>-<precision>/latest -> v<N>   the last build that passed

A version is what was built and measured: a build reuses a version only when that version's
files still hash to what its manifest records (a damaged one is reported and a new version
published) and its evidence (status, gates, validation, benchmark, ...) is the same as the
build's. Otherwise the build becomes the next version, even when its files are the same: new
evidence is never lost or contradicted by an old manifest. Every version is a candidate, so the
same build never publishes twice: an identical failure reuses its failed version, a version a
killed build published without moving `latest` is taken up by the next identical build, and
going back to an earlier recipe moves `latest` back to the version it built. `latest` only ever
points at a passing version.

A version directory is assembled under a temporary name and renamed into place only when
complete, so `vN` never exists without its manifest; files are published 0644, directories 0755,
whatever the umask.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock

from optbuild.core.digest import sha256_file, sha256_json
from optbuild.errors import OptbuildError
from optbuild.publish.manifest import MANIFEST

_VERSION = re.compile(r"^v(\d+)$")
FILE_MODE, DIR_MODE = 0o644, 0o755
# What a version claims beyond its files: a build with other evidence is another version. (What
# made the files, e.g. the surgery report with its timings, is not evidence about them.)
EVIDENCE = ("status", "failure", "gates", "validation", "validation_dataset", "benchmark", "tuning", "cpu_proxy")
log = logging.getLogger("optbuild")
Documents = Callable[[dict[str, Any]], dict[str, dict[str, Any]]]


@dataclass(frozen=True)
class Packaged:
    path: Path
    version: int
    reused: bool


def identity(manifest: dict[str, Any]) -> tuple[Any, ...]:
    """What decides whether a build can reuse a version: its files and its evidence."""
    files = sorted((a["path"], a["sha256"]) for a in manifest["artifacts"])
    return files, sha256_json({field: manifest.get(field) for field in EVIDENCE})


def versions(root: Path) -> list[int]:
    return sorted(int(m.group(1)) for p in root.iterdir() if (m := _VERSION.match(p.name)) and p.is_dir())


def latest_version(root: Path) -> int | None:
    match = _VERSION.match(os.readlink(root / "latest")) if (root / "latest").is_symlink() else None
    return int(match.group(1)) if match else None


def _read(version_dir: Path) -> dict[str, Any] | None:
    try:
        manifest = json.loads((version_dir / MANIFEST).read_text())
        identity(manifest)
        return manifest
    except (OSError, ValueError, KeyError, TypeError):
        return None


def damage(version_dir: Path, manifest: dict[str, Any]) -> str | None:
    """What is wrong with a version's files (None: each hashes to what the manifest says)."""
    for artifact in manifest["artifacts"]:
        path = version_dir / str(artifact["path"])
        if not path.is_file():
            return f"{artifact['path']} is missing"
        if path.stat().st_size != artifact.get("bytes") or sha256_file(path) != artifact["sha256"]:
            return f"{artifact['path']} changed"
    return None


def _reusable(root: Path, wanted: tuple[Any, ...]) -> int | None:
    """The newest existing version with the same files and evidence (status included), intact."""
    for version in reversed(versions(root)):
        manifest = _read(root / f"v{version}")
        if manifest is None or identity(manifest) != wanted:
            continue
        if (problem := damage(root / f"v{version}", manifest)) is not None:
            log.warning("published version %s is damaged (%s): publishing a new version instead", root / f"v{version}",
                        problem)
            continue
        return version
    return None


def _point_latest(root: Path, version: int) -> None:
    link = root / "latest"
    tmp = root / f".latest-{os.getpid()}"
    tmp.unlink(missing_ok=True)
    os.symlink(f"v{version}", tmp)
    os.replace(tmp, link)


def _remove_leftovers(root: Path) -> None:
    """Staging directories and link temporaries of builds that were killed. Only called with
    the lock held, so no live build owns them."""
    for path in root.iterdir():
        if path.name.startswith(".v") and path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        elif path.name.startswith(".latest-"):
            path.unlink(missing_ok=True)


def _write_version(root: Path, version: int, files: dict[str, Path], manifest: dict[str, Any],
                   documents: Documents | None) -> None:
    staging = Path(tempfile.mkdtemp(dir=root, prefix=f".v{version}-"))
    try:
        for name, source in files.items():
            shutil.copyfile(source, staging / name)
        for name, document in (documents(manifest) if documents else {}).items():
            (staging / name).write_text(json.dumps(document, indent=2) + "\n")
        # The manifest goes last: a version directory is complete once it has one.
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n")
        for path in staging.iterdir():
            path.chmod(FILE_MODE)
            with open(path, "rb") as f:
                os.fsync(f.fileno())
        staging.chmod(DIR_MODE)
        os.rename(staging, root / f"v{version}")
    except OSError as err:
        shutil.rmtree(staging, ignore_errors=True)
        raise OptbuildError(f"cannot write the artifact under {root} ({err.strerror}): free space or choose "
                            "another out_dir=...") from err


def package(root: Path, files: dict[str, Path], manifest: dict[str, Any], documents: Documents | None = None,
            promote: bool = True) -> Packaged:
    """Publish `files` (name -> source path) with `manifest`, and the JSON documents made from
    the final manifest (e.g. provenance), as a version under `root`. `promote=False` (a build
    that failed its gates) writes the version but leaves `latest` where it was."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        root.chmod(DIR_MODE)
    except OSError as err:
        raise OptbuildError(f"cannot create the output directory {root} ({err.strerror}): choose a writable "
                            "out_dir=...") from err
    wanted = identity(manifest)
    with FileLock(str(root / ".lock")):
        _remove_leftovers(root)
        reuse = _reusable(root, wanted)
        if reuse is not None:
            if promote:
                _point_latest(root, reuse)
            return Packaged(root / f"v{reuse}", reuse, reused=True)
        version = (versions(root) or [0])[-1] + 1
        _write_version(root, version, files, {**manifest, "version": version}, documents)
        if promote:
            _point_latest(root, version)
        return Packaged(root / f"v{version}", version, reused=False)
