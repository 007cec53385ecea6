"""The training example, reduced: it learns, prints ``accuracy: NN.N%``, and the saved weights reload exactly."""
import importlib.util
import pathlib
import re

import numpy as np

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
    assert set(np.bincount(y, minlength=4)) and np.bincount(y, minlength=4).min() > 60
    # the shapes differ: mean images of the four classes are clearly distinct
    means = np.stack([x[y == k].mean(axis=0).ravel() for k in range(4)])
    dist = np.linalg.norm(means[:, None] - means[None], axis=-1)
    assert dist[~np.eye(4, dtype=bool)].min() > 0.5


def test_reduced_training_run_learns_and_reloads(tmp_path, capsys):
    ex = _load_example()
    out = tmp_path / "weights.npz"
    acc = ex.main(["--train", "1600", "--test", "400", "--epochs", "4", "--batch-size", "32", "--out", str(out)])
    text = capsys.readouterr().out
    printed = re.findall(r"^accuracy: (\d+\.\d)%$", text, flags=re.M)
    reloaded = re.findall(r"^reloaded model accuracy: (\d+\.\d)%$", text, flags=re.M)
    assert printed and reloaded and printed[0] == reloaded[0]
    assert "epoch 4/4" in text
    assert acc >= 85.0, text                    # chance is 25%; this reduced run reaches ~97%
    saved = np.load(out)
    assert "0.weight" in saved.files and "1.running_mean" in saved.files and saved["1.num_batches_tracked"] == 4 * 50
