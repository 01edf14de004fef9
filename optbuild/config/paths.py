"""Paths in a published manifest: never absolute, never where the builder keeps its files.

A manifest and its provenance travel with the artifact, so they record a path from the config
(the model file, a dataset, a timing cache, the output root) as it is relative to the directory
the build ran in when it lies below it, and as its file name alone otherwise. What the file was
is bound by its content digest, recorded with the stage that read it. `verify --rebuild` finds
the files again from these names (publish/rebuild.py).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

# Config keys whose values are paths on the building machine.
PATH_KEYS = ("model.path", "model.weights", "calibration.path", "validate.path", "target.tensorrt.timing_cache",
             "out_dir", "cache_dir")
_URL = ("s3://", "gs://", "gcs://", "az://", "abfs://", "http://", "https://", "file://", "memory://")


def looks_like_path(key: str, value: Any) -> bool:
    """model.weights is a path only when it names a checkpoint file, not a weights name."""
    if not isinstance(value, str) or not value or value.startswith(_URL):
        return False
    if key == "model.weights":
        return "/" in value or value.endswith((".pt", ".pth", ".bin"))
    return True


def portable(value: str, base: Path | None = None) -> str:
    """`value` relative to `base` (the working directory) when it lies below it, else its name."""
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = (base or Path.cwd()) / path
    path = Path(os.path.normpath(path))
    root = Path(os.path.normpath(base or Path.cwd()))
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else path.name


def get(config: dict[str, Any], key: str) -> Any:
    node: Any = config
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def set_value(config: dict[str, Any], key: str, value: Any) -> None:
    *parents, leaf = key.split(".")
    node = config
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value


def portable_config(config: dict[str, Any], base: Path | None = None) -> dict[str, Any]:
    """A deep copy of the resolved config with every path made portable."""
    import copy

    result = copy.deepcopy(config)
    for key in PATH_KEYS:
        value = get(result, key)
        if looks_like_path(key, value):
            set_value(result, key, portable(value, base))
    return result


def portable_overrides(overrides: list[str], base: Path | None = None) -> list[str]:
    """Command-line overrides as recorded: path values made portable, the rest as given."""
    out = []
    for override in overrides:
        key, sep, value = override.partition("=")
        plain = key.lstrip("+~")
        out.append(f"{key}={portable(value, base)}" if sep and plain in PATH_KEYS and looks_like_path(plain, value)
                   else override)
    return out
