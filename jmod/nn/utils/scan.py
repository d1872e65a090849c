"""``scan_blocks``: run a stack of identical blocks as one ``lax.scan`` (compile time independent of depth).

A torch model applies its transformer blocks with a Python loop,
``for block in self.h: x = block(x)``, which JAX unrolls: the compiled program holds
one copy of the block per layer, and tracing plus compiling grows with depth. JAX
models scan instead (Flax ``nnx.scan``, Equinox's filter-scan pattern, MaxText's
scanned layers). ``scan_blocks(self.h, x)`` is the one-line replacement of the loop:
the blocks stay ordinary modules (``state_dict``, ``named_parameters``, optimizers,
``load_state_dict`` see them as before); only the call stacks their arrays along a
new leading axis and runs the first block's ``forward`` once, inside ``lax.scan``,
with each layer's arrays swapped in.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from jmod._src.arrays import is_tracer
from jmod._src.errors import UnthreadedRandomStateError
from jmod._src.random import default_generator
from jmod._src.scope import Scope, is_participant

__all__ = ["scan_blocks"]


def _check_threaded(before: list, after: list) -> None:
    """A concrete random key advanced to a traced one: a plain ``jax.jit`` is tracing and
    cannot carry the new key out (as ``next_key`` itself reports)."""
    if any(is_tracer(a) and not is_tracer(b) for a, b in zip(after, before)):
        raise UnthreadedRandomStateError()

_HOOK_DICTS = (
    "_forward_pre_hooks",
    "_forward_hooks",
    "_backward_pre_hooks",
    "_backward_hooks",
)


def _signature(block: Any) -> list:
    """What must agree between blocks for one traced body to stand for all of them."""
    sig = []
    for name, m in block.named_modules():
        hooks = tuple(len(getattr(m, h)) for h in _HOOK_DICTS)
        sig.append((name, type(m), m.training, hooks))
    return sig


def _check_blocks(blocks: Sequence[Any], locs: list[list]) -> None:
    first = blocks[0]
    sig0 = _signature(first)
    for i, b in enumerate(blocks[1:], start=1):
        if type(b) is not type(first) or _signature(b) != sig0:
            raise ValueError(
                f"scan_blocks: block {i} ({type(b).__name__}) is not structurally identical to block 0 "
                f"({type(first).__name__}): the same submodule types, train/eval mode and number of hooks are "
                "needed to run them as one scanned body. Use the plain loop (for block in blocks: x = block(x)) "
                "for heterogeneous blocks."
            )
        if len(locs[i]) != len(locs[0]) or any(
            (jnp.shape(c[k]), jnp.result_type(c[k])) != (jnp.shape(c0[k0]), jnp.result_type(c0[k0]))
            for (c, k), (c0, k0) in zip(locs[i], locs[0])
        ):
            raise ValueError(
                f"scan_blocks: block {i}'s parameters and buffers do not have the same names, shapes and dtypes as "
                "block 0's; only identical blocks can be stacked."
            )


def scan_blocks(
    blocks: Sequence[Any],
    input: Any,
    *args: Any,
    unroll: int | bool = 1,
    checkpoint: bool = False,
    policy: Any = None,
    **kwargs: Any,
) -> Any:
    """Apply ``blocks`` in order, ``x = block(x, *args, **kwargs)``, as one ``jax.lax.scan``.

    The drop-in replacement for ``for block in blocks: x = block(x)`` when the blocks
    are structurally identical (same class, submodules, parameter and buffer shapes,
    mode and hooks). Outputs, gradients, buffer updates (BatchNorm running statistics)
    and dropout masks equal the loop's; the compiled program holds one block instead
    of ``len(blocks)``, so tracing and compiling no longer grow with depth.

    What stays the same: every block is an ordinary module; parameters are read from
    and gradients/updates go to each block's own slots, so ``state_dict``,
    ``named_parameters``, ``jmod.grad`` and jmod's optimizers see no difference.

    Hooks inside a scanned stack: the body is traced once, on ``blocks[0]`` with each
    layer's arrays swapped in, so hooks of ``blocks[0]`` and of its submodules run once
    per trace and stand for every layer (what they compute from traced values applies
    to every layer; a Python side effect such as a call counter happens once, not
    ``len(blocks)`` times). Hooks registered on the other blocks are not called: every
    block must have the same number of hooks at each submodule (a ValueError says so
    otherwise), and they are expected to be the same hooks.

    Args:
        blocks (Sequence[Any]): a ``ModuleList`` (or list) of identical modules.
        input (Any): the array carried from block to block (shape and dtype kept).
        *args (Any): further positional arguments, passed unchanged to every block
            (a mask, positions).
        unroll (int | bool): ``lax.scan``'s ``unroll`` (layers per loop iteration).
        checkpoint (bool): rematerialize each block in the backward pass
            (``jax.checkpoint`` around the body, as ``jmod.utils.checkpoint`` per layer).
        policy (Any): with ``checkpoint``, a ``jax.checkpoint_policies`` policy.
        **kwargs (Any): keyword arguments passed unchanged to every block.

    Returns:
        The output of the last block.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> from jmod.nn.utils import scan_blocks
        >>> blocks = nn.ModuleList([nn.Sequential(nn.Linear(4, 4), nn.Tanh()) for _ in range(3)])
        >>> x = jnp.ones((2, 4))
        >>> y = x
        >>> for b in blocks:
        ...     y = b(y)
        >>> bool(jnp.allclose(scan_blocks(blocks, x), y, atol=1e-6))
        True
    """
    blocks = list(blocks)
    if not blocks:
        return input
    if not all(is_participant(b) for b in blocks):
        raise TypeError("scan_blocks: expected a ModuleList (or a list) of Modules")
    scopes = [Scope([b]) for b in blocks]
    locs = [s.locs for s in scopes]
    _check_blocks(blocks, locs)
    if len(blocks) == 1:
        return blocks[0](input, *args, **kwargs)

    template = Scope([blocks[0], default_generator])
    n_block_locs = len(locs[0])
    stacked = [jnp.stack([c[k] for c, k in block_locs]) for block_locs in zip(*locs)]
    key_loc = template.locs[n_block_locs:]  # the generator's key location (if not already a block's)
    keys = [c[k] for c, k in key_loc]
    record: dict[str, Any] = {}

    def body(carry: tuple, layer_state: list) -> tuple:
        x, keys = carry
        template.enter(list(layer_state) + list(keys))
        try:
            y = blocks[0](x, *args, **kwargs)
            changes = template.collect()
        finally:
            template.restore()
        if changes.new_paths or changes.effects:
            raise ValueError(
                "scan_blocks: a block stored a new array or changed a non-array attribute in forward "
                f"({[p[1:] for p in changes.new_paths] or [e[0][1:] for e in changes.effects]}); "
                "a scanned block may only update existing parameters and buffers. Use the plain loop."
            )
        if not isinstance(y, jax.Array) or y.shape != x.shape or y.dtype != x.dtype:
            raise ValueError(
                "scan_blocks: each block must return one array of its input's shape and dtype "
                f"(got {getattr(y, 'shape', type(y).__name__)} {getattr(y, 'dtype', '')} for input {x.shape} {x.dtype})."
            )
        block_changes = [(i, v) for i, v in zip(changes.changed_idx, changes.changed_vals) if i < n_block_locs]
        new_keys = list(keys)
        for i, v in zip(changes.changed_idx, changes.changed_vals):
            if i >= n_block_locs:
                new_keys[i - n_block_locs] = v
        record["changed"] = tuple(i for i, _ in block_changes)
        record["keys_changed"] = any(i >= n_block_locs for i in changes.changed_idx)
        return (y, new_keys), [v for _, v in block_changes]

    if checkpoint:
        from jmod.utils.checkpoint import _resolve_policy

        body = jax.checkpoint(body, prevent_cse=False, policy=_resolve_policy(policy))
    (out, new_keys), ys = jax.lax.scan(body, (input, keys), stacked, unroll=unroll)
    if record["keys_changed"]:
        _check_threaded(keys, new_keys)
        for (c, k), v in zip(key_loc, new_keys):
            c[k] = v
    for j, stack in zip(record["changed"], ys):
        for i, block_locs in enumerate(locs):
            c, k = block_locs[j]
            c[k] = stack[i]
    return out
