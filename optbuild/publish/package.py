"""Stage `package`: the versioned artifact directory, its manifest, and `latest`.

    <out_dir>/<recipe>/<target>-<precision>/v<N>/   artifact files + manifest.json
    <out_dir>/<recipe>/<target>-<precision>/latest -> v<N>   the last build that passed

A version directory is assembled under a temporary name and renamed into place only when
complete, so `vN` never exists without its manifest. A build that failed its validation gates is
written as a version whose manifest says `"status": "failed"` and why; `latest` never moves to
it. A passing build whose artifact digests equal `latest`'s reuses that version; a failing one
reuses the newest version when that failed with the same artifact.
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

from filelock import FileLock

from optbuild.errors import OptbuildError
from optbuild.publish.manifest import MANIFEST

_VERSION = re.compile(r"^v(\d+)$")


@dataclass(frozen=True)
class Packaged:
    path: Path
    version: int
    reused: bool


def _versions(root: Path) -> list[int]:
    return sorted(int(m.group(1)) for p in root.iterdir() if (m := _VERSION.match(p.name)) and p.is_dir())


def _identity(manifest_path: Path) -> tuple[list[tuple[str, str]], str] | None:
    """A version's artifact digests and status: what decides whether a build can reuse it."""
    try:
        manifest = json.loads(manifest_path.read_text())
        return sorted((a["path"], a["sha256"]) for a in manifest["artifacts"]), manifest.get("status", "passed")
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _latest_version(root: Path) -> int | None:
    match = _VERSION.match(os.readlink(root / "latest")) if (root / "latest").is_symlink() else None
    return int(match.group(1)) if match else None


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


def package(root: Path, files: dict[str, Path], artifacts: list[dict[str, Any]],
            manifest: dict[str, Any], documents: dict[str, dict[str, Any]] | None = None,
            promote: bool = True) -> Packaged:
    """Publish `files` (name -> source path) with `manifest` (and other JSON `documents`, e.g.
    provenance) as the next version under `root`. `promote=False` (a build that failed its
    gates) writes the version but leaves `latest` where it was."""
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OptbuildError(
            f"cannot create the output directory {root} ({err.strerror}): choose a writable out_dir=..."
        ) from err
    wanted = (sorted((a["path"], a["sha256"]) for a in artifacts), manifest.get("status", "passed"))
    with FileLock(str(root / ".lock")):
        _remove_leftovers(root)
        versions = _versions(root)
        # A passing build compares with `latest` (the newest version if the link is gone), a
        # failing one with the newest version.
        newest = versions[-1] if versions else None
        candidate = (_latest_version(root) or newest) if promote else newest
        if candidate in versions and _identity(root / f"v{candidate}" / MANIFEST) == wanted:
            if promote:
                _point_latest(root, candidate)
            return Packaged(root / f"v{candidate}", candidate, reused=True)
        version = (versions[-1] if versions else 0) + 1
        staging = Path(tempfile.mkdtemp(dir=root, prefix=f".v{version}-"))
        staging.chmod(0o755)  # mkdtemp makes it private; a published version is readable
        try:
            for name, source in files.items():
                shutil.copyfile(source, staging / name)
            for name, document in (documents or {}).items():
                (staging / name).write_text(json.dumps(document, indent=2) + "\n")
            # The manifest goes last: a version directory is complete once it has one.
            manifest = {**manifest, "version": version}
            (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n")
            os.rename(staging, root / f"v{version}")
        except OSError as err:
            shutil.rmtree(staging, ignore_errors=True)
            raise OptbuildError(
                f"cannot write the artifact under {root} ({err.strerror}): free space or choose "
                "another out_dir=..."
            ) from err
        if promote:
            _point_latest(root, version)
        return Packaged(root / f"v{version}", version, reused=False)
