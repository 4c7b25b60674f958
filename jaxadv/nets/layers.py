"""Building blocks of convolutional and residual networks, acting on ONE image ``(H, W, C)``.

Each layer is a frozen dataclass (so two networks built from equal layers compare and hash
equal, and jitted kernels are reused) with three methods:

* ``output_shape(shape) -> shape``: shape inference; raises ``ValueError`` for an input the
  layer cannot take (a kernel larger than the image, a convolution on a vector, …);
* ``param_specs(shape, cfg) -> specs``: the layer's parameters for an input of ``shape``, as
  a dict of :class:`ParamSpec` (shape and standard deviation of a centred Gaussian; ``{}``
  for layers without parameters);
* ``apply(params, h, cfg) -> h``: the layer on one activation ``h`` of that shape, with
  ``params`` the dict of arrays drawn from the specs.

Compose them with :func:`jaxadv.nets.sequential`, which checks the shapes and returns a
:class:`~jaxadv.nets.Network`:

  >>> import jax
  >>> from jaxadv import nets
  >>> from jaxadv.nets import layers as L
  >>> net = nets.sequential(
  ...     [L.Conv(8), L.Activation("relu"), L.AvgPool(2), L.Flatten(), L.Dense(1)], (6, 6, 3))
  >>> net.apply(net.init(jax.random.key(0)), jax.numpy.ones((6, 6, 3))).shape
  ()

Initialisation (De Palma et al. 2021's random networks; He-normal in their code): every
weight of a layer is drawn from N(0, σ_W²/fan_in), with fan_in = kh·kw·C_in for a
convolution and d_in for a dense layer; biases, when the network has them, from N(0, σ_b²).
σ_W, σ_b and whether there are biases are set per network (:class:`InitConfig`). All
tensors are read, in layer order, from one stream of standard normals cut into blocks of
:data:`BLOCK` values, block j being ``normal(fold_in(key, j))``; each tensor starts on a
fresh block. A tensor's draw thus depends only on the key and the sizes of the tensors
before it, never on later layers, and the whole network is drawn by ONE vmapped sampler
(compiling one sampler per tensor costs ~0.2 s each on CPU, seconds for a ResNet).

Conventions: images are ``(H, W, C)`` (channels last), convolution kernels ``(kh, kw, C_in,
C_out)`` (HWIO) and dense weights ``(d_in, d_out)``. ``"same"`` padding follows
TensorFlow/Keras (output ⌈H/stride⌉, the odd extra pad row at the bottom/right), as in the
authors' code; ``"wrap"`` pads the same amounts periodically (a circular convolution: the
image lives on a torus, as in the paper's theoretical setup); ``"valid"`` does not pad.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any, Sequence

import jax
import jax.numpy as jnp
from jax import lax

from jaxadv import _validate
from jaxadv.nets import _common, _sampling
from jaxadv.nets.activations import Activation as _ActivationFn
from jaxadv.nets.activations import activation_label, get_activation

__all__ = [
    "BLOCK",
    "CONV_IMPLS",
    "PADDINGS",
    "ApplyConfig",
    "Activation",
    "AvgPool",
    "Conv",
    "Dense",
    "Flatten",
    "InitConfig",
    "Layer",
    "MaxPool",
    "ParamSpec",
    "Residual",
    "apply_layers",
    "init_layers",
    "last_image_shape",
    "output_shapes",
    "param_specs",
]

PADDINGS = ("same", "wrap", "valid")
CONV_IMPLS = ("patches", "xla")
BLOCK = 1024  # standard normals per block of the initialisation stream

Shape = tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class InitConfig:
    """How a network draws its parameters (one setting for all its layers).

    Attributes:
      weight_std: σ_W; weights ~ N(0, σ_W²/fan_in) (√2: He-normal).
      bias: whether convolutions and dense layers have biases.
      bias_std: σ_b; biases ~ N(0, σ_b²) (0 gives zero-initialised biases, e.g. to train).
      dtype: parameter dtype name, or ``None`` for JAX's default float.
    """

    weight_std: float = math.sqrt(2.0)
    bias: bool = False
    bias_std: float = 1.0
    dtype: Any = None


@dataclasses.dataclass(frozen=True)
class ApplyConfig:
    """How a network evaluates its layers.

    Attributes:
      precision: ``"highest"`` or ``"default"`` for convolutions and matrix products.
      conv_impl: ``"patches"`` (gather the kh·kw shifted views of the image and do one matrix
        product) or ``"xla"`` (``lax.conv_general_dilated``). Same numbers up to float
        rounding. Under ``vmap`` over networks (as :mod:`jaxadv.kernels` batches) XLA turns a
        convolution with batched weights into a grouped convolution, which ran 1.5–3× slower
        on CPU than the batched matrix product of ``"patches"`` (value and input gradient of
        the paper's ResNet-20, 4 networks × 10 images, s = 12 and 32); ``"xla"`` compiles
        2–3× faster, so it suits short runs, and may be the better choice where a vendor
        convolution library is fast (not measured on GPU).
    """

    precision: str = "highest"
    conv_impl: str = "patches"


@dataclasses.dataclass(frozen=True)
class ParamSpec:
    """One parameter tensor, drawn from N(0, std²) entrywise.

    Attributes:
      shape: the tensor's shape.
      std: the standard deviation (0 gives zeros).
    """

    shape: tuple[int, ...]
    std: float


class Layer:
    """Base class of the layers: see the module docstring for the three methods.

    A new layer is a frozen dataclass deriving from this class that implements
    ``output_shape`` and ``apply`` (and ``param_specs`` if it has parameters).
    """

    def output_shape(self, shape: Shape) -> Shape:
        raise NotImplementedError

    def param_specs(self, shape: Shape, cfg: InitConfig) -> Any:
        return {}

    def apply(self, params: Any, h: jax.Array, cfg: ApplyConfig) -> jax.Array:
        raise NotImplementedError


# ---------------------------------------------------------------------------------------
# argument checks and shape arithmetic


def _pair(value: Any, name: str, *, allow_none: bool = False) -> tuple[int, int] | None:
    if value is None and allow_none:
        return None
    pair = (value, value) if isinstance(value, numbers.Integral) and not isinstance(value, bool) else value
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise TypeError(f"`{name}` must be a positive integer or a pair of them, got {value!r}.")
    for v in pair:
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise TypeError(f"`{name}` must be a positive integer or a pair of them, got {value!r}.")
        if v <= 0:
            raise ValueError(f"`{name}` must be positive, got {value!r}.")
    return (int(pair[0]), int(pair[1]))


def _image(shape: Shape, what: str) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise ValueError(f"{what} acts on images of shape (H, W, C), got an input of shape {shape}.")
    return shape  # type: ignore[return-value]


def _window_fits(window: tuple[int, int], shape: Shape, what: str) -> None:
    if window[0] > shape[0] or window[1] > shape[1]:
        raise ValueError(
            f"the {what} {window[0]}×{window[1]} is larger than the input image {shape[0]}×{shape[1]}."
        )


def _padding_1d(n: int, k: int, stride: int, padding: str) -> tuple[int, int, int]:
    """(output size, pad before, pad after) along one spatial axis of size n."""
    if padding == "valid":
        return (n - k) // stride + 1, 0, 0
    out = -(-n // stride)
    total = max((out - 1) * stride + k - n, 0)
    return out, total // 2, total - total // 2


def _weights_and_bias(w_shape: Shape, fan_in: int, n_out: int, cfg: InitConfig) -> dict[str, ParamSpec]:
    specs = {"W": ParamSpec(tuple(w_shape), cfg.weight_std / math.sqrt(fan_in))}
    if cfg.bias:
        specs["b"] = ParamSpec((n_out,), cfg.bias_std)
    return specs


# ---------------------------------------------------------------------------------------
# layers


@dataclasses.dataclass(frozen=True)
class Conv(Layer):
    """2-D convolution (cross-correlation, as in every deep-learning library).

    out[i, j, o] = Σ_{u, v, c} x_pad[i·s_h + u, j·s_w + v, c] · W[u, v, c, o] (+ b[o]).

    Attributes:
      features: output channels C_out.
      kernel: (kh, kw), or one int for a square kernel.
      stride: (s_h, s_w), or one int.
      padding: ``"same"`` (zeros), ``"wrap"`` (periodic) or ``"valid"`` (none); see the
        module docstring. Output ⌈H/s⌉ × ⌈W/s⌉, or ⌊(H − kh)/s⌋ + 1 for ``"valid"`` (which
        needs kh ≤ H, kw ≤ W; padded convolutions take kernels larger than the image, and
        ``"wrap"`` then wraps around the torus more than once).

    Params: ``{"W": (kh, kw, C_in, C_out), "b": (C_out,)}`` (no ``"b"`` without biases).
    """

    features: int
    kernel: int | tuple[int, int] = 3
    stride: int | tuple[int, int] = 1
    padding: str = "same"

    def __post_init__(self) -> None:
        object.__setattr__(self, "features", _validate.positive_int(self.features, "features"))
        object.__setattr__(self, "kernel", _pair(self.kernel, "kernel"))
        object.__setattr__(self, "stride", _pair(self.stride, "stride"))
        object.__setattr__(self, "padding", _validate.choice(self.padding, "padding", PADDINGS))

    def _geometry(self, shape: Shape) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
        return tuple(_padding_1d(shape[a], self.kernel[a], self.stride[a], self.padding) for a in (0, 1))  # type: ignore[return-value]

    def output_shape(self, shape: Shape) -> Shape:
        _image(shape, "Conv")
        if self.padding == "valid":
            # Padded convolutions take any image (a 3×3 "same" conv on the 2×2 maps of a
            # ResNet's last stage at s = 8, as Keras allows); unpadded ones need room.
            _window_fits(self.kernel, shape, "kernel")
        (oh, _, _), (ow, _, _) = self._geometry(shape)
        return (oh, ow, self.features)

    def param_specs(self, shape: Shape, cfg: InitConfig) -> dict[str, ParamSpec]:
        kh, kw = self.kernel
        c_in = shape[2]
        return _weights_and_bias((kh, kw, c_in, self.features), kh * kw * c_in, self.features, cfg)

    def apply(self, params: dict[str, Any], h: jax.Array, cfg: ApplyConfig) -> jax.Array:
        (oh, lo_h, hi_h), (ow, lo_w, hi_w) = self._geometry(h.shape)
        pads = ((lo_h, hi_h), (lo_w, hi_w))
        W = params["W"]
        precision = _common.PRECISIONS[cfg.precision]
        if self.padding == "wrap" and (lo_h or hi_h or lo_w or hi_w):
            h = jnp.pad(h, (*pads, (0, 0)), mode="wrap")
            pads = ((0, 0), (0, 0))
        if cfg.conv_impl == "xla":
            dt = jnp.result_type(h, W)
            out = lax.conv_general_dilated(
                h.astype(dt)[None],
                W.astype(dt),
                self.stride,
                pads,
                dimension_numbers=("NHWC", "HWIO", "NHWC"),
                precision=precision,
            )[0]
        else:
            out = _conv_patches(h, W, self.stride, pads, (oh, ow), precision)
        return out + params["b"] if "b" in params else out


def _conv_patches(h, W, stride, pads, out_hw, precision) -> jax.Array:
    # im2col: the kh·kw strided views of the padded image side by side, then one matrix
    # product with the kernel read as a (kh·kw·C_in, C_out) matrix. vmap over networks turns
    # the product into a batched matmul (fast everywhere) rather than a grouped convolution.
    kh, kw, c_in, c_out = W.shape
    if any(p for pair in pads for p in pair):
        h = jnp.pad(h, (*pads, (0, 0)))
    (sh, sw), (oh, ow) = stride, out_hw
    # Two passes (kw column views, then kh row views of those) build the (u, v, c)-ordered
    # patches with kh + kw slices instead of kh·kw.
    rows = h.shape[0]
    cols = [lax.slice(h, (0, v, 0), (rows, v + (ow - 1) * sw + 1, c_in), (1, sw, 1)) for v in range(kw)]
    wide = cols[0] if kw == 1 else jnp.concatenate(cols, axis=-1)
    views = [lax.slice(wide, (u, 0, 0), (u + (oh - 1) * sh + 1, ow, kw * c_in), (sh, 1, 1)) for u in range(kh)]
    patches = views[0] if kh == 1 else jnp.concatenate(views, axis=-1)
    return jnp.matmul(patches, W.reshape(kh * kw * c_in, c_out), precision=precision)


@dataclasses.dataclass(frozen=True)
class _Pool(Layer):
    window: int | tuple[int, int] = 2
    stride: int | tuple[int, int] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "window", _pair(self.window, "window"))
        stride = _pair(self.stride, "stride", allow_none=True)
        object.__setattr__(self, "stride", self.window if stride is None else stride)

    def output_shape(self, shape: Shape) -> Shape:
        _image(shape, type(self).__name__)
        _window_fits(self.window, shape, "pooling window")
        oh = _padding_1d(shape[0], self.window[0], self.stride[0], "valid")[0]
        ow = _padding_1d(shape[1], self.window[1], self.stride[1], "valid")[0]
        return (oh, ow, shape[2])

    def _reduce(self, h: jax.Array, op: str) -> jax.Array:
        (wh, ww), (sh, sw) = self.window, self.stride
        oh, ow, c = self.output_shape(h.shape)
        if (wh, ww) == (sh, sw):
            # Non-overlapping windows: one reshape and one reduction.
            blocks = h[: oh * wh, : ow * ww].reshape(oh, wh, ow, ww, c)
            return jnp.mean(blocks, axis=(1, 3)) if op == "avg" else jnp.max(blocks, axis=(1, 3))
        # Overlapping windows: combine the wh·ww strided views (small windows; differentiable
        # and batched by vmap like any elementwise op).
        views = [
            lax.slice(h, (u, v, 0), (u + (oh - 1) * sh + 1, v + (ow - 1) * sw + 1, c), (sh, sw, 1))
            for u in range(wh)
            for v in range(ww)
        ]
        if op == "avg":
            return sum(views[1:], views[0]) / (wh * ww)
        out = views[0]
        for view in views[1:]:
            out = jnp.maximum(out, view)
        return out


@dataclasses.dataclass(frozen=True)
class AvgPool(_Pool):
    """Average pooling over ``window`` with ``stride`` (default: the window), no padding.

    Output ⌊(H − wh)/s_h⌋ + 1 × ⌊(W − ww)/s_w⌋ + 1 × C (Keras' ``AveragePooling2D``).
    """

    def apply(self, params: Any, h: jax.Array, cfg: ApplyConfig) -> jax.Array:
        return self._reduce(h, "avg")


@dataclasses.dataclass(frozen=True)
class MaxPool(_Pool):
    """Max pooling over ``window`` with ``stride`` (default: the window), no padding."""

    def apply(self, params: Any, h: jax.Array, cfg: ApplyConfig) -> jax.Array:
        return self._reduce(h, "max")


@dataclasses.dataclass(frozen=True)
class Flatten(Layer):
    """Flattens an activation to a vector, in row-major (H, W, C) order as Keras does."""

    def output_shape(self, shape: Shape) -> Shape:
        return (math.prod(shape),)

    def apply(self, params: Any, h: jax.Array, cfg: ApplyConfig) -> jax.Array:
        return jnp.reshape(h, (-1,))


@dataclasses.dataclass(frozen=True)
class Dense(Layer):
    """Fully connected layer on a vector: h ↦ hᵀW (+ b).

    Params: ``{"W": (d_in, features), "b": (features,)}`` (no ``"b"`` without biases).
    """

    features: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "features", _validate.positive_int(self.features, "features"))

    def output_shape(self, shape: Shape) -> Shape:
        if len(shape) != 1:
            raise ValueError(f"Dense acts on vectors; put Flatten() before it (got an input of shape {shape}).")
        return (self.features,)

    def param_specs(self, shape: Shape, cfg: InitConfig) -> dict[str, ParamSpec]:
        return _weights_and_bias((shape[0], self.features), shape[0], self.features, cfg)

    def apply(self, params: dict[str, Any], h: jax.Array, cfg: ApplyConfig) -> jax.Array:
        out = jnp.matmul(h, params["W"], precision=_common.PRECISIONS[cfg.precision])
        return out + params["b"] if "b" in params else out


@dataclasses.dataclass(frozen=True)
class Activation(Layer):
    """Elementwise activation: a name from :data:`jaxadv.nets.ACTIVATIONS` or a callable."""

    fn: str | _ActivationFn = "relu"

    def __post_init__(self) -> None:
        get_activation(self.fn, "fn")

    def __repr__(self) -> str:
        return f"Activation({activation_label(self.fn)!r})"

    def output_shape(self, shape: Shape) -> Shape:
        return shape

    def apply(self, params: Any, h: jax.Array, cfg: ApplyConfig) -> jax.Array:
        return get_activation(self.fn)(h)


@dataclasses.dataclass(frozen=True)
class Residual(Layer):
    """A skip connection: h ↦ σ(main(h) + shortcut(h)).

    Attributes:
      main: the layers of the main path.
      shortcut: the layers of the shortcut; ``()`` is the identity. A strided main path
        needs a projection, e.g. ``(Conv(features, kernel=1, stride=2),)`` as in He et al.
        2016's ResNet v1 (option B).
      activation: σ applied to the sum (a name or a callable), or ``None`` for none.

    Params: ``{"main": [per layer], "shortcut": [per layer]}``.
    """

    main: Sequence[Layer]
    shortcut: Sequence[Layer] = ()
    activation: str | _ActivationFn | None = "relu"

    def __post_init__(self) -> None:
        object.__setattr__(self, "main", _layer_tuple(self.main, "main", allow_empty=False))
        object.__setattr__(self, "shortcut", _layer_tuple(self.shortcut, "shortcut", allow_empty=True))
        if self.activation is not None:
            get_activation(self.activation, "activation")

    def output_shape(self, shape: Shape) -> Shape:
        main = output_shapes(self.main, shape, "main")[-1]
        short = output_shapes(self.shortcut, shape, "shortcut")[-1]
        if main != short:
            raise ValueError(
                f"the main path gives shape {main} but the shortcut gives {short}; they are added, so they "
                "must agree (a strided or channel-changing main path needs a projection shortcut such as "
                "Conv(features, kernel=1, stride=2))."
            )
        return main

    def param_specs(self, shape: Shape, cfg: InitConfig) -> dict[str, Any]:
        return {"main": param_specs(self.main, shape, cfg), "shortcut": param_specs(self.shortcut, shape, cfg)}

    def apply(self, params: dict[str, Any], h: jax.Array, cfg: ApplyConfig) -> jax.Array:
        out = apply_layers(self.main, params["main"], h, cfg) + apply_layers(self.shortcut, params["shortcut"], h, cfg)
        return out if self.activation is None else get_activation(self.activation)(out)


# ---------------------------------------------------------------------------------------
# composition


def _layer_tuple(layers: Any, name: str, *, allow_empty: bool) -> tuple[Layer, ...]:
    if isinstance(layers, Layer) or not isinstance(layers, Sequence) or isinstance(layers, str):
        raise TypeError(f"`{name}` must be a list of layers (jaxadv.nets.layers.Conv, Dense, …), got {layers!r}.")
    layers = tuple(layers)
    if not layers and not allow_empty:
        raise ValueError(f"`{name}` must contain at least one layer.")
    for i, layer in enumerate(layers):
        if not isinstance(layer, Layer):
            raise TypeError(
                f"`{name}[{i}]` must be a layer (an instance of jaxadv.nets.layers.Layer, e.g. Conv(32)), "
                f"got {layer!r}."
            )
    return layers


def output_shapes(layers: Sequence[Layer], shape: Shape, where: str = "layers") -> list[Shape]:
    """Shape inference: ``[shape, shape after layer 0, …, shape after the last layer]``.

    Raises:
      ValueError: naming the first layer (``where[i]``) that cannot take its input.
    """
    shapes = [tuple(shape)]
    for i, layer in enumerate(layers):
        try:
            shapes.append(tuple(layer.output_shape(shapes[-1])))
        except ValueError as e:
            raise ValueError(f"`{where}[{i}]` ({layer!r}) cannot take an input of shape {shapes[-1]}: {e}") from None
    return shapes


def param_specs(layers: Sequence[Layer], shape: Shape, cfg: InitConfig) -> list[Any]:
    """The :class:`ParamSpec` pytree of a stack of layers for an input of ``shape``."""
    specs, shape = [], tuple(shape)
    for layer in layers:
        specs.append(layer.param_specs(shape, cfg))
        shape = tuple(layer.output_shape(shape))
    return specs


def init_layers(layers: Sequence[Layer], key: jax.Array, shape: Shape, cfg: InitConfig) -> list[Any]:
    """Draws the parameters of a stack of layers (see the module docstring for the stream).

    Args:
      layers: the stack.
      key: a PRNG key.
      shape: the stack's input shape.
      cfg: the initialisation settings.

    Returns:
      The :func:`param_specs` pytree with each spec replaced by its array.
    """
    specs, treedef = jax.tree.flatten(param_specs(layers, shape, cfg))
    dtype = _common.param_dtype(cfg.dtype)
    n_blocks = [-(-math.prod(s.shape) // BLOCK) for s in specs]
    total = sum(n_blocks)
    if total == 0:
        return jax.tree.unflatten(treedef, [])
    stream = jax.vmap(lambda j: _sampling.normal(jax.random.fold_in(key, j), (BLOCK,), dtype))(jnp.arange(total))
    leaves, start = [], 0
    for spec, n in zip(specs, n_blocks):
        flat = stream[start : start + n].reshape(-1)[: math.prod(spec.shape)]
        leaves.append(jnp.asarray(spec.std, dtype) * flat.reshape(spec.shape))
        start += n
    return jax.tree.unflatten(treedef, leaves)


def apply_layers(layers: Sequence[Layer], params: Sequence[Any], h: jax.Array, cfg: ApplyConfig) -> jax.Array:
    """The stack of layers on one activation ``h``."""
    for layer, p in zip(layers, params):
        h = layer.apply(p, h, cfg)
    return h


def last_image_shape(layers: Sequence[Layer], shape: Shape) -> Shape | None:
    """Shape of the last image-shaped (rank-3) activation of a stack, including its input,
    looking inside residual main paths; ``None`` if there is none."""
    last = tuple(shape) if len(shape) == 3 else None
    for layer in layers:
        if isinstance(layer, Residual):
            inner = last_image_shape(layer.main, shape)
            last = inner if inner is not None else last
        shape = tuple(layer.output_shape(shape))
        if len(shape) == 3:
            last = shape
    return last

