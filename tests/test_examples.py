"""Every example runs as ``python examples/NAME.py --quick`` and prints what it promises.

Each example runs in a subprocess, as a user runs it (``PYTHONPATH`` set to the
repository root, so jmod need not be installed), and the test checks the key lines
of its output. ``multihost_data_parallel.py`` is a worker launched by
``tests/test_parallel.py``, not a stand-alone example.
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
# Examples with a --quick flag, run here; others are covered elsewhere.
NOT_HERE = {"multihost_data_parallel.py"}


def run_example(name: str, *args: str, timeout: float = 120) -> str:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    env.pop("XLA_FLAGS", None)  # examples run on the default single CPU device
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name), "--quick", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, f"{name} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_every_example_is_tested_here():
    scripts = {p.name for p in EXAMPLES.glob("*.py")} - NOT_HERE
    tested = {name for name in globals() if name.startswith("test_")}
    missing = [s for s in sorted(scripts) if f"test_{s[:-3]}" not in tested]
    assert not missing, f"examples without a test in tests/test_examples.py: {missing}"


def test_forward_call():
    out = run_example("forward_call.py")
    assert "T(6) = 48" in out
    assert "Module.__call__ is Module._wrapped_call_impl: True" in out
    assert "a plain class with forward is not callable: 'NotAModule' object is not callable" in out
    assert 'Module [Module] is missing the required "forward" function' in out
    assert "with hooks, T(6) = (6 + 1) * 8 - 1 = 55" in out
    assert "hooks removed, T(6) = 48" in out
    assert "compiled with a hook, T(jnp.array(6.)) = 47.0" in out


def test_hooks_tour():
    out = run_example("hooks_tour.py")
    eager = out.split("jmod.jit")[0]
    order = [
        "first: global forward pre-hook",
        "first: forward pre-hook",
        "first: forward",
        "first: global forward hook",
        "first: forward hook",
        "second: global forward pre-hook",
        "second: backward pre-hook",
        "second: backward hook",
        "first: backward pre-hook",
        "first: backward hook, grad_input is None",
    ]
    positions = [eager.index(line) for line in order]
    assert positions == sorted(positions), eager
    assert "same hook order eagerly and compiled: True" in out
    assert "compiled calls traced once: True" in out


def test_lenet():
    out = run_example("lenet.py")
    assert out.startswith("Net(\n  (conv1): Conv2d(3, 6, kernel_size=(5, 5), stride=(1, 1))\n")
    assert "(fc3): Linear(in_features=84, out_features=10, bias=True)\n)" in out
    assert "input (1, 3, 32, 32) -> output (1, 10)" in out
    assert "pool   (1, 16, 5, 5)" in out
    assert re.search(r"conv1\.weight\s+\(6, 3, 5, 5\)", out)
    assert re.search(r"fc3\.bias\s+\(10,\)", out)
    assert "parameters: 62,006" in out
    if "PyTorch is not installed" not in out:
        assert "repr identical to torch's: True" in out
        diff = float(re.search(r"max \|jmod - torch\| over the 10 logits: (\S+)", out).group(1))
        assert diff < 1e-5


def test_batchnorm_from_scratch():
    out = run_example("batchnorm_from_scratch.py")
    assert "moving_mean, moving_var are in state_dict(): False" in out
    before = re.search(r"before training:\n  moving_mean (\[.*?\])", out).group(1)
    assert before == "[+0.000, +0.000, +0.000, +0.000, ...]"
    epochs = re.findall(r"epoch\s+\d+: loss ([\d.]+).*moving_mean (\[.*?\])", out)
    assert len(epochs) == 2
    assert epochs[0][1] != before and epochs[1][1] != epochs[0][1]  # the moving statistics move
    assert "train_step compiled 1 time(s)" in out
    assert "evaluation with moving statistics: test acc" in out
    assert "batch statistics of batches of  1: test acc" in out


def test_training_loop():
    out = run_example("training_loop.py")
    diff = float(re.search(r"max \|eager - compiled\| over 10 losses: (\S+)", out).group(1))
    assert diff < 1e-4
    speedup = float(re.search(r"jmod.jit is (\d+)x faster", out).group(1))
    assert speedup > 3
    assert "compiled 1 time(s) for 10 steps" in out


def test_state_dict():
    out = run_example("state_dict.py")
    assert (
        "state_dict():           ['scale', 'steps', 'fc.weight', 'fc.bias', 'bn.weight', 'bn.bias', "
        "'bn.running_mean', 'bn.running_var', 'bn.num_batches_tracked']" in out
    )
    assert "get_state(model).non_persistent_buffers: ['last_mean']" in out
    assert "steps=2, bn.num_batches_tracked=2, last_mean updated: True, ema updated: True" in out
    assert "_metadata: {'': {'version': 1}, 'fc': {'version': 1}, 'bn': {'version': 2}}" in out
    assert "_metadata preserved: True" in out
    assert "Net().load_state_dict(loaded) -> <All keys matched successfully>" in out
    assert "same eval output: True" in out
    assert 'Missing key(s) in state_dict: "fc.bias".' in out
    assert 'Unexpected key(s) in state_dict: "head.weight".' in out
    assert "size mismatch for fc.weight: copying a param with shape torch.Size([5, 4]) from checkpoint" in out
    assert "_IncompatibleKeys(missing_keys=['fc.bias'], unexpected_keys=['head.weight'])" in out
    if "PyTorch is not installed" not in out:
        diffs = [float(d) for d in re.findall(r"max \|(?:jmod - torch|torch - jmod)\|: (\S+)", out)]
        assert len(diffs) == 2 and max(diffs) < 1e-5


def test_train_digits(tmp_path):
    out = run_example("train_digits.py", "--out", str(tmp_path))
    assert "data: 1437 training and 360 test images of shape (1, 8, 8)" in out
    assert "trained 5 steps" in out and "train_step compiled 1 time(s)" in out
    assert re.search(r"test accuracy: [\d.]+% \(\d+/360\)", out)
    assert "(identical)" in out
    ckpt, png = tmp_path / "digits_cnn.safetensors", tmp_path / "digits_training.png"
    assert ckpt.stat().st_size > 100_000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000

    import jmod

    saved = jmod.load(ckpt)
    assert set(saved) == {"model", "optimizer", "epoch", "test_accuracy"}
    assert "features.0.weight" in saved["model"] and saved["epoch"] == 1

    # --resume: the run stopped after epoch 1 continues to epoch 2 and ends with the same
    # weights and optimizer state, bit for bit, as a two-epoch run that was never stopped
    # (run here in-process on one device: the same compiled step as in the subprocess).
    out = run_example("train_digits.py", "--epochs", "2", "--resume", "--out", str(tmp_path))
    assert "resumed from the checkpoint of epoch 1 (step 5)" in out and "trained 10 steps" in out
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["10", "5"]
    _spec = importlib.util.spec_from_file_location("train_digits", EXAMPLES / "train_digits.py")
    train_digits = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(train_digits)
    train_digits.main(["--quick", "--epochs", "2", "--out", str(tmp_path / "uninterrupted")])
    full, resumed = (jmod.load(d / "digits_cnn.safetensors") for d in (tmp_path / "uninterrupted", tmp_path))
    assert full["epoch"] == resumed["epoch"] == 2 and full["test_accuracy"] == resumed["test_accuracy"]
    for k, v in full["model"].items():
        assert np.array_equal(resumed["model"][k], v), k
    for k, v in full["optimizer"]["state"].items():
        assert np.array_equal(resumed["optimizer"]["state"][k], v), k


def test_train_char_gpt(tmp_path):
    out = run_example("train_char_gpt.py", "--out", str(tmp_path))
    m = re.search(r"data: ([\d,]+) characters of Python source from 24 standard-library modules, vocabulary of (\d+)", out)
    assert m and int(m.group(1).replace(",", "")) > 100_000 and int(m.group(2)) > 60, out
    assert "model: GPT 1 layers, 2 heads, 32 wide, context 16" in out
    # decay / no-decay groups: the 2-D weights (tied embedding once, position embedding,
    # 4 Linear weights) and the 3 LayerNorm weights (no biases, as in nanoGPT)
    assert "num decayed parameter tensors: 6," in out and "num non-decayed parameter tensors: 3," in out
    losses = [float(v) for v in re.findall(r"val loss (\d+\.\d+)", out)]
    # untrained, a uniform guess over the vocabulary costs log(V) nats; 6 steps lower it
    assert len(losses) >= 2 and losses[-1] < math.log(int(m.group(2))), out
    assert "trained 6 iterations" in out and "train_step compiled 1 time(s)" in out
    assert re.search(r"reloaded into a fresh GPT: val loss [\d.]+ \(identical\)", out)
    assert "next_token compiled 1 time(s)" in out
    sample = out.split("-" * 60 + "\n")[1][:-1]  # less the newline print() added
    assert len(sample) == 40, out
    ckpt, png = tmp_path / "char_gpt.safetensors", tmp_path / "char_gpt_loss.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000

    import jmod

    saved = jmod.load(ckpt)
    assert set(saved) == {"model", "optimizer", "scheduler_last_epoch", "config", "vocab"}
    assert saved["scheduler_last_epoch"] == 6 and saved["config"]["n_layer"] == 1
    assert "transformer.h.0.attn.c_attn.weight" in saved["model"] and "lm_head.weight" in saved["model"]


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.py")))
def test_example_has_a_docstring_and_quick_flag(name):
    source = (EXAMPLES / name).read_text()
    assert source.startswith('"""'), f"{name} should open with a docstring saying what it shows"
    if name not in NOT_HERE:
        assert '"--quick"' in source

