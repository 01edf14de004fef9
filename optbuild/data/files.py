"""Data files on disk: existence checks, content digests and the package versions that shape
decoding. Fingerprints go into build-cache keys, so they hash content, never paths."""

from __future__ import annotations

from functools import lru_cache
from importlib import metadata
from pathlib import Path

from optbuild.core.digest import sha256_file
from optbuild.errors import OptbuildError


def oneline(exc: BaseException) -> str:
    """An exception's text on one line: every OptbuildError message is a single line."""
    return " ".join(str(exc).split())


def versions(packages) -> dict[str, str]:
    """Installed versions of the packages whose code decides the data's bytes."""
    try:
        return {name: metadata.version(name) for name in packages}
    except metadata.PackageNotFoundError as exc:
        raise OptbuildError(
            f"dataset needs the package '{exc.name}': pip install 'optbuild[data]'"
        ) from None


def existing_file(path: str) -> Path:
    file = Path(path).expanduser()
    try:
        usable, there = file.is_file(), file.exists()
    except OSError:  # a symlink loop, a name too long, ...
        usable, there = False, True
    if not usable:
        what = "is not a file" if there else "does not exist"
        raise OptbuildError(f"dataset path '{path}' {what}: point 'path' at your data file")
    return file


def read_sha256(path: Path) -> str:
    """sha256 of a file, uncached; an unreadable file is the user's to fix, so say how."""
    try:
        return sha256_file(path)
    except OSError as exc:
        raise OptbuildError(
            f"cannot read '{path}': {exc.strerror}; check its permissions"
        ) from None


def stat_key(file: Path) -> tuple[str, int, int]:
    """The file's identity for per-process caches: resolved path, size and mtime."""
    stat = file.stat()
    return str(file.resolve()), stat.st_size, stat.st_mtime_ns


def cached_sha256(file: Path) -> str:
    """sha256 of a data file, once per process while its size and mtime stay the same: a plan
    fingerprints the validation set for several stages, and calibration may share its files."""
    return _sha256_by_stat(stat_key(file))


@lru_cache(maxsize=4096)
def _sha256_by_stat(key: tuple[str, int, int]) -> str:
    return read_sha256(Path(key[0]))


def forget_digests() -> None:
    """Drop the cached digests, so the next fingerprint reads every file again."""
    _sha256_by_stat.cache_clear()
