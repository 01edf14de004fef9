"""Real graphs for pass tests, exported once per test session by optbuild's own export stage:
EfficientNet-Lite0 with its ImageNet weights (pip-shipped) and ResNet-50 (seeded random init:
torchvision weights would need the network)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

IMAGE_SHAPE = [1, 3, 224, 224]


def _export(folder: Path, source: str, name: str, weights_path: str | None) -> Path:
    from optbuild.stages.export import export_onnx

    target = folder / name / "model.onnx"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        params = {"source": source, "name": name, "seed": 0, "opset": 17,
                  "inputs": [{"name": "input", "dtype": "float32", "shape": IMAGE_SHAPE}], "output_names": ["logits"]}
        export_onnx({"weights.pt": weights_path} if weights_path else {}, params, str(target.parent))
    return target


def efficientnet_lite0(folder: Path) -> Path:
    from optbuild.sources.torch_models import efficientnet_weights_file

    return _export(folder, "efficientnet_lite0", "efficientnet-lite0", str(efficientnet_weights_file()))


def resnet50(folder: Path) -> Path:
    return _export(folder, "torchvision", "resnet50", None)


def photo_batch(batch: int = 1, size: int = 224) -> np.ndarray:
    """Real photos (scikit-image), center crops as uint8 NHWC."""
    from skimage import data

    photos = [data.chelsea(), data.astronaut(), data.coffee(), data.rocket()]
    crops = []
    for photo in (photos * batch)[:batch]:
        h, w = photo.shape[:2]
        top, left = (h - size) // 2, (w - size) // 2
        crops.append(photo[top : top + size, left : left + size, :3])
    return np.stack(crops).astype(np.uint8)


def normalized(pixels: np.ndarray, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)) -> np.ndarray:
    """uint8 NHWC → float32 NCHW, ImageNet mean/std."""
    x = pixels.astype(np.float32).transpose(0, 3, 1, 2) / 255.0
    return ((x - np.reshape(mean, (1, 3, 1, 1))) / np.reshape(std, (1, 3, 1, 1))).astype(np.float32)
