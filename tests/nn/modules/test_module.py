"""Core ``Module`` semantics, checked side by side against ``torch.nn.Module``.

Each test builds the same model with torch and with jmod (see ``_compare.py``), does
the same operations and compares names, orders, reprs, return values and errors
(type and message). Where jmod differs by design (arrays instead of tensors,
assigning an array to a parameter name replaces its value, ``zero_grad`` is a
no-op, ...) the test checks jmod's documented behaviour and says so.
"""

from __future__ import annotations

import copy
import pickle
import re
import warnings
from collections import OrderedDict

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import jmod
from jmod import nn
from jmod.nn.parameter import requires_grad
from tests.nn.modules._compare import (
    JMOD,
    LIBS,
    TORCH,
    assert_same_error_prefix,
    assert_same_outcome,
    both,
    names,
    np_state,
    outcome,
    rng_array,
    torch_to_jmod_text,
    tree_names,
)

pytestmark = pytest.mark.torch


# --------------------------------------------------------------------------- models
def basic_net(L):
    """torch's ``_create_basic_net``: a layer, a net holding it, a Sequential(n, n)."""

    class Layer(L.nn.Module):
        def __init__(self):
            super().__init__()
            self.layer_dummy_param = L.Parameter(L.zeros(3, 5))
            self.register_buffer("layer_dummy_buf", L.zeros(1, 3, 3, 7))

    class Net(L.nn.Module):
        def __init__(self):
            super().__init__()
            self.l1 = Layer()
            self.dummy_param = L.Parameter(L.zeros(3, 5))
            self.register_buffer("dummy_buf", L.zeros(7, 3, 3, 1))

    layer = Layer()
    net = Net()
    seq = L.nn.Sequential(net, net)
    return layer, net, seq


def shared_net(L):
    """Shared submodule, tied parameter, None entries, non-persistent buffer, nesting."""

    class Block(L.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear1 = L.nn.Linear(2, 3)
            self.linear2 = L.nn.Linear(3, 2, bias=False)
            self.register_buffer("count", L.zeros(1, dtype="int32"))
            self.register_buffer("scratch", L.zeros(2), persistent=False)
            self.register_buffer("absent", None)
            self.register_parameter("gone", None)

        def forward(self, x):
            return self.linear2(self.linear1(x))

    class Net(L.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = L.nn.Linear(2, 2)
            self.block = Block()
            self.again = self.block  # the same submodule under a second name
            self.head = L.nn.Linear(2, 2)
            self.head.weight = self.embed.weight  # tied weight
            self.empty = None
            self.seq = L.nn.Sequential(L.nn.Linear(2, 2), self.block)
            self.scale = L.Parameter(L.ones(1))

    return Net()


# ------------------------------------------------------------- registration rules
REGISTER = {
    "register_buffer": lambda L, m, name: m.register_buffer(name, L.zeros(1)),
    "register_parameter": lambda L, m, name: m.register_parameter(name, L.Parameter(L.zeros(1))),
    "add_module": lambda L, m, name: m.add_module(name, L.nn.Module()),
    "register_module": lambda L, m, name: m.register_module(name, L.nn.Module()),
}


@pytest.mark.parametrize("method", list(REGISTER))
@pytest.mark.parametrize("bad_name", [1, None, 2.5, "a.b", "", "existing"])
def test_registration_name_errors_match_torch(method, bad_name):
    def attempt(L):
        m = L.nn.Module()
        m.existing = 5
        return REGISTER[method](L, m, bad_name)

    t = assert_same_outcome(lambda: attempt(TORCH), lambda: attempt(JMOD))
    assert t[0] == "raise"


@pytest.mark.parametrize("method", list(REGISTER))
@pytest.mark.parametrize("kind", ["parameter", "buffer", "module"])
def test_registration_over_other_kind_raises_key_error(method, kind):
    """A name already used by another kind (torch's ``_raises_error_if_attr_exists``)."""

    def attempt(L):
        m = L.nn.Module()
        if kind == "parameter":
            m.register_parameter("x", L.Parameter(L.zeros(1)))
        elif kind == "buffer":
            m.register_buffer("x", L.zeros(1))
        else:
            m.add_module("x", L.nn.Module())
        return REGISTER[method](L, m, "x")

    t = assert_same_outcome(lambda: attempt(TORCH), lambda: attempt(JMOD))
    same_kind = method.removeprefix("register_").removeprefix("add_") == kind
    assert (t[0] == "ok") == same_kind


def test_registration_before_init_raises_like_torch():
    def make(L, what):
        class M(L.nn.Module):
            def __init__(self):
                if what == "parameter":
                    self.p = L.Parameter(L.zeros(1))
                elif what == "buffer":
                    self.b = L.Buffer(L.zeros(1))
                elif what == "register_buffer":
                    self.register_buffer("b", L.zeros(1))
                elif what == "register_parameter":
                    self.register_parameter("p", L.Parameter(L.zeros(1)))
                elif what == "module":
                    self.m = L.nn.Module()
                super().__init__()

        return M()

    for what in ["parameter", "buffer", "register_buffer", "register_parameter", "module"]:
        t = assert_same_outcome(lambda: make(TORCH, what), lambda: make(JMOD, what))
        assert t[0] == "raise" and t[1] == "AttributeError", (what, t)


def test_plain_attribute_before_init_is_allowed():
    for L in LIBS:

        class M(L.nn.Module):
            def __init__(self):
                self.x = 3
                super().__init__()

        assert M().x == 3


def test_register_wrong_types():
    # The message tail names the library's own types; the part before it is torch's.
    assert_same_error_prefix(
        lambda: TORCH.nn.Module().register_buffer("b", 5),
        lambda: JMOD.nn.Module().register_buffer("b", 5),
        r"cannot assign 'int' object to buffer 'b' \(",
    )
    assert_same_error_prefix(
        lambda: TORCH.nn.Module().register_parameter("p", TORCH.zeros(1)),
        lambda: JMOD.nn.Module().register_parameter("p", JMOD.zeros(1)),
        r"cannot assign '[\w.]+' object to parameter 'p' \((torch|jmod)\.nn\.Parameter or None required\)",
    )
    assert_same_outcome(
        lambda: TORCH.nn.Module().add_module("m", 3),
        lambda: JMOD.nn.Module().add_module("m", 3),
    )


def test_module_init_rejects_arguments_like_torch():
    for args, kwargs in [((3,), {}), ((), {"a": 3})]:
        assert_same_outcome(lambda: TORCH.nn.Module(*args, **kwargs), lambda: JMOD.nn.Module(*args, **kwargs))


def test_setattr_wrong_types_on_registered_names():
    def setup(L):
        m = L.nn.Module()
        m.lin = L.nn.Linear(1, 1)
        m.register_buffer("buf", L.zeros(1))
        return m

    assert_same_outcome(lambda: setattr(setup(TORCH), "lin", 5), lambda: setattr(setup(JMOD), "lin", 5), translate=True)
    assert_same_error_prefix(
        lambda: setattr(setup(TORCH).lin, "weight", 5),
        lambda: setattr(setup(JMOD).lin, "weight", 5),
        r"cannot assign 'int' as parameter 'weight' \(",
    )
    assert_same_error_prefix(
        lambda: setattr(setup(TORCH), "buf", 5),
        lambda: setattr(setup(JMOD), "buf", 5),
        r"cannot assign 'int' as buffer 'buf' \(",
    )


def test_assignment_routing_and_order():
    """torch's ``test_assignment``: None shadowing, order kept on replace, order on re-add."""

    def run(L, kind):
        m = L.nn.Module()
        if kind == "parameters":
            a, b, c = (L.Parameter(L.zeros(n)) for n in (2, 3, 4))
            get = lambda: names(m.named_parameters())  # noqa: E731
        else:
            a, b, c = tag(L, "4"), tag(L, "5"), tag(L, "6")
            get = lambda: names(m.named_children())  # noqa: E731
        log = []
        m.a = None
        log.append(("a None", m.a is None, "a" in m.__dict__, get()))
        m.a = a
        log.append(("a set", "a" in m.__dict__, get()))
        m.b = None
        m.b = b
        log.append(("b set", "b" in m.__dict__, get()))
        m.a = None
        log.append(("a None again", m.a is None, get()))
        m.a = a
        log.append(("a back", get()))
        m.a = c
        log.append(("a replaced", get()))
        del m.a
        log.append(("a deleted", hasattr(m, "a"), get()))
        m.a = a
        log.append(("a re-added", get()))
        del m.a, m.b
        log.append(("all deleted", get()))
        return log

    for kind in ("parameters", "children"):
        assert run(JMOD, kind) == run(TORCH, kind)


def test_buffer_assignment_routing():
    def run(L):
        m = L.nn.Module()
        log = []
        m.buf = L.Buffer(L.ones(3))
        log.append(tree_names(m))
        m.buf = None
        log.append((m.buf is None, "buf" in m.__dict__, tree_names(m)))
        m.buf = L.ones(3)  # still a buffer slot: a tensor/array is stored as the buffer
        log.append(tree_names(m))
        m.buf = L.Parameter(L.ones(3))  # a Parameter replaces the buffer
        log.append(tree_names(m))
        # a Buffer cannot replace a parameter (type error; jmod's message names its types)
        res = outcome(lambda: setattr(m, "buf", L.Buffer(L.ones(3), persistent=False)))
        log.append((res[:2], re.match(r"cannot assign '[\w.]+' as parameter 'buf' \(", res[2]) is not None))
        del m.buf
        m.buf = L.Buffer(L.ones(3), persistent=False)
        log.append(tree_names(m))
        m.plain = L.ones(3)  # an unregistered tensor/array is a plain attribute
        log.append(("plain" in m.__dict__, tree_names(m)))
        return log

    assert run(JMOD) == run(TORCH)


@pytest.mark.parametrize("first,then", [(False, True), (True, False), (False, None), (True, None)])
def test_buffer_persistence_transitions(first, then):
    """torch's ``test_buffer_not_persistent_*``: overwrite, assign None, then a tensor."""

    def run(L):
        m = L.nn.Module()
        m.buf = L.Buffer(L.ones(5), persistent=first)
        out = [(len(list(m.buffers())), len(m.state_dict()))]
        if then is None:
            m.buf = None
            out.append((len(list(m.buffers())), len(m.state_dict())))
            m.buf = L.ones(5)
        else:
            m.buf = L.Buffer(L.ones(5), persistent=then)
        out.append((len(list(m.buffers())), len(m.state_dict())))
        del m.buf
        out.append((len(list(m.buffers())), len(m.state_dict()), hasattr(m, "buf")))
        m.load_state_dict({})
        return out

    assert run(JMOD) == run(TORCH)


def test_register_buffer_overwrite_with_same_name():
    for L in LIBS:
        m = L.nn.Module()
        m.register_buffer("buffer_name", L.ones(5))
        m.register_buffer("buffer_name", L.zeros(5))
        np.testing.assert_array_equal(L.to_numpy(m.buffer_name), np.zeros(5))
        m.register_buffer("buffer_name", None)
        assert m.buffer_name is None
        assert names(m.named_buffers()) == []


def test_register_parameter_overwrite_with_same_name():
    for L in LIBS:
        m = L.nn.Module()
        m.register_parameter("p", L.Parameter(L.ones(5)))
        m.register_parameter("p", L.Parameter(L.zeros(5)))
        np.testing.assert_array_equal(L.to_numpy(m.p), np.zeros(5))
        m.register_parameter("p", None)
        assert m.p is None and names(m.named_parameters()) == [] and list(m.state_dict()) == []


def test_buffer_marker_survives_reassignment_to_another_name():
    """torch's ``test_buffers_and_named_buffers``: a tensor made by ``nn.Buffer`` stays a
    buffer marker, so ``self.buffer2 = self.buffer1`` registers a second buffer name."""

    def run(L):
        class M(L.nn.Module):
            def __init__(self):
                super().__init__()
                self.buffer1 = L.Buffer(L.zeros(3, 5))
                self.buffer2 = self.buffer1
                self.np1 = L.Buffer(L.zeros(2), persistent=False)
                self.np2 = self.np1

        m = M()
        return tree_names(m)

    assert run(JMOD) == run(TORCH)


def test_buffer_marks_a_new_array_not_its_argument():
    """torch's ``nn.Buffer(t)`` is a new (detached) tensor: ``t`` itself stays a plain
    tensor, and two ``Buffer(t)`` are two buffers."""

    def run(L):
        m = L.nn.Module()
        t = L.ones(3)
        m.a = L.Buffer(t)
        m.b = L.Buffer(t, persistent=False)
        m.plain = t
        return tree_names(m), "plain" in m.__dict__

    assert run(JMOD) == run(TORCH)


def test_plain_registered_buffer_read_back_is_a_plain_attribute():
    for L in LIBS:
        m = L.nn.Module()
        m.register_buffer("a", L.ones(2))
        m.b = m.a
        assert list(m.state_dict()) == ["a"] and "b" in m.__dict__


def test_buffer_subclass_with_register_buffer_without_persistent():
    """torch's ``test_buffer_bad_module_subclass``: ``__setattr__`` calls an overridden
    ``register_buffer`` without ``persistent`` when the override does not take it."""

    def run(L, persistent):
        class MyBadModule(L.nn.Linear):
            def __init__(self):
                super().__init__(2, 2)
                self.bar = L.Buffer(L.ones(2, 2), persistent=persistent)

            def register_buffer(self, name, value):
                super().register_buffer(name, value, True)

        return outcome(lambda: list(MyBadModule().state_dict()))

    assert run(JMOD, True) == run(TORCH, True) == ("ok", ["weight", "bias", "bar"])
    assert run(JMOD, False) == run(TORCH, False)
    assert run(JMOD, False)[0] == "raise"


def test_delattr():
    def run(L):
        m = shared_net(L)
        out = []
        for name in ["scale", "head", "again"]:
            delattr(m, name)
            out.append(tree_names(m))
        del m.block.count
        out.append(tree_names(m))
        m.plain = 3
        del m.plain
        out.append(outcome(lambda: m.plain))
        out.append(outcome(lambda: delattr(m, "nothing")))
        return out

    assert run(JMOD) == run(TORCH)


def test_getattr_error_and_property_error():
    def run(L):
        class Model(L.nn.Module):
            @property
            def some_property(self):
                return self.something_that_doesnt_exist

        m = Model()
        return outcome(lambda: m.some_property), outcome(lambda: m.missing)

    assert run(JMOD) == run(TORCH)


def test_dir_lists_registered_names_and_hides_digits():
    def run(L):
        m = shared_net(L)
        m.plain = 1
        keys = dir(m)
        own = ["embed", "block", "again", "head", "empty", "seq", "scale", "plain", "training"]
        seq = dir(m.seq)
        return [k in keys for k in own], [k for k in seq if k[0].isdigit()], "count" in dir(m.block)

    assert run(JMOD) == run(TORCH)
    assert all(run(JMOD)[0])


def test_parameter_assignment_counts():
    """torch's ``test_parameter_assignment``, with jmod's documented difference: assigning
    an array to a parameter's name replaces the parameter's value instead of raising."""
    for L in LIBS:
        lin = L.nn.Linear(5, 5)
        assert len(list(lin.parameters())) == 2
        lin.param_name = L.Parameter(L.zeros(5, 5))
        assert len(list(lin.parameters())) == 3
        lin.var_name = L.zeros(5, 5)
        assert len(list(lin.parameters())) == 3 and "var_name" in lin.__dict__
        lin.param_attr = L.Parameter(L.zeros(5, 5))
        assert len(list(lin.parameters())) == 4
        lin.param_attr = None
        assert len(list(lin.parameters())) == 3

    t = TORCH.nn.Linear(2, 2)
    with pytest.raises(TypeError, match="cannot assign 'torch.FloatTensor' as parameter 'weight'"):
        t.weight = torch.zeros(2, 2)
    j = JMOD.nn.Linear(2, 2)
    slot = j._parameters["weight"]
    j.weight = jnp.full((2, 2), 7.0)  # jmod: replaces the value, keeps the slot
    assert j._parameters["weight"] is slot
    np.testing.assert_array_equal(j.weight, np.full((2, 2), 7.0))
    j.weight = np.ones((2, 2), np.float32)  # NumPy arrays too
    assert isinstance(j.weight, jax.Array) and j._parameters["weight"] is slot


def test_assigning_array_to_tied_parameter_updates_both_names():
    m = shared_net(JMOD)
    m.embed.weight = jnp.full((2, 2), 3.0)
    np.testing.assert_array_equal(m.head.weight, np.full((2, 2), 3.0))
    assert m.head._parameters["weight"] is m.embed._parameters["weight"]


def test_tying_by_assigning_a_read_parameter():
    """``self.b.weight = self.a.weight`` ties in torch (a Parameter); jmod tracks the read array."""

    def run(L):
        m = L.nn.Module()
        m.a = L.nn.Linear(2, 2)
        m.b = L.nn.Linear(2, 2)
        m.b.weight = m.a.weight
        m.c = m.a.bias  # a new name: registers the same parameter
        return tree_names(m)

    assert run(JMOD) == run(TORCH)
    j = JMOD.nn.Module()
    j.a = JMOD.nn.Linear(2, 2)
    j.c = j.a.bias
    assert j._parameters["c"] is j.a._parameters["bias"]


def test_named_parameters_remove_duplicate():
    def run(L):
        class M1(L.nn.Module):
            def __init__(self):
                super().__init__()
                self.param1 = L.Parameter(L.zeros(3, 3))
                self.param2 = self.param1

        class M2(L.nn.Module):
            def __init__(self):
                super().__init__()
                self.mod1 = L.nn.Linear(3, 4, bias=False)
                self.mod2 = self.mod1

        return tree_names(M1()), tree_names(M2())

    assert run(JMOD) == run(TORCH)


# --------------------------------------------------------------------- traversal
def test_basic_net_traversal_matches_torch():
    def run(L):
        layer, net, seq = basic_net(L)
        out = {}
        for label, m in [("l", layer), ("n", net), ("s", seq)]:
            out[label] = tree_names(m)
            out[label + "_norecurse"] = (
                names(m.named_parameters(recurse=False)),
                names(m.named_buffers(recurse=False)),
                len(list(m.parameters(recurse=False))),
                len(list(m.buffers(recurse=False))),
            )
            out[label + "_counts"] = (len(list(m.parameters())), len(list(m.buffers())), len(list(m.modules())))
        return out

    assert run(JMOD) == run(TORCH)


@pytest.mark.parametrize("prefix", ["", "root", "a.b"])
@pytest.mark.parametrize("remove_duplicate", [True, False])
def test_shared_net_traversal_matches_torch(prefix, remove_duplicate):
    def run(L):
        m = shared_net(L)
        return {
            "params": names(m.named_parameters(prefix=prefix, remove_duplicate=remove_duplicate)),
            "params_norec": names(m.named_parameters(prefix=prefix, recurse=False, remove_duplicate=remove_duplicate)),
            "buffers": names(m.named_buffers(prefix=prefix, remove_duplicate=remove_duplicate)),
            "buffers_norec": names(m.named_buffers(prefix=prefix, recurse=False, remove_duplicate=remove_duplicate)),
            "modules": names(m.named_modules(prefix=prefix, remove_duplicate=remove_duplicate)),
            "modules_memo": names(m.named_modules(memo={m.block}, prefix=prefix)),
            "children": names(m.named_children()),
            "n_modules": len(list(m.modules(remove_duplicate=remove_duplicate))),
            "n_children": len(list(m.children())),
            "state_dict": list(m.state_dict(prefix=prefix + "." if prefix else "")),
        }

    assert run(JMOD) == run(TORCH)


def test_traversal_yields_the_same_objects():
    m = shared_net(JMOD)
    assert [type(c).__name__ for c in m.children()] == ["Linear", "Block", "Linear", "Sequential"]
    assert list(m.modules())[0] is m
    assert m.get_submodule("seq.1") is m.block
    params = dict(m.named_parameters())
    assert params["embed.weight"] is m.embed.weight  # the parameter's current array
    assert all(isinstance(p, jax.Array) for p in m.parameters())
    bufs = dict(m.named_buffers())
    assert bufs["block.count"] is m.block.count


# ------------------------------------------------------- get_/set_submodule & co
GETTERS = [
    ("get_submodule", ""),
    ("get_submodule", "block"),
    ("get_submodule", "seq.1.linear1"),
    ("get_submodule", "nothing"),
    ("get_submodule", "block.nothing"),
    ("get_submodule", "scale"),
    ("get_submodule", "block.count"),
    ("get_submodule", "empty"),
    ("get_parameter", "scale"),
    ("get_parameter", "embed.weight"),
    ("get_parameter", "seq.1.linear2.weight"),
    ("get_parameter", "block.count"),
    ("get_parameter", "block.gone"),
    ("get_parameter", "block.nothing"),
    ("get_parameter", "nothing.weight"),
    ("get_parameter", "block"),
    ("get_buffer", "block.count"),
    ("get_buffer", "block.scratch"),
    ("get_buffer", "block.absent"),
    ("get_buffer", "scale"),
    ("get_buffer", "block.nothing"),
    ("get_buffer", "block.linear1.count"),
]


@pytest.mark.parametrize("method,target", GETTERS)
def test_getters_match_torch(method, target):
    def run(L):
        m = shared_net(L)
        res = outcome(lambda: getattr(m, method)(target))
        if res[0] == "ok":
            v = res[1]
            if v is None or isinstance(v, L.nn.Module):
                return ("ok", type(v).__name__, v is m if isinstance(v, L.nn.Module) else None)
            return ("ok", tuple(v.shape))
        return res

    assert run(JMOD) == run(TORCH)


SETTERS = [
    ("block.linear1", "linear", False),
    ("block.linear1", "linear", True),
    ("block.new", "linear", False),
    ("block.new", "linear", True),
    ("new", "linear", True),
    ("", "linear", False),
    ("block.count", "linear", False),
    ("scale", "linear", False),
    ("nothing.new", "linear", False),
    ("block.linear1", "int", False),
]


@pytest.mark.parametrize("target,value,strict", SETTERS)
def test_set_submodule_matches_torch(target, value, strict):
    def run(L):
        m = shared_net(L)
        v = L.nn.Linear(1, 1) if value == "linear" else 3
        res = outcome(lambda: m.set_submodule(target, v, strict=strict))
        # the error text for a non-Module embeds the library's type repr: compare the type
        if res[0] == "raise" and "is not an nn.Module, found" in res[2]:
            res = (res[0], res[1], res[2].split(", found")[0])
        return res, tree_names(m)

    assert run(JMOD) == run(TORCH)


# ------------------------------------------------------------ modes and helpers
def test_train_eval_propagate_and_return_self():
    def run(L):
        m = shared_net(L)
        out = [m.train(False) is m, [s.training for s in m.modules()]]
        out += [m.block.train() is m.block, [s.training for s in m.modules()]]
        out += [m.eval() is m, [s.training for s in m.modules()]]
        out += [outcome(lambda: m.train(1)), outcome(lambda: m.train("yes"))]
        return out

    assert run(JMOD) == run(TORCH)
    assert run(JMOD)[-1][1] == "ValueError"


def test_apply_visits_children_first_then_self():
    def run(L):
        m = shared_net(L)
        seen = []
        ret = m.apply(lambda mod: seen.append(type(mod).__name__))
        return ret is m, seen

    assert run(JMOD) == run(TORCH)


def test_apply_with_init_updates_parameters():
    net = JMOD.nn.Sequential(JMOD.nn.Linear(2, 2), JMOD.nn.Linear(2, 2))

    def init(mod):
        if isinstance(mod, JMOD.nn.Linear):
            nn.init.constant_(mod.weight, 1.0)
            mod.bias = jnp.zeros(2)

    net.apply(init)
    for lin in net:
        np.testing.assert_array_equal(lin.weight, np.ones((2, 2)))
        np.testing.assert_array_equal(lin.bias, np.zeros(2))


def test_requires_grad_():
    def run(L):
        _, _, s = basic_net(L)
        out = []
        for flag in (False, True, False):
            out.append(s.requires_grad_(flag) is s)
            out.append([L.requires_grad(p) for p in s.parameters()])
            out.append([L.requires_grad(b) for b in s.buffers()])
        out.append(s.requires_grad_() is s)
        out.append([L.requires_grad(p) for p in s.parameters()])
        return out

    assert run(JMOD) == run(TORCH)


def test_requires_grad_false_parameter_is_skipped_by_jmod_grad():
    m = JMOD.nn.Linear(2, 2)
    m.requires_grad_(False)
    m.bias = nn.Parameter(m.bias, requires_grad=True)
    grads = jmod.grad(lambda mod, x: mod(x).sum())(m, jnp.ones((1, 2)))
    assert list(grads) == ["bias"]


def cast_net(L):
    m = L.nn.Module()
    m.lin = L.nn.Linear(2, 2)
    m.register_buffer("f", L.ones(2))
    m.register_buffer("i", L.ones(2, dtype="int32"))
    m.register_buffer("nf", L.ones(2), persistent=False)
    m.p16 = L.Parameter(L.ones(2, dtype="float16"))
    return m


def dtypes(m, L):
    return [(k, L.dtype_name(v)) for k, v in m.named_parameters()] + [
        (k, L.dtype_name(v)) for k, v in m.named_buffers()
    ]


@pytest.mark.parametrize(
    "op",
    [
        lambda L, m: m.float(),
        lambda L, m: m.half(),
        lambda L, m: m.bfloat16(),
        lambda L, m: m.to(torch.float16 if L is TORCH else jnp.float16),
        lambda L, m: m.to(dtype=torch.bfloat16 if L is TORCH else jnp.bfloat16),
        lambda L, m: m.to("cpu"),
        lambda L, m: m.cpu(),
        lambda L, m: m.to("cpu", torch.float16 if L is TORCH else jnp.float16),
        lambda L, m: m.type(torch.float16 if L is TORCH else jnp.float16),  # all arrays, ints too
    ],
    ids=["float", "half", "bfloat16", "to_dtype", "to_dtype_kw", "to_cpu", "cpu", "to_cpu_dtype", "type"],
)
def test_casts_touch_floating_point_only(op):
    def run(L):
        m = cast_net(L)
        ret = op(L, m)
        return ret is m, dtypes(m, L)

    assert run(JMOD) == run(TORCH)


def test_casts_keep_ties_and_slots():
    m = shared_net(JMOD)
    slot = m.embed._parameters["weight"]
    m.half()
    assert m.embed._parameters["weight"] is slot is m.head._parameters["weight"]
    assert m.head.weight.dtype == jnp.float16
    m.to(torch.float32)  # torch dtypes are accepted by jmod
    assert m.head.weight.dtype == jnp.float32


def test_to_rejects_integer_dtype_like_torch():
    assert_same_error_prefix(
        lambda: cast_net(TORCH).to(torch.int32),
        lambda: cast_net(JMOD).to(jnp.int32),
        r"nn.Module.to only accepts floating point or complex dtypes, but got desired dtype=",
    )


def test_double_needs_x64():
    """torch: ``double()`` works. jmod (JAX 64-bit mode off): a TypeError naming the fix,
    never a silent float32."""
    m = cast_net(JMOD)
    before = dtypes(m, JMOD)
    with pytest.raises(TypeError, match=r"jax_enable_x64"):
        m.double()
    with pytest.raises(TypeError, match=r"jax_enable_x64"):
        m.to(jnp.float64)
    assert dtypes(m, JMOD) == before
    t = cast_net(TORCH).double()
    assert t.lin.weight.dtype == torch.float64


def test_cpu_places_arrays_on_cpu():
    m = cast_net(JMOD)
    assert m.cpu() is m
    for _, v in [*m.named_parameters(), *m.named_buffers()]:
        assert {d.platform for d in v.devices()} == {"cpu"}


def test_zero_grad_is_a_no_op():
    """jmod computes gradients functionally: nothing accumulates, ``zero_grad`` does nothing."""
    m = shared_net(JMOD)
    before = np_state(m, JMOD)
    assert m.zero_grad() is None
    assert m.zero_grad(set_to_none=False) is None
    after = np_state(m, JMOD)
    assert list(before) == list(after)
    for k in before:
        np.testing.assert_array_equal(before[k], after[k])


def test_share_memory_returns_self():
    m = JMOD.nn.Linear(2, 2)
    assert m.share_memory() is m


def test_forward_missing_raises_not_implemented():
    def run(L):
        class NoForward(L.nn.Module):
            pass

        return outcome(lambda: NoForward()(L.ones(1))), outcome(lambda: L.nn.Module()(L.ones(1)))

    assert run(JMOD) == run(TORCH)
    assert run(JMOD)[0] == (
        "raise",
        "NotImplementedError",
        'Module [NoForward] is missing the required "forward" function',
    )


def test_call_passes_args_and_kwargs_and_returns_dict_output():
    def run(L):
        class M(L.nn.Module):
            def forward(self, a, b=2, *, c=3):
                return {"sum": a + b + c}

        return M()(1, c=10)

    assert run(JMOD) == run(TORCH) == {"sum": 13}


def test_call_super_init():
    def run(L):
        class MyMixin:
            def __init__(self, *a, **kw):
                super().__init__(*a, **kw)
                self.mixin_init = True

        class Before(MyMixin, L.nn.Module):
            pass

        class After(L.nn.Module, MyMixin):
            pass

        out = [hasattr(Before(), "mixin_init"), hasattr(After(), "mixin_init")]

        class BeforeS(MyMixin, L.nn.Module):
            call_super_init = True

        class AfterS(L.nn.Module, MyMixin):
            call_super_init = True

        out += [hasattr(BeforeS(), "mixin_init"), hasattr(AfterS(), "mixin_init")]

        class Kw(L.nn.Module):
            call_super_init = True

        out.append(outcome(lambda: Kw(a=1)))
        return out

    t, j = run(TORCH), run(JMOD)
    assert j[:4] == t[:4] == [True, False, True, True]
    # With call_super_init the kwargs reach object.__init__, which rejects them.
    assert j[4][:2] == t[4][:2] == ("raise", "TypeError")


# ----------------------------------------------------------------------------- repr
def repr_models(L):
    class Leaf(L.nn.Module):
        def __init__(self, k):
            super().__init__()
            self.k = k

        def extra_repr(self):
            return f"k={self.k}"

    class MultiLine(L.nn.Module):
        def extra_repr(self):
            return "first=1,\nsecond=2"

    class WithBlank(L.nn.Module):
        def extra_repr(self):
            return "top\n\nbottom"

    class Holder(L.nn.Module):
        def __init__(self):
            super().__init__()
            self.leaf = Leaf(1)
            self.multi = MultiLine()
            self.blank = WithBlank()
            self.none = None
            self.register_module("gap", None)
            self.seq = L.nn.Sequential(Leaf(2), L.nn.Sequential(Leaf(3), MultiLine()))

        def extra_repr(self):
            return "holder=True"

    class Bare(L.nn.Module):
        pass

    return {
        "bare": Bare(),
        "leaf": Leaf(7),
        "multi": MultiLine(),
        "holder": Holder(),
        "linear": L.nn.Linear(3, 4, bias=False),
        "identity": L.nn.Identity(),
        "seq": L.nn.Sequential(OrderedDict([("a", L.nn.Linear(1, 2)), ("b", Leaf(5))])),
        "empty_seq": L.nn.Sequential(),
        "modulelist_repeats": L.nn.ModuleList(
            [L.nn.Linear(2, 2), L.nn.Linear(2, 2), L.nn.Linear(2, 2), Leaf(1), L.nn.Linear(2, 2), Leaf(1), Leaf(1)]
        ),
        "modulelist_nested": L.nn.Sequential(
            L.nn.ModuleList([MultiLine(), MultiLine(), Holder(), Holder()]), L.nn.ModuleList()
        ),
        "moduledict": L.nn.ModuleDict({"x": Leaf(1), "y": L.nn.Linear(2, 1)}),
    }


@pytest.mark.parametrize("name", list(repr_models(JMOD)))
def test_repr_matches_torch(name):
    assert repr(repr_models(JMOD)[name]) == repr(repr_models(TORCH)[name])
    assert str(repr_models(JMOD)[name]) == str(repr_models(TORCH)[name])


def test_parameter_container_repr_layout():
    """The layout of ParameterList/ParameterDict reprs is torch's; only the dtype spelling
    is jmod's (``float32``: there is no ``torch.float32``/``torch.FloatTensor``)."""

    def run(L):
        pl = L.nn.ParameterList([L.Parameter(L.zeros(2, 3)), L.zeros(4), "text", L.nn.Linear(1, 1)])
        pd = L.nn.ParameterDict(OrderedDict([("a", L.Parameter(L.zeros(2, 3))), ("b", 3), ("c", L.nn.Identity())]))
        strip = lambda s: re.sub(r"\[[\w.]+ of size", "[<dtype> of size", s)  # noqa: E731
        return strip(repr(pl)), strip(repr(pd))

    assert run(JMOD) == run(TORCH)


def test_parameter_container_repr_dtype_spelling():
    """Documented difference: the dtype is JAX's name (float32), not torch.float32."""
    t = repr(TORCH.nn.ParameterList([TORCH.nn.Parameter(TORCH.zeros(2))]))
    j = repr(JMOD.nn.ParameterList([JMOD.nn.Parameter(jnp.zeros(2))]))
    assert j == t.replace("torch.float32", "float32")


# ------------------------------------------------------------ pickling / deepcopy
class PickleBlock(nn.Module):
    """``shared_net``'s Block at module level (pickle needs importable classes)."""

    def __init__(self):
        super().__init__()
        self.linear1 = nn.Linear(2, 3)
        self.linear2 = nn.Linear(3, 2, bias=False)
        self.register_buffer("count", jnp.zeros(1, jnp.int32))
        self.register_buffer("scratch", jnp.zeros(2), persistent=False)
        self.register_buffer("absent", None)
        self.register_parameter("gone", None)

    def forward(self, x):
        return self.linear2(self.linear1(x))


class PickleNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(2, 2)
        self.block = PickleBlock()
        self.again = self.block
        self.head = nn.Linear(2, 2)
        self.head.weight = self.embed.weight
        self.empty = None
        self.seq = nn.Sequential(nn.Linear(2, 2), self.block)
        self.scale = nn.Parameter(jnp.ones(1))


def test_pickle_net_is_shared_net():
    assert tree_names(PickleNet()) == tree_names(shared_net(JMOD))


def _hook_record(module, args, output):  # module level: picklable
    module.calls = getattr(module, "calls", 0) + 1


def _pre_load_hook(module, state_dict, prefix, *rest):
    module.loaded_with = sorted(state_dict)


@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_copy_preserves_ties_hooks_state_and_flags(how):
    m = PickleNet()
    m.block.eval()
    m.scale = nn.Parameter(m.scale, requires_grad=False)
    m.block.register_forward_hook(_hook_record)
    m._register_load_state_dict_pre_hook(_pre_load_hook, with_module=True)
    m.plain = {"a": 1}
    c = copy.deepcopy(m) if how == "deepcopy" else pickle.loads(pickle.dumps(m))

    assert tree_names(c) == tree_names(m)
    before, after = np_state(m, JMOD), np_state(c, JMOD)
    assert list(before) == list(after)
    for k in before:
        np.testing.assert_array_equal(before[k], after[k])
    # ties and shared submodules survive, and point into the copy
    assert c.head._parameters["weight"] is c.embed._parameters["weight"]
    assert c.head._parameters["weight"] is not m.embed._parameters["weight"]
    assert c.again is c.block and c.seq[1] is c.block and c.block is not m.block
    # flags
    assert [x.training for x in c.modules()] == [x.training for x in m.modules()]
    assert requires_grad(c.scale) is False and requires_grad(c.embed.weight) is True
    assert c.block._non_persistent_buffers_set == {"scratch"}
    assert c.plain == {"a": 1}
    # hooks survive and receive the copy
    c.block(jnp.ones((1, 2)))
    assert getattr(c.block, "calls", 0) == 1 and not hasattr(m.block, "calls")
    c.load_state_dict(c.state_dict())
    assert c.loaded_with == sorted(c.state_dict()) and not hasattr(m, "loaded_with")
    # writing the copy leaves the original alone
    c.embed.weight = jnp.zeros((2, 2))
    np.testing.assert_array_equal(m.embed.weight, before["p:embed.weight"])


def test_deepcopy_matches_torch_structure():
    def run(L):
        m = shared_net(L)
        c = copy.deepcopy(m)
        return tree_names(c), c.head.weight is c.embed.weight, c.again is c.block

    assert run(JMOD) == run(TORCH)


def test_deepcopy_compiled_module_drops_compiled_call():
    m = JMOD.nn.Linear(2, 2)
    m.compile()
    c = copy.deepcopy(m)
    assert c._compiled_call_impl is None
    np.testing.assert_allclose(c(jnp.ones((1, 2))), m(jnp.ones((1, 2))), atol=1e-6)


# ------------------------------------------------------------------- containers
_TAGS = {}


def tag(L, k):
    """A parameter-free module printed as ``Tag(k)``: cheap stand-in for a layer in the
    container tests (a new Linear shape costs a compile in jmod's initialiser)."""
    if L.name not in _TAGS:

        class Tag(L.nn.Module):
            def __init__(self, k):
                super().__init__()
                self.k = k

            def extra_repr(self):
                return self.k

            def forward(self, x):
                return x

        _TAGS[L.name] = Tag
    return _TAGS[L.name](k)


def seq_ops(L):
    lin = [tag(L, f"{i + 1}, {i + 2}") for i in range(5)]
    s = L.nn.Sequential(*lin[:3])
    log = [repr(s), len(s)]
    log.append([s[i] is lin[i] for i in range(-3, 3)])
    log.append(outcome(lambda: s[3]))
    log.append(outcome(lambda: s[-4]))
    log.append(repr(s[1:]))
    log.append(type(s[::2]).__name__)
    s.append(lin[3])
    log.append(repr(s))
    s.insert(1, lin[4])
    log.append(repr(s))
    s.insert(-1, L.nn.Identity())
    log.append(repr(s))
    log.append(outcome(lambda: s.insert(10, L.nn.Identity())))
    log.append(outcome(lambda: s.insert(0, 3)))
    popped = s.pop(0)
    log.append((popped is lin[0], repr(s)))
    del s[1]
    log.append(repr(s))
    del s[::2]
    log.append(repr(s))
    s.extend([L.nn.Identity(), lin[1]])
    log.append(repr(s))
    s[0] = tag(L, "9, 9")
    log.append(repr(s))
    log.append(outcome(lambda: s.__setitem__(7, L.nn.Identity())))
    t = s + L.nn.Sequential(L.nn.Identity())
    log.append((type(t).__name__, repr(t), repr(s)))
    log.append(outcome(lambda: s + [L.nn.Identity()]))
    s += L.nn.Sequential(L.nn.Identity())
    log.append(repr(s))
    short = L.nn.Sequential(L.nn.Identity(), lin[2])
    log.append(repr(short * 2))
    log.append(repr(2 * short))
    log.append(outcome(lambda: short * 0))
    log.append(outcome(lambda: short * 1.5))
    short *= 3
    log.append(repr(short))
    log.append(names(short.named_modules()))
    log.append(names(short.named_modules(remove_duplicate=False)))
    log.append([k for k in dir(short) if k.isdigit()])
    od = L.nn.Sequential(OrderedDict([("first", L.nn.Identity()), ("second", lin[0])]))
    log.append((repr(od), repr(od[1:]), list(od._modules)))
    del od[0]
    log.append(list(od._modules))
    log.append(repr(L.nn.Sequential(OrderedDict())))
    return log


def _jmod_names(log):
    """torch's log with jmod's class paths in error messages (``torch.nn.`` -> ``jmod.nn.``)."""
    return [
        (x[0], x[1], torch_to_jmod_text(x[2])) if isinstance(x, tuple) and x and x[0] == "raise" else x for x in log
    ]


def test_sequential_matches_torch():
    assert seq_ops(JMOD) == _jmod_names(seq_ops(TORCH))


def test_sequential_forward_chains_modules():
    t = TORCH.nn.Sequential(TORCH.nn.Linear(3, 4), TORCH.nn.Linear(4, 2))
    j = JMOD.nn.Sequential(JMOD.nn.Linear(3, 4), JMOD.nn.Linear(4, 2))
    j.load_state_dict(t.state_dict())
    x = rng_array(2, 3)
    np.testing.assert_allclose(np.asarray(j(jnp.asarray(x))), t(torch.from_numpy(x)).detach().numpy(), atol=1e-5)


def modulelist_ops(L):
    modules = [L.nn.Identity(), tag(L, "5, 5")]
    ml = L.nn.ModuleList(modules)
    log = [repr(ml), len(ml), [a is b for a, b in zip(ml, modules)], [a is b for a, b in zip(ml.children(), modules)]]
    ml += [tag(L, "3, 4")]
    ml.append(L.nn.Identity())
    ml.extend([tag(L, "1, 1"), tag(L, "1, 1")])
    log.append(repr(ml))
    ml.insert(1, tag(L, "2, 2"))
    ml.insert(0, L.nn.Identity())
    ml.insert(len(ml), tag(L, "7, 7"))
    log.append(repr(ml))
    log.append([ml[i] is ml[i - len(ml)] for i in range(len(ml))])
    log.append(outcome(lambda: ml[len(ml)]))
    log.append(repr(ml[1:4]))
    log.append(type(ml[::2]).__name__)
    ml[2] = tag(L, "8, 8")
    log.append(repr(ml))
    log.append(outcome(lambda: ml.__setitem__(99, L.nn.Identity())))
    popped = ml.pop(1)
    log.append((type(popped).__name__, repr(ml)))
    del ml[-1]
    del ml[1:3]
    log.append((repr(ml), list(ml._modules)))
    log.append(repr(ml + L.nn.ModuleList([L.nn.Identity()])))
    log.append(outcome(lambda: ml.extend(tag(L, "1, 1"))))
    log.append(outcome(lambda: ml.extend(3)))
    log.append(outcome(lambda: ml.append(3)))
    log.append(names(ml.named_modules()))
    log.append([k for k in dir(ml) if k.isdigit()])
    log.append(outcome(lambda: ml(1)))
    return log


def test_modulelist_matches_torch():
    assert modulelist_ops(JMOD) == modulelist_ops(TORCH)


def moduledict_ops(L):
    d = L.nn.ModuleDict(OrderedDict([("conv", tag(L, "1, 2")), ("act", L.nn.Identity())]))
    log = [repr(d), len(d), list(d), list(d.keys()), [type(v).__name__ for v in d.values()]]
    d["new"] = tag(L, "3, 3")
    d.update([("x", L.nn.Identity()), ["y", tag(L, "1, 1")]])
    d.update(OrderedDict([("z", L.nn.Identity()), ("conv", tag(L, "4, 4"))]))
    d.update({"b": L.nn.Identity(), "a": L.nn.Identity()})
    d.update(L.nn.ModuleDict({"m": L.nn.Identity()}))
    log.append((repr(d), list(d.items())[0][0], "x" in d, "nope" in d))
    log.append(type(d.pop("x")).__name__)
    del d["y"]
    log.append(list(d))
    log.append(outcome(lambda: d["nope"]))
    log.append(outcome(lambda: d.update(3)))
    log.append(outcome(lambda: d.update([3])))
    log.append(outcome(lambda: d.update([("a", L.nn.Identity(), 3)])))
    log.append(outcome(lambda: d.__setitem__("bad", 3)))
    log.append(outcome(lambda: d.__setitem__("a.b", L.nn.Identity())))
    log.append(names(d.named_modules()))
    d.clear()
    log.append((len(d), repr(d)))
    log.append(repr(L.nn.ModuleDict()))
    return log


def test_moduledict_matches_torch():
    assert moduledict_ops(JMOD) == moduledict_ops(TORCH)


def parameterlist_ops(L):
    ps = [L.Parameter(L.ones(i + 1)) for i in range(3)]
    pl = L.nn.ParameterList(ps[:2])
    log = [len(pl), names(pl.named_parameters())]
    pl.append(ps[2])
    pl.append(L.zeros(4))  # a tensor/array becomes a Parameter
    pl.extend([L.zeros(5), "not a parameter", 3])
    pl += [L.Parameter(L.zeros(6))]
    log.append((len(pl), names(pl.named_parameters()), list(pl.state_dict())))
    log.append([L.to_numpy(p).shape for p in pl.parameters()])
    log.append([type(x).__name__ if not hasattr(x, "shape") else tuple(x.shape) for x in pl])
    log.append(outcome(lambda: pl[len(pl)]))
    log.append(tuple(pl[-1].shape))
    pl[0] = L.zeros(9)
    log.append(names(pl.named_parameters()))
    log.append(tuple(pl[0].shape))
    sl = pl[1:4]
    log.append((type(sl).__name__, len(sl), names(sl.named_parameters())))
    log.append(outcome(lambda: pl.extend(L.zeros(2))))
    log.append(outcome(lambda: pl.extend(3)))
    log.append(outcome(lambda: pl(1)))
    log.append([k for k in dir(pl) if k.isdigit()])
    return log


def test_parameterlist_matches_torch():
    j, t = parameterlist_ops(JMOD), parameterlist_ops(TORCH)
    # "but got <type name>": the array's class is jax's ArrayImpl where torch has Tensor
    j = [
        (x[0], x[1], x[2].replace("ArrayImpl", "Tensor")) if isinstance(x, tuple) and x[:1] == ("raise",) else x
        for x in j
    ]
    assert j == t


def test_parameterlist_slice_shares_parameters():
    ps = [nn.Parameter(jnp.ones(2)) for _ in range(3)]
    pl = nn.ParameterList(ps)
    sl = pl[1:]
    assert sl._parameters["0"] is ps[1] and sl._parameters["1"] is ps[2]
    assert all(isinstance(p, jax.Array) for p in pl)


def parameterdict_ops(L):
    pd = L.nn.ParameterDict({"b": L.Parameter(L.ones(1)), "a": L.Parameter(L.ones(2))})  # dict: sorted
    log = [list(pd), names(pd.named_parameters())]
    pd["c"] = L.zeros(3)  # tensor/array -> Parameter
    pd["s"] = "string"
    pd.update(OrderedDict([("z", L.Parameter(L.ones(1))), ("y", L.zeros(1))]))
    pd.update([("q", L.zeros(2)), ("p", L.zeros(2))])
    log.append((list(pd), names(pd.named_parameters()), list(pd.state_dict()), len(pd)))
    log.append((list(reversed(pd)), "c" in pd, "nope" in pd, pd.get("nope", 5), pd.get("s")))
    log.append(tuple(pd["c"].shape))
    log.append(outcome(lambda: pd["nope"]))
    log.append(outcome(lambda: pd[1]))
    log.append(outcome(lambda: pd.update(3)))
    log.append(outcome(lambda: pd.update([3])))
    log.append(outcome(lambda: pd.update([("k", 1, 2)])))
    popped = pd.pop("z")
    log.append((tuple(popped.shape), list(pd)))
    k, v = pd.popitem()
    log.append((k, tuple(v.shape), list(pd)))
    log.append(tuple(pd.setdefault("new", L.zeros(7)).shape))
    log.append(tuple(pd.setdefault("new", L.zeros(8)).shape))
    log.append(pd.setdefault("none") is None)
    log.append(list(pd))
    cp = pd.copy()
    log.append((type(cp).__name__, list(cp)))
    fk = pd.fromkeys(["u", "v"], L.zeros(1))
    log.append((list(fk), names(fk.named_parameters())))
    other = L.nn.ParameterDict(OrderedDict([("w", L.zeros(1)), ("a", L.zeros(5))]))
    log.append(list(pd | other))
    log.append(list(other | pd))
    pd |= other
    log.append((list(pd), tuple(pd["a"].shape)))
    del pd["a"]
    log.append(list(pd))
    log.append(outcome(lambda: pd("x")))
    pd.clear()
    log.append((len(pd), list(pd.state_dict())))
    return log


def test_parameterdict_matches_torch():
    assert parameterdict_ops(JMOD) == parameterdict_ops(TORCH)


def test_parameterdict_copy_shares_parameters():
    pd = nn.ParameterDict(OrderedDict([("a", nn.Parameter(jnp.ones(2)))]))
    cp = pd.copy()
    assert cp._parameters["a"] is pd._parameters["a"]


def test_container_is_deprecated_like_torch():
    with pytest.warns(FutureWarning, match=r"`nn.Container` is deprecated"):
        c = TORCH.nn.Container(a=TORCH.nn.Linear(1, 1))
    with pytest.warns(FutureWarning, match=r"`nn.Container` is deprecated"):
        j = JMOD.nn.Container(a=JMOD.nn.Linear(1, 1))
    assert names(j.named_children()) == names(c.named_children()) == ["a"]


def test_containers_state_dict_and_load():
    def build(L):
        m = L.nn.Module()
        m.seq = L.nn.Sequential(L.nn.Linear(2, 2), L.nn.ModuleList([L.nn.Linear(2, 1)]))
        m.pl = L.nn.ParameterList([L.zeros(2)])
        m.pd = L.nn.ParameterDict({"w": L.zeros(3)})
        m.md = L.nn.ModuleDict({"lin": L.nn.Linear(1, 1)})
        return m

    t, j = both(build)
    assert list(j.state_dict()) == list(t.state_dict())
    with torch.no_grad():
        for p in t.parameters():
            p.add_(1.5)
    assert str(j.load_state_dict(t.state_dict())) == "<All keys matched successfully>"
    for (k, a), (_, b) in zip(j.named_parameters(), t.named_parameters()):
        np.testing.assert_array_equal(np.asarray(a), b.detach().numpy(), err_msg=k)


def test_registration_bumps_structure_counter():
    """Compiled code is keyed on the structure counter (DEVELOPING.md): every registration
    kind must move it, a same-shape value write must not."""
    from jmod._src import structure

    m = JMOD.nn.Module()
    ops = [
        lambda: m.register_buffer("b", jnp.zeros(2)),
        lambda: m.register_parameter("p", nn.Parameter(jnp.zeros(2))),
        lambda: m.add_module("c", JMOD.nn.Linear(1, 1)),
        lambda: setattr(m, "flag", True),
        lambda: m.train(False),
        lambda: delattr(m, "b"),
        lambda: setattr(m, "p", jnp.zeros(3)),  # shape change
    ]
    for op in ops:
        signal = structure.Signal()
        structure.watch(m, signal)
        op()
        assert not signal.valid
    signal = structure.Signal()
    structure.watch(m, signal)
    m.p = jnp.ones(3)  # same shape and dtype: a value write
    assert signal.valid


def test_no_warnings_from_plain_module_use():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = shared_net(JMOD)
        m.state_dict()
        m.load_state_dict(m.state_dict())
        repr(m)
        copy.deepcopy(m)


def test_parameter_container_repr_scalar_and_empty_parameters():
    def run(L):
        pl = L.nn.ParameterList([L.zeros(), L.zeros(0)])
        pd = L.nn.ParameterDict(OrderedDict([("s", L.zeros()), ("e", L.zeros(0))]))
        strip = lambda s: re.sub(r"\[[\w.]+ of size", "[<dtype> of size", s)  # noqa: E731
        return strip(repr(pl)), strip(repr(pd))

    assert run(JMOD) == run(TORCH)


def test_buffer_reassignment_goes_through_an_overridden_register_buffer():
    """torch's ``__setattr__`` calls ``register_buffer`` for every buffer assignment."""

    def run(L):
        calls = []

        class Logged(L.nn.Module):
            def __init__(self):
                super().__init__()
                self.register_buffer("running", L.zeros(2))

            def register_buffer(self, name, tensor, persistent=True):
                calls.append((name, persistent))
                super().register_buffer(name, tensor, persistent)

        m = Logged()
        m.running = m.running + 1  # same shape: a value update
        m.running = L.zeros(3)
        return calls, tree_names(m)

    assert run(JMOD) == run(TORCH)


TO_ARGS = {
    # torch's test_module_to_argparse (all TypeError) plus valid spellings
    "device_then_bool": lambda L: ((L.cpu, True), {}),
    "none_then_bool": lambda L: ((None, True), {}),
    "long": lambda L: ((L.long,), {}),
    "device_long_bool": lambda L: ((L.cpu, L.long, True), {}),
    "device_long_kw": lambda L: ((L.cpu,), {"dtype": L.long, "non_blocking": True}),
    "list": lambda L: (([],), {}),
    "dict_nb": lambda L: (({},), {"non_blocking": True}),
    "long_array_nb": lambda L: ((L.long_array,), {"non_blocking": True}),
    "device_long_array_nb": lambda L: ((L.cpu, L.long_array), {"non_blocking": True}),
    "device_device": lambda L: ((L.cpu, L.cpu), {}),
    "half_half": lambda L: ((L.half, L.half), {}),
    "bad_kw": lambda L: ((), {"x": 1}),
    "half_bool": lambda L: ((L.half, True), {}),
    "device_half": lambda L: ((L.cpu, L.half), {}),
    "device_kw": lambda L: ((), {"device": L.cpu}),
    "device_half_bool": lambda L: ((L.cpu, L.half, True), {}),
    "half_array": lambda L: ((L.half_array,), {}),
    "half_array_bool": lambda L: ((L.half_array, True), {}),
    "string_device": lambda L: (("cpu",), {}),
    "nothing": lambda L: ((), {}),
}


class _TorchTo:
    cpu, long, half = torch.device("cpu"), torch.long, torch.float16
    long_array, half_array = torch.tensor(3), torch.zeros(1, dtype=torch.float16)


class _JmodTo:
    cpu, long, half = "cpu", jnp.int32, jnp.float16
    long_array, half_array = jnp.array(3), jnp.zeros(1, jnp.float16)


@pytest.mark.parametrize("case", list(TO_ARGS))
def test_to_argument_parsing_matches_torch(case):
    def run(L, A):
        m = L.nn.Sequential(L.nn.Linear(3, 3))
        args, kwargs = TO_ARGS[case](A)
        res = outcome(lambda: m.to(*args, **kwargs) is m)
        return (res[:2] if res[0] == "raise" else res), L.dtype_name(m[0].weight)

    assert run(JMOD, _JmodTo) == run(TORCH, _TorchTo)


def test_containers_index_with_a_0d_integer_array():
    """torch's test_Sequential_getitem/setitem, test_ModuleList, test_ParameterList index
    with ``torch.tensor(2)``; jmod's counterpart is a 0-d integer ``jax.Array``."""

    def run(L):
        idx = L.tensor(np.array(1, np.int64 if L is TORCH else np.int32))
        seq = L.nn.Sequential(L.nn.Identity(), L.nn.Linear(1, 1), L.nn.Identity())
        ml = L.nn.ModuleList([L.nn.Identity(), L.nn.Linear(1, 1)])
        pl = L.nn.ParameterList([L.zeros(1), L.zeros(2)])
        out = [type(seq[idx]).__name__, type(ml[idx]).__name__, tuple(pl[idx].shape)]
        seq[idx] = L.nn.Identity()
        ml[idx] = L.nn.Identity()
        pl[idx] = L.zeros(3)
        out += [type(seq[1]).__name__, type(ml[1]).__name__, tuple(pl[1].shape)]
        return out

    assert run(JMOD) == run(TORCH)


def test_parameterdict_update_with_a_parameter_raises_value_error():
    """torch's test_ParameterDict: a Parameter is an iterable of rows (length 10, not 2)."""

    def run(L):
        pd = L.nn.ParameterDict()
        return outcome(lambda: pd.update(L.Parameter(L.zeros(10, 10)))), outcome(lambda: pd.update(L.zeros(10, 10)))

    assert run(JMOD) == run(TORCH)


def test_dir_entries_are_all_attributes():
    """torch's test_dir: every name dir() lists is reachable with getattr."""
    for L in LIBS:
        lin = L.nn.Linear(2, 2)
        lin._test_submodule = L.nn.Linear(2, 2)
        lin._test_parameter = L.Parameter(L.zeros(2, 2))
        lin._test_buffer = L.Buffer(L.zeros(2, 2))
        keys = dir(lin)
        for k in ("_test_submodule", "_test_parameter", "_test_buffer", "weight", "bias"):
            assert k in keys, (L, k)
        missing = [k for k in keys if not hasattr(lin, k)]
        assert missing == [], (L, missing)


@pytest.mark.parametrize("kind", ["ParameterList", "ParameterDict"])
def test_parameter_containers_pickle_including_old_checkpoints(kind):
    """torch's test_parameterlistdict_pickle: no warnings, and old pickles lacking newer
    hook attributes still load."""

    def make():
        ps = [nn.Parameter(jnp.ones(2)), nn.Parameter(jnp.zeros(2))]
        return nn.ParameterList(ps) if kind == "ParameterList" else nn.ParameterDict({"a": ps[0], "b": ps[1]})

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = pickle.loads(pickle.dumps(make()))
        assert names(m.named_parameters()) == names(make().named_parameters())
        old = make()
        del (
            old._forward_pre_hooks,
            old._state_dict_hooks,
            old._load_state_dict_pre_hooks,
            old._non_persistent_buffers_set,
        )
        m = pickle.loads(pickle.dumps(old))
        m.train()
        m.eval()
        assert list(m.state_dict()) == list(make().state_dict())
        m.register_forward_pre_hook(lambda *a: None)


def test_to_complex_warns_like_torch():
    def run(L, dtype):
        m = L.nn.Linear(2, 2)
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            m.to(dtype)
        return [str(x.message).split(",")[0] for x in w], L.dtype_name(m.weight)

    assert (
        run(JMOD, jnp.complex64)
        == run(TORCH, torch.complex64)
        == (
            ["Complex modules are a new feature under active development whose design may change"],
            "complex64",
        )
    )
