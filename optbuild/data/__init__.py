"""Calibration / validation datasets, as float32 [N, C, H, W] arrays, with labels when the data
has them.

Four kinds, one module each behind `KINDS`: `sample_photos` (real photos shipped inside
scikit-image, scikit-learn and matplotlib, so builds work offline), `image_folder` (a directory
of images; labeled when every image sits in a class folder), `npz` (an array that is already
preprocessed) and `fashion_mnist` (the real Fashion-MNIST idx files of the Debian package
dataset-fashion-mnist; labeled).

A `DatasetRequest` comes from a validated config: the rules on its fields live in
`optbuild.config.schema`, and this package checks only the data itself. `fingerprint` is the cheap
identity of what `load` / `load_labeled` return; it goes into build-cache keys, so it must change
whenever the data could. Importing this package must stay cheap: PIL and the photo packages are
imported only when images are decoded.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from optbuild.config.schema import DatasetKind
from optbuild.data import fashion_mnist, image_folder, npz, sample_photos
from optbuild.data.fashion_mnist import (
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_DIR,
    FASHION_MNIST_SPLITS,
    fashion_mnist_arrays,
)
from optbuild.data.files import versions
from optbuild.data.image_folder import IMAGE_EXTENSIONS
from optbuild.data.images import plain_preprocess
from optbuild.data.request import DatasetKindModule, DatasetRequest, LabeledSamples
from optbuild.data.sample_photos import SAMPLE_PHOTOS

__all__ = [
    "DatasetRequest", "LabeledSamples", "KINDS", "fingerprint", "load", "load_labeled", "batches",
    "fashion_mnist_arrays", "SAMPLE_PHOTOS", "FASHION_MNIST_CLASSES", "FASHION_MNIST_DIR",
    "FASHION_MNIST_SPLITS", "IMAGE_EXTENSIONS",
]

KINDS: dict[DatasetKind, DatasetKindModule] = {
    DatasetKind.sample_photos: sample_photos,
    DatasetKind.image_folder: image_folder,
    DatasetKind.npz: npz,
    DatasetKind.fashion_mnist: fashion_mnist,
}
# Bump whenever this package changes the data it returns for the same request.
FORMAT = 2


def fingerprint(request: DatasetRequest) -> dict[str, Any]:
    """What the data is, as plain JSON, without decoding any image: the request's settings, the
    versions of the code that decodes, and the kind's content digest (never a path)."""
    kind = DatasetKind(request.kind)
    result: dict[str, Any] = {
        "format": FORMAT,
        "kind": kind.value,
        "num_samples": request.num_samples,
        "seed": request.seed,
        "key": request.key,
        "preprocess": plain_preprocess(request.preprocess),
        "input_shape": list(request.input_shape),
        # Decoding, resizing and the seeded streams all depend on these.
        "versions": versions(("numpy", "pillow")),
    }
    own = KINDS[kind].fingerprint(request)
    result["versions"].update(own.pop("versions", {}))
    result.update(own)
    return result


def load(request: DatasetRequest) -> np.ndarray:
    """The samples alone (calibration); the same subset and order as `load_labeled`."""
    return KINDS[DatasetKind(request.kind)].load(request, labeled=False).samples


def load_labeled(request: DatasetRequest) -> LabeledSamples:
    """The samples with their labels (validation), when the data has labels."""
    return KINDS[DatasetKind(request.kind)].load(request, labeled=True)


def batches(samples: np.ndarray, batch: int) -> list[np.ndarray]:
    """Consecutive full batches in the seeded order; a trailing partial batch is dropped, since
    a model with a fixed batch size cannot take it."""
    return [samples[i : i + batch] for i in range(0, len(samples) - batch + 1, batch)]
