"""Saving an OpenVINO model as a byte-reproducible IR."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

_AUTO_NAME = re.compile(r"^(?P<type>[A-Za-z][A-Za-z0-9]*)_\d+$")


def canonical_names(model: Any) -> Any:
    """Renumber auto-generated node names (`<Type>_<global counter>`) in topological order.

    OpenVINO and NNCF name unnamed nodes from a process-wide counter whose value differs
    between runs, so the same graph would serialize to different XML. These names carry no
    meaning: inputs and outputs are addressed by tensor names, which are left untouched.
    """
    ops = model.get_ordered_ops()
    taken = {op.get_friendly_name() for op in ops}
    counts: Counter[str] = Counter()
    for op in ops:
        match = _AUTO_NAME.match(op.get_friendly_name())
        if not match or match["type"] != op.get_type_name():
            continue
        while (name := f"{match['type']}_{counts[match['type']]}") in taken:
            counts[match["type"]] += 1
        counts[match["type"]] += 1
        taken.add(name)
        op.set_friendly_name(name)
    return model


def save(model: Any, out_dir: str, compress_to_fp16: bool) -> None:
    """model.xml + model.bin in `out_dir`, with an explicit weight-compression choice
    (`ov.save_model` compresses to FP16 by default)."""
    import openvino as ov

    ov.save_model(canonical_names(model), str(Path(out_dir, "model.xml")), compress_to_fp16=compress_to_fp16)
