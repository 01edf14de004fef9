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


def within(key: str, value: float | None, low: float, high: float, why: str = "") -> None:
    """low <= value <= high (NaN is neither): bounds checked before any work, so that a typo
    cannot hold the machine for hours."""
    if value is not None and not low <= value <= high:
        raise RuleError(key, f"{{key}}={value} must be between {_number(low)} and {_number(high)}{why}")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


MAX_SAMPLES = 1_000_000
MAX_SECONDS = 600.0  # any one measurement
MAX_SEED = 2**32 - 1
