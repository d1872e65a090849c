"""A tour of every hook kind, in the order ``_call_impl`` runs them, eager then compiled.

    python examples/hooks_tour.py [--quick]

For one training step of a two-layer model it records, in order: global forward
pre-hooks, module forward pre-hooks, ``forward``, global forward hooks, module forward
hooks, then during differentiation the global and module backward pre-hooks (which
see ``grad_output``) and backward hooks (which see ``grad_input``). It runs the step
eagerly and then inside ``jmod.jit`` with the hooks registered ``host=True`` (so they
run on every compiled call, with concrete values) and shows both orders are the same.
"""

from __future__ import annotations

import argparse
import warnings

import jax
import jax.numpy as jnp

import jmod
from jmod import nn
from jmod.nn.modules import module as module_api


class Layer(nn.Module):
    def __init__(self, name: str, log: list) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 3)
        self.tag = name
        self.log = log

    def forward(self, x):
        self.log.append(f"{self.tag}: forward")
        return jnp.tanh(self.lin(x))


class Net(nn.Module):
    def __init__(self, log: list) -> None:
        super().__init__()
        self.first = Layer("first", log)
        self.second = Layer("second", log)

    def forward(self, x):
        return self.second(self.first(x))


def register_all(model: Net, log: list, host: bool) -> list:
    """Every hook kind on both layers (and globally, for Layer modules only)."""
    handles = []

    def only_layers(fn):
        return lambda m, *a: fn(m, *a) if isinstance(m, Layer) else None

    g = module_api
    handles += [
        g.register_module_forward_pre_hook(
            only_layers(lambda m, a: log.append(f"{m.tag}: global forward pre-hook")), host=host
        ),
        g.register_module_forward_hook(
            only_layers(lambda m, a, o: log.append(f"{m.tag}: global forward hook")), host=host
        ),
        g.register_module_full_backward_pre_hook(
            only_layers(lambda m, go: log.append(f"{m.tag}: global backward pre-hook")), host=host
        ),
        g.register_module_full_backward_hook(
            only_layers(lambda m, gi, go: log.append(f"{m.tag}: global backward hook")), host=host
        ),
    ]
    for layer in (model.first, model.second):
        t = layer.tag
        handles.append(
            layer.register_forward_pre_hook(lambda m, a, t=t: log.append(f"{t}: forward pre-hook"), host=host)
        )
        handles.append(layer.register_forward_hook(lambda m, a, o, t=t: log.append(f"{t}: forward hook"), host=host))
        handles.append(
            layer.register_full_backward_pre_hook(
                lambda m, go, t=t: log.append(
                    f"{t}: backward pre-hook |grad_output|={float(jnp.abs(go[0]).sum()):.3f}"
                ),
                host=host,
            )
        )
        handles.append(
            layer.register_full_backward_hook(
                lambda m, gi, go, t=t: log.append(
                    f"{t}: backward hook, grad_input is {'None' if gi[0] is None else 'an array'}"
                ),
                host=host,
            )
        )
    return handles


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="(this example is already quick)")
    parser.parse_args(argv)
    # The first layer's input x needs no gradient, so (as in torch) its backward hook
    # fires with grad_input = (None,) and torch's UserWarning says so; silence it here.
    warnings.filterwarnings("ignore", message="Full backward hook is firing")
    jmod.manual_seed(0)

    eager_log: list = []
    model = Net(eager_log)
    x = jnp.ones((2, 3))

    def loss_fn(m):
        return m(x).sum()

    handles = register_all(model, eager_log, host=False)
    jmod.grad(loss_fn)(model)
    for h in handles:
        h.remove()
    print("eager:")
    for i, line in enumerate(eager_log, 1):
        print(f"  {i:2d}. {line}")

    # Compiled: forward() runs only while tracing; host=True hooks are staged into the
    # compiled step and run, in program order, on every call.
    jit_log: list = []
    model.first.log = model.second.log = jit_log
    handles = register_all(model, jit_log, host=True)
    step = jmod.jit(lambda m: jmod.grad(loss_fn)(m))
    step(model)
    jax.effects_barrier()
    traced = [e for e in jit_log if e.endswith(": forward")]
    first_call = [e for e in jit_log if not e.endswith(": forward")]
    print("\njmod.jit, while tracing (once):", ", ".join(traced))
    jit_log.clear()
    step(model)
    jax.effects_barrier()
    print("jmod.jit, every call:")
    for i, line in enumerate(jit_log, 1):
        print(f"  {i:2d}. {line}")
    for h in handles:
        h.remove()

    eager_hooks = [e for e in eager_log if not e.endswith(": forward")]
    print("\nsame hook order eagerly and compiled:", eager_hooks == first_call == jit_log)
    print("compiled calls traced once:", step.trace_count == 1)


if __name__ == "__main__":
    main()
