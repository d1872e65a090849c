"""``state_dict`` / ``load_state_dict`` side by side with torch.

Keys, order, ``_metadata``, return values and the exact error text are compared with
torch on the same models. jmod-specific behaviour checked on its own: checkpoints of
torch tensors and NumPy arrays load directly, and a load that fails changes nothing
(torch may have copied part of the checkpoint before raising).
"""

from __future__ import annotations

import copy
import warnings
from collections import OrderedDict

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from jmod import nn
from jmod.nn.parameter import requires_grad
from tests.nn.modules._compare import (
    JMOD,
    LIBS,
    TORCH,
    assert_same_outcome,
    assert_states_equal,
    both,
    np_state,
    outcome,
    rng_array,
    tree_names,
)

pytestmark = pytest.mark.torch


def net(L):
    class Block(L.nn.Module):
        _version = 3

        def __init__(self):
            super().__init__()
            self.conv = L.nn.Linear(3, 3)
            self.register_buffer("running", L.zeros(3))
            self.register_buffer("steps", L.zeros(dtype="int32"))
            self.register_buffer("cache", L.zeros(3), persistent=False)
            self.register_buffer("unset", None)
            self.register_parameter("nothing", None)

    class Net(L.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear1 = L.nn.Linear(3, 3)
            self.linear2 = self.linear1  # shared module: keys under both names
            self.block = Block()
            self.empty = None
            self.head = L.nn.Linear(3, 3, bias=False)
            self.head.weight = self.block.conv.weight  # tied parameter
            self.scale = L.Parameter(L.ones())

    return Net()


def filled(L, seed=0):
    """``net(L)`` with deterministic distinct values (the same for both libraries)."""
    m = net(L)
    rng = np.random.default_rng(seed)
    sd = OrderedDict()
    for k, v in m.state_dict().items():
        shape = tuple(v.shape)
        if "steps" in k:
            sd[k] = L.tensor(np.array(rng.integers(0, 100), np.int32))
        else:
            sd[k] = L.tensor(rng.standard_normal(shape).astype(np.float32))
    m.load_state_dict(sd)
    return m


def sd_summary(sd, L):
    return [(k, tuple(v.shape), L.dtype_name(v)) for k, v in sd.items()]


# ------------------------------------------------------------------- state_dict
def test_state_dict_keys_order_shapes_and_metadata_match_torch():
    t, j = both(net)
    tsd, jsd = t.state_dict(), j.state_dict()
    assert sd_summary(jsd, JMOD) == sd_summary(tsd, TORCH)
    assert type(jsd) is OrderedDict
    assert jsd._metadata == tsd._metadata
    assert list(jsd._metadata) == list(tsd._metadata)


def test_tied_weights_appear_under_both_keys():
    for L in LIBS:
        sd = net(L).state_dict()
        assert "block.conv.weight" in sd and "head.weight" in sd
        assert "linear1.weight" in sd and "linear2.weight" in sd
    j = net(JMOD)
    sd = j.state_dict()
    assert sd["head.weight"] is sd["block.conv.weight"]


def test_state_dict_values_are_the_current_arrays():
    """jmod: values are the module's current ``jax.Array``s (immutable: a snapshot)."""
    m = filled(JMOD)
    sd = m.state_dict()
    assert all(isinstance(v, jax.Array) for v in sd.values())
    assert sd["linear1.weight"] is m.linear1.weight
    assert sd["block.running"] is m.block.running
    old = np.asarray(sd["linear1.weight"])
    m.linear1.weight = m.linear1.weight + 1
    np.testing.assert_array_equal(sd["linear1.weight"], old)


def test_keep_vars_returns_parameter_slots():
    """torch returns the ``Parameter``s themselves; jmod returns the ``Parameter`` slots."""
    t = net(TORCH).state_dict(keep_vars=True)
    m = net(JMOD)
    j = m.state_dict(keep_vars=True)
    assert list(j) == list(t)
    for k in t:
        assert isinstance(j[k], nn.Parameter) == isinstance(t[k], torch.nn.Parameter), k
    assert j["block.conv.weight"] is m.block.conv._parameters["weight"] is j["head.weight"]
    assert isinstance(j["block.running"], jax.Array)


@pytest.mark.parametrize("prefix", ["", "model.", "a.b."])
def test_destination_and_prefix(prefix):
    def run(L):
        m = net(L)
        dest = OrderedDict()
        dest._metadata = OrderedDict()
        out = m.state_dict(destination=dest, prefix=prefix)
        plain = {"existing": 1}
        out2 = m.block.state_dict(destination=plain, prefix=prefix)
        return out is dest, list(out), dict(out._metadata), out2 is plain, list(out2), hasattr(plain, "_metadata")

    assert run(JMOD) == run(TORCH)


def test_positional_arguments_warn_future_warning():
    def run(L):
        m = net(L)
        dest = OrderedDict()
        with pytest.warns(FutureWarning, match="Positional args are being deprecated, use kwargs instead"):
            out = m.state_dict(dest, "pre.", True)
        with pytest.warns(FutureWarning):
            out2 = m.state_dict(None, "p.")
        return out is dest, list(out), [type(v).__name__ == "Parameter" for v in out.values()], list(out2)

    assert run(JMOD) == run(TORCH)


# -------------------------------------------------------------- load_state_dict
def test_round_trip_into_a_fresh_model_matches_torch():
    t_src, j_src = both(filled)
    t_dst, j_dst = both(net)
    rt = t_dst.load_state_dict(t_src.state_dict())
    rj = j_dst.load_state_dict(j_src.state_dict())
    assert repr(rj) == repr(rt) == "<All keys matched successfully>"
    assert str(rj) == str(rt)
    assert rj.missing_keys == rt.missing_keys == [] and rj.unexpected_keys == []
    assert_states_equal(np_state(j_dst, JMOD), np_state(t_dst, TORCH))


def test_load_torch_state_dict_directly():
    t = filled(TORCH, seed=3)
    j = net(JMOD)
    j.load_state_dict(t.state_dict())  # torch tensors, with torch's _metadata
    assert_states_equal(np_state(j, JMOD), np_state(t, TORCH))
    assert all(isinstance(v, jax.Array) for v in j.state_dict().values())
    # ties survive a load
    assert j.head._parameters["weight"] is j.block.conv._parameters["weight"]


def test_load_numpy_state_dict_casts_to_module_dtype():
    j = net(JMOD)
    sd = {
        k: np.asarray(v).astype(np.float64 if np.asarray(v).dtype == np.float32 else np.asarray(v).dtype)
        for k, v in j.state_dict().items()
    }
    sd["linear1.weight"] = sd["linear2.weight"] = np.full((3, 3), 2.0)  # float64; one module, two names
    sd["block.steps"] = np.array(7, np.int64)
    j.load_state_dict(sd)
    assert j.linear1.weight.dtype == jnp.float32 and j.block.steps.dtype == jnp.int32
    np.testing.assert_array_equal(j.linear1.weight, np.full((3, 3), 2.0, np.float32))
    assert int(j.block.steps) == 7


def test_load_keeps_requires_grad_and_slots():
    """A copying load writes into the existing Parameter slots (ties, optimizers and
    requires_grad unaffected); assign=True puts new Parameters in, as torch does, with
    the module's requires_grad."""
    for assign in (False, True):
        j = net(JMOD)
        j.scale = nn.Parameter(j.scale, requires_grad=False)
        slot = j._parameters["scale"]
        j.load_state_dict(filled(JMOD).state_dict(), assign=assign)
        assert (j._parameters["scale"] is slot) is (not assign)
        assert requires_grad(j.scale) is False and requires_grad(j.linear1.weight) is True


def test_assign_replaces_parameters_and_unties_like_torch():
    """torch's assign=True does ``setattr(module, name, Parameter(value))`` per module, so
    tied parameters come out untied; with a keep_vars state dict the given Parameter
    itself is used (test_load_state_dict_assign_meta)."""

    def run(L, keep_vars):
        m = net(L)
        src = filled(L, seed=5)
        sd = src.state_dict(keep_vars=keep_vars)
        m.load_state_dict(sd, assign=True)
        ps = m._parameters["scale"], m.block.conv._parameters["weight"], m.head._parameters["weight"]
        shared = [ps[0] is src._parameters["scale"], ps[1] is ps[2], m.linear1 is m.linear2]
        return shared, tree_names(m), sorted((k, v.tolist()) for k, v in np_state(m, L).items())

    for keep_vars in (False, True):
        assert run(JMOD, keep_vars) == run(TORCH, keep_vars)


def test_assign_keeps_checkpoint_dtype_like_torch():
    def run(L, assign):
        m = L.nn.Linear(2, 2)
        sd = {"weight": L.tensor(np.ones((2, 2), np.float16)), "bias": L.tensor(np.ones(2, np.float16))}
        m.load_state_dict(sd, assign=assign)
        return L.dtype_name(m.weight), L.dtype_name(m.bias), L.requires_grad(m.weight)

    for assign in (False, True):
        assert run(JMOD, assign) == run(TORCH, assign)


def test_scalar_parameter_accepts_one_element_vector():
    """torch's 0.3 -> 0.4 backward compatibility: a 1-element 1-d tensor loads into a 0-d one."""

    def run(L):
        m = net(L)
        sd = m.state_dict()
        sd["scale"] = L.tensor(np.array([5.0], np.float32))
        r = m.load_state_dict(sd)
        return str(r), tuple(m.scale.shape), float(L.to_numpy(m.scale))

    assert run(JMOD) == run(TORCH)


def test_tied_keys_with_different_values_last_one_wins_like_torch():
    def run(L):
        m = net(L)
        sd = m.state_dict()
        sd["block.conv.weight"] = L.tensor(np.full((3, 3), 1.0, np.float32))
        sd["head.weight"] = L.tensor(np.full((3, 3), 2.0, np.float32))
        m.load_state_dict(sd)
        return L.to_numpy(m.block.conv.weight).tolist(), L.to_numpy(m.head.weight).tolist()

    assert run(JMOD) == run(TORCH)


def _edit(kind):
    """State-dict edits that make a strict load fail (several at once for "all")."""

    def edit(L, sd):
        if kind in ("missing", "all"):
            del sd["block.running"]
            del sd["linear2.bias"]
        if kind in ("unexpected", "all"):
            sd["extra"] = L.ones(1)
            sd["block.extra.param"] = L.ones(1)
            sd["linear1.weight.bad_suffix"] = L.ones(1)
            sd["block.cache"] = L.ones(3)  # a non-persistent buffer is not loadable
            sd["block.unset"] = L.ones(3)  # nor a buffer registered as None
            sd["block.nothing"] = L.ones(3)  # nor a parameter registered as None
            sd["empty.weight"] = L.ones(3)  # nor a child registered as None
        if kind in ("size", "all"):
            sd["block.conv.bias"] = L.ones(4)
            sd["scale"] = L.ones(2, 2)
        if kind in ("type", "all"):
            sd["linear1.bias"] = ((1.0, 2.0, 3.0),)
        return sd

    return edit


JMOD_ACCEPTS = " (jmod accepts jax.Array, numpy.ndarray or torch.Tensor)"
KINDS = ["missing", "unexpected", "size", "type", "all"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("strict", [True, False])
def test_load_errors_match_torch(kind, strict):
    def run(L):
        m = filled(L)
        sd = _edit(kind)(L, m.state_dict())
        return outcome(lambda: m.load_state_dict(sd, strict=strict))

    t, j = run(TORCH), run(JMOD)
    # jmod's message for a non-array value is torch's plus what jmod accepts
    j = (*j[:2], j[2].replace(JMOD_ACCEPTS, "")) if j[0] == "raise" else j
    assert j == t
    expect_raise = strict or kind in ("size", "type", "all")
    assert (t[0] == "raise") == expect_raise


@pytest.mark.parametrize("kind", KINDS)
def test_failed_strict_load_changes_nothing(kind):
    """jmod's strengthening: nothing is written unless the whole load succeeds."""
    m = filled(JMOD)
    m.block.foo = "before"
    before = np_state(m, JMOD)
    sd = _edit(kind)(JMOD, filled(JMOD, seed=9).state_dict())
    with pytest.raises(RuntimeError, match=r"Error\(s\) in loading state_dict for Net:"):
        m.load_state_dict(sd)
    assert_states_equal(np_state(m, JMOD), before)
    assert m.head._parameters["weight"] is m.block.conv._parameters["weight"]


def test_failed_load_restores_extra_state_and_values_seen_by_hooks():
    class Extra(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 2)
            self.tag = "old"

        def get_extra_state(self):
            return {"tag": self.tag}

        def set_extra_state(self, state):
            self.tag = state["tag"]

    m = nn.Sequential(Extra(), nn.Linear(2, 2))
    before = np_state(m, JMOD)
    sd = copy.deepcopy(m.state_dict())
    sd["0._extra_state"] = {"tag": "new"}
    sd["0.lin.weight"] = jnp.full((2, 2), 5.0)
    sd["1.bias"] = jnp.ones(3)  # size mismatch in a later module
    with pytest.raises(RuntimeError, match="size mismatch for 1.bias"):
        m.load_state_dict(sd)
    assert m[0].tag == "old"
    assert_states_equal(np_state(m, JMOD), before)
    sd["1.bias"] = jnp.ones(2)
    m.load_state_dict(sd)
    assert m[0].tag == "new"
    np.testing.assert_array_equal(m[0].lin.weight, np.full((2, 2), 5.0))


def test_non_mapping_state_dict_raises_type_error():
    for bad in ["", 2, [("weight", 1)], None]:
        assert_same_outcome(
            lambda: TORCH.nn.Module().load_state_dict(bad), lambda: JMOD.nn.Module().load_state_dict(bad)
        )


def test_non_tensor_value_message_keeps_torch_wording():
    for L in LIBS:
        m = L.nn.Linear(2, 2, bias=False)
        with pytest.raises(
            RuntimeError, match="expected torch.Tensor or Tensor-like object from checkpoint but received"
        ):
            m.load_state_dict({"weight": ((1.0, 1.0), (2.0, 2.0))})


def test_mapping_that_is_not_a_dict_loads():
    class Proxy(dict):
        pass

    from collections.abc import Mapping

    class ReadOnly(Mapping):
        def __init__(self, d):
            self.d = d

        def __getitem__(self, k):
            return self.d[k]

        def __iter__(self):
            return iter(self.d)

        def __len__(self):
            return len(self.d)

    for wrap in (Proxy, ReadOnly):
        t, j = both(filled)
        rt = t.load_state_dict(wrap(t.state_dict()))
        rj = j.load_state_dict(wrap(j.state_dict()))
        assert str(rj) == str(rt)


def test_incompatible_keys_named_tuple():
    def run(L):
        m = L.nn.Linear(2, 2)
        r = m.load_state_dict({"weight": L.ones(2, 2), "extra": L.ones(1)}, strict=False)
        missing, unexpected = r
        return repr(r), str(r), r.missing_keys, r.unexpected_keys, missing, unexpected, type(r).__name__, r._fields

    assert run(JMOD) == run(TORCH)


# --------------------------------------------------------------------- extra state
def extra_models(L):
    class SubModule(L.nn.Module):
        def __init__(self, foo):
            super().__init__()
            self.foo = foo

        def get_extra_state(self):
            return {"foo": self.foo}

        def set_extra_state(self, state):
            self.foo = state["foo"]

    class MyModule(L.nn.Module):
        def __init__(self, foo, bar):
            super().__init__()
            self.sub = SubModule(foo)
            self.bar = bar

        def get_extra_state(self):
            return {"bar": self.bar}

        def set_extra_state(self, state):
            self.bar = state["bar"]

    class NonDict(L.nn.Module):
        def __init__(self, foo):
            super().__init__()
            self.foo = foo

        def get_extra_state(self):
            return self.foo

        def set_extra_state(self, state):
            self.foo = state

    class OnlyGet(L.nn.Module):
        def get_extra_state(self):
            return {"foo": 5}

    class OnlySet(L.nn.Module):
        def set_extra_state(self, state):
            pass

    return MyModule, NonDict, OnlyGet, OnlySet


def test_extra_state_round_trip():
    def run(L):
        MyModule, NonDict, *_ = extra_models(L)
        m, m2 = MyModule(3, "something"), MyModule(5, "something else")
        sd = m.state_dict()
        out = [list(sd), sd["_extra_state"], sd["sub._extra_state"], str(m2.load_state_dict(sd)), m2.bar, m2.sub.foo]
        for state in ("something", 5, (1, 2)):
            a, b = NonDict(state), NonDict("other")
            b.load_state_dict(a.state_dict())
            out.append((b.foo, list(b.state_dict())))
        return out

    assert run(JMOD) == run(TORCH)


def test_extra_state_missing_get_or_set():
    def run(L):
        _, _, OnlyGet, OnlySet = extra_models(L)
        a, b = OnlyGet(), OnlySet()
        return (
            outcome(lambda: a.load_state_dict(a.state_dict())),
            outcome(lambda: b.load_state_dict(b.state_dict())),
            str(a.load_state_dict(a.state_dict(), strict=False)),
            str(b.load_state_dict({}, strict=False)),
        )

    assert run(JMOD) == run(TORCH)


def test_base_get_extra_state_raises():
    with pytest.raises(RuntimeError, match="Reached a code path in Module.get_extra_state"):
        nn.Module().get_extra_state()
    with pytest.raises(RuntimeError, match="Reached a code path in Module.set_extra_state"):
        nn.Module().set_extra_state({})


# ---------------------------------------------------------- custom / versioned load
def versioned(L):
    class Versioned(L.nn.Module):
        """v1 called the parameter ``w``; v2 renamed it ``weight`` and added ``count``."""

        _version = 2

        def __init__(self):
            super().__init__()
            self.weight = L.Parameter(L.zeros(2))
            self.register_buffer("count", L.zeros(dtype="int32"))

        def _load_from_state_dict(
            self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        ):
            version = local_metadata.get("version", None)
            if version is None or version < 2:
                if prefix + "w" in state_dict:
                    state_dict[prefix + "weight"] = state_dict.pop(prefix + "w")
                state_dict.setdefault(prefix + "count", L.zeros(dtype="int32") + 41)
            super()._load_from_state_dict(
                state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
            )

    return Versioned


@pytest.mark.parametrize("version", [None, 1, 2])
def test_load_from_state_dict_override_migrates_by_version(version):
    def run(L):
        m = L.nn.Sequential(versioned(L)())
        old = OrderedDict([("0.w", L.tensor(np.array([1.0, 2.0], np.float32)))])
        if version is not None:
            old._metadata = OrderedDict([("", {"version": 1}), ("0", {"version": version})])
        res = outcome(lambda: str(m.load_state_dict(old)))
        return res, L.to_numpy(m[0].weight).tolist(), int(L.to_numpy(m[0].count)), m.state_dict()._metadata["0"]

    assert run(JMOD) == run(TORCH)


def test_custom_save_and_load_overrides():
    """torch's ``test_load_state_dict_custom``: overrides that skip the default logic."""

    def run(L):
        class CustomState(L.nn.Module):
            def __init__(self):
                super().__init__()
                self.param = L.Parameter(L.ones(1))
                self.sub = L.nn.Linear(5, 5)

            def _save_to_state_dict(self, destination, prefix, keep_vars):
                destination[prefix + "serialized"] = self.param + 1 if L is JMOD else self.param.data + 1

            def _load_from_state_dict(self, state_dict, prefix, *args):
                if L is JMOD:
                    self.param = state_dict[prefix + "serialized"] - 1
                else:
                    self.param.data.copy_(state_dict[prefix + "serialized"] - 1)

        m = L.nn.Sequential(CustomState())
        m[0].param = L.Parameter(L.tensor(np.array([10.0], np.float32)))
        sd = m.state_dict()
        mm = L.nn.Sequential(CustomState())
        mm.load_state_dict(sd)
        return list(sd), float(L.to_numpy(sd["0.serialized"])[0]), float(L.to_numpy(mm[0].param)[0])

    assert run(JMOD) == run(TORCH)


def test_child_state_dict_hook_sees_only_its_keys():
    """torch's ``test_load_state_dict_child``."""

    def run(L):
        model = L.nn.Linear(1, 1)
        for _ in range(2):
            model = L.nn.Sequential(*[copy.deepcopy(model) for _ in range(3)])
        seen = []

        def hook(module, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):
            seen.append((prefix, len(module.state_dict()), sorted(state_dict)))

        model[0][0].register_load_state_dict_pre_hook(hook)
        model.load_state_dict(model.state_dict(), strict=True)
        return seen

    assert run(JMOD) == run(TORCH)


def test_values_loaded_so_far_are_visible_during_the_load():
    """torch copies each module's values as it goes: a child's pre-hook sees its parent
    loaded, and post-hooks (run after a module and its children) see the new values."""

    def run(L):
        m = L.nn.Sequential(L.nn.Linear(2, 2), L.nn.Sequential(L.nn.Linear(2, 2)))
        seen = []
        getv = lambda mod: L.to_numpy(mod.weight).ravel().tolist()  # noqa: E731
        m[1][0].register_load_state_dict_pre_hook(lambda mod, *a: seen.append(("pre inner", getv(m[0]), getv(mod))))
        m[1].register_load_state_dict_post_hook(lambda mod, inc: seen.append(("post seq", getv(mod[0]))))
        m.register_load_state_dict_post_hook(lambda mod, inc: seen.append(("post root", getv(mod[0]), getv(mod[1][0]))))
        sd = {k: L.tensor(np.full(tuple(v.shape), i, np.float32)) for i, (k, v) in enumerate(m.state_dict().items())}
        for k in list(m.state_dict()):
            if k.endswith("weight"):
                m.get_submodule(k.rsplit(".", 1)[0]).weight = (
                    L.Parameter(L.zeros(2, 2)) if L is TORCH else L.zeros(2, 2)
                )
        m.load_state_dict(sd)
        return seen

    assert run(JMOD) == run(TORCH)


def test_no_warning_on_plain_load():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        j = filled(JMOD)
        j.load_state_dict(j.state_dict())
        j.load_state_dict(filled(TORCH).state_dict())


def test_loaded_model_computes_like_torch():
    t = TORCH.nn.Sequential(TORCH.nn.Linear(4, 3), TORCH.nn.Linear(3, 2))
    j = JMOD.nn.Sequential(JMOD.nn.Linear(4, 3), JMOD.nn.Linear(3, 2))
    j.load_state_dict(t.state_dict())
    x = rng_array(5, 4)
    np.testing.assert_allclose(np.asarray(j(jnp.asarray(x))), t(torch.from_numpy(x)).detach().numpy(), atol=1e-5)


@pytest.mark.parametrize("assign", [False, True])
def test_load_a_keep_vars_state_dict(assign):
    """torch: ``state_dict(keep_vars=True)`` holds Parameters, which load like tensors."""

    def run(L):
        src, dst = filled(L, seed=4), net(L)
        r = dst.load_state_dict(src.state_dict(keep_vars=True), assign=assign)
        return str(r), sorted((k, v.tolist()) for k, v in np_state(dst, L).items())

    assert run(JMOD) == run(TORCH)
