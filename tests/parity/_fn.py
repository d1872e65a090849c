"""Wrap a functional (jmod and torch) as modules so ``assert_matches_torch`` can check it.

``FnModule(fn, **kw)`` calls ``fn(*inputs, **kw)``; its class name is ``F.<name>`` so the
session's error table lists functionals separately from layers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from jmod import nn


def jmod_fn(fn: Callable, **kw: Any) -> nn.Module:
    cls = type(f"F.{fn.__name__}", (nn.Module,), {"forward": lambda self, *xs: fn(*xs, **kw)})
    return cls()


def torch_fn(fn: Callable, **kw: Any) -> torch.nn.Module:
    cls = type(f"F.{fn.__name__}", (torch.nn.Module,), {"forward": lambda self, *xs: fn(*xs, **kw)})
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
