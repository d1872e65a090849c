"""What a module's state is, and how ``state_dict`` saves and loads it (torch's rules).

    python examples/state_dict.py [--quick]

1. The kinds of state: parameters, persistent buffers, non-persistent buffers, plain
   array attributes and plain Python attributes; which of them ``state_dict()``
   holds, and the three pytrees of ``jmod.func.get_state``.
2. ``state_dict()`` keys and ``_metadata`` (per-module versions, as in torch).
3. Saving and loading with ``jmod.save``/``jmod.load`` (safetensors files).
4. ``load_state_dict`` errors: missing keys, unexpected keys, size mismatch (torch's
   messages), and what ``strict=False`` returns.
5. Loading weights from a PyTorch model, and a jmod checkpoint into PyTorch (skipped,
   with a message, when torch is not installed).
"""

from __future__ import annotations

import argparse
import os
import tempfile

import jax.numpy as jnp
import numpy as np

import jmod
from jmod import nn
from jmod.func import get_state


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)  # a submodule with parameters fc.weight, fc.bias
        self.bn = nn.BatchNorm1d(3)  # parameters, and buffers running_mean/var, num_batches_tracked
        self.scale = nn.Parameter(jnp.ones(3))  # a parameter of Net itself
        self.register_buffer("steps", jnp.zeros((), jnp.int32))  # a persistent buffer
        self.register_buffer("last_mean", jnp.zeros(3), persistent=False)  # a non-persistent buffer
        self.ema = jnp.zeros(3)  # a plain array attribute
        self.label = "demo"  # a plain Python attribute

    def forward(self, x):
        y = self.bn(self.fc(x)) * self.scale
        if self.training:
            self.steps = self.steps + 1
            self.last_mean = y.mean(0)
            self.ema = 0.9 * self.ema + 0.1 * y.mean(0)
        return y


def section(title: str) -> None:
    print(f"\n== {title} ==")


def show_error(fn) -> None:
    try:
        fn()
    except RuntimeError as e:
        print(f"{type(e).__name__}: {e}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="(this example is already quick)")
    parser.add_argument("--out", default=None, help="directory for the checkpoint files (default: a temporary one)")
    args = parser.parse_args(argv)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        run(args.out)
    else:
        with tempfile.TemporaryDirectory(prefix="jmod-state-dict-") as out:
            run(out)


def run(out: str) -> None:
    jmod.manual_seed(0)
    model = Net()
    x = jmod.randn(8, 4)

    section("1. kinds of state")
    state = get_state(model)
    print("parameters:            ", [name for name, _ in model.named_parameters()])
    print("buffers:               ", [name for name, _ in model.named_buffers()])
    print("state_dict():          ", list(model.state_dict()))
    print("get_state(model).parameters:            ", list(state.parameters))
    print("get_state(model).buffers:               ", list(state.buffers))
    print("get_state(model).non_persistent_buffers:", list(state.non_persistent_buffers))
    print("plain attributes ema and label: in no state dict, as in torch")

    # A compiled call writes back everything forward assigned: buffers, the
    # non-persistent buffer and the plain array attribute alike.
    forward = jmod.jit(lambda model, x: model(x))
    forward(model, x)
    forward(model, x)
    print(
        f"after 2 compiled training-mode calls: steps={int(model.steps)}, "
        f"bn.num_batches_tracked={int(model.bn.num_batches_tracked)}, "
        f"last_mean updated: {bool(jnp.any(model.last_mean != 0))}, ema updated: {bool(jnp.any(model.ema != 0))}"
    )

    section("2. state_dict keys and _metadata")
    sd = model.state_dict()
    for name, value in sd.items():
        print(f"  {name:22s} {str(value.dtype):8s} {tuple(value.shape)}")
    print("_metadata:", dict(sd._metadata))

    section("3. jmod.save / jmod.load (safetensors)")
    path = os.path.join(out, "net.safetensors")
    jmod.save(model.state_dict(), path)
    loaded = jmod.load(path)
    print(f"saved {path} ({os.path.getsize(path)} bytes)")
    print("loaded:", type(loaded).__name__, "with the same keys in the same order:", list(loaded) == list(sd))
    print("_metadata preserved:", loaded._metadata == sd._metadata)
    restored = Net()
    print("Net().load_state_dict(loaded) ->", restored.load_state_dict(loaded))
    model.eval()
    restored.eval()
    print("same eval output:", bool(jnp.array_equal(model(x), restored(x))))
    from safetensors.numpy import load_file

    print("it is a plain safetensors file: safetensors.numpy.load_file gives", len(load_file(path)), "arrays")

    # A training checkpoint: several state dicts and plain values in one file.
    opt = jmod.optim.AdamW(model.parameters(), lr=1e-3)
    ckpt_path = os.path.join(out, "checkpoint.safetensors")
    jmod.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 3}, ckpt_path)
    ckpt = jmod.load(ckpt_path)
    print(
        f"nested checkpoint: keys {list(ckpt)}, epoch={ckpt['epoch']}, {len(ckpt['optimizer']['state'])} optimizer arrays"
    )

    section("4. strict loading errors")
    missing = {k: v for k, v in sd.items() if k != "fc.bias"}
    show_error(lambda: Net().load_state_dict(missing))
    unexpected = {**sd, "head.weight": jnp.zeros((2, 3))}
    show_error(lambda: Net().load_state_dict(unexpected))
    wrong_shape = {**sd, "fc.weight": jnp.zeros((5, 4))}
    show_error(lambda: Net().load_state_dict(wrong_shape))
    both = {**missing, "head.weight": jnp.zeros((2, 3))}
    result = Net().load_state_dict(both, strict=False)
    print("strict=False returns:", result)
    print("  result.missing_keys =", result.missing_keys, " result.unexpected_keys =", result.unexpected_keys)

    section("5. PyTorch weights")
    try:
        import torch
    except ImportError:
        print("PyTorch is not installed: skipping the torch <-> jmod part (pip install torch to run it).")
        return
    torch_model = torch_net()
    with torch.no_grad():
        for _ in range(3):  # training-mode calls, so that the BatchNorm statistics are not trivial
            torch_model(torch.randn(8, 4))
    torch_model.eval()
    print("torch state_dict keys:", list(torch_model.state_dict()))
    jm = Net()
    print("jmod Net().load_state_dict(torch_model.state_dict()) ->", jm.load_state_dict(torch_model.state_dict()))
    jm.eval()
    xt = np.asarray(x)
    with torch.no_grad():
        expected = torch_model(torch.tensor(xt)).numpy()
    print(f"eval outputs, max |jmod - torch|: {float(jnp.abs(jm(x) - expected).max()):.1e}")

    # And back: a jmod.save file is read by safetensors.torch.
    from safetensors.torch import load_file as torch_load_file

    jmod.save(model.state_dict(), path)
    back = torch_net()
    print("torch load_state_dict(safetensors.torch.load_file(path)) ->", back.load_state_dict(torch_load_file(path)))
    back.eval()
    with torch.no_grad():
        back_out = back(torch.tensor(xt)).numpy()
    print(f"eval outputs, max |torch - jmod|: {float(np.abs(back_out - np.asarray(model(x))).max()):.1e}")


def torch_net():
    """``Net`` written in PyTorch: the same names, so the state dicts line up."""
    import torch
    import torch.nn as tnn

    class TorchNet(tnn.Module):
        def __init__(self):
            super().__init__()
            self.fc = tnn.Linear(4, 3)
            self.bn = tnn.BatchNorm1d(3)
            self.scale = tnn.Parameter(torch.ones(3))
            self.register_buffer("steps", torch.zeros((), dtype=torch.int32))
            self.register_buffer("last_mean", torch.zeros(3), persistent=False)
            self.ema = torch.zeros(3)
            self.label = "demo"

        def forward(self, x):
            return self.bn(self.fc(x)) * self.scale

    torch.manual_seed(0)
    return TorchNet()


if __name__ == "__main__":
    main()
