"""Errors that teach: PEP 678 notes on the errors torch code raises on jax arrays.

A torch user's first runs fail with jax's bare messages: ``'ArrayImpl' object has no
attribute 'view'``, ``'int' object is not callable`` (``x.size(0)``: jax's ``size`` is an
int), ``loss.backward()``, ``.item()`` or ``if tensor:`` in compiled code. Where such an
error leaves a module's ``forward`` or hooks (``Module.__call__``) or a ``jmod.jit``
function being traced, :func:`add_porting_note` adds one note with the jax spelling and a
link to docs/errors-from-torch.md. Nothing here runs unless something already failed.
"""

from __future__ import annotations

import linecache
import re
import warnings
from typing import Any

import jax

from jmod._src.errors import RetraceWarning

DOCS = "https://jmod.readthedocs.io/en/latest/errors-from-torch/"
_MARK = "_jmod_porting_note"

# torch tensor method -> the jax spelling (docs/porting.md's table, short form)
SPELLINGS = {
    "view": "x.reshape(...) (jax's x.view(dtype) reinterprets bits; it is not torch's view)",
    "view_as": "x.reshape(y.shape)",
    "reshape_as": "x.reshape(y.shape)",
    "contiguous": "x itself: drop .contiguous() (jax arrays have no strides)",
    "transpose": "x.swapaxes(a, b) (jax's x.transpose takes a full permutation, like torch's permute)",
    "permute": "x.transpose(*dims)",
    "masked_fill": "jnp.where(mask, value, x)",
    "masked_fill_": "x = jnp.where(mask, value, x) (arrays are immutable)",
    "unsqueeze": "jnp.expand_dims(x, dim) or x[:, None]",
    "expand": "jnp.broadcast_to(x, shape)",
    "expand_as": "jnp.broadcast_to(x, y.shape)",
    "split": "jnp.split(x, list(range(size, x.shape[d], size)), axis=d) (jnp's integer argument counts parts)",
    "chunk": "jnp.split(x, chunks, axis=d)",
    "numel": "x.size",
    "nelement": "x.size",
    "dim": "x.ndim",
    "ndimension": "x.ndim",
    "float": "x.astype(jnp.float32)",
    "half": "x.astype(jnp.float16)",
    "double": "x.astype(jnp.float64)",
    "long": "x.astype(jnp.int32) (jnp.int64 with jax_enable_x64)",
    "int": "x.astype(jnp.int32)",
    "bool": "x.astype(jnp.bool_)",
    "type_as": "x.astype(y.dtype)",
    "to": "x.astype(dtype) for a dtype; nothing for a device (jax.device_put(x, device) to move an array)",
    "cuda": "x itself: arrays are placed where the computation runs (model.to('cuda') places a model)",
    "cpu": "x itself, or np.asarray(x) for a NumPy array",
    "numpy": "np.asarray(x)",
    "detach": "jax.lax.stop_gradient(x)",
    "clone": "x itself (arrays are immutable) or jnp.array(x)",
    "data": "the array itself (module.weight is the parameter's array; assign module.weight = w to update it)",
    "grad": "the gradient dict jmod.grad(loss_fn)(model) returns (arrays carry no .grad)",
    "requires_grad": "jmod.nn.parameter.requires_grad(p) for p from named_parameters()",
    "requires_grad_": "module.requires_grad_(False) on the module that owns the parameter",
    "backward": "loss, grads = jmod.value_and_grad(loss_fn)(model); optimizer.step(grads) (gradients are returned, "
    "not stored)",
    "zero_": "jnp.zeros_like(x), or jmod.nn.init.zeros_(module.weight) for a parameter",
    "fill_": "jnp.full_like(x, v), or jmod.nn.init.constant_(module.weight, v) for a parameter",
    "normal_": "jmod.nn.init.normal_(module.weight, mean, std)",
    "uniform_": "jmod.nn.init.uniform_(module.weight, a, b)",
    "copy_": "assign the new array: module.weight = w",
    "add_": "x = x + y (arrays are immutable)",
    "mul_": "x = x * y (arrays are immutable)",
    "exp": "jnp.exp(x)",
    "log": "jnp.log(x)",
    "sqrt": "jnp.sqrt(x)",
    "pow": "x ** p",
    "abs": "jnp.abs(x)",
    "sigmoid": "jax.nn.sigmoid(x)",
    "tanh": "jnp.tanh(x)",
    "relu": "jax.nn.relu(x)",
    "softmax": "jax.nn.softmax(x, axis=d)",
    "log_softmax": "jax.nn.log_softmax(x, axis=d)",
    "clamp": "jnp.clip(x, min, max)",
    "new_zeros": "jnp.zeros(shape, dtype=x.dtype)",
    "new_ones": "jnp.ones(shape, dtype=x.dtype)",
    "new_full": "jnp.full(shape, v, dtype=x.dtype)",
    "is_cuda": "x.device.platform == 'gpu' (concrete arrays only)",
    "device": "no device lookup inside compiled code (a traced value has no device): drop the device plumbing",
}

_ARRAY_TYPE = re.compile(r"ArrayImpl|Tracer\b|Tracer has|\bArray'")


def _note(exc: BaseException, text: str, anchor: str) -> None:
    msg = f"jmod (porting from torch): {text}\nSee {DOCS}#{anchor}"
    if hasattr(exc, "add_note"):
        exc.add_note(msg)
    try:
        setattr(exc, _MARK, True)
    except AttributeError:  # an exception type that takes no attributes: the note is still there
        pass


def _failing_line(exc: BaseException) -> str:
    """The source line the exception was raised from (the innermost frame with source)."""
    tb = exc.__traceback__
    line = ""
    while tb is not None:
        text = linecache.getline(tb.tb_frame.f_code.co_filename, tb.tb_lineno)
        if text.strip() and "site-packages/jax" not in tb.tb_frame.f_code.co_filename:
            line = text
        tb = tb.tb_next
    return line


def add_porting_note(exc: BaseException, compiled: bool = False) -> None:
    """Add a note with the jax spelling to an error torch code raised on jax arrays.

    Called where an exception leaves ``Module.__call__`` (forward and hooks) or a
    ``jmod.jit`` function being traced. Adds at most one note per exception; other
    exceptions are left as they are.

    Args:
        exc (BaseException): the exception on its way out.
        compiled (bool): raised while ``jmod.jit`` traced the function.
    """
    if getattr(exc, _MARK, False):
        return
    if isinstance(exc, AttributeError):
        name = getattr(exc, "name", None)
        text = str(exc)
        if name is None:
            m = re.search(r"has no attribute '?(\w+)'?", text)
            name = m.group(1) if m else None
        if name is None or not _ARRAY_TYPE.search(text):
            return
        if name in SPELLINGS:
            anchor = "backward" if name == "backward" else ("device" if name in ("device", "is_cuda") else "tensor-methods")
            _note(exc, f"jax arrays have no .{name}; write {SPELLINGS[name]}.", anchor)
        else:
            _note(exc, f"jax arrays have no .{name}: torch's tensor methods are jax.numpy functions "
                       f"(python -m jmod.port rewrites a file).", "tensor-methods")
    elif isinstance(exc, jax.errors.TracerBoolConversionError) or (
        isinstance(exc, ValueError) and "truth value of an array" in str(exc)
    ):
        _note(exc, "`if tensor:` (or while/and/or/not on an array) needs a Python bool, which a traced array does "
                   "not have. Write jnp.where(cond, a, b) or jax.lax.cond, or decide from shapes and Python values.",
              "if-tensor")
    elif isinstance(exc, jax.errors.ConcretizationTypeError):
        line = _failing_line(exc)
        if re.search(r"\.item\(\)|\btolist\(\)|\bfloat\(|\bint\(", line) or "item() method" in str(exc):
            _note(exc, ".item(), float(x) and int(x) need a value, which compiled code does not have while it is "
                       "traced. Return the array from the compiled function and call .item() outside it (a logged "
                       "loss: return it), or use jax.debug.print.", "item")
        else:
            _note(exc, "compiled code (jmod.jit, Module.compile) needed a concrete value from a traced array; "
                       "keep Python control flow on shapes and Python values.", "item")
    elif isinstance(exc, TypeError) and re.search(r"'int' object is not callable", str(exc)):
        line = _failing_line(exc)
        if ".size(" in line:
            _note(exc, "jax's x.size is the number of elements (an int), so x.size(0) calls an int. torch's "
                       "x.size(d) is x.shape[d], x.size() is x.shape; x.numel() is x.size.", "size")
    elif isinstance(exc, NotImplementedError) and "array.view()" in str(exc):
        _note(exc, "jax's x.view(dtype) reinterprets bits; torch's x.view(*shape) is x.reshape(*shape).", "tensor-methods")


# Traces of one jmod.jit function for new argument shapes before the warning: each new
# shape compiles anew, as in jax.jit.
SHAPE_RETRACE_WARN_AT = 8


def note_retrace(owner: Any, dyn: list) -> None:
    """Warn once when a ``jmod.jit`` function keeps being traced for new input shapes.

    Args:
        owner (Any): the ``JitFunction`` being traced (``trace_count`` already counts this trace).
        dyn (list): its array arguments (tracers) for this trace.
    """
    retraces = owner.trace_count - len(owner.entries)
    if retraces + 1 < SHAPE_RETRACE_WARN_AT or getattr(owner, "_jmod_shape_warned", False):
        return
    owner._jmod_shape_warned = True
    shapes = ", ".join(str(tuple(getattr(x, "shape", ()))) for x in dyn)
    warnings.warn(
        f"jmod.jit({getattr(owner.fn, '__qualname__', owner.fn)!r}) has been traced {owner.trace_count} times: "
        f"each new input shape compiles anew (this trace: array arguments of shapes {shapes}). torch runs any "
        f"shape at no cost; in jax pad or bucket inputs to a few shapes (e.g. drop_last=True for the last "
        f"batch). See {DOCS}#retrace",
        RetraceWarning,
        stacklevel=2,
    )
