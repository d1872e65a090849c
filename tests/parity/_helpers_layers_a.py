"""Wrap a functional (jmod and torch) as modules so ``assert_matches_torch`` can check it.

``FnModule(fn, **kw)`` calls ``fn(*inputs, **kw)``; its class name is ``F.<name>`` so the
session's error table lists functionals separately from layers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from jmod import nn


def jmod_fn(fn: Callable, name: str | None = None, **kw: Any) -> nn.Module:
    cls = type(f"F.{name or fn.__name__}", (nn.Module,), {"forward": lambda self, *xs: fn(*xs, **kw)})
    return cls()


def torch_fn(fn: Callable, name: str | None = None, **kw: Any) -> torch.nn.Module:
    cls = type(f"F.{name or fn.__name__}", (torch.nn.Module,), {"forward": lambda self, *xs: fn(*xs, **kw)})
    return cls()


def same_error(jmod_call: Callable[[], Any], torch_call: Callable[[], Any]) -> BaseException:
    """Both calls raise; same exception type and message. Returns jmod's exception."""
    try:
        torch_call()
    except Exception as e:  # noqa: BLE001
        t_exc = e
    else:
        raise AssertionError("torch did not raise")
    try:
        jmod_call()
    except Exception as e:  # noqa: BLE001
        j_exc = e
    else:
        raise AssertionError(f"jmod did not raise; torch raised {type(t_exc).__name__}: {t_exc}")
    assert type(j_exc) is type(t_exc), f"{type(j_exc).__name__}: {j_exc}  vs torch {type(t_exc).__name__}: {t_exc}"
    assert str(j_exc) == str(t_exc), f"\njmod : {j_exc}\ntorch: {t_exc}"
    return j_exc


def all_reductions(name: str, reductions: tuple = ("none", "mean", "sum"), **kwargs: Any) -> tuple[Any, Any]:
    """jmod and torch modules returning ``(loss(reduction=r) for r in reductions)``.

    One parity check then covers every reduction with one compile; the children are
    named after the reductions so ``state_dict`` keys match. NumPy keyword arguments
    (class weights) are converted for each side. Also checks each child's ``repr`` and
    ``state_dict`` keys against torch.
    """
    import jax.numpy as jnp
    import numpy as np

    # A fresh buffer per child: torch de-duplicates shared tensors in named_buffers().
    def tk() -> dict:
        return {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}

    def jk() -> dict:
        return {k: jnp.array(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}

    def jinit(self: Any) -> None:
        nn.Module.__init__(self)
        for r in reductions:
            setattr(self, r, getattr(nn, name)(reduction=r, **jk()))

    def tinit(self: Any) -> None:
        torch.nn.Module.__init__(self)
        for r in reductions:
            setattr(self, r, getattr(torch.nn, name)(reduction=r, **tk()))

    def forward(self: Any, *xs: Any) -> tuple:
        return tuple(getattr(self, r)(*xs) for r in reductions)

    j = type(name, (nn.Module,), {"__init__": jinit, "forward": forward})()
    t = type(name, (torch.nn.Module,), {"__init__": tinit, "forward": forward})()
    for r in reductions:
        assert repr(getattr(j, r)) == repr(getattr(t, r))
    assert sorted(j.state_dict()) == sorted(t.state_dict())
    return j, t


def assert_same_signature(jmod_obj: Callable, torch_obj: Callable) -> None:
    """Same parameter names, kinds and defaults as torch (classes: ``__init__`` and
    ``forward``; functions: the function itself)."""
    import inspect

    def params(f: Callable) -> list:
        return [(p.name, p.kind, p.default) for p in inspect.signature(f).parameters.values()]

    if isinstance(jmod_obj, type):
        assert params(jmod_obj.__init__) == params(torch_obj.__init__), jmod_obj.__name__
        jf = [p[0] for p in params(jmod_obj.forward)]
        assert jf == [p[0] for p in params(torch_obj.forward)], jmod_obj.__name__
    else:
        assert params(jmod_obj) == params(torch_obj), jmod_obj.__name__
