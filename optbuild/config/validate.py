"""Validation of the composed config: the schema again, with its rules (catches `+key=`)."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter
from pydantic import ValidationError as PydanticError

from optbuild.config.explain import unknown_key
from optbuild.config.schema import Config, RuleError
from optbuild.errors import OptbuildError

_ADAPTER = TypeAdapter(Config)


def _full_key(location: tuple[Any, ...], rule: RuleError) -> str:
    parts = [str(part) for part in location]
    if rule.key and parts[-len(rule.key.split(".")):] != rule.key.split("."):
        parts.append(rule.key)
    return ".".join(parts)


def error_line(err: PydanticError) -> str:
    """The first problem pydantic found, as one line naming the full key."""
    first = err.errors()[0]
    location = tuple(first["loc"])
    key = ".".join(str(part) for part in location)
    rule = (first.get("ctx") or {}).get("error")
    if isinstance(rule, RuleError):
        return rule.message.replace("{key}", _full_key(location, rule))
    if first["type"] in ("unexpected_keyword_argument", "extra_forbidden"):
        return unknown_key(key)
    return f"invalid value for config key '{key}': {first['msg']}"


def check(container: dict[str, Any]) -> Config:
    """The composed config as a typed `Config`, or an OptbuildError naming the bad key."""
    try:
        return _ADAPTER.validate_python(container)
    except PydanticError as err:
        raise OptbuildError(error_line(err)) from err
