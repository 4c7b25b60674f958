"""Pieces shared by the network families."""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

from jaxadv import _validate
from jaxadv.nets import _sampling

PRECISIONS = {"highest": jax.lax.Precision.HIGHEST, "default": jax.lax.Precision.DEFAULT}


def param_dtype(dtype: Any) -> Any:
    """``dtype``, or JAX's default float (float32; float64 when the user enabled x64)."""
    return jnp.result_type(float) if dtype is None else jnp.dtype(dtype)


def check_dtype(dtype: Any, name: str = "dtype") -> Any:
    if dtype is None:
        return None
    try:
        dt = jnp.dtype(dtype)
    except TypeError as e:
        raise TypeError(f"`{name}` must be a floating dtype or None, got {dtype!r}.") from e
    if not jnp.issubdtype(dt, jnp.floating):
        raise TypeError(f"`{name}` must be a floating dtype or None, got {dt}.")
    return dt.name


def check_precision(precision: str) -> str:
    return _validate.choice(precision, "precision", tuple(PRECISIONS))


def check_init_args(*, bias: Any, weight_std: Any, bias_std: Any, dtype: Any, precision: Any):
    """The initialisation arguments every family with optional biases shares, validated.

    Returns:
      ``(weight_std, bias_std, dtype, precision)``.
    """
    if not isinstance(bias, bool):
        raise TypeError(f"`bias` must be True or False, got {bias!r}.")
    weight_std = _validate.positive_float(weight_std, "weight_std")
    bias_std = _validate.positive_float(bias_std, "bias_std", allow_zero=True)
    return weight_std, bias_std, check_dtype(dtype), check_precision(precision)


def check_input(x: jax.Array, input_shape: tuple[int, ...]) -> None:
    # Shapes are static under tracing, so this costs nothing inside jit/vmap.
    if tuple(jnp.shape(x)) != tuple(input_shape):
        raise ValueError(
            f"`x` must be ONE input of shape {tuple(input_shape)} for this network, got shape "
            f"{tuple(jnp.shape(x))}; batch with jaxadv.kernels (evaluate/forward) or jax.vmap."
        )


def rademacher(key: jax.Array, shape: tuple[int, ...], dtype: Any) -> jax.Array:
    return jax.random.rademacher(key, shape, dtype=dtype)


def normal(key: jax.Array, shape: tuple[int, ...], dtype: Any, std: Any) -> jax.Array:
    # Bitwise jax.random.normal; threefry keys draw through the unrolled hash (see _sampling).
    return std * _sampling.normal(key, shape, dtype)


def matvec(W: jax.Array, h: jax.Array, precision: str) -> jax.Array:
    return jnp.matmul(W, h, precision=PRECISIONS[precision])


def linear(layer: dict[str, Any], free: Any, h: jax.Array, precision: str) -> jax.Array:
    """W h for a layer's params: the dense ``layer["W"]`` (``free`` is ``None``), or the
    matrix-free W that ``free`` (a :class:`jaxadv.nets.matrix_free.GaussianMatrix`) draws from
    ``layer["W_key"]``."""
    if free is None:
        return matvec(layer["W"], h, precision)
    return free.matvec(layer["W_key"], h)


def typed_key(key: jax.Array) -> jax.Array:
    """``key`` as a typed key array, so that a stored key has the leaf type and shape that
    ``net.init``'s abstract params promise; a raw ``uint32[2]`` key is wrapped in JAX's
    default implementation, the one jax.random reads raw keys with."""
    if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        return key
    return jax.random.wrap_key_data(key)


def describe(family: str, **kwargs: Any) -> str:
    return f"{family}(" + ", ".join(f"{k}={v!r}" for k, v in kwargs.items()) + ")"


@functools.partial(jax.jit, static_argnums=0)
def _jit_draw(init: Any, key: jax.Array) -> Any:
    return init.draw(key)


def run_init(init: Any, key: Any) -> Any:
    """Validates ``key`` and draws parameters under jit.

    Always drawing under jit makes ``net.init(key)`` bitwise equal to network j of a vmapped
    :func:`jaxadv.kernels.init_many` (eager and fused samplers differ in the last ulp), and
    avoids op-by-op dispatch for wide layers.
    """
    return _jit_draw(init, _validate.key(key))
