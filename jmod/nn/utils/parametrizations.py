r"""``jmod.nn.utils.parametrizations``: ``weight_norm``, ``spectral_norm`` and
``orthogonal`` built on :mod:`jmod.nn.utils.parametrize`, as in torch.

Names, defaults, state-dict keys (``parametrizations.weight.original0`` /
``original1`` for weight norm, ``parametrizations.weight.original`` plus the buffers
``parametrizations.weight.0._u`` / ``_v`` for spectral norm,
``parametrizations.weight.0.base`` for the orthogonal trivialization) and the
numbers are torch's, so torch's state dicts load and give the same outputs.

Spectral norm's power iteration updates the ``_u`` / ``_v`` buffers each time the
weight is read in training mode: torch does it in place under ``no_grad``; here the
buffers are reassigned with ``jax.lax.stop_gradient`` values, which ``jmod.jit``
writes back like BatchNorm's running statistics.
"""

from __future__ import annotations

from enum import Enum, auto
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jmod._src.random import randn
from jmod.nn.functional import normalize
from jmod.nn.modules.module import Module
from jmod.nn.utils import parametrize

__all__ = ["orthogonal", "spectral_norm", "weight_norm"]


def _is_orthogonal(Q: jax.Array) -> bool:
    n, k = Q.shape[-2], Q.shape[-1]
    Id = jnp.eye(k, dtype=Q.dtype)
    eps = 10.0 * n * float(jnp.finfo(Q.dtype).eps)
    return bool(jnp.allclose(jnp.swapaxes(Q, -1, -2).conj() @ Q, Id, atol=eps, rtol=1e-5))


def _make_orthogonal(A: jax.Array) -> jax.Array:
    """The Q factor of ``A = QR`` with ``diag(R)`` real and non-negative (A tall)."""
    Q, R = jnp.linalg.qr(A, mode="reduced")
    d = jnp.diagonal(R, axis1=-2, axis2=-1)
    return Q * jnp.where(d == 0, 1, jnp.sign(d))[..., None, :]


def _householder_product(A: jax.Array, tau: jax.Array) -> jax.Array:
    """``torch.linalg.householder_product`` (differentiable, unlike JAX's primitive):
    the first ``k`` columns of ``H_1 ... H_k`` with ``H_i = I - tau_i v_i v_i^H``, where
    ``v_i`` is column ``i`` of ``A`` below the diagonal with a 1 on it."""
    n, k = A.shape[-2], A.shape[-1]
    rows = jnp.arange(n)
    Q = jnp.broadcast_to(jnp.eye(n, k, dtype=A.dtype), A.shape)
    for i in reversed(range(tau.shape[-1])):
        v = jnp.where(rows > i, A[..., :, i], jnp.where(rows == i, 1, 0).astype(A.dtype))
        w = jnp.einsum("...n,...nk->...k", v.conj(), Q)
        Q = Q - tau[..., i, None, None] * v[..., :, None] * w[..., None, :]
    return Q


def _geqrf(A: jax.Array) -> tuple[jax.Array, jax.Array]:
    """LAPACK's geqrf (Householder reflectors below the diagonal, R on and above it, and
    tau) through NumPy's ``qr(mode="raw")``: only used eagerly, in right_inverse."""
    h, tau = np.linalg.qr(np.asarray(A), mode="raw")
    return jnp.asarray(np.swapaxes(h, -1, -2)), jnp.asarray(tau)


class _OrthMaps(Enum):
    matrix_exp = auto()
    cayley = auto()
    householder = auto()


class _Orthogonal(Module):
    base: jax.Array

    def __init__(self, weight: Any, orthogonal_map: _OrthMaps, *, use_trivialization: bool = True) -> None:
        super().__init__()
        if jnp.iscomplexobj(weight) and orthogonal_map == _OrthMaps.householder:
            raise ValueError("The householder parametrization does not support complex tensors.")
        self.shape = tuple(weight.shape)
        self.orthogonal_map = orthogonal_map
        if use_trivialization:
            self.register_buffer("base", None)

    def forward(self, X: jax.Array) -> jax.Array:
        n, k = X.shape[-2], X.shape[-1]
        transposed = n < k
        if transposed:
            X = jnp.swapaxes(X, -1, -2)
            n, k = k, n
        if self.orthogonal_map == _OrthMaps.matrix_exp or self.orthogonal_map == _OrthMaps.cayley:
            X = jnp.tril(X)
            if n != k:
                X = jnp.concatenate([X, jnp.zeros((*X.shape[:-2], n, n - k), X.dtype)], axis=-1)
            A = X - jnp.swapaxes(X, -1, -2).conj()
            if self.orthogonal_map == _OrthMaps.matrix_exp:
                Q = jax.scipy.linalg.expm(A)
            else:
                Id = jnp.eye(n, dtype=A.dtype)
                Q = jnp.linalg.solve(Id - 0.5 * A, Id + 0.5 * A)
            if n != k:
                Q = Q[..., :k]
        else:
            A = jnp.tril(X, -1)
            tau = 2.0 / (1.0 + (A * A).sum(axis=-2))
            Q = _householder_product(A, tau)
            # torch multiplies by the diagonal truncated to integers (+-1 after right_inverse)
            Q = Q * jnp.trunc(jnp.diagonal(X, axis1=-2, axis2=-1))[..., None, :]

        if hasattr(self, "base"):
            Q = self.base @ Q
        if transposed:
            Q = jnp.swapaxes(Q, -1, -2)
        return Q

    def right_inverse(self, Q: jax.Array) -> jax.Array:
        Q = jax.lax.stop_gradient(Q)
        if tuple(Q.shape) != self.shape:
            raise ValueError(
                f"Expected a matrix or batch of matrices of shape {parametrize._torch_size(self.shape)}. "
                f"Got a tensor of shape {parametrize._torch_size(Q.shape)}."
            )
        Q_init = Q
        n, k = Q.shape[-2], Q.shape[-1]
        transpose = n < k
        if transpose:
            Q = jnp.swapaxes(Q, -1, -2)
            n, k = k, n

        if not hasattr(self, "base"):
            if self.orthogonal_map == _OrthMaps.cayley or self.orthogonal_map == _OrthMaps.matrix_exp:
                raise NotImplementedError(
                    "It is not possible to assign to the matrix exponential "
                    "or the Cayley parametrizations when use_trivialization=False."
                )
            # householder: the reflectors of Q's QR, with the signs of R's diagonal on it
            A, tau = _geqrf(Q)
            d = jnp.sign(jnp.diagonal(A, axis1=-2, axis2=-1))
            d = jnp.where(tau == 0.0, -d, d)
            idx = jnp.arange(k)
            A = A.at[..., idx, idx].set(d)
            return jnp.swapaxes(A, -1, -2) if transpose else A
        if n == k:
            Q = _make_orthogonal(Q) if not _is_orthogonal(Q) else Q
        else:
            N = randn(*Q.shape[:-2], n, n - k, dtype=Q.dtype)
            Q = _make_orthogonal(jnp.concatenate([Q, N], axis=-1))
        self.base = Q
        idx = jnp.arange(min(Q_init.shape[-2:]))
        return jnp.zeros_like(Q_init).at[..., idx, idx].set(-1.0)


def orthogonal(
    module: Module,
    name: str = "weight",
    orthogonal_map: str | None = None,
    *,
    use_trivialization: bool = True,
) -> Module:
    r"""Apply an orthogonal or unitary parametrization to a matrix or a batch of matrices.

    The parametrized matrix :math:`Q \in \mathbb{K}^{m \times n}` has orthonormal
    columns when :math:`m \geq n` and orthonormal rows otherwise; arrays with more than
    two dimensions are batches of matrices of shape ``(..., m, n)``.

    ``orthogonal_map`` gives :math:`Q` in terms of the original array: ``"matrix_exp"``
    (``jax.scipy.linalg.expm`` of a skew-symmetric matrix), ``"cayley"``
    (:math:`(I - A/2)^{-1}(I + A/2)`) or ``"householder"`` (a product of Householder
    reflectors). With ``use_trivialization=True`` (default) an extra matrix is stored in
    the buffer ``module.parametrizations.weight[0].base`` (the "dynamic trivialization").

    Initial value: with ``use_trivialization=True`` (or ``"householder"``) the original
    matrix if it is orthogonal, its orthogonalization by QR otherwise.

    Args:
        module (nn.Module): module on which to register the parametrization.
        name (str, optional): name of the array to make orthogonal. Default: ``"weight"``.
        orthogonal_map (str, optional): ``"matrix_exp"``, ``"cayley"`` or ``"householder"``.
            Default: ``"matrix_exp"`` if the matrix is square or complex, ``"householder"`` otherwise.
        use_trivialization (bool, optional): whether to use the dynamic trivialization
            framework. Default: ``True``.

    Returns:
        The original module with an orthogonal parametrization registered to the
        specified weight

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> from jmod.nn.utils.parametrizations import orthogonal
        >>> orth_linear = orthogonal(nn.Linear(3, 5))
        >>> orth_linear
        ParametrizedLinear(
          in_features=3, out_features=5, bias=True
          (parametrizations): ModuleDict(
            (weight): ParametrizationList(
              (0): _Orthogonal()
            )
          )
        )
        >>> Q = orth_linear.weight
        >>> bool(jnp.allclose(Q.T @ Q, jnp.eye(3), atol=1e-5))
        True
    """
    weight = getattr(module, name, None)
    if not isinstance(weight, jax.Array):
        raise ValueError(f"Module '{module}' has no parameter or buffer with name '{name}'")
    if weight.ndim < 2:
        raise ValueError(f"Expected a matrix or batch of matrices. Got a tensor of {weight.ndim} dimensions.")
    if orthogonal_map is None:
        orthogonal_map = (
            "matrix_exp" if weight.shape[-2] == weight.shape[-1] or jnp.iscomplexobj(weight) else "householder"
        )
    orth_enum = getattr(_OrthMaps, orthogonal_map, None)
    if orth_enum is None:
        raise ValueError(
            f'orthogonal_map has to be one of "matrix_exp", "cayley", "householder". Got: {orthogonal_map}'
        )
    orth = _Orthogonal(weight, orth_enum, use_trivialization=use_trivialization)
    parametrize.register_parametrization(module, name, orth, unsafe=True)
    return module


def _norm_except_dim(v: jax.Array, pow: float, dim: int) -> jax.Array:
    """torch's ``norm_except_dim``: the 2-norm over every axis but ``dim`` (kept, size 1);
    ``dim=-1`` means the norm of the whole array (a scalar)."""
    if dim == -1:
        return jnp.sqrt(jnp.sum(v * v.conj()).real)
    d = dim % v.ndim
    axes = tuple(i for i in range(v.ndim) if i != d)
    return jnp.sqrt(jnp.sum((v * v.conj()).real, axis=axes, keepdims=True))


def _weight_norm(v: jax.Array, g: jax.Array, dim: int) -> jax.Array:
    """torch's ``_weight_norm``: ``v * (g / norm_except_dim(v, 2, dim))``."""
    return v * (g / _norm_except_dim(v, 2, dim))


class _WeightNorm(Module):
    def __init__(self, dim: int | None = 0) -> None:
        super().__init__()
        if dim is None:
            dim = -1
        self.dim = dim

    def forward(self, weight_g: jax.Array, weight_v: jax.Array) -> jax.Array:
        return _weight_norm(weight_v, weight_g, self.dim)

    def right_inverse(self, weight: jax.Array) -> tuple[jax.Array, jax.Array]:
        weight_g = _norm_except_dim(weight, 2, self.dim)
        weight_v = weight
        return weight_g, weight_v


def weight_norm(module: Module, name: str = "weight", dim: int | None = 0) -> Module:
    r"""Apply weight normalization to a parameter in the given module.

    .. math::
         \mathbf{w} = g \dfrac{\mathbf{v}}{\|\mathbf{v}\|}

    The parameter :attr:`name` is replaced by a magnitude
    (``parametrizations.weight.original0``) and a direction
    (``parametrizations.weight.original1``). With ``dim=0`` the norm is computed per
    output channel; ``dim=None`` takes the norm of the whole array.

    State dicts of the legacy :func:`jmod.nn.utils.weight_norm` (``weight_g`` /
    ``weight_v``) load into it, as in torch.

    Args:
        module (Module): containing module
        name (str, optional): name of weight parameter
        dim (int, optional): dimension over which to compute the norm

    Returns:
        The original module with the weight norm parametrization

    Examples:
        >>> from jmod import nn
        >>> from jmod.nn.utils.parametrizations import weight_norm
        >>> m = weight_norm(nn.Linear(20, 40), name="weight")
        >>> m
        ParametrizedLinear(
          in_features=20, out_features=40, bias=True
          (parametrizations): ModuleDict(
            (weight): ParametrizationList(
              (0): _WeightNorm()
            )
          )
        )
        >>> m.parametrizations.weight.original0.shape
        (40, 1)
        >>> m.parametrizations.weight.original1.shape
        (40, 20)
    """
    _weight_norm_mod = _WeightNorm(dim)
    parametrize.register_parametrization(module, name, _weight_norm_mod, unsafe=True)

    def _weight_norm_compat_hook(
        state_dict: Any,
        prefix: str,
        local_metadata: Any,
        strict: bool,
        missing_keys: list,
        unexpected_keys: list,
        error_msgs: list,
    ) -> None:
        g_key = f"{prefix}{name}_g"
        v_key = f"{prefix}{name}_v"
        if g_key in state_dict and v_key in state_dict:
            original0 = state_dict.pop(g_key)
            original1 = state_dict.pop(v_key)
            state_dict[f"{prefix}parametrizations.{name}.original0"] = original0
            state_dict[f"{prefix}parametrizations.{name}.original1"] = original1

    module._register_load_state_dict_pre_hook(_weight_norm_compat_hook)
    return module


class _SpectralNorm(Module):
    def __init__(self, weight: Any, n_power_iterations: int = 1, dim: int = 0, eps: float = 1e-12) -> None:
        super().__init__()
        ndim = weight.ndim
        if dim >= ndim or dim < -ndim:
            raise IndexError(f"Dimension out of range (expected to be in range of [-{ndim}, {ndim - 1}] but got {dim})")
        if n_power_iterations <= 0:
            raise ValueError(
                f"Expected n_power_iterations to be positive, but got n_power_iterations={n_power_iterations}"
            )
        self.dim = dim if dim >= 0 else dim + ndim
        self.eps = eps
        if ndim > 1:
            # For ndim == 1 we do not need to approximate anything (see forward)
            self.n_power_iterations = n_power_iterations
            weight_mat = self._reshape_weight_to_matrix(jnp.asarray(weight))
            h, w = weight_mat.shape
            u = randn(h, dtype=weight_mat.dtype)
            v = randn(w, dtype=weight_mat.dtype)
            self.register_buffer("_u", normalize(u, dim=0, eps=self.eps))
            self.register_buffer("_v", normalize(v, dim=0, eps=self.eps))
            # Start with u, v initialized to some reasonable values by performing a
            # number of iterations of the power method
            self._power_method(weight_mat, 15)

    def _reshape_weight_to_matrix(self, weight: jax.Array) -> jax.Array:
        if weight.ndim <= 1:
            raise AssertionError(f"Expected weight to have more than 1 dimension, got {weight.ndim}")
        if self.dim != 0:
            weight = jnp.moveaxis(weight, self.dim, 0)
        return weight.reshape(weight.shape[0], -1)

    def _power_method(self, weight_mat: jax.Array, n_power_iterations: int) -> None:
        # torch runs it under no_grad, writing the buffers in place
        if weight_mat.ndim <= 1:
            raise AssertionError(f"Expected weight_mat to have more than 1 dimension, got {weight_mat.ndim}")
        weight_mat = jax.lax.stop_gradient(weight_mat)
        u, v = self._u, self._v
        for _ in range(n_power_iterations):
            u = normalize(weight_mat @ v, dim=0, eps=self.eps)
            v = normalize(weight_mat.T.conj() @ u, dim=0, eps=self.eps)
        self._u = u
        self._v = v

    def forward(self, weight: jax.Array) -> jax.Array:
        if weight.ndim == 1:
            # Faster and more exact path, no need to approximate anything
            return normalize(weight, dim=0, eps=self.eps)
        weight_mat = self._reshape_weight_to_matrix(weight)
        if self.training:
            self._power_method(weight_mat, self.n_power_iterations)
        u = jax.lax.stop_gradient(self._u)
        v = jax.lax.stop_gradient(self._v)
        sigma = jnp.vdot(u, weight_mat @ v)
        return weight / sigma

    def right_inverse(self, value: jax.Array) -> jax.Array:
        # we may want to assert here that the passed value already
        # satisfies constraints
        return value


def spectral_norm(
    module: Module,
    name: str = "weight",
    n_power_iterations: int = 1,
    eps: float = 1e-12,
    dim: int | None = None,
) -> Module:
    r"""Apply spectral normalization to a parameter in the given module.

    .. math::
        \mathbf{W}_{SN} = \dfrac{\mathbf{W}}{\sigma(\mathbf{W})},
        \sigma(\mathbf{W}) = \max_{\mathbf{h}: \mathbf{h} \ne 0} \dfrac{\|\mathbf{W} \mathbf{h}\|_2}{\|\mathbf{h}\|_2}

    (for a vector: :math:`\mathbf{x} / \|\mathbf{x}\|_2`). :math:`\sigma` is estimated
    with the power method: the singular vectors live in the buffers
    ``parametrizations.weight.0._u`` / ``_v``, estimated with 15 iterations at
    registration (from a draw of jmod's global generator) and updated by
    :attr:`n_power_iterations` more every time the weight is read in training mode.
    The update is not differentiated through (``stop_gradient``, torch's ``no_grad``)
    and, under ``jmod.jit``, written back to the buffers.

    Args:
        module (nn.Module): containing module
        name (str, optional): name of weight parameter. Default: ``"weight"``.
        n_power_iterations (int, optional): number of power iterations to calculate
            spectral norm. Default: ``1``.
        eps (float, optional): epsilon for numerical stability in calculating norms.
            Default: ``1e-12``.
        dim (int, optional): dimension corresponding to number of outputs. Default:
            ``0``, except for ``ConvTranspose{1,2,3}d``, where it is ``1``

    Returns:
        The original module with a new parametrization registered to the specified
        weight

    Examples:
        >>> import jax.numpy as jnp
        >>> from jmod import nn
        >>> from jmod.nn.utils.parametrizations import spectral_norm
        >>> snm = spectral_norm(nn.Linear(20, 40))
        >>> list(snm.state_dict())
        ['bias', 'parametrizations.weight.original', 'parametrizations.weight.0._u', 'parametrizations.weight.0._v']
        >>> bool(jnp.abs(jnp.linalg.norm(snm.weight, 2) - 1) < 0.1)
        True
    """
    weight = getattr(module, name, None)
    if not isinstance(weight, jax.Array):
        raise ValueError(f"Module '{module}' has no parameter or buffer with name '{name}'")
    if dim is None:
        from jmod.nn.modules.conv import ConvTranspose1d, ConvTranspose2d, ConvTranspose3d

        dim = 1 if isinstance(module, (ConvTranspose1d, ConvTranspose2d, ConvTranspose3d)) else 0
    parametrize.register_parametrization(module, name, _SpectralNorm(weight, n_power_iterations, dim, eps))
    return module
