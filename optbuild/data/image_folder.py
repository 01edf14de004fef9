"""Kind `image_folder`: a directory of the user's images (.jpg .jpeg .png .bmp .webp, any depth).

Images all exactly one folder deep are labeled by that folder (class/image.jpg; classes in sorted
order unless a label_map says otherwise); images all at the top are unlabeled. Any other layout
has no clear labels, which only matters when labels are asked for. The seeded subset is drawn
from the sorted file list after dropping classes the label_map leaves out. The fingerprint hashes
the whole name list but the content of only the files the subset uses, never the folder's path.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from optbuild.data import labels as labels_
from optbuild.data.files import cached_sha256
from optbuild.data.images import open_image, samples_and_decoded
from optbuild.data.request import DatasetRequest, LabeledSamples
from optbuild.errors import OptbuildError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


@dataclass(frozen=True)
class Folder:
    root: Path
    all_files: list[str]  # every image, as sorted relative POSIX paths
    files: list[str]  # the seeded subset, in order
    labels: np.ndarray | None
    classes: list[str] | None
    label_map: dict[str, list[int]] | None  # resolved; None when the folder has no classes


def fingerprint(request: DatasetRequest) -> dict[str, Any]:
    """The subset is a function of the name list, seed and label_map, all of which are in here."""
    folder = select(request, labeled=False)
    digest = hashlib.sha256("\n".join(folder.all_files).encode())
    for rel in folder.files:
        digest.update(f"\n{rel}\0{cached_sha256(folder.root / rel)}".encode())
    return {"content_sha256": digest.hexdigest(), "label_map": folder.label_map}


def load(request: DatasetRequest, labeled: bool) -> LabeledSamples:
    folder = select(request, labeled)
    images = (open_image(folder.root / rel) for rel in folder.files)
    feeds, decoded = samples_and_decoded(images, request)
    return LabeledSamples(feeds, folder.labels, folder.classes, decoded)


def list_images(path: str) -> tuple[Path, list[str]]:
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


def _check_layout(path: str, files: list[str], wants_labels: bool) -> bool:
    """Whether the images sit in class folders; a layout that cannot give the labels asked
    for is an error."""
    depths = {rel.count("/") for rel in files}
    has_classes = depths == {1}
    if not has_classes and wants_labels and depths != {0}:
        top = next(rel for rel in files if rel.count("/") != 1)
        raise OptbuildError(
            f"image folder '{path}' mixes layouts (e.g. '{top}'): for labels put every image "
            "directly in a class folder (class/image.jpg); for none, put all at the top level"
        )
    return has_classes


def select(request: DatasetRequest, labeled: bool) -> Folder:
    """The seeded subset (no decoding: the fingerprint uses this too)."""
    path, num_samples, label_map = str(request.path), request.num_samples, request.label_map
    root, files = list_images(path)
    has_classes = _check_layout(path, files, labeled or bool(label_map))
    if label_map and not has_classes:
        raise OptbuildError(
            f"image folder '{path}' has no class folders, so 'label_map' means nothing: remove "
            "it, or put the images in class folders (class/image.jpg)"
        )
    kept, labels, classes, mapping = files, None, None, None
    if has_classes:
        folders = sorted({rel.split("/", 1)[0] for rel in files})
        mapping = labels_.resolve(label_map, folders, f"image folder '{path}'")
        kept = [rel for rel in files if rel.split("/", 1)[0] in mapping]
    if len(kept) < num_samples:
        raise labels_.too_few(f"image folder '{path}'", "images", len(kept), num_samples,
                              len(kept) < len(files))
    # The subset is drawn after dropping the unmapped classes, so it is num_samples mapped images.
    order = np.random.default_rng(request.seed).permutation(len(kept))[:num_samples]
    chosen = [kept[i] for i in order]
    if mapping is not None and labeled:
        labels = labels_.label_array(mapping, [rel.split("/", 1)[0] for rel in chosen])
        classes = list(mapping)
    return Folder(root, files, chosen, labels, classes, mapping)
