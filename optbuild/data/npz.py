"""Kind `npz`: an array the user already preprocessed to the model's input shape, saved with
numpy.savez. It is used as it is (cast to float32), never decoded or resized, so it serves inputs
that are not images. The seeded subset is a permutation of its rows. No labels. The fingerprint
is the file's sha256, never its path.
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
    key, array = read_array(existing_file(path), path, request.key)
    _check_array(path, key, array, request)
    rng = np.random.default_rng(request.seed)
    chosen = array[rng.permutation(len(array))[:request.num_samples]]
    return LabeledSamples(np.ascontiguousarray(chosen, dtype=np.float32), None, None)


def read_array(file: Path, path: str, key: str | None) -> tuple[str, np.ndarray]:
    """The named array (or the only one) and its name; `path` is the user's spelling, for
    messages."""
    try:
        # Never allow pickle: recipes are data, and loading a dataset must never execute code.
        loaded = np.load(file, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise ValueError("it holds a single array, not an archive of named arrays")
        with loaded as archive:
            keys = list(archive.keys())
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


def _check_array(path: str, key: str, array: np.ndarray, request: DatasetRequest) -> None:
    """Numbers, already in the input's [C, H, W], and enough rows for num_samples."""
    input_shape, num_samples = request.input_shape, request.num_samples
    if array.dtype.kind not in "biuf":
        raise OptbuildError(f"npz '{path}' array '{key}' has dtype {array.dtype}: need numbers")
    expected = ["N", *input_shape[1:]]
    if array.ndim != 4 or list(array.shape[1:]) != list(input_shape[1:]):
        raise OptbuildError(
            f"npz '{path}' array '{key}' has shape {list(array.shape)}, expected {expected}: "
            "save it preprocessed to the model's input shape"
        )
    if len(array) < num_samples:
        raise OptbuildError(
            f"npz '{path}' array '{key}' has {len(array)} samples but num_samples is "
            f"{num_samples}: lower num_samples to at most {len(array)}"
        )
