"""De Palma, Kiani & Lloyd 2021: the simplified residual network (ResNet v1 without batch norm)."""

from __future__ import annotations

import math
from typing import Any, Sequence

from jaxadv import _validate
from jaxadv.nets import _common
from jaxadv.nets._network import Network
from jaxadv.nets.activations import Activation as _ActivationFn
from jaxadv.nets.activations import activation_label, get_activation
from jaxadv.nets.layers import Activation, Conv, Dense, Flatten, Layer, Residual
from jaxadv.nets.sequential import build, check_image_shape, configs

__all__ = ["resnet"]


def resnet_layers(
    depth: int, filters: Sequence[int], padding: str, activation: str | _ActivationFn
) -> list[Layer]:
    n_stages = len(filters)
    n_blocks = (depth - 2) // (2 * n_stages)
    act = Activation(activation)
    layers: list[Layer] = [Conv(filters[0], 3, 1, padding), act]
    for stage, width in enumerate(filters):
        for block in range(n_blocks):
            stride = 2 if stage > 0 and block == 0 else 1
            main = (Conv(width, 3, stride, padding), act, Conv(width, 3, 1, padding))
            # The stem gives filters[0] channels, so only the strided blocks change the shape
            # and need the 1×1 projection (Keras' cifar10_resnet v1: `if stack > 0 and res_block == 0`).
            shortcut = (Conv(width, 1, stride, padding),) if stride == 2 else ()
            layers.append(Residual(main, shortcut, activation))
    return [*layers, Flatten(), Dense(1)]


def resnet(
    input_shape: Sequence[int],
    *,
    depth: int = 20,
    filters: Sequence[int] = (32, 64, 128),
    padding: str = "same",
    activation: str | _ActivationFn = "relu",
    bias: bool = False,
    bias_std: float = 1.0,
    weight_std: float = math.sqrt(2.0),
    dtype: Any = None,
    precision: str = "highest",
    conv_impl: str = "patches",
) -> Network:
    """The simplified residual network of De Palma et al. 2021 (their Figs. 1–4).

    As in the authors' code (``resnet_v1(input_shape, depth=20)``, adapted from Keras'
    ``cifar10_resnet``, with ``batch_normalization=False`` and no global pooling):

    * stem: conv 3×3 with ``filters[0]`` channels, then ReLU;
    * ``len(filters)`` stages of (depth − 2)/(2·len(filters)) residual blocks each (3 × 3
      for depth 20), the stage's width ``filters[i]``; a block is
      x ↦ ReLU(conv3×3(ReLU(conv3×3(x))) + shortcut(x)). The first block of every stage
      after the first has stride 2 in its first conv and a 1×1 stride-2 linear projection
      as shortcut; every other shortcut is the identity;
    * flatten (no global average pooling), then a dense scalar output (the authors' two
      logits give the class sign(logit₀ − logit₁): a scalar readout is the same model).

    Depth 20 with filters (32, 64, 128) has 22 parameterised layers (1 stem + 18 block convs
    + 2 projections + 1 dense); the spatial side after the two stride-2 stages is ⌈s/4⌉, so
    the dense fan-in is 128·⌈s/4⌉² and :func:`smoothness_m` is 4 when 4 divides s
    (s/⌈s/4⌉ otherwise).

    Initialisation: weights ~ N(0, σ_W²/fan_in) with σ_W² = 2 (He-normal), the Gaussian
    weights of the paper's theory. The authors' Keras code draws a truncated normal (±2σ)
    instead: a difference in distribution, assumed small and not tested. Positive
    homogeneity does not remove it: in a plain bias-free ReLU chain it makes each layer's
    weight scale irrelevant to the sign of f, never the shape of the distribution; and with
    identity shortcuts not even the scale (the residual branch scales as c² against the
    identity's 1). Biases:

    * ``bias=False`` (default): none. The authors' random networks have Keras' zero-
      initialised biases, which is the same function; their experiments use this.
    * ``bias=True``: every conv and the dense layer get biases ~ N(0, σ_b²), the random
      biases of the paper's text (σ_b = ``bias_std``).
    * ``bias=True, bias_std=0``: zero-initialised biases, to train (the authors' trained
      networks).

    Args:
      input_shape: image shape ``(H, W, C)``, e.g. ``(s, s, 3)``.
      depth: 2 + 2·len(filters)·(blocks per stage), e.g. 20, 32, 44 with three stages.
      filters: channels per stage (the paper: (32, 64, 128); smaller for quick runs).
      padding: ``"same"`` (zeros, the authors' code) or ``"wrap"`` (periodic) for every conv.
      activation: a name from :data:`jaxadv.nets.ACTIVATIONS` or an elementwise callable.
      bias: whether convs and the dense layer have biases (see above).
      bias_std: σ_b.
      weight_std: σ_W (√2, He).
      dtype: parameter dtype; ``None`` is JAX's default float.
      precision: ``"highest"`` (default) or ``"default"``.
      conv_impl: ``"patches"`` (default) or ``"xla"``; see :func:`sequential`.

    Returns:
      A :class:`Network` on inputs of shape ``input_shape``; params as :func:`sequential`:
      ``[stem conv, {}, block, …, block, {}, dense]`` with a block's params
      ``{"main": [conv, {}, conv], "shortcut": [] or [projection conv]}``.

    Examples:
      >>> import jax
      >>> from jaxadv import nets
      >>> net = nets.resnet((12, 12, 3), filters=(4, 8, 8))
      >>> net.apply(net.init(jax.random.key(0)), jax.numpy.ones((12, 12, 3))).shape
      ()
      >>> nets.smoothness_m(net)
      4.0
    """
    input_shape = check_image_shape(input_shape)
    depth = _validate.positive_int(depth, "depth")
    filters = _validate.int_sequence(filters, "filters")
    per_stage = 2 * len(filters)
    if depth < 2 + per_stage or (depth - 2) % per_stage != 0:
        raise ValueError(
            f"`depth` must be 2 + {per_stage}·k for k ≥ 1 blocks per stage with {len(filters)} stages "
            f"(e.g. {2 + per_stage}, {2 + 3 * per_stage}), got {depth}."
        )
    padding = _validate.choice(padding, "padding", ("same", "wrap"))
    get_activation(activation)
    init_cfg, apply_cfg, extra = configs(
        weight_std=weight_std, bias=bias, bias_std=bias_std, dtype=dtype, precision=precision, conv_impl=conv_impl
    )
    cfg: dict[str, Any] = dict(input_shape=input_shape, depth=depth, filters=filters)
    if padding != "same":
        cfg.update(padding=padding)
    if activation != "relu":
        cfg.update(activation=activation_label(activation))
    name = _common.describe("resnet", **cfg, **extra)
    return build(resnet_layers(depth, filters, padding, activation), input_shape, init_cfg, apply_cfg, name)
