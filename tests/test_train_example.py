"""The training example, reduced: its residual network learns through loss.backward(), prints per-epoch progress and
``accuracy: NN.N%``, and the saved weights reload exactly."""
import importlib.util
import pathlib
import re

import numpy as np
import torch

import convforge

EXAMPLE = pathlib.Path(__file__).resolve().parents[1] / "examples" / "train_shapes.py"


def _load_example():
    spec = importlib.util.spec_from_file_location("train_shapes", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dataset_is_seeded_balanced_and_labelled():
    ex = _load_example()
    x, y = ex.make_shapes(400, seed=3)
    x2, y2 = ex.make_shapes(400, seed=3)
    assert x.shape == (400, 1, 24, 24) and x.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    counts = np.bincount(y, minlength=4)
    assert len(counts) == 4 and counts.min() > 60      # every class present, none starved (400 draws of 4)
    assert not np.array_equal(ex.make_shapes(400, seed=4)[1], y)   # the seed matters
    # the shapes differ: mean images of the four classes are clearly distinct
    means = np.stack([x[y == k].mean(axis=0).ravel() for k in range(4)])
    dist = np.linalg.norm(means[:, None] - means[None], axis=-1)
    assert dist[~np.eye(4, dtype=bool)].min() > 0.5


def test_reduced_training_run_learns_and_reloads(tmp_path, capsys):
    ex = _load_example()
    out = tmp_path / "weights.npz"
    acc = ex.main(["--train", "960", "--test", "300", "--epochs", "3", "--batch-size", "32", "--out", str(out)])
    text = capsys.readouterr().out
    printed = re.findall(r"^accuracy: (\d+\.\d)%$", text, flags=re.M)
    reloaded = re.findall(r"^reloaded model accuracy: (\d+\.\d)%$", text, flags=re.M)
    assert printed and reloaded and printed[0] == reloaded[0]
    assert re.search(r"^epoch 3/3  loss \d+\.\d+  train accuracy", text, flags=re.M)
    assert acc >= 85.0, text                    # chance is 25%
    saved = np.load(out)
    assert "stem.0.weight" in saved.files and "block1.bn2.running_mean" in saved.files
    assert saved["stem.1.num_batches_tracked"] == 3 * 30


def test_residual_block_trains_through_autograd_like_torch():
    """The example's ResBlock (a ReLU used twice, a residual add) gives torch's gradients (float64)."""
    ex = _load_example()
    convforge.manual_seed(0)
    block = ex.ResBlock(3).double()
    tblock = torch.nn.Module()
    for name in ("conv1", "conv2"):
        setattr(tblock, name, torch.nn.Conv2d(3, 3, 3, padding=1, bias=False).double())
    for name in ("bn1", "bn2"):
        setattr(tblock, name, torch.nn.BatchNorm2d(3).double())
    tblock.load_state_dict({k: torch.from_numpy(v) for k, v in block.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((4, 3, 5, 5))
    y = block(convforge.tensor(x))
    xt = torch.from_numpy(x)
    yt = torch.relu(tblock.bn2(tblock.conv2(torch.relu(tblock.bn1(tblock.conv1(xt))))) + xt)
    (y ** 2).sum().backward()
    (yt ** 2).sum().backward()
    for name, p in block.named_parameters():
        ref = dict(tblock.named_parameters())[name].grad.numpy()
        np.testing.assert_allclose(p.grad, ref, rtol=1e-10, atol=1e-10 * max(1.0, np.abs(ref).max()), err_msg=name)
