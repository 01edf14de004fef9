"""Calibration / validation datasets: one array per model input (samples along the first axis),
with labels when the data has them.

One module per kind behind `KINDS`: `sample_photos` (real photos shipped inside scikit-image,
scikit-learn and matplotlib, so builds work offline), `image_folder` (a directory of images;
labeled when every image sits in a class folder), `fashion_mnist` (the real Fashion-MNIST idx
files of the Debian package dataset-fashion-mnist; labeled), `npz` (arrays already prepared, one
per input), `text` (sentences through the model's tokenizer) and `synthetic` (seeded arrays of
each input's dtype and shape). The image kinds feed the model's image input.

A `DatasetRequest` comes from a validated config: the rules on its fields live in
`optbuild.config.schema`, and this package checks only the data itself. `fingerprint` is the cheap
identity of what `load` / `load_labeled` return; it goes into build-cache keys, so it must change
whenever the data could. Importing this package must stay cheap: PIL and the photo packages are
imported only when images are decoded.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from optbuild.config.choices import DatasetKind
from optbuild.data import fashion_mnist, image_folder, npz, sample_photos, synthetic, text
from optbuild.data.fashion_mnist import (
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_DIR,
    FASHION_MNIST_SPLITS,
    fashion_mnist_arrays,
)
from optbuild.data.files import versions
from optbuild.data.image_folder import IMAGE_EXTENSIONS
from optbuild.data.images import plain_preprocess
from optbuild.data.request import DatasetKindModule, DatasetRequest, Feeds, LabeledSamples, image_input
from optbuild.data.sample_photos import SAMPLE_PHOTOS

__all__ = [
    "DatasetRequest", "Feeds", "LabeledSamples", "KINDS", "fingerprint", "load", "load_labeled", "batches",
    "image_input", "rows", "synthetic_feeds",
    "fashion_mnist_arrays", "SAMPLE_PHOTOS", "FASHION_MNIST_CLASSES", "FASHION_MNIST_DIR",
    "FASHION_MNIST_SPLITS", "IMAGE_EXTENSIONS",
]

KINDS: dict[DatasetKind, DatasetKindModule] = {
    DatasetKind.sample_photos: sample_photos,
    DatasetKind.image_folder: image_folder,
    DatasetKind.npz: npz,
    DatasetKind.fashion_mnist: fashion_mnist,
    DatasetKind.text: text,
    DatasetKind.synthetic: synthetic,
}
# Bump whenever this package changes the data it returns for the same request.
FORMAT = 3


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
        "inputs": request.inputs,
        # Decoding, resizing and the seeded streams all depend on these.
        "versions": versions(("numpy", "pillow")),
    }
    own = KINDS[kind].fingerprint(request)
    result["versions"].update(own.pop("versions", {}))
    result.update(own)
    return result


def load(request: DatasetRequest) -> Feeds:
    """The samples alone (calibration); the same subset and order as `load_labeled`."""
    return KINDS[DatasetKind(request.kind)].load(request, labeled=False).samples


def load_labeled(request: DatasetRequest) -> LabeledSamples:
    """The samples with their labels (validation), when the data has labels."""
    return KINDS[DatasetKind(request.kind)].load(request, labeled=True)


def batches(samples: Feeds, batch: int) -> list[Feeds]:
    """Consecutive full batches in the seeded order; a trailing partial batch is dropped, since
    a model with a fixed batch size cannot take it."""
    return [{name: array[i : i + batch] for name, array in samples.items()}
            for i in range(0, rows(samples) - batch + 1, batch)]


def synthetic_feeds(inputs: list[dict[str, Any]], batch: int | None = None, seed: int = 0) -> Feeds:
    """One fixed seeded batch for every input (benchmarks): the synthetic kind's values, of each
    input's dtype, `batch` overriding the first dimension."""
    rng = np.random.default_rng(seed)
    return {spec["name"]: synthetic.array(spec, batch or spec["shape"][0], rng) for spec in inputs}


def rows(samples: Feeds) -> int:
    return len(next(iter(samples.values()))) if samples else 0
