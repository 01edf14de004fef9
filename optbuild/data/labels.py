"""Labels: the label_map resolved against the classes the data really has, the label array the
accuracy metrics read, and the "too few samples" error shared by the labeled kinds.

The label_map's values were checked by the config schema; what only the data can tell (which
classes exist, how many samples they hold) is checked here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from optbuild.errors import OptbuildError


def plain_label_map(label_map: Mapping[str, Any]) -> dict[str, list[int]]:
    """Class name -> accepted output indices: a single index becomes a list, repeats go."""
    plain: dict[str, list[int]] = {}
    for name, value in label_map.items():
        listed = isinstance(value, Sequence) and not isinstance(value, str)
        values = list(value) if listed else [value]
        plain[str(name)] = list(dict.fromkeys(values))
    return plain


def resolve(label_map: Mapping[str, Any] | None, classes: Sequence[str],
            what: str) -> dict[str, list[int]]:
    """The label_map, or the default class i -> output i, against the data's real classes."""
    if not label_map:
        return {name: [i] for i, name in enumerate(classes)}
    plain = plain_label_map(label_map)
    unknown = [name for name in plain if name not in classes]
    if unknown:
        raise OptbuildError(
            f"label_map names classes {unknown} that {what} does not have: its classes are "
            f"{list(classes)}"
        )
    return plain


def label_array(mapping: dict[str, list[int]], sample_classes: Sequence[str]) -> np.ndarray:
    """int64 [N, K] accepted output indices per sample, padded with -1 (classes may accept
    different numbers of outputs)."""
    width = max(len(v) for v in mapping.values())
    table = {name: v + [-1] * (width - len(v)) for name, v in mapping.items()}
    return np.array([table[name] for name in sample_classes], dtype=np.int64).reshape(-1, width)


def too_few(what: str, noun: str, available: int, num_samples: int,
            filtered: bool) -> OptbuildError:
    """num_samples is more than the data holds (after dropping classes the label_map leaves out)."""
    within = " in the label_map's classes" if filtered else ""
    return OptbuildError(
        f"{what} has {available} {noun}{within} but num_samples is {num_samples}: "
        f"lower num_samples to at most {available}"
    )
