"""Side-by-side helpers for the core Module tests: build the same thing with torch and
with jmod, do the same operations, compare.

A test writes its model once against a *library namespace* ``L`` (``TORCH`` or
``JMOD``): ``L.nn``, ``L.Parameter``, ``L.Buffer``, ``L.tensor(np_array)``,
``L.zeros(*shape)``, ``L.to_numpy(x)`` and ``L.module_mod`` (``nn.modules.module``).
``outcome(fn)`` runs ``fn`` and returns what happened (a value or the exception's
type and message) so the two libraries' behaviour can be compared with ``==``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import jax.numpy as jnp
import numpy as np
import torch
import torch.nn.modules.module as torch_module_mod

import jmod
import jmod.nn.modules.module as jmod_module_mod
import jmod.nn.parameter as jmod_parameter


class _Lib:
    name: str

    def __repr__(self) -> str:
        return self.name


class _Torch(_Lib):
    name = "torch"
    nn = torch.nn
    module_mod = torch_module_mod
    Parameter = torch.nn.Parameter
    Buffer = torch.nn.Buffer

    @staticmethod
    def tensor(x: Any, dtype: Any = None) -> torch.Tensor:
        t = torch.as_tensor(np.asarray(x))
        return t if dtype is None else t.to(getattr(torch, dtype))

    def zeros(self, *shape: int, dtype: str = "float32") -> torch.Tensor:
        return torch.zeros(shape, dtype=getattr(torch, dtype))

    def ones(self, *shape: int, dtype: str = "float32") -> torch.Tensor:
        return torch.ones(shape, dtype=getattr(torch, dtype))

    @staticmethod
    def to_numpy(x: Any) -> np.ndarray:
        return x.detach().cpu().float().numpy() if x.dtype == torch.bfloat16 else x.detach().cpu().numpy()

    @staticmethod
    def dtype_name(x: Any) -> str:
        return str(x.dtype).removeprefix("torch.")

    @staticmethod
    def requires_grad(p: Any) -> bool:
        return p.requires_grad


class _Jmod(_Lib):
    name = "jmod"
    nn = jmod.nn
    module_mod = jmod_module_mod
    Parameter = jmod.nn.Parameter
    Buffer = jmod.nn.Buffer

    @staticmethod
    def tensor(x: Any, dtype: Any = None) -> Any:
        a = jnp.asarray(np.asarray(x))
        return a if dtype is None else a.astype(dtype)

    def zeros(self, *shape: int, dtype: str = "float32") -> Any:
        return jnp.zeros(shape, dtype)

    def ones(self, *shape: int, dtype: str = "float32") -> Any:
        return jnp.ones(shape, dtype)

    @staticmethod
    def to_numpy(x: Any) -> np.ndarray:
        if isinstance(x, jmod.nn.Parameter):
            x = x.data
        return np.asarray(x.astype(jnp.float32) if x.dtype == jnp.bfloat16 else x)

    @staticmethod
    def dtype_name(x: Any) -> str:
        return str(x.dtype)

    @staticmethod
    def requires_grad(p: Any) -> bool:
        return jmod_parameter.requires_grad(p)


TORCH = _Torch()
JMOD = _Jmod()
LIBS = (TORCH, JMOD)


def both(build: Callable[[Any], Any]) -> tuple[Any, Any]:
    """``(build(TORCH), build(JMOD))``."""
    return build(TORCH), build(JMOD)


def outcome(fn: Callable[[], Any]) -> tuple:
    """``("ok", value)`` or ``("raise", ExceptionType name, message)``."""
    try:
        return ("ok", fn())
    except Exception as e:  # noqa: BLE001 - the point is to record it
        return ("raise", type(e).__name__, _message(e))


def _message(e: BaseException) -> str:
    # KeyError's str() is the repr of its argument; compare the argument itself.
    if isinstance(e, KeyError) and len(e.args) == 1:
        return str(e.args[0])
    return str(e)


def torch_to_jmod_text(msg: str) -> str:
    """torch's wording with jmod's class names (``torch.nn.Module`` -> ``jmod.nn.Module``)."""
    return msg.replace("torch.nn.", "jmod.nn.")


def assert_same_outcome(fn_torch: Callable[[], Any], fn_jmod: Callable[[], Any], *, translate: bool = False) -> tuple:
    """Both raise the same exception type with the same message (or both return equal values)."""
    t, j = outcome(fn_torch), outcome(fn_jmod)
    if translate and t[0] == "raise":
        t = (t[0], t[1], torch_to_jmod_text(t[2]))
    assert j == t, f"jmod: {j!r}\ntorch: {t!r}"
    return t


def assert_same_error_prefix(fn_torch: Callable[[], Any], fn_jmod: Callable[[], Any], prefix_re: str) -> None:
    """Both raise the same type; both messages match ``prefix_re`` at the start.

    For errors whose tail names the library's own types (``torch.Tensor`` vs
    ``jax.Array``): the part a torch user's ``assertRaisesRegex`` checks is shared.
    """
    t, j = outcome(fn_torch), outcome(fn_jmod)
    assert t[0] == "raise" and j[0] == "raise", (t, j)
    assert t[1] == j[1], (t, j)
    assert re.match(prefix_re, t[2]), t[2]
    assert re.match(prefix_re, j[2]), j[2]


def names(pairs: Any) -> list[str]:
    return [k for k, _ in pairs]


def tree_names(module: Any) -> dict[str, list[str]]:
    """Everything a traversal test compares, as names."""
    return {
        "parameters": names(module.named_parameters()),
        "parameters_dup": names(module.named_parameters(remove_duplicate=False)),
        "buffers": names(module.named_buffers()),
        "buffers_dup": names(module.named_buffers(remove_duplicate=False)),
        "modules": names(module.named_modules()),
        "modules_dup": names(module.named_modules(remove_duplicate=False)),
        "children": names(module.named_children()),
        "state_dict": list(module.state_dict()),
    }


def np_state(module: Any, lib: Any) -> dict[str, np.ndarray]:
    """``{name: numpy copy}`` of every parameter and buffer (duplicates included)."""
    out = {}
    for k, v in module.named_parameters(remove_duplicate=False):
        out["p:" + k] = np.array(lib.to_numpy(v))
    for k, v in module.named_buffers(remove_duplicate=False):
        out["b:" + k] = np.array(lib.to_numpy(v))
    return out


def assert_states_equal(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert list(a) == list(b)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
        assert a[k].dtype == b[k].dtype, k


def rng_array(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def copy_weights(t_mod: Any, j_mod: Any) -> None:
    """Give the jmod module torch's parameter and buffer values."""
    j_mod.load_state_dict(t_mod.state_dict())
