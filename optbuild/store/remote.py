"""A shared cache behind any fsspec URL (`s3://bucket/prefix`, `gs://...`, `memory://...`): a
mirror of the local store's layout that builds on other machines fill and reuse.

    <url>/cas/sha256/ab/<digest>   blobs, named by the sha256 of their bytes
    <url>/actions/<key>.json       action records, uploaded after the blobs they name

Stage workers need local files, so the remote is only a mirror: a local miss looks the record
up remotely and downloads its blobs into the local store (each one re-hashed before use); a
stage that ran uploads its blobs, then its record. Object stores have no cross-machine locks:
two machines may compute the same stage at once, which only costs time, because an object PUT
is atomic and a key's bytes are fixed by its name (records are whole JSON documents, each
naming blobs its writer uploaded first). Filesystem-like backends get a temporary name and a
rename, as the local store does.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
from pathlib import Path
from typing import Any

from optbuild.errors import OptbuildError, first_line

log = logging.getLogger("optbuild.store")

# Backends whose single-object writes are atomic (a reader sees all of the old or the new bytes).
_ATOMIC_PUT = {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "memory", "oss", "r2"}


def is_url(location: str | os.PathLike[str]) -> bool:
    """A `scheme://...` cache location other than a plain local path (`file://` is local)."""
    text = str(location)
    return "://" in text and not text.startswith("file://")


def local_path(location: str | os.PathLike[str]) -> Path:
    text = str(location)
    return Path(text[len("file://"):] if text.startswith("file://") else text)


class RemoteCache:
    def __init__(self, url: str) -> None:
        import fsspec

        self.url = url.rstrip("/")
        try:
            self.fs, self.root = fsspec.core.url_to_fs(self.url)
        except (ImportError, ValueError) as err:
            protocol = url.split("://", 1)[0]
            first = first_line(err)
            raise OptbuildError(
                f"cache_dir={url}: fsspec cannot open '{protocol}://' ({first}); install its backend "
                "(s3fs for s3://, gcsfs for gs://: pip install 'optbuild[remote]') or use a local path"
            ) from err
        protocols = self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,)
        self.atomic_put = any(p in _ATOMIC_PUT for p in protocols)
        # Blobs that failed verification here: the next upload rewrites them instead of trusting
        # that an object with the right name has the right bytes.
        self._bad: set[str] = set()

    def _blob_key(self, digest: str) -> str:
        return f"{self.root}/cas/sha256/{digest[:2]}/{digest}"

    def _action_key(self, key: str) -> str:
        return f"{self.root}/actions/{key}.json"

    def _fail(self, doing: str, err: Exception) -> OptbuildError:
        first = first_line(err, limit=200)
        return OptbuildError(
            f"remote cache {self.url}: {doing} failed ({type(err).__name__}: {first}); check cache_dir, "
            "the credentials and the endpoint (e.g. AWS_ENDPOINT_URL), or use a local cache_dir"
        )

    # -- reading -----------------------------------------------------------------------------
    def get_action(self, key: str) -> dict[str, Any] | None:
        try:
            return json.loads(self.fs.cat_file(self._action_key(key)))
        except FileNotFoundError:
            return None
        except ValueError:
            log.warning("remote cache record %s is unreadable: ignored and rebuilt", self._action_key(key))
            return None
        except Exception as err:  # noqa: BLE001 - a backend's own error type, summarised
            raise self._fail(f"reading record {key}", err) from err

    def fetch_blob(self, digest: str, size: int, into: Path) -> bool:
        """Download a blob to `into` (a temporary file the caller renames); True only when the
        bytes hash to `digest`."""
        try:
            self.fs.get_file(self._blob_key(digest), str(into))
        except FileNotFoundError:
            return False
        except Exception as err:  # noqa: BLE001
            raise self._fail(f"downloading {digest[:12]}", err) from err
        hasher = hashlib.sha256()
        with open(into, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                hasher.update(chunk)
        if into.stat().st_size != size or hasher.hexdigest() != digest:
            log.warning("remote cache object %s is corrupt (digest mismatch): not used, will be rewritten",
                        self._blob_key(digest))
            self._bad.add(digest)
            return False
        return True

    # -- writing -----------------------------------------------------------------------------
    def _has(self, path: str, size: int) -> bool:
        try:
            self.fs.invalidate_cache(path)
            return int(self.fs.info(path).get("size", -1)) == size
        except FileNotFoundError:
            return False

    def _upload(self, source: str, final: str) -> None:
        if self.atomic_put:
            self.fs.put_file(source, final)
            return
        parent = final.rsplit("/", 1)[0]
        self.fs.makedirs(parent, exist_ok=True)
        tmp = f"{parent}/.tmp-{uuid.uuid4().hex}"
        self.fs.put_file(source, tmp)
        try:
            self.fs.mv(tmp, final)
        except Exception:
            self.fs.rm(tmp)
            raise

    def put_blob(self, digest: str, size: int, source: Path) -> None:
        final = self._blob_key(digest)
        try:
            if digest not in self._bad and self._has(final, size):
                return  # content-addressed: an object under this name already holds these bytes
            self._upload(str(source), final)
            self._bad.discard(digest)
        except Exception as err:  # noqa: BLE001
            raise self._fail(f"uploading {digest[:12]}", err) from err

    def put_action(self, key: str, record_file: Path) -> None:
        try:
            self._upload(str(record_file), self._action_key(key))
        except Exception as err:  # noqa: BLE001
            raise self._fail(f"uploading record {key}", err) from err
