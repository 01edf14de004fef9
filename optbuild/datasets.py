"""Calibration / validation image datasets, as float32 [N, C, H, W] arrays, with labels when the
data has them.

Four kinds: `sample_photos` (real photos shipped inside scikit-image, scikit-learn and
matplotlib, so builds work offline), `image_folder` (a directory of images; labeled when every
image sits in a class folder), `npz` (an array that is already preprocessed) and `fashion_mnist`
(the real Fashion-MNIST idx files of the Debian package dataset-fashion-mnist; labeled).
`dataset_fingerprint` is the cheap identity of what `load_dataset` / `load_labeled` return; it
goes into build-cache keys, so it must change whenever the data could.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, is_dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from optbuild.errors import OptbuildError

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

KINDS = ("sample_photos", "image_folder", "npz", "fashion_mnist")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
SAMPLE_PHOTOS: tuple[str, ...] = (
    "skimage:astronaut",
    "skimage:chelsea",
    "skimage:coffee",
    "skimage:rocket",
    "skimage:hubble_deep_field",
    "sklearn:china.jpg",
    "sklearn:flower.jpg",
    "matplotlib:grace_hopper.jpg",
)
_PHOTO_PACKAGES = ("scikit-image", "scikit-learn", "matplotlib")
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
FASHION_MNIST_SPLITS = {
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
}
# Bump whenever this module changes the data it returns for the same arguments.
_FORMAT = 2
_CROP_SCALE = (0.3, 1.0)
_CROP_RATIO = (3 / 4, 4 / 3)


# --- public API -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabeledSamples:
    samples: "np.ndarray"  # float32 [N, C, H, W]
    # int64 [N, K]: the model output indices accepted for each sample, padded with -1.
    # None when the data has no labels (sample_photos, npz, a flat image folder).
    labels: "np.ndarray | None"
    classes: list[str] | None  # the dataset's class names that were kept, in label_map order


def dataset_fingerprint(kind: str, path: str | None, num_samples: int, seed: int, key: str | None,
                        preprocess: dict, input_shape: list[int], split: str | None = None,
                        label_map: dict[str, Any] | None = None) -> dict:
    kind, preprocess = _check_args(kind, path, num_samples, seed, key, preprocess, input_shape,
                                   split, label_map)
    fingerprint: dict[str, Any] = {
        "format": _FORMAT,
        "kind": kind,
        "num_samples": num_samples,
        "seed": seed,
        "key": key,
        "preprocess": preprocess,
        "input_shape": list(input_shape),
        # Decoding, resizing and the seeded streams all depend on these.
        "versions": _versions(("numpy", "pillow")),
    }
    if kind == "sample_photos":
        fingerprint["versions"].update(_versions(_PHOTO_PACKAGES))
        fingerprint["photos"] = list(SAMPLE_PHOTOS)
    elif kind == "image_folder":
        folder = _select_folder(path, num_samples, seed, label_map, labeled=False)
        # The whole name list (cheap) and the content of only the files the subset uses: the
        # subset is a function of the list, seed and label_map, all of which are in here.
        digest = hashlib.sha256("\n".join(folder.all_files).encode())
        for rel in folder.files:
            digest.update(f"\n{rel}\0{_cached_sha256(folder.root / rel)}".encode())
        fingerprint["content_sha256"] = digest.hexdigest()
        fingerprint["label_map"] = folder.label_map
    elif kind == "fashion_mnist":
        fmnist = _select_fashion_mnist(path, split, num_samples, seed, label_map)
        fingerprint["split"] = fmnist.split
        fingerprint["label_map"] = fmnist.label_map
        fingerprint["content_sha256"] = [_cached_sha256(file) for file in fmnist.files]
    else:
        fingerprint["content_sha256"] = _cached_sha256(_existing_file(path))
    return fingerprint


def load_dataset(kind: str, path: str | None, num_samples: int, seed: int, key: str | None,
                 preprocess: dict, input_shape: list[int], split: str | None = None,
                 label_map: dict[str, Any] | None = None) -> "np.ndarray":
    """The samples alone (calibration); the same subset and order as `load_labeled`."""
    return _load(kind, path, num_samples, seed, key, preprocess, input_shape, split, label_map,
                 labeled=False).samples


def load_labeled(kind: str, path: str | None, num_samples: int, seed: int, key: str | None,
                 preprocess: dict, input_shape: list[int], split: str | None = None,
                 label_map: dict[str, Any] | None = None) -> LabeledSamples:
    """The samples with their labels (validation), when the data has labels."""
    return _load(kind, path, num_samples, seed, key, preprocess, input_shape, split, label_map,
                 labeled=True)


def fashion_mnist_arrays(split: str = "test", path: str | None = None) -> tuple["np.ndarray", "np.ndarray"]:
    """The raw Fashion-MNIST split: uint8 images [N, 28, 28] and uint8 class ids [N]."""
    split = _check_split("fashion_mnist", split)
    images_file, labels_file = _fashion_mnist_files(path, split)
    images, labels = _read_idx(images_file, 3), _read_idx(labels_file, 1)
    _check_fashion_mnist(images_file, images, labels)
    return images, labels


def _load(kind, path, num_samples, seed, key, preprocess, input_shape, split, label_map,
          labeled: bool) -> LabeledSamples:
    import numpy as np

    kind, preprocess = _check_args(kind, path, num_samples, seed, key, preprocess, input_shape,
                                   split, label_map)
    labels: np.ndarray | None = None
    classes: list[str] | None = None
    images: Iterable[Image.Image]
    if kind == "npz":
        rng = np.random.default_rng(seed)
        return LabeledSamples(_load_npz(path, key, num_samples, rng, input_shape), None, None)
    if kind == "sample_photos":
        images = _sample_crops(num_samples, np.random.default_rng(seed))
    elif kind == "image_folder":
        folder = _select_folder(path, num_samples, seed, label_map, labeled)
        images = (_open_image(folder.root / rel) for rel in folder.files)
        labels, classes = folder.labels, folder.classes
    else:
        from PIL import Image

        fmnist = _select_fashion_mnist(path, split, num_samples, seed, label_map)
        pixels, _ = fashion_mnist_arrays(fmnist.split, path)
        images = (Image.fromarray(pixels[i]) for i in fmnist.indices)  # uint8 2-D: mode "L"
        labels, classes = fmnist.labels, fmnist.classes
    batch = [_preprocess(image, preprocess, input_shape) for image in images]
    samples = np.ascontiguousarray(np.stack(batch), dtype=np.float32)
    return LabeledSamples(samples, labels, classes)


# --- argument checks --------------------------------------------------------------------------


def _check_args(kind, path, num_samples, seed, key, preprocess, input_shape, split=None,
                label_map=None) -> tuple[str, dict]:
    """Validates everything that is cheap to check, so a bad recipe fails before any heavy work.

    Returns the kind as a plain string (it may arrive as a str Enum) and preprocess as plain JSON.
    """
    kind = getattr(kind, "value", kind)
    if kind not in KINDS:
        raise OptbuildError(f"unknown dataset kind '{kind}': use one of {', '.join(KINDS)}")
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise OptbuildError(f"num_samples is {num_samples!r}: it must be an integer >= 1")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise OptbuildError(f"seed is {seed!r}: it must be an integer >= 0")
    if kind == "sample_photos" and (path is not None or key is not None):
        raise OptbuildError(
            "dataset 'sample_photos' does not use 'path' or 'key': remove them, or pick "
            "dataset 'image_folder' / 'npz' to use your own data"
        )
    if kind in ("image_folder", "fashion_mnist") and key is not None:
        raise OptbuildError(f"dataset '{kind}' does not use 'key': remove it")
    if kind in ("image_folder", "npz") and path is None:
        raise OptbuildError(f"dataset '{kind}' needs a 'path': set it to your data")
    if split is not None:
        _check_split(kind, split)
    if label_map is not None:
        if kind in ("sample_photos", "npz"):
            raise OptbuildError(
                f"dataset '{kind}' has no labels, so 'label_map' means nothing: remove it"
            )
        _check_label_map(label_map)
    _check_input_shape(input_shape)
    return kind, _check_preprocess(preprocess, input_shape)


def _check_split(kind: str, split: str | None) -> str:
    if kind != "fashion_mnist":
        raise OptbuildError(f"dataset '{kind}' has no splits: remove 'split'")
    split = "test" if split is None else split
    if split not in FASHION_MNIST_SPLITS:
        raise OptbuildError(
            f"fashion_mnist split '{split}' does not exist: use {' or '.join(FASHION_MNIST_SPLITS)}"
        )
    return split


def _check_label_map(label_map) -> dict[str, list[int]]:
    """label_map as class name -> accepted output indices, each value checked."""
    if not isinstance(label_map, Mapping) or not label_map:
        raise OptbuildError(
            f"label_map {label_map!r} must be a non-empty mapping of class name -> output index"
        )
    plain: dict[str, list[int]] = {}
    for name, value in label_map.items():
        values = list(value) if isinstance(value, Sequence) and not isinstance(value, str) else [value]
        if not values or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                                 for v in values):
            raise OptbuildError(
                f"label_map['{name}'] is {value!r}: give a model output index (integer >= 0) or a "
                "non-empty list of them"
            )
        plain[str(name)] = list(dict.fromkeys(values))
    return plain


def _resolve_label_map(label_map, classes: Sequence[str], what: str) -> dict[str, list[int]]:
    """The checked label_map, or the default class i -> output i, against the real classes."""
    if label_map is None:
        return {name: [i] for i, name in enumerate(classes)}
    plain = _check_label_map(label_map)
    unknown = [name for name in plain if name not in classes]
    if unknown:
        raise OptbuildError(
            f"label_map names classes {unknown} that {what} does not have: its classes are "
            f"{list(classes)}"
        )
    return plain


def _label_array(label_map: dict[str, list[int]], sample_classes: Sequence[str]) -> "np.ndarray":
    """int64 [N, K] accepted output indices per sample, padded with -1."""
    import numpy as np

    width = max(len(v) for v in label_map.values())
    table = {name: v + [-1] * (width - len(v)) for name, v in label_map.items()}
    return np.array([table[name] for name in sample_classes], dtype=np.int64).reshape(-1, width)


def _too_few(what: str, noun: str, available: int, num_samples: int, filtered: bool) -> OptbuildError:
    within = " in the label_map's classes" if filtered else ""
    return OptbuildError(
        f"{what} has {available} {noun}{within} but num_samples is {num_samples}: "
        f"lower num_samples to at most {available}"
    )


def _check_input_shape(input_shape) -> None:
    shape = list(input_shape)
    if len(shape) != 4 or not all(isinstance(d, int) and d > 0 for d in shape[1:]):
        raise OptbuildError(f"input shape {shape} is not [N, C, H, W] with fixed C, H, W")
    if shape[1] not in (1, 3):
        raise OptbuildError(f"input shape {shape} has {shape[1]} channels: images give 1 or 3")


def _check_preprocess(preprocess, input_shape) -> dict:
    raw = asdict(preprocess) if is_dataclass(preprocess) else preprocess
    try:
        plain = {
            "resize": int(raw["resize"]),
            "crop": int(raw["crop"]),
            "mean": [float(v) for v in raw["mean"]],
            "std": [float(v) for v in raw["std"]],
        }
    except (KeyError, TypeError, ValueError) as exc:
        raise OptbuildError(
            f"preprocess {raw!r} is invalid ({exc}): give resize and crop (integers) "
            "and mean and std (lists of numbers)"
        ) from None
    _, channels, height, width = input_shape
    if not 0 < plain["crop"] <= plain["resize"]:
        raise OptbuildError(
            f"preprocess crop {plain['crop']} must be between 1 and resize {plain['resize']}"
        )
    # The center crop is square; stretching it to a non-square input would distort every image.
    if height != width:
        raise OptbuildError(
            f"preprocess crop {plain['crop']} is square but the input is {height}x{width}: "
            "use a square input or preprocess your data into an npz dataset"
        )
    for name in ("mean", "std"):
        if len(plain[name]) not in (channels, 3):  # 1 channel may use the RGB list's first
            raise OptbuildError(f"preprocess {name} {plain[name]} needs {channels} values")
    if any(s <= 0 for s in plain["std"]):
        raise OptbuildError(f"preprocess std {plain['std']} must be positive")
    return plain


# --- files ------------------------------------------------------------------------------------


def _versions(packages) -> dict[str, str]:
    try:
        return {name: metadata.version(name) for name in packages}
    except metadata.PackageNotFoundError as exc:
        raise OptbuildError(
            f"dataset needs the package '{exc.name}': pip install 'optbuild[data]'"
        ) from None


def _oneline(exc: Exception) -> str:
    return " ".join(str(exc).split())


def _sha256_file(path: Path) -> str:
    try:
        with open(path, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    except OSError as exc:
        raise OptbuildError(
            f"cannot read '{path}': {exc.strerror}; check its permissions"
        ) from None


def _existing_file(path: str) -> Path:
    file = Path(path).expanduser()
    if not file.is_file():
        what = "is not a file" if file.exists() else "does not exist"
        raise OptbuildError(f"dataset path '{path}' {what}: point 'path' at your data file")
    return file


def _list_images(path: str) -> tuple[Path, list[str]]:
    """The folder and its image files, as sorted relative POSIX paths."""
    root = Path(path).expanduser()
    if not root.exists():
        raise OptbuildError(f"image folder '{path}' does not exist: point 'path' at a directory")
    if not root.is_dir():
        raise OptbuildError(f"image folder '{path}' is not a directory: point 'path' at one")

    def unreadable(exc: OSError):
        raise OptbuildError(
            f"cannot read image folder '{exc.filename}': {exc.strerror}; check its permissions"
        )

    files = sorted(
        (Path(d) / name).relative_to(root).as_posix()
        for d, _, names in os.walk(root, onerror=unreadable)
        for name in names
        if name.lower().endswith(IMAGE_EXTENSIONS)
    )
    if not files:
        raise OptbuildError(
            f"image folder '{path}' has no images ({' '.join(IMAGE_EXTENSIONS)}): add some"
        )
    return root, files


@dataclass(frozen=True)
class _Folder:
    root: Path
    all_files: list[str]
    files: list[str]  # the seeded subset, in order
    labels: "np.ndarray | None"
    classes: list[str] | None
    label_map: dict[str, list[int]] | None


def _select_folder(path: str, num_samples: int, seed: int, label_map, labeled: bool) -> _Folder:
    """The seeded subset of an image folder (no decoding: the fingerprint uses this too).

    Images all exactly one folder deep are labeled by that folder; all at the top are unlabeled.
    Any other layout has no clear labels, which only matters when labels are asked for."""
    import numpy as np

    root, files = _list_images(path)
    depths = {rel.count("/") for rel in files}
    has_classes = depths == {1}
    if not has_classes and (labeled or label_map is not None) and depths != {0}:
        top = next(rel for rel in files if rel.count("/") != 1)
        raise OptbuildError(
            f"image folder '{path}' mixes layouts (e.g. '{top}'): for labels put every image "
            "directly in a class folder (class/image.jpg); for none, put all at the top level"
        )
    if label_map is not None and not has_classes:
        raise OptbuildError(
            f"image folder '{path}' has no class folders, so 'label_map' means nothing: remove "
            "it, or put the images in class folders (class/image.jpg)"
        )
    kept, labels, classes, mapping = files, None, None, None
    if has_classes:
        folders = sorted({rel.split("/", 1)[0] for rel in files})
        mapping = _resolve_label_map(label_map, folders, f"image folder '{path}'")
        kept = [rel for rel in files if rel.split("/", 1)[0] in mapping]
    if len(kept) < num_samples:
        raise _too_few(f"image folder '{path}'", "images", len(kept), num_samples,
                       len(kept) < len(files))
    # The subset is drawn after dropping the unmapped classes, so it is num_samples mapped images.
    chosen = [kept[i] for i in np.random.default_rng(seed).permutation(len(kept))[:num_samples]]
    if mapping is not None and labeled:
        labels = _label_array(mapping, [rel.split("/", 1)[0] for rel in chosen])
        classes = list(mapping)
    return _Folder(root, files, chosen, labels, classes, mapping)


def _open_image(file: Path) -> "Image.Image":
    from PIL import Image

    try:
        with Image.open(file) as image:
            image.load()
            return image
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise OptbuildError(
            f"cannot decode image '{file}' ({_oneline(exc)}): replace or remove the file"
        ) from None


def _load_npz(path, key, num_samples, rng, input_shape) -> "np.ndarray":
    import numpy as np

    file = _existing_file(path)
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
                array = archive[key]
            except ValueError as exc:  # e.g. an object array, which only pickle could load
                raise OptbuildError(
                    f"npz '{path}' array '{key}' cannot be loaded ({_oneline(exc)}): "
                    "save plain numeric arrays"
                ) from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise OptbuildError(
            f"'{path}' is not a valid npz file ({_oneline(exc)}): save it with numpy.savez"
        ) from None
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
    chosen = array[rng.permutation(len(array))[:num_samples]]
    return np.ascontiguousarray(chosen, dtype=np.float32)


# --- fashion_mnist ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _FashionMnist:
    split: str
    files: tuple[Path, Path]  # images, labels
    indices: "np.ndarray"  # the seeded subset, in order
    labels: "np.ndarray"
    classes: list[str]
    label_map: dict[str, list[int]]


def _select_fashion_mnist(path, split, num_samples: int, seed: int, label_map) -> _FashionMnist:
    """The seeded subset of a split; reads only the (small) labels file."""
    import numpy as np

    split = _check_split("fashion_mnist", split)
    files = _fashion_mnist_files(path, split)
    ids = _read_idx(files[1], 1)
    if len(ids) and ids.max() >= len(FASHION_MNIST_CLASSES):
        raise OptbuildError(
            f"Fashion-MNIST file '{files[1]}' has class ids above 9: reinstall dataset-fashion-mnist"
        )
    mapping = _resolve_label_map(label_map, FASHION_MNIST_CLASSES, "fashion_mnist")
    wanted = [FASHION_MNIST_CLASSES.index(name) for name in mapping]
    kept = np.flatnonzero(np.isin(ids, wanted))
    if len(kept) < num_samples:
        raise _too_few(f"fashion_mnist split '{split}'", "images", len(kept), num_samples,
                       len(kept) < len(ids))
    indices = kept[np.random.default_rng(seed).permutation(len(kept))[:num_samples]]
    labels = _label_array(mapping, [FASHION_MNIST_CLASSES[i] for i in ids[indices]])
    return _FashionMnist(split, files, indices, labels, list(mapping), mapping)


def _fashion_mnist_files(path: str | None, split: str) -> tuple[Path, Path]:
    folder = Path(path or FASHION_MNIST_DIR).expanduser()
    names = FASHION_MNIST_SPLITS[split]
    missing = [name for name in names if not (folder / name).is_file()]
    if missing:
        raise OptbuildError(
            f"Fashion-MNIST {split} files {missing} are not in '{folder}': "
            "apt-get install dataset-fashion-mnist, or point 'path' at a folder with them"
        )
    return folder / names[0], folder / names[1]


def _stat_key(file: Path) -> tuple[str, int, int]:
    stat = file.stat()
    return str(file.resolve()), stat.st_size, stat.st_mtime_ns


def _cached_sha256(file: Path) -> str:
    """sha256 of a data file, once per process while its size and mtime stay the same: a plan
    fingerprints the validation set for several stages, and calibration may share its files."""
    return _sha256_by_stat(_stat_key(file))


@lru_cache(maxsize=4096)
def _sha256_by_stat(stat_key: tuple[str, int, int]) -> str:
    return _sha256_file(Path(stat_key[0]))


def _read_idx(file: Path, dims: int) -> "np.ndarray":
    return _read_idx_by_stat(_stat_key(file), dims)


@lru_cache(maxsize=4)
def _read_idx_by_stat(stat_key: tuple[str, int, int], dims: int) -> "np.ndarray":
    """A gzipped idx file of unsigned bytes (LeCun's MNIST format), read-only."""
    import numpy as np

    file = stat_key[0]
    try:
        with gzip.open(file, "rb") as f:
            data = f.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise OptbuildError(
            f"cannot read Fashion-MNIST file '{file}' ({_oneline(exc)}): it is damaged; "
            "reinstall dataset-fashion-mnist"
        ) from None
    header = 4 + 4 * dims
    # Magic: two zero bytes, the element type (0x08: unsigned byte), the number of dimensions.
    magic = bytes([0, 0, 8, dims])
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    if data[:4] != magic or len(data) != header + math.prod(shape):
        raise OptbuildError(
            f"Fashion-MNIST file '{file}' is not a valid {dims}-d idx file of bytes: it is "
            "damaged; reinstall dataset-fashion-mnist"
        )
    array = np.frombuffer(data, np.uint8, offset=header).reshape(shape)
    array.flags.writeable = False  # shared through the cache
    return array


def _check_fashion_mnist(images_file: Path, images: "np.ndarray", ids: "np.ndarray") -> None:
    if images.shape[1:] != (28, 28) or len(images) != len(ids) or ids.max() >= 10:
        raise OptbuildError(
            f"Fashion-MNIST files at '{images_file.parent}' do not match (images "
            f"{list(images.shape)}, {len(ids)} labels): reinstall dataset-fashion-mnist"
        )


# --- images -----------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _photos() -> tuple["Image.Image", ...]:
    """The SAMPLE_PHOTOS as RGB images, in that order (imports are slow, so only done here)."""
    from PIL import Image

    try:
        import matplotlib.cbook
        import skimage.data
        from sklearn.datasets import load_sample_images
    except ImportError as exc:
        raise OptbuildError(
            f"dataset 'sample_photos' needs '{exc.name}': pip install 'optbuild[data]'"
        ) from None
    bunch = load_sample_images()
    sklearn_by_name = {Path(f).name: array for f, array in zip(bunch.filenames, bunch.images)}
    photos = []
    for entry in SAMPLE_PHOTOS:
        source, name = entry.split(":")
        if source == "skimage":
            photos.append(Image.fromarray(getattr(skimage.data, name)()))
        elif source == "sklearn":
            photos.append(Image.fromarray(sklearn_by_name[name]))
        else:
            with Image.open(matplotlib.cbook.get_sample_data(name, asfileobj=False)) as image:
                photos.append(image.convert("RGB"))
    return tuple(photo.convert("RGB") for photo in photos)


def _sample_crops(num_samples: int, rng: "np.random.Generator"):
    """Seeded random-resized crops with random flips, cycling through the photos so all are used."""
    from PIL import Image

    photos = _photos()
    order = rng.permutation(len(photos))
    for i in range(num_samples):
        photo = photos[order[i % len(photos)]]
        crop = photo.crop(_random_box(photo.width, photo.height, rng))
        if rng.random() < 0.5:
            crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        yield crop


def _random_box(width: int, height: int, rng) -> tuple[int, int, int, int]:
    """torchvision's RandomResizedCrop box: a random area fraction and aspect ratio."""
    area = width * height
    log_ratio = (math.log(_CROP_RATIO[0]), math.log(_CROP_RATIO[1]))
    for _ in range(10):
        target = area * rng.uniform(*_CROP_SCALE)
        aspect = math.exp(rng.uniform(*log_ratio))
        w = round(math.sqrt(target * aspect))
        h = round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            left = int(rng.integers(0, width - w + 1))
            top = int(rng.integers(0, height - h + 1))
            return left, top, left + w, top + h
    side = min(width, height)  # fallback: the central square
    left, top = (width - side) // 2, (height - side) // 2
    return left, top, left + side, top + side


def _preprocess(image: "Image.Image", preprocess: dict, input_shape) -> "np.ndarray":
    """ImageNet eval preprocessing, matching torchvision's Resize + CenterCrop on PIL images."""
    import numpy as np
    from PIL import Image

    _, channels, height, width = input_shape
    # Convert first: Pillow resizes palette images with nearest-neighbour regardless of filter.
    image = image.convert("L" if channels == 1 else "RGB")
    resize, crop = preprocess["resize"], preprocess["crop"]
    w, h = image.size
    size = (resize, int(resize * h / w)) if w <= h else (int(resize * w / h), resize)
    image = image.resize(size, Image.Resampling.BILINEAR)
    left = int(round((image.width - crop) / 2.0))
    top = int(round((image.height - crop) / 2.0))
    image = image.crop((left, top, left + crop, top + crop))
    if image.size != (width, height):
        image = image.resize((width, height), Image.Resampling.BILINEAR)
    pixels = np.asarray(image, dtype=np.float32).reshape(height, width, channels) / 255.0
    mean = np.asarray(preprocess["mean"][:channels], dtype=np.float32)
    std = np.asarray(preprocess["std"][:channels], dtype=np.float32)
    return ((pixels - mean) / std).transpose(2, 0, 1)
