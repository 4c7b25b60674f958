"""Batched forward and input-gradient kernels: the one place where batching happens.

Every per-example function in jaxadv (``net.apply``, every attack) acts on one network and
one input. This module maps such a function over many networks and many inputs:

* ``params`` for ONE network (the pytree ``net.init`` returns) or for MANY (the same pytree
  with a leading network axis, as :func:`init_many` returns);
* inputs shared by all networks, shape ``(n_x, *input_shape)``, or drawn per network, shape
  ``(n_net, n_x, *input_shape)``;
* outputs with leading axes ``(n_net, n_x)`` (many networks) or ``(n_x,)`` (one network).

When a batch would not fit in memory, it runs in chunks (a ``lax.map`` over blocks of
networks, then of inputs); the numbers are those of the unchunked call. ``chunk_size`` (pairs
per block) or ``max_bytes`` overrides the automatic choice.

Example:
  >>> import jax, jaxadv
  >>> net = jaxadv.nets.two_layer(d=50, k=100)
  >>> params = jaxadv.kernels.init_many(net, jax.random.key(0), 8)
  >>> xs = jaxadv.data.sphere(jax.random.key(1), 16, 50)
  >>> out = jaxadv.kernels.evaluate(net, params, xs)
  >>> out.f.shape, out.grad.shape
  ((8, 16), (8, 16, 50))
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp

from jaxadv import _memory, _validate
from jaxadv.nets._network import Network, Params

__all__ = [
    "Evaluation",
    "Layout",
    "evaluate",
    "forward",
    "init_many",
    "layout",
    "map_nets",
    "map_pairs",
    "value_and_input_grad",
]


class Evaluation(NamedTuple):
    """Outputs and input gradients of a batch.

    Attributes:
      f: ``(n_net, n_x)`` or ``(n_x,)`` outputs f(x).
      grad: ``(n_net, n_x, *input_shape)`` or ``(n_x, *input_shape)`` gradients ∇ₓf(x).
    """

    f: jax.Array
    grad: jax.Array


class Layout(NamedTuple):
    """How params and inputs are batched.

    Attributes:
      n_net: number of networks, or ``None`` for one unbatched network.
      n_x: inputs per network.
      per_net_inputs: whether inputs have their own leading network axis.
    """

    n_net: int | None
    n_x: int
    per_net_inputs: bool


# ---------------------------------------------------------------------------------------
# per-example kernels


@dataclasses.dataclass(frozen=True)
class _ValueAndGrad:
    # A value-hashable wrapper: equal ``apply`` gives an equal kernel, so jit caches hit.
    apply: Callable[[Params, jax.Array], jax.Array]

    def __call__(self, params: Params, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        return jax.value_and_grad(self.apply, argnums=1)(params, x)


@functools.lru_cache(maxsize=256)
def value_and_input_grad(apply: Callable[[Params, jax.Array], jax.Array]) -> Callable:
    """``fn(params, x) -> (f(x), ∇ₓf(x))`` for ONE input, jit-compiled.

    Args:
      apply: a scalar-valued ``apply(params, x)``, e.g. ``net.apply``.

    Returns:
      The jitted function; vmap it yourself or use :func:`evaluate` for batches.
    """
    if not callable(apply):
        raise TypeError(f"`apply` must be callable, e.g. net.apply, got {type(apply).__name__}.")
    return jax.jit(_ValueAndGrad(apply))


@dataclasses.dataclass(frozen=True)
class _Forward:
    apply: Callable[[Params, jax.Array], jax.Array]

    def __call__(self, params: Params, x: jax.Array) -> jax.Array:
        return self.apply(params, x)


# ---------------------------------------------------------------------------------------
# networks


def _check_network(net: Any) -> Network:
    if not isinstance(net, Network):
        raise TypeError(f"`net` must be a jaxadv.nets.Network (e.g. jaxadv.nets.mlp(...)), got {type(net).__name__}.")
    return net


@functools.partial(jax.jit, static_argnames=("net", "n"))
def _init_many(net: Network, key: jax.Array, n: int) -> Params:
    return jax.vmap(net.init)(jax.random.split(key, n))


def init_many(net: Network, key: jax.Array, n: int) -> Params:
    """Parameters of ``n`` independent networks, stacked on a leading axis.

    Network ``j`` equals ``net.init(jax.random.split(key, n)[j])``, so any one network of a
    sweep can be rebuilt alone.

    Args:
      net: the network family.
      key: a PRNG key.
      n: number of networks.

    Returns:
      ``net.init``'s pytree with every leaf of shape ``(n, *leaf_shape)``.
    """
    net = _check_network(net)
    key = _validate.key(key)
    n = _validate.positive_int(n, "n")
    return _init_many(net, key, n)


@functools.lru_cache(maxsize=256)
def _param_shapes(net: Network) -> Any:
    return jax.eval_shape(net.init, jax.random.key(0))


def layout(net: Network, params: Params, xs: jax.Array) -> Layout:
    """Reads how ``params`` and ``xs`` are batched, checking that they fit ``net``.

    Raises:
      ValueError: if ``params`` is not ``net.init``'s pytree (with or without one leading
        network axis), or ``xs`` does not have one of the shapes in the module docstring.
    """
    net = _check_network(net)
    expected = _param_shapes(net)
    exp_leaves, exp_tree = jax.tree.flatten(expected)
    leaves, tree = jax.tree.flatten(params)
    if tree != exp_tree:
        raise ValueError(
            f"`params` must be the pytree that net.init returns for {net.name} (structure {exp_tree}), "
            f"got structure {tree}."
        )
    shapes = [tuple(jnp.shape(leaf)) for leaf in leaves]
    exp_shapes = [tuple(e.shape) for e in exp_leaves]
    if shapes == exp_shapes:
        n_net = None
    elif all(len(s) == len(e) + 1 and s[1:] == e for s, e in zip(shapes, exp_shapes)) and len(
        {s[0] for s in shapes}
    ) == 1:
        n_net = shapes[0][0]
    else:
        raise ValueError(
            f"`params` leaves must have shapes {exp_shapes} (one network) or the same with a common "
            f"leading network axis (many networks), got {shapes}."
        )
    in_shape = net.input_shape
    lead = _validate.trailing_shape(xs, "xs", in_shape, (1,) if n_net is None else (1, 2))
    if lead == 2 and xs.shape[0] != n_net:
        raise ValueError(
            f"`xs` has inputs for {xs.shape[0]} networks but `params` holds {n_net}; per-network inputs "
            f"must have shape ({n_net}, n_x, {', '.join(map(str, in_shape))})."
        )
    return Layout(n_net, int(xs.shape[lead - 1]), lead == 2)


# ---------------------------------------------------------------------------------------
# the batched map


def _map(f: Callable, xs: Any, batch: int | None) -> Any:
    n = jax.tree.leaves(xs)[0].shape[0]
    if batch is None or batch >= n:
        return jax.vmap(f)(xs)
    return jax.lax.map(f, xs, batch_size=batch)


def _map_pairs_impl(
    fn: Callable,
    params: Params,
    xs: jax.Array,
    per_x: tuple,
    per_pair: tuple,
    shared: tuple,
    *,
    n_net: int | None,
    per_net_inputs: bool,
    net_chunk: int | None,
    x_chunk: int | None,
) -> Any:
    def over_inputs(p, xs_, per_x_, per_pair_):
        return _map(lambda a: fn(p, a[0], *a[1], *a[2], *shared), (xs_, per_x_, per_pair_), x_chunk)

    if n_net is None:
        return over_inputs(params, xs, per_x, per_pair)
    if per_net_inputs:
        return _map(lambda a: over_inputs(*a), (params, xs, per_x, per_pair), net_chunk)
    return _map(lambda a: over_inputs(a[0], xs, per_x, a[1]), (params, per_pair), net_chunk)


_map_pairs = jax.jit(_map_pairs_impl, static_argnames=("fn", "n_net", "per_net_inputs", "net_chunk", "x_chunk"))


def _sds(shape: tuple[int, ...], a: Any) -> jax.ShapeDtypeStruct:
    return jax.ShapeDtypeStruct(tuple(shape), a.dtype)


def _nbytes(tree: Any) -> int:
    total = 0
    for s in jax.tree.leaves(tree):
        if not jax.dtypes.issubdtype(s.dtype, jax.dtypes.prng_key):
            total += math.prod(s.shape) * s.dtype.itemsize
    return total


def _signature(tree: Any) -> tuple:
    """A hashable description of a pytree's structure, shapes and dtypes."""
    leaves, treedef = jax.tree.flatten(tree)
    return (treedef, tuple((tuple(jnp.shape(a)), str(jnp.result_type(a))) for a in leaves))


def _chunk_plan(fn, params, xs, per_x, per_pair, shared, lay: Layout, chunk_size, max_bytes) -> _memory.ChunkPlan:
    if chunk_size is not None:
        size = _validate.positive_int(chunk_size, "chunk_size")
        if lay.n_net is None or size < lay.n_x:
            return _memory.ChunkPlan(None if lay.n_net is None else 1, min(size, lay.n_x), 0)
        return _memory.ChunkPlan(size // lay.n_x, None, 0)
    budget = _memory.default_budget() if max_bytes is None else _validate.positive_int(max_bytes, "max_bytes")
    abstract = jax.tree.map(lambda a: jax.ShapeDtypeStruct(jnp.shape(a), jnp.result_type(a)), (params, xs, per_x, per_pair, shared))
    # The plan depends only on shapes, so it is traced once per (fn, shapes, budget): a sweep
    # that calls the same attack again pays nothing for it.
    return _cached_plan(fn, _signature(abstract), _Frozen(abstract), lay, budget)


class _Frozen:
    """Carries an unhashable value through ``lru_cache``; its key is given separately."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __hash__(self) -> int:
        return 0

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, _Frozen)


@functools.lru_cache(maxsize=512)
def _cached_plan(fn, signature: tuple, frozen: _Frozen, lay: Layout, budget: int) -> _memory.ChunkPlan:
    params, xs, per_x, per_pair, shared = frozen.value
    one_net = lay.n_net is None
    x_lead = 2 if lay.per_net_inputs else 1
    pair_lead = 1 if one_net else 2

    def cost(nc: int, xc: int) -> int:
        """Estimated bytes of one block of ``nc`` networks × ``xc`` inputs."""
        p = jax.tree.map(lambda a: _sds(a.shape if one_net else (nc, *a.shape[1:]), a), params)
        x_new = (nc, xc) if lay.per_net_inputs else (xc,)
        xa, pxa = jax.tree.map(lambda a: _sds(x_new + a.shape[x_lead:], a), (xs, per_x))
        pair_new = (xc,) if one_net else (nc, xc)
        ppa = jax.tree.map(lambda a: _sds(pair_new + a.shape[pair_lead:], a), per_pair)
        block = functools.partial(
            _map_pairs_impl,
            fn,
            n_net=None if one_net else nc,
            per_net_inputs=lay.per_net_inputs,
            net_chunk=None,
            x_chunk=None,
        )
        return _nbytes((p, xa, pxa, ppa)) + _memory.traced_bytes(block, p, xa, pxa, ppa, shared)

    return _memory.plan(cost, lay.n_net, lay.n_x, budget)


def map_pairs(
    fn: Callable[..., Any],
    net: Network,
    params: Params,
    xs: jax.Array,
    *,
    per_x: Sequence[Any] = (),
    per_pair: Sequence[Any] = (),
    shared: Sequence[Any] = (),
    chunk_size: int | None = None,
    max_bytes: int | None = None,
) -> Any:
    """Maps a per-example ``fn`` over every (network, input) pair, chunked to fit memory.

    This is the batching every jaxadv attack is built on: write the logic for one network
    and one input, and call it through here.

    Args:
      fn: ``fn(params_one, x_one, *per_x_one, *per_pair_one, *shared) -> pytree``. It must be
        hashable by value (a module-level function or a frozen dataclass), so that repeated
        calls reuse the compiled code; continuous hyperparameters belong in ``shared`` as
        arrays, so that sweeping them does not recompile.
      net: the network family ``params`` belong to.
      params: one network's params, or many stacked on a leading axis.
      xs: inputs ``(n_x, *input_shape)`` or ``(n_net, n_x, *input_shape)``.
      per_x: arrays laid out like ``xs`` (same leading axes), e.g. per-input directions.
      per_pair: arrays with leading axes ``(n_net, n_x)`` (or ``(n_x,)`` for one network),
        e.g. one PRNG key per pair.
      shared: values passed unchanged to every call (traced, e.g. ε or step sizes).
      chunk_size: pairs per vmapped block; overrides the automatic plan.
      max_bytes: memory budget of one block for the automatic plan (default: half an
        accelerator's memory, or a quarter of host RAM).

    Returns:
      ``fn``'s pytree with leading axes ``(n_net, n_x)`` or ``(n_x,)``.
    """
    net = _check_network(net)
    if not callable(fn):
        raise TypeError(f"`fn` must be callable, got {type(fn).__name__}.")
    lay = layout(net, params, xs)
    per_x, per_pair = tuple(per_x), tuple(per_pair)
    shared = jax.tree.map(jnp.asarray, tuple(shared))
    lead = 2 if lay.per_net_inputs else 1
    for i, a in enumerate(per_x):
        for leaf in jax.tree.leaves(a):
            if tuple(jnp.shape(leaf))[:lead] != tuple(xs.shape[:lead]):
                raise ValueError(f"`per_x[{i}]` must have leading axes {tuple(xs.shape[:lead])} like `xs`, got {jnp.shape(leaf)}.")
    pair_shape = (lay.n_x,) if lay.n_net is None else (lay.n_net, lay.n_x)
    for i, a in enumerate(per_pair):
        for leaf in jax.tree.leaves(a):
            if tuple(jnp.shape(leaf))[: len(pair_shape)] != pair_shape:
                raise ValueError(f"`per_pair[{i}]` must have leading axes {pair_shape}, got {jnp.shape(leaf)}.")
    chunks = _chunk_plan(fn, params, xs, per_x, per_pair, shared, lay, chunk_size, max_bytes)
    return _map_pairs(
        fn,
        params,
        xs,
        per_x,
        per_pair,
        shared,
        n_net=lay.n_net,
        per_net_inputs=lay.per_net_inputs,
        net_chunk=chunks.net_chunk,
        x_chunk=chunks.x_chunk,
    )


def _map_nets_impl(fn: Callable, params: Params, per_net: tuple, shared: tuple, *, batched: bool, net_chunk: int | None) -> Any:
    if not batched:
        return fn(params, *per_net, *shared)
    return _map(lambda a: fn(a[0], *a[1], *shared), (params, per_net), net_chunk)


_map_nets = jax.jit(_map_nets_impl, static_argnames=("fn", "batched", "net_chunk"))


def map_nets(
    fn: Callable[..., Any],
    net: Network,
    params: Params,
    *,
    per_net: Sequence[Any] = (),
    shared: Sequence[Any] = (),
    chunk_size: int | None = None,
) -> Any:
    """Maps a per-network ``fn`` over the networks of ``params`` (a set-level analogue of
    :func:`map_pairs`, for computations that couple all inputs of one network, such as one
    perturbation shared by a whole data set).

    Args:
      fn: ``fn(params_one, *per_net_one, *shared) -> pytree``, hashable by value.
      net: the network family ``params`` belong to.
      params: one network's params, or many stacked on a leading axis.
      per_net: arrays with a leading network axis when ``params`` holds many networks (and
        without it for one network), e.g. a data set per network ``(n_net, m, d)``.
      shared: values passed unchanged to every call (traced).
      chunk_size: networks per vmapped block (default: all at once).

    Returns:
      ``fn``'s pytree, with a leading ``(n_net,)`` axis for many networks.
    """
    net = _check_network(net)
    if not callable(fn):
        raise TypeError(f"`fn` must be callable, got {type(fn).__name__}.")
    exp_leaves = jax.tree.leaves(_param_shapes(net))
    leaves, tree = jax.tree.flatten(params)
    if tree != jax.tree.structure(_param_shapes(net)):
        raise ValueError(f"`params` must be the pytree that net.init returns for {net.name}, got structure {tree}.")
    shapes = [tuple(jnp.shape(leaf)) for leaf in leaves]
    exp_shapes = [tuple(e.shape) for e in exp_leaves]
    batched = shapes != exp_shapes
    if batched and not (
        all(len(s) == len(e) + 1 and s[1:] == e for s, e in zip(shapes, exp_shapes)) and len({s[0] for s in shapes}) == 1
    ):
        raise ValueError(f"`params` leaves must have shapes {exp_shapes}, with or without one common leading axis, got {shapes}.")
    per_net = tuple(per_net)
    if batched:
        n_net = shapes[0][0]
        for i, a in enumerate(per_net):
            for leaf in jax.tree.leaves(a):
                if jnp.ndim(leaf) == 0 or jnp.shape(leaf)[0] != n_net:
                    raise ValueError(f"`per_net[{i}]` must have a leading axis of {n_net} networks, got shape {jnp.shape(leaf)}.")
    chunk = _validate.optional_positive_int(chunk_size, "chunk_size")
    shared = jax.tree.map(jnp.asarray, tuple(shared))
    return _map_nets(fn, params, per_net, shared, batched=batched, net_chunk=chunk)


def _checked_inputs(xs: Any) -> jax.Array:
    return _validate.float_array(xs, "xs")


def forward(
    net: Network,
    params: Params,
    xs: jax.Array,
    *,
    chunk_size: int | None = None,
    max_bytes: int | None = None,
) -> jax.Array:
    """Outputs f(x) for every (network, input) pair.

    Args:
      net: the network family.
      params: one network's params or many stacked (see :func:`init_many`).
      xs: ``(n_x, *input_shape)`` shared inputs or ``(n_net, n_x, *input_shape)``.
      chunk_size: pairs per block (overrides the automatic plan).
      max_bytes: memory budget for the automatic plan.

    Returns:
      ``(n_net, n_x)`` or, for one network, ``(n_x,)``.
    """
    xs = _checked_inputs(xs)
    return map_pairs(_Forward(net.apply), net, params, xs, chunk_size=chunk_size, max_bytes=max_bytes)


def evaluate(
    net: Network,
    params: Params,
    xs: jax.Array,
    *,
    chunk_size: int | None = None,
    max_bytes: int | None = None,
) -> Evaluation:
    """Outputs f(x) and input gradients ∇ₓf(x) for every (network, input) pair.

    Args:
      net: the network family.
      params: one network's params or many stacked (see :func:`init_many`).
      xs: ``(n_x, *input_shape)`` shared inputs or ``(n_net, n_x, *input_shape)``.
      chunk_size: pairs per block (overrides the automatic plan).
      max_bytes: memory budget for the automatic plan.

    Returns:
      :class:`Evaluation` with ``f`` of shape ``(n_net, n_x)`` and ``grad`` of shape
      ``(n_net, n_x, *input_shape)`` (without the network axis for one network).
    """
    xs = _checked_inputs(xs)
    f, g = map_pairs(_ValueAndGrad(net.apply), net, params, xs, chunk_size=chunk_size, max_bytes=max_bytes)
    return Evaluation(f, g)
