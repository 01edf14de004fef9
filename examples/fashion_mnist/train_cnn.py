"""Train a small CNN on the real Fashion-MNIST train split and export it to ONNX.

    .venv/bin/python examples/fashion_mnist/train_cnn.py [--epochs 3] [--out PATH]

Data comes through optbuild's own loader, with the preprocessing that the recipe
`fashion_mnist_cnn_int8` declares (resize 28, crop 28, mean 0.2860, std 0.3530), so the exported
model sees at build and validation time exactly what it was trained on. Seeded; CPU only.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from optbuild.data import DatasetRequest, fashion_mnist_arrays, image_input, load_labeled

# Fashion-MNIST train-split pixel mean and std (of x / 255); the recipe uses the same numbers.
MEAN, STD = 0.2860, 0.3530
PREPROCESS = {"resize": 28, "crop": 28, "mean": [MEAN], "std": [STD]}
SHAPE = [1, 1, 28, 28]
HERE = Path(__file__).resolve().parent


def make_model() -> nn.Module:
    def block(cin: int, cout: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                nn.MaxPool2d(2)]

    return nn.Sequential(*block(1, 32), *block(32, 64), nn.Flatten(),
                         nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Dropout(0.25), nn.Linear(128, 10))


def normalise(images: np.ndarray) -> torch.Tensor:
    # The same float32 arithmetic as optbuild's preprocessing (a 28x28 resize/crop is a no-op).
    pixels = images.astype(np.float32) / 255.0
    return torch.from_numpy((pixels - np.float32(MEAN)) / np.float32(STD)).unsqueeze(1)


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        predictions = torch.cat([model(batch).argmax(1) for batch in x.split(1000)])
    return float((predictions == y).float().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--train-samples", type=int, default=None,
                        help="train on a seeded subset of this many images (default: all 60000)")
    parser.add_argument("--out", type=Path, default=HERE / "fmnist_cnn.onnx")
    parser.add_argument("--data", default=None, help="folder of the idx .gz files "
                        "(default: /usr/share/datasets/fashion-mnist)")
    args = parser.parse_args()

    torch.manual_seed(0)
    torch.set_num_threads(2)
    images, ids = fashion_mnist_arrays("train", args.data)
    if args.train_samples is not None:  # a seeded subset, for a quicker model (the tests use one)
        keep = np.random.default_rng(0).permutation(len(images))[: args.train_samples]
        images, ids = images[keep], ids[keep]
    x_train, y_train = normalise(images), torch.from_numpy(ids.astype(np.int64))
    test = load_labeled(DatasetRequest("fashion_mnist", args.data, 10000, 0, split="test", preprocess=PREPROCESS,
                                        inputs=[image_input("input", SHAPE)]))
    assert test.labels is not None
    x_test, y_test = torch.from_numpy(test.samples["input"]), torch.from_numpy(test.labels[:, 0])

    model = make_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    order = torch.Generator().manual_seed(0)
    for epoch in range(args.epochs):
        model.train()
        start, total = time.perf_counter(), 0.0
        for batch in torch.randperm(len(x_train), generator=order).split(args.batch_size):
            optimizer.zero_grad()
            loss = loss_fn(model(x_train[batch]), y_train[batch])
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        print(f"epoch {epoch + 1}/{args.epochs}: loss {total / len(x_train):.4f}, "
              f"test top-1 {accuracy(model, x_test, y_test):.4f} ({time.perf_counter() - start:.0f} s)")

    model.eval()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(model, (torch.zeros(SHAPE),), str(args.out), input_names=["input"],
                      output_names=["logits"], opset_version=17, dynamo=False)
    print(f"test top-1 accuracy: {accuracy(model, x_test, y_test):.4f} (10000 images)")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
