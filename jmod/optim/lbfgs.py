"""``jmod.optim.LBFGS``: torch.optim.LBFGS with its closure API and its numbers.

A port of torch's ``torch/optim/lbfgs.py`` (BSD-3-Clause; itself from minFunc and
torch7's ``optim``), operation for operation on flat float32 vectors, with and without
``line_search_fn="strong_wolfe"``.

The one difference is how the closure hands over the gradients. torch's closure calls
``loss.backward()`` and the optimizer reads each parameter's ``.grad``; jmod has no
``.grad``, so the closure *returns* them: ``return jmod.value_and_grad(loss_fn)(model)``,
i.e. ``(loss, grads)`` with ``grads`` keyed like ``named_parameters()`` (the same
convention as ``Optimizer.step(closure=...)``). ``step`` is eager Python, as torch's:
its loop and line search branch on the loss values. Compile the closure (a
``jmod.jit`` function taking the model) and each evaluation runs compiled code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import optax

from jmod._src.arrays import is_tracer, to_jax
from jmod.optim.optimizer import Optimizer

__all__ = ["LBFGS"]


def _cubic_interpolate(x1: Any, f1: Any, g1: Any, x2: Any, f2: Any, g2: Any, bounds: Any = None) -> Any:
    # ported from https://github.com/torch/optim/blob/master/polyinterp.lua (via torch)
    if bounds is not None:
        xmin_bound, xmax_bound = bounds
    else:
        xmin_bound, xmax_bound = (x1, x2) if x1 <= x2 else (x2, x1)
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1**2 - g1 * g2
    if d2_square >= 0:
        d2 = jnp.sqrt(d2_square)
        if x1 <= x2:
            min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
        else:
            min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
        return min(max(min_pos, xmin_bound), xmax_bound)
    return (xmin_bound + xmax_bound) / 2.0


def _strong_wolfe(
    obj_func: Callable, x: Any, t: Any, d: jax.Array, f: Any, g: jax.Array, gtd: Any,
    c1: float = 1e-4, c2: float = 0.9, tolerance_change: float = 1e-9, max_ls: int = 25,
) -> tuple:  # fmt: skip
    # ported from https://github.com/torch/optim/blob/master/lswolfe.lua (via torch)
    d_norm = jnp.abs(d).max()
    f_new, g_new = obj_func(x, t, d)
    ls_func_evals = 1
    gtd_new = g_new @ d

    # bracket an interval containing a point satisfying the Wolfe criteria
    t_prev, f_prev, g_prev, gtd_prev = 0, f, g, gtd
    done = False
    ls_iter = 0
    while ls_iter < max_ls:
        if f_new > (f + c1 * t * gtd) or (ls_iter > 1 and f_new >= f_prev):
            bracket, bracket_f, bracket_g, bracket_gtd = (
                [t_prev, t],
                [f_prev, f_new],
                [g_prev, g_new],
                [gtd_prev, gtd_new],
            )
            break
        if abs(gtd_new) <= -c2 * gtd:
            bracket, bracket_f, bracket_g = [t], [f_new], [g_new]
            done = True
            break
        if gtd_new >= 0:
            bracket, bracket_f, bracket_g, bracket_gtd = (
                [t_prev, t],
                [f_prev, f_new],
                [g_prev, g_new],
                [gtd_prev, gtd_new],
            )
            break
        # interpolate
        min_step = t + 0.01 * (t - t_prev)
        max_step = t * 10
        tmp = t
        t = _cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new, bounds=(min_step, max_step))
        # next step
        t_prev, f_prev, g_prev, gtd_prev = tmp, f_new, g_new, gtd_new
        f_new, g_new = obj_func(x, t, d)
        ls_func_evals += 1
        gtd_new = g_new @ d
        ls_iter += 1

    # reached max number of iterations?
    if ls_iter == max_ls:
        bracket, bracket_f, bracket_g = [0, t], [f, f_new], [g, g_new]

    # zoom phase: refine the bracket until a point satisfies the criteria
    insuf_progress = False
    low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[-1] else (1, 0)
    while not done and ls_iter < max_ls:
        if abs(bracket[1] - bracket[0]) * d_norm < tolerance_change:
            break
        t = _cubic_interpolate(bracket[0], bracket_f[0], bracket_gtd[0], bracket[1], bracket_f[1], bracket_gtd[1])
        # sufficient progress? (t too close to a boundary moves 0.1 * len(bracket) inside)
        eps = 0.1 * (max(bracket) - min(bracket))
        if min(max(bracket) - t, t - min(bracket)) < eps:
            if insuf_progress or t >= max(bracket) or t <= min(bracket):
                if abs(t - max(bracket)) < abs(t - min(bracket)):
                    t = max(bracket) - eps
                else:
                    t = min(bracket) + eps
                insuf_progress = False
            else:
                insuf_progress = True
        else:
            insuf_progress = False

        f_new, g_new = obj_func(x, t, d)
        ls_func_evals += 1
        gtd_new = g_new @ d
        ls_iter += 1

        if f_new > (f + c1 * t * gtd) or f_new >= bracket_f[low_pos]:
            # Armijo condition not satisfied or not lower than lowest point
            bracket[high_pos], bracket_f[high_pos] = t, f_new
            bracket_g[high_pos], bracket_gtd[high_pos] = g_new, gtd_new
            low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True  # Wolfe conditions satisfied
            elif gtd_new * (bracket[high_pos] - bracket[low_pos]) >= 0:
                # old high becomes new low
                bracket[high_pos], bracket_f[high_pos] = bracket[low_pos], bracket_f[low_pos]
                bracket_g[high_pos], bracket_gtd[high_pos] = bracket_g[low_pos], bracket_gtd[low_pos]
            # new point becomes new low
            bracket[low_pos], bracket_f[low_pos] = t, f_new
            bracket_g[low_pos], bracket_gtd[low_pos] = g_new, gtd_new

    t = bracket[low_pos]
    return bracket_f[low_pos], bracket_g[low_pos], t, ls_func_evals


class LBFGS(Optimizer):
    """L-BFGS, torch.optim.LBFGS's algorithm and numbers; ``step(closure)`` as in torch.

    The closure re-evaluates the model and returns ``(loss, grads)``:
    ``return jmod.value_and_grad(loss_fn)(model)`` (torch's calls ``loss.backward()``
    and returns the loss; jmod has no ``.grad`` for the optimizer to read). ``step``
    runs eagerly (its iterations branch on the loss); compile the closure for speed.
    Only one parameter group, as in torch.

    Args:
        params (Any): the model, ``model.parameters()`` or ``model.named_parameters()``.
        lr (float): learning rate. Default: 1.
        max_iter (int): maximal number of iterations per ``step``. Default: 20.
        max_eval (int | None): maximal number of closure evaluations per ``step``.
            Default: ``max_iter * 1.25``.
        tolerance_grad (float): termination tolerance on first order optimality. Default: 1e-7.
        tolerance_change (float): termination tolerance on loss / parameter changes. Default: 1e-9.
        history_size (int): update history size. Default: 100.
        line_search_fn (str | None): ``"strong_wolfe"`` or ``None``. Default: ``None``.

    Examples:
        >>> import jax.numpy as jnp, jmod
        >>> from jmod import nn
        >>> model = nn.Linear(3, 1)
        >>> x, y = jnp.ones((8, 3)), jnp.full((8, 1), 2.0)
        >>> optimizer = jmod.optim.LBFGS(model.parameters(), line_search_fn="strong_wolfe")
        >>> @jmod.jit
        ... def loss_and_grads(model):
        ...     return jmod.value_and_grad(lambda m: ((m(x) - y) ** 2).mean())(model)
        >>> loss = optimizer.step(lambda: loss_and_grads(model))
        >>> round(float(loss_and_grads(model)[0]), 6)
        0.0
    """

    def __init__(
        self,
        params: Any,
        lr: float = 1,
        max_iter: int = 20,
        max_eval: int | None = None,
        tolerance_grad: float = 1e-7,
        tolerance_change: float = 1e-9,
        history_size: int = 100,
        line_search_fn: str | None = None,
    ) -> None:
        if hasattr(lr, "size") and getattr(lr, "size", 1) != 1:
            raise ValueError("Tensor lr must be 1-element")
        if not 0.0 <= float(lr):
            raise ValueError(f"Invalid learning rate: {lr}")
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        defaults = {
            "lr": lr,
            "max_iter": max_iter,
            "max_eval": max_eval,
            "tolerance_grad": tolerance_grad,
            "tolerance_change": tolerance_change,
            "history_size": history_size,
            "line_search_fn": line_search_fn,
        }
        super().__init__(params, None, defaults=defaults)
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")
        # torch keeps this under the first parameter's entry of ``self.state``
        self.state: dict[str, Any] = {}

    def _build_tx(self, group_options: list[dict]) -> optax.GradientTransformation:
        return optax.identity()  # the state lives in ``self.state``, on the host side

    # ``param_groups[0]["lr"] = ...`` (and learning rate schedulers) write the group dict,
    # which ``step`` reads.
    def _find_hyperparams(self, state: Any, group_index: int) -> dict | None:
        return self.param_groups[group_index]

    def _set_hyperparam(self, group_index: int, key: str, value: Any) -> bool:
        return False

    # ------------------------------------------------------------- flat vectors
    def _gather_flat_grad(self, grads: Mapping[str, Any]) -> jax.Array:
        views = []
        for name, slot in zip(self._names, self._slots):
            g = grads.get(name) if name is not None else None
            if g is None and slot._grad_name is not None:
                g = grads.get(slot._grad_name)
            views.append(jnp.zeros(slot.data.size, slot.data.dtype) if g is None else to_jax(g).reshape(-1))
        return jnp.concatenate(views, 0)

    def _add_grad(self, step_size: Any, update: jax.Array) -> None:
        offset = 0
        for slot in self._slots:
            p = slot.data
            slot.data = (p + step_size * update[offset : offset + p.size].reshape(p.shape)).astype(p.dtype)
            offset += p.size

    def _clone_param(self) -> list[jax.Array]:
        return [s.data for s in self._slots]

    def _set_param(self, params_data: list[jax.Array]) -> None:
        for s, p in zip(self._slots, params_data, strict=True):
            s.data = p

    def _evaluate(self, closure: Callable) -> tuple[Any, jax.Array]:
        out = closure()
        if not (isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], Mapping)):
            raise TypeError(
                "LBFGS's closure must return (loss, grads): `return jmod.value_and_grad(loss_fn)(model)` "
                "(torch's calls loss.backward() and returns the loss; jmod optimizers get the gradients from "
                f"the closure), got {type(out).__name__}"
            )
        loss, grads = out
        if is_tracer(loss):
            raise RuntimeError(
                "LBFGS.step runs eagerly (its iterations and line search branch on the loss): call it outside "
                "jmod.jit, and compile the closure instead (a jmod.jit function returning "
                "jmod.value_and_grad(loss_fn)(model))"
            )
        return loss, self._gather_flat_grad(grads)

    def _directional_evaluate(self, closure: Callable, x: list, t: Any, d: jax.Array) -> tuple:
        self._add_grad(t, d)
        loss, flat_grad = self._evaluate(closure)
        self._set_param(x)
        return float(loss), flat_grad

    # --------------------------------------------------------------------- step
    def step(self, closure: Callable | None = None) -> Any:  # type: ignore[override]
        """Perform one optimization step (up to ``max_iter`` L-BFGS iterations).

        Args:
            closure (Callable): re-evaluates the model and returns ``(loss, grads)``
                (``jmod.value_and_grad(loss_fn)(model)``).

        Returns:
            Any: the loss of the closure's first evaluation (as torch).
        """
        if closure is None or not callable(closure):
            raise TypeError("LBFGS.step() missing 1 required positional argument: 'closure'")
        self._opt_called = True
        group = self.param_groups[0]
        lr = float(group["lr"])
        max_iter = group["max_iter"]
        max_eval = group["max_eval"]
        tolerance_grad = group["tolerance_grad"]
        tolerance_change = group["tolerance_change"]
        line_search_fn = group["line_search_fn"]
        history_size = group["history_size"]

        state = self.state
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)

        # evaluate initial f(x) and df/dx
        orig_loss, flat_grad = self._evaluate(closure)
        loss = float(orig_loss)
        current_evals = 1
        state["func_evals"] += 1
        opt_cond = jnp.abs(flat_grad).max() <= tolerance_grad
        if opt_cond:
            return orig_loss

        d = state.get("d")
        t = state.get("t")
        old_dirs = state.get("old_dirs")
        old_stps = state.get("old_stps")
        ro = state.get("ro")
        H_diag = state.get("H_diag")  # noqa: N806 (torch's name)
        prev_flat_grad = state.get("prev_flat_grad")
        prev_loss = state.get("prev_loss")

        n_iter = 0
        while n_iter < max_iter:
            n_iter += 1
            state["n_iter"] += 1

            # compute the descent direction
            if state["n_iter"] == 1:
                d = -flat_grad
                old_dirs, old_stps, ro = [], [], []
                H_diag = 1  # noqa: N806
            else:
                # update the memory
                y = flat_grad - prev_flat_grad
                s = d * t
                ys = y @ s
                if ys > 1e-10:
                    if len(old_dirs) == history_size:
                        old_dirs.pop(0)
                        old_stps.pop(0)
                        ro.pop(0)
                    old_dirs.append(y)
                    old_stps.append(s)
                    ro.append(1.0 / ys)
                    H_diag = ys / (y @ y)  # noqa: N806
                # the approximate inverse Hessian times the gradient (two-loop recursion)
                num_old = len(old_dirs)
                if "al" not in state:
                    state["al"] = [None] * history_size
                al = state["al"]
                q = -flat_grad
                for i in range(num_old - 1, -1, -1):
                    al[i] = (old_stps[i] @ q) * ro[i]
                    q = q + old_dirs[i] * -al[i]
                r = q * H_diag
                for i in range(num_old):
                    be_i = (old_dirs[i] @ r) * ro[i]
                    r = r + old_stps[i] * (al[i] - be_i)
                d = r

            prev_flat_grad = flat_grad
            prev_loss = loss

            # compute the step length
            if state["n_iter"] == 1:
                t = min(1.0, 1.0 / jnp.abs(flat_grad).sum()) * lr
            else:
                t = lr

            gtd = flat_grad @ d  # directional derivative
            if gtd > -tolerance_change:
                break

            ls_func_evals = 0
            if line_search_fn is not None:
                if line_search_fn != "strong_wolfe":
                    raise RuntimeError("only 'strong_wolfe' is supported")
                x_init = self._clone_param()

                def obj_func(x: list, t: Any, d: jax.Array) -> tuple:
                    return self._directional_evaluate(closure, x, t, d)

                loss, flat_grad, t, ls_func_evals = _strong_wolfe(
                    obj_func, x_init, t, d, loss, flat_grad, gtd, max_ls=max_eval - current_evals
                )
                self._add_grad(t, d)
                opt_cond = jnp.abs(flat_grad).max() <= tolerance_grad
            else:
                # no line search: move with a fixed step
                self._add_grad(t, d)
                if n_iter != max_iter:
                    # re-evaluate only if not in the last iteration (as torch)
                    loss, flat_grad = self._evaluate(closure)
                    loss = float(loss)
                    opt_cond = jnp.abs(flat_grad).max() <= tolerance_grad
                    ls_func_evals = 1

            current_evals += ls_func_evals
            state["func_evals"] += ls_func_evals

            # check conditions
            if n_iter == max_iter:
                break
            if current_evals >= max_eval:
                break
            if opt_cond:
                break
            if jnp.abs(d * t).max() <= tolerance_change:
                break
            if abs(loss - prev_loss) < tolerance_change:
                break

        state["d"] = d
        state["t"] = t
        state["old_dirs"] = old_dirs
        state["old_stps"] = old_stps
        state["ro"] = ro
        state["H_diag"] = H_diag
        state["prev_flat_grad"] = prev_flat_grad
        state["prev_loss"] = prev_loss
        return orig_loss

    # --------------------------------------------------------------- state dict
    def state_dict(self) -> dict[str, Any]:
        """``{"state": {...}, "param_groups": [...]}``: torch's LBFGS state entries
        (``func_evals``, ``n_iter``, ``d``, ``t``, ``old_dirs``, ``old_stps``, ``ro``,
        ``H_diag``, ``prev_flat_grad``, ``prev_loss``) and the group's options."""
        return {"state": dict(self.state), "param_groups": [dict(g) for g in self.param_groups]}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Load a state returned by :meth:`state_dict`; torch's LBFGS state dict
        (the state under parameter 0) loads too.

        Args:
            state_dict (Mapping): the optimizer state.
        """
        state = state_dict["state"]
        if 0 in state and isinstance(state[0], Mapping):  # torch's layout
            state = state[0]

        def conv(v: Any) -> Any:
            if isinstance(v, list):
                return [conv(x) for x in v]
            if v is None or isinstance(v, (int, float)):
                return v
            return to_jax(v)

        self.state = {k: conv(v) for k, v in state.items()}
        for g, saved in zip(self.param_groups, state_dict.get("param_groups", [])):
            for k, v in saved.items():
                if k != "params":
                    g[k] = v
