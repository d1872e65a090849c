"""jmod.export: the artifact serializes to bytes, deserializes in a process without jmod or
the model's code, and gives torch's outputs; a dynamic batch accepts any batch size."""

import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import jmod
from jmod import nn


def _pair():
    torch.manual_seed(0)
    t = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(), torch.nn.Dropout(0.3),
        torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 5),
    )  # fmt: skip
    j = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.3), nn.Flatten(), nn.Linear(4 * 6 * 6, 5)
    )
    with torch.no_grad():  # non-trivial running statistics
        t[1].running_mean.uniform_(-1, 1)
        t[1].running_var.uniform_(0.5, 2)
    j.load_state_dict(t.state_dict())
    return j.eval(), t.eval()


@pytest.mark.torch
def test_round_trip_in_a_process_without_jmod_matches_torch(tmp_path):
    j, t = _pair()
    exported = jmod.export(j, jnp.ones((2, 3, 8, 8)), dynamic_batch=True)
    data = exported.serialize()
    assert isinstance(data, (bytes, bytearray))
    (tmp_path / "model.jax").write_bytes(data)
    rng = np.random.default_rng(0)
    xs = {f"x{n}": rng.standard_normal((n, 3, 8, 8)).astype(np.float32) for n in (1, 7)}
    np.savez(tmp_path / "inputs.npz", **xs)
    script = textwrap.dedent(
        """
        import sys, jax, numpy as np
        exported = jax.export.deserialize(open("model.jax", "rb").read())
        inputs = np.load("inputs.npz")
        np.savez("outputs.npz", **{k: np.asarray(exported.call(inputs[k])) for k in inputs.files})
        assert not any(m == "jmod" or m.startswith("jmod.") for m in sys.modules), "jmod was imported"
        """
    )
    subprocess.run([sys.executable, "-c", script], cwd=tmp_path, check=True, env={"PATH": "/usr/bin:/bin"})
    outs = np.load(tmp_path / "outputs.npz")
    for k, x in xs.items():
        want = t(torch.tensor(x)).detach().numpy()
        np.testing.assert_allclose(outs[k], want, rtol=1e-5, atol=1e-6)
    # and in this process, deserialized from the bytes
    restored = jax.export.deserialize(data)
    np.testing.assert_allclose(
        np.asarray(restored.call(xs["x7"])), np.asarray(j(jnp.asarray(xs["x7"]))), rtol=1e-5, atol=1e-6
    )


def test_static_shapes_kwargs_and_errors():
    model = nn.MultiheadAttention(8, 2, batch_first=True).eval()
    q = jnp.ones((2, 5, 8))
    exported = jmod.export(model, q, q, q, kwargs={"need_weights": False})
    out, weights = exported.call(q, q, q)
    want, _ = model(q, q, q, need_weights=False)
    np.testing.assert_allclose(np.asarray(out), np.asarray(want), rtol=1e-6)
    assert weights is None
    assert exported.in_avals[0].shape == (2, 5, 8)
    with pytest.raises(ValueError, match="shape"):
        exported.call(jnp.ones((3, 5, 8)), q, q)
    with pytest.raises(TypeError, match="takes a jmod Module"):
        jmod.export(lambda x: x, q)
    with pytest.raises(ValueError, match="batch dimension"):
        jmod.export(nn.Identity(), jnp.ones(()), dynamic_batch=True)
