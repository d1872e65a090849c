"""``torch.nn.init`` on JAX arrays: the same names, formulas and distributions.

JAX arrays are immutable, so each ``*_`` function *returns* the new array. When the
array given was read from a module's parameter (``m.weight``, a value of
``named_parameters()``...), that parameter is updated too, so torch's in-place idiom
works as written::

    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

An array that belongs to no module is left as it is; use the returned value.
Random draws come from jmod's global generator (``jmod.manual_seed``) or the
``generator`` argument.
"""

from __future__ import annotations

import math
import threading
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jmod._src.arrays import host_empty, host_full, is_tracer
from jmod._src.random import Generator, next_key
from jmod.nn.parameter import owner_of

__all__ = [
    "calculate_gain",
    "uniform_",
    "normal_",
    "trunc_normal_",
    "constant_",
    "ones_",
    "zeros_",
    "eye_",
    "dirac_",
    "xavier_uniform_",
    "xavier_normal_",
    "kaiming_uniform_",
    "kaiming_normal_",
    "orthogonal_",
    "sparse_",
]


def _host_rng(generator: Generator | None) -> np.random.Generator | None:
    """A NumPy generator seeded from the next jmod key, or None inside a trace.

    Initialisation draws on the host: ``jax.random`` would compile a kernel for every
    new parameter shape (0.1-0.3 s each), which made building a model take seconds.
    The stream is still determined by ``jmod.manual_seed`` (the seed comes from jmod's
    generator), and the distributions are the same.
    """
    key = next_key(generator)
    if is_tracer(key):
        return None
    return np.random.default_rng(np.asarray(jax.random.key_data(key)).astype(np.uint64).tolist())


# Set while a lazy module materializes its parameters (jmod/nn/modules/lazy.py): a draw
# whose key is traced (the first call ran inside jmod.jit) then still runs NumPy on the
# host, through a callback, so the values are the ones an eager first call would draw.
class _ThreadCounter(threading.local):
    """A per-thread counter used as ``counter[0]``: one thread materializing a lazy
    module (or running skip_init) says nothing about draws in another thread."""

    def __init__(self) -> None:
        self.value = 0

    def __getitem__(self, i: int) -> int:
        return self.value

    def __setitem__(self, i: int, v: int) -> None:
        self.value = v


_HOST_DRAWS_IN_TRACE = _ThreadCounter()


def _host_draw(key: jax.Array, shape: tuple, dt: Any, draw: Any) -> jax.Array:
    """``draw(numpy_rng)`` seeded from a traced ``key`` exactly as ``_host_rng`` seeds it."""
    out_dtype = np.dtype(dt)

    def host(key_data: Any) -> Any:
        rng = np.random.default_rng(np.asarray(key_data).astype(np.uint64).tolist())
        return np.asarray(draw(rng)).astype(out_dtype)

    return jax.pure_callback(host, jax.ShapeDtypeStruct(shape, out_dtype), jax.random.key_data(key))


# Set by ``jmod.nn.utils.skip_init``: uniform/normal initializers (the bulk of every
# layer's reset_parameters) allocate instead of drawing; skip_init zeroes the result.
_SKIP_DRAWS = _ThreadCounter()


def _draw_uniform(tensor: Any, a: float, b: float, generator: Generator | None) -> jax.Array:
    shape, dt = jnp.shape(tensor), _dtype(tensor)
    if _SKIP_DRAWS[0]:
        return host_empty(shape, dt)
    key = next_key(generator)
    if is_tracer(key):
        if _HOST_DRAWS_IN_TRACE[0]:
            return _host_draw(key, shape, dt, lambda rng: rng.uniform(a, b, shape))
        return jax.random.uniform(next_key(generator), shape, dt, minval=a, maxval=b)
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).astype(np.uint64).tolist())
    return jax.device_put(rng.uniform(a, b, shape).astype(np.dtype(dt)))


def _draw_normal(tensor: Any, mean: float, std: float, generator: Generator | None) -> jax.Array:
    shape, dt = jnp.shape(tensor), _dtype(tensor)
    if _SKIP_DRAWS[0]:
        return host_empty(shape, dt)
    key = next_key(generator)
    if is_tracer(key):
        if _HOST_DRAWS_IN_TRACE[0]:
            return _host_draw(key, shape, dt, lambda rng: rng.normal(mean, std, shape))
        return (mean + std * jax.random.normal(next_key(generator), shape, dt)).astype(dt)
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).astype(np.uint64).tolist())
    return jax.device_put(rng.normal(mean, std, shape).astype(np.dtype(dt)))


def _update(tensor: Any, new: jax.Array) -> jax.Array:
    """Write ``new`` into the parameter ``tensor`` was read from (if any) and return it."""
    slot = owner_of(tensor)
    if slot is not None:
        old = slot.data
        sharding = getattr(old, "sharding", None)
        if sharding is not None and getattr(new, "sharding", None) != sharding:
            new = jax.device_put(new, sharding)
        slot.data = new
        return slot._note_read()
    return new


def _no_op_if_empty(tensor: Any) -> bool:
    if 0 in jnp.shape(tensor):
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=3)
        return True
    return False


def _dtype(tensor: Any) -> Any:
    dt = jnp.result_type(tensor)
    return dt if jnp.issubdtype(dt, jnp.floating) else jnp.float32


def calculate_gain(nonlinearity: str, param: int | float | None = None) -> float:
    r"""Return the recommended gain for a nonlinearity (torch's table).

    ============ ==========================================
    nonlinearity gain
    ============ ==========================================
    linear/conv  :math:`1`
    sigmoid      :math:`1`
    tanh         :math:`\frac{5}{3}`
    relu         :math:`\sqrt{2}`
    leaky_relu   :math:`\sqrt{\frac{2}{1 + \text{slope}^2}}`
    selu         :math:`\frac{3}{4}`
    ============ ==========================================

    Examples:
        >>> from jmod import nn
        >>> round(nn.init.calculate_gain("leaky_relu", 0.2), 4)
        1.3868
    """
    linear_fns = ["linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d"]
    if nonlinearity in linear_fns or nonlinearity == "sigmoid":
        return 1
    elif nonlinearity == "tanh":
        return 5.0 / 3
    elif nonlinearity == "relu":
        return math.sqrt(2.0)
    elif nonlinearity == "leaky_relu":
        if param is None:
            negative_slope = 0.01
        elif not isinstance(param, bool) and isinstance(param, int) or isinstance(param, float):
            negative_slope = param
        else:
            raise ValueError(f"negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + negative_slope**2))
    elif nonlinearity == "selu":
        return 3.0 / 4
    else:
        raise ValueError(f"Unsupported nonlinearity {nonlinearity}")


def _calculate_fan_in_and_fan_out(tensor: Any) -> tuple[int, int]:
    shape = jnp.shape(tensor)
    if len(shape) < 2:
        raise ValueError("Fan in and fan out can not be computed for tensor with fewer than 2 dimensions")
    num_input_fmaps = shape[1]
    num_output_fmaps = shape[0]
    receptive_field_size = 1
    for s in shape[2:]:
        receptive_field_size *= s
    return num_input_fmaps * receptive_field_size, num_output_fmaps * receptive_field_size


def _calculate_correct_fan(tensor: Any, mode: str) -> int:
    mode = mode.lower()
    valid_modes = ["fan_in", "fan_out"]
    if mode not in valid_modes:
        raise ValueError(f"Mode {mode} not supported, please use one of {valid_modes}")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def uniform_(tensor: Any, a: float = 0.0, b: float = 1.0, generator: Generator | None = None) -> jax.Array:
    r"""Fill with values from :math:`\mathcal{U}(a, b)`.

    Examples:
        >>> import jax.numpy as jnp, jmod
        >>> from jmod import nn
        >>> w = nn.init.uniform_(jnp.empty((3, 5)))
        >>> bool((w >= 0).all() and (w < 1).all())
        True
    """
    return _update(tensor, _draw_uniform(tensor, a, b, generator))


def normal_(tensor: Any, mean: float = 0.0, std: float = 1.0, generator: Generator | None = None) -> jax.Array:
    r"""Fill with values from :math:`\mathcal{N}(\text{mean}, \text{std}^2)`."""
    return _update(tensor, _draw_normal(tensor, mean, std, generator))


def trunc_normal_(
    tensor: Any,
    mean: float = 0.0,
    std: float = 1.0,
    a: float = -2.0,
    b: float = 2.0,
    generator: Generator | None = None,
) -> jax.Array:
    r"""Fill with values from a normal :math:`\mathcal{N}(\text{mean}, \text{std}^2)` truncated to
    :math:`[a, b]` (bounds in absolute units, as in torch)."""
    dt = _dtype(tensor)
    shape = jnp.shape(tensor)
    rng = _host_rng(generator)
    if rng is None:
        z = jax.random.truncated_normal(next_key(generator), (a - mean) / std, (b - mean) / std, shape, jnp.float32)
        return _update(tensor, jnp.clip(mean + std * z, a, b).astype(dt))
    # Rejection sampling: exactly the normal distribution restricted to [a, b].
    out = rng.normal(mean, std, shape)
    bad = (out < a) | (out > b)
    while bad.any():
        out[bad] = rng.normal(mean, std, int(bad.sum()))
        bad = (out < a) | (out > b)
    return _update(tensor, jax.device_put(out.astype(np.dtype(dt))))


def constant_(tensor: Any, val: float) -> jax.Array:
    r"""Fill with the value ``val``."""
    return _update(tensor, host_full(jnp.shape(tensor), val, jnp.result_type(tensor)))


def ones_(tensor: Any) -> jax.Array:
    r"""Fill with ones."""
    return _update(tensor, host_full(jnp.shape(tensor), 1, jnp.result_type(tensor)))


def zeros_(tensor: Any) -> jax.Array:
    r"""Fill with zeros."""
    return _update(tensor, host_full(jnp.shape(tensor), 0, jnp.result_type(tensor)))


def eye_(tensor: Any) -> jax.Array:
    r"""Fill a 2-D array with the identity matrix."""
    shape = jnp.shape(tensor)
    if len(shape) != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    return _update(tensor, jnp.eye(*shape, dtype=jnp.result_type(tensor)))


def dirac_(tensor: Any, groups: int = 1) -> jax.Array:
    r"""Fill a {3, 4, 5}-D array with the Dirac delta (identity-preserving convolution)."""
    shape = jnp.shape(tensor)
    dimensions = len(shape)
    if dimensions not in [3, 4, 5]:
        raise ValueError("Only tensors with 3, 4, or 5 dimensions are supported")
    if shape[0] % groups != 0:
        raise ValueError("dim 0 must be divisible by groups")
    out_chans_per_grp = shape[0] // groups
    min_dim = min(out_chans_per_grp, shape[1])
    new = jnp.zeros(shape, jnp.result_type(tensor))
    centre = tuple(s // 2 for s in shape[2:])
    for g in range(groups):
        for d in range(min_dim):
            new = new.at[(g * out_chans_per_grp + d, d, *centre)].set(1)
    return _update(tensor, new)


def xavier_uniform_(tensor: Any, gain: float = 1.0, generator: Generator | None = None) -> jax.Array:
    r"""Glorot uniform: :math:`\mathcal{U}(-a, a)`, :math:`a = \text{gain}\sqrt{6/(\text{fan\_in}+\text{fan\_out})}`."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    a = math.sqrt(3.0) * std
    return uniform_(tensor, -a, a, generator)


def xavier_normal_(tensor: Any, gain: float = 1.0, generator: Generator | None = None) -> jax.Array:
    r"""Glorot normal: :math:`\mathcal{N}(0, \text{std}^2)`, :math:`\text{std} = \text{gain}\sqrt{2/(\text{fan\_in}+\text{fan\_out})}`."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return normal_(tensor, 0.0, std, generator)


def kaiming_uniform_(
    tensor: Any,
    a: float = 0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: Generator | None = None,
) -> jax.Array:
    r"""He uniform: :math:`\mathcal{U}(-b, b)`, :math:`b = \text{gain}\sqrt{3/\text{fan\_mode}}`.

    ``Linear`` and ``Conv`` layers use ``a=sqrt(5)`` for their default weights, as in torch.
    """
    if _no_op_if_empty(tensor):
        return tensor
    fan = _calculate_correct_fan(tensor, mode)
    gain = calculate_gain(nonlinearity, a)
    std = gain / math.sqrt(fan)
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(
    tensor: Any,
    a: float = 0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: Generator | None = None,
) -> jax.Array:
    r"""He normal: :math:`\mathcal{N}(0, \text{std}^2)`, :math:`\text{std} = \text{gain}/\sqrt{\text{fan\_mode}}`."""
    if _no_op_if_empty(tensor):
        return tensor
    fan = _calculate_correct_fan(tensor, mode)
    gain = calculate_gain(nonlinearity, a)
    std = gain / math.sqrt(fan)
    return normal_(tensor, 0.0, std, generator)


def orthogonal_(tensor: Any, gain: float = 1, generator: Generator | None = None) -> jax.Array:
    r"""Fill with a (semi-)orthogonal matrix (Saxe et al. 2013), scaled by ``gain``."""
    shape = jnp.shape(tensor)
    if len(shape) < 2:
        raise ValueError("Only tensors with 2 or more dimensions are supported")
    if 0 in shape:
        return tensor
    rows = shape[0]
    cols = math.prod(shape) // rows
    flattened = np.asarray(_draw_normal(np.zeros((rows, cols)), 0.0, 1.0, generator), np.float64)
    if rows < cols:
        flattened = flattened.T
    q, r = np.linalg.qr(flattened)
    q = q * np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    new = jax.device_put((gain * q.reshape(shape)).astype(np.dtype(_dtype(tensor))))
    return _update(tensor, new)


def sparse_(tensor: Any, sparsity: float, std: float = 0.01, generator: Generator | None = None) -> jax.Array:
    r"""Fill a 2-D array as a sparse matrix: each column has ``ceil(sparsity * rows)``
    zeros, other entries from :math:`\mathcal{N}(0, \text{std}^2)`."""
    shape = jnp.shape(tensor)
    if len(shape) != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    rows, cols = shape
    num_zeros = int(math.ceil(sparsity * rows))
    dt = _dtype(tensor)
    values = np.array(_draw_normal(tensor, 0.0, std, generator), np.float32)  # writable copy
    rng = np.random.default_rng(np.asarray(jax.random.key_data(next_key(generator))).astype(np.uint64).tolist())
    for col in range(cols):
        values[rng.permutation(rows)[:num_zeros], col] = 0
    return _update(tensor, jax.device_put(values.astype(np.dtype(dt))))


def _deprecated(new: Any) -> Any:
    """torch's old names without the trailing underscore: the same function with torch's
    ``FutureWarning``."""
    old_name = new.__name__[:-1]

    def deprecated_init(*args: Any, **kwargs: Any) -> Any:
        warnings.warn(
            f"`nn.init.{old_name}` is now deprecated in favor of `nn.init.{new.__name__}`.", FutureWarning, stacklevel=2
        )
        return new(*args, **kwargs)

    deprecated_init.__name__ = deprecated_init.__qualname__ = old_name
    deprecated_init.__doc__ = f"Deprecated (as in torch): use :func:`{new.__name__}`."
    return deprecated_init


uniform = _deprecated(uniform_)
normal = _deprecated(normal_)
constant = _deprecated(constant_)
eye = _deprecated(eye_)
dirac = _deprecated(dirac_)
xavier_uniform = _deprecated(xavier_uniform_)
xavier_normal = _deprecated(xavier_normal_)
kaiming_uniform = _deprecated(kaiming_uniform_)
kaiming_normal = _deprecated(kaiming_normal_)
orthogonal = _deprecated(orthogonal_)
sparse = _deprecated(sparse_)
