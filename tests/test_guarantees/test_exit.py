"""Guarantee: a script that trains and exits normally prints nothing at interpreter
exit (issue 13, case 8).

jmod's bookkeeping must not run finalizers that fail once Python has started
tearing modules down (today ``_forget`` in jmod/nn/parameter.py prints ``Exception
ignored ... 'NoneType' object has no attribute 'get'`` once per live parameter).
The script is an ordinary project: a ``models.py`` defining a network and a
pretrained instance at import time, and a ``train.py`` that loads it, trains with a
compiled step, compiles a probe, saves a checkpoint and ends.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from tests.test_guarantees._helpers import run_python

MODELS = """
    import jax.numpy as jnp
    import jmod
    from jmod import nn


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(4, 16)
            self.bn = nn.BatchNorm1d(16)
            self.drop = nn.Dropout(0.1)
            self.fc2 = nn.Linear(16, 2)

        def forward(self, x):
            return self.fc2(self.drop(jnp.tanh(self.bn(self.fc1(x)))))


    PRETRAINED = Net()
"""

TRAIN = """
    import sys

    import jax.numpy as jnp
    import jmod
    import jmod.nn.functional as F
    import models
    from models import PRETRAINED, Net

    model = Net()
    model.load_state_dict(PRETRAINED.state_dict())
    opt = jmod.optim.Adam(model.parameters(), lr=1e-3)


    @jmod.jit
    def train_step(model, opt, x, y):
        loss, grads = jmod.value_and_grad(lambda m: F.mse_loss(m(x), y))(model)
        opt.step(grads)
        return loss


    x, y = jnp.ones((8, 4)), jnp.zeros((8, 2))
    for _ in range(3):
        loss = train_step(model, opt, x, y)
    probe = Net().eval()
    probe.compile()
    probe(x)
    jmod.save(model.state_dict(), sys.argv[1])
    print("done", float(loss))
"""


def test_no_exception_ignored_at_interpreter_exit(tmp_path: Path):
    (tmp_path / "models.py").write_text(textwrap.dedent(MODELS))
    (tmp_path / "train.py").write_text(textwrap.dedent(TRAIN))
    proc = run_python(tmp_path / "train.py", str(tmp_path / "ckpt.safetensors"), cwd=tmp_path, extra_path=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("done"), proc.stdout
    ignored = [line for line in proc.stderr.splitlines() if "Exception ignored" in line]
    assert not ignored, f"{len(ignored)} 'Exception ignored' messages at exit:\n{proc.stderr[-2000:]}"
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
