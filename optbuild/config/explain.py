"""Turn Hydra/OmegaConf/pydantic config failures into one line that names the full key."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator

from omegaconf.errors import ConfigKeyError, OmegaConfBaseException, ValidationError

from optbuild.errors import file_problem


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _suggest(full_key: str, choices: list[str]) -> str:
    parent, _, leaf = full_key.rpartition(".")
    close = difflib.get_close_matches(leaf, choices, n=1)
    if not close:
        return ""
    return f" (did you mean '{parent + '.' if parent else ''}{close[0]}'?)"


def unknown_key(full_key: str) -> str:
    known = _known_keys(full_key)
    where = f"; valid keys there: {', '.join(known)}" if known else ""
    return f"unknown config key '{full_key}'{_suggest(full_key, known)}{where}"


def _known_keys(full_key: str) -> list[str]:
    """Field names next to a mistyped key, read from the schema."""
    from dataclasses import fields, is_dataclass

    from optbuild.config.schema import Config

    node: object = Config
    for part in full_key.split(".")[:-1]:
        hints = {f.name: f for f in fields(node)} if is_dataclass(node) else {}
        if part not in hints:
            return []
        default = hints[part].default_factory
        node = default() if callable(default) else None
        if isinstance(node, list):
            return []
    return [f.name for f in fields(node)] if is_dataclass(node) else []


def explain(exc: BaseException) -> str:
    for err in _chain(exc):
        if isinstance(err, OSError) and err.strerror:
            return file_problem(err)
        unknown = isinstance(err, ConfigKeyError) or " not in '" in str(getattr(err, "msg", ""))
        if isinstance(err, OmegaConfBaseException) and unknown and getattr(err, "full_key", None):
            return unknown_key(str(err.full_key))
        if isinstance(err, ValidationError) and getattr(err, "full_key", None):
            first = str(err.msg).splitlines()[0]
            return f"invalid value for config key '{err.full_key}': {first}"
        if isinstance(err, OmegaConfBaseException) and getattr(err, "full_key", None):
            first = str(err.msg).splitlines()[0]
            return f"config key '{err.full_key}': {first}"
    return _hydra_text(str(exc))


def _hydra_text(text: str) -> str:
    """Hydra's own messages span lines ('Available options in ...:\\n\\tintel'); join them."""
    text = text.split("Config search path:")[0]
    text = re.sub(r"In '[^']*': Could not find '([\w/]+)/([^']+)'", r"unknown \1 '\2'", text)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    out: list[str] = []
    for line in lines:
        if line.startswith("Available options in"):
            out.append(line.rstrip(":").replace("Available options in", "valid choices for") + ":")
        elif out and out[-1].endswith(":"):
            out[-1] += " " + line
        elif out and out[-1].startswith("valid choices"):
            out[-1] += ", " + line
        else:
            out.append(line)
    return "; ".join(out) or "invalid configuration"
