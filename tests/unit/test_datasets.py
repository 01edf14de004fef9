"""Datasets on real data: shipped sample photos, images written here (flat and in class folders),
and npz files. Fashion-MNIST is in test_fashion_mnist.py; the config rules on dataset settings
(kinds, fields per kind, num_samples, preprocess, input shape) in test_dataset_config.py."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pytest
from PIL import Image

from optbuild.config.choices import DatasetKind
from optbuild.data import FORMAT as DATA_FORMAT
from optbuild.data import (
    SAMPLE_PHOTOS,
    DatasetRequest,
    batches,
    files,
    fingerprint,
    image_folder,
    image_input,
    load,
    load_labeled,
    sample_photos,
)
from optbuild.errors import OptbuildError

PRE = {"resize": 256, "crop": 224, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
SHAPE = [1, 3, 224, 224]
# The extremes of ImageNet-normalised pixels: (0 - max mean) / min std and (1 - min mean) / min std.
LOW, HIGH = -0.485 / 0.229, (1 - 0.406) / 0.224


def request(kind="sample_photos", path=None, n=8, seed=0, key=None, preprocess=PRE, shape=SHAPE,
            label_map=None):
    return DatasetRequest(kind=kind, path=None if path is None else str(path), num_samples=n,
                          seed=seed, key=key, label_map=label_map, preprocess=preprocess,
                          inputs=[image_input("input", shape)])


def only_input(feeds):
    """The array of the single image input `load` feeds (and nothing else)."""
    assert isinstance(feeds, dict) and list(feeds) == ["input"]
    return feeds["input"]


def photos(n, seed=0, preprocess=PRE, shape=SHAPE):
    return only_input(load(request(n=n, seed=seed, preprocess=preprocess, shape=shape)))


def folder(path, n, seed=0, preprocess=PRE, shape=SHAPE, label_map=None):
    return only_input(load(request("image_folder", path, n, seed, preprocess=preprocess,
                                   shape=shape, label_map=label_map)))


def labeled(path, n, seed=0, label_map=None, shape=SHAPE):
    data = load_labeled(request("image_folder", path, n, seed, shape=shape, label_map=label_map))
    only_input(data.samples)
    return data


def fingerprint_of(kind="sample_photos", path=None, n=8, seed=0, key=None, preprocess=PRE,
                   shape=SHAPE, label_map=None):
    return fingerprint(request(kind, path, n, seed, key, preprocess, shape, label_map))


@pytest.fixture(scope="module")
def chelsea():
    import skimage.data

    return Image.fromarray(skimage.data.chelsea())


@pytest.fixture
def image_dir(tmp_path, chelsea):
    """Seven real images in mixed formats and modes (one nested), plus a non-image file."""
    root = tmp_path / "images"
    (root / "nested").mkdir(parents=True)
    for i in range(3):
        chelsea.crop((i * 40, 0, i * 40 + 300, 280)).save(root / f"cat{i}.jpg", quality=90)
    chelsea.crop((20, 10, 400, 290)).save(root / "nested" / "wide.PNG")
    chelsea.convert("L").save(root / "gray.png")
    chelsea.convert("RGBA").save(root / "alpha.png")
    chelsea.convert("P").save(root / "palette.bmp")
    (root / "notes.txt").write_text("not an image")
    return root


# --- sample_photos ----------------------------------------------------------------------------


def test_sample_photos_are_deterministic_normalised_float32():
    first, again, other = photos(10, seed=0), photos(10, seed=0), photos(10, seed=1)
    assert first.shape == (10, 3, 224, 224) and first.dtype == np.float32
    assert first.tobytes() == again.tobytes()
    assert not np.array_equal(first, other)
    assert LOW - 1e-3 <= first.min() < -1 and 1 < first.max() <= HIGH + 1e-3
    assert np.all(np.abs(first.mean(axis=(0, 2, 3))) < 1)  # roughly centred per channel
    assert len({sample.tobytes() for sample in first}) == 10  # no two crops alike


def test_sample_photos_uses_every_photo():
    photos_rgb = sample_photos.photos()
    assert len(photos_rgb) == len(SAMPLE_PHOTOS) == 8
    palettes = [np.unique(_colors(photo)) for photo in photos_rgb]
    crops = sample_photos.sample_crops(len(SAMPLE_PHOTOS), np.random.default_rng(3))
    used = set()
    for crop in crops:
        # A crop's pixels are copied from its photo, so only that photo holds all its colours.
        colours = np.unique(_colors(crop))
        matches = [i for i, palette in enumerate(palettes) if np.isin(colours, palette).all()]
        assert len(matches) == 1
        used.add(matches[0])
    assert used == set(range(len(SAMPLE_PHOTOS)))


def _colors(image):
    rgb = np.asarray(image, dtype=np.uint32)
    return (rgb[..., 0] << 16 | rgb[..., 1] << 8 | rgb[..., 2]).ravel()


def test_sample_photos_other_input_sizes_and_grayscale():
    assert photos(2, shape=[1, 3, 160, 160]).shape == (2, 3, 160, 160)
    gray = photos(2, shape=[1, 1, 224, 224])
    assert gray.shape == (2, 1, 224, 224)
    assert gray.min() >= -0.485 / 0.229 - 1e-3 and gray.max() <= (1 - 0.485) / 0.229 + 1e-3


# --- fingerprints -----------------------------------------------------------------------------


def test_fingerprint_is_stable_json_and_sensitive():
    base = fingerprint_of()
    assert json.loads(json.dumps(base)) == base == fingerprint_of()
    for key in ("kind", "num_samples", "seed", "key", "preprocess", "inputs"):
        assert key in base
    assert "input_shape" not in base
    assert base["format"] == DATA_FORMAT == 3
    assert base["inputs"] == [{"name": "input", "dtype": "float32", "shape": SHAPE,
                               "low": None, "high": None}]
    assert {"scikit-image", "scikit-learn", "matplotlib"} <= set(base["versions"])
    assert base["photos"] == list(SAMPLE_PHOTOS)
    changed = [
        fingerprint_of(seed=1),
        fingerprint_of(n=9),
        fingerprint_of(preprocess={**PRE, "resize": 232}),
        fingerprint_of(preprocess={**PRE, "mean": [0.5, 0.5, 0.5]}),
        fingerprint_of(shape=[1, 3, 160, 160]),
    ]
    assert all(other != base for other in changed)


def test_fingerprint_is_cheap():
    """Build-cache keys must not pay for the photo packages' imports or image decoding."""
    code = (
        "import sys; from optbuild.data import DatasetRequest, fingerprint as f, image_input; "
        f"f(DatasetRequest('sample_photos', None, 8, 0, preprocess={PRE!r}, "
        f"inputs=[image_input('input', {SHAPE!r})])); "
        "heavy = {'skimage', 'sklearn', 'matplotlib', 'PIL', 'torch', 'openvino', 'nncf'}; "
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_image_folder_fingerprint_follows_content_not_path(image_dir, tmp_path, chelsea):
    base = fingerprint_of("image_folder", str(image_dir), n=7)
    assert str(image_dir) not in json.dumps(base) and "images" not in json.dumps(base)
    moved = shutil.copytree(image_dir, tmp_path / "elsewhere")
    assert fingerprint_of("image_folder", str(moved), n=7) == base

    chelsea.rotate(180).save(moved / "cat1.jpg")
    edited = fingerprint_of("image_folder", str(moved), n=7)
    assert edited != base
    os.rename(moved / "cat1.jpg", moved / "cat9.jpg")
    assert fingerprint_of("image_folder", str(moved), n=7) != edited


def test_npz_fingerprint_follows_content_not_path(tmp_path):
    data = np.zeros((4, *SHAPE[1:]), np.float32)
    np.savez(tmp_path / "a.npz", x=data)
    np.savez(tmp_path / "b.npz", x=data)
    base = fingerprint_of("npz", str(tmp_path / "a.npz"), n=2)
    assert base == fingerprint_of("npz", str(tmp_path / "b.npz"), n=2)
    assert str(tmp_path) not in json.dumps(base)
    np.savez(tmp_path / "b.npz", x=data + 1)
    assert fingerprint_of("npz", str(tmp_path / "b.npz"), n=2) != base


# --- image_folder -----------------------------------------------------------------------------


def test_image_folder_loads_every_format_and_mode(image_dir):
    batch = folder(image_dir, 7)
    assert batch.shape == (7, 3, 224, 224) and batch.dtype == np.float32
    assert LOW - 1e-3 <= batch.min() and batch.max() <= HIGH + 1e-3
    assert folder(image_dir, 7).tobytes() == batch.tobytes()
    assert folder(image_dir, 3, shape=[1, 1, 160, 160]).shape == (3, 1, 160, 160)


def test_image_folder_seeded_subset(image_dir):
    everything = {sample.tobytes() for sample in folder(image_dir, 7)}
    subset = folder(image_dir, 3, seed=5)
    assert subset.shape[0] == 3 and {s.tobytes() for s in subset} <= everything
    orders = {folder(image_dir, 3, seed=s).tobytes() for s in range(4)}
    assert len(orders) > 1


def test_preprocessing_normalises_and_keeps_layout(tmp_path):
    """Left half red, right half blue: exact normalised values, channels first, no flip."""
    pixels = np.zeros((300, 400, 3), np.uint8)
    pixels[:, :200] = (255, 0, 0)
    pixels[:, 200:] = (0, 0, 255)
    Image.fromarray(pixels).save(tmp_path / "halves.png")
    (sample,) = folder(tmp_path, 1)
    mean, std = np.array(PRE["mean"]), np.array(PRE["std"])
    red, blue = (np.array([1, 0, 0]) - mean) / std, (np.array([0, 0, 1]) - mean) / std
    np.testing.assert_allclose(sample[:, 100, :50], np.repeat(red[:, None], 50, 1), atol=1e-5)
    np.testing.assert_allclose(sample[:, 100, -50:], np.repeat(blue[:, None], 50, 1), atol=1e-5)

    (gray,) = folder(tmp_path, 1, shape=[1, 1, 224, 224])
    luma = (255 * 299 // 1000) / 255  # PIL's "L" weight for pure red
    np.testing.assert_allclose(gray[0, 100, :50], (luma - 0.485) / 0.229, atol=1e-2)


def test_image_folder_errors(tmp_path, image_dir):
    with pytest.raises(OptbuildError, match=r"'.*missing' does not exist"):
        folder(tmp_path / "missing", 1)
    (tmp_path / "file.jpg").write_bytes(b"x")
    with pytest.raises(OptbuildError, match="file.jpg' is not a directory"):
        folder(tmp_path / "file.jpg", 1)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("hi")
    with pytest.raises(OptbuildError, match="'.*empty' has no images"):
        folder(tmp_path / "empty", 1)
    with pytest.raises(OptbuildError, match="has 7 images but num_samples is 8: lower num_samples"):
        folder(image_dir, 8)
    with pytest.raises(OptbuildError, match="has 7 images"):
        fingerprint_of("image_folder", str(image_dir), n=8)


def test_image_folder_undecodable_file_is_named(image_dir):
    (image_dir / "nested" / "broken.jpg").write_bytes(b"\xff\xd8 definitely not a jpeg")
    with pytest.raises(OptbuildError, match=r"cannot decode image '.*broken\.jpg'") as err:
        folder(image_dir, 8)
    assert "\n" not in str(err.value)


@contextlib.contextmanager
def without_permissions():
    """As root, permissions only bite after dropping the effective uid (restored afterwards)."""
    if os.geteuid() != 0:
        yield
        return
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)


def test_image_folder_unreadable(chelsea):
    # Not under tmp_path: pytest makes that private to root, so an unprivileged uid cannot even
    # see the folder.
    base = tempfile.mkdtemp()
    try:
        os.chmod(base, 0o755)
        locked = os.path.join(base, "locked")
        os.makedirs(os.path.join(base, "open", "inner"))
        os.mkdir(locked)
        chelsea.save(os.path.join(base, "open", "cat.png"))
        chelsea.save(os.path.join(base, "open", "inner", "secret.png"))
        for path in (locked, *(os.path.join(base, "open", p) for p in ("cat.png", "inner"))):
            os.chmod(path, 0)
        with without_permissions():
            with pytest.raises(OptbuildError, match="cannot read image folder '.*locked'"):
                folder(locked, 1)
            with pytest.raises(OptbuildError, match="cannot read image folder '.*inner'"):
                fingerprint_of("image_folder", os.path.join(base, "open"), n=1)
        os.chmod(os.path.join(base, "open", "inner"), 0o755)
        with without_permissions():
            with pytest.raises(OptbuildError, match=r"cannot read '.*cat\.png'"):
                fingerprint_of("image_folder", os.path.join(base, "open"), n=1)
    finally:
        for path in (base, *(os.path.join(d, n) for d, ds, fs in os.walk(base) for n in ds + fs)):
            os.chmod(path, 0o755)
        shutil.rmtree(base)


# --- image_folder with class folders ----------------------------------------------------------


@pytest.fixture(scope="module")
def class_dir(tmp_path_factory):
    """Three classes of real photos, one folder each: 4 cats, 3 coffee cups, 2 rockets."""
    import skimage.data

    root = tmp_path_factory.mktemp("classes")
    for name, count in (("cat", 4), ("coffee", 3), ("rocket", 2)):
        (root / name).mkdir()
        photo = Image.fromarray(getattr(skimage.data, "chelsea" if name == "cat" else name)())
        for i in range(count):
            photo.crop((i * 20, i * 10, i * 20 + 200, i * 10 + 180)).save(root / name / f"{i}.png")
    return root


def by_bytes(samples):
    return {sample.tobytes() for sample in samples}


def test_class_folders_are_labels(class_dir):
    data = labeled(class_dir, 9)
    assert data.classes == ["cat", "coffee", "rocket"]
    assert data.labels.dtype == np.int64 and data.labels.shape == (9, 1)
    assert sorted(data.labels[:, 0].tolist()) == [0] * 4 + [1] * 3 + [2] * 2
    # Each sample's label is the folder its image came from.
    for index, name in enumerate(data.classes):
        only = labeled(class_dir, {"cat": 4, "coffee": 3, "rocket": 2}[name], label_map={name: 7})
        only_images = only.samples["input"]
        assert only.labels.tolist() == [[7]] * len(only_images) and only.classes == [name]
        assert by_bytes(data.samples["input"][data.labels[:, 0] == index]) == by_bytes(only_images)
    # Calibration gets the very same subset, in the same order.
    assert folder(class_dir, 9).tobytes() == data.samples["input"].tobytes()


def test_label_map_subsets_and_remaps(class_dir):
    label_map = {"rocket": 5, "cat": [281, 282, 281]}
    data = labeled(class_dir, 6, seed=3, label_map=label_map)
    assert data.classes == ["rocket", "cat"]
    assert data.labels.shape == (6, 2)
    rows = sorted(map(tuple, data.labels.tolist()))
    assert rows == [(5, -1)] * 2 + [(281, 282)] * 4  # coffee skipped, duplicates dropped
    again = labeled(class_dir, 6, seed=3, label_map=label_map)
    assert again.samples["input"].tobytes() == data.samples["input"].tobytes()
    assert again.labels.tolist() == data.labels.tolist()
    calibration = folder(class_dir, 6, seed=3, label_map=label_map)
    assert calibration.tobytes() == data.samples["input"].tobytes()
    subset = labeled(class_dir, 3, seed=3, label_map=label_map)
    assert by_bytes(subset.samples["input"]) <= by_bytes(data.samples["input"])
    with pytest.raises(OptbuildError, match="has 6 images in the label_map's classes but "
                                            "num_samples is 7: lower num_samples to at most 6"):
        labeled(class_dir, 7, label_map=label_map)
    with pytest.raises(OptbuildError, match="has 6 images in the label_map's classes"):
        fingerprint_of("image_folder", str(class_dir), n=7, label_map=label_map)


def test_flat_and_mixed_folders(image_dir, tmp_path, chelsea):
    flat = tmp_path / "flat"
    flat.mkdir()
    for i in range(3):
        chelsea.rotate(90 * i).save(flat / f"{i}.jpg")
    data = labeled(flat, 3)
    assert data.labels is None and data.classes is None
    assert data.samples["input"].shape == (3, *SHAPE[1:])
    with pytest.raises(OptbuildError, match="has no class folders, so 'label_map' means nothing"):
        labeled(flat, 3, label_map={"x": 1})
    # image_dir has images at the top and one in nested/: fine to calibrate on, but no labels.
    assert folder(image_dir, 7).shape[0] == 7
    with pytest.raises(OptbuildError, match=r"mixes layouts .*class/image\.jpg") as err:
        labeled(image_dir, 7)
    assert "\n" not in str(err.value)
    with pytest.raises(OptbuildError, match="mixes layouts"):
        fingerprint_of("image_folder", str(image_dir), n=7, label_map={"nested": 0})


def test_label_map_class_the_folder_lacks(class_dir):
    """The config checks label_map's values; only the data knows its classes."""
    label_map = {"cat": 0, "dog": 1}
    message = (r"classes \['dog'\] that image folder .* does not have: its classes "
               r"are \['cat', 'coffee', 'rocket'\]")
    with pytest.raises(OptbuildError, match=message):
        labeled(class_dir, 1, label_map=label_map)
    with pytest.raises(OptbuildError, match=message):
        fingerprint_of("image_folder", str(class_dir), n=1, label_map=label_map)


def test_empty_label_map_is_the_default(class_dir):
    """The config's label_map is {} when unset: it means class i -> output i, like None."""
    default, empty = labeled(class_dir, 9, seed=2), labeled(class_dir, 9, seed=2, label_map={})
    assert empty.classes == default.classes == ["cat", "coffee", "rocket"]
    assert empty.labels.tolist() == default.labels.tolist()
    assert empty.samples["input"].tobytes() == default.samples["input"].tobytes()
    assert (fingerprint_of("image_folder", class_dir, n=9, label_map={})
            == fingerprint_of("image_folder", class_dir, n=9))


def test_labels_only_where_the_data_has_them(tmp_path):
    data = load_labeled(request(n=2))
    assert data.labels is None and data.classes is None and data.samples["input"].shape[0] == 2
    np.savez(tmp_path / "x.npz", x=np.zeros((2, *SHAPE[1:]), np.float32))
    assert load_labeled(request("npz", tmp_path / "x.npz", n=2)).labels is None


def test_folder_fingerprint_hashes_only_the_used_files(class_dir, tmp_path, monkeypatch):
    root = shutil.copytree(class_dir, tmp_path / "copy")
    base = fingerprint_of("image_folder", str(root), n=2, seed=4)
    used = image_folder.select(request("image_folder", root, n=2, seed=4), labeled=False).files
    unused = sorted({p.relative_to(root).as_posix() for p in root.rglob("*.png")} - set(used))
    hashed = []
    real = files.read_sha256
    monkeypatch.setattr(files, "read_sha256", lambda p: hashed.append(p) or real(p))
    files.forget_digests()  # digests are kept per process: hash afresh
    assert fingerprint_of("image_folder", str(root), n=2, seed=4) == base
    assert sorted(p.relative_to(root).as_posix() for p in hashed) == sorted(used)

    Image.new("RGB", (50, 50), "green").save(root / unused[0])  # same name list, unused file
    assert fingerprint_of("image_folder", str(root), n=2, seed=4) == base
    Image.new("RGB", (50, 50), "green").save(root / used[0])
    changed = fingerprint_of("image_folder", str(root), n=2, seed=4)
    assert changed != base
    Image.new("RGB", (50, 50), "blue").save(root / "cat" / "extra.png")  # the list changed
    assert fingerprint_of("image_folder", str(root), n=2, seed=4) != changed
    label_mapped = fingerprint_of("image_folder", str(root), n=2, seed=4, label_map={"cat": 0})
    assert label_mapped != fingerprint_of("image_folder", str(root), n=2, seed=4,
                                          label_map={"cat": 1})


# --- npz --------------------------------------------------------------------------------------


def test_npz_round_trip(tmp_path):
    data = np.random.default_rng(0).normal(size=(6, *SHAPE[1:])).astype(np.float64)
    np.savez(tmp_path / "two.npz", x=data, labels=np.arange(6))
    np.savez(tmp_path / "one.npz", data)
    picked = only_input(load(request("npz", tmp_path / "two.npz", n=4, key="x")))
    assert picked.shape == (4, *SHAPE[1:]) and picked.dtype == np.float32
    rows = [int(np.argmin(np.abs(data - row).sum(axis=(1, 2, 3)))) for row in picked]
    assert len(set(rows)) == 4
    np.testing.assert_allclose(picked, data[rows].astype(np.float32))
    single = only_input(load(request("npz", tmp_path / "one.npz", n=6)))
    sums = sorted(data.sum(axis=(1, 2, 3)))
    assert sorted(single.sum(axis=(1, 2, 3))) == pytest.approx(sums, rel=1e-4)
    again = only_input(load(request("npz", tmp_path / "one.npz", n=6)))
    assert again.tobytes() == single.tobytes()


def test_npz_errors(tmp_path):
    def npz(name, n=2, key=None):
        return only_input(load(request("npz", tmp_path / name, n=n, key=key)))

    good = np.zeros((3, *SHAPE[1:]), np.float32)
    np.savez(tmp_path / "two.npz", a=good, b=good)
    with pytest.raises(OptbuildError, match=r"has arrays \['a', 'b'\]: set 'key'"):
        npz("two.npz")
    with pytest.raises(OptbuildError, match=r"no array 'c': its arrays are \['a', 'b'\]"):
        npz("two.npz", key="c")
    with pytest.raises(OptbuildError, match=r"has 3 samples but num_samples is 4"):
        npz("two.npz", n=4, key="a")
    np.savez(tmp_path / "shape.npz", x=np.zeros((3, 3, 32, 32), np.float32))
    expected = r"shape \[3, 3, 32, 32\], expected \['N', 3, 224, 224\]"
    with pytest.raises(OptbuildError, match=expected):
        npz("shape.npz")
    np.savez(tmp_path / "text.npz", x=np.full((3, *SHAPE[1:]), "a"))
    with pytest.raises(OptbuildError, match="dtype <U1: need numbers"):
        npz("text.npz")
    with pytest.raises(OptbuildError, match="'.*missing.npz' does not exist"):
        npz("missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(OptbuildError, match="'.*junk.npz' is not a valid npz file"):
        npz("junk.npz")
    np.save(tmp_path / "plain.npy", good)
    with pytest.raises(OptbuildError, match="is not a valid npz file .*single array"):
        npz("plain.npy")


def test_npz_never_unpickles(tmp_path):
    np.savez(tmp_path / "objects.npz", x=np.array([{"a": 1}, None], dtype=object))
    with pytest.raises(OptbuildError, match="array 'x' cannot be loaded .*allow_pickle=False"):
        load(request("npz", tmp_path / "objects.npz", n=1, key="x"))


# --- the request and batches -----------------------------------------------------------------


def test_request_travels_as_plain_data(tmp_path):
    """Stages get the request as JSON params: the round trip must give the very same data."""
    original = DatasetRequest(kind=DatasetKind.image_folder, path=str(tmp_path), num_samples=3,
                              seed=2, label_map={"cat": [1, 2]},
                              inputs=[image_input("input", [4, 3, 160, 160])])
    data = original.as_data()
    assert json.loads(json.dumps(data)) == data
    assert data == {"kind": "image_folder", "path": str(tmp_path), "num_samples": 3, "seed": 2,
                    "key": None, "split": None, "label_map": {"cat": [1, 2]},
                    "preprocess": {**PRE, "fit": "crop"},
                    "inputs": [{"name": "input", "dtype": "float32", "shape": [4, 3, 160, 160],
                                "low": None, "high": None}],
                    "tokenizer": None, "targets": "classes", "decoded": False}
    again = DatasetRequest.from_data(data)
    assert again == original and again.kind == "image_folder" and again.batch == 4
    assert again.input_shape == [4, 3, 160, 160] and again.image == data["inputs"][0]
    default = DatasetRequest("npz", "/x.npz", 1, 0)
    assert default.preprocess == {**PRE, "fit": "crop"}  # the ImageNet default
    assert default.batch == 1 and default.input_shape == SHAPE
    assert default.inputs == [image_input()] == [image_input("input", SHAPE)]
    with pytest.raises(TypeError, match="shape"):
        DatasetRequest.from_data({**data, "shape": [1, 3, 224, 224]})
    with pytest.raises(TypeError, match="input_shape"):  # the old single-input argument is gone
        DatasetRequest("npz", "/x.npz", 1, 0, input_shape=SHAPE)


def test_batches_are_consecutive_and_full():
    array = np.arange(7 * 2, dtype=np.float32).reshape(7, 2)
    samples = {"input": array}
    split = batches(samples, 3)
    assert [list(b) for b in split] == [["input"], ["input"]]
    assert [b["input"].tolist() for b in split] == [array[0:3].tolist(), array[3:6].tolist()]
    assert [len(b["input"]) for b in batches(samples, 1)] == [1] * 7
    assert batches(samples, 8) == []


def test_image_kinds_give_each_image_as_decoded_when_asked():
    """For an artifact fed decoded images: the same samples, and the images they came from."""
    from dataclasses import replace

    from PIL import Image

    from optbuild.data import load_labeled
    from optbuild.data.images import preprocess_image

    request = DatasetRequest(kind="sample_photos", path=None, num_samples=5, seed=3)
    plain = load_labeled(request)
    assert plain.decoded is None
    kept = load_labeled(replace(request, decoded=True))
    assert np.array_equal(kept.samples["input"], plain.samples["input"])
    assert len(kept.decoded) == 5 and all(image.dtype == np.uint8 and image.ndim == 3 for image in kept.decoded)
    again = preprocess_image(Image.fromarray(kept.decoded[0]), request.preprocess, request.input_shape)
    assert np.array_equal(again, plain.samples["input"][0])
