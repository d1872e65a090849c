"""torch-style random numbers on JAX keys: a global generator threaded through jit.

torch code draws from a hidden global generator (``torch.manual_seed``,
``torch.randn``, dropout masks). JAX has no hidden state, so jmod keeps the
generator's state as a JAX key in a :class:`Generator` object and treats that key as
one more piece of mutable state: each draw splits it, eagerly or while ``jmod.jit``
traces, and ``jmod.jit`` threads it through the compiled call and writes the advanced
key back. Compiled code therefore draws fresh numbers every call, reproducibly from
``jmod.manual_seed``.

Inside a plain ``jax.jit`` (not ``jmod.jit``) the generator cannot be threaded: a draw
there raises :class:`~jmod._src.errors.UnthreadedRandomStateError` instead of
silently baking one mask into the compiled code.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from jmod._src.arrays import is_tracer, long_dtype, to_jax
from jmod._src.errors import UnthreadedRandomStateError

__all__ = [
    "Generator",
    "default_generator",
    "current_generator",
    "manual_seed",
    "seed",
    "initial_seed",
    "get_rng_state",
    "set_rng_state",
    "fork_rng",
    "next_key",
    "rand",
    "randn",
    "randint",
    "randperm",
    "normal",
    "bernoulli",
    "multinomial",
    "rand_like",
    "randn_like",
]

_DEFAULT_SEED = 67280421310721  # torch's default seed, so an unseeded jmod is deterministic too


def _key_from_seed(seed: int) -> jax.Array:
    # jax.random.key keeps only 32 bits of a seed when x64 is off; fold the high bits in
    # so that seeds differing above bit 32 still give different streams.
    seed = int(seed) % (2**64)
    key = jax.random.key(seed & 0xFFFFFFFF)
    return jax.random.fold_in(key, seed >> 32) if seed >> 32 else key


class Generator:
    """A random number generator whose state is a JAX key (torch's ``torch.Generator``).

    Pass one as ``generator=`` to ``jmod.randn`` and friends (or to ``jmod.nn.init``
    functions) to draw from an independent stream; it may be an argument of
    ``jmod.jit``, which threads its state like a module's.

    Examples:
        >>> import jmod
        >>> g = jmod.Generator().manual_seed(42)
        >>> jmod.randn(2, generator=g).shape
        (2,)
    """

    def __init__(self, device: Any = "cpu") -> None:
        self._initial_seed = _DEFAULT_SEED
        self._key = _key_from_seed(_DEFAULT_SEED)
        # torch's CPU generator takes a mutex per draw; so does this one, and a compiled
        # call holds it while it reads, advances and writes back the key.
        self._jmod_lock = threading.RLock()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.pop("_jmod_lock", None)
        state.pop("_jmod_watchers", None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._jmod_lock = threading.RLock()

    def manual_seed(self, seed: int) -> Generator:
        """Reset the generator from an integer seed; returns ``self``."""
        seed = int(seed)
        key = _key_from_seed(seed)
        with self._jmod_lock:
            self._initial_seed = seed
            self._key = key
        return self

    def seed(self) -> int:
        """Seed from OS entropy; returns the seed used."""
        s = int.from_bytes(os.urandom(8), "little") % (2**63)
        self.manual_seed(s)
        return s

    def initial_seed(self) -> int:
        return self._initial_seed

    def get_state(self) -> jax.Array:
        """The generator state as a ``uint32`` array (``jax.random.key_data``)."""
        with self._jmod_lock:
            return self.__dict__["_key_data"]

    def set_state(self, new_state: Any) -> Generator:
        key = jax.random.wrap_key_data(to_jax(new_state).astype(jnp.uint32))
        with self._jmod_lock:
            self._key = key
        return self

    def next_key(self) -> jax.Array:
        """Split off a fresh key and advance the state."""
        with self._jmod_lock:
            data = self.__dict__["_key_data"]
            new, sub = jax.random.split(jax.random.wrap_key_data(data))
            if is_tracer(new) and not is_tracer(data):
                # a trace jmod does not thread the state through (a plain jax.jit)
                raise UnthreadedRandomStateError()
            self._key = new
        return sub

    # The state is kept as raw key data (uint32), not a typed key array: typed keys are a
    # pytree whose unflattening runs Python, and a compiled call's outputs must reach
    # jmod without Python code running in between (an interrupt there would lose them).
    @property
    def _key(self) -> jax.Array:
        return jax.random.wrap_key_data(self.__dict__["_key_data"])

    @_key.setter
    def _key(self, key: jax.Array) -> None:
        self.__dict__["_key_data"] = jax.random.key_data(key)

    # The jit machinery threads the key data as state; this is its location.
    def _jmod_state_locations(self) -> list[tuple[dict, str]]:
        return [(self.__dict__, "_key_data")]


default_generator = Generator()

# ``fork_rng`` blocks give the code running in them (this thread, this asyncio task)
# a generator of their own; everywhere else the global one is current.
_FORKED: contextvars.ContextVar[Generator | None] = contextvars.ContextVar("jmod_forked_generator", default=None)


def current_generator() -> Generator:
    """The generator that ``jmod.randn``, dropout and the other global draws use here:
    the global generator, or the one of the innermost ``fork_rng`` block."""
    return _FORKED.get() or default_generator


def next_key(generator: Generator | None = None) -> jax.Array:
    """A fresh key from ``generator`` (default: the current global generator)."""
    return (generator or _FORKED.get() or default_generator).next_key()


def manual_seed(seed: int) -> Generator:
    """Seed the global generator (initialisation, dropout, ``jmod.randn``...), like
    ``torch.manual_seed``. Returns the global generator.

    Examples:
        >>> import jmod
        >>> _ = jmod.manual_seed(0); a = jmod.rand(3)
        >>> _ = jmod.manual_seed(0); b = jmod.rand(3)
        >>> bool((a == b).all())
        True
    """
    return current_generator().manual_seed(seed)


def seed() -> int:
    """Seed the global generator from OS entropy; returns the seed."""
    return current_generator().seed()


def initial_seed() -> int:
    return current_generator().initial_seed()


def get_rng_state() -> jax.Array:
    """The global generator's state (save it to resume a random stream)."""
    return current_generator().get_state()


def set_rng_state(new_state: Any) -> None:
    current_generator().set_state(new_state)


@contextlib.contextmanager
def fork_rng(key: Any = None) -> Iterator[Generator]:
    """Run a block with its own random stream; the global one is as before afterwards.

    Inside the block, global draws (``jmod.randn``, dropout, ``jmod.manual_seed``) use a
    generator that starts as a copy of the current one (or from ``key``). It belongs
    to the running thread (context): two threads each in a ``fork_rng`` block draw
    independent, reproducible streams. ``jmod.jit`` calls made inside the block thread
    that generator.

    Args:
        key: optional JAX key (typed or raw ``uint32``) to draw from inside the block;
            it may be a traced value, which makes random layers usable inside a plain
            ``jax.jit``/``jax.vmap`` function.

    Examples:
        >>> import jmod
        >>> _ = jmod.manual_seed(0)
        >>> with jmod.fork_rng():
        ...     a = jmod.rand(2)
        >>> bool((jmod.rand(2) == a).all())
        True
    """
    parent = current_generator()
    forked = Generator()
    forked._initial_seed = parent._initial_seed
    if key is None:
        with parent._jmod_lock:
            forked._key = parent._key
    else:
        if not jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
            key = jax.random.wrap_key_data(key)
        forked._key = key
    token = _FORKED.set(forked)
    try:
        yield forked
    finally:
        _FORKED.reset(token)


def _size(size: Sequence[Any]) -> tuple[int, ...]:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    return tuple(int(s) for s in size)


def _float_dtype(dtype: Any) -> Any:
    return jnp.float32 if dtype is None else dtype


def rand(*size: Any, generator: Generator | None = None, dtype: Any = None, **_: Any) -> jax.Array:
    """Uniform samples on ``[0, 1)`` of the given size (``torch.rand``)."""
    return jax.random.uniform(next_key(generator), _size(size), _float_dtype(dtype))


def randn(*size: Any, generator: Generator | None = None, dtype: Any = None, **_: Any) -> jax.Array:
    """Standard normal samples of the given size (``torch.randn``)."""
    return jax.random.normal(next_key(generator), _size(size), _float_dtype(dtype))


def rand_like(input: Any, *, generator: Generator | None = None, dtype: Any = None) -> jax.Array:
    return rand(*jnp.shape(input), generator=generator, dtype=dtype or jnp.result_type(input))


def randn_like(input: Any, *, generator: Generator | None = None, dtype: Any = None) -> jax.Array:
    return randn(*jnp.shape(input), generator=generator, dtype=dtype or jnp.result_type(input))


def randint(*args: Any, generator: Generator | None = None, dtype: Any = None, size: Any = None, **_: Any) -> jax.Array:
    """Integers uniform on ``[low, high)``: ``randint(high, size)`` or ``randint(low, high, size)``."""
    args = list(args)
    if size is None:
        size = args.pop()
    if len(args) == 1:
        low, high = 0, args[0]
    elif len(args) == 2:
        low, high = args
    else:
        raise TypeError("randint() expects (high, size) or (low, high, size)")
    shape = (int(size),) if isinstance(size, int) else tuple(int(s) for s in size)
    return jax.random.randint(next_key(generator), shape, low, high, dtype or long_dtype())


def randperm(n: int, *, generator: Generator | None = None, dtype: Any = None) -> jax.Array:
    """A random permutation of ``0..n-1`` (``torch.randperm``)."""
    return jax.random.permutation(next_key(generator), int(n)).astype(dtype or long_dtype())


def normal(mean: Any = 0.0, std: Any = 1.0, size: Any = None, *, generator: Generator | None = None) -> jax.Array:
    """Normal samples with the given mean and std (arrays broadcast, like ``torch.normal``)."""
    mean = jnp.asarray(mean, dtype=jnp.result_type(float, mean))
    std = jnp.asarray(std, dtype=jnp.result_type(float, std))
    shape = jnp.broadcast_shapes(mean.shape, std.shape) if size is None else tuple(size)
    dtype = jnp.result_type(mean, std)
    return mean + std * jax.random.normal(next_key(generator), shape, dtype)


def bernoulli(input: Any, p: Any = None, *, generator: Generator | None = None) -> jax.Array:
    """0/1 samples with probabilities ``input`` (or the scalar ``p``), in ``input``'s dtype."""
    input = jnp.asarray(input)
    prob = input if p is None else jnp.full(input.shape, p, input.dtype)
    dtype = input.dtype if jnp.issubdtype(input.dtype, jnp.floating) else jnp.float32
    return jax.random.bernoulli(next_key(generator), prob).astype(dtype)


def multinomial(
    input: Any, num_samples: int, replacement: bool = False, *, generator: Generator | None = None
) -> jax.Array:
    """Sample indices from the rows of ``input`` (non-negative weights), like ``torch.multinomial``.

    Without replacement, ``num_samples`` distinct indices per row (Gumbel top-k, which
    draws from the same distribution as torch's sequential sampling).

    Examples:
        >>> import jax.numpy as jnp, jmod
        >>> _ = jmod.manual_seed(0)
        >>> jmod.multinomial(jnp.array([0.0, 1.0, 0.0]), 1)
        Array([1], dtype=int32)
    """
    probs = jnp.asarray(input)
    if probs.ndim not in (1, 2):
        raise RuntimeError("prob_dist must be 1 or 2 dim")
    n_cat = probs.shape[-1]
    if not replacement and num_samples > n_cat:
        raise RuntimeError("cannot sample n_sample > prob_dist.size(-1) samples without replacement")
    logits = jnp.where(probs > 0, jnp.log(jnp.where(probs > 0, probs, 1.0)), -jnp.inf)
    key = next_key(generator)
    if replacement:
        batch = probs.shape[:-1]
        out = jax.random.categorical(key, logits, axis=-1, shape=(num_samples, *batch))
        out = jnp.moveaxis(out, 0, -1)
    else:
        gumbel = jax.random.gumbel(key, probs.shape, jnp.float32)
        _, out = jax.lax.top_k(logits.astype(jnp.float32) + gumbel, num_samples)
    return out.astype(long_dtype())

