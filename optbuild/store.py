"""Content-addressed store for stage outputs, plus one small JSON record per stage action.

Layout under the cache root:
    cas/sha256/ab/<digest>      immutable blobs, named by the sha256 of their bytes
    actions/<key>.json          {stage, key, outputs: {name: {sha256, bytes}}, data, seconds}
    locks/<key>.lock            serialises identical work in concurrent builds
Every write goes to a temporary name in the same directory, then is renamed into place, so a
crash never leaves a half-written file under a valid name. Reads re-check digests: a blob whose
bytes no longer match is reported, deleted and treated as missing (the stage runs again).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from filelock import FileLock

from optbuild.digest import sha256_file
from optbuild.errors import OptbuildError

log = logging.getLogger("optbuild.store")


@dataclass(frozen=True)
class Blob:
    sha256: str
    bytes: int


@dataclass
class ActionRecord:
    stage: str
    key: str
    outputs: dict[str, Blob]
    data: dict[str, Any]
    seconds: float


def _fsync_replace(tmp: Path, final: Path) -> None:
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, final)


class Store:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).absolute()
        try:
            for sub in ("cas/sha256", "actions", "locks", "tmp"):
                (self.root / sub).mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise OptbuildError(
                f"cannot create the cache at {self.root} ({err.strerror}): "
                "choose a writable cache_dir=..."
            ) from err

    # -- blobs -------------------------------------------------------------------------------
    def blob_path(self, digest: str) -> Path:
        return self.root / "cas" / "sha256" / digest[:2] / digest

    def put_file(self, source: str | Path) -> Blob:
        """Copy a file into the store (atomic); returns its digest."""
        source = Path(source)
        digest = sha256_file(source)
        final = self.blob_path(digest)
        size = source.stat().st_size
        if final.is_file() and final.stat().st_size == size and sha256_file(final) == digest:
            return Blob(digest, size)  # already stored and intact (a corrupt one is replaced)
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=".tmp-")
        os.close(fd)
        try:
            shutil.copyfile(source, tmp)
            _fsync_replace(Path(tmp), final)
        except OSError as err:
            Path(tmp).unlink(missing_ok=True)
            raise OptbuildError(
                f"cannot write to the cache at {self.root} ({err.strerror}): free space or "
                "choose another cache_dir=..."
            ) from err
        return Blob(digest, size)

    def verified(self, blob: Blob) -> Path | None:
        """The blob's path if present and intact; a corrupt blob is discarded."""
        path = self.blob_path(blob.sha256)
        if not path.is_file():
            return None
        if path.stat().st_size != blob.bytes or sha256_file(path) != blob.sha256:
            log.warning("cache object %s is corrupt (digest mismatch): discarded", path)
            path.unlink(missing_ok=True)
            return None
        return path

    # -- action records ----------------------------------------------------------------------
    def _action_path(self, key: str) -> Path:
        return self.root / "actions" / f"{key}.json"

    def get_action(self, key: str) -> ActionRecord | None:
        """The recorded result of `key`, only when every output blob is present and intact."""
        path = self._action_path(key)
        try:
            raw = json.loads(path.read_text())
            record = ActionRecord(
                stage=raw["stage"],
                key=raw["key"],
                outputs={name: Blob(**blob) for name, blob in raw["outputs"].items()},
                data=raw.get("data", {}),
                seconds=float(raw.get("seconds", 0.0)),
            )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            log.warning("cache record %s is unreadable: ignored and rebuilt", path)
            return None
        if record.key != key or any(self.verified(b) is None for b in record.outputs.values()):
            return None
        return record

    def put_action(self, record: ActionRecord) -> None:
        payload = {
            "stage": record.stage,
            "key": record.key,
            "outputs": {n: {"sha256": b.sha256, "bytes": b.bytes} for n, b in record.outputs.items()},
            "data": record.data,
            "seconds": record.seconds,
        }
        final = self._action_path(record.key)
        text = json.dumps(payload, indent=1, sort_keys=True)  # fails before any file exists
        fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(text)
            _fsync_replace(Path(tmp), final)
        except OSError as err:
            Path(tmp).unlink(missing_ok=True)
            raise OptbuildError(
                f"cannot write to the cache at {self.root} ({err.strerror}): free space or "
                "choose another cache_dir=..."
            ) from err

    @contextmanager
    def lock(self, key: str) -> Iterator[None]:
        """Held while a stage computes `key`: a concurrent identical build waits, then hits."""
        with FileLock(str(self.root / "locks" / f"{key}.lock")):
            yield

    def scratch(self) -> tempfile.TemporaryDirectory:
        """A private working directory on the store's filesystem (so renames stay atomic)."""
        return tempfile.TemporaryDirectory(dir=self.root / "tmp")
