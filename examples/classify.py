"""Classify an image with a model from the zoo: build, load weights, optimise, predict the top 5, time it.

    .venv/bin/python examples/classify.py                           # resnet18, random weights saved and reloaded
    .venv/bin/python examples/classify.py --model mobilenet_v3_large
    .venv/bin/python examples/classify.py --weights resnet18.pth    # torchvision's checkpoint (no code is run)
    .venv/bin/python examples/classify.py --labels imagenet_classes.txt --image photo.png   # needs Pillow

Without ``--weights`` the model keeps its random initialisation (saved to a temporary file and loaded back, the
way a real checkpoint would be), so the predicted classes mean nothing; with torchvision's ImageNet weights, e.g.
``torch.save(torchvision.models.resnet18(weights="DEFAULT").state_dict(), "resnet18.pth")`` on a machine with
torchvision, they are real. Nothing is downloaded. The image is generated (a bright disc on a gradient) unless
``--image`` names a file.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import numpy as np

import convforge
import convforge.models
import convforge.nn.functional as F

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32).reshape(3, 1, 1)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32).reshape(3, 1, 1)
ZOO = [name for name in convforge.models.__all__ if name[0].islower() and name != "r3d_18"]


def generated_image(size: int) -> np.ndarray:
    """An RGB image in [0, 1], shape (3, size, size): a bright disc over a diagonal colour gradient."""
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1)
    disc = ((yy - 0.45) ** 2 + (xx - 0.55) ** 2 < 0.08).astype(np.float32)
    image = np.stack([0.2 + 0.6 * xx, 0.3 + 0.4 * yy, 0.8 - 0.5 * xx * yy]).astype(np.float32)
    return np.clip(image * (1 - disc) + disc * np.float32(0.95), 0, 1)


def image_from_file(path: str, size: int) -> np.ndarray:
    from PIL import Image  # optional: only for --image (extra "viz")
    with Image.open(path) as im:
        im = im.convert("RGB").resize((size, size))
        return np.asarray(im, np.float32).transpose(2, 0, 1) / 255


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, (time.perf_counter() - t0) * 1e3


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="resnet18", choices=ZOO)
    p.add_argument("--weights", help="a checkpoint (.pth, .safetensors or .npz) holding the model's state dict")
    p.add_argument("--image", help="an image file (needs Pillow); default: a generated image")
    p.add_argument("--labels", help="a text file with one class name per line")
    p.add_argument("--size", type=int, default=224, help="input height and width (default 224)")
    p.add_argument("--runs", type=int, default=5, help="timed runs after the first (default 5)")
    p.add_argument("--eager", action="store_true", help="run the model as built, without optimize_for_inference")
    args = p.parse_args(argv)

    convforge.manual_seed(0)
    model, build_ms = timed(lambda: getattr(convforge.models, args.model)())
    weights = args.weights
    if weights is None:  # show the round trip a real checkpoint takes: save the state dict, load it back
        weights = os.path.join(tempfile.mkdtemp(), f"{args.model}.safetensors")
        convforge.save(model.state_dict(), weights)
    state, load_ms = timed(lambda: convforge.load(weights))
    model.load_state_dict(state, strict=True)
    model.eval()

    image = image_from_file(args.image, args.size) if args.image else generated_image(args.size)
    batch = ((image - IMAGENET_MEAN) / IMAGENET_STD)[None]           # (1, 3, size, size)
    if not args.eager:  # BatchNorm folded into the convs, activations fused into their epilogues
        model, optimize_ms = timed(lambda: convforge.nn.utils.optimize_for_inference(model, example_input=batch))
    with convforge.no_grad():
        logits, first_ms = timed(lambda: model(batch))
        run_ms = [timed(lambda: model(batch))[1] for _ in range(args.runs)]
    probs = np.asarray(F.softmax(np.asarray(logits), dim=1))[0]

    labels = None
    if args.labels:
        with open(args.labels, encoding="utf-8") as fh:
            labels = [line.strip() for line in fh]
    print(f"{args.model}: weights {'from ' + args.weights if args.weights else 'random (saved and reloaded)'}, "
          f"{'eager' if args.eager else 'optimised for inference'}, input {tuple(batch.shape)}")
    print("top-5:")
    for rank, k in enumerate(np.argsort(probs)[::-1][:5], 1):
        name = labels[k] if labels and k < len(labels) else f"class {k}"
        print(f"  {rank}. {name:<30} {probs[k]:.4f}")
    print(f"time: build {build_ms:.0f} ms, load weights {load_ms:.0f} ms, "
          + ("" if args.eager else f"optimise {optimize_ms:.0f} ms, ") + f"first output {first_ms:.0f} ms, "
          f"then median {statistics.median(run_ms):.1f} ms per image over {args.runs} runs")
    return probs


if __name__ == "__main__":
    main()
