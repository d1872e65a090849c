"""``jmod.parallel``: devices, meshes and sharding for jmod models, on ``jax.sharding``.

A jmod model is where its arrays are. Every parameter, buffer and optimizer state
array is a ``jax.Array`` with a ``sharding``; placing them (``Module.to``,
``shard_module``) is all there is to it, because ``jmod.jit`` follows committed
arrays as ``jax.jit`` does: the compiled step runs on the devices the state is on,
JAX's sharding propagation (GSPMD) inserts the collectives, and the updated state
is written back with the sharding it had (``jmod.jit(keep_shardings=True)``).

* Meshes: ``make_mesh`` (``jax.make_mesh`` with automatic axes).
* Layouts: ``shard_module`` places each array by rules mapping
  ``named_parameters()``/``named_buffers()`` names to ``PartitionSpec``\\ s;
  ``fsdp``, ``column_parallel`` and ``row_parallel`` build common
  rules; ``partition_specs`` shows what rules would do; ``shardings``
  reports what is in place; ``shard_optimizer`` puts optimizer state where
  its parameters are.
* Data parallel: ``data_parallel`` (or ``replicate`` + ``shard_batch``)
  runs an unchanged training step over all devices, also over several processes
  after ``jax.distributed.initialize()``.

See ``docs/devices.md`` for recipes (FSDP, tensor parallel, multi-host,
checkpoints).
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec, Sharding

from jmod._src import structure
from jmod._src.devices import place
from jmod._src.state import named_locations

__all__ = [
    "make_mesh",
    "shard_module",
    "partition_specs",
    "fsdp",
    "column_parallel",
    "row_parallel",
    "shard_optimizer",
    "replicate",
    "shard_batch",
    "data_parallel",
    "shardings",
]

P = PartitionSpec
Spec = PartitionSpec | Sharding
RuleFn = Callable[[str, jax.Array], Spec | None]
Pattern = str | re.Pattern
Rules = Mapping[Pattern, Spec] | Sequence[tuple[Pattern, Spec] | RuleFn] | RuleFn | None


# --------------------------------------------------------------------- meshes
def make_mesh(axis_shapes: Sequence[int], axis_names: Sequence[str], *, devices: Sequence[Any] | None = None) -> Mesh:
    """A device mesh whose axes use JAX's automatic sharding propagation.

    ``jax.make_mesh`` with ``axis_types=(jax.sharding.AxisType.Auto,) * n``. jmod's
    layers are written like torch code, without sharding annotations, and rely on
    the compiler to propagate shardings; ``jax.make_mesh``'s default *explicit*
    axes make JAX reject such code (e.g. a matmul of two arrays sharded on the same
    axis), so jmod.parallel asks for automatic axes.

    Args:
        axis_shapes: the mesh shape, e.g. ``(8,)`` or ``(2, 4)``.
        axis_names: one name per axis, e.g. ``("data",)`` or ``("data", "model")``.
        devices: the devices to use (default: ``jax.devices()``, every process's).

    Examples:
        >>> import jax, jmod
        >>> mesh = jmod.parallel.make_mesh((jax.device_count(),), ("data",))
        >>> mesh.axis_names, mesh.axis_types[0]
        (('data',), Auto)
    """
    names = tuple(axis_names)
    return jax.make_mesh(tuple(axis_shapes), names, axis_types=(AxisType.Auto,) * len(names), devices=devices)


def _check_mesh(mesh: Any) -> Mesh:
    if not isinstance(mesh, Mesh):
        raise TypeError(f"expected a jax.sharding.Mesh, got {type(mesh).__name__}; build one with jmod.parallel.make_mesh")
    explicit = [n for n, t in zip(mesh.axis_names, mesh.axis_types) if t == AxisType.Explicit]
    if explicit:
        raise ValueError(
            f"mesh axes {explicit} are Explicit (jax.make_mesh's default): JAX then requires sharding "
            "annotations on operations such as matmuls, which jmod's torch-style layers do not have. Build the "
            "mesh with automatic axes: jmod.parallel.make_mesh(shape, names), or "
            "jax.make_mesh(shape, names, axis_types=(jax.sharding.AxisType.Auto,) * len(names))."
        )
    return mesh


# ---------------------------------------------------------------------- rules
def _state_locations(module: Any) -> Iterator[tuple[str, Any, Any]]:
    """``(name, container, key)`` for every array of a module's state (the core's walker)."""
    return named_locations(module)


def _normalize_rules(rules: Rules) -> list:
    if rules is None:
        return []
    if isinstance(rules, Mapping):
        return list(rules.items())
    if callable(rules):
        return [rules]
    out = []
    for r in rules:
        if isinstance(r, tuple) and len(r) == 2 and isinstance(r[0], (str, re.Pattern)):
            out.append(r)
        elif callable(r):
            out.append(r)
        else:
            raise TypeError(
                f"a sharding rule is a (pattern, PartitionSpec) pair or a function (name, array) -> PartitionSpec, got {r!r}"
            )
    return out


def _matches(pattern: Pattern, name: str) -> bool:
    if isinstance(pattern, re.Pattern):
        return pattern.fullmatch(name) is not None
    return fnmatch.fnmatchcase(name, pattern)


def _check_spec(name: str, x: jax.Array, spec: Any, mesh: Mesh) -> None:
    if isinstance(spec, Sharding):
        return
    if not isinstance(spec, PartitionSpec):
        raise TypeError(f"sharding rule for {name!r} gave {spec!r}: expected a PartitionSpec or a jax.sharding.Sharding")
    if len(spec) > x.ndim:
        raise ValueError(f"{name!r} has shape {x.shape}: PartitionSpec {spec} has more entries than the array has dims")
    for dim, entry in enumerate(spec):
        if entry is None or entry is PartitionSpec.UNCONSTRAINED:
            continue
        axes = (entry,) if isinstance(entry, str) else tuple(entry)
        unknown = [a for a in axes if a not in mesh.shape]
        if unknown:
            raise ValueError(f"{name!r}: PartitionSpec {spec} names mesh axes {unknown}; the mesh has {mesh.axis_names}")
        n = math.prod(mesh.shape[a] for a in axes)
        if x.shape[dim] % n:
            raise ValueError(
                f"{name!r} has shape {x.shape}: dim {dim} ({x.shape[dim]}) is not divisible by the {n} devices of "
                f"mesh axes {axes} (PartitionSpec {spec}); pick another dim or replicate it with PartitionSpec()"
            )


def _resolve(name: str, x: jax.Array, rules: list, default: Spec) -> Spec:
    for r in rules:
        if isinstance(r, tuple):
            if _matches(r[0], name):
                return r[1]
        else:
            spec = r(name, x)
            if spec is not None:
                return spec
    return default


def partition_specs(module: Any, mesh: Mesh, rules: Rules = None, *, default: Spec = P()) -> dict[str, Spec]:
    """What ``shard_module`` would give each array of ``module``, without moving any.

    Args:
        module: a ``jmod.nn.Module``.
        mesh: the mesh the specs refer to (used to check axis names and divisibility).
        rules: see ``shard_module``.
        default: the spec of arrays no rule matches (``PartitionSpec()``: replicated).

    Returns:
        ``{name: PartitionSpec or Sharding}`` for every parameter (tied ones once),
        buffer and plain array attribute, in ``named_parameters()`` order.

    Examples:
        >>> import jmod
        >>> from jax.sharding import PartitionSpec as P
        >>> from jmod import nn
        >>> mesh = jmod.parallel.make_mesh((1,), ("model",))
        >>> model = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 4))
        >>> jmod.parallel.partition_specs(model, mesh, [("0.*", P("model")), ("1.weight", P(None, "model"))])
        {'0.weight': P('model',), '0.bias': P('model',), '1.weight': P(None, 'model'), '1.bias': P()}
    """
    _check_mesh(mesh)
    normalized = _normalize_rules(rules)
    out = {}
    for name, c, k in _state_locations(module):
        x = c[k]
        spec = _resolve(name, x, normalized, default)
        _check_spec(name, x, spec, mesh)
        out[name] = spec
    return out


def shard_module(module: Any, mesh: Mesh, rules: Rules = None, *, default: Spec = P()) -> Any:
    """Place every parameter, buffer and array attribute of ``module`` on ``mesh`` (in place).

    Each array's name (as in ``named_parameters()`` / ``named_buffers()``; a tied
    parameter under its first name) is looked up in ``rules``; the first rule that
    matches gives its ``PartitionSpec`` (or a ready ``jax.sharding.Sharding``), and
    arrays no rule matches get ``default`` (replicated). Parameters keep their
    slots, so ties, ``requires_grad`` and optimizers built on them survive; compiled
    steps recompile for the new layout. Build the optimizer afterwards (as torch
    does after moving a model), or call ``shard_optimizer`` on an existing one.

    Args:
        module: a ``jmod.nn.Module``.
        mesh: a ``jax.sharding.Mesh`` with automatic axes (``make_mesh``).
        rules: one of
            * a dict ``{pattern: spec}`` or a list of ``(pattern, spec)`` pairs; a
              pattern is a glob matched against the whole name (``"*.attn.q_proj.weight"``,
              ``*`` also matches dots) or a compiled ``re.Pattern`` (``fullmatch``);
            * a function ``(name, array) -> spec or None`` (``None``: no opinion,
              try the next rule), e.g. ``fsdp``;
            * a list mixing both, tried in order.
        default: the spec for arrays no rule matches (``PartitionSpec()``).

    Returns:
        ``module``.

    Raises:
        ValueError: for a spec naming unknown mesh axes, with more entries than the
            array has dims, or sharding a dim that the axis size does not divide
            (nothing has moved then); for a mesh with Explicit axes.

    Examples:
        >>> import jax, jmod
        >>> from jax.sharding import PartitionSpec as P
        >>> from jmod import nn
        >>> mesh = jmod.parallel.make_mesh((jax.device_count(),), ("data",))
        >>> model = jmod.parallel.shard_module(nn.Linear(8, 16), mesh, [("weight", P("data"))])
        >>> model.weight.sharding.spec, model.bias.sharding.spec
        (P('data',), P())
    """
    specs = partition_specs(module, mesh, rules, default=default)
    for name, c, k in _state_locations(module):
        spec = specs[name]
        sharding = spec if isinstance(spec, Sharding) else NamedSharding(mesh, spec)
        x = c[k]
        if not (x.committed and x.sharding == sharding):
            c[k] = place(x, sharding)
    structure.bump()
    return module


def fsdp(mesh: Mesh, axis: str | tuple[str, ...] = "data", *, min_size: int = 0) -> RuleFn:
    """A rule for FSDP / ZeRO-3 layouts: shard each array's largest divisible dim over ``axis``.

    Every array of at least ``min_size`` elements is split along its largest
    dimension that the size of ``axis`` divides (the first such on ties); others,
    and arrays with no divisible dim, are replicated. Inside a compiled step
    JAX gathers each weight where it is used and reduce-scatters its gradient;
    optimizer moments are built sharded like their parameters.

    Args:
        mesh: the mesh ``axis`` belongs to.
        axis: a mesh axis name, or a tuple of names sharded together.
        min_size: arrays with fewer elements stay replicated (small biases and
            norms are cheaper to keep whole than to gather).

    Returns:
        A rule ``(name, array) -> PartitionSpec`` for ``shard_module``; put
        pattern rules before it to lay out some arrays differently.

    Examples:
        >>> import jax, jax.numpy as jnp, jmod
        >>> mesh = jmod.parallel.make_mesh((jax.device_count(),), ("data",))
        >>> rule = jmod.parallel.fsdp(mesh, "data")
        >>> rule("w", jnp.zeros((24, 64)))
        P(None, 'data')
    """
    axes = (axis,) if isinstance(axis, str) else tuple(axis)
    for a in axes:
        if a not in _check_mesh(mesh).shape:
            raise ValueError(f"fsdp: mesh has no axis {a!r} (axes: {mesh.axis_names})")
    n = math.prod(mesh.shape[a] for a in axes)

    def rule(name: str, x: jax.Array) -> PartitionSpec:
        if x.ndim == 0 or x.size < min_size:
            return P()
        for d in sorted(range(x.ndim), key=lambda d: (-x.shape[d], d)):
            if x.shape[d] % n == 0:
                return P(*([None] * d), axis)
        return P()

    return rule


_fsdp_rule = fsdp  # data_parallel's ``fsdp`` argument shadows the function


def _sub_pattern(pattern: Pattern, leaf: str) -> Pattern:
    if isinstance(pattern, re.Pattern):
        return re.compile(f"(?:{pattern.pattern})\\.{leaf}", pattern.flags)
    return f"{pattern}.{leaf}"


def column_parallel(module_pattern: Pattern, axis: str = "model") -> list[tuple[Pattern, PartitionSpec]]:
    """Rules for column-parallel ``Linear`` layers: output features split over ``axis``.

    ``weight`` (``(out_features, in_features)``, torch's layout) gets
    ``P(axis)`` and ``bias`` gets ``P(axis)``: each device computes a slice of the
    outputs from the whole input. Use for the first projection of an MLP and the
    query/key/value projections of attention (heads split over devices), followed
    by ``row_parallel`` layers.

    Args:
        module_pattern: glob (or ``re.Pattern``) of the Linear modules' dotted names,
            e.g. ``"*.mlp.fc1"`` or ``"*.attn.[qkv]_proj"``.
        axis: the tensor-parallel mesh axis.

    Examples:
        >>> import jmod
        >>> jmod.parallel.column_parallel("*.fc1")
        [('*.fc1.weight', P('model',)), ('*.fc1.bias', P('model',))]
    """
    return [(_sub_pattern(module_pattern, "weight"), P(axis)), (_sub_pattern(module_pattern, "bias"), P(axis))]


def row_parallel(module_pattern: Pattern, axis: str = "model") -> list[tuple[Pattern, PartitionSpec]]:
    """Rules for row-parallel ``Linear`` layers: input features split over ``axis``.

    ``weight`` gets ``P(None, axis)`` and ``bias`` is replicated: each device
    multiplies its slice of the (column-parallel) input, and the partial sums are
    all-reduced once. Use for the second projection of an MLP and the output
    projection of attention.

    Args:
        module_pattern: glob (or ``re.Pattern``) of the Linear modules' dotted names.
        axis: the tensor-parallel mesh axis.

    Examples:
        >>> import jmod
        >>> jmod.parallel.row_parallel("*.fc2")
        [('*.fc2.weight', P(None, 'model')), ('*.fc2.bias', P())]
    """
    return [(_sub_pattern(module_pattern, "weight"), P(None, axis)), (_sub_pattern(module_pattern, "bias"), P())]


# ------------------------------------------------------------------ optimizer
def shard_optimizer(optimizer: Any) -> Any:
    """Place a ``jmod.optim`` optimizer's state where its parameters are (in place).

    State under a parameter's name takes the parameter's sharding (moments) or is
    replicated over its devices (per-parameter step counts); state shared by all
    parameters (a global step, learning rates) is replicated over the parameters'
    devices. An optimizer built after the model was placed is already laid out
    this way; call this after re-placing the model of an existing optimizer.

    Args:
        optimizer: a ``jmod.optim.Optimizer``.

    Returns:
        ``optimizer``.

    Examples:
        >>> import jax, jmod
        >>> from jmod import nn
        >>> mesh = jmod.parallel.make_mesh((jax.device_count(),), ("data",))
        >>> model = nn.Linear(8, 8)
        >>> opt = jmod.optim.Adam(model.parameters(), lr=1e-3)
        >>> _ = jmod.parallel.replicate(model, mesh)
        >>> _ = jmod.parallel.shard_optimizer(opt)
        >>> {s.spec for s in jmod.parallel.shardings(opt).values()}
        {P()}
    """
    optimizer._place_state()
    return optimizer


# -------------------------------------------------------------- data parallel
def replicate(module: Any, mesh: Mesh) -> Any:
    """Copy every parameter, buffer and array attribute of ``module`` to all devices of ``mesh``.

    ``shard_module(module, mesh)`` with no rules. Returns ``module``.
    """
    return shard_module(module, mesh)


def _batch_axes(axis: str | tuple[str, ...]) -> tuple[str, ...]:
    return (axis,) if isinstance(axis, str) else tuple(axis)


def shard_batch(batch: Any, mesh: Mesh, axis: str | tuple[str, ...] = "data") -> Any:
    """Split the leading (batch) dim of every array in ``batch`` over mesh ``axis``.

    In one process ``batch`` is the global batch and is split over the devices
    (``jax.device_put`` with ``NamedSharding(mesh, P(axis))``). In a multi-process
    run (after ``jax.distributed.initialize()``) each process passes *its own*
    part of the batch, and the result is the global array assembled from every
    process's part (``jax.make_array_from_process_local_data``): the global batch
    is the processes' batches concatenated in process order.

    Args:
        batch: an array, or a pytree (tuple, dict, ...) of arrays; scalars and 0-d
            arrays are replicated.
        mesh: the mesh.
        axis: the data-parallel mesh axis (or a tuple of axes).

    Raises:
        ValueError: if a batch size is not divisible by the number of devices
            along ``axis``.

    Examples:
        >>> import jax, jax.numpy as jnp, jmod
        >>> mesh = jmod.parallel.make_mesh((jax.device_count(),), ("data",))
        >>> x, y = jmod.parallel.shard_batch((jnp.ones((16, 3)), jnp.zeros(16)), mesh)
        >>> x.sharding.spec
        P('data',)
    """
    _check_mesh(mesh)
    axes = _batch_axes(axis)
    n = math.prod(mesh.shape[a] for a in axes)
    spec_axis = axis if isinstance(axis, str) else tuple(axis)
    multi = jax.process_count() > 1

    def put(x: Any) -> Any:
        if not hasattr(x, "shape"):
            x = np.asarray(x)
        if x.ndim == 0:
            return place(x, NamedSharding(mesh, P()))
        sharding = NamedSharding(mesh, P(spec_axis))
        if multi:
            local = np.asarray(x)
            out = jax.make_array_from_process_local_data(sharding, local)
            if out.shape[0] % n:
                raise ValueError(f"global batch size {out.shape[0]} is not divisible by the {n} devices of axis {axis!r}")
            return out
        if x.shape[0] % n:
            raise ValueError(
                f"batch size {x.shape[0]} is not divisible by the {n} devices of mesh axis {axis!r}: "
                "pad or drop the last batch, or use a batch size that is a multiple of the device count"
            )
        return place(x, sharding)

    return jax.tree_util.tree_map(put, batch)


def data_parallel(
    model: Any, *optimizers: Any, mesh: Mesh | None = None, axis: str = "data", fsdp: bool = False
) -> Mesh:
    """Set a model (and its optimizers) up for data-parallel training on every device.

    Replicates ``model`` over ``mesh`` (by default a 1-D mesh of all devices of all
    processes, ``make_mesh``) and places the optimizers' state like the
    parameters. The training step is unchanged; pass it batches split with
    ``shard_batch``. Gradients are averaged over the devices by the compiled
    step itself (the loss is a mean over the global batch), so the run computes
    what one device would on the whole batch.

    Args:
        model: a ``jmod.nn.Module``.
        *optimizers: ``jmod.optim`` optimizers of ``model``.
        mesh: the mesh (must have ``axis``); default: all devices along ``axis``.
        axis: the data-parallel mesh axis.
        fsdp: also shard parameters and optimizer state over ``axis`` (ZeRO-3 /
            FSDP, ``fsdp`` rules) instead of replicating them: same numbers,
            1/N of the memory per device.

    Returns:
        The mesh, for ``shard_batch``.

    Examples:
        >>> import jax, jax.numpy as jnp, jmod
        >>> from jmod import nn
        >>> model = nn.Linear(4, 2)
        >>> opt = jmod.optim.SGD(model.parameters(), lr=0.1)
        >>> mesh = jmod.parallel.data_parallel(model, opt)
        >>> @jmod.jit
        ... def step(model, opt, x, y):
        ...     loss, grads = jmod.value_and_grad(lambda m: ((m(x) - y) ** 2).mean())(model)
        ...     opt.step(grads)
        ...     return loss
        >>> x, y = jmod.parallel.shard_batch((jnp.ones((8, 4)), jnp.zeros((8, 2))), mesh)
        >>> loss = step(model, opt, x, y)
        >>> model.weight.sharding == jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
        True
    """
    if mesh is None:
        mesh = make_mesh((jax.device_count(),), (axis,))
    _check_mesh(mesh)
    if axis not in mesh.shape:
        raise ValueError(f"data_parallel: mesh has no axis {axis!r} (axes: {mesh.axis_names})")
    shard_module(model, mesh, _fsdp_rule(mesh, axis) if fsdp else None)
    for opt in optimizers:
        shard_optimizer(opt)
    return mesh


# ------------------------------------------------------------------ reporting
def shardings(obj: Any) -> dict[str, Sharding]:
    """The sharding of every array of a module, an optimizer, or a pytree of arrays.

    Args:
        obj: a ``jmod.nn.Module`` (names as in ``named_parameters()`` /
            ``named_buffers()``, plus plain array attributes), a ``jmod.optim``
            optimizer (names as in ``optimizer.state_dict()["state"]``), or a pytree
            of arrays (names from ``jax.tree_util.keystr``).

    Returns:
        ``{name: jax.sharding.Sharding}``. For a one-device summary of a module see
        ``Module.device``.

    Examples:
        >>> import jax, jmod
        >>> from jmod import nn
        >>> model = nn.Linear(2, 2).to(jax.devices()[0])
        >>> {name: s.device_set == {jax.devices()[0]} for name, s in jmod.parallel.shardings(model).items()}
        {'weight': True, 'bias': True}
    """
    from jmod.nn.modules.module import Module

    if isinstance(obj, Module):
        return {name: c[k].sharding for name, c, k in _state_locations(obj)}
    if hasattr(obj, "_state_leaves") and hasattr(obj, "opt_state"):
        obj = obj.opt_state
    flat = jax.tree_util.tree_flatten_with_path(obj)[0]
    return {jax.tree_util.keystr(path): leaf.sharding for path, leaf in flat if hasattr(leaf, "sharding")}
