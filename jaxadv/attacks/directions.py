"""Search directions for line searches: random unit directions and Bubeck's universal one.

Also the layout rules every direction-taking attack shares: a direction may be given per
input (the layout of ``xs``), per (network, input) pair, per network, or once for all.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

from jaxadv import _validate, kernels
from jaxadv.nets._network import Network, Params

__all__ = ["random_directions", "universal_direction"]


@functools.partial(jax.jit, static_argnames=("shape", "input_ndim", "dtype"))
def _random_directions(key: jax.Array, shape: tuple[int, ...], input_ndim: int, dtype: Any) -> jax.Array:
    g = jax.random.normal(key, shape, dtype)
    axes = tuple(range(len(shape) - input_ndim, len(shape)))
    return g / jnp.sqrt(jnp.sum(g * g, axis=axes, keepdims=True))


def random_directions(key: jax.Array, shape: Any, *, input_ndim: int = 1, dtype: Any = None) -> jax.Array:
    """Independent directions uniform on the unit sphere, one per input.

    Each direction is a standard Gaussian vector divided by its Euclidean norm over the last
    ``input_ndim`` axes (the input's own axes), so it is uniform on S^{d−1}. Used for De Palma
    et al.'s segment theorem: the distance to the boundary along a random direction is
    Θ(‖x‖), against O(1) along the gradient.

    Args:
      key: a PRNG key.
      shape: the shape of the directions, e.g. ``xs.shape``: ``(n_x, d)`` or
        ``(n_net, n_x, d)``; an array may be passed instead, whose shape (and floating
        dtype) is used.
      input_ndim: how many trailing axes make up one input (1 for vector inputs).
      dtype: floating dtype; ``None`` is the array's dtype or JAX's default float.

    Returns:
      Unit directions of shape ``shape``.

    Examples:
      >>> import jax, jaxadv
      >>> u = jaxadv.attacks.random_directions(jax.random.key(0), (4, 10))
      >>> u.shape
      (4, 10)
    """
    key = _validate.key(key)
    if hasattr(shape, "shape") and hasattr(shape, "dtype"):
        if dtype is None and jnp.issubdtype(shape.dtype, jnp.floating):
            dtype = shape.dtype
        shape = tuple(shape.shape)
    try:
        shape = tuple(int(s) for s in shape)
    except TypeError as e:
        raise TypeError(f"`shape` must be a tuple of ints or an array, got {shape!r}.") from e
    if any(s <= 0 for s in shape):
        raise ValueError(f"`shape` must have positive entries, got {shape}.")
    input_ndim = _validate.positive_int(input_ndim, "input_ndim")
    if input_ndim > len(shape):
        raise ValueError(f"`input_ndim` ({input_ndim}) exceeds the number of axes of `shape` {shape}.")
    dtype = jnp.dtype(jnp.result_type(float) if dtype is None else dtype)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"`dtype` must be a floating dtype, got {dtype}.")
    return _random_directions(key, shape, input_ndim, dtype)


def universal_direction(net: Network, params: Params) -> jax.Array:
    """The input-independent direction Σ_ℓ a_ℓ w_ℓ of Bubeck et al. 2021, §1.1.

    For a two-layer ReLU network f(x) = k^{-1/2} Σ_ℓ a_ℓ relu(w_ℓ·x), the gradient is
    k^{-1/2} Σ_ℓ a_ℓ 1[w_ℓ·x > 0] w_ℓ; about half the units are active at any x, so
    Σ_ℓ a_ℓ w_ℓ correlates with ∇f(x) at every x and one step along it flips the sign just
    as the gradient step does. Pass it to :func:`one_step` as ``directions``.

    Args:
      net: a ``two_layer`` network (dense or matrix-free) or a ``shallow`` one.
      params: its params for one network or with a leading network axis: ``two_layer``
        ``{"W": (k, d), "a": (k,)}``, matrix-free ``two_layer`` ``{"W_key", "a"}`` (Wᵀa is
        then summed tile by tile, W never held) or ``shallow`` ``{"w", "b", "v"}`` (giving
        Σ_ℓ v_ℓ w_ℓ).

    Returns:
      ``(d,)`` for one network, ``(n_net, d)`` for many. Not normalised.
    """
    if not isinstance(net, Network):
        raise TypeError(f"`net` must be a jaxadv.nets.Network (two_layer or shallow), got {type(net).__name__}.")
    if isinstance(params, dict) and set(params) == {"W_key", "a"}:
        return _matrix_free_universal(net, params)
    if isinstance(params, dict) and set(params) == {"W", "a"}:
        W, a = params["W"], params["a"]
    elif isinstance(params, dict) and set(params) == {"w", "b", "v"}:
        W, a = params["w"], params["v"]
    else:
        raise TypeError(
            "`params` must be two_layer params {'W', 'a'} or {'W_key', 'a'}, or shallow params {'w', 'b', 'v'}; got "
            + type(params).__name__ + (f" with keys {sorted(params)}" if isinstance(params, dict) else "") + "."
        )
    W, a = jnp.asarray(W), jnp.asarray(a)
    if W.ndim not in (2, 3) or a.shape != W.shape[:-1] or W.shape[-1:] != tuple(net.input_shape):
        raise ValueError(f"`params` must hold W of shape ([n_net,] k, {net.input_shape[0]}) and a of shape ([n_net,] k) "
                         f"for {net.name}, got {W.shape} and {a.shape}.")
    return jnp.einsum("...k,...kd->...d", a, W, precision=jax.lax.Precision.HIGHEST)


def _matrix_free_universal(net: Network, params: Params) -> jax.Array:
    spec = getattr(net.init, "free", (None,))
    if len(spec) != 1 or spec[0] is None:
        raise TypeError(f"`net` must be the two_layer(..., weights='matrix_free') network of these matrix-free params, "
                        f"got {net.name}.")
    spec = spec[0]
    a = jnp.asarray(params["a"])
    if a.shape[-1:] != (spec.rows,) or a.ndim not in (1, 2) or jnp.shape(params["W_key"]) != a.shape[:-1]:
        raise ValueError(f"`params` must hold a of shape ([n_net,] {spec.rows}) and one W_key per network, got "
                         f"{a.shape} and {jnp.shape(params['W_key'])}.")
    if a.ndim == 1:
        return spec.rmatvec(params["W_key"], a)
    return jax.vmap(spec.rmatvec)(params["W_key"], a)


def layout_directions(
    net: Network, params: Params, xs: jax.Array, directions: Any, name: str = "directions"
) -> tuple[tuple, tuple]:
    """Checks ``directions`` against the layout of ``xs`` and returns ``(per_x, per_pair)``
    arguments for :func:`jaxadv.kernels.map_pairs` (exactly one of them holds the array).

    Accepted shapes: ``xs.shape`` (one direction per input); ``(n_net, n_x, *input_shape)``
    (per pair, when ``params`` holds ``n_net`` networks); ``(n_net, *input_shape)`` (one per
    network, e.g. :func:`universal_direction` of many networks); ``input_shape`` (one for all).
    """
    lay = kernels.layout(net, params, xs)
    u = _validate.float_array(directions, name)
    in_shape = tuple(net.input_shape)
    shape = tuple(u.shape)
    u = u.astype(xs.dtype)
    if shape == tuple(xs.shape):
        return (u,), ()
    pair = (lay.n_x, *in_shape) if lay.n_net is None else (lay.n_net, lay.n_x, *in_shape)
    if shape == pair:
        return (), (u,)
    if lay.n_net is not None and shape == (lay.n_net, *in_shape):
        return (), (jnp.broadcast_to(u[:, None], pair),)
    if shape == in_shape:
        return (), (jnp.broadcast_to(u, pair),)
    allowed = [tuple(xs.shape), pair] + ([(lay.n_net, *in_shape)] if lay.n_net is not None else []) + [in_shape]
    raise ValueError(f"`{name}` must have one of the shapes {', '.join(map(str, dict.fromkeys(allowed)))}, got {shape}.")
