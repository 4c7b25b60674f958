"""The linear model f(x) = wᵀx + b: every attack has a closed-form answer on it."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp

from jaxadv import _validate
from jaxadv.nets import _common
from jaxadv.nets._network import Network


@dataclasses.dataclass(frozen=True)
class _Init:
    d: int
    bias: bool
    dtype: Any

    def __call__(self, key: jax.Array) -> dict[str, jax.Array]:
        return _common.run_init(self, key)

    def draw(self, key: jax.Array) -> dict[str, jax.Array]:
        dtype = _common.param_dtype(self.dtype)
        k_w, k_b = jax.random.split(key)
        params = {"w": _common.normal(k_w, (self.d,), dtype, 1.0 / math.sqrt(self.d))}
        if self.bias:
            params["b"] = _common.normal(k_b, (), dtype, 1.0)
        return params


@dataclasses.dataclass(frozen=True)
class _Apply:
    d: int
    precision: str

    def __call__(self, params: dict[str, jax.Array], x: jax.Array) -> jax.Array:
        _common.check_input(x, (self.d,))
        out = jnp.dot(params["w"], x, precision=_common.PRECISIONS[self.precision])
        return out + params["b"] if "b" in params else out


def linear(d: int, *, bias: bool = True, dtype: Any = None, precision: str = "highest") -> Network:
    """Linear model f(x) = wᵀx + b with w ~ N(0, I_d/d) and b ~ N(0, 1).

    The ground truth for attacks: the minimal ℓp perturbation that changes sign(f(x)) has
    size |f(x)|/‖w‖_q with 1/p + 1/q = 1, and one gradient step with η = −f(x)/‖w‖² lands
    exactly on the boundary.

    Args:
      d: input dimension.
      bias: include the scalar bias b.
      dtype: parameter dtype; ``None`` is JAX's default float.
      precision: ``"highest"`` (default) or ``"default"``.

    Returns:
      A :class:`Network` with params ``{"w": (d,), "b": ()}``.
    """
    d = _validate.positive_int(d, "d")
    if not isinstance(bias, bool):
        raise TypeError(f"`bias` must be True or False, got {bias!r}.")
    dtype = _common.check_dtype(dtype)
    precision = _common.check_precision(precision)
    name = _common.describe("linear", d=d, bias=bias)
    return Network(_Init(d, bias, dtype), _Apply(d, precision), (d,), name)
