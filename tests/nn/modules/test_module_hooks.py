"""Module hooks, ported from torch's ``test/nn/test_module_hooks.py`` and checked side
by side with torch.

Forward (pre-)hooks, global hooks, ``RemovableHandle``, state-dict hooks and the
registration hooks are compared with torch call for call. Backward hooks run under
``jax.grad`` (and ``jax.jit(jax.grad(...))``) where torch runs ``loss.backward()``:
the same model, weights and cotangents, and the hooks must fire in the same order
with the same ``grad_input``/``grad_output`` (atol 1e-5), and a hook's replacement
gradients must change the input and parameter gradients as in torch.

JAX arrays are immutable, so torch's in-place checks (``test_hook_inplace``) have no
counterpart; jmod's deprecated ``register_backward_hook`` runs with the full-hook
arguments (documented) instead of torch's grad_fn-based ones.
"""

from __future__ import annotations

import copy
import gc
import math
import pickle
import warnings
import weakref
from collections import OrderedDict
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import jmod
from jmod.func import functional_call
from jmod.nn.modules.hooks import RemovableHandle
from tests.nn.modules._compare import JMOD, LIBS, TORCH, outcome, rng_array

pytestmark = pytest.mark.torch

GLOBAL_DICTS = [
    "_global_forward_pre_hooks",
    "_global_forward_hooks",
    "_global_forward_hooks_always_called",
    "_global_forward_hooks_with_kwargs",
    "_global_backward_pre_hooks",
    "_global_backward_hooks",
    "_global_buffer_registration_hooks",
    "_global_module_registration_hooks",
    "_global_parameter_registration_hooks",
]
FULL_HOOK_WARNING = "Full backward hook is firing when gradients are computed with respect to module outputs"


@pytest.fixture(autouse=True)
def _clean_global_hooks():
    """Every test starts and ends with no global hooks, in torch and in jmod."""
    import jmod.nn.modules.hooks as jmod_hooks

    mods = [TORCH.module_mod, JMOD.module_mod, jmod_hooks]

    def reset():
        for mod in mods:
            for name in GLOBAL_DICTS:
                d = getattr(mod, name, None)
                if d is not None:
                    d.clear()
            if hasattr(mod, "_global_is_full_backward_hook"):
                mod._global_is_full_backward_hook = None

    reset()
    yield
    reset()


# ------------------------------------------------------------------------ models
def toy(L):
    class Net(L.nn.Module):
        def __init__(self):
            super().__init__()
            self.seq1 = L.nn.Sequential(*[L.nn.Linear(10, 10) for _ in range(2)])
            self.seq2 = L.nn.Sequential(*[L.nn.Linear(10, 10) for _ in range(2)])

        def forward(self, x):
            return self.seq2(self.seq1(x))

    class ToyModel(L.nn.Module):
        def __init__(self):
            super().__init__()
            self.net1 = Net()
            self.net2 = Net()

        def forward(self, x):
            return self.net2(self.net1(x))

    return ToyModel()


def sigmoid(L):
    class Sigmoid(L.nn.Module):
        def forward(self, x):
            return torch.sigmoid(x) if L is TORCH else jax.nn.sigmoid(x)

    return Sigmoid()


def kwarg_model(L):
    class KwargModel(L.nn.Module):
        def __init__(self):
            super().__init__()
            self.net1 = toy(L).net1
            self.net2 = toy(L).net2

        def forward(self, x, bias=None):
            if bias is not None:
                x = x + bias
            return x

        def internal_forward_hook(self, module, args, kwargs, out):
            return out + kwargs["bias"]

    return KwargModel()


def torch_quiet(fn, *args):
    """Run the torch side without torch's FutureWarning for non-full backward hooks
    ("Using a non-full backward hook when the forward contains multiple autograd Nodes")."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return fn(*args)


def twin_models(build):
    """``(torch_model, jmod_model)`` with the same weights."""
    t, j = build(TORCH), build(JMOD)
    if list(t.state_dict()):
        j.load_state_dict(t.state_dict())
    return t, j


def np_or_none(g):
    if g is None:
        return None
    if isinstance(g, jax.core.Tracer):
        return "traced"  # a hook under jit runs at trace time
    if isinstance(g, torch.Tensor):
        return g.detach().numpy().copy()
    return np.asarray(g).copy()


def assert_grads_close(a, b, what=""):
    assert len(a) == len(b), (what, len(a), len(b))
    for i, (x, y) in enumerate(zip(a, b)):
        assert (x is None) == (y is None), (what, i, x, y)
        if x is not None:
            np.testing.assert_allclose(x, y, atol=1e-5, rtol=1e-5, err_msg=f"{what}[{i}]")


def sum_backward(L, model, x):
    """torch: ``model(x).sum().backward()``; jmod: ``jax.grad`` of the same w.r.t. ``x``."""
    if L is TORCH:
        model(x).sum().backward()
    else:
        jax.grad(lambda v: model(v).sum())(x)


def x10(L, requires_grad=True):
    x = rng_array(10, 10)
    return torch.tensor(x, requires_grad=requires_grad) if L is TORCH else jnp.asarray(x)


# ------------------------------------------------------------ forward (pre-)hooks
def record(fired, module_expected, hook_id, module, *args):
    fired.append(hook_id)
    assert module is module_expected
    assert len(args[0]) == 1  # inp / grad_input / grad_output tuples of length 1


@pytest.mark.parametrize(
    "kind,target,expected",
    [
        ("forward", "net1.seq2", [4, 1, 0, 2, 3]),
        ("forward_pre", "net2.seq1", [4, 0, 1, 2, 3]),
        ("full_backward", "net1", [4, 3, 0, 1, 2]),
        ("full_backward_pre", "net1", [1, 0, 2, 3, 4]),
    ],
)
def test_hook_order_with_prepend(kind, target, expected):
    """torch's test_forward_hooks / _pre_hooks / test_full_backward_hooks / _pre_hooks."""
    prepend_at = {"forward": (1, 4), "forward_pre": (0, 4), "full_backward": (3, 4), "full_backward_pre": (0, 1)}[kind]

    def run(L):
        model = toy(L)
        fired = []
        mod = model.get_submodule(target)
        register = getattr(mod, f"register_{kind}_hook")
        for i in range(5):
            kwargs = {"prepend": True} if i in prepend_at else {}
            register(partial(record, fired, mod, i), **kwargs)
        x = x10(L)
        out = model(x)
        after_forward = list(fired)
        if L is TORCH:
            out.sum().backward()
        else:
            jax.grad(lambda v: model(v).sum())(x)
        after_first = list(fired)
        sum_backward(L, model, x)
        return after_forward, after_first, fired

    t, j = run(TORCH), run(JMOD)
    if kind.startswith("forward"):
        # jax.grad runs the forward again: once per gradient, as torch's second call.
        assert t == ([*expected], [*expected], expected * 2)
        assert j == ([*expected], expected * 2, expected * 3)
    else:
        assert j == t == ([], expected, expected * 2)


def test_mixed_hooks_order():
    def run(L):
        model = toy(L)
        fired = []
        model.register_forward_pre_hook(partial(record, fired, model, 0))
        model.register_forward_hook(partial(record, fired, model, 1))
        model.register_full_backward_pre_hook(partial(record, fired, model, 2))
        model.register_full_backward_hook(partial(record, fired, model, 3))
        sum_backward(L, model, x10(L))
        sum_backward(L, model, x10(L))
        return fired

    assert run(JMOD) == run(TORCH) == [0, 1, 2, 3, 0, 1, 2, 3]


def test_backward_pre_hook_can_zero_the_gradient():
    def run(L):
        m = L.nn.Linear(2, 2)
        m.register_full_backward_pre_hook(lambda mod, grad_output: (grad_output[0] * 0,))
        a = np.ones(2, np.float32)
        if L is TORCH:
            t = torch.tensor(a, requires_grad=True)
            m(t).sum().backward()
            return t.grad.numpy()
        return np.asarray(jax.grad(lambda v: m(v).sum())(jnp.asarray(a)))

    np.testing.assert_array_equal(run(JMOD), run(TORCH))
    np.testing.assert_array_equal(run(JMOD), np.zeros(2))


def kw_pre(fired, module_expected, hook_id, module, args, kwargs):
    fired.append(hook_id)
    assert module is module_expected and len(args) == 1
    kwargs["bias"] = 2 * kwargs["bias"]
    return args, kwargs


def kw_fwd(fired, module_expected, hook_id, module, args, kwargs, out):
    fired.append(hook_id)
    assert module is module_expected and len(args) == 1
    return out + kwargs["bias"]


def test_kwarg_hooks():
    def run(L):
        res = []
        ones = L.ones(10, 10)
        model = kwarg_model(L)
        fired = []
        model.register_forward_pre_hook(partial(kw_pre, fired, model, 0), with_kwargs=True)
        res.append((L.to_numpy(model(ones, bias=ones))[0, 0], list(fired)))
        model = kwarg_model(L)
        fired = []
        model.register_forward_hook(partial(kw_fwd, fired, model, 1), with_kwargs=True)
        model.register_forward_pre_hook(partial(kw_pre, fired, model, 0), with_kwargs=True)
        res.append((L.to_numpy(model(ones, bias=ones))[0, 0], list(fired)))
        model = kwarg_model(L)
        model.register_forward_hook(model.internal_forward_hook, with_kwargs=True)
        res.append(L.to_numpy(model(ones, bias=ones))[0, 0])
        return res

    assert run(JMOD) == run(TORCH) == [(3.0, [0]), (5.0, [0, 1]), 3.0]


def test_remove_kwarg_hooks():
    def run(L):
        ones = L.ones(10, 10)
        model = kwarg_model(L)
        fired = []
        fh = model.register_forward_hook(partial(kw_fwd, fired, model, 1), with_kwargs=True)
        ph = model.register_forward_pre_hook(partial(kw_pre, fired, model, 0), with_kwargs=True)
        out = [float(L.to_numpy(model(ones, bias=ones))[0, 0])]
        fh.remove()
        out.append(float(L.to_numpy(model(ones, bias=ones))[0, 0]))
        out.append(fh.id in model._forward_hooks_with_kwargs)
        ph.remove()
        out.append(float(L.to_numpy(model(ones, bias=ones))[0, 0]))
        out.append(ph.id in model._forward_pre_hooks_with_kwargs)
        return out, fired

    assert run(JMOD) == run(TORCH) == ([5.0, 3.0, False, 2.0, False], [0, 1, 0])


def test_kwarg_pre_hook_bad_return_raises():
    def run(L):
        m = L.nn.Identity()
        m.register_forward_pre_hook(lambda mod, args, kwargs: 5, with_kwargs=True)
        return outcome(lambda: m(L.ones(1)))

    assert run(JMOD) == run(TORCH)
    assert run(JMOD)[:2] == ("raise", "RuntimeError")


def test_hook_return_values_replace_input_and_output():
    """torch's test_hook_forward_preforward_writable: a non-tuple pre-hook result is
    wrapped; a forward hook result replaces the output; gradients follow."""

    def run(L, use_global):
        module = sigmoid(L)
        pre = lambda m, inp: torch.relu(inp[0]) if L is TORCH else jax.nn.relu(inp[0])  # noqa: E731
        post = lambda m, inp, out: -out  # noqa: E731
        if use_global:
            L.module_mod.register_module_forward_pre_hook(pre)
            L.module_mod.register_module_forward_hook(post)
        else:
            module.register_forward_pre_hook(pre)
            module.register_forward_hook(post)
        x = rng_array(5, 5)
        g = np.full((5, 5), 2.0, np.float32)
        if L is TORCH:
            xt = torch.tensor(x, requires_grad=True)
            out = module(xt)
            out.backward(torch.tensor(g))
            return out.detach().numpy(), xt.grad.numpy()
        out, vjp = jax.vjp(module, jnp.asarray(x))
        return np.asarray(out), np.asarray(vjp(jnp.asarray(g))[0])

    for use_global in (False, True):
        t, j = run(TORCH, use_global), run(JMOD, use_global)
        for a, b in zip(j, t):
            np.testing.assert_allclose(a, b, atol=1e-6)
        for mod in (TORCH.module_mod, JMOD.module_mod):
            mod._global_forward_pre_hooks.clear()
            mod._global_forward_hooks.clear()


def test_pre_hook_tuple_result_replaces_all_args():
    def run(L):
        class Add(L.nn.Module):
            def forward(self, a, b):
                return a + b

        m = Add()
        m.register_forward_pre_hook(lambda mod, args: (args[1], args[1]))
        m.register_forward_pre_hook(lambda mod, args: None)
        return float(L.to_numpy(m(L.ones(1), L.zeros(1) + 3))[0])

    assert run(JMOD) == run(TORCH) == 6.0


# ------------------------------------------------------------------- always_call
def always_model(L, raise_in):
    class Boom(L.nn.Module):
        def forward(self, x):
            if raise_in == "forward":
                raise ValueError("forward failed")
            return x + 1

    m = Boom()
    calls = []

    def pre(mod, args):
        calls.append("pre")
        if raise_in == "pre":
            raise ValueError("pre failed")

    def always(mod, args, out):
        calls.append(("always", None if out is None else "out"))

    def always_kw(mod, args, kwargs, out):
        calls.append(("always_kw", sorted(kwargs), None if out is None else "out"))

    def normal(mod, args, out):
        calls.append("normal")
        if raise_in == "hook":
            raise ValueError("hook failed")

    def global_always(mod, args, out):
        calls.append(("global_always", None if out is None else "out"))

    m.register_forward_pre_hook(pre)
    m.register_forward_hook(always, always_call=True)
    m.register_forward_hook(normal)
    m.register_forward_hook(always_kw, always_call=True, with_kwargs=True)
    L.module_mod.register_module_forward_hook(global_always, always_call=True)
    return m, calls


@pytest.mark.parametrize("raise_in", [None, "pre", "forward", "hook"])
def test_always_call_forward_hooks(raise_in):
    def run(L):
        m, calls = always_model(L, raise_in)
        res = outcome(lambda: L.to_numpy(m(L.ones(1), **({} if raise_in else {}))).tolist())
        return res, calls

    t, j = run(TORCH), run(JMOD)
    assert j == t
    if raise_in:
        assert t[0] == ("raise", "ValueError", f"{raise_in} failed")


def test_always_call_hook_that_raises_is_silenced_with_a_warning():
    def run(L):
        class Boom(L.nn.Module):
            def forward(self, x):
                raise ValueError("forward failed")

        m = Boom()

        def bad(mod, args, out):
            raise KeyError("hook failed too")

        def bad_global(mod, args, out):
            raise TypeError("global hook failed too")

        m.register_forward_hook(bad, always_call=True)
        L.module_mod.register_module_forward_hook(bad_global, always_call=True)
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            res = outcome(lambda: m(L.ones(1)))
        return res, [(c.category.__name__, str(c.message)) for c in w]

    t, j = run(TORCH), run(JMOD)
    assert j == t
    assert t[0] == ("raise", "ValueError", "forward failed")
    assert [m for _, m in t[1]] == [
        "global module forward hook with ``always_call=True`` raised an exception that was silenced as another "
        "error was raised in forward: global hook failed too",
        "module forward hook with ``always_call=True`` raised an exception that was silenced as another error "
        "was raised in forward: 'hook failed too'",
    ]


# ------------------------------------------------------------------ global hooks
def test_global_hooks_run_before_module_hooks():
    """torch's test_global_and_local_hooks_order (forward, backward)."""

    def run(L):
        module = sigmoid(L)
        order = []

        def make(tag, ret):
            def hook(*args):
                order.append(tag)
                return args[ret] if ret is not None else None

            return hook

        L.module_mod.register_module_forward_pre_hook(make("global_pre", 1))
        module.register_forward_pre_hook(make("local_pre", 1))
        L.module_mod.register_module_forward_hook(make("global_fwd", 2))
        module.register_forward_hook(make("local_fwd", 2))
        L.module_mod.register_module_full_backward_pre_hook(make("global_bw_pre", None))
        module.register_full_backward_pre_hook(make("local_bw_pre", None))
        L.module_mod.register_module_full_backward_hook(make("global_bw", 1))
        module.register_full_backward_hook(make("local_bw", 1))
        sum_backward(L, module, x10(L))
        return order

    assert run(JMOD) == run(TORCH)
    assert run(JMOD) == [
        "global_pre",
        "local_pre",
        "global_fwd",
        "local_fwd",
        "global_bw_pre",
        "local_bw_pre",
        "global_bw",
        "local_bw",
    ]


def test_global_non_full_backward_hooks_before_module_hooks():
    """The deprecated kind: torch's test_global_and_local_hooks_order as written."""

    def run(L):
        module = sigmoid(L)
        order = []
        L.module_mod.register_module_backward_hook(lambda m, gi, go: order.append("global") or gi)
        if L is JMOD:
            with pytest.warns(FutureWarning, match="register_backward_hook is deprecated"):
                module.register_backward_hook(lambda m, gi, go: order.append("local") or gi)
        else:
            module.register_backward_hook(lambda m, gi, go: order.append("local") or gi)
        with warnings.catch_warnings():
            # torch: "Using a non-full backward hook when the forward contains multiple autograd Nodes"
            warnings.simplefilter("ignore", FutureWarning)
            sum_backward(L, module, x10(L))
        return order

    assert run(JMOD) == run(TORCH) == ["global", "local"]


def test_module_global_hooks_counting():
    """torch's test_module_global_hooks (vjp called twice = backward with retain_graph)."""

    def run(L):
        mods = [sigmoid(L) for _ in range(3)]
        counter = {"forwards": 0, "backwards": 0}
        expected_out = 1 / (1 + 1 / math.e)

        def fw_hook(inc, h_module, inp, out):
            assert isinstance(inp, tuple)
            if not isinstance(out, jax.core.Tracer):  # under jax.vjp jmod's forward sees tracers
                np.testing.assert_allclose(L.to_numpy(inp[0]), np.ones((5, 5)))
                np.testing.assert_allclose(L.to_numpy(out), np.full((5, 5), expected_out), rtol=1e-6)
            counter["forwards"] += inc

        def bw_hook(inc, h_module, grad_input, grad_output):
            assert isinstance(grad_input, tuple) and isinstance(grad_output, tuple)
            np.testing.assert_allclose(np.asarray(L.to_numpy(grad_output[0])), np.full((5, 5), 2.0))
            counter["backwards"] += inc

        ones = np.ones((5, 5), np.float32)
        x = torch.tensor(ones, requires_grad=True) if L is TORCH else jnp.asarray(ones)
        g = L.tensor(ones * 2)
        log = []

        def forward(m):
            if L is TORCH:
                out = m(x)
                return lambda: out.backward(g, retain_graph=True)
            _, vjp = jax.vjp(m, x)
            return lambda: vjp(g)

        test_fwd = L.module_mod.register_module_forward_hook(lambda *a: fw_hook(1, *a))
        for m in mods:
            m(x)
        log.append(dict(counter))
        test_bwd = L.module_mod.register_module_full_backward_hook(lambda *a: bw_hook(1, *a))
        backs = [forward(m) for m in mods]
        log.append(dict(counter))
        for b in backs:
            b()
        log.append(dict(counter))
        backs[0]()
        log.append(dict(counter))
        test2_fwd = L.module_mod.register_module_forward_hook(lambda *a: fw_hook(2, *a))
        for m in mods:
            m(x)
        log.append(dict(counter))
        test2_bwd = L.module_mod.register_module_full_backward_hook(lambda *a: bw_hook(2, *a))
        forward(mods[0])()
        log.append(dict(counter))
        test2_bwd.remove()
        forward(mods[1])()
        log.append(dict(counter))
        test2_fwd.remove()
        forward(mods[2])()
        log.append(dict(counter))
        test_fwd.remove()
        test_bwd.remove()
        return log

    assert run(JMOD) == run(TORCH)
    assert run(JMOD)[-1] == {"forwards": 22, "backwards": 9}


@pytest.mark.parametrize("register", ["module", "global"])
def test_backward_hook_wrong_number_of_grads_raises(register):
    """torch's test_hook_invalid_outputs / test_module_global_hook_invalid_outputs."""

    def run(L, fn, pre):
        module = sigmoid(L)
        if register == "global":
            reg = (
                L.module_mod.register_module_full_backward_pre_hook
                if pre
                else L.module_mod.register_module_full_backward_hook
            )
        else:
            reg = module.register_full_backward_pre_hook if pre else module.register_full_backward_hook
        x = x10(L)
        with reg(fn):
            return outcome(lambda: sum_backward(L, module, x))

    cases = [
        (lambda m, gi, go: gi[:-1], False, "got 0, but expected 1"),
        (lambda m, gi, go: gi + (gi[0],), False, "got 2, but expected 1"),
        (lambda m, go: (), True, "got 0, but expected 1"),
        (lambda m, go: go + (go[0],), True, "got 2, but expected 1"),
    ]
    for fn, pre, msg in cases:
        t, j = run(TORCH, fn, pre), run(JMOD, fn, pre)
        assert t[:2] == j[:2] == ("raise", "RuntimeError")
        assert msg in t[2] and msg in j[2]
        assert j[2] == t[2]


def test_hook_removable_inside_the_hook():
    """torch's test_module_forward_preforward_hook_removable / forward_hook_removable."""

    def run(L, kind):
        module = sigmoid(L)
        handles = {}

        def make(n):
            def hook(m, *args):
                handles[n].remove()
                return args[-1] if kind == "forward" else args[0]

            return hook

        reg = module.register_forward_hook if kind == "forward" else module.register_forward_pre_hook
        handles[1] = reg(make(1))
        handles[2] = reg(make(2))
        sizes = [len(handles[1].hooks_dict_ref()), len(handles[2].hooks_dict_ref())]
        x = rng_array(2, 2)
        out = L.to_numpy(module(L.tensor(x)))
        expected = 1 / (1 + np.exp(-x))
        return (
            sizes,
            np.allclose(out, expected, atol=1e-6),
            len(handles[1].hooks_dict_ref()),
            handles[1].id in handles[1].hooks_dict_ref(),
        )

    for kind in ("forward", "pre"):
        assert run(JMOD, kind) == run(TORCH, kind) == ([2, 2], True, 0, False)


def test_global_hooks_survive_torch_style_reset():
    """torch's TestModuleGlobalHooks.tearDown rebinds the module-level dicts:
    ``nn.modules.module._global_forward_hooks = OrderedDict()``. Registration and
    calls must use the rebound dicts afterwards."""
    for L in LIBS:
        mm = L.module_mod
        saved = {
            n: getattr(mm, n) for n in ["_global_forward_hooks", "_global_forward_pre_hooks", "_global_backward_hooks"]
        }
        try:
            for n in saved:
                setattr(mm, n, OrderedDict())
            calls = []
            h1 = mm.register_module_forward_hook(lambda m, i, o: calls.append("fwd"))
            h2 = mm.register_module_forward_pre_hook(lambda m, i: calls.append("pre"))
            h3 = mm.register_module_full_backward_hook(lambda m, gi, go: calls.append("bw"))
            module = sigmoid(L)
            sum_backward(L, module, x10(L))
            assert calls == ["pre", "fwd", "bw"], (L, calls)
            assert len(mm._global_forward_hooks) == 1
            for h in (h1, h2, h3):
                h.remove()
            module(x10(L))
            assert calls == ["pre", "fwd", "bw"], (L, calls)
        finally:
            for n, d in saved.items():
                setattr(mm, n, d)


# -------------------------------------------------------------- RemovableHandle
def test_removable_handle_semantics():
    m = JMOD.nn.Linear(2, 2)
    calls = []
    h1 = m.register_forward_hook(lambda *a: calls.append(1))
    h2 = m.register_forward_pre_hook(lambda *a: calls.append(2))
    assert isinstance(h1, RemovableHandle) and h2.id > h1.id
    assert h1.hooks_dict_ref() is m._forward_hooks
    with m.register_forward_hook(lambda *a: calls.append(3)) as h3:
        assert h3.id in m._forward_hooks
        m(jnp.ones((1, 2)))
    assert h3.id not in m._forward_hooks
    m(jnp.ones((1, 2)))
    assert calls == [2, 1, 3, 2, 1]
    h1.remove()
    h1.remove()  # removing twice is fine
    h2.remove()
    m(jnp.ones((1, 2)))
    assert calls == [2, 1, 3, 2, 1]


def test_handle_ids_are_shared_with_torch_style_next_id():
    h = JMOD.nn.Identity().register_forward_hook(lambda *a: None)
    assert RemovableHandle.next_id == h.id + 1


@pytest.mark.parametrize("kind", ["forward", "forward_pre", "full_backward", "full_backward_pre", "state_dict_pre"])
def test_handle_does_not_keep_the_module_alive(kind):
    def run(L):
        gc.collect()
        gc.disable()
        try:
            m = L.nn.Linear(2, 2)
            h = getattr(m, f"register_{kind}_hook")(lambda *a: None)
            ref = weakref.ref(m)
            del m
            alive = ref() is not None
            h.remove()  # a dead module's hook: removing is a no-op
            h.remove()
            return alive
        finally:
            gc.enable()

    assert run(JMOD) == run(TORCH) is False


def test_no_extra_ref_to_module_from_load_pre_hook():
    """torch's TestStateDictHooks.test_no_extra_ref_to_module (with gc disabled)."""
    for L in LIBS:
        gc.collect()
        gc.disable()
        try:
            m = L.nn.Linear(10, 10)
            m._register_load_state_dict_pre_hook(_hook_to_pickle, True)
            weak_m = weakref.ref(m)
            del m
            assert weak_m() is None, L
        finally:
            gc.enable()


def test_with_kwargs_and_always_call_entries_removed_with_handle():
    def run(L):
        m = L.nn.Identity()
        h = m.register_forward_hook(lambda *a: None, with_kwargs=True, always_call=True)
        p = m.register_forward_pre_hook(lambda *a: None, with_kwargs=True)
        before = (
            len(m._forward_hooks_with_kwargs),
            len(m._forward_hooks_always_called),
            len(m._forward_pre_hooks_with_kwargs),
        )
        h.remove()
        p.remove()
        after = (
            len(m._forward_hooks_with_kwargs),
            len(m._forward_hooks_always_called),
            len(m._forward_pre_hooks_with_kwargs),
        )
        return before, after

    assert run(JMOD) == run(TORCH) == ((1, 1, 1), (0, 0, 0))


# ------------------------------------------------------------- state-dict hooks
def _hook_to_pickle(*args, **kwargs):
    pass


def test_load_state_dict_pre_hook_with_and_without_module():
    def run(L):
        m = L.nn.Linear(10, 10)
        sd = m.state_dict()
        m_load = L.nn.Linear(10, 10)
        calls = []

        def without_module(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):
            calls.append(("without", sorted(state_dict), prefix, strict))

        def with_module(module, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):
            calls.append(("with", module is m_load, sorted(state_dict)))

        m_load._register_load_state_dict_pre_hook(without_module)
        m_load.load_state_dict(sd)
        m_load._register_load_state_dict_pre_hook(with_module, True)
        m_load.load_state_dict(sd)
        m_load.register_load_state_dict_pre_hook(with_module)
        m_load.load_state_dict(sd)
        return calls

    assert run(JMOD) == run(TORCH)


def test_pickled_load_pre_hook():
    m = JMOD.nn.Linear(10, 10)
    m._register_load_state_dict_pre_hook(_hook_to_pickle, True)
    m2 = pickle.loads(pickle.dumps(m))
    hook = next(iter(m2._load_state_dict_pre_hooks.values()))
    assert hook.module() is m2
    m2.load_state_dict(m2.state_dict())


def test_load_state_dict_module_pre_hook_instance_methods():
    def run(L):
        calls = []

        class MyModule(L.nn.Module):
            def __init__(self):
                super().__init__()
                self.foo = L.Parameter(L.ones(10))

            def my_pre_load_hook(self, state_dict, prefix, local_metadata, strict, missing, unexpected, errors):
                assert [] == errors == unexpected == missing and strict
                calls.append(("plain", prefix))

            def my_pre_load_hook_with_module(self, module, state_dict, prefix, local_metadata, strict, *rest):
                assert self is module
                calls.append(("with_module", prefix))

        class MyModuleContainer(L.nn.Module):
            def __init__(self, mod):
                super().__init__()
                self.mod = mod

        for ctor in [MyModuleContainer, lambda x: x]:
            m = ctor(MyModule())
            sd = m.state_dict()
            mod = m.mod if isinstance(m, MyModuleContainer) else m
            mod._register_load_state_dict_pre_hook(mod.my_pre_load_hook)
            m.load_state_dict(sd)
            mod._register_load_state_dict_pre_hook(mod.my_pre_load_hook_with_module, True)
            m.load_state_dict(sd)
        return calls

    assert run(JMOD) == run(TORCH)


def test_load_state_dict_post_hook():
    def run(L):
        log = []

        class MyModule(L.nn.Module):
            def __init__(self):
                super().__init__()
                self.foo = L.Parameter(L.ones(10))

            def my_post_load_hook(self, module, incompatible_keys):
                assert module is self
                incompatible_keys.missing_keys.append("foo")
                incompatible_keys.unexpected_keys.append("bar")
                log.append("called")

        nested = MyModule()
        wrapped = L.nn.ModuleList([nested])
        handle = nested.register_load_state_dict_post_hook(nested.my_post_load_hook)
        ret = wrapped.load_state_dict(wrapped.state_dict(), strict=False)
        log.append((ret.missing_keys, ret.unexpected_keys))
        log.append(outcome(lambda: wrapped.load_state_dict(wrapped.state_dict(), strict=True)))
        handle.remove()
        ret = wrapped.load_state_dict(wrapped.state_dict(), strict=False)
        log.append((ret.missing_keys, ret.unexpected_keys))

        def clear(module, incompatible_keys):
            incompatible_keys.missing_keys.clear()
            incompatible_keys.unexpected_keys.clear()

        nested.register_load_state_dict_post_hook(clear)
        sd = wrapped.state_dict()
        sd["extra"] = L.ones(1)
        ret = wrapped.load_state_dict(sd, strict=True)  # the hook cleared the error away
        log.append((ret.missing_keys, ret.unexpected_keys, str(ret)))
        wrapped.register_load_state_dict_post_hook(lambda m, inc: 5)
        log.append(outcome(lambda: wrapped.load_state_dict(wrapped.state_dict())))
        return log

    t, j = run(TORCH), run(JMOD)
    assert j == t
    assert t[:3] == ["called", (["foo"], ["bar"]), "called"]
    assert t[3][:2] == ("raise", "RuntimeError") and "foo" in t[3][2] and "bar" in t[3][2]
    assert t[-1][:2] == ("raise", "AssertionError")


@pytest.mark.parametrize(
    "attr", ["_load_state_dict_post_hooks", "_state_dict_pre_hooks", "_forward_hooks_always_called"]
)
def test_hook_dicts_restored_for_old_pickles(attr):
    """torch's *_backward_compatibility tests: an old pickle without the attribute."""

    def run(L):
        m = L.nn.Linear(2, 2)
        sd = copy.deepcopy(m.state_dict())
        delattr(m, attr)
        m = pickle.loads(pickle.dumps(m))
        called = []
        m.load_state_dict(sd)
        m.state_dict()
        m(L.ones(1, 2))
        m.register_load_state_dict_post_hook(lambda mod, inc: called.append("post"))
        m.register_state_dict_pre_hook(lambda mod, prefix, keep_vars: called.append("pre"))
        m.register_forward_hook(lambda *a: called.append("fwd"), always_call=True)
        m.load_state_dict(sd)
        m.state_dict()
        m(L.ones(1, 2))
        return hasattr(m, attr), called

    assert run(JMOD) == run(TORCH) == (True, ["post", "pre", "fwd"])


def test_state_dict_pre_and_post_hooks():
    def run(L):
        calls = []
        m = L.nn.Sequential(L.nn.Linear(2, 2), L.nn.Sequential(L.nn.Linear(2, 2)))
        for name, mod in m.named_modules():
            mod.register_state_dict_pre_hook(
                lambda mod, prefix, keep_vars, n=name: calls.append(("pre", n, prefix, keep_vars))
            )

            def post(mod, state_dict, prefix, local_metadata, n=name):
                calls.append(("post", n, prefix, sorted(state_dict), dict(local_metadata)))
                state_dict[prefix + "added"] = 1

            mod.register_state_dict_post_hook(post)
        sd = m.state_dict(prefix="root.", keep_vars=True)
        return calls, list(sd)

    assert run(JMOD) == run(TORCH)


def test_state_dict_post_hook_errors_and_private_hook_replacing_the_dict():
    def run(L):
        out = []
        m = L.nn.Linear(2, 2)

        def returns(mod, sd, prefix, meta):
            return {"x": 1}

        h = m.register_state_dict_post_hook(returns)
        out.append(outcome(lambda: m.state_dict()))
        h.remove()
        out.append(outcome(lambda: m._register_state_dict_hook(returns)))  # same function, already public
        m2 = L.nn.Sequential(L.nn.Linear(2, 2))
        m2._register_state_dict_hook(lambda mod, sd, prefix, meta: OrderedDict(replaced=1))
        m2[0]._register_state_dict_hook(lambda mod, sd, prefix, meta: OrderedDict(ignored=1))
        out.append(list(m2.state_dict()))  # only the root's returned dict is used
        return out

    assert run(JMOD) == run(TORCH)
    assert run(JMOD)[0][2] == "state_dict post-hook must return None"


# ---------------------------------------------------------- registration hooks
@pytest.mark.parametrize("kind", ["buffer", "module", "parameter"])
@pytest.mark.parametrize("replace", [False, True])
def test_global_registration_hooks(kind, replace):
    """torch's test_hook_buffer/submodule/parameter_registration, recording calls (jax
    arrays take no attributes), and a hook's return value replaces what is registered."""

    def run(L):
        from tests.nn.modules.test_module import basic_net

        calls = []

        def hook(module, name, value):
            calls.append(
                (
                    type(module).__name__,
                    name,
                    None if value is None else type(value).__name__ in ("Linear", "Layer", "Net", "Sequential"),
                )
            )
            if replace and kind == "buffer" and value is not None:
                return value * 0 + 7
            if replace and kind == "parameter" and value is not None:
                return L.Parameter(L.zeros(*value.shape) + 7)
            if replace and kind == "module":
                return value
            return None

        reg = getattr(L.module_mod, f"register_module_{kind}_registration_hook")
        with reg(hook):
            layer, net, seq = basic_net(L)
            net.register_buffer("none_buf", None)
            net.extra = L.nn.Linear(1, 1)
            net.dummy_buf = net.dummy_buf * 2  # re-assigning a buffer registers it again
            net.none_mod = None
        values = sorted(
            {
                round(float(L.to_numpy(v).ravel()[0]), 3)
                for k, v in [*seq.named_parameters(), *seq.named_buffers()]
                if not k.startswith("0.extra.")  # Linear's random init differs between the libraries
            }
        )
        return calls, values

    assert run(JMOD) == run(TORCH)


# --------------------------------------------------------------- backward hooks
def backward_probe(L):
    """A module with two positional array inputs, a positional float, a keyword array,
    two outputs, and parameters."""

    class Probe(L.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = L.nn.Linear(3, 3)

        def forward(self, a, b, scale, flag=None, *, bias=None):
            h = self.lin(a) * b
            if bias is not None:
                h = h + bias
            return h * scale, (a * b).sum(-1), "not an array"

    return Probe()


def probe_inputs():
    rng = np.random.default_rng(1)
    a, b, bias = (rng.standard_normal(s).astype(np.float32) for s in [(2, 3), (2, 3), (3,)])
    c0, c1 = rng.standard_normal((2, 3)).astype(np.float32), rng.standard_normal(2).astype(np.float32)
    return a, b, bias, c0, c1


def make_hooks(L, log, *, replace=False, host=False):
    """Record every hook call; with ``replace`` the pre-hook doubles grad_output[0] and
    the full hook triples grad_input[0] (as torch's writeable tests)."""

    def pre(mod, grad_output):
        log.append(("pre", [np_or_none(g) for g in grad_output]))
        if replace and not host:
            return (grad_output[0] * 2, *grad_output[1:])
        return None

    def full(mod, grad_input, grad_output):
        log.append(("full", [np_or_none(g) for g in grad_input], [np_or_none(g) for g in grad_output]))
        if replace and not host:
            return (grad_input[0] * 3, *grad_input[1:])
        return None

    return pre, full


def torch_probe_run(model, replace=False, frozen_input=False):
    a, b, bias, c0, c1 = probe_inputs()
    log = []
    pre, full = make_hooks(TORCH, log, replace=replace)
    model.register_full_backward_pre_hook(pre)
    model.register_full_backward_hook(full)
    ta = torch.tensor(a, requires_grad=not frozen_input)
    tb = torch.tensor(b, requires_grad=not frozen_input)
    tbias = torch.tensor(bias, requires_grad=not frozen_input)
    out0, out1, _ = model(ta, tb, 1.5, None, bias=tbias)
    ((out0 * torch.tensor(c0)).sum() + (out1 * torch.tensor(c1)).sum()).backward()
    grads = {
        "a": np_or_none(ta.grad),
        "b": np_or_none(tb.grad),
        "bias": np_or_none(tbias.grad),
        **{k: np_or_none(p.grad) for k, p in model.named_parameters()},
    }
    return log, grads


def jmod_loss(model, params, a, b, bias):
    _, _, _, c0, c1 = probe_inputs()
    out0, out1, _ = functional_call(model, params, (a, b, 1.5, None), {"bias": bias})
    return (out0 * c0).sum() + (out1 * c1).sum()


def jmod_probe_run(model, replace=False, frozen_input=False, jit=False, host=False):
    a, b, bias, *_ = (jnp.asarray(v) for v in probe_inputs())
    log = []
    pre, full = make_hooks(JMOD, log, replace=replace, host=host)
    model.register_full_backward_pre_hook(pre, host=host)
    model.register_full_backward_hook(full, host=host)
    params = dict(model.named_parameters())
    argnums = (0,) if frozen_input else (0, 1, 2, 3)
    grad_fn = jax.grad(partial(jmod_loss, model), argnums=argnums)
    if jit:
        grad_fn = jax.jit(grad_fn)
    res = grad_fn(params, a, b, bias)
    if jit and host:
        jax.effects_barrier()
    g_params = res[0]
    grads = (
        {"a": None, "b": None, "bias": None}
        if frozen_input
        else {"a": np.asarray(res[1]), "b": np.asarray(res[2]), "bias": np.asarray(res[3])}
    )
    grads.update({k: np.asarray(v) for k, v in g_params.items()})
    return log, grads


def compare_logs(jlog, tlog):
    assert [e[0] for e in jlog] == [e[0] for e in tlog]
    for je, te in zip(jlog, tlog):
        for ja, ta in zip(je[1:], te[1:]):
            assert_grads_close(ja, ta, je[0])


def compare_grads(jg, tg):
    assert sorted(jg) == sorted(tg)
    for k in tg:
        if tg[k] is None:
            assert jg[k] is None, k
        else:
            np.testing.assert_allclose(jg[k], tg[k], atol=1e-5, rtol=1e-5, err_msg=k)


# host=True hooks only observe (their result is ignored): replacement under jit is
# test_backward_hook_replacement_under_jit_matches_torch.
@pytest.mark.parametrize("mode,replace", [("eager", False), ("eager", True), ("jit_host", False)])
def test_backward_hooks_values_match_torch(mode, replace):
    t_model, j_model = twin_models(backward_probe)
    tlog, tgrads = torch_probe_run(t_model, replace=replace)
    jlog, jgrads = jmod_probe_run(j_model, replace=replace, jit=mode == "jit_host", host=mode == "jit_host")
    compare_logs(jlog, tlog)
    compare_grads(jgrads, tgrads)
    # grad_input: entries for a, b (arrays) and None for the float and the None flag
    assert [g is None for g in tlog[-1][1]] == [False, False, True, True]
    assert [g is None for g in tlog[-1][2]] == [False, False, True]


def test_backward_hook_replacement_under_jit_matches_torch():
    """Under ``jax.jit(jax.grad(...))`` a hook runs once, at trace time, and its
    returned gradients are compiled in: the results still match torch's."""
    t_model, j_model = twin_models(backward_probe)
    _, tgrads = torch_probe_run(t_model, replace=True)
    jlog, jgrads = jmod_probe_run(j_model, replace=True, jit=True)
    compare_grads(jgrads, tgrads)
    assert [e[0] for e in jlog] == ["pre", "full"]  # traced once


def test_backward_hooks_fire_at_output_when_no_input_needs_grad():
    """torch's test_hook_no_requires_grad: only parameters need gradients, so the full
    hook fires with grad_output and all-None grad_input, with torch's warning."""
    t_model, j_model = twin_models(backward_probe)
    with pytest.warns(UserWarning, match=FULL_HOOK_WARNING):
        tlog, tgrads = torch_probe_run(t_model, frozen_input=True)
    with pytest.warns(UserWarning, match=FULL_HOOK_WARNING):
        jlog, jgrads = jmod_probe_run(j_model, frozen_input=True)
    compare_logs(jlog, tlog)
    compare_grads(jgrads, tgrads)
    assert tlog[-1][1] == [None, None, None, None]


def test_backward_hook_with_no_input_grad_may_only_return_nones():
    def run(L, ret):
        mod = L.nn.Linear(2, 3)
        if L is JMOD and list(mod.state_dict()):
            pass
        inp = rng_array(1, 2)
        called = []

        def hook(m, grad_input, grad_output):
            called.append([None if g is None else tuple(g.shape) for g in grad_input + grad_output])
            return {"none": None, "grad_input": grad_input, "invalid": (grad_output[0],)}[ret]

        mod.register_full_backward_hook(hook)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            if L is TORCH:
                res = outcome(lambda: mod(torch.tensor(inp)).sum().backward())
            else:
                res = outcome(lambda: jmod.grad(lambda m: m(jnp.asarray(inp)).sum())(mod) and None)
        return res, called

    for ret in ("none", "grad_input", "invalid"):
        t, j = run(TORCH, ret), run(JMOD, ret)
        assert j == t, ret
    assert run(JMOD, "invalid")[0][2] == (
        "Backward hook for Modules where no input requires gradient should always return None or None for all gradients."
    )


def test_backward_hooks_not_fired_when_nothing_needs_grad():
    for L in LIBS:
        mod = L.nn.Linear(2, 3)
        fired = []
        mod.register_full_backward_hook(lambda *a: fired.append("full"))
        mod.register_full_backward_pre_hook(lambda *a: fired.append("pre"))
        x = L.ones(1, 2)
        if L is TORCH:
            mod.requires_grad_(False)
            mod(x)
            y = torch.ones(1, requires_grad=True)
            (mod(x).sum() + y.sum()).backward()
        else:
            mod(x)
            jax.grad(lambda y: mod(x).sum() + y.sum())(jnp.ones(1))
        assert fired == [], L


def test_backward_hook_non_array_input_and_output():
    """torch's test_hook_extra_input: forward(non_tensor, tensor) -> (tensor, non_tensor)."""

    def run(L):
        class MyModule(L.nn.Module):
            def forward(self, non_tensor, tensor):
                return tensor * 1, non_tensor

        seen = []

        def hook(mod, grad_input, grad_output):
            seen.append(([g is None for g in grad_input], [g is None for g in grad_output]))

        mod = MyModule()
        mod.register_full_backward_hook(hook)
        x = rng_array(2)
        if L is TORCH:
            inp = torch.tensor(x, requires_grad=True)
            out, _ = mod(True, inp)
            out.sum().backward()
        else:
            jax.grad(lambda v: mod(True, v)[0].sum())(jnp.asarray(x))
        return seen

    assert run(JMOD) == run(TORCH) == [([True, False], [False, True])]


def test_backward_hook_sizes():
    """torch's test_hook_backward_size."""

    def run(L):
        class MyModule(L.nn.Module):
            def forward(self, arg1, arg2):
                tmp = arg1.sum() * arg2
                tmp = tmp + arg2.sum() * arg1.sum()
                tmp = tmp.sum().reshape(1)
                return (tmp.expand(8) if L is TORCH else jnp.broadcast_to(tmp, (8,))) * 1

        seen = []
        mod = MyModule()
        mod.register_full_backward_hook(
            lambda m, gi, go: seen.append(([tuple(g.shape) for g in gi], [tuple(g.shape) for g in go]))
        )
        a, b = rng_array(5, 5), rng_array(10, 10, seed=1)
        if L is TORCH:
            mod(torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)).sum().backward()
        else:
            jax.grad(lambda x, y: mod(x, y).sum(), argnums=(0, 1))(jnp.asarray(a), jnp.asarray(b))
        return seen

    assert run(JMOD) == run(TORCH) == [([(5, 5), (10, 10)], [(8,)])]


def test_backward_hook_one_input_differentiated():
    """torch's test_hook_requires_grad / test_hook_last_arg_requires_grad: an input that
    needs no gradient gets None in grad_input."""

    def run(L, which):
        class MyModule(L.nn.Module):
            def forward(self, arg1, arg2, arg3):
                return arg1.sum() + arg2.sum() * 2 + arg3.sum()

        seen = []
        mod = MyModule()
        mod.register_full_backward_hook(lambda m, gi, go: seen.append([np_or_none(g) for g in gi]))
        x = rng_array(2)
        if L is TORCH:
            args = [torch.tensor(x, requires_grad=(i == which)) for i in range(3)]
            mod(*args).backward()
        else:
            args = [jnp.asarray(x) for _ in range(3)]

            def f(v):
                a = list(args)
                a[which] = v
                return mod(*a)

            jax.grad(f)(args[which])
        return seen

    for which in range(3):
        t, j = run(TORCH, which), run(JMOD, which)
        assert len(t) == len(j) == 1
        assert_grads_close(j[0], t[0])


def nested_order_model(L):
    class Inner(L.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = L.nn.Linear(3, 3)

        def forward(self, x):
            return self.lin(x) * 2

    class Outer(L.nn.Module):
        def __init__(self):
            super().__init__()
            self.first = Inner()
            self.second = Inner()

        def forward(self, x):
            return self.second(self.first(x))

    return Outer()


@pytest.mark.parametrize("jit", [False, True])
def test_backward_hook_order_across_nested_modules(jit):
    t_model, j_model = twin_models(nested_order_model)

    def install(model, log, host=False):
        for name, mod in model.named_modules():
            kw = {"host": True} if host else {}
            mod.register_full_backward_pre_hook(
                lambda m, go, n=name: log.append(("pre", n or "root", np_or_none(go[0]))), **kw
            )
            mod.register_full_backward_hook(
                lambda m, gi, go, n=name: log.append(("full", n or "root", np_or_none(gi[0]))), **kw
            )

    tlog, jlog = [], []
    install(t_model, tlog)
    install(j_model, jlog, host=jit)
    x = rng_array(2, 3)
    tx = torch.tensor(x, requires_grad=True)
    t_model(tx).sum().backward()
    g = jax.grad(lambda v: j_model(v).sum())
    if jit:
        g = jax.jit(g)
    gx = g(jnp.asarray(x))
    jax.effects_barrier()
    assert [e[:2] for e in jlog] == [e[:2] for e in tlog]
    for je, te in zip(jlog, tlog):
        np.testing.assert_allclose(je[2], te[2], atol=1e-5, err_msg=str(je[:2]))
    np.testing.assert_allclose(np.asarray(gx), tx.grad.numpy(), atol=1e-5)


def test_backward_hooks_on_a_module_called_twice():
    t_model, j_model = twin_models(lambda L: L.nn.Linear(3, 3))

    def install(model, log):
        model.register_full_backward_hook(lambda m, gi, go: log.append((np_or_none(gi[0]), np_or_none(go[0]))))

    tlog, jlog = [], []
    install(t_model, tlog)
    install(j_model, jlog)
    x = rng_array(1, 3)
    tx = torch.tensor(x, requires_grad=True)
    (t_model(t_model(tx)) * 3).sum().backward()
    gx = jax.grad(lambda v: (j_model(j_model(v)) * 3).sum())(jnp.asarray(x))
    assert len(jlog) == len(tlog) == 2
    for (ja, jb), (ta, tb) in zip(jlog, tlog):
        np.testing.assert_allclose(ja, ta, atol=1e-5)
        np.testing.assert_allclose(jb, tb, atol=1e-5)
    np.testing.assert_allclose(np.asarray(gx), tx.grad.numpy(), atol=1e-5)


def test_backward_pre_hook_result_reaches_full_hook():
    """torch's test_backward_hooks_interaction."""

    def run(L):
        module = sigmoid(L)
        cnt = []

        def bw_pre_hook(m, grad_output):
            cnt.append("pre")
            return (grad_output[0] * 0.5,)

        def bw_hook(m, grad_in, grad_output):
            np.testing.assert_allclose(np.asarray(L.to_numpy(grad_output[0])), np.full((1, 2), 0.5))
            cnt.append("full")
            return grad_output

        module.register_full_backward_pre_hook(bw_pre_hook)
        module.register_full_backward_hook(bw_hook)
        ones = np.ones((1, 2), np.float32)
        if L is TORCH:
            t = torch.tensor(ones, requires_grad=True)
            module(t).sum().backward()
            return cnt, t.grad.numpy()
        return cnt, np.asarray(jax.grad(lambda v: module(v).sum())(jnp.asarray(ones)))

    t, j = run(TORCH), run(JMOD)
    assert j[0] == t[0] == ["pre", "full"]
    np.testing.assert_allclose(j[1], t[1], atol=1e-6)


@pytest.mark.parametrize(
    "register", ["register_backward_hook", "register_full_backward_hook", "register_full_backward_pre_hook"]
)
def test_hooks_counting(register):
    """torch's TestModuleHookNN._test_hooks (vjp applied twice = retain_graph)."""

    def run(L):
        module = sigmoid(L)
        ones = np.ones((5, 5), np.float32)
        x = torch.tensor(ones, requires_grad=True) if L is TORCH else jnp.asarray(ones)
        g = L.tensor(ones * 2)
        counter = {"forwards": 0, "backwards": 0}
        log = []

        def fw_hook(inc, h_module, inp, out):
            assert h_module is module
            counter["forwards"] += inc

        def bw_hook(inc, h_module, *grads):
            assert h_module is module
            np.testing.assert_allclose(np.asarray(L.to_numpy(grads[-1][0])), np.full((5, 5), 2.0))
            counter["backwards"] += inc

        def reg_bw(fn):
            if L is JMOD and register == "register_backward_hook":
                with pytest.warns(FutureWarning):
                    return getattr(module, register)(fn)
            return getattr(module, register)(fn)

        def call():
            if L is TORCH:
                out = module(x)
                return lambda: out.backward(g, retain_graph=True)
            _, vjp = jax.vjp(module, x)
            return lambda: vjp(g)

        test_fwd = module.register_forward_hook(lambda *a: fw_hook(1, *a))
        module(x)
        module(x)
        log.append(dict(counter))
        test_bwd = reg_bw(lambda *a: bw_hook(1, *a))
        back = call()
        log.append(dict(counter))
        back()
        back()
        log.append(dict(counter))
        test2_fwd = module.register_forward_hook(lambda *a: fw_hook(2, *a))
        call()
        log.append(dict(counter))
        test2_bwd = reg_bw(lambda *a: bw_hook(2, *a))
        call()()
        log.append(dict(counter))
        test2_bwd.remove()
        call()()
        log.append(dict(counter))
        test2_fwd.remove()
        call()()
        log.append(dict(counter))
        test_fwd.remove()
        test_bwd.remove()
        return log

    j = run(JMOD)
    assert j == torch_quiet(run, TORCH)
    assert j[-1] == {"forwards": 13, "backwards": 7}


def test_backward_hook_writeable_doubles_input_grad():
    """torch's test_hook_backward_writeable and test_module_backward_global_hook_writeable."""

    def run(L, how):
        module = sigmoid(L)
        hook = lambda m, gi, go: tuple(g * 2 for g in gi)  # noqa: E731
        if how == "global":
            L.module_mod.register_module_full_backward_hook(hook)
        elif how == "deprecated":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                module.register_backward_hook(hook)
        else:
            module.register_full_backward_hook(hook)
        x = rng_array(5, 5)
        if L is TORCH:
            t = torch.tensor(x, requires_grad=True)
            module(t).backward(torch.ones(5, 5))
            return t.grad.numpy()
        return np.asarray(jax.vjp(module, jnp.asarray(x))[1](jnp.ones((5, 5)))[0])

    for how in ("module", "global", "deprecated"):
        np.testing.assert_allclose(run(JMOD, how), torch_quiet(run, TORCH, how), atol=1e-6)
        for mod in (TORCH.module_mod, JMOD.module_mod):
            mod._global_backward_hooks.clear()


def test_regular_and_full_backward_hooks_cannot_be_mixed():
    def run(L):
        out = []
        m = L.nn.Linear(1, 1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            m.register_backward_hook(lambda *a: None)
        out.append(outcome(lambda: m.register_full_backward_hook(lambda *a: None)))
        m2 = L.nn.Linear(1, 1)
        m2.register_full_backward_hook(lambda *a: None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            out.append(outcome(lambda: m2.register_backward_hook(lambda *a: None)))
        out.append(outcome(lambda: m2.register_full_backward_pre_hook(lambda *a: None) and None))
        h = L.module_mod.register_module_backward_hook(lambda *a: None)
        out.append(outcome(lambda: L.module_mod.register_module_full_backward_hook(lambda *a: None)))
        h.remove()
        # torch never resets the global flag, even once the hook is gone
        out.append(outcome(lambda: L.module_mod.register_module_full_backward_hook(lambda *a: None)))
        L.module_mod._global_is_full_backward_hook = None
        L.module_mod.register_module_full_backward_hook(lambda *a: None)
        out.append(outcome(lambda: L.module_mod.register_module_backward_hook(lambda *a: None)))
        return out

    t, j = run(TORCH), run(JMOD)
    assert j == t
    assert t[0][2] == (
        "Cannot use both regular backward hooks and full backward hooks on a single Module. Please use only one of them."
    )
    assert t[3][2] == (
        "Cannot use both regular backward hooks and full backward hooks as a global Module hook. "
        "Please use only one of them."
    )


def test_backward_hook_warning_for_non_array_output():
    """torch's test_bw_hook_warning_for_non_tensor_or_tuple: a dict output gets a warning
    and the backward hooks never fire."""

    def run(L):
        counter = {"forward": 0, "backward": 0}

        class TestModule(L.nn.Module):
            def forward(self, d):
                inp = d["x"]
                return {"x": torch.softmax(inp, dim=0) if L is TORCH else jax.nn.softmax(inp, axis=0)}

        model = TestModule()
        model.register_forward_pre_hook(lambda m, i: counter.__setitem__("forward", counter["forward"] + 1))
        model.register_forward_hook(lambda m, i, o: counter.__setitem__("forward", counter["forward"] + 1))
        bw = lambda m, *a: counter.__setitem__("backward", counter["backward"] + 1)  # noqa: E731
        model.register_full_backward_pre_hook(bw)
        model.register_full_backward_hook(bw)
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            if L is TORCH:
                x = torch.ones(2, requires_grad=True)
                model({"x": x})["x"].sum().backward()
            else:
                jax.grad(lambda v: model({"x": v})["x"].sum())(jnp.ones(2))
        return counter, [str(m.message) for m in w]

    t, j = run(TORCH), run(JMOD)
    assert j[0] == t[0] == {"forward": 2, "backward": 0}
    assert len(j[1]) == len(t[1]) == 1
    assert "should be a Tensor or a tuple of Tensors" in t[1][0]
    assert "should be a Tensor or a tuple of Tensors" in j[1][0]


def test_deprecated_backward_hook_gets_full_hook_arguments():
    """jmod's documented difference: ``register_backward_hook`` warns FutureWarning and
    runs with the full-hook arguments (torch's grad_fn-based arguments differ for
    multi-op forwards)."""
    m = backward_probe(JMOD)
    seen = []
    with pytest.warns(FutureWarning, match="register_backward_hook is deprecated"):
        m.register_backward_hook(lambda mod, gi, go: seen.append((len(gi), len(go))))
    a, b, bias, *_ = (jnp.asarray(v) for v in probe_inputs())
    jax.grad(lambda x: m(x, b, 1.0, bias=bias)[0].sum())(a)
    assert seen == [(3, 3)]


def test_backward_hook_with_jmod_grad_and_jmod_jit():
    """The same hooks fire under jmod.grad and inside jmod.jit (traced once)."""
    t_model, j_model = twin_models(backward_probe)
    tlog, tgrads = torch_probe_run(t_model, replace=True)
    log = []
    pre, full = make_hooks(JMOD, log, replace=True)
    j_model.register_full_backward_pre_hook(pre)
    j_model.register_full_backward_hook(full)
    a, b, bias, c0, c1 = (jnp.asarray(v) for v in probe_inputs())

    def loss(m, a, b, bias):
        out0, out1, _ = m(a, b, 1.5, None, bias=bias)
        return (out0 * c0).sum() + (out1 * c1).sum()

    for step in (jmod.grad(loss, argnums=(0, 1, 2, 3)), jmod.jit(jmod.grad(loss, argnums=(0, 1, 2, 3)))):
        del log[:]
        g_params, ga, gb, gbias = step(j_model, a, b, bias)
        assert [e[0] for e in log] == ["pre", "full"]
        jgrads = {"a": np.asarray(ga), "b": np.asarray(gb), "bias": np.asarray(gbias)}
        jgrads.update({k: np.asarray(v) for k, v in g_params.items()})
        compare_grads(jgrads, tgrads)


def test_backward_hooks_keep_a_namedtuple_output():
    """torch rebuilds a tuple subclass output (``type(args)(*arg_list)``) after wrapping it."""
    from collections import namedtuple

    Out = namedtuple("Out", ["value", "aux"])

    def run(L):
        class M(L.nn.Module):
            def forward(self, x):
                return Out(x * 2, x.sum())

        m = M()
        seen = []
        m.register_full_backward_hook(lambda mod, gi, go: seen.append([g is None for g in go]))
        x = rng_array(3)
        if L is TORCH:
            out = m(torch.tensor(x, requires_grad=True))
            out.value.sum().backward()
        else:
            holder = []

            def f(v):
                out = m(v)
                holder.append(type(out).__name__)
                return out.value.sum()

            jax.grad(f)(jnp.asarray(x))
            out = holder
        return type(out).__name__ if L is TORCH else out[0], seen

    assert run(JMOD) == run(TORCH) == ("Out", [[False, True]])


def test_rebinding_global_hooks_retraces_compiled_code():
    """After a torch-style ``_global_forward_hooks = OrderedDict()`` compiled calls must
    not keep running the hooks they were traced with."""
    import jmod.nn.modules.module as mm

    m = JMOD.nn.Linear(2, 2)
    step = jmod.jit(lambda mod, x: mod(x))
    x = jnp.ones((1, 2))
    saved = mm._global_forward_hooks
    try:
        mm.register_module_forward_hook(lambda mod, i, o: o * 0)
        np.testing.assert_array_equal(step(m, x), np.zeros((1, 2)))
        mm._global_forward_hooks = OrderedDict()
        np.testing.assert_allclose(step(m, x), m(x), atol=1e-6)
        assert not np.allclose(np.asarray(m(x)), 0)
    finally:
        mm._global_forward_hooks = saved


def _pickle_hook(module, args, output):
    return output


def test_handle_pickled_with_its_module_still_removes_the_hook():
    def run(L):
        m = L.nn.Linear(2, 2)
        h = m.register_forward_hook(_pickle_hook, with_kwargs=False, always_call=True)
        m2, h2 = pickle.loads(pickle.dumps((m, h)))
        before = (len(m2._forward_hooks), len(m2._forward_hooks_always_called), h2.id == h.id)
        h2.remove()
        return before, len(m2._forward_hooks), len(m2._forward_hooks_always_called), len(m._forward_hooks)

    assert run(JMOD) == run(TORCH) == ((1, 1, True), 0, 0, 1)


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "jmod.jit"])
def test_input_that_needs_no_gradient_stays_so_inside_a_hooked_module(compiled):
    """A block's input that needs no gradient (``y``) must not come out of the block's
    backward-hook wrapper needing one: the inner modules that use it fire their full
    backward hooks with ``grad_input`` None (torch's BackwardHookFunction marks it
    non-differentiable), and the order and values match torch's."""

    def build(lib, log):
        class Block(lib.Module):
            def __init__(self):
                super().__init__()
                self.a, self.b = lib.Linear(3, 3), lib.Linear(3, 3)

            def forward(self, x, y):
                return self.a(x) * self.b(y), self.a(y)

        m = Block()
        for name, mod in [("blk", m), ("a", m.a), ("b", m.b)]:

            def summary(gs):
                return tuple(None if g is None else round(float(g.sum()), 4) for g in gs)

            # jmod, compiled: host=True so that the hooks see concrete gradients
            host = {"host": True} if compiled and lib is jmod.nn else {}
            mod.register_full_backward_pre_hook(
                lambda md, go, name=name: log.append(("bpre", name, summary(go))), **host
            )
            mod.register_full_backward_hook(
                lambda md, gi, go, name=name: log.append(("bwd", name, summary(gi))), **host
            )
        return m

    t_log, j_log = [], []
    torch.manual_seed(0)
    tm, jm = build(torch.nn, t_log), build(jmod.nn, j_log)
    jm.load_state_dict(tm.state_dict())
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    y = x[::-1].copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # both warn that a's and b's hooks fire at the output
        o1, o2 = tm(torch.tensor(x, requires_grad=True), torch.tensor(y))
        (o1.sum() * 2 + o2.sum()).backward()

        def loss(m, x, y):
            o1, o2 = m(x, y)
            return o1.sum() * 2 + o2.sum()

        grad = jmod.grad(loss, argnums=(0, 1))
        if compiled:
            grad = jmod.jit(grad)
        grad(jm, jnp.asarray(x), jnp.asarray(y))
    assert j_log == t_log
    assert ("bwd", "b", (None,)) in j_log
