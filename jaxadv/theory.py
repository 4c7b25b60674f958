"""Closed forms of the papers' theory: the ReLU arc-cosine kernel and its correlation map.

Bartlett, Bubeck & Cherapanamjeri 2021, Lemma 3.2 (from Cho & Saul 2009, eq. (6)): for
g ~ N(0, I) and inputs x, y at angle θ, the correlation of σ(g·x) and σ(g·y), σ = ReLU, is

    κ(ρ) = (√(1 − ρ²) + (π − arccos ρ)·ρ)/π = (sin θ)/π + (1 − θ/π)·cos θ,   ρ = cos θ.

In a wide random ReLU network (NN-DEF) the normalised inner product of the hidden
representations of two inputs follows ρ_ℓ = κ(ρ_{ℓ−1}) layer by layer; 1 is the attracting
fixed point and near it 1 − κ(ρ) = (1 − ρ) − (2√2/(3π))·(1 − ρ)^{3/2} + O((1 − ρ)^{5/2}), so
1 − ρ_ℓ ≈ 9π²/(2ℓ²): this is the mechanism behind their Theorem 3.1 (very deep random nets
are nearly constant on the sphere).

Everything here is a pure ``jax.numpy`` function, jit-compiled once per input shape: dtypes
follow the inputs (float64 when you enable x64), and the functions compose with ``jit``,
``vmap`` and ``grad``. Close to ρ = 1
the correlation itself cannot resolve small gaps in float32 (1 − ρ < 6e-8 rounds to 0), so
the gap functions work with 1 − ρ directly and keep full relative precision.

Example:
  >>> import jax.numpy as jnp
  >>> from jaxadv import theory
  >>> float(theory.relu_correlation(0.0))  # orthogonal inputs: 1/π
  0.3183...
  >>> gaps = theory.iterated_relu_correlation_gap(1.0, 10_000)  # from ρ_0 = 0
  >>> float(10_000**2 * gaps[-1] / theory.correlation_gap_asymptote(1))  # ℓ²(1 − ρ_ℓ)/(9π²/2)
  0.99...
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxadv import _validate

__all__ = [
    "correlation_gap_asymptote",
    "iterated_relu_correlation",
    "iterated_relu_correlation_gap",
    "relu_correlation",
    "relu_correlation_gap",
    "relu_kernel",
]

# sin θ − θ cos θ = Σ_{n≥1} (−1)^{n+1} 2n θ^{2n+1}/(2n+1)!: the coefficients for n = 1…6. Below
# SERIES_BELOW the two terms of the direct form cancel (relative error ~ eps/θ²); the series
# truncated after n = 6 has relative error ≤ 3.2e-11·θ¹² ≈ 8e-15 at θ = 0.5, below float64's
# resolution, and is used there instead.
_SERIES = tuple((-1) ** (n + 1) * 2 * n / math.factorial(2 * n + 1) for n in range(1, 7))
SERIES_BELOW = 0.5


def _float(x: ArrayLike) -> jax.Array:
    x = jnp.asarray(x)
    return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(jnp.result_type(float))


def _sin_minus_theta_cos(theta: jax.Array) -> jax.Array:
    """sin θ − θ cos θ for θ ∈ [0, π], accurate to relative float precision for small θ."""
    t2 = theta * theta
    series = jnp.zeros_like(theta)
    for c in reversed(_SERIES):  # Horner in θ²: θ³·(c1 + θ²(c2 + …))
        series = series * t2 + c
    series = series * t2 * theta
    direct = jnp.sin(theta) - theta * jnp.cos(theta)
    return jnp.where(theta < SERIES_BELOW, series, direct)


@jax.jit
def relu_correlation(rho: ArrayLike) -> jax.Array:
    """The ReLU correlation map κ(ρ) of Bartlett et al. 2021, Lemma 3.2.

    κ(ρ) = E[σ(g·x)σ(g·y)] / √(E σ(g·x)² · E σ(g·y)²) for g ~ N(0, I) and unit inputs with
    x·y = ρ: (√(1 − ρ²) + (π − arccos ρ)·ρ)/π, i.e. (sin θ)/π + (1 − θ/π)·cos θ with θ =
    arccos ρ. κ(1) = 1, κ(0) = 1/π, κ(−1) = 0; κ is increasing and convex on [−1, 1].

    Args:
      rho: correlations in [−1, 1], any shape (values outside are clipped to it).

    Returns:
      κ(ρ), same shape and dtype (float inputs) as ``rho``.
    """
    rho = jnp.clip(_float(rho), -1, 1)
    theta = jnp.arccos(rho)
    return jnp.sin(theta) / jnp.pi + (1 - theta / jnp.pi) * rho


@jax.jit
def relu_correlation_gap(gap: ArrayLike) -> jax.Array:
    """1 − κ(1 − u) for u = 1 − ρ, to full relative precision even for tiny gaps.

    With θ = arccos(1 − u) = 2 arcsin(√(u/2)): 1 − κ = u − (sin θ − θ cos θ)/π, and
    sin θ − θ cos θ is summed as its Taylor series for small θ, so no cancellation occurs.
    Near 0: 1 − κ(1 − u) = u − (2√2/(3π)) u^{3/2} − (√2/(30π)) u^{5/2} + O(u^{7/2}).

    Args:
      gap: u = 1 − ρ in [0, 2], any shape (clipped to it).

    Returns:
      1 − κ(1 − u), same shape as ``gap``.
    """
    u = jnp.clip(_float(gap), 0, 2)
    theta = 2 * jnp.arcsin(jnp.sqrt(u / 2))
    return u - _sin_minus_theta_cos(theta) / jnp.pi


def iterated_relu_correlation_gap(gap0: ArrayLike, depth: int) -> jax.Array:
    """1 − ρ_ℓ for ℓ = 1 … ``depth``, where ρ_ℓ = κ(ρ_{ℓ−1}) and ρ_0 = 1 − ``gap0``.

    The infinite-width recursion of the correlation of two inputs' hidden representations in
    a ReLU network (Bartlett et al. 2021, §3; Cho & Saul 2009). Iterated on the gap with
    :func:`relu_correlation_gap`, so 1 − ρ_ℓ keeps its relative precision at any depth
    (ℓ = 10⁴ gives ≈ 4.4e-7 in float32 too).

    Args:
      gap0: 1 − ρ_0 in [0, 2], any shape.
      depth: number of layers ℓ_max ≥ 1 (static).

    Returns:
      ``(depth, *gap0.shape)``: row ℓ − 1 holds 1 − ρ_ℓ.
    """
    return _iterate_gap(gap0, _validate.positive_int(depth, "depth"))


@functools.partial(jax.jit, static_argnums=1)
def _iterate_gap(gap0: ArrayLike, depth: int) -> jax.Array:
    u0 = jnp.clip(_float(gap0), 0, 2)

    def step(u, _):
        u = relu_correlation_gap(u)
        return u, u

    return jax.lax.scan(step, u0, None, length=depth)[1]


def iterated_relu_correlation(rho0: ArrayLike, depth: int) -> jax.Array:
    """ρ_ℓ = κ^ℓ(ρ_0) for ℓ = 1 … ``depth`` (Bartlett et al. 2021, Lemma 3.2 iterated).

    Args:
      rho0: starting correlations in [−1, 1], any shape.
      depth: number of layers ℓ_max ≥ 1 (static).

    Returns:
      ``(depth, *rho0.shape)``: row ℓ − 1 holds ρ_ℓ. For 1 − ρ_ℓ at large depth use
      :func:`iterated_relu_correlation_gap`, which does not round it away.
    """
    return _iterate(rho0, _validate.positive_int(depth, "depth"))


@functools.partial(jax.jit, static_argnums=1)
def _iterate(rho0: ArrayLike, depth: int) -> jax.Array:
    rho0 = jnp.clip(_float(rho0), -1, 1)
    return 1 - _iterate_gap(1 - rho0, depth)


@jax.jit
def correlation_gap_asymptote(depth: ArrayLike) -> jax.Array:
    """9π²/(2ℓ²): the large-ℓ behaviour of 1 − ρ_ℓ, from any ρ_0 > −1.

    From 1 − κ(1 − u) = u − a u^{3/2} + O(u^{5/2}) with a = 2√2/(3π): v = u^{−1/2} grows by
    a/2 per layer, so u_ℓ ≈ 4/(a²ℓ²) = 9π²/(2ℓ²) ≈ 44.41/ℓ². The relative correction is
    ≈ −3 ln ℓ/ℓ + O(1/ℓ) (v_ℓ = aℓ/2 + (3a/4) ln ℓ + O(1)), e.g. −0.3% at ℓ = 10⁴ from ρ_0 = 0.

    Args:
      depth: ℓ > 0, any shape.

    Returns:
      9π²/(2ℓ²), same shape as ``depth``.
    """
    depth = _float(depth)
    return 9 * jnp.pi**2 / (2 * depth**2)


@jax.jit
def relu_kernel(x: ArrayLike, y: ArrayLike) -> jax.Array:
    """E[σ(g·x)σ(g·y)] for g ~ N(0, I): ‖x‖‖y‖(sin θ + (π − θ)cos θ)/(2π) (Cho & Saul 2009).

    Half the degree-1 arc-cosine kernel; the unnormalised form of Lemma 3.2
    (E σ(g·x)² = ‖x‖²/2). With ``W`` of shape (k, d), entries N(0, 1/d), the empirical
    mean Σ_j σ(W_j·x)σ(W_j·y)/k converges to ``relu_kernel(x, y)/d``.

    Args:
      x: ``(..., d)`` vectors.
      y: ``(..., d)`` vectors (broadcast against ``x``).

    Returns:
      ``(...)`` kernel values (0 where either vector is 0).
    """
    x, y = _float(x), _float(y)
    nx, ny = jnp.linalg.norm(x, axis=-1), jnp.linalg.norm(y, axis=-1)
    denom = nx * ny
    rho = jnp.sum(x * y, axis=-1) / jnp.where(denom > 0, denom, 1)
    return denom * relu_correlation(rho) / 2
