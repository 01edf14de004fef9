"""Kind `npz`: arrays the user already prepared for the model's inputs, saved with numpy.savez:
one array per input, named after it (a model with one input may use any name, or `key`). They
are used as they are (cast to each input's dtype), never decoded or resized, so they serve any
model. The seeded subset is one permutation of the rows, the same for every input. No labels.
The fingerprint is the file's sha256, never its path.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from optbuild.data.files import cached_sha256, existing_file, oneline
from optbuild.data.request import DatasetRequest, LabeledSamples
from optbuild.errors import OptbuildError


def fingerprint(request: DatasetRequest) -> dict[str, Any]:
    return {"content_sha256": cached_sha256(existing_file(str(request.path)))}


def load(request: DatasetRequest, labeled: bool) -> LabeledSamples:
    path = str(request.path)
    arrays = read_arrays(existing_file(path), path, request)
    rows = {len(array) for array in arrays.values()}
    if len(rows) != 1:
        raise OptbuildError(f"npz '{path}' arrays have different numbers of rows "
                            f"({', '.join(f'{k}: {len(a)}' for k, a in arrays.items())}): give every input as many")
    order = np.random.default_rng(request.seed).permutation(rows.pop())[:request.num_samples]
    return LabeledSamples({name: np.ascontiguousarray(array[order]) for name, array in arrays.items()}, None, None)


def read_arrays(file: Path, path: str, request: DatasetRequest) -> dict[str, np.ndarray]:
    """An array per model input, checked and cast to its dtype."""
    if len(request.inputs) == 1:  # the only array, or the one `key` names
        spec = request.inputs[0]
        key, array = read_array(file, path, request.key, fallback=spec["name"])
        return {spec["name"]: _checked(path, key, array, spec, request.num_samples)}
    arrays = {}
    for spec in request.inputs:
        key, array = read_array(file, path, spec["name"])
        arrays[spec["name"]] = _checked(path, key, array, spec, request.num_samples)
    return arrays


def read_array(file: Path, path: str, key: str | None, fallback: str | None = None) -> tuple[str, np.ndarray]:
    """The named array (or the only one, or the one named `fallback`) and its name; `path` is the
    user's spelling, for messages."""
    try:
        # Never allow pickle: recipes are data, and loading a dataset must never execute code.
        loaded = np.load(file, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise ValueError("it holds a single array, not an archive of named arrays")
        with loaded as archive:
            keys = list(archive.keys())
            if key is None and fallback in keys:
                key = fallback
            if key is None and len(keys) != 1:
                raise OptbuildError(f"npz '{path}' has arrays {keys}: set 'key' to the one to use")
            key = keys[0] if key is None else key
            if key not in keys:
                raise OptbuildError(f"npz '{path}' has no array '{key}': its arrays are {keys}")
            try:
                return key, archive[key]
            except ValueError as exc:  # e.g. an object array, which only pickle could load
                raise OptbuildError(
                    f"npz '{path}' array '{key}' cannot be loaded ({oneline(exc)}): "
                    "save plain numeric arrays"
                ) from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise OptbuildError(
            f"'{path}' is not a valid npz file ({oneline(exc)}): save it with numpy.savez"
        ) from None


def _checked(path: str, key: str, array: np.ndarray, spec: dict[str, Any], num_samples: int) -> np.ndarray:
    """Numbers, already in the input's shape after the first axis, enough rows for num_samples."""
    shape = spec["shape"]
    if array.dtype.kind not in "biuf":
        raise OptbuildError(f"npz '{path}' array '{key}' has dtype {array.dtype}: need numbers")
    if array.ndim != len(shape) or list(array.shape[1:]) != list(shape[1:]):
        raise OptbuildError(
            f"npz '{path}' array '{key}' has shape {list(array.shape)}, expected {['N', *shape[1:]]} for input "
            f"'{spec['name']}': save it prepared to the model's input shape"
        )
    if len(array) < num_samples:
        raise OptbuildError(
            f"npz '{path}' array '{key}' has {len(array)} samples but num_samples is "
            f"{num_samples}: lower num_samples to at most {len(array)}"
        )
    return array.astype(spec["dtype"], copy=False)
