"""Bartlett, Bubeck & Cherapanamjeri 2021, NN-DEF: a random fully connected ReLU network of any depth."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Sequence

import jax
import jax.numpy as jnp

from jaxadv import _validate
from jaxadv.nets import _common, matrix_free
from jaxadv.nets._network import Network
from jaxadv.nets.activations import Activation, activation_label, get_activation

READOUTS = ("gaussian", "rademacher")


@dataclasses.dataclass(frozen=True)
class _Init:
    d: int
    widths: tuple[int, ...]
    readout: str
    bias: bool
    weight_std: float
    bias_std: float
    dtype: Any
    free: tuple[matrix_free.GaussianMatrix | None, ...]  # per hidden layer; None = dense

    def __call__(self, key: jax.Array) -> dict[str, Any]:
        return _common.run_init(self, key)

    def draw(self, key: jax.Array) -> dict[str, Any]:
        dtype = _common.param_dtype(self.dtype)
        # One key per layer, then one per tensor, so layer i's weights do not depend on depth.
        layer_keys = jax.random.split(key, len(self.widths) + 1)
        fan_ins = (self.d, *self.widths)
        hidden = []
        for i, width in enumerate(self.widths):
            k_w, k_b = jax.random.split(layer_keys[i])
            if self.free[i] is None:
                layer = {"W": _common.normal(k_w, (width, fan_ins[i]), dtype, self.weight_std / math.sqrt(fan_ins[i]))}
            else:
                # The key IS the matrix-free layer; biases and other layers are drawn exactly
                # as in the dense network, so only this layer's W differs (same law).
                layer = {"W_key": _common.typed_key(k_w)}
            if self.bias:
                layer["b"] = _common.normal(k_b, (width,), dtype, self.bias_std)
            hidden.append(layer)
        k_w, k_b = jax.random.split(layer_keys[-1])
        d_last = self.widths[-1]
        if self.readout == "gaussian":
            w = _common.normal(k_w, (d_last,), dtype, self.weight_std / math.sqrt(d_last))
        else:
            w = _common.rademacher(k_w, (d_last,), dtype) * (self.weight_std / math.sqrt(d_last))
        readout = {"w": w}
        if self.bias:
            readout["b"] = _common.normal(k_b, (), dtype, self.bias_std)
        return {"hidden": hidden, "readout": readout}

    def materialize(self, params: dict[str, Any]) -> dict[str, Any]:
        """``params`` with each matrix-free layer's key replaced by its dense ``W``."""
        hidden = []
        for spec, layer in zip(self.free, params["hidden"]):
            if spec is not None:
                layer = {"W": spec.materialize(layer["W_key"]), **{k: v for k, v in layer.items() if k != "W_key"}}
            hidden.append(layer)
        return {"hidden": hidden, "readout": params["readout"]}


@dataclasses.dataclass(frozen=True)
class _Apply:
    d: int
    activation: Activation
    precision: str
    free: tuple[matrix_free.GaussianMatrix | None, ...]  # per hidden layer; None = dense

    def __call__(self, params: dict[str, Any], x: jax.Array) -> jax.Array:
        _common.check_input(x, (self.d,))
        return self.after_first(params, self.first_linear(params, x))

    # The split below is the optional "first layer" protocol (see nets.Network): attacks
    # along a ray x + ηu evaluate first_linear once for x and once for u, because the first
    # layer's pre-activations are then affine in η and only the later layers are recomputed.
    def first_linear(self, params: dict[str, Any], x: jax.Array) -> jax.Array:
        """W₁x: the first layer's pre-activation without its bias (linear in x)."""
        return _common.linear(params["hidden"][0], self.free[0], x, self.precision)

    def after_first(self, params: dict[str, Any], z: jax.Array) -> jax.Array:
        """f given the first layer's linear part z = W₁x."""
        h = z
        for i, layer in enumerate(params["hidden"]):
            if i > 0:
                h = _common.linear(layer, self.free[i], h, self.precision)
            if "b" in layer:
                h = h + layer["b"]
            h = self.activation(h)
        out = jnp.dot(params["readout"]["w"], h, precision=_common.PRECISIONS[self.precision])
        if "b" in params["readout"]:
            out = out + params["readout"]["b"]
        return out


def mlp(
    d: int,
    widths: Sequence[int],
    activation: str | Activation = "relu",
    *,
    bias: bool = False,
    readout: str = "gaussian",
    weight_std: float = 1.0,
    bias_std: float = 1.0,
    dtype: Any = None,
    precision: str = "highest",
    weights: str | Sequence[str] = "auto",
    tile_rows: int | None = None,
) -> Network:
    """Random multi-layer network, NN-DEF of Bartlett et al. 2021 (§1).

    f(x) = W_{ℓ+1} σ(W_ℓ σ(⋯ σ(W_1 x))), with (W_i)_{jk} ~ N(0, σ_W²/d_{i-1}) i.i.d., d_0 = d,
    and the readout W_{ℓ+1} ~ N(0, σ_W² I/d_ℓ) (``readout="gaussian"``) or ±σ_W/√d_ℓ
    (``readout="rademacher"``). NN-DEF is σ_W = 1 and no biases; for bias-free ReLU networks
    the weight scale does not move the decision boundary (positive homogeneity).

    Any hidden widths: equal (Bubeck et al.'s deep experiments), shrinking (Daniely &
    Schacham 2020), or with a bottleneck (Bartlett et al.'s NN-DECOMP). With ``bias=True``
    every layer, readout included, gets biases b ~ N(0, σ_b²) (De Palma et al. 2021's σ_b).

    Args:
      d: input dimension.
      widths: hidden widths ``(d_1, …, d_ℓ)``, at least one.
      activation: a name from :data:`jaxadv.nets.ACTIVATIONS` or an elementwise callable.
      bias: whether layers have biases.
      readout: ``"gaussian"`` or ``"rademacher"``.
      weight_std: σ_W; weights have variance σ_W²/fan_in.
      bias_std: σ_b, used when ``bias=True``.
      dtype: parameter dtype; ``None`` is JAX's default float.
      precision: ``"highest"`` (default) or ``"default"``; see :func:`two_layer`.
      weights: ``"dense"`` (W stored), ``"matrix_free"`` (every hidden W drawn tile by tile
        from a key on each use, never stored; see :mod:`jaxadv.nets.matrix_free`) or
        ``"auto"``: matrix-free exactly for the layers whose dense W would exceed
        :data:`jaxadv.nets.matrix_free.DENSE_LIMIT_BYTES` (4 GiB, the same on every machine);
        or one of ``"dense"``/``"matrix_free"`` per hidden layer. Matrix-free layers are a
        different draw of the same law; the name records them.
      tile_rows: rows of a matrix-free W drawn at once (default: tiles of ≤ 16 MiB). A
        memory/speed knob only: it does not change the draw.

    Returns:
      A :class:`Network` with params ``{"hidden": [{"W": (d_i, d_{i-1}), "b": (d_i,)}…],
      "readout": {"w": (d_ℓ,), "b": ()}}`` (no ``"b"`` entries without biases); a
      matrix-free layer has ``"W_key"``, a PRNG key of shape ``()``, in place of ``"W"``.
    """
    d = _validate.positive_int(d, "d")
    widths = _validate.int_sequence(widths, "widths")
    act = get_activation(activation)
    readout = _validate.choice(readout, "readout", READOUTS)
    weight_std, bias_std, dtype, precision = _common.check_init_args(
        bias=bias, weight_std=weight_std, bias_std=bias_std, dtype=dtype, precision=precision)
    tile_rows = matrix_free.check_tile_rows(tile_rows)
    shapes = list(zip(widths, (d, *widths[:-1])))
    free_flags = matrix_free.choose(weights, shapes, dtype)
    free = tuple(
        matrix_free.GaussianMatrix(r, c, weight_std / math.sqrt(c), dtype, tile_rows, precision) if f else None
        for f, (r, c) in zip(free_flags, shapes)
    )
    cfg: dict[str, Any] = dict(d=d, widths=widths, activation=activation_label(activation))
    if bias:
        cfg.update(bias=True, bias_std=bias_std)
    if readout != "gaussian":
        cfg.update(readout=readout)
    if weight_std != 1.0:
        cfg.update(weight_std=weight_std)
    cfg.update(matrix_free.name_entry(free_flags))  # last: materialize() strips it
    name = _common.describe("mlp", **cfg)
    init = _Init(d, widths, readout, bias, weight_std, bias_std, dtype, free)
    return Network(init, _Apply(d, act, precision, free), (d,), name)
