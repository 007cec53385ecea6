"""Train a small residual network written with its own ``forward`` on a procedurally generated shapes dataset.

The dataset: grey-scale images of circles, squares, triangles and crosses at random positions, sizes, intensities
and orientations, with Gaussian noise; everything is drawn from a seeded generator, so runs are reproducible
(no downloads).

The model, ``ShapesNet``: a stem, two residual blocks (torchvision's BasicBlock: one ReLU used twice, the input
added back), a strided convolution between them and a Linear head::

    (N, 1, 24, 24) -> Conv 3x3 (8) -> BN -> ReLU -> MaxPool 2 -> ResBlock(8)  -> (N, 8, 12, 12)
                   -> Conv 3x3/2 (16) -> BN -> ReLU -> ResBlock(16) -> (N, 16, 6, 6) -> Flatten -> Linear -> (N, 4)

Training is PyTorch's loop as written: ``loss = criterion(model(x), y)``, ``optimizer.zero_grad()``,
``loss.backward()``, ``optimizer.step()``, ``scheduler.step()`` (Adam with cosine annealing per batch).  The
script prints a progress line per epoch, the held-out accuracy as ``accuracy: NN.N%``, saves the weights
(``np.savez`` of the state_dict), reloads them into a fresh model and prints the same accuracy again.

Run:  python examples/train_shapes.py [--train 5000] [--epochs 5] [--seed 0] [--out shapes_resnet.npz]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

import convforge
import convforge.nn as nn

CLASSES = ("circle", "square", "triangle", "cross")


def make_shapes(n: int, size: int = 24, seed: int = 0, noise: float = 0.15):
    """``n`` labelled images ``(n, 1, size, size)`` float32 and labels ``(n,)`` int64 (index into CLASSES)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(CLASSES), n)
    r = rng.uniform(0.2, 0.38, n) * size                              # radius / half-extent in pixels
    cx = rng.uniform(r + 0.5, size - 1.5 - r)
    cy = rng.uniform(r + 0.5, size - 1.5 - r)
    yy, xx = np.mgrid[:size, :size].astype(np.float64)
    dx = xx[None] - cx[:, None, None]                                 # (n, size, size)
    dy = yy[None] - cy[:, None, None]
    rr = r[:, None, None]
    flip = rng.choice([-1.0, 1.0], n)[:, None, None]                  # triangles point up or down
    tdy = dy * flip
    thick = np.maximum(1.0, 0.3 * rr)
    masks = {
        0: dx ** 2 + dy ** 2 <= rr ** 2,
        1: np.maximum(np.abs(dx), np.abs(dy)) <= 0.85 * rr,
        2: (tdy <= rr) & (np.abs(dx) <= (tdy + rr) / 2),
        3: ((np.abs(dx) <= thick) & (np.abs(dy) <= rr)) | ((np.abs(dy) <= thick) & (np.abs(dx) <= rr)),
    }
    shape = np.select([labels[:, None, None] == k for k in masks], [masks[k] for k in masks])
    background = rng.uniform(0.0, 0.3, (n, 1, 1))
    intensity = rng.uniform(0.6, 1.0, (n, 1, 1))
    images = background + intensity * shape + noise * rng.standard_normal((n, size, size))
    return images[:, None].astype(np.float32), labels.astype(np.int64)


class ResBlock(nn.Module):
    """``relu(bn2(conv2(relu(bn1(conv1(x))))) + x)``: the same ReLU module twice, as torchvision's BasicBlock."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU()

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + x)


class ShapesNet(nn.Module):
    """Stem, residual block, strided convolution, residual block, Linear classifier."""

    def __init__(self, size: int = 24, classes: int = len(CLASSES)):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2))
        self.block1 = ResBlock(8)
        self.down = nn.Sequential(nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU())
        self.block2 = ResBlock(16)
        self.head = nn.Linear(16 * (size // 4) ** 2, classes)

    def forward(self, x):
        x = self.block2(self.down(self.block1(self.stem(x))))
        return self.head(x.reshape(x.shape[0], -1))


def build_model(size: int = 24) -> ShapesNet:
    return ShapesNet(size)


def evaluate(model, images, labels, batch_size: int = 500) -> float:
    """Accuracy in percent, in eval mode and without keeping anything for backward."""
    model.eval()
    correct = 0
    with convforge.no_grad():
        for a in range(0, len(images), batch_size):
            logits = model(images[a:a + batch_size])
            correct += int((logits.argmax(axis=1) == labels[a:a + batch_size]).sum())
    return 100.0 * correct / max(len(images), 1)


def train(model, images, labels, epochs: int = 5, batch_size: int = 64, lr: float = 0.01, seed: int = 0,
          log=print):
    """Adam on cross entropy, cosine-annealed to 0 per batch; prints progress lines while training."""
    rng = np.random.default_rng(seed)
    criterion = nn.CrossEntropyLoss()
    optimizer = convforge.optim.Adam(model.parameters(), lr=lr)
    n = len(images)
    steps = -(-n // batch_size)
    scheduler = convforge.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * steps)
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        model.train()
        order = rng.permutation(n)
        total_loss, correct = 0.0, 0
        for step in range(steps):
            idx = order[step * batch_size:(step + 1) * batch_size]
            x, y = convforge.tensor(images[idx]), labels[idx]
            logits = model(x)
            loss = criterion(logits, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            total_loss += loss.item() * len(idx)
            correct += int((logits.argmax(axis=1) == y).sum())
            if log and (step + 1) % max(1, steps // 4) == 0 and step + 1 < steps:
                log(f"  epoch {epoch} step {step + 1}/{steps}  loss {loss.item():.3f}")
        if log:
            log(f"epoch {epoch}/{epochs}  loss {total_loss / n:.4f}  train accuracy {100.0 * correct / n:.1f}%  "
                f"lr {scheduler.get_last_lr()[0]:.2e}  ({time.perf_counter() - start:.1f} s)")
    return model


def main(argv=None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", type=int, default=5000, help="training images")
    parser.add_argument("--test", type=int, default=1000, help="held-out images")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="where to save the weights (.npz); default: a temp file")
    args = parser.parse_args(argv)

    convforge.manual_seed(args.seed)
    x_train, y_train = make_shapes(args.train, seed=args.seed)
    x_test, y_test = make_shapes(args.test, seed=args.seed + 1)
    print(f"dataset: {args.train} training / {args.test} held-out images of {', '.join(CLASSES)}")
    model = build_model()
    print(model)
    t0 = time.perf_counter()
    train(model, x_train, y_train, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed)
    print(f"trained in {time.perf_counter() - t0:.1f} s")
    acc = evaluate(model, x_test, y_test)
    print(f"accuracy: {acc:.1f}%")

    path = args.out or os.path.join(tempfile.mkdtemp(prefix="convforge_"), "shapes_resnet.npz")
    np.savez(path, **model.state_dict())
    print(f"saved weights to {path}")
    fresh = build_model()
    with np.load(path) as saved:
        fresh.load_state_dict({k: saved[k] for k in saved.files})
    reloaded = evaluate(fresh, x_test, y_test)
    print(f"reloaded model accuracy: {reloaded:.1f}%")
    if reloaded != acc:
        print("error: the reloaded model disagrees with the trained one", file=sys.stderr)
        sys.exit(1)
    return acc


if __name__ == "__main__":
    main()
