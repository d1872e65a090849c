"""Errors that teach: torch spellings that fail on jax arrays carry a note with the jax
spelling and a link to docs/errors-from-torch.md (jmod/_src/porting_notes.py)."""

from __future__ import annotations

import jax.numpy as jnp
import pytest

import jmod
import jmod.nn.modules.module as module_py
from jmod import nn
from jmod._src import porting_notes
from jmod.errors import RetraceWarning


class Fn(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn
        self.lin = nn.Linear(3, 3)

    def forward(self, x):
        return self.fn(self, self.lin(x))


class Outer(nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x)


def _notes(exc) -> list[str]:
    return [n for n in getattr(exc, "__notes__", []) if n.startswith("jmod (porting from torch)")]


def _raise(call, exc_type):
    with pytest.raises(exc_type) as info:
        call()
    notes = _notes(info.value)
    assert len(notes) == 1, notes  # once, even through nested modules and jmod.jit
    return notes[0]


X = jnp.ones((2, 3))


def test_tensor_method_in_forward_eager_nested_and_compiled():
    m = Outer(Fn(lambda self, x: x.masked_fill(x > 0, 0.0)))
    note = _raise(lambda: m(X), AttributeError)
    assert "jnp.where(mask, value, x)" in note and "errors-from-torch/#tensor-methods" in note
    note = _raise(lambda: jmod.jit(lambda m, x: m(x))(m, X), AttributeError)
    assert "jnp.where(mask, value, x)" in note
    note = _raise(lambda: Fn(lambda self, x: x.contiguous())(X), AttributeError)
    assert "drop .contiguous()" in note


def test_unlisted_tensor_method_gets_the_general_note():
    note = _raise(lambda: Fn(lambda self, x: x.addcmul(x, x))(X), AttributeError)
    assert ".addcmul" in note and "python -m jmod.port" in note


def test_size_call_type_error():
    note = _raise(lambda: Fn(lambda self, x: x.reshape(x.size(0), -1))(X), TypeError)
    assert "x.size(d) is x.shape[d]" in note and "#size" in note


def test_hook_errors_get_the_note():
    m = Fn(lambda self, x: x)
    m.register_forward_hook(lambda mod, args, out: out.detach())
    assert "jax.lax.stop_gradient(x)" in _raise(lambda: m(X), AttributeError)
    m = Fn(lambda self, x: x)
    m.register_forward_pre_hook(lambda mod, args: (args[0].float(),))
    assert "x.astype(jnp.float32)" in _raise(lambda: m(X), AttributeError)


def test_backward_in_a_compiled_step():
    def step(model, x):
        loss = model(x).sum()
        loss.backward()
        return loss

    note = _raise(lambda: jmod.jit(step)(nn.Linear(3, 3), X), AttributeError)
    assert "jmod.value_and_grad(loss_fn)(model)" in note and "#backward" in note


@pytest.mark.parametrize("fn", [lambda self, x: x * x.sum().item(), lambda self, x: x * float(x.sum())])
def test_item_and_float_under_jit(fn):
    m = Fn(fn)
    assert m(X).shape == (2, 3)  # eagerly they work, as in torch
    note = _raise(lambda: jmod.jit(lambda m, x: m(x))(m, X), jax_errors().ConcretizationTypeError)
    assert ".item()" in note and "#item" in note


def jax_errors():
    import jax

    return jax.errors


def test_if_tensor_in_compiled_forward():
    def fn(self, x):
        if x.sum() > 0:
            return x
        return -x

    m = Fn(fn)
    m.compile()
    note = _raise(lambda: m(X), jax_errors().TracerBoolConversionError)
    assert "jnp.where(cond, a, b)" in note and "#if-tensor" in note


def test_unrelated_errors_get_no_note():
    class Missing(nn.Module):
        def forward(self, x):
            return self.not_there

    with pytest.raises(AttributeError) as info:
        Missing()(X)
    assert _notes(info.value) == []
    with pytest.raises(TypeError) as info:
        Fn(lambda self, x: len(5))(X)
    assert _notes(info.value) == []


def test_code_that_does_not_fail_never_calls_the_note_function(monkeypatch):
    def boom(exc, compiled=False):
        raise AssertionError("add_porting_note called without an error")

    monkeypatch.setattr(module_py, "add_porting_note", boom)
    monkeypatch.setattr(porting_notes, "add_porting_note", boom)
    m = Outer(Fn(lambda self, x: x * 2))
    eager = m(X)
    compiled = jmod.jit(lambda m, x: m(x))(m, X)
    assert jnp.array_equal(eager, compiled)


def test_retrace_per_new_input_shape_warns_once():
    f = jmod.jit(lambda m, x: m(x).sum())
    m = nn.Linear(3, 2)
    for n in range(1, porting_notes.SHAPE_RETRACE_WARN_AT):
        f(m, jnp.ones((n, 3)))  # below the threshold: no warning (pytest turns warnings into errors)
    with pytest.warns(RetraceWarning, match="each new input shape compiles anew") as record:
        f(m, jnp.ones((porting_notes.SHAPE_RETRACE_WARN_AT, 3)))
        f(m, jnp.ones((porting_notes.SHAPE_RETRACE_WARN_AT + 1, 3)))
    assert len(record) == 1 and "errors-from-torch/#retrace" in str(record[0].message)
