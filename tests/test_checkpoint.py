"""convforge.load / convforge.save against real torch.save, the safetensors package and NumPy's own files."""
from __future__ import annotations

import collections
import io
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import convforge
import convforge.nn as nn
from conftest import assert_close, requires_torch, torch

pytestmark = requires_torch()
safetensors_numpy = pytest.importorskip("safetensors.numpy")
safetensors_torch = pytest.importorskip("safetensors.torch")

NUMPY_DTYPES = ["float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
                "uint64", "bool", "complex64", "complex128"]
FORMATS = {"zip": {}, "legacy": {"_use_new_zipfile_serialization": False}}


def torch_bytes(obj, fmt="zip"):
    buffer = io.BytesIO()
    torch.save(obj, buffer, **FORMATS[fmt])
    return buffer.getvalue()


def as_numpy(obj):
    """The oracle: what load must return, built from torch's own tensors."""
    if isinstance(obj, torch.Tensor):
        t = obj.detach()
        return (t.float() if t.dtype == torch.bfloat16 else t).numpy()
    if isinstance(obj, dict):
        return type(obj)((k, as_numpy(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(as_numpy(v) for v in obj)
    return obj


def assert_same(actual, expected, path="root"):
    """Exact equality through the nesting: container types, keys, dtypes, shapes and values."""
    if isinstance(expected, np.ndarray):
        assert isinstance(actual, np.ndarray), f"{path}: {type(actual).__name__}"
        assert actual.dtype == expected.dtype and actual.shape == expected.shape, \
            f"{path}: {actual.dtype}{actual.shape} != {expected.dtype}{expected.shape}"
        np.testing.assert_array_equal(actual, expected, err_msg=path)
        return
    assert type(actual) is type(expected), f"{path}: {type(actual).__name__} != {type(expected).__name__}"
    if isinstance(expected, dict):
        assert list(actual) == list(expected), path
        for key in expected:
            assert_same(actual[key], expected[key], f"{path}[{key!r}]")
    elif isinstance(expected, (list, tuple)):
        assert len(actual) == len(expected), path
        for i, (a, e) in enumerate(zip(actual, expected)):
            assert_same(a, e, f"{path}[{i}]")
    else:
        assert actual == expected, path


def random_tensor(rng, dtype, shape):
    if dtype == "bool":
        return torch.from_numpy(np.asarray(rng.random(shape) < 0.5))
    if dtype.startswith("complex"):
        return torch.from_numpy(np.asarray(rng.standard_normal(shape) + 1j * rng.standard_normal(shape), dtype))
    if dtype.startswith(("int", "uint")):
        info = np.iinfo(dtype)
        return torch.from_numpy(np.asarray(rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)))
    return torch.from_numpy(rng.standard_normal(shape).astype(dtype))


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("dtype", NUMPY_DTYPES)
def test_every_numpy_dtype_loads_exactly(fmt, dtype):
    rng = np.random.default_rng(NUMPY_DTYPES.index(dtype))
    sd = {"weight": random_tensor(rng, dtype, (3, 4, 5)), "scalar": random_tensor(rng, dtype, ()),
          "empty": random_tensor(rng, dtype, (0, 3))}
    assert_same(convforge.load(torch_bytes(sd, fmt)), as_numpy(sd))


@pytest.mark.parametrize("fmt", FORMATS)
def test_bfloat16_is_widened_exactly_with_a_warning(fmt):
    t = torch.randn(4, 6).to(torch.bfloat16)
    with pytest.warns(UserWarning, match="bfloat16 .* widened to float32"):
        out = convforge.load(torch_bytes({"w": t, "p": torch.nn.Parameter(t[:, 1::2])}, fmt))
    assert_same(out, {"w": t.float().numpy(), "p": t[:, 1::2].float().numpy()})


@pytest.mark.parametrize("fmt", FORMATS)
def test_views_of_one_storage_keep_values_and_share_memory(fmt):
    base = torch.arange(60, dtype=torch.float64).reshape(3, 4, 5)
    sd = {"base": base, "t": base.transpose(0, 2), "slice": base[1:, ::2, 1:4], "row": base[2, 1],
          "flat": base.view(-1)[7:40:3], "expand": torch.arange(5.0).expand(4, 3, 5), "perm": base.permute(1, 2, 0)}
    out = convforge.load(torch_bytes(sd, fmt))
    assert_same(out, as_numpy(sd))
    assert all(np.shares_memory(out["base"], out[k]) for k in ("t", "slice", "row", "flat", "perm"))
    assert not out["expand"].flags.writeable and out["base"].flags.writeable


@pytest.mark.parametrize("seed", range(6))
def test_random_strided_views_match_torch(seed):
    rng = np.random.default_rng(seed)
    dtype = NUMPY_DTYPES[seed % len(NUMPY_DTYPES)]
    t = random_tensor(rng, dtype, tuple(int(n) for n in rng.integers(1, 6, 4)))
    views = {}
    for i in range(5):
        v = t.permute(*[int(d) for d in rng.permutation(4)])
        index = tuple(slice(int(rng.integers(0, 2)), None, int(rng.integers(1, 3))) for _ in range(4))
        views[f"v{i}"] = v[index]
    for fmt in FORMATS:
        assert_same(convforge.load(torch_bytes(views, fmt)), as_numpy(views))


def test_training_checkpoint_nesting_is_kept():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                                torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(2, 3, 8, 8)).sum().backward()
    opt.step()
    ckpt = {"state_dict": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 3, "best": 0.25,
            "names": ("a", "b"), "history": [1.0, None, True]}
    for fmt in FORMATS:
        out = convforge.load(torch_bytes(ckpt, fmt))
        assert isinstance(out["state_dict"], collections.OrderedDict)
        assert_same(out, as_numpy(ckpt))


def test_torch_state_dict_runs_in_convforge_model():
    torch.manual_seed(1)
    tmodel = torch.nn.Sequential(torch.nn.Conv2d(3, 5, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(5, 2, 1))
    cmodel = nn.Sequential(nn.Conv2d(3, 5, 3, padding=1), nn.ReLU(), nn.Conv2d(5, 2, 1))
    x = np.random.default_rng(0).standard_normal((2, 3, 9, 9)).astype(np.float32)
    with convforge.no_grad():
        cmodel.load_state_dict(convforge.load(torch_bytes(tmodel.state_dict())))
        y = np.asarray(cmodel(x))
    assert_close(y, tmodel(torch.from_numpy(x)).detach().numpy())


def big_endian_copy(data, dtypes):
    """A torch zip checkpoint rewritten as a big-endian machine writes it (each record byte-swapped)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            payload = src.read(info)
            key = info.filename.rsplit("/", 1)[-1]
            if info.filename.endswith("/byteorder"):
                payload = b"big"
            elif "/data/" in info.filename:
                payload = np.frombuffer(payload, dtypes[int(key)]).byteswap().tobytes()
            dst.writestr(info.filename, payload)
    return out.getvalue()


def test_big_endian_checkpoints_load_like_torch():
    rng = np.random.default_rng(3)
    names = ["float64", "float32", "float16", "int64", "int32", "int16", "uint16", "complex64", "complex128"]
    sd = {n: random_tensor(rng, n, (2, 3)) for n in names}
    sd["bf16"] = torch.randn(5).to(torch.bfloat16)
    data = big_endian_copy(torch_bytes(sd), {i: ("uint16" if n == "bf16" else n) for i, n in enumerate(sd)})
    by_torch = as_numpy(torch.load(io.BytesIO(data)))        # the rewrite is what torch reads (torch 2.13
    by_torch["uint16"] = sd["uint16"].numpy()                   # misreads big-endian uint16 itself)
    assert_same(by_torch, as_numpy(sd))
    with pytest.warns(UserWarning, match="bfloat16"):
        assert_same(convforge.load(data), as_numpy(sd))


@pytest.mark.parametrize("source", ["path", "file", "bytes"])
def test_path_file_object_and_bytes(source, tmp_path):
    sd = {"w": torch.randn(2, 2)}
    path = tmp_path / "model.pth"
    path.write_bytes(torch_bytes(sd))
    arg = {"path": path, "file": open(path, "rb"), "bytes": path.read_bytes()}[source]
    assert_same(convforge.load(arg), as_numpy(sd))
    assert_same(convforge.load(torch_bytes(sd["w"])), sd["w"].numpy())       # a bare tensor gives an array


def save_bytes(tensors, **kwargs):
    buffer = io.BytesIO()
    convforge.save(tensors, buffer, **kwargs)
    return buffer.getvalue()


def test_save_round_trips_and_safetensors_reads_it_identically(tmp_path):
    rng = np.random.default_rng(7)
    tensors = {f"t_{d}": random_tensor(rng, d, (2, 3, 4)).numpy() for d in NUMPY_DTYPES if d != "complex128"}
    tensors["strided"] = np.arange(24.0).reshape(4, 6)[:, ::2].T
    tensors["big_endian"] = np.arange(6, dtype=">i4").reshape(2, 3)
    tensors["scalar"], tensors["empty"] = np.array(1.5, np.float32), np.zeros((0, 4), np.int16)
    path = tmp_path / "w.safetensors"
    convforge.save(tensors, path, metadata={"format": "np"})
    expected = {k: v.astype(v.dtype.newbyteorder("=")) for k, v in tensors.items()}
    for reader in (convforge.load, safetensors_numpy.load_file):
        out = reader(path)
        assert sorted(out) == sorted(expected)
        assert_same({k: out[k] for k in expected}, expected)
    out = safetensors_torch.load_file(path)
    assert_same({k: out[k].numpy() for k in expected}, expected)
    with safetensors_numpy.safe_open(path, "np") as f:
        assert f.metadata() == {"format": "np"}


def test_files_from_the_safetensors_package_load_exactly(tmp_path):
    rng = np.random.default_rng(8)
    tensors = {f"t_{d}": random_tensor(rng, d, (3, 5)) for d in NUMPY_DTYPES if d != "complex128"}
    tensors["bf16"] = torch.randn(4, 3).to(torch.bfloat16)
    safetensors_torch.save_file(tensors, tmp_path / "a.safetensors", metadata={"k": "v"})
    expected = as_numpy(tensors)
    with pytest.warns(UserWarning, match="bfloat16"):
        out = convforge.load(tmp_path / "a.safetensors")
    assert sorted(out) == sorted(expected)
    assert_same({k: out[k] for k in expected}, expected)
    del expected["bf16"]
    out = convforge.load(safetensors_numpy.save(expected))
    assert sorted(out) == sorted(expected)
    assert_same({k: out[k] for k in expected}, expected)


def test_save_rejects_what_safetensors_cannot_hold():
    with pytest.raises(TypeError, match="complex128"):
        convforge.save({"z": np.zeros(2, complex)}, io.BytesIO())
    with pytest.raises(TypeError, match="nested dict.*flatten"):
        convforge.save({"a": {"b": np.zeros(2)}}, io.BytesIO())
    with pytest.raises(TypeError, match="'n' is int, not an array"):
        convforge.save({"n": 3}, io.BytesIO())
    with pytest.raises(TypeError, match="keys are strings"):
        convforge.save({1: np.zeros(1)}, io.BytesIO())


def test_npz_and_npy(tmp_path):
    arrays = {"a": np.arange(6.0).reshape(2, 3), "b": np.array([True, False]), "c": np.zeros((), ">f8")}
    for saver in (np.savez, np.savez_compressed):
        buffer = io.BytesIO()
        saver(buffer, **arrays)
        assert_same(convforge.load(buffer.getvalue()), arrays)
    np.save(tmp_path / "x.npy", arrays["a"])
    assert_same(convforge.load(tmp_path / "x.npy"), arrays["a"])


def test_deploy_example_runs_with_numpy_alone():
    script = Path(__file__).resolve().parent.parent / "examples" / "deploy.py"
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=True)
    assert "1. safetensors round trip, same outputs: True" in out.stdout
    assert "conv + relu outputs match: True" in out.stdout


def test_safetensors_whose_header_length_starts_with_the_pickle_opcode(tmp_path):
    # The 8-byte header length comes first; when its low byte is 0x80 the file starts like a pickle (found with
    # resnet50's state dict).  Grow a key until the length ends in 0x80, then read the file back.
    path = tmp_path / "w.safetensors"
    for n in range(1, 400):
        state = {"k" * n: np.arange(3, dtype=np.float32)}
        convforge.save(state, path)
        data = path.read_bytes()
        if data[0] == 0x80:
            break
    assert data[0] == 0x80
    loaded = convforge.load(path)
    np.testing.assert_array_equal(loaded["k" * n], state["k" * n])
