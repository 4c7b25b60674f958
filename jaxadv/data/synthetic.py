"""Random inputs: uniform on a sphere (the papers' ‖x‖ = √d) and Gaussian."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from jaxadv import _validate
from jaxadv.nets._common import check_dtype, param_dtype


def sphere(key: jax.Array, n: int, d: int, radius: float | None = None, *, dtype: Any = None) -> jax.Array:
    """``n`` points uniform on the sphere of radius ``radius`` in ℝ^d.

    The default radius √d is the papers' normalisation (Bubeck et al. 2021 §1: x ∈ √d·S^{d−1},
    so w·x ~ N(0, 1) for w ~ N(0, I_d/d)).

    Args:
      key: a PRNG key.
      n: number of points.
      d: dimension.
      radius: the sphere's radius; ``None`` means √d.
      dtype: float dtype; ``None`` is JAX's default float.

    Returns:
      ``(n, d)`` array whose rows have norm ``radius``.
    """
    key = _validate.key(key)
    n = _validate.positive_int(n, "n")
    d = _validate.positive_int(d, "d")
    r = math.sqrt(d) if radius is None else _validate.positive_float(radius, "radius")
    dtype = param_dtype(check_dtype(dtype))
    g = jax.random.normal(key, (n, d), dtype)
    # A Gaussian row is zero with probability 0; the floor guards the measure-zero case anyway.
    norms = jnp.maximum(jnp.linalg.norm(g, axis=-1, keepdims=True), jnp.finfo(dtype).tiny)
    return (r * g / norms).astype(dtype)


def gaussian(key: jax.Array, n: int, d: int, std: float = 1.0, *, dtype: Any = None) -> jax.Array:
    """``n`` points with i.i.d. N(0, std²) coordinates (‖x‖ ≈ std·√d).

    Args:
      key: a PRNG key.
      n: number of points.
      d: dimension.
      std: coordinate standard deviation (Vardi et al.'s Gaussian variant uses 1/√d).
      dtype: float dtype; ``None`` is JAX's default float.

    Returns:
      ``(n, d)`` array.
    """
    key = _validate.key(key)
    n = _validate.positive_int(n, "n")
    d = _validate.positive_int(d, "d")
    std = _validate.positive_float(std, "std")
    dtype = param_dtype(check_dtype(dtype))
    return std * jax.random.normal(key, (n, d), dtype)
