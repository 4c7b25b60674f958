"""Vardi, Yehudai & Shamir 2022's data sets and their robust network (Thm 3.1).

* :func:`sphere_dataset`: the experiments' data (§6): x ~ U(√d·S^{d−1}), y uniform on {±1}.
* :func:`orthogonal_dataset`: the §5.1 example, x_i = √d·e_i, y_i = +1 for i ≤ d/2, −1 after.
* :func:`robust_network`: Thm 3.1's construction v_j = y_j, w_j = 2x_j/(d(1−c)),
  b_j = −(1+c)/(1−c): margins exactly 1, and flipping x_i needs more than (1−c)√d/4.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxadv import _validate
from jaxadv.data import sphere
from jaxadv.nets._common import check_dtype, param_dtype


def sphere_dataset(key: jax.Array, m: int, d: int, *, dtype: Any = None) -> tuple[jax.Array, jax.Array]:
    """The data of Vardi et al. 2022, §6: x ~ U(√d·S^{d−1}), y uniform on {−1, +1}, independent.

    Args:
      key: a PRNG key (split into one for x and one for y).
      m: number of samples.
      d: dimension.
      dtype: float dtype (``None``: JAX's default float).

    Returns:
      ``(X, y)`` with X ``(m, d)`` (rows of norm √d) and y ``(m,)`` in {−1, +1}.
    """
    key = _validate.key(key)
    m = _validate.positive_int(m, "m")
    d = _validate.positive_int(d, "d")
    dtype = param_dtype(check_dtype(dtype))
    k_x, k_y = jax.random.split(key)
    return sphere(k_x, m, d, dtype=dtype), jax.random.rademacher(k_y, (m,), dtype=dtype)


def orthogonal_dataset(d: int, *, dtype: Any = None) -> tuple[jax.Array, jax.Array]:
    """The §5.1 example of Vardi et al. 2022: x_i = √d·e_i (i = 1…d), y_i = +1 for i ≤ d/2, −1 after.

    Args:
      d: dimension, even.
      dtype: float dtype.

    Returns:
      ``(X, y)`` with X = √d·I ``(d, d)`` and y ``(d,)``.
    """
    d = _validate.positive_int(d, "d")
    if d % 2:
        raise ValueError(f"`d` must be even (half the points are labelled +1), got {d}.")
    dtype = param_dtype(check_dtype(dtype))
    X = jnp.sqrt(jnp.asarray(d, dtype)) * jnp.eye(d, dtype=dtype)
    y = jnp.where(jnp.arange(d) < d // 2, 1, -1).astype(dtype)
    return X, y


def inner_product_bound(X: jax.Array) -> jax.Array:
    """c = max_{i≠j} |⟨x_i, x_j⟩| / d, the smallest c Thm 3.1 admits for this data.

    Args:
      X: ``(m, d)`` inputs, m ≥ 2.

    Returns:
      A scalar.
    """
    X = _validate.float_array(X, "X")
    if X.ndim != 2 or X.shape[0] < 2:
        raise ValueError(f"`X` must have shape (m, d) with m ≥ 2, got {tuple(X.shape)}.")
    G = jnp.abs(jnp.matmul(X, X.T, precision=jax.lax.Precision.HIGHEST))
    G = jnp.where(jnp.eye(X.shape[0], dtype=bool), 0, G)
    return jnp.max(G) / X.shape[1]


def robust_network(X: jax.Array, y: jax.Array, c: float | None = None) -> dict[str, jax.Array]:
    """Thm 3.1's √d-robust network of width k = m (Vardi et al. 2022, §3).

    v_j = y_j, w_j = 2x_j/(d(1−c)), b_j = −(1+c)/(1−c), so that w_iᵀx_i + b_i = 1 and
    w_jᵀx_i + b_j ≤ −1 for j ≠ i: N(x_i) = y_i exactly, and flipping the sign at x_i needs a
    perturbation larger than (1−c)√d/4. (For the §5.1 example, c = 0, it is exactly √d/2.)

    Args:
      X: ``(m, d)`` inputs on the sphere of radius √d (checked to 1e−4 relative).
      y: ``(m,)`` labels in {−1, +1}.
      c: the inner-product constant, 0 ≤ c < 1 with max_{i≠j}|⟨x_i, x_j⟩| ≤ c·d (checked);
        ``None`` uses :func:`inner_product_bound` (X).

    Returns:
      Params ``{"w": (m, d), "b": (m,), "v": (m,)}`` for ``jaxadv.nets.shallow(d, m)`` (ReLU).
    """
    X = _validate.float_array(X, "X")
    if X.ndim != 2 or X.shape[0] < 2:
        raise ValueError(f"`X` must have shape (m, d) with m ≥ 2, got {tuple(X.shape)}.")
    m, d = X.shape
    y = _validate.float_array(y, "y")
    if tuple(y.shape) != (m,):
        raise ValueError(f"`y` must have shape ({m},) (one label per row of `X`), got {tuple(y.shape)}.")
    if c is not None:
        c = _validate.positive_float(c, "c", allow_zero=True)
        if c >= 1:
            raise ValueError(f"`c` must be < 1 (Thm 3.1), got {c}.")
    if not bool(jnp.all((y == 1) | (y == -1))):
        raise ValueError("`y` must hold labels in {−1, +1}.")
    sq = jnp.sum(X * X, axis=1)
    if not bool(jnp.all(jnp.abs(sq - d) <= 1e-4 * d)):
        raise ValueError(
            f"`X` rows must lie on the sphere of radius √d = {d ** 0.5:.4g} (Thm 3.1), got norms from "
            f"{float(jnp.sqrt(jnp.min(sq))):.4g} to {float(jnp.sqrt(jnp.max(sq))):.4g}."
        )
    bound = float(inner_product_bound(X))
    if c is None:
        c = bound
        if c >= 1:
            raise ValueError(f"`c` = max_(i≠j)|⟨x_i, x_j⟩|/d must be < 1 (Thm 3.1), got {c:.6g} (two points are parallel).")
    if c < bound - 1e-5:
        raise ValueError(f"`c` = {c} is below max_(i≠j)|⟨x_i, x_j⟩|/d = {bound:.6g}; Thm 3.1 needs c ≥ that.")
    dtype = X.dtype
    w = 2.0 * X / (d * (1.0 - c))
    b = jnp.full((m,), -(1.0 + c) / (1.0 - c), dtype)
    return {"w": w.astype(dtype), "b": b, "v": y.astype(dtype)}
