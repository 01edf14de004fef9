"""Writing files so that a crash never leaves a half-written file under its final name."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def atomic_write(final: Path, write: Callable[[Path], object], mode: int | None = None) -> None:
    """`write` fills a temporary file next to `final`, which is synced and renamed into place.
    The temporary file is removed when anything fails."""
    fd, name = tempfile.mkstemp(dir=final.parent, prefix=".tmp-")
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        if mode is not None:
            tmp.chmod(mode)
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(final: Path, text: str, mode: int | None = None) -> None:
    atomic_write(final, lambda tmp: tmp.write_text(text), mode)


def write_json(path: Path, value: Any, mode: int | None = None, **dumps: Any) -> None:
    """`value` as indented JSON with a trailing newline, written atomically."""
    atomic_write_text(path, json.dumps(value, indent=dumps.pop("indent", 2), **dumps) + "\n", mode)
