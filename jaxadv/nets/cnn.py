"""De Palma et al. 2021's other image networks: the simple CNN and the LeNet-like net (supplement)."""

from __future__ import annotations

import math
from typing import Any, Sequence

from jaxadv import _validate
from jaxadv.nets import _common
from jaxadv.nets._network import Network
from jaxadv.nets.activations import Activation as _ActivationFn
from jaxadv.nets.activations import activation_label, get_activation
from jaxadv.nets.layers import Activation, AvgPool, Conv, Dense, Flatten, Layer, MaxPool
from jaxadv.nets.sequential import build, check_image_shape, configs

__all__ = ["lenet", "small_cnn"]

POOLS = ("avg", "max")


def _family_name(family: str, input_shape, padding, activation, extra, **cfg) -> str:
    if padding != "same":
        cfg.update(padding=padding)
    if activation != "relu":
        cfg.update(activation=activation_label(activation))
    return _common.describe(family, input_shape=input_shape, **cfg, **extra)


def small_cnn(
    input_shape: Sequence[int],
    *,
    channels: Sequence[int] = (128, 128, 128, 128),
    kernel: int = 3,
    padding: str = "same",
    activation: str | _ActivationFn = "relu",
    bias: bool = False,
    bias_std: float = 1.0,
    weight_std: float = math.sqrt(2.0),
    dtype: Any = None,
    precision: str = "highest",
    conv_impl: str = "patches",
) -> Network:
    """The simple CNN of De Palma et al.'s code (``simple_conv_model``).

    One conv kernel×kernel (stride 1) + activation per entry of ``channels`` (the paper:
    4 × 128 channels, 3×3, ``"same"``, ReLU), then flatten and a dense scalar output. No
    pooling, so :func:`smoothness_m` is 1. Weights ~ N(0, σ_W²/fan_in), He-normal by default;
    biases as in :func:`resnet`. The authors' code draws the convs from a truncated normal
    of variance 0.02/fan_in (``VarianceScaling(0.02)``) and the readout from Keras' default
    Glorot-uniform. The scale does not
    matter for this bias-free ReLU chain (positive homogeneity: scaling layer l's weights by
    c_l > 0 scales f by Π c_l, so the sign of f is unchanged); the shape of the
    distributions (truncated normal, uniform readout) is not a scale, and that difference
    is assumed small and not tested.

    Args:
      input_shape: image shape ``(H, W, C)``.
      channels: output channels of each conv layer.
      kernel: square kernel size.
      padding: ``"same"``, ``"wrap"`` or ``"valid"``.
      activation: a name from :data:`jaxadv.nets.ACTIVATIONS` or an elementwise callable.
      bias, bias_std, weight_std, dtype, precision, conv_impl: see :func:`sequential`.

    Returns:
      A :class:`Network`; params ``[conv, {}, …, conv, {}, {}, dense]`` as :func:`sequential`.
    """
    input_shape = check_image_shape(input_shape)
    channels = _validate.int_sequence(channels, "channels")
    kernel = _validate.positive_int(kernel, "kernel")
    padding = _validate.choice(padding, "padding", ("same", "wrap", "valid"))
    get_activation(activation)
    init_cfg, apply_cfg, extra = configs(
        weight_std=weight_std, bias=bias, bias_std=bias_std, dtype=dtype, precision=precision, conv_impl=conv_impl
    )
    act = Activation(activation)
    layers: list[Layer] = []
    for c in channels:
        layers += [Conv(c, kernel, 1, padding), act]
    layers += [Flatten(), Dense(1)]
    cfg: dict[str, Any] = dict(channels=channels)
    if kernel != 3:
        cfg.update(kernel=kernel)
    name = _family_name("small_cnn", input_shape, padding, activation, extra, **cfg)
    return build(layers, input_shape, init_cfg, apply_cfg, name)


def lenet(
    input_shape: Sequence[int],
    *,
    channels: Sequence[int] = (128, 128),
    convs_per_stage: int = 2,
    hidden: Sequence[int] = (512, 512),
    pool: str = "avg",
    padding: str = "same",
    activation: str | _ActivationFn = "relu",
    bias: bool = False,
    bias_std: float = 1.0,
    weight_std: float = math.sqrt(2.0),
    dtype: Any = None,
    precision: str = "highest",
    conv_impl: str = "patches",
) -> Network:
    """The LeNet-like network of De Palma et al.'s code (``le_net_model``).

    Per entry c of ``channels``: ``convs_per_stage`` × (conv 3×3 with c channels +
    activation), then a 2×2 pooling with stride 2. Then flatten, one dense layer +
    activation per entry of ``hidden``, and a dense scalar output. The paper: channels
    (128, 128), 2 convs per stage, average pooling, hidden (512, 512), ReLU, no biases, so
    :func:`smoothness_m` is 4 when 4 divides the image side s (s/⌊s/4⌋ otherwise: the
    poolings round down). Initialisation as :func:`small_cnn`: N(0, σ_W²/fan_in) for every
    layer, where the authors' code has a truncated normal and a Glorot-uniform readout (a
    difference in distribution, assumed small, not tested).

    Args:
      input_shape: image shape ``(H, W, C)``; each stage halves the side (rounding down).
      channels: channels of each stage's convs.
      convs_per_stage: convs before each pooling.
      hidden: widths of the dense layers after flattening (may be empty).
      pool: ``"avg"`` (the authors' code) or ``"max"``.
      padding: ``"same"``, ``"wrap"`` or ``"valid"`` for the convs.
      activation: a name from :data:`jaxadv.nets.ACTIVATIONS` or an elementwise callable.
      bias, bias_std, weight_std, dtype, precision, conv_impl: see :func:`sequential`.

    Returns:
      A :class:`Network`; params one entry per layer as :func:`sequential`.
    """
    input_shape = check_image_shape(input_shape)
    channels = _validate.int_sequence(channels, "channels")
    convs_per_stage = _validate.positive_int(convs_per_stage, "convs_per_stage")
    hidden = () if isinstance(hidden, (tuple, list)) and len(hidden) == 0 else _validate.int_sequence(hidden, "hidden")
    pool = _validate.choice(pool, "pool", POOLS)
    padding = _validate.choice(padding, "padding", ("same", "wrap", "valid"))
    get_activation(activation)
    init_cfg, apply_cfg, extra = configs(
        weight_std=weight_std, bias=bias, bias_std=bias_std, dtype=dtype, precision=precision, conv_impl=conv_impl
    )
    act = Activation(activation)
    pooling = AvgPool(2, 2) if pool == "avg" else MaxPool(2, 2)
    layers: list[Layer] = []
    for c in channels:
        layers += [Conv(c, 3, 1, padding), act] * convs_per_stage + [pooling]
    layers.append(Flatten())
    for width in hidden:
        layers += [Dense(width), act]
    layers.append(Dense(1))
    cfg: dict[str, Any] = dict(channels=channels)
    if convs_per_stage != 2:
        cfg.update(convs_per_stage=convs_per_stage)
    if hidden != (512, 512):
        cfg.update(hidden=hidden)
    if pool != "avg":
        cfg.update(pool=pool)
    name = _family_name("lenet", input_shape, padding, activation, extra, **cfg)
    return build(layers, input_shape, init_cfg, apply_cfg, name)
