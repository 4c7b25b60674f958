"""A :class:`Network` from a stack of layers, and Theorem 2's smoothness constant M."""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any, Sequence

import jax
import jax.numpy as jnp

from jaxadv import _validate
from jaxadv.nets import _common
from jaxadv.nets._network import Network
from jaxadv.nets.layers import (
    CONV_IMPLS,
    ApplyConfig,
    InitConfig,
    Layer,
    _layer_tuple,
    apply_layers,
    init_layers,
    last_image_shape,
    output_shapes,
)

__all__ = ["sequential", "smoothness_m"]


@dataclasses.dataclass(frozen=True)
class _Init:
    layers: tuple[Layer, ...]
    input_shape: tuple[int, ...]
    cfg: InitConfig

    def __call__(self, key: jax.Array) -> list[Any]:
        return _common.run_init(self, key)

    def draw(self, key: jax.Array) -> list[Any]:
        return init_layers(self.layers, key, self.input_shape, self.cfg)


@dataclasses.dataclass(frozen=True)
class _Apply:
    layers: tuple[Layer, ...]
    input_shape: tuple[int, ...]
    cfg: ApplyConfig

    def __call__(self, params: list[Any], x: jax.Array) -> jax.Array:
        _common.check_input(x, self.input_shape)
        return jnp.reshape(apply_layers(self.layers, params, x, self.cfg), ())


def check_shape(shape: Any, name: str = "input_shape") -> tuple[int, ...]:
    if isinstance(shape, (str, bytes)) or not isinstance(shape, Sequence) or len(shape) == 0:
        raise TypeError(f"`{name}` must be a non-empty tuple of positive integers such as (32, 32, 3), got {shape!r}.")
    for v in shape:
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v <= 0:
            raise ValueError(
                f"`{name}` must be a tuple of positive integers such as (32, 32, 3), got {tuple(shape)!r}."
            )
    return tuple(int(v) for v in shape)


def check_image_shape(input_shape: Any) -> tuple[int, int, int]:
    shape = check_shape(input_shape)
    if len(shape) != 3:
        raise ValueError(f"`input_shape` must be an image shape (H, W, C), got {shape}.")
    return shape  # type: ignore[return-value]


def build(
    layers: Sequence[Layer],
    input_shape: tuple[int, ...],
    init_cfg: InitConfig,
    apply_cfg: ApplyConfig,
    name: str,
) -> Network:
    """The network of already validated settings (used by the families)."""
    layers = _layer_tuple(layers, "layers", allow_empty=False)
    out = output_shapes(layers, input_shape)[-1]
    if math.prod(out) != 1:
        raise ValueError(
            f"`layers` must end with a single output (e.g. Flatten(), Dense(1)) for a scalar network, but the "
            f"last layer gives shape {out} for inputs of shape {input_shape}."
        )
    return Network(_Init(layers, input_shape, init_cfg), _Apply(layers, input_shape, apply_cfg), input_shape, name)


def configs(
    *, weight_std: Any, bias: Any, bias_std: Any, dtype: Any, precision: Any, conv_impl: Any
) -> tuple[InitConfig, ApplyConfig, dict[str, Any]]:
    """Validated configs, plus the non-default settings for the network's name."""
    weight_std, bias_std, dtype, precision = _common.check_init_args(
        bias=bias, weight_std=weight_std, bias_std=bias_std, dtype=dtype, precision=precision)
    conv_impl = _validate.choice(conv_impl, "conv_impl", CONV_IMPLS)
    extra: dict[str, Any] = {}
    if bias:
        extra.update(bias=True, bias_std=bias_std)
    if weight_std != math.sqrt(2.0):
        extra.update(weight_std=weight_std)
    return InitConfig(weight_std, bias, bias_std, dtype), ApplyConfig(precision, conv_impl), extra


def sequential(
    layers: Sequence[Layer],
    input_shape: Sequence[int],
    *,
    weight_std: float = math.sqrt(2.0),
    bias: bool = False,
    bias_std: float = 1.0,
    dtype: Any = None,
    precision: str = "highest",
    conv_impl: str = "patches",
) -> Network:
    """A scalar network from a stack of :mod:`jaxadv.nets.layers`.

    Shapes are inferred layer by layer now, so an impossible stack (a kernel larger than the
    image, a Dense on an image, a residual block whose paths disagree) fails here with the
    index of the offending layer. The last layer must give one value (e.g. ``Dense(1)``); it
    is returned as a scalar.

    Initialisation: every convolution and dense weight ~ N(0, σ_W²/fan_in) (fan_in =
    kh·kw·C_in or d_in; σ_W = √2 is He-normal), and with ``bias=True`` every bias ~
    N(0, σ_b²). Appending layers does not change the earlier layers' draws (see
    :mod:`jaxadv.nets.layers` for how the stream of normals is cut).

    Args:
      layers: the layers, e.g. ``[Conv(32), Activation("relu"), Flatten(), Dense(1)]``.
      input_shape: shape of one input, ``(H, W, C)`` for images (or ``(d,)`` for dense stacks).
      weight_std: σ_W.
      bias: whether convolutions and dense layers have biases.
      bias_std: σ_b (≥ 0; 0 gives zero-initialised biases, e.g. to train them).
      dtype: parameter dtype; ``None`` is JAX's default float.
      precision: ``"highest"`` (default) or ``"default"``; see :func:`two_layer`.
      conv_impl: ``"patches"`` (default) or ``"xla"``; see
        :class:`jaxadv.nets.layers.ApplyConfig`. The numbers agree up to float rounding.

    Returns:
      A :class:`Network`; params are a list with one entry per layer (``{}`` for layers
      without parameters).

    Examples:
      >>> import jax
      >>> from jaxadv import nets
      >>> from jaxadv.nets import layers as L
      >>> net = nets.sequential([L.Conv(4), L.Activation(), L.Flatten(), L.Dense(1)], (5, 5, 3))
      >>> [p["W"].shape for p in net.init(jax.random.key(0)) if p]
      [(3, 3, 3, 4), (100, 1)]
    """
    input_shape = check_shape(input_shape)
    init_cfg, apply_cfg, extra = configs(
        weight_std=weight_std, bias=bias, bias_std=bias_std, dtype=dtype, precision=precision, conv_impl=conv_impl
    )
    layers = _layer_tuple(layers, "layers", allow_empty=False)
    name = _common.describe("sequential", input_shape=input_shape, layers=list(layers), **extra)
    return build(layers, input_shape, init_cfg, apply_cfg, name)


def smoothness_m(net: Network) -> float:
    """Theorem 2's M = √(|I⁽⁰⁾| / |I^(L_f)|) of De Palma et al. 2021 for ``net``.

    |I⁽⁰⁾| is the number of input pixels (H·W) and |I^(L_f)| the number of spatial positions
    of the last image-shaped activation, the one that is flattened. The GP kernel of the
    network then satisfies d(x, y) ≤ M·C·‖x − y‖₂ (their eq. (8)) and the ℓ1 robustness
    radius of Corollary 1 scales as 1/M. M = 1 without downsampling (fully connected nets,
    convolutions with stride 1, :func:`small_cnn`); each 2× pooling or stride-2 stage
    multiplies it by about 2, so M = 4 for :func:`resnet` and :func:`lenet` when 4 divides
    the image side s. Otherwise the two differ: a stride-2 "same" convolution rounds up
    (M = s/⌈s/4⌉ for :func:`resnet`) and a 2×2 pooling rounds down (M = s/⌊s/4⌋ for
    :func:`lenet`), e.g. 10/3 and 10/2 = 5 at s = 10.

    Args:
      net: a network built by :func:`sequential` (or :func:`resnet`, :func:`small_cnn`,
        :func:`lenet`), or any network on vectors (fully connected: M = 1).

    Returns:
      M as a float.
    """
    if not isinstance(net, Network):
        raise TypeError(f"`net` must be a jaxadv.nets.Network, got {type(net).__name__}.")
    if isinstance(net.apply, _Apply):
        first = net.apply.input_shape
        last = last_image_shape(net.apply.layers, first)
        if last is None:
            return 1.0
        return math.sqrt((first[0] * first[1]) / (last[0] * last[1]))
    if len(net.input_shape) == 1:
        return 1.0
    raise TypeError(
        f"smoothness_m needs a network built from layers (jaxadv.nets.sequential, resnet, small_cnn, lenet) "
        f"or one on vectors; {net.name} has input shape {net.input_shape} and unknown layers."
    )
