"""Bubeck, Cherapanamjeri, Gidel & Tachet des Combes 2021, eq. (1): a random two-layer network."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp

from jaxadv import _validate
from jaxadv.nets import _common, matrix_free
from jaxadv.nets._network import Network
from jaxadv.nets.activations import Activation, activation_label, get_activation

READOUTS = ("rademacher", "gaussian")


@dataclasses.dataclass(frozen=True)
class _Init:
    d: int
    k: int
    readout: str
    dtype: Any
    free: tuple[matrix_free.GaussianMatrix | None]  # (None,) = dense W

    def __call__(self, key: jax.Array) -> dict[str, jax.Array]:
        return _common.run_init(self, key)

    def draw(self, key: jax.Array) -> dict[str, jax.Array]:
        dtype = _common.param_dtype(self.dtype)
        k_w, k_a = jax.random.split(key)
        if self.free[0] is None:
            out = {"W": _common.normal(k_w, (self.k, self.d), dtype, 1.0 / math.sqrt(self.d))}
        else:
            out = {"W_key": _common.typed_key(k_w)}  # a matrix-free W: a different draw, same law
        if self.readout == "rademacher":
            out["a"] = _common.rademacher(k_a, (self.k,), dtype)
        else:
            out["a"] = _common.normal(k_a, (self.k,), dtype, 1.0)
        return out

    def materialize(self, params: dict[str, jax.Array]) -> dict[str, jax.Array]:
        """``params`` with a matrix-free W's key replaced by the dense ``W``."""
        if self.free[0] is None:
            return params
        return {"W": self.free[0].materialize(params["W_key"]), "a": params["a"]}


@dataclasses.dataclass(frozen=True)
class _Apply:
    d: int
    k: int
    activation: Activation
    precision: str
    free: tuple[matrix_free.GaussianMatrix | None]  # (None,) = dense W

    def __call__(self, params: dict[str, jax.Array], x: jax.Array) -> jax.Array:
        _common.check_input(x, (self.d,))
        return self.after_first(params, self.first_linear(params, x))

    # The optional "first layer" protocol (see nets.Network): along a ray x + ηu the hidden
    # pre-activations are affine in η, so f there costs O(k) once Wx and Wu are known.
    def first_linear(self, params: dict[str, jax.Array], x: jax.Array) -> jax.Array:
        """Wx: the hidden pre-activations (linear in x)."""
        return _common.linear(params, self.free[0], x, self.precision)

    def after_first(self, params: dict[str, jax.Array], z: jax.Array) -> jax.Array:
        """f given the hidden pre-activations z = Wx."""
        h = self.activation(z)
        return jnp.dot(params["a"], h, precision=_common.PRECISIONS[self.precision]) / math.sqrt(self.k)


def two_layer(
    d: int,
    k: int,
    activation: str | Activation = "relu",
    *,
    readout: str = "rademacher",
    dtype: Any = None,
    precision: str = "highest",
    weights: str = "auto",
    tile_rows: int | None = None,
) -> Network:
    """Random two-layer network of Bubeck et al. 2021, eq. (1).

    f(x) = k^{-1/2} Σ_ℓ a_ℓ ψ(w_ℓ·x), with w_ℓ ~ N(0, I_d/d) i.i.d. and a_ℓ uniform on {±1}
    (``readout="rademacher"``) or a_ℓ ~ N(0, 1) (``readout="gaussian"``, their footnote 2).
    For ‖x‖ = √d, w_ℓ·x ~ N(0, 1), so E f(x)² = E ψ(X)² and E‖∇f(x)‖² = E ψ'(X)² (both 1/2
    for ReLU).

    Args:
      d: input dimension.
      k: number of hidden units.
      activation: ``"relu"``, ``"tanh"``, ``"softplus"``, ``"gelu"``, ``"swish"`` or an
        elementwise callable.
      readout: ``"rademacher"`` or ``"gaussian"``.
      dtype: parameter dtype; ``None`` is JAX's default float (float32, or float64 with x64).
      precision: matrix-product precision, ``"highest"`` (default: exact float32 products on
        every backend, so CPU and GPU agree) or ``"default"`` (the backend's fast mode, e.g.
        TF32 on recent NVIDIA GPUs).
      weights: ``"dense"``, ``"matrix_free"`` (W drawn tile by tile from a key on each use,
        never stored; see :mod:`jaxadv.nets.matrix_free`) or ``"auto"``: matrix-free exactly
        when the dense W would exceed :data:`jaxadv.nets.matrix_free.DENSE_LIMIT_BYTES`
        (4 GiB, the same on every machine). A matrix-free W is a different draw of the same
        law; the name records it.
      tile_rows: rows of a matrix-free W drawn at once (default: tiles of ≤ 16 MiB); does
        not change the draw.

    Returns:
      A :class:`Network` with params ``{"W": (k, d), "a": (k,)}``, or ``{"W_key": (), "a":
      (k,)}`` (a PRNG key in place of W) when W is matrix-free.

    Examples:
      >>> import jax, jaxadv
      >>> net = jaxadv.nets.two_layer(d=10, k=20)
      >>> params = net.init(jax.random.key(0))
      >>> net.apply(params, jax.numpy.ones(10)).shape
      ()
    """
    d = _validate.positive_int(d, "d")
    k = _validate.positive_int(k, "k")
    act = get_activation(activation)
    readout = _validate.choice(readout, "readout", READOUTS)
    dtype = _common.check_dtype(dtype)
    precision = _common.check_precision(precision)
    tile_rows = matrix_free.check_tile_rows(tile_rows)
    (is_free,) = matrix_free.choose(weights, [(k, d)], dtype)
    free = (matrix_free.GaussianMatrix(k, d, 1.0 / math.sqrt(d), dtype, tile_rows, precision) if is_free else None,)
    # The weights entry goes last: materialize() strips it to name the dense twin.
    name = _common.describe("two_layer", d=d, k=k, activation=activation_label(activation), readout=readout,
                            **matrix_free.name_entry([is_free]))
    return Network(_Init(d, k, readout, dtype, free), _Apply(d, k, act, precision, free), (d,), name)
