"""Calibration / validation image datasets, as float32 [N, C, H, W] arrays.

Three kinds: `sample_photos` (real photos shipped inside scikit-image, scikit-learn and
matplotlib, so builds work offline), `image_folder` (a directory of images) and `npz` (an array
that is already preprocessed). `dataset_fingerprint` is the cheap identity of what `load_dataset`
returns; it goes into build-cache keys, so it must change whenever the data could.
"""

from __future__ import annotations

import hashlib
import math
import os
import zipfile
from dataclasses import asdict, is_dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optbuild.errors import OptbuildError

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

KINDS = ("sample_photos", "image_folder", "npz")
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
# Bump whenever this module changes the data it returns for the same arguments.
_FORMAT = 1
_CROP_SCALE = (0.3, 1.0)
_CROP_RATIO = (3 / 4, 4 / 3)


# --- public API -------------------------------------------------------------------------------


def dataset_fingerprint(kind: str, path: str | None, num_samples: int, seed: int, key: str | None,
                        preprocess: dict, input_shape: list[int]) -> dict:
    kind, preprocess = _check_args(kind, path, num_samples, seed, key, preprocess, input_shape)
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
        root, files = _list_images(path, num_samples)
        digest = hashlib.sha256()
        for rel in files:
            digest.update(f"{rel}\0{_sha256_file(root / rel)}\n".encode())
        fingerprint["content_sha256"] = digest.hexdigest()
    else:
        fingerprint["content_sha256"] = _sha256_file(_existing_file(path))
    return fingerprint


def load_dataset(kind: str, path: str | None, num_samples: int, seed: int, key: str | None,
                 preprocess: dict, input_shape: list[int]) -> "np.ndarray":
    import numpy as np

    kind, preprocess = _check_args(kind, path, num_samples, seed, key, preprocess, input_shape)
    rng = np.random.default_rng(seed)
    if kind == "npz":
        return _load_npz(path, key, num_samples, rng, input_shape)
    if kind == "sample_photos":
        images = _sample_crops(num_samples, rng)
    else:
        root, files = _list_images(path, num_samples)
        images = (_open_image(root / files[i]) for i in rng.permutation(len(files))[:num_samples])
    batch = [_preprocess(image, preprocess, input_shape) for image in images]
    return np.ascontiguousarray(np.stack(batch), dtype=np.float32)


# --- argument checks --------------------------------------------------------------------------


def _check_args(kind, path, num_samples, seed, key, preprocess, input_shape) -> tuple[str, dict]:
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
    if kind == "image_folder" and key is not None:
        raise OptbuildError("dataset 'image_folder' does not use 'key': remove it")
    if kind != "sample_photos" and path is None:
        raise OptbuildError(f"dataset '{kind}' needs a 'path': set it to your data")
    _check_input_shape(input_shape)
    return kind, _check_preprocess(preprocess, input_shape)


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


def _list_images(path: str, num_samples: int) -> tuple[Path, list[str]]:
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
    if len(files) < num_samples:
        raise OptbuildError(
            f"image folder '{path}' has {len(files)} images but num_samples is {num_samples}: "
            f"lower num_samples to at most {len(files)} or add images"
        )
    return root, files


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
