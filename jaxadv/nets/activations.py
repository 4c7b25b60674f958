"""Activation functions by name, plus their Gaussian moments used by the papers' identities.

Bubeck et al. 2021 §1.2: for w·x ~ N(0, 1), E f(x)² = E[ψ(X)²] and E‖∇f(x)‖² = E[ψ'(X)²].
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

Activation = Callable[[jax.Array], jax.Array]

ACTIVATIONS: dict[str, Activation] = {
    "relu": jax.nn.relu,
    "tanh": jnp.tanh,
    "softplus": jax.nn.softplus,
    "gelu": jax.nn.gelu,
    "swish": jax.nn.swish,
}


def get_activation(activation: str | Activation, name: str = "activation") -> Activation:
    """Resolves a name from :data:`ACTIVATIONS` or checks that a callable is elementwise.

    A callable is checked abstractly (``jax.eval_shape``, no compute) to map an array to an
    array of the same shape and dtype, so a wrong function fails here, not deep inside a sweep.
    """
    if isinstance(activation, str):
        if activation not in ACTIVATIONS:
            raise ValueError(f"`{name}` must be one of {sorted(ACTIVATIONS)} or a callable, got {activation!r}.")
        return ACTIVATIONS[activation]
    if not callable(activation):
        raise TypeError(f"`{name}` must be a name or a callable, got {type(activation).__name__}.")
    probe = jax.ShapeDtypeStruct((3, 2), jnp.float32)
    try:
        out = jax.eval_shape(activation, probe)
    except Exception as e:  # noqa: BLE001 - report whatever the user's function raised
        raise ValueError(f"`{name}` must be an elementwise function of one array; calling it failed: {e}") from e
    if getattr(out, "shape", None) != probe.shape:
        raise ValueError(
            f"`{name}` must be elementwise (same output shape as input); it mapped shape (3, 2) to "
            f"{getattr(out, 'shape', type(out).__name__)}."
        )
    return activation


def activation_label(activation: str | Activation) -> str:
    if isinstance(activation, str):
        return activation
    return getattr(activation, "__name__", type(activation).__name__)
