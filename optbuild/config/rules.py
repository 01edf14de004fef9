"""How a config rule says it is broken: one RuleError naming its key."""

from __future__ import annotations


class RuleError(ValueError):
    """A config value breaks a rule. `key` is relative to the section the validator runs on;
    `{key}` in the message stands for the full dotted key (config/validate.py fills it in)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message


def fraction(key: str, value: float | None) -> None:
    if value is not None and not -1.0 <= value <= 1.0:
        raise RuleError(key, f"{key}={value} is out of range: these are fractions (0.01 = one point)")


def at_least(key: str, value: float | None, low: float) -> None:
    if value is not None and not value >= low:
        raise RuleError(key, f"{{key}}={value} must be at least {low:g}")
