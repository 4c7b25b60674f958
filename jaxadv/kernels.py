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
per block) or ``max_bytes`` overrides the automatic choice. :func:`plan` shows the choice
before a run; when not even one network and one input fit the budget, the kernels raise
:class:`MemoryBudgetError` before computing anything.

With several local devices (GPUs, TPU cores, or CPU devices made with
``jax_num_cpu_devices``), the network axis is split over them: each device runs the same
per-device program (``shard_map`` of the one-device kernel, chunked by the same memory plan,
now per device). With one network, or fewer networks than devices, the input axis is split
instead. A network count that does not divide evenly is padded by repeating the last real
network, and the padding is dropped from the results. ``devices=`` on :func:`map_pairs`,
:func:`map_nets`, :func:`evaluate` and :func:`forward` picks the devices (one device: no
sharding); :func:`use_devices` does the same for everything inside a ``with`` block,
attacks and experiments included. jaxadv never changes JAX's global state; an active
``jax.default_device(...)`` pins the kernels to that device.

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

import contextlib
import contextvars
import dataclasses
import functools
import math
from typing import Any, Callable, Iterator, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jaxadv import _memory, _validate
from jaxadv._memory import ChunkPlan, MemoryBudgetError
from jaxadv.nets._network import Network, Params

__all__ = [
    "ChunkPlan",
    "Evaluation",
    "Layout",
    "MemoryBudgetError",
    "evaluate",
    "forward",
    "init_many",
    "layout",
    "map_nets",
    "map_pairs",
    "plan",
    "use_devices",
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


def init_many(net: Network, key: jax.Array, n: int, *, max_bytes: int | None = None) -> Params:
    """Parameters of ``n`` independent networks, stacked on a leading axis.

    Network ``j`` equals ``net.init(jax.random.split(key, n)[j])``, so any one network of a
    sweep can be rebuilt alone.

    Drawing the weights costs about as much as evaluating them once (``benchmarks/kernels.py``
    measures both). Threefry keys (JAX's default) draw through an unrolled hash with the
    same bits (:mod:`jaxadv.nets._sampling`): on CPU 1.0–1.5× faster than a ``philox4x32``
    key, where JAX's own lowering was 2.2–2.6× slower. Calling ``init_many`` on its own,
    then the kernel, beats jitting both together: in one jit XLA splits the sampler into
    several passes over the weights.

    Args:
      net: the network family.
      key: a PRNG key.
      n: number of networks.
      max_bytes: bytes the parameters may take (default: the kernels' budget, half an
        accelerator's memory or a quarter of host RAM).

    Returns:
      ``net.init``'s pytree with every leaf of shape ``(n, *leaf_shape)``.

    Raises:
      MemoryBudgetError: before drawing anything, if ``n`` networks' parameters exceed the
        budget; the message gives the largest ``n`` that fits.
    """
    net = _check_network(net)
    key = _validate.key(key)
    n = _validate.positive_int(n, "n")
    budget = _memory.default_budget() if max_bytes is None else _validate.positive_int(max_bytes, "max_bytes")
    one = _nbytes(_param_shapes(net))
    if n * one > budget:
        if one > budget:
            raise MemoryBudgetError(
                f"One {net.name} network's parameters take {_memory.human(one)}, over the memory budget of "
                f"{_memory.human(budget)}: not one network fits. Draw its wide layers matrix-free "
                "(weights='matrix_free' on jaxadv.nets.mlp / two_layer) or raise max_bytes."
            )
        raise MemoryBudgetError(
            f"{n} {net.name} networks' parameters take {_memory.human(n * one)} ({_memory.human(one)} each), over the "
            f"memory budget of {_memory.human(budget)}: at most n={budget // one} fit. Draw them in blocks of at most "
            f"{budget // one} (jax.vmap(net.init) over slices of jax.random.split(key, n) gives the same networks) "
            "or raise max_bytes."
        )
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
# devices

_AXIS = "jaxadv_shards"
_DEVICES: contextvars.ContextVar[tuple | None] = contextvars.ContextVar("jaxadv_devices", default=None)


def _check_devices(devices: Any, name: str = "devices") -> tuple:
    given = devices
    if isinstance(devices, jax.Device):
        devices = (devices,)
    try:
        devices = tuple(devices) if not isinstance(devices, str) else ()
    except TypeError:
        devices = ()
    if not devices or not all(isinstance(d, jax.Device) for d in devices):
        raise TypeError(f"`{name}` must be a non-empty sequence of JAX devices (e.g. jax.local_devices()[:2]), got {given!r}.")
    if len(set(devices)) != len(devices):
        raise ValueError(f"`{name}` must list each device once, got {list(devices)}.")
    return devices


@contextlib.contextmanager
def use_devices(devices: Sequence[jax.Device]) -> Iterator[None]:
    """Runs every kernel called inside the ``with`` block on ``devices``.

    The way to choose devices for code that does not take a ``devices=`` argument (attacks,
    experiments). One device turns sharding off. The choice is local to the
    ``with`` block (and to the thread or task); JAX's global state is not touched.

    Args:
      devices: a non-empty sequence of devices, e.g. ``jax.local_devices()[:1]``.

    Example:
      >>> import jax, jaxadv
      >>> net = jaxadv.nets.two_layer(d=20, k=30)
      >>> params = jaxadv.kernels.init_many(net, jax.random.key(0), 3)
      >>> xs = jaxadv.data.sphere(jax.random.key(1), 4, 20)
      >>> with jaxadv.kernels.use_devices(jax.local_devices()[:1]):
      ...     r = jaxadv.attacks.one_step(net, params, xs)
      >>> r.success.shape
      (3, 4)
    """
    token = _DEVICES.set(_check_devices(devices))
    try:
        yield
    finally:
        _DEVICES.reset(token)


def _resolve_devices(devices: Any) -> tuple[tuple, bool]:
    """The devices a call runs on, and whether the caller chose them (rather than the default)."""
    if devices is not None:
        return _check_devices(devices), True
    chosen = _DEVICES.get()
    if chosen is not None:
        return chosen, True
    default = jax.config.jax_default_device
    if default is not None:  # the user pinned work to one device with jax.default_device(...)
        return ((jax.local_devices(backend=default)[0] if isinstance(default, str) else default),), True
    return tuple(jax.local_devices()), False


def _split(n: int, n_dev: int) -> tuple[int, int]:
    """(shards, items per shard) for ``n`` items over at most ``n_dev`` devices: the fewest
    devices that reach the smallest per-device load, so padding costs no wall time."""
    load = max(1, -(-n // n_dev))
    return -(-n // load), load


@functools.lru_cache(maxsize=64)
def _mesh(devices: tuple) -> jax.sharding.Mesh:
    # Auto (not Explicit) axes, so the results carry no sharding types into the caller's code.
    return jax.make_mesh((len(devices),), (_AXIS,), axis_types=(jax.sharding.AxisType.Auto,), devices=devices)


def _spec(axis: int | None) -> P:
    return P() if axis is None else P(*([None] * axis), _AXIS)


def _pad(a: jax.Array, axis: int, n: int, n_pad: int) -> jax.Array:
    last = jax.lax.slice_in_dim(a, n - 1, n, axis=axis)
    return jnp.concatenate([a, jnp.repeat(last, n_pad - n, axis=axis)], axis=axis)


def _place(tree: Any, mesh: jax.sharding.Mesh, axis: int | None, n: int, n_pad: int) -> Any:
    """Puts ``tree`` on ``mesh``, split along ``axis`` (padded from ``n`` to ``n_pad`` entries
    by repeating the last one) or, for ``axis=None``, replicated."""
    sharding = NamedSharding(mesh, _spec(axis))

    def one(a):
        padded = axis is not None and n_pad != n
        if _validate.is_tracer(a):
            return jax.lax.with_sharding_constraint(_pad(a, axis, n, n_pad) if padded else a, sharding)
        if not padded:
            return jax.device_put(a, sharding)
        # Each device receives only its own block: the padded array never exists whole on one device.
        shape = list(jnp.shape(a))
        shape[axis] = n_pad
        take = np.take if isinstance(a, np.ndarray) else jnp.take
        blocks = []
        for device, index in sharding.addressable_devices_indices_map(tuple(shape)).items():
            rows = np.minimum(np.arange(n_pad)[index[axis]], n - 1)
            blocks.append(jax.device_put(take(a, rows, axis=axis), device))
        return jax.make_array_from_single_device_arrays(tuple(shape), sharding, blocks)

    return jax.tree.map(one, tree)


class _Shards(NamedTuple):
    """How one call is split over devices."""

    mesh: jax.sharding.Mesh
    axes: tuple  # split axis of (params, xs, per_x, per_pair); None: replicated
    out_axis: int
    n: int  # entries along the split axis
    n_pad: int  # a multiple of the mesh size
    local: Layout  # what one device sees
    name: str  # "networks" or "inputs"


def _pair_shards(lay: Layout, devices: tuple) -> _Shards | None:
    n_dev = len(devices)
    if lay.n_net is not None:
        s_net, load_net = _split(lay.n_net, n_dev)
        load_x = _split(lay.n_x, n_dev)[1]
        # Networks, unless there are fewer than devices and splitting the inputs leaves fewer
        # pairs per device (the parameters are then copied to every device, but there are few).
        if lay.n_net >= n_dev or load_net * lay.n_x <= lay.n_net * load_x:
            if s_net <= 1:
                return None
            x_axis = 0 if lay.per_net_inputs else None
            return _Shards(_mesh(devices[:s_net]), (0, x_axis, x_axis, 0), 0, lay.n_net, s_net * load_net,
                           lay._replace(n_net=load_net), "networks")
    shards, load = _split(lay.n_x, n_dev)
    if shards <= 1:
        return None
    x_axis = 1 if lay.per_net_inputs else 0
    pair_axis = 0 if lay.n_net is None else 1
    return _Shards(_mesh(devices[:shards]), (None, x_axis, x_axis, pair_axis), pair_axis, lay.n_x, shards * load,
                   lay._replace(n_x=load), "inputs")


def _local(abstract: Any, axis: int | None, size: int) -> Any:
    if axis is None:
        return abstract
    return jax.tree.map(lambda a: _sds(a.shape[:axis] + (size,) + a.shape[axis + 1:], a), abstract)


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


def _sharded_pairs_impl(fn, params, xs, per_x, per_pair, shared, *, mesh, in_axes, out_axis, n, n_net, per_net_inputs,
                        net_chunk, x_chunk):
    # shard_map rather than sharding annotations alone: every device runs exactly the
    # one-device kernel on its block, so the memory plan's lax.map chunks per device (the
    # partitioner would otherwise see one scan over a split axis) and results match one device.
    body = functools.partial(_map_pairs_impl, fn, n_net=n_net, per_net_inputs=per_net_inputs, net_chunk=net_chunk,
                             x_chunk=x_chunk)
    specs = tuple(_spec(a) for a in in_axes) + (P(),)
    out = jax.shard_map(body, mesh=mesh, in_specs=specs, out_specs=_spec(out_axis), check_vma=False)(
        params, xs, per_x, per_pair, shared)
    return jax.tree.map(lambda a: jax.lax.slice_in_dim(a, 0, n, axis=out_axis), out)  # drops the padding


_map_pairs_sharded = jax.jit(_sharded_pairs_impl, static_argnames=(
    "fn", "mesh", "in_axes", "out_axis", "n", "n_net", "per_net_inputs", "net_chunk", "x_chunk"))


def _sds(shape: tuple[int, ...], a: Any) -> jax.ShapeDtypeStruct:
    return jax.ShapeDtypeStruct(tuple(shape), a.dtype)


def _abstract(tree: Any) -> Any:
    def one(a):
        if isinstance(a, jax.ShapeDtypeStruct):
            return a
        return jax.ShapeDtypeStruct(jnp.shape(a), jnp.result_type(a))

    return jax.tree.map(one, tree)


def _nbytes(tree: Any) -> int:
    total = 0
    for s in jax.tree.leaves(tree):
        if not jax.dtypes.issubdtype(s.dtype, jax.dtypes.prng_key):
            total += math.prod(s.shape) * s.dtype.itemsize
    return total


def _signature(tree: Any) -> tuple:
    """A hashable description of a pytree's structure, shapes and dtypes."""
    leaves, treedef = jax.tree.flatten(tree)
    return (treedef, tuple((tuple(a.shape), str(a.dtype)) for a in leaves))


def _chunk_plan(fn, abstract, lay: Layout, chunk_size, max_bytes, device=None, *, estimate: bool = False) -> ChunkPlan:
    """Chunks for one device's block of ``abstract = (params, xs, per_x, per_pair, shared)``.

    Without ``chunk_size`` the plan fits the budget (``max_bytes``, else the default for
    ``device``). An explicit ``chunk_size`` is taken as given, and only estimated (three
    traces) when ``max_bytes`` asks for a check or ``estimate`` for the number.
    """
    budget = None if max_bytes is None else _validate.positive_int(max_bytes, "max_bytes")
    param_bytes = _nbytes(abstract[0]) // (lay.n_net or 1)
    if chunk_size is not None:
        size = _validate.positive_int(chunk_size, "chunk_size")
        # Blocks as large as the batch are no blocks (None): one compiled kernel for all such sizes.
        if size < lay.n_x:
            chunks = ChunkPlan(None if lay.n_net is None else 1, size, 0)
        elif lay.n_net is None or size // lay.n_x >= lay.n_net:
            chunks = ChunkPlan(None, None, 0)
        else:
            chunks = ChunkPlan(size // lay.n_x, None, 0)
        if budget is None and not estimate:
            return chunks
        return _memory.check_chunk(_cost_model(fn, abstract, lay), chunks, size, lay.n_net, lay.n_x, budget,
                                   param_bytes=param_bytes)
    budget = _memory.default_budget(device) if budget is None else budget
    return _memory.plan(_cost_model(fn, abstract, lay), lay.n_net, lay.n_x, budget, param_bytes=param_bytes)


def _cost_model(fn, abstract, lay: Layout) -> _memory.CostModel:
    # The model depends only on shapes, so it is traced once per (fn, shapes): a sweep that
    # calls the same attack again pays nothing for it.
    return _cached_model(fn, _signature(abstract), _Frozen(abstract), lay)


class _Frozen:
    """Carries an unhashable value through ``lru_cache``; its key is given separately."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __hash__(self) -> int:
        return 0

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, _Frozen)


@functools.lru_cache(maxsize=512)
def _cached_model(fn, signature: tuple, frozen: _Frozen, lay: Layout) -> _memory.CostModel:
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

    return _memory.fit(cost, lay.n_x)


class _PairsCall(NamedTuple):
    lay: Layout
    chunks: ChunkPlan
    shards: _Shards | None
    device: Any  # the one device to put the arguments on, or None to leave them where they are


def _prepare_pairs(fn, net, params, xs, per_x, per_pair, shared, chunk_size, max_bytes, devices, *, estimate=False):
    """Checks a :func:`map_pairs` call and decides its devices and chunks (no compute)."""
    net = _check_network(net)
    if not callable(fn):
        raise TypeError(f"`fn` must be callable, got {type(fn).__name__}.")
    lay = layout(net, params, xs)
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
    devs, chosen = _resolve_devices(devices)
    shards = _pair_shards(lay, devs) if len(devs) > 1 else None
    abstract = _abstract((params, xs, per_x, per_pair, shared))
    if shards is None:
        chunks = _chunk_plan(fn, abstract, lay, chunk_size, max_bytes, devs[0], estimate=estimate)
        return _PairsCall(lay, chunks, None, devs[0] if chosen else None)
    size = shards.n_pad // shards.mesh.size
    local = tuple(_local(a, ax, size) for a, ax in zip(abstract, shards.axes + (None,)))
    chunks = _chunk_plan(fn, local, shards.local, chunk_size, max_bytes, devs[0], estimate=estimate)
    return _PairsCall(lay, chunks._replace(n_devices=shards.mesh.size, sharded_axis=shards.name), shards, None)


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
    devices: Sequence[jax.Device] | None = None,
) -> Any:
    """Maps a per-example ``fn`` over every (network, input) pair, chunked to fit memory and
    split over devices.

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
      chunk_size: pairs per vmapped block on each device; overrides the automatic plan.
      max_bytes: memory budget of one block on one device for the automatic plan (default:
        half an accelerator's memory, or a quarter of host RAM); with ``chunk_size``, the
        block is checked against it.
      devices: the devices to split the batch over (default: :func:`use_devices`' choice,
        else ``jax.default_device``'s, else all local devices). One device: no sharding.

    Returns:
      ``fn``'s pytree with leading axes ``(n_net, n_x)`` or ``(n_x,)``.

    Raises:
      MemoryBudgetError: before any compute, if one network and one input (or the given
        ``chunk_size``) exceed ``max_bytes``.
    """
    per_x, per_pair = tuple(per_x), tuple(per_pair)
    shared = jax.tree.map(jnp.asarray, tuple(shared))
    call = _prepare_pairs(fn, net, params, xs, per_x, per_pair, shared, chunk_size, max_bytes, devices)
    lay, chunks, shards = call.lay, call.chunks, call.shards
    if shards is None:
        args = (params, xs, per_x, per_pair, shared)
        if call.device is not None:
            args = jax.device_put(args, call.device)
        return _map_pairs(fn, *args, n_net=lay.n_net, per_net_inputs=lay.per_net_inputs, net_chunk=chunks.net_chunk,
                          x_chunk=chunks.x_chunk)
    placed = [_place(t, shards.mesh, ax, shards.n, shards.n_pad)
              for t, ax in zip((params, xs, per_x, per_pair, shared), shards.axes + (None,))]
    return _map_pairs_sharded(fn, *placed, mesh=shards.mesh, in_axes=shards.axes, out_axis=shards.out_axis, n=shards.n,
                              n_net=shards.local.n_net, per_net_inputs=lay.per_net_inputs, net_chunk=chunks.net_chunk,
                              x_chunk=chunks.x_chunk)


def plan(
    net: Network,
    params: Params,
    xs: jax.Array,
    *,
    fn: Callable[..., Any] | None = None,
    per_x: Sequence[Any] = (),
    per_pair: Sequence[Any] = (),
    shared: Sequence[Any] = (),
    chunk_size: int | None = None,
    max_bytes: int | None = None,
    devices: Sequence[jax.Device] | None = None,
) -> ChunkPlan:
    """The devices, chunks and estimated peak bytes :func:`map_pairs` would use, without
    running anything.

    Arrays may be replaced by ``jax.ShapeDtypeStruct`` (e.g. ``jax.eval_shape`` of
    :func:`init_many`), so a run can be sized before its parameters exist.

    Args:
      net: the network family.
      params, xs: as for :func:`map_pairs`, or their shapes and dtypes.
      fn: the per-example function (default: :func:`evaluate`'s f and ∇ₓf).
      per_x, per_pair, shared, chunk_size, max_bytes, devices: as for :func:`map_pairs`.

    Returns:
      :class:`ChunkPlan`; ``estimated_bytes`` is one block on one device (the batch's
      arguments and results come on top), ``budget`` the bytes it had to fit.

    Raises:
      MemoryBudgetError: when :func:`map_pairs` would refuse the run.

    Example:
      >>> import jax, jaxadv
      >>> net = jaxadv.nets.mlp(100, [200, 200])
      >>> params = jax.eval_shape(lambda: jaxadv.kernels.init_many(net, jax.random.key(0), 50))
      >>> xs = jax.ShapeDtypeStruct((1000, 100), "float32")
      >>> p = jaxadv.kernels.plan(net, params, xs, max_bytes=50 * 2**20, devices=jax.local_devices()[:1])
      >>> p.net_chunk is not None and p.estimated_bytes <= p.budget
      True
    """
    net = _check_network(net)
    per_x, per_pair = tuple(per_x), tuple(per_pair)
    shared = tuple(_abstract(tuple(s if isinstance(s, jax.ShapeDtypeStruct) else jnp.asarray(s) for s in shared)))
    fn = _ValueAndGrad(net.apply) if fn is None else fn
    call = _prepare_pairs(fn, net, params, xs, per_x, per_pair, shared, chunk_size, max_bytes, devices, estimate=True)
    return call.chunks


def _map_nets_impl(fn: Callable, params: Params, per_net: tuple, shared: tuple, *, batched: bool, net_chunk: int | None) -> Any:
    if not batched:
        return fn(params, *per_net, *shared)
    return _map(lambda a: fn(a[0], *a[1], *shared), (params, per_net), net_chunk)


_map_nets = jax.jit(_map_nets_impl, static_argnames=("fn", "batched", "net_chunk"))


def _sharded_nets_impl(fn, params, per_net, shared, *, mesh, n, net_chunk):
    body = functools.partial(_map_nets_impl, fn, batched=True, net_chunk=net_chunk)
    out = jax.shard_map(body, mesh=mesh, in_specs=(_spec(0), _spec(0), P()), out_specs=_spec(0), check_vma=False)(
        params, per_net, shared)
    return jax.tree.map(lambda a: a[:n], out)  # drops the padding


_map_nets_sharded = jax.jit(_sharded_nets_impl, static_argnames=("fn", "mesh", "n", "net_chunk"))


def map_nets(
    fn: Callable[..., Any],
    net: Network,
    params: Params,
    *,
    per_net: Sequence[Any] = (),
    shared: Sequence[Any] = (),
    chunk_size: int | None = None,
    devices: Sequence[jax.Device] | None = None,
) -> Any:
    """Maps a per-network ``fn`` over the networks of ``params`` (a set-level analogue of
    :func:`map_pairs`, for computations that couple all inputs of one network, such as one
    perturbation shared by a whole data set), split over devices by network.

    Args:
      fn: ``fn(params_one, *per_net_one, *shared) -> pytree``, hashable by value.
      net: the network family ``params`` belong to.
      params: one network's params, or many stacked on a leading axis.
      per_net: arrays with a leading network axis when ``params`` holds many networks (and
        without it for one network), e.g. a data set per network ``(n_net, m, d)``.
      shared: values passed unchanged to every call (traced).
      chunk_size: networks per vmapped block on each device (default: all at once).
      devices: as for :func:`map_pairs`; one network always runs on one device.

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
    n_net = shapes[0][0] if batched else None
    if batched:
        for i, a in enumerate(per_net):
            for leaf in jax.tree.leaves(a):
                if jnp.ndim(leaf) == 0 or jnp.shape(leaf)[0] != n_net:
                    raise ValueError(f"`per_net[{i}]` must have a leading axis of {n_net} networks, got shape {jnp.shape(leaf)}.")
    chunk = _validate.optional_positive_int(chunk_size, "chunk_size")
    shared = jax.tree.map(jnp.asarray, tuple(shared))
    devs, chosen = _resolve_devices(devices)
    shards, load = _split(n_net, len(devs)) if batched else (1, None)
    if shards <= 1:
        args = (params, per_net, shared)
        if chosen:
            args = jax.device_put(args, devs[0])
        return _map_nets(fn, *args, batched=batched, net_chunk=chunk)
    mesh = _mesh(devs[:shards])
    placed = [_place(t, mesh, ax, n_net, shards * load) for t, ax in ((params, 0), (per_net, 0), (shared, None))]
    return _map_nets_sharded(fn, *placed, mesh=mesh, n=n_net, net_chunk=chunk)


def _checked_inputs(xs: Any) -> jax.Array:
    return _validate.float_array(xs, "xs")


def forward(
    net: Network,
    params: Params,
    xs: jax.Array,
    *,
    chunk_size: int | None = None,
    max_bytes: int | None = None,
    devices: Sequence[jax.Device] | None = None,
) -> jax.Array:
    """Outputs f(x) for every (network, input) pair.

    Args:
      net: the network family.
      params: one network's params or many stacked (see :func:`init_many`).
      xs: ``(n_x, *input_shape)`` shared inputs or ``(n_net, n_x, *input_shape)``.
      chunk_size: pairs per block (overrides the automatic plan).
      max_bytes: memory budget for the automatic plan.
      devices: the devices to split the batch over (see :func:`map_pairs`).

    Returns:
      ``(n_net, n_x)`` or, for one network, ``(n_x,)``.
    """
    xs = _checked_inputs(xs)
    return map_pairs(_Forward(net.apply), net, params, xs, chunk_size=chunk_size, max_bytes=max_bytes, devices=devices)


def evaluate(
    net: Network,
    params: Params,
    xs: jax.Array,
    *,
    chunk_size: int | None = None,
    max_bytes: int | None = None,
    devices: Sequence[jax.Device] | None = None,
) -> Evaluation:
    """Outputs f(x) and input gradients ∇ₓf(x) for every (network, input) pair.

    Args:
      net: the network family.
      params: one network's params or many stacked (see :func:`init_many`).
      xs: ``(n_x, *input_shape)`` shared inputs or ``(n_net, n_x, *input_shape)``.
      chunk_size: pairs per block (overrides the automatic plan).
      max_bytes: memory budget for the automatic plan.
      devices: the devices to split the batch over (see :func:`map_pairs`).

    Returns:
      :class:`Evaluation` with ``f`` of shape ``(n_net, n_x)`` and ``grad`` of shape
      ``(n_net, n_x, *input_shape)`` (without the network axis for one network).
    """
    xs = _checked_inputs(xs)
    f, g = map_pairs(_ValueAndGrad(net.apply), net, params, xs, chunk_size=chunk_size, max_bytes=max_bytes,
                     devices=devices)
    return Evaluation(f, g)
