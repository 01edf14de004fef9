"""Content-addressed store for stage outputs, plus one small JSON record per stage action.

Layout under the cache root:
    cas/sha256/ab/<digest>      immutable blobs, named by the sha256 of their bytes
    actions/<key>.json          {stage, key, outputs: {name: {sha256, bytes}}, data, seconds}
    locks/<key>.lock            serialises identical work in concurrent builds
Every write goes to a temporary name in the same directory, then is renamed into place, so a
crash never leaves a half-written file under a valid name. Reads re-check digests: a blob whose
bytes no longer match is reported, deleted and treated as missing (the stage runs again).

The root may also be an fsspec URL (`s3://bucket/prefix`): the store is then a local directory
(`local=`) mirrored to that shared cache (optbuild/remote_cache.py); a local miss is looked up
remotely, and what a stage produced is uploaded.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from filelock import FileLock

from optbuild.core.digest import sha256_file, sha256_json
from optbuild.core.files import atomic_write
from optbuild.errors import OptbuildError
from optbuild.store.remote import RemoteCache, is_url, local_path

log = logging.getLogger("optbuild.store")
_HOST = socket.gethostname().replace("-", "_")  # the scratch name's fields are split on '-'


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


class _NotFetched(Exception):
    """The remote cache did not deliver an intact blob."""


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


def _parse_record(raw: dict[str, Any]) -> ActionRecord:
    return ActionRecord(
        stage=raw["stage"],
        key=raw["key"],
        outputs={name: Blob(**blob) for name, blob in raw["outputs"].items()},
        data=raw.get("data", {}),
        seconds=float(raw.get("seconds", 0.0)),
    )


def default_local_root(url: str) -> Path:
    """Where the local half of a remote cache lives when the caller names no directory."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "optbuild" / f"remote-{sha256_json(url)[:16]}"


class Store:
    def __init__(self, root: str | Path, local: str | Path | None = None) -> None:
        """`root`: a directory, or an fsspec URL of a shared cache whose local half is `local`."""
        self.remote: RemoteCache | None = None
        if is_url(root):
            self.remote = RemoteCache(str(root))
            root = local if local is not None else default_local_root(str(root))
        self.root = local_path(root).absolute()
        try:
            for sub in ("cas/sha256", "actions", "locks", "tmp"):
                (self.root / sub).mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise OptbuildError(
                f"cannot create the cache at {self.root} ({err.strerror}): "
                "choose a writable cache_dir=..."
            ) from err

    def _write_atomically(self, final: Path, write: Callable[[Path], object]) -> None:
        """`write` fills a temporary file next to `final`, which is then renamed into place."""
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(final, write)
        except OSError as err:
            raise OptbuildError(
                f"cannot write to the cache at {self.root} ({err.strerror}): free space or "
                "choose another cache_dir=..."
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
        self._write_atomically(final, lambda tmp: shutil.copyfile(source, tmp))
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
        """The recorded result of `key`, only when every output blob is present and intact
        (locally, or downloaded and verified from the remote cache)."""
        path = self._action_path(key)
        try:
            record = _parse_record(json.loads(path.read_text()))
        except FileNotFoundError:
            record = None
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            log.warning("cache record %s is unreadable: ignored and rebuilt", path)
            record = None
        if record is not None and record.key == key and all(self.verified(b) for b in record.outputs.values()):
            return record
        return self._get_remote_action(key) if self.remote is not None else None

    def _get_remote_action(self, key: str) -> ActionRecord | None:
        assert self.remote is not None
        raw = self.remote.get_action(key)
        if raw is None:
            return None
        try:
            record = _parse_record(raw)
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("remote cache record %s is unreadable: ignored and rebuilt", key)
            return None
        if record.key != key:
            return None
        for blob in record.outputs.values():
            if self.verified(blob) is None and not self._download(blob):
                return None
        self._write_record(record)
        log.info("stage %s: fetched from the remote cache %s (key %s)", record.stage, self.remote.url, key)
        return record

    def _download(self, blob: Blob) -> bool:
        assert self.remote is not None
        final = self.blob_path(blob.sha256)
        final.parent.mkdir(parents=True, exist_ok=True)
        remote = self.remote

        def fetch(tmp: Path) -> None:
            if not remote.fetch_blob(blob.sha256, blob.bytes, tmp):
                raise _NotFetched

        try:
            atomic_write(final, fetch)
        except _NotFetched:
            return False
        return True

    def put_action(self, record: ActionRecord) -> None:
        """Record `record` locally and, with a remote cache, upload its blobs and then itself."""
        final = self._write_record(record)
        if self.remote is not None:
            for blob in record.outputs.values():
                self.remote.put_blob(blob.sha256, blob.bytes, self.blob_path(blob.sha256))
            self.remote.put_action(record.key, final)

    def _write_record(self, record: ActionRecord) -> Path:
        payload = {
            "stage": record.stage,
            "key": record.key,
            "outputs": {n: {"sha256": b.sha256, "bytes": b.bytes} for n, b in record.outputs.items()},
            "data": record.data,
            "seconds": record.seconds,
        }
        final = self._action_path(record.key)
        text = json.dumps(payload, indent=1, sort_keys=True)  # fails before any file exists
        self._write_atomically(final, lambda tmp: tmp.write_text(text))
        return final

    @contextmanager
    def lock(self, key: str) -> Iterator[None]:
        """Held while a stage computes `key`: a concurrent identical build waits, then hits."""
        with FileLock(str(self.root / "locks" / f"{key}.lock")):
            yield

    def scratch(self) -> tempfile.TemporaryDirectory:
        """A private working directory on the store's filesystem (so renames stay atomic), named
        after this host and process so that the next build can remove it if this one is killed."""
        self.remove_stale_scratch()
        return tempfile.TemporaryDirectory(dir=self.root / "tmp", prefix=f"{_HOST}-{os.getpid()}-")

    def remove_stale_scratch(self) -> None:
        """Scratch folders of builds on this host whose process is gone (killed mid-stage)."""
        for folder in (self.root / "tmp").glob(f"{_HOST}-*-*"):
            pid = folder.name[len(_HOST) + 1:].split("-", 1)[0]
            if pid.isdigit() and not _alive(int(pid)):
                shutil.rmtree(folder, ignore_errors=True)
