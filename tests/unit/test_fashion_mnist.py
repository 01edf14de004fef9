"""The fashion_mnist dataset kind, on the real Fashion-MNIST files of the Debian package
dataset-fashion-mnist (`make test` installs it), plus damaged copies of them made here."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from optbuild.data import (
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_DIR,
    DatasetRequest,
    fashion_mnist_arrays,
    files,
    fingerprint,
    image_input,
    load,
    load_labeled,
)
from optbuild.errors import OptbuildError

SMALL = {"resize": 28, "crop": 28, "mean": [0.2860], "std": [0.3530]}
SMALL_SHAPE = [1, 1, 28, 28]
IMAGENET = {"resize": 256, "crop": 224, "mean": [0.5] * 3, "std": [0.5] * 3}
IMAGENET_SHAPE = [1, 3, 224, 224]
TEST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def request(n, seed=0, split=None, label_map=None, path=None, preprocess=SMALL, shape=SMALL_SHAPE):
    return DatasetRequest("fashion_mnist", path, n, seed, split=split, label_map=label_map,
                          preprocess=preprocess, inputs=[image_input("input", shape)])


def fmnist(n, seed=0, split=None, label_map=None, path=None, preprocess=SMALL, shape=SMALL_SHAPE):
    data = load_labeled(request(n, seed, split, label_map, path, preprocess, shape))
    assert isinstance(data.samples, dict) and list(data.samples) == ["input"]
    return data


def fingerprint_of(n=100, seed=0, split=None, label_map=None, path=None):
    return fingerprint(request(n, seed, split, label_map, path))


@pytest.fixture
def test_copy(tmp_path):
    """A private copy of the test split, to damage."""
    for name in TEST_FILES:
        shutil.copy(Path(FASHION_MNIST_DIR) / name, tmp_path / name)
    return tmp_path


def test_raw_splits_are_the_real_dataset():
    images, ids = fashion_mnist_arrays("test")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert ids[:5].tolist() == [9, 2, 1, 1, 6]  # the published first test labels
    assert np.bincount(ids).tolist() == [1000] * 10
    train_images, train_ids = fashion_mnist_arrays("train")
    assert train_images.shape == (60000, 28, 28) and np.bincount(train_ids).tolist() == [6000] * 10
    # Pixel statistics the example CNN and its recipe normalise with.
    assert train_images.mean() / 255 == pytest.approx(0.2860, abs=1e-3)
    assert train_images.std() / 255 == pytest.approx(0.3530, abs=1e-3)


def test_samples_are_the_preprocessed_images_with_their_labels():
    images, ids = fashion_mnist_arrays("test")
    normalised = (images.astype(np.float32) / 255.0 - np.float32(0.2860)) / np.float32(0.3530)
    row_of = {image.tobytes(): i for i, image in enumerate(normalised)}
    data = fmnist(300, seed=7)
    samples = data.samples["input"]
    assert samples.shape == (300, 1, 28, 28) and samples.dtype == np.float32
    assert data.labels.shape == (300, 1) and data.labels.dtype == np.int64
    assert data.classes == list(FASHION_MNIST_CLASSES)
    rows = [row_of[sample[0].tobytes()] for sample in samples]  # exact: 28x28 is a no-op
    assert len(set(rows)) == 300
    assert data.labels[:, 0].tolist() == ids[rows].tolist()


def test_imagenet_sized_rgb_input():
    data = fmnist(4, preprocess=IMAGENET, shape=IMAGENET_SHAPE)
    samples = data.samples["input"]
    assert samples.shape == (4, 3, 224, 224)
    np.testing.assert_array_equal(samples[:, 0], samples[:, 2])  # gray in every channel
    assert samples.min() == pytest.approx(-1.0) and samples.max() > 0.5
    small = fmnist(4)
    # The same images in the same order, whatever the model's input size.
    assert data.labels.tolist() == small.labels.tolist()


def test_seeded_deterministic_and_balanced():
    first = fmnist(10000)
    assert np.bincount(first.labels[:, 0]).tolist() == [1000] * 10  # the whole split, shuffled
    again, other = fmnist(50, seed=0), fmnist(50, seed=1)
    assert again.samples["input"].tobytes() == first.samples["input"][:50].tobytes()
    assert not np.array_equal(again.samples["input"], other.samples["input"])
    calibration = load(request(50))
    assert list(calibration) == ["input"]
    assert calibration["input"].tobytes() == again.samples["input"].tobytes()
    train = fmnist(50, split="train")
    assert train.samples["input"].tobytes() != again.samples["input"].tobytes()


def test_label_map_keeps_and_remaps_classes():
    label_map = {"Bag": [414, 748, 636], "Sandal": 774}
    data = fmnist(2000, label_map=label_map)
    assert data.classes == ["Bag", "Sandal"] and data.labels.shape == (2000, 3)
    counts = Counter(map(tuple, data.labels.tolist()))
    assert counts == {(414, 748, 636): 1000, (774, -1, -1): 1000}
    with pytest.raises(OptbuildError, match="split 'test' has 2000 images in the label_map's "
                                            "classes but num_samples is 2001"):
        fmnist(2001, label_map=label_map)
    with pytest.raises(OptbuildError, match="split 'test' has 10000 images but num_samples is "
                                            "10001: lower num_samples to at most 10000"):
        fingerprint_of(10001)
    with pytest.raises(OptbuildError, match=r"classes \['Shoe'\] that fashion_mnist does not "
                                            r"have: its classes are \['T-shirt/top', 'Trouser'"):
        fingerprint_of(label_map={"Shoe": 1})


def test_raw_split_must_exist():
    """fashion_mnist_arrays is called directly (examples/), not only through a checked config."""
    with pytest.raises(OptbuildError, match="split 'val' does not exist: use test or train"):
        fashion_mnist_arrays("val")


def test_missing_files_say_how_to_install(tmp_path):
    for call in (lambda: fmnist(1, path=str(tmp_path)), lambda: fingerprint_of(path=str(tmp_path))):
        with pytest.raises(OptbuildError) as err:
            call()
        message = str(err.value)
        assert "apt-get install dataset-fashion-mnist" in message and str(tmp_path) in message
        assert "t10k-images-idx3-ubyte.gz" in message and "\n" not in message
    with pytest.raises(OptbuildError, match=r"train files .* are not in"):
        fmnist(1, path=str(tmp_path), split="train")


def test_damaged_files_are_named(test_copy):
    images, labels = (test_copy / name for name in TEST_FILES)
    assert fmnist(3, path=str(test_copy)).labels.shape == (3, 1)  # the intact copy works

    labels.write_bytes(labels.read_bytes()[:200])  # truncated gzip stream
    with pytest.raises(OptbuildError, match=r"cannot read Fashion-MNIST file '.*t10k-labels.*'"
                                            r" \(.*\): it is damaged; reinstall"):
        fingerprint_of(path=str(test_copy))
    with gzip.open(labels, "wb") as f:  # valid gzip, wrong magic number
        f.write(b"\x00\x00\x08\x03" + bytes(100))
    with pytest.raises(OptbuildError, match=r"t10k-labels-idx1-ubyte.gz' is not a valid 1-d idx"):
        fmnist(1, path=str(test_copy))
    shutil.copy(Path(FASHION_MNIST_DIR) / TEST_FILES[1], labels)
    with gzip.open(images, "wb") as f:  # right magic, too few bytes for the stated shape
        f.write(b"\x00\x00\x08\x03" + (10000).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2)
    with pytest.raises(OptbuildError, match=r"t10k-images-idx3-ubyte.gz' is not a valid 3-d idx"):
        fmnist(1, path=str(test_copy))


def test_fingerprint_follows_content_split_and_label_map(test_copy, monkeypatch):
    base = fingerprint_of(path=str(test_copy))
    assert base == fingerprint_of()  # the same bytes as the installed files, wherever they are
    assert str(test_copy) not in json.dumps(base)
    assert fingerprint_of(split="test") == base
    assert fingerprint_of(split="train") != base
    assert fingerprint_of(label_map={"Bag": 8}) != base
    assert fingerprint_of(label_map={"Bag": 8}) != fingerprint_of(label_map={"Bag": 9})

    hashed = []
    real = files.read_sha256
    monkeypatch.setattr(files, "read_sha256", lambda p: hashed.append(p) or real(p))
    assert fingerprint_of(path=str(test_copy), n=5) != base  # n is part of it, the files are cached
    assert hashed == []
    images = test_copy / TEST_FILES[0]
    with gzip.open(images) as f:
        pixels = bytearray(f.read())
    pixels[-1] ^= 0xFF  # one pixel of the last image
    with gzip.open(images, "wb") as f:
        f.write(bytes(pixels))
    assert fingerprint_of(path=str(test_copy)) != base
    assert len(hashed) == 1


def test_fingerprint_is_cheap():
    code = (
        "import sys; from optbuild.data import DatasetRequest, fingerprint as f, image_input; "
        f"f(DatasetRequest('fashion_mnist', None, 10, 0, split='train', preprocess={SMALL!r}, "
        f"inputs=[image_input('input', {SMALL_SHAPE!r})])); "
        "print(sorted({'PIL', 'torch', 'skimage', 'sklearn'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
