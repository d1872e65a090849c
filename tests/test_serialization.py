"""jmod.save / jmod.load: round trips, interop, atomicity, clear errors."""

import os

import jax.numpy as jnp
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
    import io

    buf = io.BytesIO()
    jmod.save(_model().state_dict(), buf)
    buf.seek(0)
    assert "0.weight" in jmod.load(buf)
    with pytest.raises(TypeError, match="can store arrays"):
        jmod.save({"f": lambda: 1}, tmp_path / "bad.safetensors")
