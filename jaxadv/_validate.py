"""Argument checks shared by every public entry point.

Each check runs before any compute and raises ``TypeError`` (wrong kind of object) or
``ValueError`` (right kind, wrong value) with the argument's name and what was expected.
Value checks (finiteness) are skipped for tracers: inside a user's ``jit`` the values do
not exist yet, and the shape checks still apply.
"""

from __future__ import annotations

import numbers
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np


def is_tracer(x: Any) -> bool:
    return isinstance(x, jax.core.Tracer)


def key(key: Any, name: str = "key") -> jax.Array:
    """A JAX PRNG key: a typed key (``jax.random.key``) or a raw ``uint32[2]`` key."""
    if isinstance(key, jax.Array) or is_tracer(key):
        dtype = key.dtype
        if jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
            if key.shape != ():
                raise ValueError(
                    f"`{name}` must be a single PRNG key (shape ()), got a key array of shape "
                    f"{key.shape}; split it or pass one element."
                )
            return key
        if dtype == jnp.uint32 and key.shape == (2,):
            return key
    raise TypeError(
        f"`{name}` must be a JAX PRNG key from jax.random.key(seed) (or jax.random.PRNGKey), "
        f"got {type(key).__name__}"
        + (f" with dtype {key.dtype} and shape {key.shape}" if hasattr(key, "dtype") else "")
        + "."
    )


def positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` must be a positive integer, got {value!r}.")
    if value <= 0:
        raise ValueError(f"`{name}` must be a positive integer, got {value}.")
    return int(value)


def optional_positive_int(value: Any, name: str) -> int | None:
    return None if value is None else positive_int(value, name)


def positive_float(value: Any, name: str, *, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a real number, got {value!r}.")
    v = float(value)
    ok = v >= 0 if allow_zero else v > 0
    if not (np.isfinite(v) and ok):
        bound = "≥ 0" if allow_zero else "> 0"
        raise ValueError(f"`{name}` must be a finite number {bound}, got {value}.")
    return v


def int_sequence(values: Any, name: str) -> tuple[int, ...]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        if isinstance(values, np.ndarray) and values.ndim == 1:
            values = values.tolist()
        else:
            raise TypeError(f"`{name}` must be a sequence of positive integers, got {values!r}.")
    if len(values) == 0:
        raise ValueError(f"`{name}` must contain at least one width, got an empty sequence.")
    out = []
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise TypeError(f"`{name}[{i}]` must be a positive integer, got {v!r}.")
        if v <= 0:
            raise ValueError(f"`{name}[{i}]` must be a positive integer, got {v}.")
        out.append(int(v))
    return tuple(out)


def choice(value: Any, name: str, options: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"`{name}` must be one of {sorted(options)}, got {value!r}.")
    return value


def float_array(x: Any, name: str, *, finite: bool = True) -> jax.Array:
    """Converts to a floating JAX array (integers are promoted), optionally checking finiteness."""
    if is_tracer(x):
        arr = x
    else:
        try:
            arr = jnp.asarray(x)
        except TypeError as e:
            raise TypeError(f"`{name}` must be an array of real numbers, got {type(x).__name__}.") from e
    if jnp.issubdtype(arr.dtype, jnp.complexfloating) or arr.dtype == jnp.bool_:
        raise TypeError(f"`{name}` must hold real numbers, got dtype {arr.dtype}.")
    if not jnp.issubdtype(arr.dtype, jnp.floating):
        if not jnp.issubdtype(arr.dtype, jnp.integer):
            raise TypeError(f"`{name}` must hold real numbers, got dtype {arr.dtype}.")
        arr = arr.astype(jnp.result_type(float))
    # NumPy, not jnp: inside a user's jit a concrete (closed-over) array stays concrete for
    # NumPy, while a jnp reduction of it would become a tracer.
    if finite and not is_tracer(arr) and not np.all(np.isfinite(np.asarray(arr))):
        n_bad = int(np.sum(~np.isfinite(np.asarray(arr))))
        raise ValueError(f"`{name}` must be finite, but {n_bad} of its {arr.size} entries are NaN or inf.")
    return arr


def trailing_shape(x: jax.Array, name: str, shape: tuple[int, ...], lead_ranks: Sequence[int]) -> int:
    """Checks ``x.shape == (*lead, *shape)`` with ``len(lead)`` in ``lead_ranks``; returns len(lead)."""
    k = len(shape)
    lead = x.ndim - k
    if lead in lead_ranks and tuple(x.shape[lead:]) == tuple(shape):
        return lead
    expected = " or ".join(
        "(" + ", ".join([*("n_net", "n_x")[2 - r :], *map(str, shape)]) + (",)" if r + k == 1 else ")")
        for r in sorted(lead_ranks)
    )
    raise ValueError(f"`{name}` must have shape {expected} for this network, got {tuple(x.shape)}.")
