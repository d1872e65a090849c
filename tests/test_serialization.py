"""jmod.save / jmod.load: round trips, interop, atomicity, clear errors."""

import io
import json
import os
import signal
import stat
import struct
import threading

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest

import jmod
from jmod import nn
from jmod.serialization import CheckpointError


def _model():
    m = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    m.register_buffer("steps", jnp.arange(3, dtype=jnp.int32))
    return m


def test_state_dict_round_trip_keeps_order_dtypes_and_metadata(tmp_path):
    m = _model()
    m.half()
    path = tmp_path / "m.safetensors"
    jmod.save(m.state_dict(), path)
    sd = jmod.load(path)
    assert list(sd) == list(m.state_dict())
    assert sd._metadata == m.state_dict()._metadata
    for k, v in m.state_dict().items():
        assert sd[k].dtype == v.dtype
        np.testing.assert_array_equal(sd[k], v)
    m2 = _model().half()
    m2.load_state_dict(sd)


def test_bfloat16_and_nested_checkpoint(tmp_path):
    m = _model().bfloat16()
    ckpt = {"model": m.state_dict(), "epoch": 3, "history": [0.5, 0.25], "name": "run", "none": None, "t": (1, 2)}
    jmod.save(ckpt, tmp_path / "c.safetensors")
    back = jmod.load(tmp_path / "c.safetensors")
    assert back["epoch"] == 3 and back["history"] == [0.5, 0.25] and back["name"] == "run" and back["none"] is None
    assert back["t"] == (1, 2)
    assert back["model"]["0.weight"].dtype == jnp.bfloat16
    assert back["model"]._metadata == m.state_dict()._metadata


@pytest.mark.torch
def test_files_are_plain_safetensors_readable_by_torch(tmp_path):
    import safetensors.torch
    import torch

    m = _model()
    jmod.save(m.state_dict(), tmp_path / "m.safetensors")
    t = safetensors.torch.load_file(str(tmp_path / "m.safetensors"))
    assert isinstance(t["0.weight"], torch.Tensor)
    np.testing.assert_array_equal(t["0.weight"].numpy(), np.asarray(m[0].weight))


def test_truncated_and_foreign_files_raise_clear_errors(tmp_path):
    path = tmp_path / "m.safetensors"
    jmod.save(_model().state_dict(), path)
    data = path.read_bytes()
    (tmp_path / "trunc.safetensors").write_bytes(data[:-7])
    with pytest.raises(CheckpointError, match="truncated"):
        jmod.load(tmp_path / "trunc.safetensors")
    (tmp_path / "x.pt").write_bytes(b"\x80\x02}q\x00.")
    with pytest.raises(CheckpointError, match="torch.load"):
        jmod.load(tmp_path / "x.pt")
    with pytest.raises(FileNotFoundError):
        jmod.load(tmp_path / "missing.safetensors")


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "m.safetensors"
    jmod.save(_model().state_dict(), path)
    good = path.read_bytes()

    def fail(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        jmod.save(_model().state_dict(), path)
    assert path.read_bytes() == good
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]  # no temporary left behind


def test_file_objects_and_unsupported_values(tmp_path):
    buf = io.BytesIO()
    jmod.save(_model().state_dict(), buf)
    buf.seek(0)
    assert "0.weight" in jmod.load(buf)
    with pytest.raises(TypeError, match="can store arrays"):
        jmod.save({"f": lambda: 1}, tmp_path / "bad.safetensors")


# ------------------------------------------------------------------ hardening (issue 14)

WIDE = {
    "i64": np.array([2**40 + 7, -(2**62)], np.int64),
    "f64": np.array([1e300, 1.0 + 2**-40], np.float64),
    "u64": np.array([2**64 - 1], np.uint64),
}


def test_64_bit_values_round_trip_exactly_with_x64_and_never_narrow_silently(tmp_path):
    path = tmp_path / "wide.safetensors"
    jmod.save(WIDE, path)
    with jax.enable_x64(True):
        back = jmod.load(path)
        for k, v in WIDE.items():
            assert back[k].dtype == v.dtype
            np.testing.assert_array_equal(np.asarray(back[k]), v)
    for k in WIDE:  # x64 off: each lossy one is refused by name, with the fix
        jmod.save({k: WIDE[k]}, tmp_path / f"{k}.safetensors")
        with pytest.raises(CheckpointError, match=rf"'{k}' is .*64.*jax_enable_x64"):
            jmod.load(tmp_path / f"{k}.safetensors")
    # lossless 64-bit values load as 32-bit ones
    jmod.save({"n": np.array([1, -2, 3], np.int64), "x": np.array([0.5, np.nan])}, path)
    back = jmod.load(path)
    assert back["n"].dtype == jnp.int32 and back["x"].dtype == jnp.float32
    np.testing.assert_array_equal(back["n"], [1, -2, 3])
    np.testing.assert_array_equal(back["x"], [0.5, np.nan])


@pytest.mark.torch
def test_torch_written_64_bit_and_float8_files(tmp_path):
    import safetensors.torch
    import torch

    safetensors.torch.save_file({"steps": torch.tensor([2**40 + 7])}, str(tmp_path / "t.safetensors"))
    with pytest.raises(CheckpointError, match="'steps' is int64"):
        jmod.load(tmp_path / "t.safetensors")
    with jax.enable_x64(True):
        assert int(jmod.load(tmp_path / "t.safetensors")["steps"][0]) == 2**40 + 7
    w = torch.randn(4, 3)
    f8 = {"e4m3": w.to(torch.float8_e4m3fn), "e5m2": w.to(torch.float8_e5m2)}
    safetensors.torch.save_file(f8, str(tmp_path / "f8.safetensors"))
    back = jmod.load(tmp_path / "f8.safetensors")
    assert back["e4m3"].dtype == ml_dtypes.float8_e4m3fn and back["e5m2"].dtype == ml_dtypes.float8_e5m2
    for k, t in f8.items():
        np.testing.assert_array_equal(np.asarray(back[k], np.float32), t.float().numpy())
    jmod.save(back, tmp_path / "again.safetensors")  # and jmod writes them for torch
    again = safetensors.torch.load_file(str(tmp_path / "again.safetensors"))
    for k, t in f8.items():
        assert again[k].dtype == t.dtype and torch.equal(again[k].float(), t.float())


def _file_with_metadata(path, metadata, arrays=None):
    """A well-formed safetensors file with the given (possibly corrupt) jmod metadata."""
    arrays = {"a": np.zeros(2, np.float32)} if arrays is None else arrays
    header = {"__metadata__": metadata}
    off = 0
    for k, v in arrays.items():
        header[k] = {"dtype": "F32", "shape": list(v.shape), "data_offsets": [off, off + v.nbytes]}
        off += v.nbytes
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"".join(v.tobytes() for v in arrays.values()))
    return path


@pytest.mark.parametrize(
    "metadata",
    [
        {"__jmod_tree__": "{not json"},
        {"__jmod_tree__": '{"__array__": "/missing"}'},
        {"__jmod_tree__": '{"__dict__": [["k"]]}'},
        {"__jmod_tree__": '{"__dict__": 5}'},
        {"__jmod_tree__": "[1, 2]"},
        {"__jmod_tree__": '{"__value__": {"x": 1}}'},
        {"__jmod_tree__": '{"__weird__": 1}'},
        {"__jmod_tree__": '{"__list__": [' * 5000 + "]}" * 5000},
        {"__jmod_tree__": "[" * 100000 + "]" * 100000},
        {"__jmod_keys__": '["a", "b"]'},
        {"__jmod_keys__": "7"},
        {"__jmod_state_dict_metadata__": '[["", 3]]'},
        {"__jmod_state_dict_metadata__": "{"},
    ],
    ids=lambda m: next(iter(m.values()))[:24],
)
def test_corrupt_jmod_metadata_raises_checkpoint_error(tmp_path, metadata):
    path = _file_with_metadata(tmp_path / "bad.safetensors", metadata)
    with pytest.raises(CheckpointError, match="corrupt jmod metadata"):
        jmod.load(path)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x05\x00\x00\x00\x00\x00\x00\x00{}",
        struct.pack("<Q", 2**60) + b"{}",
        struct.pack("<Q", 4) + b"\xff\xfe{}",
        struct.pack("<Q", 2) + b"[]",
        struct.pack("<Q", 29) + b'{"__metadata__": {"a": 1}}   ',
        struct.pack("<Q", 50) + b'{"a": {"dtype": "Q9", "shape": [1], "data_offsets": [0, 4]}}',
        struct.pack("<Q", 51) + b'{"a": {"dtype": "F32", "shape": [9], "data_offsets": [0, 4]}}' + b"\0" * 4,
        struct.pack("<Q", 52) + b'{"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}' + b"\0" * 4,
        struct.pack("<Q", 51) + b'{"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}' + b"\0" * 8,
        struct.pack("<Q", 51) + b'{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}' + b"\0" * 9,
        # a header claiming 4 TB: refused before anything is allocated
        struct.pack("<Q", 85) + b'{"a": {"dtype": "F32", "shape": [1000000000000], "data_offsets": [0, 4000000000000]}}',
    ],
)
def test_malformed_files_raise_checkpoint_error(tmp_path, data):
    (tmp_path / "bad.safetensors").write_bytes(data)
    with pytest.raises(CheckpointError, match="not a readable safetensors checkpoint"):
        jmod.load(tmp_path / "bad.safetensors")
    with pytest.raises(CheckpointError, match="not a readable safetensors checkpoint"):
        jmod.load(io.BytesIO(data))


def test_deep_trees_directories_and_fifos(tmp_path):
    deep = []
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(ValueError, match="nested more than"):
        jmod.save({"x": deep}, tmp_path / "deep.safetensors")
    assert os.listdir(tmp_path) == []
    with pytest.raises(IsADirectoryError, match="is a directory"):
        jmod.load(tmp_path)
    (tmp_path / "d").mkdir()
    with pytest.raises(IsADirectoryError):
        jmod.save(_model().state_dict(), tmp_path / "d")
    assert os.listdir(tmp_path / "d") == [] and sorted(os.listdir(tmp_path)) == ["d"]
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    result = []
    t = threading.Thread(target=lambda: result.append(pytest.raises(CheckpointError, jmod.load, fifo)), daemon=True)
    t.start()
    t.join(10)
    assert not t.is_alive(), "jmod.load hangs on a FIFO"
    assert "not a regular file" in str(result[0].value)


def test_save_keeps_mode_follows_symlinks_and_names_the_missing_directory(tmp_path):
    target = tmp_path / "real.safetensors"
    jmod.save(_model().state_dict(), target)
    os.chmod(target, 0o600)
    jmod.save(_model().state_dict(), target)
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    link = tmp_path / "link.safetensors"
    link.symlink_to(target)
    m = _model()
    jmod.save(m.state_dict(), link)
    assert link.is_symlink() and os.readlink(link) == str(target)
    np.testing.assert_array_equal(jmod.load(target)["0.weight"], m[0].weight)
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    missing = tmp_path / "nope" / "m.safetensors"
    with pytest.raises(FileNotFoundError, match=r"m\.safetensors.*does not exist") as e:
        jmod.save(m.state_dict(), missing)
    assert ".tmp" not in str(e.value)


def test_temp_files_of_a_killed_save_are_removed_by_the_next_save(tmp_path):
    """A save killed (SIGKILL) in the middle of writing leaves its temp file; the next save removes it.
    The writer is a forked child (no JAX call in it: cheaper than a fresh interpreter)."""
    import jmod.serialization as s

    pid = os.fork()
    if pid == 0:  # the child: write 3 MB of the file, then die
        try:

            def write(out, arrays, metadata):
                out.write(b"x" * 3_000_000)
                out.flush()
                os.kill(os.getpid(), signal.SIGKILL)

            s._write = write
            s.save({"w": np.zeros(4, np.float32)}, tmp_path / "m.safetensors")
        finally:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    stale = [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]
    assert len(stale) == 1 and os.path.getsize(tmp_path / stale[0]) >= 3_000_000
    (tmp_path / ".other.safetensors.jmod-host-1-ab.tmp").write_bytes(b"")  # another target's: kept
    jmod.save(_model().state_dict(), tmp_path / "m.safetensors")
    assert sorted(os.listdir(tmp_path)) == [".other.safetensors.jmod-host-1-ab.tmp", "m.safetensors"]


@pytest.mark.torch
def test_to_torch_and_from_torch_through_torch_save_weights_only(tmp_path):
    import torch

    m = _model()
    opt = jmod.optim.Adam(m.parameters(), lr=1e-3)
    sd = m.state_dict()
    ckpt = {"model": sd, "optim": opt.state_dict(), "bf16": jnp.arange(4, dtype=jnp.bfloat16), "epoch": 3}
    buf = io.BytesIO()
    torch.save(jmod.serialization.to_torch(ckpt), buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=True)
    assert isinstance(loaded["model"]["0.weight"], torch.Tensor) and loaded["bf16"].dtype == torch.bfloat16
    assert loaded["model"]._metadata == sd._metadata and loaded["epoch"] == 3
    assert loaded["optim"]["param_groups"][0]["betas"] == (0.9, 0.999)
    # torch's own model takes the weights
    tm = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    tm.register_buffer("steps", torch.zeros(3, dtype=torch.int32))
    tm.load_state_dict(loaded["model"])
    np.testing.assert_array_equal(tm[0].weight.detach().numpy(), np.asarray(m[0].weight))
    back = jmod.serialization.from_torch(loaded)
    m2 = _model()
    m2.load_state_dict(back["model"])
    for k, v in sd.items():
        assert back["model"][k].dtype == v.dtype
        np.testing.assert_array_equal(back["model"][k], v)
    assert back["bf16"].dtype == jnp.bfloat16 and back["model"]._metadata == sd._metadata
    opt2 = jmod.optim.Adam(m2.parameters(), lr=1e-3)
    opt2.load_state_dict(back["optim"])
    with pytest.raises(CheckpointError, match="'big' is int64"):
        jmod.serialization.from_torch({"big": torch.tensor([2**40])})
