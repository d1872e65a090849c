"""``jmod.optim.param_groups``: torch-style parameter groups chosen by name or by a predicate.

torch code builds groups by filtering ``named_parameters()`` into lists (nanoGPT's
``configure_optimizers``); that spelling works in jmod unchanged. This helper says the
same in one call::

    groups = jmod.optim.param_groups(model, {"where": lambda n, p: p.ndim < 2, "weight_decay": 0.0})
    optimizer = jmod.optim.AdamW(groups, lr=6e-4, weight_decay=0.1)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from jmod.nn.parameter import Parameter, owner_of

__all__ = ["param_groups"]


def param_groups(model: Any, *groups: Mapping[str, Any], rest: bool = True) -> list[dict[str, Any]]:
    """Parameter groups for a jmod optimizer, selected by parameter name or by a predicate.

    Each group is a dict of options for the optimizer (``"lr"``, ``"weight_decay"``,
    ...) plus one selector:

    * ``"params"``: parameter names as ``named_parameters()`` gives them
      (``["fc.weight", "fc.bias"]``; any name of a tied parameter works), or arrays /
      ``(name, array)`` pairs as in torch;
    * ``"where"``: a function ``(name, array) -> bool`` called for every parameter (a
      tied parameter once, under its first name), e.g. ``lambda n, p: p.ndim < 2`` or
      ``lambda n, p: n.startswith("head.")``.

    A parameter belongs to the first group that selects it; naming one parameter in
    two ``"params"`` lists is torch's error. The parameters no group selects form
    group 0, which takes the optimizer's defaults (``rest=False`` leaves them out:
    they are not optimized). So ``param_groups(model, spec)`` is ``[rest, spec]``,
    and ``optimizer.param_groups[i + 1]`` is the group made from ``groups[i]``.

    Args:
        model: the Module whose parameters are grouped.
        *groups: the group dicts described above.
        rest: put the parameters no group selects in a first group of their own.

    Returns:
        torch-style group dicts (``"params"`` holds ``(name, array)`` pairs) that
        ``jmod.optim.SGD/Adam/AdamW/...`` take as their first argument.

    Examples:
        >>> import jmod
        >>> from jmod import nn
        >>> model = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4), nn.Linear(4, 2))
        >>> groups = jmod.optim.param_groups(model, {"where": lambda n, p: p.ndim < 2, "weight_decay": 0.0})
        >>> opt = jmod.optim.AdamW(groups, lr=1e-3, weight_decay=0.1)
        >>> [(g["params"], g["weight_decay"]) for g in opt.param_groups]
        [(['0.weight', '2.weight'], 0.1), (['0.bias', '1.weight', '1.bias', '2.bias'], 0.0)]
        >>> opt = jmod.optim.SGD(jmod.optim.param_groups(model, {"params": ["2.weight", "2.bias"], "lr": 0.1}), lr=0.01)
        >>> [g["lr"] for g in opt.param_groups]
        [0.01, 0.1]
    """
    from jmod.nn.modules.module import Module

    if not isinstance(model, Module):
        raise TypeError(f"param_groups() takes the model first, got {type(model).__name__}")
    named = list(model.named_parameters())  # each parameter once, under its first name
    first_name = {id(owner_of(p)): n for n, p in named}
    by_name = dict(model.named_parameter_slots(remove_duplicate=False))
    taken: dict[int, int] = {}  # id(slot) -> group index
    selected: list[list[tuple[str, Any]]] = []
    options: list[dict[str, Any]] = []
    for gi, group in enumerate(groups):
        if not isinstance(group, Mapping):
            raise TypeError(f"param_groups(): group {gi} should be a dict of options, got {type(group).__name__}")
        group = dict(group)
        has_params, has_where = "params" in group, "where" in group
        if has_params == has_where:
            raise ValueError(
                f"param_groups(): group {gi} needs exactly one of 'params' (a list of parameter names) or "
                "'where' (a function (name, array) -> bool)"
            )
        chosen: list[tuple[str, Any]] = []
        if has_where:
            where: Callable[[str, Any], bool] = group.pop("where")
            if not callable(where):
                raise TypeError(f"param_groups(): group {gi}'s 'where' must be a function (name, array) -> bool")
            for n, p in named:
                slot = owner_of(p)
                if id(slot) not in taken and where(n, p):
                    taken[id(slot)] = gi
                    chosen.append((n, p))
        else:
            ps = group.pop("params")
            if isinstance(ps, (str, Parameter)) or hasattr(ps, "shape"):
                ps = [ps]
            for item in ps:
                slot = _resolve(item, by_name, gi)
                if id(slot) not in first_name:
                    raise ValueError(f"param_groups(): group {gi} holds a parameter of another model")
                if id(slot) in taken:
                    raise ValueError("some parameters appear in more than one parameter group")
                taken[id(slot)] = gi
                chosen.append((first_name[id(slot)], slot._note_read()))
        selected.append(chosen)
        options.append(group)
    out = [{"params": c, **o} for c, o in zip(selected, options)]
    if rest:
        out.insert(0, {"params": [(n, p) for n, p in named if id(owner_of(p)) not in taken]})
    return out


def _resolve(item: Any, by_name: dict[str, Parameter], gi: int) -> Parameter:
    if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
        item = item[1]
    if isinstance(item, str):
        slot = by_name.get(item)
        if slot is None:
            close = [n for n in by_name if n.endswith(item) or item.endswith(n)][:3]
            hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
            raise ValueError(f"param_groups(): group {gi} names {item!r}, which is not a parameter of the model{hint}")
        return slot
    if isinstance(item, Parameter):
        return item
    slot = owner_of(item)
    if slot is None:
        raise ValueError(
            f"param_groups(): group {gi} holds an array that is not a parameter's current value; "
            'name the parameter instead ("params": ["fc.weight", ...])'
        )
    return slot
