"""Parity helpers: build the torch module and the jmod module, give them the same
weights, and compare outputs, gradients and buffer updates.

``assert_matches_torch(jmod_mod, torch_mod, *inputs)`` is the one entry point (the
shape of tinygrad's ``helper_test_op``): it loads ``torch_mod.state_dict()`` into
``jmod_mod``, runs both forward on the same inputs, compares

* the outputs (eagerly, under ``jax.jit`` via ``functional_call`` and under ``jmod.jit``),
* the buffers forward updated (BatchNorm running statistics),
* the gradients with respect to every floating input and every parameter, for the
  same random output cotangent,

and records the largest error per layer class for the session summary.
"""

from __future__ import annotations

import collections
import os
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import jmod
from jmod.func import functional_call, get_state, set_state

# layer class name -> largest (forward, gradient) absolute error seen this session
MAX_ERRORS: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0.0])
# layer class name -> largest (forward, gradient) relative error: max|a - e| / max|e| per array
MAX_REL_ERRORS: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0.0])
# layer class name -> ids of the tests that ran a parity check of it
CASES: dict[str, set[str]] = collections.defaultdict(set)


def record(name: str, fwd_err: float, grad_err: float, fwd_rel: float = 0.0, grad_rel: float = 0.0) -> None:
    """Note a parity check of ``name`` (for the session summary): its errors and the test."""
    errs, rels = MAX_ERRORS[name], MAX_REL_ERRORS[name]
    errs[0], errs[1] = max(errs[0], fwd_err), max(errs[1], grad_err)
    rels[0], rels[1] = max(rels[0], fwd_rel), max(rels[1], grad_rel)
    CASES[name].add(os.environ.get("PYTEST_CURRENT_TEST", "?").split(" ")[0])


def _torch():
    import torch

    return torch


def to_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def flatten(tree: Any) -> list[Any]:
    """Flatten nested tuples/lists/dicts of arrays, keeping ``None`` entries."""
    if isinstance(tree, (tuple, list)):
        return [leaf for t in tree for leaf in flatten(t)]
    if isinstance(tree, dict):
        return [leaf for k in sorted(tree) for leaf in flatten(tree[k])]
    return [tree]


def assert_close(
    actual: Any, expected: Any, *, atol: float, rtol: float, what: str, rel_out: list[float] | None = None
) -> float:
    """Compare two array trees leaf by leaf; return the largest absolute error.

    ``rel_out`` (a list) receives each floating leaf's relative error ``max|a - e| / max|e|``
    (over the finite expected values): a scale-free measure for the summary, where an
    absolute error of 1e3 on gradients of 1e12 is rounding.
    """
    a_leaves, e_leaves = flatten(actual), flatten(expected)
    assert len(a_leaves) == len(e_leaves), f"{what}: {len(a_leaves)} leaves vs {len(e_leaves)} expected"
    worst = 0.0
    for i, (a, e) in enumerate(zip(a_leaves, e_leaves)):
        if e is None or a is None:
            assert a is None and e is None, f"{what}[{i}]: got {type(a).__name__}, expected {type(e).__name__}"
            continue
        a, e = to_numpy(a), to_numpy(e)
        assert a.shape == e.shape, f"{what}[{i}]: shape {a.shape} vs expected {e.shape}"
        if a.dtype == bool or np.issubdtype(e.dtype, np.integer):
            np.testing.assert_array_equal(a, e, err_msg=f"{what}[{i}]")
            continue
        a64, e64 = a.astype(np.float64), e.astype(np.float64)
        same = (a64 == e64) | (np.isnan(a64) & np.isnan(e64))  # equal infinities and NaNs: no error
        with np.errstate(invalid="ignore"):
            diff = np.where(same, 0.0, np.abs(a64 - e64))
        err = float(np.max(diff)) if a.size else 0.0
        np.testing.assert_allclose(a, e, atol=atol, rtol=rtol, err_msg=f"{what}[{i}]")
        worst = max(worst, err)
        if rel_out is not None and a.size:
            finite = np.abs(e64[np.isfinite(e64)])
            scale = float(finite.max()) if finite.size else 0.0
            rel_out.append(err / scale if scale > 0 else err)
    return worst


def _is_float(x: np.ndarray) -> bool:
    return np.issubdtype(np.asarray(x).dtype, np.floating)


def assert_matches_torch(
    jmod_mod: Any,
    torch_mod: Any,
    *inputs: Any,
    kwargs: dict[str, Any] | None = None,
    atol: float = 1e-5,
    rtol: float = 1e-5,
    grad_atol: float | None = None,
    grad_rtol: float | None = None,
    train: bool | None = None,
    check_grad: bool = True,
    check_jit: bool = True,
    load_weights: bool = True,
    grad_inputs: bool = True,
    seed: int = 0,
) -> dict[str, float]:
    """Check that ``jmod_mod`` computes what ``torch_mod`` computes.

    Args:
        jmod_mod, torch_mod: the two modules (same constructor arguments).
        *inputs: NumPy arrays (or scalars) passed positionally to both.
        kwargs: keyword inputs (NumPy arrays or Python values) passed to both.
        atol, rtol: forward tolerance; ``grad_atol``/``grad_rtol`` default to them.
        train: put both in train (``True``) or eval (``False``) mode first.
        check_grad: compare gradients w.r.t. floating inputs and parameters.
        check_jit: also run the jmod module under ``jax.jit`` and ``jmod.jit``.
        load_weights: copy ``torch_mod.state_dict()`` into ``jmod_mod`` first.
        grad_inputs: include floating inputs in the gradient check.

    Returns:
        ``{"forward": max_abs_err, "grad": max_abs_err}``.
    """
    torch = _torch()
    kwargs = kwargs or {}
    grad_atol = atol if grad_atol is None else grad_atol
    grad_rtol = rtol if grad_rtol is None else grad_rtol
    name = type(jmod_mod).__name__
    torch_mod.zero_grad(set_to_none=True)  # a second call must not see accumulated grads
    if load_weights:
        jmod_mod.load_state_dict(torch_mod.state_dict())
    if train is not None:
        jmod_mod.train(train)
        torch_mod.train(train)

    np_inputs = [np.asarray(x) if not isinstance(x, (int, float, bool)) else x for x in inputs]
    t_inputs = [
        torch.tensor(x, requires_grad=check_grad and grad_inputs and _is_float(x)) if isinstance(x, np.ndarray) else x
        for x in np_inputs
    ]
    t_kwargs = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    j_inputs = [jnp.asarray(x) if isinstance(x, np.ndarray) else x for x in np_inputs]
    j_kwargs = {k: jnp.asarray(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}

    # ---- forward, eager: outputs and the buffers forward wrote
    state0 = get_state(jmod_mod)
    t_out = torch_mod(*t_inputs, **t_kwargs)
    j_out = jmod_mod(*j_inputs, **j_kwargs)
    fwd_rel: list[float] = [0.0]
    grad_rel: list[float] = [0.0]
    fwd_err = assert_close(j_out, t_out, atol=atol, rtol=rtol, what=f"{name} forward", rel_out=fwd_rel)
    t_buffers = {k: v for k, v in torch_mod.named_buffers()}
    j_buffers = dict(jmod_mod.named_buffers())
    assert sorted(t_buffers) == sorted(j_buffers), f"{name}: buffer names {sorted(j_buffers)} vs {sorted(t_buffers)}"
    for k in t_buffers:
        fwd_err = max(
            fwd_err,
            assert_close(j_buffers[k], t_buffers[k], atol=atol, rtol=rtol, what=f"{name} buffer {k}", rel_out=fwd_rel),
        )
    set_state(jmod_mod, state0)

    # ---- one compiled function gives the jax.jit forward and the gradients (one
    # compile per case keeps the parity suite fast)
    rng = np.random.default_rng(seed)
    t_leaves = flatten(t_out)
    cots = [
        None if (t is None or not t.dtype.is_floating_point) else rng.standard_normal(tuple(t.shape)).astype(np.float32)
        for t in t_leaves
    ]
    float_idx = (
        [i for i, x in enumerate(np_inputs) if isinstance(x, np.ndarray) and _is_float(x)]
        if (check_grad and grad_inputs)
        else []
    )
    trainable = {n for n, p in torch_mod.named_parameters() if p.requires_grad} if check_grad else set()
    params = {k: v for k, v in state0.parameters.items() if k in trainable}
    frozen = {k: v for k, v in state0.parameters.items() if k not in trainable}
    buffers = {**state0.buffers, **state0.non_persistent_buffers}

    def f(p: Any, xs: list) -> list:
        args = list(j_inputs)
        for i, x in zip(float_idx, xs):
            args[i] = x
        return functional_call(jmod_mod, (p, frozen, buffers), tuple(args), j_kwargs)

    def fwd_and_grad(p: Any, xs: list, cts: list) -> tuple:
        if not check_grad:
            return f(p, xs), (None, None)

        def g(p: Any, xs: list) -> tuple:
            full = f(p, xs)
            return [o for o, c in zip(flatten(full), cots) if c is not None], full

        _, vjp, full = jax.vjp(g, p, xs, has_aux=True)
        return full, vjp(cts)

    # Cotangents in each output's dtype (float16 outputs take float16 cotangents).
    out_dtypes = [getattr(o, "dtype", None) for o in flatten(j_out)]
    cts = [jnp.asarray(c, dtype=dt) for c, dt in zip(cots, out_dtypes) if c is not None]
    xs = [j_inputs[i] for i in float_idx]
    if check_jit or check_grad:
        jit_out, (g_params, g_inputs) = jax.jit(fwd_and_grad)(params, xs, cts)
        if check_jit:
            fwd_err = max(fwd_err, assert_close(jit_out, t_out, atol=atol, rtol=rtol, what=f"{name} jax.jit forward"))
    if check_jit and t_buffers and hasattr(jmod, "jit"):
        # What jmod.jit adds over jax.jit is writing buffer updates back: check it for
        # layers that have buffers.
        stepped = jmod.jit(lambda m, *xs: m(*xs, **j_kwargs))(jmod_mod, *j_inputs)
        fwd_err = max(fwd_err, assert_close(stepped, t_out, atol=atol, rtol=rtol, what=f"{name} jmod.jit forward"))
        jbuf = dict(jmod_mod.named_buffers())
        for k in t_buffers:
            assert_close(jbuf[k], t_buffers[k], atol=atol, rtol=rtol, what=f"{name} jmod.jit buffer {k}")
        set_state(jmod_mod, state0)

    # ---- gradients for the same random cotangent
    grad_err = 0.0
    if check_grad:
        pairs = [(t, c) for t, c in zip(t_leaves, cots) if c is not None and t.requires_grad]
        if pairs:
            torch.autograd.backward([t for t, _ in pairs], [torch.tensor(c) for _, c in pairs])
        for i, g in zip(float_idx, g_inputs):
            expected = t_inputs[i].grad
            expected = torch.zeros_like(t_inputs[i]) if expected is None else expected
            grad_err = max(
                grad_err,
                assert_close(
                    g, expected, atol=grad_atol, rtol=grad_rtol, what=f"{name} grad input {i}", rel_out=grad_rel
                ),
            )
        for pname, p in torch_mod.named_parameters():
            if not p.requires_grad:
                continue
            expected = p.grad if p.grad is not None else torch.zeros_like(p)
            grad_err = max(
                grad_err,
                assert_close(
                    g_params[pname],
                    expected,
                    atol=grad_atol,
                    rtol=grad_rtol,
                    what=f"{name} grad {pname}",
                    rel_out=grad_rel,
                ),
            )

    record(name, fwd_err, grad_err, max(fwd_rel), max(grad_rel))
    return {"forward": fwd_err, "grad": grad_err}


def count_traces(fn: Callable) -> tuple[Callable, list[int]]:
    """Wrap ``fn`` so each Python execution (i.e. each trace under jit) is counted."""
    counter = [0]

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        counter[0] += 1
        return fn(*args, **kwargs)

    return wrapped, counter
