"""Vardi, Yehudai & Shamir 2022, §2: the trainable depth-2 network with biases."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp

from jaxadv import _validate
from jaxadv.nets import _common
from jaxadv.nets._network import Network
from jaxadv.nets.activations import Activation, activation_label, get_activation

INITS = ("uniform", "gaussian")


@dataclasses.dataclass(frozen=True)
class _Init:
    d: int
    k: int
    init: str
    scale: float
    dtype: Any

    def __call__(self, key: jax.Array) -> dict[str, jax.Array]:
        return _common.run_init(self, key)

    def draw(self, key: jax.Array) -> dict[str, jax.Array]:
        dtype = _common.param_dtype(self.dtype)
        k_w, k_b, k_v = jax.random.split(key, 3)
        s_in = self.scale / math.sqrt(self.d)
        s_out = self.scale / math.sqrt(self.k)
        if self.init == "uniform":
            def draw(k, shape, bound):
                return jax.random.uniform(k, shape, dtype, -bound, bound)
        else:
            def draw(k, shape, std):
                return _common.normal(k, shape, dtype, std)
        return {
            "w": draw(k_w, (self.k, self.d), s_in),
            "b": draw(k_b, (self.k,), s_in),
            "v": draw(k_v, (self.k,), s_out),
        }


@dataclasses.dataclass(frozen=True)
class _Apply:
    d: int
    activation: Activation
    precision: str

    def __call__(self, params: dict[str, jax.Array], x: jax.Array) -> jax.Array:
        _common.check_input(x, (self.d,))
        h = self.activation(_common.matvec(params["w"], x, self.precision) + params["b"])
        return jnp.dot(params["v"], h, precision=_common.PRECISIONS[self.precision])


def shallow(
    d: int,
    k: int,
    activation: str | Activation = "relu",
    *,
    init: str = "uniform",
    scale: float = 1.0,
    dtype: Any = None,
    precision: str = "highest",
) -> Network:
    """Depth-2 network N(x) = Σ_j v_j σ(w_jᵀx + b_j) of Vardi et al. 2022, §2, all of w, b, v trainable.

    Initialisation (the paper does not state it; its experiments ran in PyTorch):

    * ``init="uniform"`` (default) is PyTorch's ``nn.Linear`` default, the most likely choice:
      w_jk, b_j ~ U(−s/√d, s/√d) and v_j ~ U(−s/√k, s/√k), with s = ``scale`` (= 1). There is
      no output bias, as in the paper's N.
    * ``init="gaussian"``: w_jk, b_j ~ N(0, s²/d) and v_j ~ N(0, s²/k).

    Args:
      d: input dimension.
      k: width (number of hidden units).
      activation: a name or an elementwise callable (the paper: ReLU).
      init: ``"uniform"`` or ``"gaussian"``.
      scale: s above.
      dtype: parameter dtype; ``None`` is JAX's default float.
      precision: ``"highest"`` (default) or ``"default"``.

    Returns:
      A :class:`Network` with params ``{"w": (k, d), "b": (k,), "v": (k,)}``.
    """
    d = _validate.positive_int(d, "d")
    k = _validate.positive_int(k, "k")
    act = get_activation(activation)
    init = _validate.choice(init, "init", INITS)
    scale = _validate.positive_float(scale, "scale")
    dtype = _common.check_dtype(dtype)
    precision = _common.check_precision(precision)
    name = _common.describe("shallow", d=d, k=k, activation=activation_label(activation), init=init)
    return Network(_Init(d, k, init, scale, dtype), _Apply(d, act, precision), (d,), name)
