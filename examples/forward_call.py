"""Why ``model(x)`` runs ``forward``: ``__call__`` -> pre-hooks -> ``forward`` -> hooks.

    python examples/forward_call.py [--quick]

As in torch, ``Module.__call__`` is ``_wrapped_call_impl``, which calls
``_call_impl`` (or the compiled version after ``module.compile()``). With no hooks
registered ``_call_impl`` calls ``forward`` directly (the fast path); with hooks it
runs the forward pre-hooks (which may replace the input), ``forward``, then the
forward hooks (which may replace the output). A plain Python class with a
``forward`` method has none of this: it is not even callable.
"""

from __future__ import annotations

import argparse

import jax.numpy as jnp

from jmod import nn


class Times8(nn.Module):
    """Multiplies its input by 8."""

    def forward(self, x):
        return x * 8


class NotAModule:
    def forward(self, x):
        return x * 8


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="(this example is already quick)")
    parser.parse_args(argv)

    T = Times8()
    print("T(6) =", T(6))
    print("T.__call__(6) =", T.__call__(6))
    print("T.forward(6) =", T.forward(6))
    print("Module.__call__ is Module._wrapped_call_impl:", nn.Module.__call__ is nn.Module._wrapped_call_impl)

    try:
        NotAModule()(6)
    except TypeError as e:
        print("a plain class with forward is not callable:", e)

    try:
        nn.Module()(6)
    except NotImplementedError as e:
        print("a Module without forward:", e)

    # A forward pre-hook replaces the input; a forward hook replaces the output.
    pre = T.register_forward_pre_hook(lambda module, args: (args[0] + 1,))
    post = T.register_forward_hook(lambda module, args, output: output - 1)
    print("with hooks, T(6) = (6 + 1) * 8 - 1 =", T(6))
    print("forward itself ignores hooks: T.forward(6) =", T.forward(6))
    pre.remove()
    post.remove()
    print("hooks removed, T(6) =", T(6))

    # Module.compile() (torch.compile's counterpart) swaps in a jmod.jit-compiled
    # _call_impl: _wrapped_call_impl calls it instead, so hooks are compiled in too.
    T.register_forward_hook(lambda module, args, output: output - 1)
    T.compile()
    print("compiled with a hook, T(jnp.array(6.)) =", float(T(jnp.array(6.0))))


if __name__ == "__main__":
    main()
