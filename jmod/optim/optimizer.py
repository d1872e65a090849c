"""``jmod.optim.Optimizer``: an optax transformation bound to a model's parameters.

torch's optimizer holds references to parameters and ``step()`` mutates them.
jmod's does the same with ``Parameter`` slots: ``step(grads)`` runs the optax update
and writes the new arrays into the slots, so every module sharing a parameter sees
it. The optax state is kept as a flat list of arrays, which ``jmod.jit`` threads
through compiled steps like module state.

Parameters are found from a model (``Optimizer(model, tx)``) or, torch-style, from
``model.parameters()`` / ``model.named_parameters()`` / parameter groups (lists of
dicts with ``"params"`` and per-group options). Gradients are the name-keyed dicts
``jmod.grad`` returns.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jmod._src import structure
from jmod._src.arrays import is_tracer, to_jax
from jmod._src.state import commit
from jmod.nn.parameter import Parameter, owner_of

__all__ = ["Optimizer", "ParamGroup"]


def _is_module(x: Any) -> bool:
    from jmod.nn.modules.module import Module

    return isinstance(x, Module)


class ParamGroup(dict):
    """One entry of ``optimizer.param_groups``: ``{"params": [names], "lr": ...}``.

    Assigning a hyperparameter (``group["lr"] = 0.01``) changes it in the optimizer
    state, so the next step (eager or compiled, without recompiling) uses it, as in
    torch. ``"params"`` lists parameter names.
    """

    def __init__(self, owner: Optimizer, index: int, values: dict) -> None:
        super().__init__(values)
        self._owner = owner
        self._index = index

    def __setitem__(self, key: str, value: Any) -> None:
        owner = self._owner
        if key != "params" and owner._set_hyperparam(self._index, key, value) and is_tracer(value):
            return  # the traced value lives in the optimizer state only
        super().__setitem__(key, value)

    def __reduce__(self):
        return (dict, (dict(self),))


def _collect_slots(params: Any) -> tuple[list[Parameter], list[str | None]]:
    """Parameter slots and their names from a Module, arrays, (name, array) pairs or slots.

    A name is the dotted name the parameter was listed under (``named_parameters()``),
    or ``None`` when only the array is known; ``step`` then matches it to the
    gradient by the name ``jmod.grad`` last gave that parameter.
    """
    if _is_module(params):
        pairs = list(params.named_parameter_slots())
        _check_initialized([s for _, s in pairs])
        return [s for _, s in pairs], [n for n, _ in pairs]
    if isinstance(params, (jax.Array, Parameter)):
        raise TypeError(
            "params argument given to the optimizer should be an iterable of arrays or dicts, but got "
            + type(params).__name__
        )
    slots: list[Parameter] = []
    names: list[str | None] = []
    for item in params:
        name = None
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
            name, item = item
        slot = item if isinstance(item, Parameter) else owner_of(item)
        if slot is None:
            raise TypeError(
                "optimizer can only optimize parameters read from a jmod Module (got "
                f"{type(item).__name__}, which is not a module's current parameter value): pass the model, "
                "model.parameters() or model.named_parameters() directly, not a list kept from before the "
                "parameter was reassigned or of a model that no longer exists (keep the model in a variable)"
            )
        slots.append(slot)
        names.append(name if name is not None else slot._last_name)
    _check_initialized(slots)
    if len({id(s) for s in slots}) != len(slots):
        warnings.warn(
            "optimizer contains a parameter group with duplicate parameters; "
            "in future, this will cause an error; "
            "see github.com/pytorch/pytorch/issues/40967 for more information",
            stacklevel=4,
        )
        # One entry per parameter: it is updated once per step (torch would update it
        # once per occurrence).
        first = {id(s): i for i, s in reversed(list(enumerate(slots)))}
        keep = sorted(first.values())
        slots, names = [slots[i] for i in keep], [names[i] for i in keep]
    return slots, names


def _slot_of(item: Any) -> Any:
    """``item`` (an array or ``(name, array)``) with the array replaced by its slot, if it has one."""
    if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
        slot = owner_of(item[1])
        return item if slot is None else (item[0], slot)
    slot = owner_of(item) if isinstance(item, jax.Array) else None
    return item if slot is None else slot


def _is_torch_format(state_dict: Mapping[str, Any]) -> bool:
    """torch.optim's layout: parameter positions (ints) in ``param_groups`` and ``state``."""
    groups = state_dict.get("param_groups") or []
    return (
        bool(groups)
        and all(isinstance(i, int) and not isinstance(i, bool) for g in groups for i in g.get("params", []))
        and all(isinstance(k, int) for k in state_dict.get("state", {}))
    )


def _check_initialized(slots: list[Parameter]) -> None:
    """Refuse a lazy module's parameters before its first call: optax builds the
    optimizer state from the parameters' shapes, which are not known yet."""
    from jmod.nn.parameter import is_lazy

    if any(is_lazy(s) for s in slots):
        raise ValueError(
            "optimizer got an uninitialized parameter (nn.UninitializedParameter) of a lazy module "
            "(nn.LazyLinear, nn.LazyConv2d, ...): its shape is inferred at the module's first call. Run one "
            "forward pass with an example input first (a dry run), then build the optimizer."
        )


class Optimizer:
    """Bind an optax transformation to a model's parameters.

    Args:
        params: the model, or torch-style ``model.parameters()``,
            ``model.named_parameters()``, or a list of parameter-group dicts.
        tx: an ``optax.GradientTransformation`` (any: ``optax.adam(1e-3)``, a chain,
            a schedule-driven one).

    ``step(grads)`` updates the parameters in place from a gradient dict keyed like
    ``named_parameters()`` (what ``jmod.grad`` returns). Frozen parameters
    (``requires_grad=False``) and parameters missing from ``grads`` are not
    updated. ``zero_grad()`` is a no-op kept for ported loops. The optimizer can be
    an argument of ``jmod.jit``.

    Examples:
        >>> import jax.numpy as jnp, optax, jmod
        >>> from jmod import nn
        >>> model = nn.Linear(2, 1)
        >>> opt = jmod.optim.Optimizer(model, optax.sgd(0.5))
        >>> before = model.bias
        >>> grads = jmod.grad(lambda m: m(jnp.ones((1, 2))).sum())(model)
        >>> opt.step(grads)
        >>> jnp.round(model.bias - before, 4)
        Array([-0.5], dtype=float32)
    """

    def __init__(
        self, params: Any, tx: optax.GradientTransformation | None = None, defaults: dict | None = None
    ) -> None:
        self.defaults = dict(defaults or {})
        groups = self._normalise_groups(params)
        self._slots: list[Parameter] = []
        self._names: list[str | None] = []  # names to look gradients up by
        self._keys: list[str] = []  # unique keys of the optax state
        labels: dict[str, str] = {}
        seen: set[int] = set()
        group_dicts = []
        flat = [
            (gi, s, n)
            for gi, (group_slots, group_names, _) in enumerate(groups)
            for s, n in zip(group_slots, group_names)
        ]
        names_known = [n for _, _, n in flat]
        # State keys: the parameter names when every one is known and distinct (readable
        # state dicts), else positions, as torch keys its optimizer state.
        use_names = None not in names_known and len(set(names_known)) == len(names_known)
        for i, (gi, s, n) in enumerate(flat):
            if id(s) in seen:
                raise ValueError("some parameters appear in more than one parameter group")
            seen.add(id(s))
            key = n if use_names else str(i)
            self._slots.append(s)
            self._names.append(n)
            self._keys.append(key)
            labels[key] = f"group{gi}"
        for gi, (_, _, options) in enumerate(groups):
            group_keys = [k for k in self._keys if labels[k] == f"group{gi}"]
            group_dicts.append({"params": group_keys, **options})
        self._labels = labels
        for g in group_dicts:
            for k, v in self.defaults.items():
                g.setdefault(k, v)
        self._tx_from_options = tx is None
        if tx is None:
            tx = self._build_tx([{k: v for k, v in g.items() if k != "params"} for g in group_dicts])
        self.tx = tx
        self.param_groups = [ParamGroup(self, i, g) for i, g in enumerate(group_dicts)]
        self.opt_state = tx.init(self._params())
        self._place_state()

    # ------------------------------------------------------------------ building
    def _normalise_groups(self, params: Any) -> list[tuple[list[Parameter], list[str], dict]]:
        if _is_module(params):
            slots, names = _collect_slots(params)
            return [(slots, names, {})]
        if isinstance(params, Mapping):
            params = [params]
        if isinstance(params, (jax.Array, Parameter)):
            return [_collect_slots(params)]  # raises torch's TypeError (an array is iterable)
        # Slots taken while iterating: `SGD(nn.Linear(2, 2).parameters())` frees the model
        # when its generator ends, and its arrays alone no longer lead to their slots.
        params = [_slot_of(p) for p in params]
        if len(params) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(params[0], Mapping):
            slots, names = _collect_slots(params)
            return [(slots, names, {})]
        groups = []
        for g in params:
            g = dict(g)
            ps = g.pop("params")
            if isinstance(ps, (jax.Array, Parameter)):
                ps = [ps]
            slots, names = _collect_slots(ps)
            groups.append((slots, names, g))
        return groups

    def _build_tx(self, group_options: list[dict]) -> optax.GradientTransformation:
        """Subclasses (SGD, Adam, ...) build their transformation from the options."""
        raise TypeError("Optimizer(params, tx) needs an optax transformation; or use jmod.optim.SGD/Adam/AdamW/...")

    def _params(self) -> dict[str, jax.Array]:
        return {k: s.data for k, s in zip(self._keys, self._slots)}

    # --------------------------------------------------------------- optax state
    @property
    def opt_state(self) -> Any:
        """The optax state (a pytree); assignable."""
        return jax.tree_util.tree_unflatten(self._state_treedef, self._state_leaves)

    @opt_state.setter
    def opt_state(self, value: Any) -> None:
        leaves, treedef = jax.tree_util.tree_flatten(value)
        old = self.__dict__.get("_state_treedef")
        if old is not None and old == treedef:
            # In place: compiled code holds locations into this very list.
            self._state_leaves[:] = leaves
            return
        self._state_leaves = leaves
        self._state_treedef = treedef
        structure.bump(self)

    def _place_state(self) -> None:
        """Put each state array where its parameter is (used by ``__init__`` and
        ``jmod.parallel.shard_optimizer``).

        ``tx.init`` builds moments with ``zeros_like(param)``, which keeps a placed
        parameter's sharding, but scalars (step counts, injected hyperparameters)
        land uncommitted on the default device, and state built before the model
        was moved stays behind. So: state under a parameter's key (optax and jmod's
        rules keep per-parameter state in dicts keyed like the parameters) takes the
        parameter's sharding when it has its shape, else is replicated over that
        parameter's devices; state shared by all parameters is replicated over their
        devices. Nothing moves while no parameter is committed to a placement.
        """
        from jmod._src import devices

        params = self._params()
        where = {k: devices.committed_sharding(v) for k, v in params.items()}
        placed = [s for s in where.values() if s is not None]
        if not placed:
            return
        common = None
        if len({frozenset(s.device_set) for s in placed}) == 1:
            named = [s for s in placed if isinstance(s, jax.sharding.NamedSharding)]
            common = devices.replicated((named or placed)[0])
        new = []
        for path, leaf in jax.tree_util.tree_flatten_with_path(self.opt_state)[0]:
            key = next((k.key for k in path if isinstance(k, jax.tree_util.DictKey) and k.key in where), None)
            target = common
            if key is not None:
                s = where[key]
                target = None if s is None else s if leaf.shape == params[key].shape else devices.replicated(s)
            if target is not None and isinstance(leaf, jax.Array) and (not leaf.committed or leaf.sharding != target):
                leaf = devices.place(leaf, target)
            new.append(leaf)
        self._state_leaves[:] = new

    # What jmod.jit threads through compiled code for this optimizer.
    def _jmod_state_locations(self) -> list[tuple[Any, Any]]:
        leaves = self._state_leaves
        return [(leaves, i) for i in range(len(leaves))] + [(s.__dict__, "data") for s in self._slots]

    def _jmod_describe(self, slot_index: dict[int, int]) -> tuple:
        # Structure only (no identity): a fresh optimizer of the same kind over a model
        # of the same structure reuses the compiled step.
        return (
            type(self),
            self._jmod_tx_key(),
            self._state_treedef,
            tuple(self._keys),
            tuple(slot_index.get(id(s), ("free", s.data.shape, s.data.dtype)) for s in self._slots),
            tuple(s.requires_grad for s in self._slots),
            tuple((x.shape, x.dtype) for x in self._state_leaves),
        )

    def _jmod_tx_key(self) -> Any:
        """What the optax transformation compiles in: its functions' code and closed-over
        values (two ``optax.adam(1e-3)`` are the same; ``optax.adam(1e-2)`` is not)."""
        from jmod._src.binding import freeze

        if self._tx_from_options:
            # Built from torch-style options: live hyperparameters (lr, betas, ...) are
            # optimizer state, so only the compiled-in options (and schedules) count.
            static = set(getattr(self, "_static", ()))
            groups = tuple(
                tuple((k, freeze(v)) for k, v in sorted(g.items()) if k != "params" and (k in static or callable(v)))
                for g in self.param_groups
            )
            return ("options", type(self), freeze(self.__dict__.get("_rule")), groups, tuple(self._labels.values()))
        return freeze(tuple(self.tx))

    # ---------------------------------------------------------------------- step
    def step(self, grads: Mapping[str, Any] | None = None, closure: Callable | None = None) -> Any:
        """Update the parameters from ``grads`` (``{name: array}``, from ``jmod.grad``).

        Parameters that are frozen or have no entry in ``grads`` are left as they are
        (torch skips parameters whose ``.grad`` is ``None``). Returns the closure's
        loss if a ``closure`` is given (it must return ``(loss, grads)``).
        """
        # Read by jmod.optim.lr_scheduler to warn about `scheduler.step()` before
        # `optimizer.step()` (torch wraps optimizer.step for this). Under jmod.jit this
        # runs when the step is traced, which is when it is first called.
        self._opt_called = True
        loss = None
        if closure is not None:
            loss, grads = closure()
        if grads is None:
            raise TypeError(
                "jmod optimizers need the gradients explicitly: loss, grads = jmod.value_and_grad(loss_fn)(model); "
                "optimizer.step(grads)"
            )
        params = self._params()
        has_grad = {}
        full = {}
        found = False
        for key, name, s in zip(self._keys, self._names, self._slots):
            g = None
            if s.requires_grad:
                g = grads.get(name) if name is not None else None
                if g is None and s._grad_name is not None:
                    g = grads.get(s._grad_name)
            found = found or g is not None
            has_grad[key] = g is not None
            full[key] = jnp.zeros_like(params[key]) if g is None else g
        if grads and not found and any(s.requires_grad for s in self._slots):
            raise ValueError(
                "none of this optimizer's parameters has an entry in grads (grads has keys like "
                f"{list(grads)[:3]}, the optimizer holds {[n for n in self._names if n][:3]}): pass the "
                "gradients of the model the optimizer was built for"
            )
        try:
            updates, new_state = self.tx.update(full, self.opt_state, params, has_grad=has_grad)
        except TypeError as e:
            if "has_grad" not in str(e):
                raise
            updates, new_state = self.tx.update(full, self.opt_state, params)
        new_params = optax.apply_updates(params, updates)
        # Parameters and optimizer state change together (an interrupt in between would
        # leave new parameters with old moments).
        writes = [(s.__dict__, "data", new_params[key]) for key, s in zip(self._keys, self._slots) if has_grad[key]]
        writes.append((self._state_leaves, slice(None), jax.tree_util.tree_leaves(new_state)))
        commit(writes)
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        """No-op kept for ported training loops (gradients never accumulate in jmod)."""

    # -------------------------------------------------------------- hyperparams
    def _find_hyperparams(self, state: Any, group_index: int) -> dict | None:
        """The live hyperparameter dict of a group inside ``state`` (an
        ``optax.inject_hyperparams`` state), or None."""
        if isinstance(state, optax.MultiTransformState):
            state = state.inner_states.get(f"group{group_index}")
            state = getattr(state, "inner_state", state)
        hp = getattr(state, "hyperparams", None)
        return hp if isinstance(hp, dict) else None

    def _set_hyperparam(self, group_index: int, key: str, value: Any) -> bool:
        """Write a hyperparameter (``lr``, ``betas``, ...) into the optimizer state."""
        state = self.opt_state
        hp = self._find_hyperparams(state, group_index)
        if hp is None:
            return False
        # torch's pair options (Adam's ``betas``, Rprop's ``etas``/``step_sizes``) are two
        # scalar hyperparameters of the rule (``_rename``).
        target = getattr(self, "_rename", {}).get(key, key)
        names = target if isinstance(target, tuple) else (target,)
        values = tuple(value) if isinstance(target, tuple) else (value,)
        if not all(n in hp for n in names):
            return False
        for n, v in zip(names, values):
            hp[n] = v if is_tracer(v) else to_jax(v, hp[n].dtype)
        self.opt_state = state
        return True

    # ---------------------------------------------------------------- state dict
    def state_dict(self) -> dict[str, Any]:
        """``{"state": {path: array}, "param_groups": [...]}``: the optax state flattened
        with readable key paths, and the groups' options (names in ``"params"``)."""
        flat = jax.tree_util.tree_flatten_with_path(self.opt_state)[0]
        state = {jax.tree_util.keystr(path): leaf for path, leaf in flat}
        groups = []
        for g in self.param_groups:
            d = {k: (float(v) if isinstance(v, jax.Array) and v.ndim == 0 else v) for k, v in g.items()}
            groups.append(d)
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Load a state produced by :meth:`state_dict` (checked before anything changes).

        A ``torch.optim`` state dict (``state`` keyed by parameter position,
        ``param_groups`` listing positions) is accepted too by the torch-named
        optimizers (SGD, Adam, ...), whose per-parameter state has torch's fields: a
        torch training run resumes here with its moments and step counts.
        """
        if _is_torch_format(state_dict):
            state_dict = self._from_torch_format(state_dict)
        flat, treedef = jax.tree_util.tree_flatten_with_path(self.opt_state)
        saved = state_dict["state"]
        keys = [jax.tree_util.keystr(p) for p, _ in flat]
        missing = [k for k in keys if k not in saved]
        unexpected = [k for k in saved if k not in set(keys)]
        if missing or unexpected:
            raise ValueError(
                f"loaded state dict does not match this optimizer's state: missing {missing}, unexpected {unexpected}"
            )
        new = []
        for (path, old), k in zip(flat, keys):
            v = to_jax(saved[k])
            if v.shape != old.shape:
                raise ValueError(f"loaded state dict has a different shape for {k}: {v.shape} vs {old.shape}")
            v = v.astype(old.dtype)
            if isinstance(old, jax.Array) and old.committed and v.sharding != old.sharding:
                # Like Module.load_state_dict: the loaded value takes the place (device,
                # sharding) of the state it replaces.
                from jmod._src.devices import place

                v = place(v, old.sharding)
            new.append(v)
        groups = state_dict.get("param_groups")
        if groups is not None and len(groups) != len(self.param_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        self._state_leaves[:] = new
        if groups is not None:
            for g, saved_g in zip(self.param_groups, groups):
                for k, v in saved_g.items():
                    if k != "params" and g.get(k) != v:
                        g[k] = v

    def _from_torch_format(self, state_dict: Mapping[str, Any]) -> dict[str, Any]:
        """torch.optim's state dict in this optimizer's own format (see load_state_dict)."""
        torch_groups = state_dict["param_groups"]
        order = [i for g in torch_groups for i in g["params"]]
        if len(torch_groups) != len(self.param_groups) or len(order) != len(self._keys):
            raise ValueError(
                "loaded state dict contains a parameter group that doesn't match the size of optimizer's group"
            )
        index_of = {key: order[pos] for pos, key in enumerate(self._keys)}
        torch_state = state_dict["state"]
        state = {}
        for path, leaf in jax.tree_util.tree_flatten_with_path(self.opt_state)[0]:
            names = [p.key for p in path if isinstance(p, jax.tree_util.DictKey)]
            value = leaf
            if len(names) >= 2 and names[-2] in index_of:
                per_param = torch_state.get(index_of[names[-2]], {})
                field = names[-1]
                if field in per_param:
                    value = per_param[field]
                elif field == "step" and per_param:
                    value = np.ones((), np.asarray(leaf).dtype)  # torch's SGD keeps no step count
                elif per_param:
                    raise ValueError(
                        f"loaded torch optimizer state for parameter {names[-2]!r} has no {field!r} "
                        f"(it has {sorted(per_param)}): was it saved by the same kind of optimizer?"
                    )
            state[jax.tree_util.keystr(path)] = value
        groups = [
            {k: v for k, v in tg.items() if k in g and k != "params"} for g, tg in zip(self.param_groups, torch_groups)
        ]
        return {"state": state, "param_groups": groups}

    def __repr__(self) -> str:
        lines = [self.__class__.__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(group.keys()):
                if key != "params":
                    lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.pop("_jmod_lock", None)
        state.pop("_jmod_watchers", None)
        state["param_groups"] = [dict(g) for g in self.param_groups]
        if state.get("_tx_from_options"):
            # Rebuilt from the groups' options on load: optax transformations hold local
            # functions, which pickle cannot save.
            state["tx"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        groups = state.pop("param_groups")
        self.__dict__.update(state)
        self.param_groups = [ParamGroup(self, i, dict(g)) for i, g in enumerate(groups)]
        if self.tx is None:
            self.tx = self._build_tx([{k: v for k, v in g.items() if k != "params"} for g in groups])
