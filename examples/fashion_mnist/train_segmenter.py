"""Train a small segmentation network on the real Fashion-MNIST: the garment's silhouette.

    .venv/bin/python examples/fashion_mnist/train_segmenter.py [--epochs 1] [--train-samples N] [--out PATH]

A dense-output model on real data: for each 28x28 image it predicts, per pixel, whether the pixel
belongs to the garment (the mask is every pixel brighter than 25 of 255, as optbuild's
`fashion_mnist` dataset with `targets: masks` gives it). A fully convolutional net (three 3x3
conv + ReLU, a 1x1 conv to one logit per pixel), seeded, CPU only; the input is normalised the
way the recipe `fashion_mnist_segmenter_int8` declares, and the ONNX output `mask_logits`
[1, 1, 28, 28] is a logit (the mask is logit > 0).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from optbuild.data import fashion_mnist_arrays
from optbuild.data.fashion_mnist import SILHOUETTE

MEAN, STD = 0.2860, 0.3530  # the train split's pixel mean and std (of x / 255), as the CNN example
SHAPE = [1, 1, 28, 28]
HERE = Path(__file__).resolve().parent


def make_model() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(32, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 1, 1))


def tensors(images: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    pixels = images.astype(np.float32) / 255.0
    x = torch.from_numpy((pixels - np.float32(MEAN)) / np.float32(STD)).unsqueeze(1)
    return x, torch.from_numpy((images > SILHOUETTE).astype(np.float32)).unsqueeze(1)


def iou(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        predicted = torch.cat([model(batch) > 0 for batch in x.split(1000)])
    truth = y > 0.5
    return float((predicted & truth).sum() / (predicted | truth).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--train-samples", type=int, default=None, help="a seeded subset (default: all 60000)")
    parser.add_argument("--out", type=Path, default=HERE / "fmnist_segmenter.onnx")
    parser.add_argument("--data", default=None, help="folder of the idx .gz files")
    args = parser.parse_args()

    torch.manual_seed(0)
    torch.set_num_threads(2)
    images, _ = fashion_mnist_arrays("train", args.data)
    if args.train_samples is not None:
        images = images[np.random.default_rng(0).permutation(len(images))[: args.train_samples]]
    x_train, y_train = tensors(images)
    x_test, y_test = tensors(fashion_mnist_arrays("test", args.data)[0])
    model = make_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    loss_fn = nn.BCEWithLogitsLoss()
    order = torch.Generator().manual_seed(0)
    for epoch in range(args.epochs):
        model.train()
        start = time.perf_counter()
        for batch in torch.randperm(len(x_train), generator=order).split(args.batch_size):
            optimizer.zero_grad()
            loss_fn(model(x_train[batch]), y_train[batch]).backward()
            optimizer.step()
        print(f"epoch {epoch + 1}/{args.epochs}: test mask IoU {iou(model, x_test, y_test):.4f} "
              f"({time.perf_counter() - start:.0f} s)")
    model.eval()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(model, (torch.zeros(SHAPE),), str(args.out), input_names=["input"],
                      output_names=["mask_logits"], opset_version=17, dynamo=False)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
