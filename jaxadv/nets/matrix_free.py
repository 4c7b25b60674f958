"""Matrix-free Gaussian layers: weights drawn tile by tile from a key and never stored.

At width 10⁶ a dense 10⁶ × 10⁶ float32 layer holds 4 TB. A matrix-free layer holds a PRNG
key instead: row r of W is ``std · normal(fold_in(key, r), (fan_in,))``, and ``W @ x`` runs
over tiles of ``tile_rows`` rows (draw a tile, multiply, drop it). The backward pass draws the
tiles again (``jax.checkpoint`` around the tile loop's body, so reverse mode saves only the
key and the tile index), hence no weight-sized array exists at any point, forward or backward,
and any order of differentiation works.

Law and identity:

* A matrix-free layer's W has the dense layer's law (i.i.d. N(0, std²) entries) but is a
  DIFFERENT draw from the same key: dense weights are one ``normal(key, (rows, fan_in))``
  call, matrix-free ones one call per row. Dense draws are unchanged by this module. A
  network's name records which layers are matrix-free (``weights=...``), so results of the
  two never share a store entry.
* Keying rows (not tiles) makes the draw independent of ``tile_rows``: the tile size is a
  memory/speed knob, not part of the network's identity, so it is not in the name.
* :func:`materialize` builds the dense weights from the same tiles, and the dense network
  equal to a matrix-free one; tests compare against it. Tiles hold whole rows, so no row's
  sum is split, and the input gradient Σ_t W_tᵀ g_t sums over tiles; results agree with the
  dense network to float32 rounding, and are bitwise equal for one input when one tile
  covers the layer (the same product). With several tiles the forward values can still
  differ in the last bit: XLA chooses a product kernel, and its summation order, by the
  matrix's shape.

Speed: drawing the weights costs several times the matrix product they feed, and it is paid
on every forward and backward pass, once per call for all inputs of a batch (under
:mod:`jaxadv.kernels`' vmap over inputs the key is unbatched, so each tile is drawn once and
multiplies a ``(tile_rows, fan_in) @ (fan_in, n_x)`` block). Threefry keys (JAX's default)
draw through an unrolled hash with the same bits as ``jax.random.normal``
(:mod:`jaxadv.nets._sampling`); for dense draws on CPU that made threefry keys 1.0–1.5×
faster than ``philox4x32`` keys, where JAX's own lowering was 2.2–2.6× slower (the tile
draws use the same sampler; each implementation gives its own draw, of the same law; any
typed key works, and a raw ``uint32[2]`` key is read as JAX's default).

Examples:
  >>> import jax, jaxadv
  >>> net = jaxadv.nets.mlp(8, [16, 16], weights="matrix_free")
  >>> params = net.init(jax.random.key(0))
  >>> dense_net, dense_params = jaxadv.nets.materialize(net, params)
  >>> dense_params["hidden"][1]["W"].shape
  (16, 16)
"""

from __future__ import annotations

import dataclasses
import functools
import re
from typing import Any, Sequence

import jax
import jax.numpy as jnp

from jaxadv import _validate
from jaxadv.nets import _common, _sampling
from jaxadv.nets._network import Network, Params

WEIGHTS = ("auto", "dense", "matrix_free")

# ``weights="auto"`` makes a layer matrix-free when its dense weights would exceed this many
# bytes. A fixed number, not a fraction of this machine's memory, so that the same call gives
# the same network (and the same draw) on every machine. 4 GiB keeps every dense layer of the
# existing experiment grids dense (the largest, bubeck2021's paper-scale d = 10⁴ × k = 10⁵,
# is 4·10⁹ B) and still fits one network on a laptop; dtype=None counts as float32 so that
# the choice does not depend on the x64 flag either.
DENSE_LIMIT_BYTES = 2**32

# Default tile: at most this many bytes of weights drawn at once (per network). On CPU the
# speed is flat from ~30 rows to 256 MiB tiles; small tiles keep the memory planner's
# estimate (jaxadv.kernels sums every value in the jaxpr, and a draw has ~10 tile-sized
# steps that XLA fuses into one) well within budget. Larger tiles (``tile_rows``) amortise
# the per-tile loop overhead on GPUs at fan-ins of 10⁶.
TILE_BYTES = 2**24

_MAX_ROWS = 2**31 - 1  # row indices are folded into keys as 32-bit integers


@dataclasses.dataclass(frozen=True)
class GaussianMatrix:
    """A ``(rows, cols)`` matrix with i.i.d. N(0, std²) entries, represented by a PRNG key.

    Row r is ``std · jax.random.normal(jax.random.fold_in(key, r), (cols,), dtype)``.

    Attributes:
      rows: output dimension.
      cols: input dimension (fan-in).
      std: standard deviation of every entry.
      dtype: entry dtype name, or ``None`` for JAX's default float.
      tile_rows: rows drawn at once, or ``None`` for tiles of at most :data:`TILE_BYTES`.
        Does not change the draw.
      precision: ``"highest"`` or ``"default"`` matrix-product precision.
    """

    rows: int
    cols: int
    std: float
    dtype: Any = None
    tile_rows: int | None = None
    precision: str = "highest"

    def __post_init__(self) -> None:
        _validate.positive_int(self.rows, "rows")
        _validate.positive_int(self.cols, "cols")
        if self.rows > _MAX_ROWS:
            raise ValueError(f"`rows` must be at most {_MAX_ROWS} (rows are keyed by 32-bit indices), got {self.rows}.")
        _validate.optional_positive_int(self.tile_rows, "tile_rows")

    def tile_size(self) -> int:
        """Rows per tile: ``tile_rows``, or as many as fit :data:`TILE_BYTES`, rounded down to
        a multiple of 8 (at least one row; at most ``rows``)."""
        if self.tile_rows is not None:
            return min(self.tile_rows, self.rows)
        itemsize = _common.param_dtype(self.dtype).itemsize
        size = TILE_BYTES // (self.cols * itemsize)
        # Whole blocks of 8 rows, the row blocking of vector units and product kernels.
        size = size - size % 8 if size >= 8 else max(size, 1)
        return min(size, self.rows)

    def n_tiles(self) -> int:
        return -(-self.rows // self.tile_size())

    def tile(self, key: jax.Array, t: jax.Array) -> jax.Array:
        """Rows ``[t·T, (t+1)·T)`` of W, shape ``(T, cols)`` with T = :meth:`tile_size`.

        Rows past ``rows`` (last tile only, when T does not divide ``rows``) are drawn from
        their own keys like any other and discarded by the callers.
        """
        size = self.tile_size()
        rows = (t * size + jnp.arange(size)).astype(jnp.uint32)
        keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(key, rows)
        dtype = _common.param_dtype(self.dtype)
        return self.std * jax.vmap(lambda k: _sampling.normal(k, (self.cols,), dtype))(keys)

    def matvec(self, key: jax.Array, x: jax.Array) -> jax.Array:
        """``W @ x`` for ONE vector ``x`` of shape ``(cols,)``; returns ``(rows,)``."""
        if jnp.shape(x) != (self.cols,):
            raise ValueError(f"`x` must have shape ({self.cols},) for this layer, got {jnp.shape(x)}.")
        return _matvec(self, key, x)

    def rmatvec(self, key: jax.Array, y: jax.Array) -> jax.Array:
        """``Wᵀ @ y`` for ONE vector ``y`` of shape ``(rows,)``; returns ``(cols,)``.

        The tiles' contributions are summed in tile order (tile by tile, never holding W),
        so the result equals the dense product to float rounding of a split summation.
        """
        if jnp.shape(y) != (self.rows,):
            raise ValueError(f"`y` must have shape ({self.rows},) for this layer, got {jnp.shape(y)}.")
        return _rmatvec(self, key, y)

    def materialize(self, key: jax.Array) -> jax.Array:
        """The dense ``(rows, cols)`` W, drawn from the same tiles (needs the memory W needs)."""
        return _materialize(self, key)


# Jitted with the (hashable) layer static: called outside jit, e.g. net.apply(params, x) on
# one input, the tile loop compiles once per layer shape instead of once per call.
@functools.partial(jax.jit, static_argnums=0)
def _matvec(spec: GaussianMatrix, key: jax.Array, x: jax.Array) -> jax.Array:
    precision = _common.PRECISIONS[spec.precision]
    # Saving nothing makes reverse mode draw each tile again instead of stacking all of them
    # as residuals (which would be W itself).
    one_tile = jax.checkpoint(
        lambda t: jnp.matmul(spec.tile(key, t), x, precision=precision),
        policy=jax.checkpoint_policies.nothing_saveable,
        prevent_cse=False,  # inside a scan, CSE across iterations cannot happen
    )
    z = jax.lax.map(one_tile, jnp.arange(spec.n_tiles()))
    return z.reshape(-1)[: spec.rows]


@functools.partial(jax.jit, static_argnums=0)
def _rmatvec(spec: GaussianMatrix, key: jax.Array, y: jax.Array) -> jax.Array:
    precision = _common.PRECISIONS[spec.precision]
    size = spec.tile_size()
    # Rows past `rows` in the last tile meet zeros, so they add nothing.
    y_tiles = jnp.pad(y, (0, spec.n_tiles() * size - spec.rows)).reshape(spec.n_tiles(), size)

    def add_tile(acc, t):
        return acc + jnp.matmul(y_tiles[t], spec.tile(key, t), precision=precision), None

    acc, _ = jax.lax.scan(add_tile, jnp.zeros((spec.cols,), jnp.result_type(y.dtype, _common.param_dtype(spec.dtype))),
                          jnp.arange(spec.n_tiles()))
    return acc


@functools.partial(jax.jit, static_argnums=0)
def _materialize(spec: GaussianMatrix, key: jax.Array) -> jax.Array:
    w = jax.lax.map(lambda t: spec.tile(key, t), jnp.arange(spec.n_tiles()))
    return w.reshape(-1, spec.cols)[: spec.rows]


def choose(weights: str | Sequence[str], shapes: Sequence[tuple[int, int]], dtype: Any) -> tuple[bool, ...]:
    """Which layers are matrix-free, for ``weights`` and the layers' ``(rows, cols)`` shapes.

    ``"dense"``/``"matrix_free"`` apply to every layer; ``"auto"`` makes exactly the layers
    whose dense weights exceed :data:`DENSE_LIMIT_BYTES` matrix-free (``dtype=None`` counted
    as float32); a sequence of ``"dense"``/``"matrix_free"``, one per layer, chooses each
    (the form a mixed network's name records).
    """
    if not isinstance(weights, str) and isinstance(weights, Sequence):
        if len(weights) != len(shapes) or not all(w in ("dense", "matrix_free") for w in weights):
            raise ValueError(
                f"`weights` must be one of {sorted(WEIGHTS)} or a sequence of {len(shapes)} entries "
                f"'dense'/'matrix_free' (one per layer), got {weights!r}."
            )
        return tuple(w == "matrix_free" for w in weights)
    weights = _validate.choice(weights, "weights", WEIGHTS)
    if weights != "auto":
        return tuple(weights == "matrix_free" for _ in shapes)
    itemsize = 4 if dtype is None else jnp.dtype(dtype).itemsize
    return tuple(r * c * itemsize > DENSE_LIMIT_BYTES for r, c in shapes)


def check_tile_rows(tile_rows: Any) -> int | None:
    return _validate.optional_positive_int(tile_rows, "tile_rows")


def name_entry(free: Sequence[bool]) -> dict[str, Any]:
    """The ``weights=...`` entry of a network's name: empty when every layer is dense, so the
    names (and store entries) of dense networks are those they always had."""
    if not any(free):
        return {}
    if all(free):
        return {"weights": "matrix_free"}
    return {"weights": tuple("matrix_free" if f else "dense" for f in free)}


_WEIGHTS_ENTRY = re.compile(r", weights=(?:'matrix_free'|\([^()]*\))\)$")


def materialize(net: Network, params: Params) -> tuple[Network, Params]:
    """The dense network and dense params equal to a matrix-free ``net`` with ``params``.

    Every matrix-free layer's W is drawn from the same tiles as :meth:`GaussianMatrix.matvec`
    draws them; every other parameter is passed through. The dense network computes the same
    function (to float32 rounding, see the module docstring) and is what tests compare with.

    Args:
      net: an ``mlp`` or ``two_layer`` network (a dense one is returned unchanged).
      params: ``net.init``'s params for one network, or many stacked on a leading axis (as
        :func:`jaxadv.kernels.init_many` returns).

    Returns:
      ``(dense_net, dense_params)``; ``dense_net`` is the network the same constructor call
      with ``weights="dense"`` gives.

    Raises:
      TypeError: if ``net`` is not a family with matrix-free layers.
    """
    if not isinstance(net, Network):
        raise TypeError(f"`net` must be a jaxadv.nets.Network, got {type(net).__name__}.")
    if not hasattr(net.init, "materialize") or not hasattr(net.init, "free"):
        raise TypeError(f"`net` must be an mlp or two_layer network (families with matrix-free layers), got {net.name}.")
    if not any(f is not None for f in net.init.free):
        return net, params
    none = (None,) * len(net.init.free)
    dense = Network(
        dataclasses.replace(net.init, free=none),
        dataclasses.replace(net.apply, free=none),
        net.input_shape,
        _WEIGHTS_ENTRY.sub(")", net.name),
    )
    keys = [leaf for leaf in jax.tree.leaves(params) if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key)]
    if not keys or keys[0].ndim > 1:
        raise ValueError(f"`params` must be {net.name}'s params for one network or a stack of them (see net.init).")
    return dense, _materialize_params(net.init, params, batched=keys[0].ndim == 1)


@functools.partial(jax.jit, static_argnames=("init", "batched"))
def _materialize_params(init: Any, params: Params, *, batched: bool) -> Params:
    return jax.vmap(init.materialize)(params) if batched else init.materialize(params)
