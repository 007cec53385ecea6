"""convforge.load never runs code from a file, and damaged or forged files give one clear ValueError.

Every malicious pickle here would create a marker file if anything in it were called; each test asserts the
refusal (naming the global) and that the marker never appears.
"""
from __future__ import annotations

import copyreg
import io
import json
import os
import pickle
import struct
import subprocess
import zipfile

import numpy as np
import pytest

import convforge
from conftest import requires_torch, torch


@pytest.fixture
def marker(tmp_path):
    path = tmp_path / "pwned"
    yield path
    assert not path.exists(), "code from the checkpoint was executed"


class Reduce:
    """Pickles as ``func(*args)``: what a hostile checkpoint author writes."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def touch_payloads(marker):
    command = f"touch {marker}"
    return {
        "os.system": Reduce(os.system, command),
        "builtins.eval": Reduce(eval, f"open({str(marker)!r}, 'w')"),
        "builtins.exec": Reduce(exec, f"open({str(marker)!r}, 'w')"),
        "subprocess.Popen": Reduce(subprocess.Popen, ["touch", str(marker)]),
        "builtins.open": Reduce(open, str(marker), "w"),
    }


def torch_zip_with(data_pkl):
    """A real torch.save archive whose data.pkl is replaced."""
    buffer = io.BytesIO()
    torch.save({"w": torch.ones(2)}, buffer)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            dst.writestr(info.filename, data_pkl if info.filename.endswith("/data.pkl") else src.read(info))
    return out.getvalue()


def legacy_with(obj_pickle):
    head = b"".join(pickle.dumps(v, protocol=2) for v in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}))
    return head + obj_pickle + pickle.dumps([], protocol=2)


def test_the_payloads_are_live_under_plain_pickle(tmp_path):
    """The oracle for the refusals below: unpickled normally, each payload does create its marker file."""
    for name, payload in touch_payloads(tmp_path / "live").items():
        result = pickle.loads(pickle.dumps(payload, 2))
        if isinstance(result, subprocess.Popen):
            result.wait()
        elif hasattr(result, "close"):
            result.close()
        assert (tmp_path / "live").exists(), name
        (tmp_path / "live").unlink()


CONTAINERS = {"legacy": legacy_with, "zip": torch_zip_with, "bare": lambda p: p}


@requires_torch()
@pytest.mark.parametrize("container", CONTAINERS)
@pytest.mark.parametrize("protocol", [0, 2, 4])
@pytest.mark.parametrize("payload", ["os.system", "builtins.eval", "builtins.exec", "subprocess.Popen",
                                     "builtins.open"])
def test_code_calling_pickles_are_refused_before_any_call(marker, container, protocol, payload):
    evil = {"state_dict": {"w": np.zeros(1)}, "hook": touch_payloads(marker)[payload]}
    data = CONTAINERS[container](pickle.dumps(evil, protocol=protocol))
    function = payload.split(".")[-1]
    with pytest.raises(convforge.UnsafeCheckpointError, match=f"{function}.*refuses.*may be unsafe"):
        convforge.load(data)


def stack_global(module, name, args):
    """Protocol-4 pickle calling ``module.name(*args)`` with exact (possibly dotted) names."""
    out = b"\x80\x04" + pickle.dumps(module, 4)[2:-1] + pickle.dumps(name, 4)[2:-1] + b"\x93"
    return out + pickle.dumps(tuple(args), 4)[2:-1] + b"R."


@pytest.mark.parametrize("module, name", [
    ("collections", "OrderedDict.__init__.__globals__"),     # attribute walk from an allowed name
    ("torch._utils", "_rebuild_tensor_v2.__globals__"),
    ("torch._utils", "os.system"),
    ("collections", "os"),
    ("torch", "load"),
    ("torch.serialization", "load"),
    ("builtins", "getattr"),
    ("builtins", "__import__"),
    ("numpy", "load"),
    ("numpy.testing._private.utils", "runstring"),
    ("_codecs", "decode"),
])
def test_allowed_looking_names_and_attribute_walks_are_refused(marker, module, name):
    data = legacy_with(stack_global(module, name, [f"touch {marker}"]))
    with pytest.raises(convforge.UnsafeCheckpointError, match=f"'{module}.{name}'"):
        convforge.load(data)


def global_call(module, name, args_pickle):
    return b"\x80\x02c" + f"{module}\n{name}\n".encode() + args_pickle + b"R."


@requires_torch()
@pytest.mark.parametrize("trick", ["storage is a string", "from_type calls OrderedDict", "codecs utf-8",
                                   "object dtype", "scalar with a forged dtype state", "object ndarray"])
def test_reduce_tricks_through_allowed_names_are_refused(marker, trick):
    p2 = lambda *v: pickle.dumps(tuple(v), 2)[2:-1]       # noqa: E731 - the argument tuple's opcodes
    data = {
        "storage is a string": global_call("torch._utils", "_rebuild_tensor_v2",
                                           p2(f"touch {marker}", 0, (1,), (1,))),
        "from_type calls OrderedDict": b"\x80\x02ctorch._tensor\n_rebuild_from_type_v2\n(ccollections\n"
                                       b"OrderedDict\nctorch\nTensor\n" + p2((("a", 1),)) + b"NtR.",
        "codecs utf-8": global_call("_codecs", "encode", p2("x", "utf-8")),
        "object dtype": global_call("numpy", "dtype", p2("O", False, True)),
        "scalar with a forged dtype state": b"\x80\x02cnumpy.core.multiarray\nscalar\n(cnumpy\ndtype\n"
                                            b"U\x02f8\x89\x88\x87R}bU\x08" + bytes(8) + b"\x86R.",
        "object ndarray": pickle.dumps(np.array([Reduce(os.system, f"touch {marker}")], dtype=object), 2),
    }[trick]
    with pytest.raises(ValueError) as info:
        convforge.load(legacy_with(data))
    assert "unsafe" in str(info.value) or "not a storage" in str(info.value)


def test_extension_registry_opcodes_go_through_the_allow_list(marker):
    copyreg.add_extension("posix", "system", 0x3FF0)
    try:
        data = b"\x80\x02\x83\xf0\x3f" + pickle.dumps((f"touch {marker}",), 2)[2:-1] + b"R."
        with pytest.raises(convforge.UnsafeCheckpointError, match="posix.system"):
            convforge.load(legacy_with(data))
    finally:
        copyreg.remove_extension("posix", "system", 0x3FF0)


@requires_torch()
def test_a_whole_pickled_model_is_refused_with_the_state_dict_advice():
    buffer = io.BytesIO()
    torch.save(torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3)), buffer)
    with pytest.raises(convforge.UnsafeCheckpointError,
                       match=r"torch\.nn\.modules\.container\.Sequential.*model class.*state_dict\(\)"):
        convforge.load(buffer.getvalue())


@requires_torch()
def test_a_user_model_class_gets_the_advice_but_os_system_does_not(marker):
    data = legacy_with(global_call("mylab.models", "ResNetTiny", b")"))
    with pytest.raises(convforge.UnsafeCheckpointError, match="mylab.models.ResNetTiny.*state_dict"):
        convforge.load(data)
    with pytest.raises(convforge.UnsafeCheckpointError) as info:
        convforge.load(legacy_with(pickle.dumps(Reduce(os.system, f"touch {marker}"), 2)))
    assert "model class" not in str(info.value)


def safetensors_bytes(array):
    buffer = io.BytesIO()
    convforge.save({"x": array, "y": array[:5].astype(np.int16)}, buffer)
    return buffer.getvalue()


def good_checkpoints():
    buffer = io.BytesIO()
    np.savez(buffer, a=np.arange(40.0).reshape(5, 8), b=np.ones(3, np.int8))
    files = {"npz": buffer.getvalue(), "safetensors": safetensors_bytes(np.arange(30.0))}
    if torch is not None:
        sd = {"w": torch.arange(40.0).reshape(5, 8), "b": torch.ones(3, dtype=torch.int8), "n": {"e": 1}}
        for fmt, kwargs in {"zip": {}, "legacy": {"_use_new_zipfile_serialization": False}}.items():
            b = io.BytesIO()
            torch.save(sd, b, **kwargs)
            files[fmt] = b.getvalue()
    b = io.BytesIO()
    np.save(b, np.arange(12.0))
    files["npy"] = b.getvalue()
    return files


@pytest.mark.parametrize("fmt", ["zip", "legacy", "npz", "npy", "safetensors"])
def test_every_truncation_is_a_clear_error_naming_the_file(fmt, tmp_path):
    data = good_checkpoints().get(fmt)
    if data is None:
        pytest.skip("torch (test oracle) is not installed")
    path = tmp_path / f"model.{fmt}"
    cuts = sorted(set(np.linspace(0, len(data) - 1, 60).astype(int)) | {1, 7, 8, 9, len(data) - 1})
    for cut in cuts:
        path.write_bytes(data[:cut])
        with pytest.raises(ValueError, match=f"{path}: .*(empty|truncated|corrupted|unsafe)") as info:
            convforge.load(path)
        assert not isinstance(info.value, convforge.UnsafeCheckpointError) or fmt == "legacy", cut


@pytest.mark.parametrize("fmt", ["zip", "npz", "safetensors"])
def test_corrupted_bytes_give_a_clear_error_or_the_exact_data(fmt):
    data = good_checkpoints().get(fmt)
    if data is None:
        pytest.skip("torch (test oracle) is not installed")
    reference = convforge.load(data)
    rng = np.random.default_rng(0)
    for position in rng.choice(len(data), 80, replace=False):
        damaged = bytearray(data)
        damaged[position] ^= 1 << int(rng.integers(8))
        try:
            out = convforge.load(bytes(damaged))
        except ValueError as e:
            assert "<bytes>" in str(e)
            continue
        if fmt != "safetensors":          # zip members carry CRCs: a load that succeeds must be exact
            assert sorted(out) == sorted(reference)
            for key in reference:
                np.testing.assert_array_equal(out[key], reference[key])


def test_zero_byte_file(tmp_path):
    (tmp_path / "empty.pth").write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.pth: .*empty \(0 bytes\)"):
        convforge.load(tmp_path / "empty.pth")


def forged_storage_zip(numel, key="0", size=(2,), stride=(1,)):
    pickled = global_call("torch._utils", "_rebuild_tensor_v2", b"((X\x07\x00\x00\x00storagectorch\nFloatStorage\n"
                          + pickle.dumps(key, 2)[2:-1] + b"X\x03\x00\x00\x00cpu" + pickle.dumps(numel, 2)[2:-1]
                          + b"tQK\x00" + pickle.dumps(size, 2)[2:-1] + pickle.dumps(stride, 2)[2:-1] + b"\x89Nt")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("archive/data.pkl", pickled)
        z.writestr("archive/data/0", np.arange(4, dtype="<f4").tobytes())
    return out.getvalue()


@pytest.mark.parametrize("forgery, message", [
    ({"numel": 10 ** 15}, "declares 4000000000000000"),
    ({"numel": -1}, "declares -1 elements"),
    ({"numel": 4, "size": (10 ** 9, 10 ** 9), "stride": (1, 1)}, "reaches element"),
    ({"numel": 4, "size": (3,), "stride": (2,)}, "reaches element 4"),
    ({"numel": 4, "stride": (-1,)}, "negative"),
    ({"numel": 4, "key": "../../etc/passwd"}, "not a plain name"),
    ({"numel": 4, "key": "1"}, "missing"),
])
def test_forged_sizes_and_paths_in_a_zip_are_refused_before_allocating(forgery, message):
    assert convforge.load(forged_storage_zip(4)).tolist() == [0.0, 1.0]
    with pytest.raises(ValueError, match=message):
        convforge.load(forged_storage_zip(**forgery))


def test_zip_bomb_declaring_a_huge_record_is_refused():
    data = bytearray(forged_storage_zip(4))
    local = data.index(b"archive/data/0") - 30                   # the record's local header, then its central one
    central = data.index(b"archive/data/0", local + 31) - 46
    assert data[local:local + 4] == b"PK\x03\x04" and data[central:central + 4] == b"PK\x01\x02"
    struct.pack_into("<I", data, local + 22, 2 ** 31)          # both uncompressed-size fields claim 2 GiB
    struct.pack_into("<I", data, central + 24, 2 ** 31)
    with pytest.raises(ValueError, match="(zip bomb|declares|corrupted)"):
        convforge.load(bytes(data))


@pytest.mark.parametrize("header, message", [
    ({"x": {"dtype": "F32", "shape": [10 ** 12], "data_offsets": [0, 4 * 10 ** 12]}}, "invalid"),
    ({"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}, "needs 8 bytes"),
    ({"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
      "y": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, "overlap"),
    ({"x": {"dtype": "F8_E4M3", "shape": [4], "data_offsets": [0, 4]}}, "cannot represent"),
    ({"x": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, "invalid"),
    ({"x": 3}, "lacks dtype"),
])
def test_forged_safetensors_headers_are_refused(header, message):
    text = json.dumps(header).encode()
    with pytest.raises(ValueError, match=message):
        convforge.load(struct.pack("<Q", len(text)) + text + bytes(8))
    with pytest.raises(ValueError, match="claims"):
        convforge.load(struct.pack("<Q", 2 ** 62) + b"{}")


def test_npy_with_a_forged_shape_or_object_dtype():
    buffer = io.BytesIO()
    np.save(buffer, np.zeros(4))
    header = buffer.getvalue().replace(b"'shape': (4,), }      ", b"'shape': (9999999,), }")
    assert len(header) == len(buffer.getvalue())
    with pytest.raises(ValueError, match="declares 79999992 bytes"):
        convforge.load(header)
    buffer = io.BytesIO()
    np.save(buffer, np.array([None, 1], dtype=object))
    with pytest.raises(convforge.UnsafeCheckpointError, match="object dtype"):
        convforge.load(buffer.getvalue())
