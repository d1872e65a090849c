"""Autocast (``torch.autocast``): per-op mixed precision at jmod's functional layer.

torch registers an Autocast kernel for a fixed list of aten ops per device type
(``aten/src/ATen/autocast_mode.cpp`` / ``autocast_mode.h``); inside an autocast
region such an op casts its floating-point inputs according to its *policy* before
running, and every other op runs in its inputs' dtypes. jmod mirrors those lists at
the one place its layers compute: each function of ``jmod.nn.functional`` that
corresponds to a listed aten op is decorated with :func:`autocast_op` naming that op,
and :data:`POLICIES` (below, copied from torch's lists) decides what happens per
device type. Policies, as in torch:

* ``lower_precision_fp``: cast floating inputs to the autocast dtype (bf16 / fp16);
* ``fp32``: cast floating inputs to float32;
* ``fp32_set_opt_dtype``: if the first input is eligible and no ``dtype=`` was given,
  run with ``dtype=float32`` (softmax, log_softmax on CUDA);
* ``promote``: cast floating inputs to the widest floating type among them;
* ``banned``: raise (binary_cross_entropy on CUDA).

Eligible inputs are floating arrays that are not float64 (torch's ``is_eligible``).
Like torch's autocast kernels, a decorated function runs with autocast suspended,
so functions it calls internally are not cast again.

The state lives in a :class:`contextvars.ContextVar` (per thread, like torch's
thread-local autocast state), so it is read when code runs: eagerly, and while
``jmod.jit`` / ``jax.jit`` traces. Compiled code is therefore specialised on the
state active at trace time, and :func:`cache_token` is part of ``jmod.jit``'s key.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import threading
import warnings
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "autocast",
    "autocast_op",
    "cache_token",
    "is_autocast_available",
    "is_autocast_enabled",
    "get_autocast_dtype",
]

# ((device_type, enabled, dtype name, cache_enabled), ...) for the device types an
# autocast region set, innermost last. Empty (the default) means autocast is off
# everywhere; the fast path of every decorated function is one ``get`` and a truth test.
_STATE: contextvars.ContextVar[tuple] = contextvars.ContextVar("jmod_autocast", default=())

_DEFAULT_DTYPE = {"cpu": "bfloat16", "cuda": "float16"}
_SUPPORTED = ("cpu", "cuda")
_LOWER = "lower_precision_fp"
_FP32 = "fp32"
_SET_OPT = "fp32_set_opt_dtype"
_PROMOTE = "promote"
_BANNED = "banned"

# torch's op lists (aten/src/ATen/autocast_mode.cpp, AutocastCPU; autocast_mode.h
# AT_FORALL_* for AutocastCUDA), restricted to the ops jmod.nn.functional implements.
# Keys are aten op names; the functional tagged with each is named in the comment
# where it differs.
_CPU = {
    # lower_precision_fp
    "conv1d": _LOWER,
    "conv2d": _LOWER,
    "conv3d": _LOWER,
    "conv_tbc": _LOWER,
    "conv_transpose1d": _LOWER,
    "conv_transpose2d": _LOWER,
    "conv_transpose3d": _LOWER,
    "linear": _LOWER,
    "prelu": _LOWER,
    "scaled_dot_product_attention": _LOWER,
    "bmm": _LOWER,  # multi_head_attention_forward's torch.bmm / torch.baddbmm
    "baddbmm": _LOWER,
    "mkldnn_rnn_layer": _LOWER,  # nn.LSTM's CPU kernel
    # nn.RNN is composite over linear: every step's linears run in the lower precision
    # and the hidden state is in it from the first step on, which casting all its
    # inputs reproduces. (nn.GRU keeps a float32 state: not reproduced, see docs.)
    "rnn_tanh": _LOWER,
    "rnn_relu": _LOWER,
    # fp32
    "avg_pool3d": _FP32,
    "binary_cross_entropy": _FP32,
    "grid_sampler": _FP32,  # F.grid_sample
    "max_pool3d": _FP32,  # F.max_pool3d without return_indices (max_pool3d_with_indices is not listed)
    "max_unpool2d": _FP32,
    "max_unpool3d": _FP32,
    "adaptive_avg_pool3d": _FP32,
    "reflection_pad1d": _FP32,  # F.pad(mode="reflect") by padded dims
    "reflection_pad2d": _FP32,
    "replication_pad1d": _FP32,  # F.pad(mode="replicate")
    "replication_pad2d": _FP32,
    "replication_pad3d": _FP32,
    "mse_loss": _FP32,
    "cosine_embedding_loss": _FP32,
    "nll_loss": _FP32,  # nll_loss and nll_loss2d
    "hinge_embedding_loss": _FP32,
    "poisson_nll_loss": _FP32,
    "smooth_l1_loss": _FP32,
    "cross_entropy_loss": _FP32,  # F.cross_entropy
    "l1_loss": _FP32,
    "huber_loss": _FP32,
    "margin_ranking_loss": _FP32,
    "soft_margin_loss": _FP32,
    "triplet_margin_loss": _FP32,
    "multi_margin_loss": _FP32,
    "ctc_loss": _FP32,
    "kl_div": _FP32,
    "multilabel_margin_loss": _FP32,
    "binary_cross_entropy_with_logits": _FP32,
    "fractional_max_pool2d": _FP32,
    "fractional_max_pool3d": _FP32,
    "adaptive_max_pool3d": _FP32,
    # promote: cat, stack, index_copy (jnp.concatenate / jnp.stack already promote)
}

_UPSAMPLE = (
    "upsample_nearest1d",
    "_upsample_nearest_exact1d",
    "upsample_nearest2d",
    "_upsample_nearest_exact2d",
    "upsample_nearest3d",
    "_upsample_nearest_exact3d",
    "upsample_linear1d",
    "upsample_bilinear2d",
    "_upsample_bilinear2d_aa",
    "upsample_trilinear3d",
    "upsample_bicubic2d",
    "_upsample_bicubic2d_aa",
)

_CUDA = {
    # lower_precision_fp (AT_FORALL_LOWER_PRECISION_FP)
    "conv1d": _LOWER,
    "conv2d": _LOWER,
    "conv3d": _LOWER,
    "conv_tbc": _LOWER,
    "conv_transpose1d": _LOWER,
    "conv_transpose2d": _LOWER,
    "conv_transpose3d": _LOWER,
    "prelu": _LOWER,
    "linear": _LOWER,
    "lstm_cell": _LOWER,
    "gru_cell": _LOWER,
    "rnn_tanh_cell": _LOWER,
    "rnn_relu_cell": _LOWER,
    "_cudnn_rnn": _LOWER,  # nn.LSTM/GRU/RNN (aten/src/ATen/cudnn/AutocastRNN.cpp)
    "scaled_dot_product_attention": _LOWER,
    "bmm": _LOWER,  # multi_head_attention_forward's torch.bmm / torch.baddbmm
    "baddbmm": _LOWER,
    # fp32 (AT_FORALL_FP32)
    "softplus": _FP32,
    "layer_norm": _FP32,
    "group_norm": _FP32,
    "cosine_similarity": _FP32,
    "poisson_nll_loss": _FP32,
    "cosine_embedding_loss": _FP32,
    "nll_loss": _FP32,
    "hinge_embedding_loss": _FP32,
    "kl_div": _FP32,
    "l1_loss": _FP32,
    "smooth_l1_loss": _FP32,
    "huber_loss": _FP32,
    "mse_loss": _FP32,
    "margin_ranking_loss": _FP32,
    "multilabel_margin_loss": _FP32,
    "soft_margin_loss": _FP32,
    "triplet_margin_loss": _FP32,
    "multi_margin_loss": _FP32,
    "binary_cross_entropy_with_logits": _FP32,
    "pdist": _FP32,
    "pow": _FP32,  # F.lp_pool*d's input.pow(p)
    **dict.fromkeys(_UPSAMPLE, _FP32),  # F.interpolate by mode and input rank
    # cross_entropy_loss has no CUDA autocast kernel: it decomposes into log_softmax
    # (fp32_set_opt_dtype) and nll_loss (fp32), so its result is float32 computed from
    # float32 log-probabilities, which casting its inputs to float32 reproduces.
    "cross_entropy_loss": _FP32,
    # fp32_set_opt_dtype
    "softmax": _SET_OPT,  # F.softmax, F.softmin (which calls softmax)
    "log_softmax": _SET_OPT,
    # promote (AT_FORALL_PROMOTE)
    "bilinear": _PROMOTE,
    "grid_sampler": _PROMOTE,
    # banned
    "binary_cross_entropy": _BANNED,
}

POLICIES: dict[str, dict[str, str]] = {"cpu": _CPU, "cuda": _CUDA}

_BCE_BANNED = (
    "torch.nn.functional.binary_cross_entropy and torch.nn.BCELoss are unsafe to autocast.\n"
    "Many models use a sigmoid layer right before the binary cross entropy layer.\n"
    "In this case, combine the two layers using torch.nn.functional.binary_cross_entropy_with_logits\n"
    "or torch.nn.BCEWithLogitsLoss.  binary_cross_entropy_with_logits and BCEWithLogits are\n"
    "safe to autocast."
)


# ----------------------------------------------------------------------- state queries
def cache_token() -> tuple:
    """A hashable description of the autocast state of this thread (``()`` when no
    autocast region is active). Compiled code traced under one state is only valid
    under an equal token: ``jmod.jit`` keys its cache on it."""
    return _STATE.get()


# Compiled code is specialised on the autocast state it was traced under: jmod.jit
# compares this token on every call (a context-variable read).
from jmod._src.binding import CALL_CONTEXT_PROVIDERS as _CALL_CONTEXT_PROVIDERS  # noqa: E402

_CALL_CONTEXT_PROVIDERS.append(_STATE.get)  # cache_token, without a Python frame per call


def _lookup(state: tuple, device_type: str) -> tuple | None:
    for entry in reversed(state):
        if entry[0] == device_type:
            return entry
    return None


def is_autocast_available(device_type: str) -> bool:
    """Whether jmod has autocast op lists for ``device_type`` (``"cpu"``, ``"cuda"``).

    Args:
        device_type (str): a device type, as in ``torch.amp.is_autocast_available``.

    Returns:
        ``True`` for ``"cpu"`` and ``"cuda"``.
    """
    return device_type in _SUPPORTED


def is_autocast_enabled(device_type: str = "cuda") -> bool:
    """Whether autocast is enabled for ``device_type`` in this thread (``torch.is_autocast_enabled``).

    Args:
        device_type (str): ``"cpu"`` or ``"cuda"``.

    Returns:
        ``True`` inside an enabled ``jmod.autocast(device_type)`` region.
    """
    entry = _lookup(_STATE.get(), device_type)
    return bool(entry and entry[1])


def get_autocast_dtype(device_type: str) -> Any:
    """The lower-precision dtype autocast uses for ``device_type`` (``torch.get_autocast_dtype``).

    Args:
        device_type (str): ``"cpu"`` (default ``bfloat16``) or ``"cuda"`` (default ``float16``).

    Returns:
        A ``jnp.dtype``.
    """
    if device_type not in _SUPPORTED:
        raise RuntimeError(f"User specified an unsupported autocast device_type '{device_type}'")
    entry = _lookup(_STATE.get(), device_type)
    return jnp.dtype(entry[2] if entry else _DEFAULT_DTYPE[device_type])


# ------------------------------------------------------------------------ the region
class autocast:  # noqa: N801 - torch's name
    """Run a region in mixed precision with torch's per-op rules (``torch.autocast``).

    Inside the region, the functions of ``jmod.nn.functional`` (and so the ``jmod.nn``
    layers that call them) that torch lists for ``device_type`` cast their inputs: on
    CPU, ``linear``/``conv*``/``prelu``/``scaled_dot_product_attention`` compute in
    ``dtype`` (default ``bfloat16``) and the losses (``mse_loss``, ``cross_entropy``,
    ...) in float32; on CUDA the CUDA lists apply (default ``float16``; ``softmax``,
    ``layer_norm`` in float32). Every other operation runs in its inputs' dtypes.
    Parameters stay float32 and their gradients come back in float32. Works
    eagerly, under ``jmod.jit`` (compiled code is specialised on the autocast state:
    calling a compiled function inside and outside a region traces it once for each)
    and under ``jmod.grad``. The state is per thread.

    Usable as a context manager or a decorator; regions nest, and
    ``autocast(device_type, enabled=False)`` turns autocast off in a sub-region.

    Args:
        device_type (str): ``"cpu"`` or ``"cuda"``; the rules of a device type apply
            to computations on JAX's default backend of that type (``"cuda"`` for a
            GPU backend).
        dtype (Any): the lower-precision dtype (``jnp.bfloat16``/``jnp.float16``, a
            torch dtype or a name); ``None`` for the device type's default.
        enabled (bool): whether autocasting is on in the region.
        cache_enabled (bool | None): accepted for torch compatibility. torch caches
            the casts of float32 weights inside a region; under ``jax.jit`` XLA
            removes repeated casts, so jmod keeps no cache.

    Examples:
        >>> import jax.numpy as jnp, jmod
        >>> from jmod import nn
        >>> import jmod.nn.functional as F
        >>> model = nn.Linear(4, 3)
        >>> with jmod.autocast("cpu"):
        ...     y = model(jnp.ones((2, 4)))
        ...     loss = F.mse_loss(y, jnp.zeros((2, 3)))
        >>> y.dtype, loss.dtype, model.weight.dtype
        (dtype(bfloat16), dtype('float32'), dtype('float32'))
    """

    def __init__(
        self, device_type: str, dtype: Any = None, enabled: bool = True, cache_enabled: bool | None = None
    ) -> None:
        if not isinstance(device_type, str):
            raise ValueError(f"Expected `device_type` of type `str`, got: `{type(device_type)}`")
        if not is_autocast_available(device_type):
            raise RuntimeError(f"User specified an unsupported autocast device_type '{device_type}'")
        self.device = device_type
        if dtype is None:
            self.fast_dtype = get_autocast_dtype(device_type)
        else:
            from jmod._src.devices import as_dtype

            self.fast_dtype = jnp.dtype(as_dtype(dtype))
        self._cache_enabled = True if cache_enabled is None else bool(cache_enabled)
        if enabled:
            if device_type == "cuda":
                if not _has_gpu():
                    warnings.warn("CUDA is not available or torch_xla is imported. Disabling autocast.", stacklevel=2)
                    enabled = False
            elif self.fast_dtype not in (jnp.dtype(jnp.bfloat16), jnp.dtype(jnp.float16)):
                name = device_type.upper()
                warnings.warn(
                    f"In {name} autocast, but the target dtype is not supported. Disabling autocast.\n"
                    f"{name} Autocast only supports dtypes of torch.bfloat16, torch.float16 currently.",
                    stacklevel=2,
                )
                enabled = False
        self._enabled = bool(enabled)
        # Tokens per thread: one instance may be entered by several threads at once (a
        # decorated function called concurrently), and each thread resets its own state.
        self._local = threading.local()

    def __enter__(self) -> autocast:
        entry = (self.device, self._enabled, self.fast_dtype.name, self._cache_enabled)
        tokens = self._local.__dict__.setdefault("tokens", [])
        tokens.append(_STATE.set(_STATE.get() + (entry,)))
        return self

    def __exit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> bool:
        _STATE.reset(self._local.tokens.pop())
        return False

    def __call__(self, func: Callable) -> Callable:
        if not callable(func):
            raise TypeError(
                f"autocast()(func) requires a callable, but got {type(func).__name__}. "
                f"Did you mean to use autocast as a context manager? For example:\n"
                f"    with torch.autocast(device_type=...):\n"
                f"        output = model(input)"
            )

        @functools.wraps(func)
        def decorate_autocast(*args: Any, **kwargs: Any) -> Any:
            with self:
                return func(*args, **kwargs)

        return decorate_autocast


@functools.cache
def _has_gpu() -> bool:
    try:
        return bool(jax.devices("gpu"))
    except RuntimeError:
        return False


@functools.cache
def _backend_device_type() -> str:
    # The device type whose rules apply: JAX's default backend (traced arrays carry no
    # device, so this is the one answer that is the same eagerly and under jit).
    backend = jax.default_backend()
    return "cuda" if backend in ("gpu", "cuda", "rocm") else backend


# -------------------------------------------------------------------- applying rules
def _eligible(x: Any) -> bool:
    if isinstance(x, (jax.Array, np.ndarray)):
        dt = x.dtype
        return jnp.issubdtype(dt, jnp.floating) and dt != np.float64
    return False


def _cast(x: Any, dtype: Any) -> Any:
    if _eligible(x):
        return x if x.dtype == dtype else jnp.asarray(x).astype(dtype)
    if isinstance(x, (list, tuple, dict)):  # TensorList arguments (and an RNN's weight dicts)
        return jax.tree_util.tree_map(lambda v: _cast(v, dtype) if _eligible(v) else v, x)
    return x


def _widest(args: tuple, kwargs: dict, lower: Any) -> Any:
    flat = jax.tree_util.tree_leaves((args, kwargs))
    return jnp.dtype(jnp.float32) if any(_eligible(v) and v.dtype == jnp.float32 for v in flat) else lower


def autocast_op(op: str | Callable[[dict], str | None]) -> Callable[[Callable], Callable]:
    """Tag a functional as aten op ``op`` for autocast (see the module docstring).

    Args:
        op (str | Callable[[dict], str | None]): the aten op name, or a function of the
            call's bound arguments (a dict by parameter name, defaults applied)
            returning it (``F.pad`` is ``reflection_pad2d`` or ``constant_pad_nd``
            depending on its mode and sizes), or ``None`` for an op no list names.

    Returns:
        A decorator; the decorated function is unchanged outside autocast regions.
    """

    def decorate(fn: Callable) -> Callable:
        sig = inspect.signature(fn)
        dtype_pos = list(sig.parameters).index("dtype") if "dtype" in sig.parameters else None

        def op_name(args: tuple, kwargs: dict) -> str | None:
            if isinstance(op, str):
                return op
            bound = sig.bind(*args, **kwargs)
            bound.apply_defaults()
            return op(bound.arguments)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            state = _STATE.get()
            if not state:
                return fn(*args, **kwargs)
            entry = _lookup(state, _backend_device_type())
            if entry is None or not entry[1]:
                return fn(*args, **kwargs)
            name = op_name(args, kwargs)
            policy = POLICIES[entry[0]].get(name) if name is not None else None
            if policy is None:
                return fn(*args, **kwargs)
            token = _STATE.set(())  # torch's ExcludeDispatchKeyGuard: inner ops run as written
            try:
                return _apply(policy, fn, jnp.dtype(entry[2]), args, kwargs, dtype_pos)
            finally:
                _STATE.reset(token)

        wrapper.__jmod_autocast_op__ = op  # type: ignore[attr-defined]
        return wrapper

    return decorate


def _apply(policy: str, fn: Callable, lower: Any, args: tuple, kwargs: dict, dtype_pos: int | None) -> Any:
    if policy == _LOWER:
        to = lower
    elif policy == _FP32:
        to = jnp.dtype(jnp.float32)
    elif policy == _PROMOTE:
        to = _widest(args, kwargs, lower)
    elif policy == _SET_OPT:
        given = args[dtype_pos] if dtype_pos is not None and len(args) > dtype_pos else kwargs.get("dtype")
        if args and _eligible(args[0]) and given is None:
            args = args[:dtype_pos] if dtype_pos is not None else args
            kwargs = {**kwargs, "dtype": jnp.float32}
        return fn(*args, **kwargs)
    elif policy == _BANNED:
        raise RuntimeError(_BCE_BANNED)
    else:  # pragma: no cover - the tables only hold the policies above
        raise AssertionError(policy)
    return fn(*(_cast(a, to) for a in args), **{k: _cast(v, to) for k, v in kwargs.items()})


# ------------------------------------------------- aten op of functionals with variants
def max_pool3d_op(a: dict) -> str | None:
    """``F.max_pool3d``: ``max_pool3d``, or the unlisted ``max_pool3d_with_indices``."""
    return None if a.get("return_indices") else "max_pool3d"


def pad_op(a: dict) -> str | None:
    """``F.pad``: ``reflection_pad{n}d`` / ``replication_pad{n}d`` by the padded dims."""
    n = len(a["pad"]) // 2
    mode = a.get("mode", "constant")
    if mode == "reflect":
        return f"reflection_pad{n}d"
    if mode == "replicate":
        return f"replication_pad{n}d"
    return None  # constant_pad_nd, _pad_circular: not listed


def interpolate_op(a: dict) -> str | None:
    """``F.interpolate``: the ``upsample_*`` (or ``adaptive_avg_pool*`` for "area") op
    torch's Python dispatches to for the mode and input rank."""
    n = jnp.ndim(a["input"]) - 2
    mode = a.get("mode", "nearest")
    aa = bool(a.get("antialias"))
    return {
        "nearest": f"upsample_nearest{n}d",
        "nearest-exact": f"_upsample_nearest_exact{n}d",
        "linear": "upsample_linear1d",
        "bilinear": "_upsample_bilinear2d_aa" if aa else "upsample_bilinear2d",
        "bicubic": "upsample_bicubic2d" if not aa else "_upsample_bicubic2d_aa",
        "trilinear": "upsample_trilinear3d",
        "area": f"adaptive_avg_pool{n}d",
    }.get(mode)


def rnn_layers_op(a: dict) -> str | None:
    """``nn.RNN/LSTM/GRU``: the op torch runs the whole layer as (by device, in the tables)."""
    mode = a["mode"]
    if _backend_device_type() == "cuda":
        return "_cudnn_rnn"
    return {"LSTM": "mkldnn_rnn_layer", "RNN_TANH": "rnn_tanh", "RNN_RELU": "rnn_relu"}.get(mode)



def lp_pool_op(n: int) -> Callable[[dict], str | None]:
    """``F.lp_pool{n}d`` is Python over listed ops: ``pow`` (float32 on CUDA), then
    ``avg_pool{n}d`` (``avg_pool3d`` is float32 on CPU) or ``max_pool{n}d``. Its jitted
    core calls jmod's pooling functions, so the casts must be settled before it (a
    jax.jit cache does not know the autocast state)."""

    def op(a: dict) -> str | None:
        if _backend_device_type() == "cuda":
            return "pow"
        return "avg_pool3d" if n == 3 else None

    return op
