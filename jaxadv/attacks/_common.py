"""Pieces every attack shares: norms, the success rule, box constraints, argument checks.

Conventions (all attacks):

* **Success** is a *strict* sign change, checked by evaluating f at the returned point:
  ``f_clean > 0 and f_adv < 0`` or ``f_clean < 0 and f_adv > 0``. A point with f(x) = 0
  (e.g. x = 0 for a bias-free net) is on the boundary already and counts as a failure.
* **Failure is a value**: ``success=False`` and ``distance=inf``; never an exception, never
  NaN. ``x_adv`` is then the attack's last iterate (or x itself), documented per attack.
* **Distances** are in the attack's norm over all coordinates of one input.
* **Box constraints** (``bounds=(lo, hi)``) are off by default and never applied silently.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxadv import _validate

NORMS = (1.0, 2.0, math.inf)


def check_norm(norm: Any, name: str = "norm") -> float:
    """Accepts 1, 2, ``inf`` (``math.inf``, ``jnp.inf``, ``"inf"``); returns 1.0, 2.0 or inf."""
    if isinstance(norm, str) and norm.lower() in ("inf", "linf"):
        return math.inf
    if isinstance(norm, numbers.Real) and not isinstance(norm, bool) and float(norm) in NORMS:
        return float(norm)
    raise ValueError(f"`{name}` must be one of 1, 2 or inf, got {norm!r}.")


def dual(p: float) -> float:
    """The dual exponent q with 1/p + 1/q = 1."""
    return {1.0: math.inf, 2.0: 2.0, math.inf: 1.0}[p]


def lp_norm(v: jax.Array, p: float) -> jax.Array:
    """‖v‖_p over all coordinates of one example (any shape)."""
    flat = jnp.ravel(v)
    if p == 1.0:
        return jnp.sum(jnp.abs(flat))
    if p == 2.0:
        return jnp.sqrt(jnp.sum(flat * flat))
    return jnp.max(jnp.abs(flat))


def flipped(f_clean: jax.Array, f_adv: jax.Array) -> jax.Array:
    """Strict sign change (see module docstring)."""
    return ((f_clean > 0) & (f_adv < 0)) | ((f_clean < 0) & (f_adv > 0))


def distance_or_inf(x: jax.Array, x_adv: jax.Array, success: jax.Array, p: float) -> jax.Array:
    d = lp_norm(x_adv - x, p)
    return jnp.where(success, d, jnp.asarray(jnp.inf, d.dtype))


def check_bounds(bounds: Any, name: str = "bounds") -> tuple[float, float] | None:
    """``None`` (no box) or ``(lo, hi)`` with finite lo < hi."""
    if bounds is None:
        return None
    try:
        lo, hi = (float(b) for b in bounds)
    except (TypeError, ValueError) as e:
        raise TypeError(f"`{name}` must be None or a pair (lo, hi) of numbers, got {bounds!r}.") from e
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"`{name}` must be None or (lo, hi) with finite lo < hi, got {bounds!r}.")
    return lo, hi


def clip_box(x: jax.Array, bounds: tuple[float, float] | None) -> jax.Array:
    return x if bounds is None else jnp.clip(x, bounds[0], bounds[1])


def nonneg_scalar(value: Any, name: str) -> jax.Array:
    """A traced-friendly scalar hyperparameter ≥ 0 (checked when concrete)."""
    if not _validate.is_tracer(value):
        v = float(value)
        if not (math.isfinite(v) and v >= 0):
            raise ValueError(f"`{name}` must be a finite number ≥ 0, got {value!r}.")
    return jnp.asarray(value)


def positive_scalar(value: Any, name: str) -> jax.Array:
    """A traced-friendly scalar hyperparameter > 0 (checked when concrete)."""
    if not _validate.is_tracer(value):
        v = float(value)
        if not (math.isfinite(v) and v > 0):
            raise ValueError(f"`{name}` must be a finite number > 0, got {value!r}.")
    return jnp.asarray(value)


def nonneg_int(value: Any, name: str) -> int:
    """A static count ≥ 0 (e.g. ``n_bisect=0`` turns refinement off)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` must be an integer ≥ 0, got {value!r}.")
    v = int(value)
    if v < 0:
        raise ValueError(f"`{name}` must be an integer ≥ 0, got {v}.")
    return v


def check_inputs_in_box(xs: jax.Array, bounds) -> None:
    """Inputs must lie in the box they are attacked in (checked when concrete)."""
    if bounds is None or _validate.is_tracer(xs):
        return
    lo, hi = bounds
    a = np.asarray(xs)  # NumPy: stays concrete inside a user's jit
    outside = int(np.sum((a < lo) | (a > hi)))
    if outside:
        raise ValueError(f"`xs` must lie inside `bounds` {bounds}, but {outside} of its {xs.size} entries are outside.")
