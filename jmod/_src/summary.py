"""``jmod.summary``: a torchinfo-style table of a model, computed abstractly.

The forward runs under ``jax.eval_shape`` with the module's parameters replaced by
abstract values (``jmod.func.functional_call``): every layer's output shape is found
without a single FLOP, and without reading the weights. A model too large for the
machine can be described too: pass a function that builds it, which runs inside the
same abstract trace (constructors then allocate nothing and draw no random numbers).
With ``cost="forward"`` or ``cost="train"`` the step is also compiled (still abstractly)
and XLA's cost and memory analyses are reported.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["summary", "ModelSummary", "LayerSummary"]


@contextlib.contextmanager
def abstract_build() -> Iterator[None]:
    """Inside a JAX trace: module constructors make traced arrays (no memory, no draws),
    and the global random stream is left as it was."""
    from jmod._src import arrays
    from jmod._src.random import fork_rng
    from jmod.nn import init

    arrays.ABSTRACT_BUILD[0] += 1
    init._SKIP_DRAWS[0] += 1
    try:
        with fork_rng():
            yield
    finally:
        arrays.ABSTRACT_BUILD[0] -= 1
        init._SKIP_DRAWS[0] -= 1


def _abstract(x: Any) -> Any:
    """A ``jax.ShapeDtypeStruct`` for an array-like input (jax/NumPy/torch) or a spec."""
    if isinstance(x, jax.ShapeDtypeStruct):
        return x
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        from jmod._src.arrays import to_jax

        if not isinstance(x, (jax.Array, np.ndarray)):
            x = to_jax(x)  # torch tensors
        return jax.ShapeDtypeStruct(tuple(x.shape), x.dtype, sharding=getattr(x, "sharding", None))
    return x


def _shapes(tree: Any) -> list[list[int]]:
    return [list(x.shape) for x in jax.tree_util.tree_leaves(tree) if hasattr(x, "shape")]


def _mb(n: int) -> str:
    return f"{n / 1e6:,.2f}"


@dataclasses.dataclass
class LayerSummary:
    """One row of the table: one call of one module.

    Attributes:
        name (str): the module's dotted name (``""`` for the model).
        type (str): its class name.
        depth (int): nesting depth (0 for the model).
        output_shapes (list): the shapes of the output's arrays.
        num_params (int): the parameters the module itself registers (not its children's).
        trainable (bool | None): whether those are trainable (``None``: no parameters, or a mix).
    """

    name: str
    type: str
    depth: int
    output_shapes: list = dataclasses.field(default_factory=list)
    num_params: int = 0
    trainable: bool | None = None


@dataclasses.dataclass
class ModelSummary:
    """What ``jmod.summary`` found; ``str()`` is the table.

    Attributes:
        layers (list[LayerSummary]): one row per module call, in call order.
        total_params (int): parameters (a tied parameter once).
        trainable_params (int): those with ``requires_grad``.
        non_trainable_params (int): the frozen ones.
        param_bytes (int): bytes of all parameters.
        buffer_bytes (int): bytes of all buffers.
        input_bytes (int): bytes of the example inputs.
        output_shapes (list): the model output's array shapes.
        flops (float | None): XLA's FLOP count of the compiled step (with ``cost``).
        bytes_accessed (float | None): XLA's estimate of memory traffic (with ``cost``).
        memory (dict | None): XLA's memory analysis of the compiled step, in bytes:
            ``argument``, ``output``, ``temp``, ``alias``, ``generated_code`` (with ``cost``).
        depth (int): rows deeper than this are left out of the table (not of the numbers).
    """

    layers: list[LayerSummary]
    total_params: int
    trainable_params: int
    non_trainable_params: int
    param_bytes: int
    buffer_bytes: int
    input_bytes: int
    output_shapes: list
    flops: float | None = None
    bytes_accessed: float | None = None
    memory: dict | None = None
    cost: str | None = None
    depth: int = 3

    def __str__(self) -> str:
        rows = [("Layer (type)", "Output Shape", "Param #", "Trainable")]
        last_at_depth: dict[int, int] = {}
        shown = [r for r in self.layers if r.depth <= self.depth]
        for i, r in enumerate(shown):
            last_at_depth[r.depth] = i
        for i, r in enumerate(shown):
            if r.depth == 0:
                label = r.type
            else:
                label = "│    " * (r.depth - 1) + "├─" + f"{r.type} ({r.name.rsplit('.', 1)[-1]})"
            out = ", ".join(str(s) for s in r.output_shapes) if r.output_shapes else "--"
            params = f"{r.num_params:,}" if r.num_params else "--"
            trainable = "--" if r.trainable is None or not r.num_params else str(r.trainable)
            rows.append((label, out, params, trainable))
        widths = [max(len(row[c]) for row in rows) + 2 for c in range(4)]
        width = sum(widths)
        line = "=" * width

        def fmt(row: Sequence[str]) -> str:
            return "".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()

        out = [line, fmt(rows[0]), line, *(fmt(r) for r in rows[1:]), line]
        out += [
            f"Total params: {self.total_params:,}",
            f"Trainable params: {self.trainable_params:,}",
            f"Non-trainable params: {self.non_trainable_params:,}",
            line,
            f"Input size (MB): {_mb(self.input_bytes)}",
            f"Params size (MB): {_mb(self.param_bytes)}",
            f"Buffers size (MB): {_mb(self.buffer_bytes)}",
        ]
        if self.flops is not None:
            mem = self.memory or {}
            out += [
                line,
                f"Compiled {self.cost} step (XLA): {self.flops / 1e9:,.3f} GFLOPs, "
                f"{_mb(int(self.bytes_accessed or 0))} MB accessed",
                f"  memory (MB): arguments {_mb(mem.get('argument', 0))}, outputs {_mb(mem.get('output', 0))}, "
                f"temporaries {_mb(mem.get('temp', 0))}",
            ]
        out.append(line)
        return "\n".join(out)

    def __repr__(self) -> str:
        return str(self)


def _with_containers(rows: list[LayerSummary], known: dict[str, LayerSummary]) -> list[LayerSummary]:
    """Rows for the containers a forward never calls (``ModuleList``, ``ModuleDict``), before
    their first called child, as torchinfo lists them."""
    out: list[LayerSummary] = []
    open_names: list[str] = []
    for row in rows:
        parts = row.name.split(".") if row.name else []
        while open_names and not (row.name + ".").startswith(open_names[-1] + "."):
            open_names.pop()
        for k in range(1, len(parts)):
            prefix = ".".join(parts[:k])
            if prefix not in open_names and prefix in known:
                out.append(dataclasses.replace(known[prefix]))
                open_names.append(prefix)
        out.append(row)
        if row.name:
            open_names.append(row.name)
    return out


def _record(model: Any, rows: list[LayerSummary], known: dict[str, LayerSummary] | None = None) -> list[Any]:
    """Forward pre-hooks / hooks on every submodule appending one row per call."""
    names = {}
    for name, m in model.named_modules():
        names.setdefault(id(m), name)
    stack: list[LayerSummary] = []
    handles = []
    for m in model.modules():
        name = names[id(m)]
        own = [p for _, p in m.named_parameter_slots(recurse=False)]
        count = sum(int(math.prod(s.data.shape)) for s in own)
        flags = {s.requires_grad for s in own}
        trainable = flags.pop() if len(flags) == 1 else None
        if known is not None and name:
            known[name] = LayerSummary(name, type(m).__name__, name.count(".") + 1, [], count, trainable)

        def pre(mod: Any, args: Any, _n: str = name, _c: int = count, _t: Any = trainable) -> None:
            row = LayerSummary(_n, type(mod).__name__, 0 if not _n else _n.count(".") + 1, [], _c, _t)
            rows.append(row)
            stack.append(row)

        def post(mod: Any, args: Any, output: Any) -> None:
            stack.pop().output_shapes = _shapes(output)

        handles.append(m.register_forward_pre_hook(pre))
        handles.append(m.register_forward_hook(post))
    return handles


def _state(model: Any) -> tuple[dict, dict, set]:
    params = {n: s.data for n, s in model.named_parameter_slots()}
    trainable = {n for n, s in model.named_parameter_slots() if s.requires_grad}
    buffers = {n: b for n, b in model.named_buffers() if b is not None}
    return params, buffers, trainable


def _numbers(params: dict, buffers: dict, trainable: set) -> dict:
    def nbytes(x: Any) -> int:
        return int(math.prod(x.shape)) * jnp.dtype(x.dtype).itemsize

    total = sum(int(math.prod(p.shape)) for p in params.values())
    train = sum(int(math.prod(p.shape)) for n, p in params.items() if n in trainable)
    return {
        "total_params": total,
        "trainable_params": train,
        "non_trainable_params": total - train,
        "param_bytes": sum(nbytes(p) for p in params.values()),
        "buffer_bytes": sum(nbytes(b) for b in buffers.values()),
    }


def summary(
    model: Any,
    *example_inputs: Any,
    kwargs: dict | None = None,
    depth: int = 3,
    cost: str | None = None,
) -> ModelSummary:
    """A torchinfo-style summary of ``model``: each layer's output shape and parameters.

    Nothing is computed: the forward is traced abstractly (``jax.eval_shape``) with
    abstract weights, so the summary costs a trace, whatever the model's size. Pass
    ``model`` as a function that builds it (``lambda: GPT(config)``) for a model too
    large to hold in memory: it is built inside the trace, abstractly (no memory, no
    random draws; the global random stream is left as it was).

    Args:
        model (Module | Callable): the model, or a function of no arguments building it.
        *example_inputs (Any): the forward's positional arguments: arrays (jax, NumPy,
            torch tensors) or ``jax.ShapeDtypeStruct`` specs (no memory either).
        kwargs (dict | None): keyword arguments of the forward.
        depth (int): rows nested deeper than this are left out of the table (torchinfo's
            ``depth``, default 3); the numbers count everything.
        cost (str | None): also compile the step and report XLA's FLOPs, bytes accessed and
            memory (arguments, outputs, temporaries): ``"forward"`` (the forward alone) or
            ``"train"`` (forward and gradients of the outputs' sum with respect to the
            trainable parameters). Compiling costs time, never the step's FLOPs.

    Returns:
        ModelSummary: ``str()`` gives the table; its attributes hold the numbers.

    Examples:
        >>> import jax, jax.numpy as jnp, jmod
        >>> from jmod import nn
        >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        >>> s = jmod.summary(model, jax.ShapeDtypeStruct((16, 4), jnp.float32))
        >>> s.total_params, s.layers[1].output_shapes
        (58, [[16, 8]])
    """
    from jmod.func import functional_call
    from jmod.nn.modules.module import Module

    if cost not in (None, "forward", "train"):
        raise ValueError(f"cost must be None, 'forward' or 'train', got {cost!r}")
    build = None if isinstance(model, Module) else model
    if build is not None and not callable(build):
        raise TypeError(f"summary() takes a Module or a function building one, got {type(model).__name__}")
    inputs = tuple(_abstract(x) for x in example_inputs)
    kwargs = {k: _abstract(v) for k, v in (kwargs or {}).items()}
    rows: list[LayerSummary] = []
    known: dict[str, LayerSummary] = {}

    def get_model() -> Any:
        if build is None:
            return model
        with abstract_build():  # inside a trace: no memory, no draws
            m = build()
        if not isinstance(m, Module):
            raise TypeError(f"the function given to summary() must return a Module, got {type(m).__name__}")
        return m

    def traced(params: dict, buffers: dict, inputs: Any, kwargs: Any, record: bool, train: bool) -> Any:
        m = get_model()
        handles = _record(m, rows, known) if record else []
        try:

            def forward(p: dict) -> Any:
                return functional_call(m, (p, buffers), inputs, kwargs, key=jax.random.key(0))

            if not train:
                return forward(params)

            def loss(tp: dict) -> Any:
                out = forward({**params, **tp})
                leaves = [x for x in jax.tree_util.tree_leaves(out) if jnp.issubdtype(x.dtype, jnp.inexact)]
                return sum(jnp.sum(x.astype(jnp.float32)) for x in leaves)

            return jax.value_and_grad(loss)({n: p for n, p in params.items() if n in trainable})
        finally:
            for h in handles:
                h.remove()

    if build is None:
        params, buffers, trainable = _state(model)
    else:
        # the state's shapes, from an abstract build (the model is rebuilt inside each trace)
        names: dict = {}

        def state() -> tuple:
            p, b, t = _state(get_model())
            names["trainable"] = t
            return p, b

        params, buffers = jax.eval_shape(state)
        trainable = names["trainable"]
    found = _numbers(params, buffers, trainable)
    abstract_state = (jax.tree.map(_abstract, params), jax.tree.map(_abstract, buffers))

    def run(record: bool, train: bool) -> Callable:
        return lambda p, b, x, k: traced(p, b, x, k, record, train)

    out = jax.eval_shape(run(True, False), *abstract_state, inputs, kwargs)
    result = ModelSummary(
        layers=_with_containers(rows, known),
        input_bytes=sum(
            int(math.prod(x.shape)) * jnp.dtype(x.dtype).itemsize for x in jax.tree_util.tree_leaves(inputs)
        ),
        output_shapes=_shapes(out),
        depth=depth,
        cost=cost,
        **found,
    )
    if cost is not None:
        compiled = jax.jit(run(False, cost == "train")).lower(*abstract_state, inputs, kwargs).compile()
        analysis = compiled.cost_analysis()
        if isinstance(analysis, (list, tuple)):  # older jax: one dict per computation
            analysis = analysis[0] if analysis else {}
        analysis = analysis or {}
        result.flops = float(analysis.get("flops", 0.0))
        result.bytes_accessed = float(analysis.get("bytes accessed", 0.0))
        mem = compiled.memory_analysis()
        if mem is not None:
            result.memory = {
                "argument": int(mem.argument_size_in_bytes),
                "output": int(mem.output_size_in_bytes),
                "temp": int(mem.temp_size_in_bytes),
                "alias": int(mem.alias_size_in_bytes),
                "generated_code": int(mem.generated_code_size_in_bytes),
            }
    return result
