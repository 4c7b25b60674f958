"""Line searches: the first sign change of f along x + t·u, per input or shared by a set.

* :func:`line_search` — De Palma, Kiani & Lloyd 2021, Theorem 1 (segment): along a random
  unit direction the boundary is Θ(‖x‖) away, against O(1) along the gradient.
* :func:`shared_line_search` — Vardi, Yehudai & Shamir 2022, §6: the smallest c such that the
  ONE perturbation x_i − y_i c z/‖z‖ flips every point of the margin set at once.

Both scan a geometric grid of t in one batched call, take the first grid point where the
predicate ("this point flipped" / "every point flipped") holds, and bisect between it and
the previous grid point. The search engine (:func:`first_crossing`) is shared with
:mod:`jaxadv.attacks.one_step` and :mod:`jaxadv.attacks.gradient_flow`.

A grid can only see crossings at its points: if f changes sign twice between two grid
points, that excursion is missed, and inside the bracket the bisection finds *a* crossing
(the first one when there is one crossing in the bracket). ``n_grid`` sets the trade-off.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from jaxadv import _validate, kernels
from jaxadv.attacks import _common
from jaxadv.attacks.directions import layout_directions
from jaxadv.nets._network import Network, Params

__all__ = ["LineSearchResult", "SharedLineSearchResult", "line_search", "shared_line_search"]

# The geometric grid spans t_max·2^{-GRID_OCTAVES} … t_max: crossings are located to the same
# relative resolution at every scale (the boundary distance along a random direction is
# Θ(‖x‖) and t_max a few ‖x‖; 2^{-10} of t_max is far below any distance of interest, and
# the first cell [0, t_1] is still searched by bisection when t_1 flips).
GRID_OCTAVES = 10.0


# ---------------------------------------------------------------------------------------
# the search engine (one example, scalar parameter)


def bisect(pred: Callable[[jax.Array], jax.Array], lo: jax.Array, hi: jax.Array, n_bisect: int, rtol: jax.Array):
    """Bisection on a bracket where ``pred(lo)`` is False (or lo = 0) and ``pred(hi)`` is True.

    Stops after ``n_bisect`` evaluations, when ``hi − lo ≤ rtol·hi``, or when the midpoint
    equals an endpoint (float resolution reached). A bracket with ``lo == hi`` is left alone.

    Returns:
      ``(lo, hi, n_evals)``; ``pred(hi)`` is still True.
    """
    if n_bisect == 0:
        return lo, hi, jnp.zeros((), jnp.int32)

    def mid_of(lo, hi):
        return lo + (hi - lo) / 2

    def cond(s):
        lo, hi, i = s
        mid = mid_of(lo, hi)
        return (i < n_bisect) & (mid > lo) & (mid < hi) & (hi - lo > rtol * hi)

    def body(s):
        lo, hi, i = s
        mid = mid_of(lo, hi)
        fl = pred(mid)
        return jnp.where(fl, lo, mid), jnp.where(fl, mid, hi), i + 1

    return jax.lax.while_loop(cond, body, (lo, hi, jnp.zeros((), jnp.int32)))


def first_crossing(pred: Callable[[jax.Array], jax.Array], grid: jax.Array, n_bisect: int, rtol: jax.Array):
    """The first grid point where ``pred`` holds, refined by bisection from the previous one.

    Args:
      pred: ``pred(t) -> bool`` for a scalar t; evaluated on the whole grid in one vmapped
        call, then once per bisection step.
      grid: ``(n,)`` nondecreasing positive values of t (repeats allowed).
      n_bisect: maximum bisection steps (static).
      rtol: relative tolerance of the bisection on t.

    Returns:
      ``(t, found, n_evals)``: ``t`` is the smallest value found where ``pred`` holds (the
      flipping end of the final bracket); ``found`` is whether any grid point satisfied
      ``pred``; ``n_evals`` counts the evaluations of ``pred``.
    """
    fl = jax.vmap(pred)(grid)
    found = jnp.any(fl)
    j = jnp.argmax(fl)
    hi = grid[j]
    lo = jnp.where(j > 0, grid[jnp.maximum(j - 1, 0)], jnp.zeros_like(hi))
    lo = jnp.where(found, lo, hi)
    _, hi, nb = bisect(pred, lo, hi, n_bisect, rtol)
    return hi, found, nb + grid.shape[0]


def geometric_grid(t_max: jax.Array, n: int, octaves: float = GRID_OCTAVES) -> jax.Array:
    """``n`` points t_max·2^{-octaves·(n−1−j)/(n−1)}, j = 0…n−1 (just ``[t_max]`` for n = 1)."""
    if n == 1:
        return t_max[None]
    e = jnp.linspace(-octaves, 0.0, n, dtype=t_max.dtype)
    return t_max * jnp.exp2(e).at[-1].set(1.0)


def _scalar_hyper(t_max: Any, rtol: Any) -> tuple[jax.Array, jax.Array]:
    return _common.positive_scalar(t_max, "t_max"), _common.nonneg_scalar(rtol, "rtol")


# ---------------------------------------------------------------------------------------
# per-input line search


class LineSearchResult(NamedTuple):
    """Result of :func:`line_search`; leading axes ``(n_net, n_x)`` or ``(n_x,)``.

    Attributes:
      x_adv: ``(..., *input_shape)`` x + t·u; where failed, x + t_max·u (the farthest point tried).
      distance: ``(...)`` t·‖u‖₂ (Euclidean; equals t for unit u); ``inf`` where failed.
      t: ``(...)`` the step in units of u; ``inf`` where failed.
      success: ``(...)`` strict sign change, verified at x_adv.
      f_clean: ``(...)`` f(x).
      f_adv: ``(...)`` f(x_adv).
      n_forward: ``(...)`` int32 forward passes (clean, grid, bisection, final check).
      n_grad: ``(...)`` int32 gradient evaluations (always 0).
    """

    x_adv: jax.Array
    distance: jax.Array
    t: jax.Array
    success: jax.Array
    f_clean: jax.Array
    f_adv: jax.Array
    n_forward: jax.Array
    n_grad: jax.Array


@dataclasses.dataclass(frozen=True)
class _LineSearch:
    apply: Callable
    n_grid: int
    n_bisect: int

    def __call__(self, params, x, u, t_max, rtol) -> LineSearchResult:
        dt = x.dtype
        t_max, rtol = t_max.astype(dt), rtol.astype(dt)
        f0 = self.apply(params, x)

        def pred(t):
            return _common.flipped(f0, self.apply(params, x + t * u))

        t, found, n = first_crossing(pred, geometric_grid(t_max, self.n_grid), self.n_bisect, rtol)
        t = jnp.where(found, t, t_max)
        x_adv = x + t * u
        f_adv = self.apply(params, x_adv)
        success = found & _common.flipped(f0, f_adv)
        inf = jnp.asarray(jnp.inf, dt)
        return LineSearchResult(
            x_adv=x_adv,
            distance=jnp.where(success, t * _common.lp_norm(u, 2.0), inf),
            t=jnp.where(success, t, inf),
            success=success,
            f_clean=f0,
            f_adv=f_adv,
            n_forward=(n + 2).astype(jnp.int32),
            n_grad=jnp.zeros((), jnp.int32),
        )


def line_search(
    net: Network,
    params: Params,
    xs: jax.Array,
    directions: jax.Array,
    *,
    t_max: float,
    n_grid: int = 32,
    n_bisect: int = 30,
    rtol: float = 1e-4,
    chunk_size: int | None = None,
    max_bytes: int | None = None,
) -> LineSearchResult:
    """The smallest t ≥ 0 with sign f(x + t·u) ≠ sign f(x), for each (network, input).

    De Palma, Kiani & Lloyd 2021, Theorem 1: along a fixed or random unit direction the
    first crossing is Θ(‖x‖) away (compare the O(1) of :func:`one_step`). Forward passes only.

    The search scans a geometric grid of ``n_grid`` values t_max·2^{-10}…t_max in one
    batched call, takes the first grid point where the sign has flipped, and bisects between
    it and the previous grid point (or 0) until ``hi − lo ≤ rtol·hi``, ``n_bisect`` steps, or
    float resolution. The returned t is the flipping end of that bracket, and success is
    verified by evaluating f there. Only one direction, t ≥ 0, is searched: pass ``-u`` for
    the other.

    Args:
      net: the network family.
      params: one network's params, or many stacked on a leading axis.
      xs: ``(n_x, *input_shape)`` or ``(n_net, n_x, *input_shape)`` inputs.
      directions: u, with the layout of ``xs``, or per pair ``(n_net, n_x, *input_shape)``,
        per network ``(n_net, *input_shape)``, or one ``input_shape`` for all. t is measured
        in units of u, so unit u (e.g. :func:`random_directions`) gives Euclidean distances.
      t_max: the largest t searched (traced: a sweep does not recompile).
      n_grid: grid points (static).
      n_bisect: maximum bisection steps (static; 0 returns the grid point).
      rtol: relative tolerance on t (traced; 0 bisects to float resolution).
      chunk_size: pairs per vmapped block (see :func:`jaxadv.kernels.map_pairs`).
      max_bytes: memory budget of one block.

    Returns:
      :class:`LineSearchResult` with leading axes ``(n_net, n_x)`` or ``(n_x,)``.

    Examples:
      >>> import jax, jaxadv
      >>> net = jaxadv.nets.two_layer(d=20, k=20)
      >>> params = net.init(jax.random.key(0))
      >>> xs = jaxadv.data.sphere(jax.random.key(1), 4, 20)
      >>> u = jaxadv.attacks.random_directions(jax.random.key(2), xs.shape)
      >>> r = jaxadv.attacks.line_search(net, params, xs, u, t_max=40.0)
      >>> r.t.shape
      (4,)
    """
    xs = _validate.float_array(xs, "xs")
    per_x, per_pair = layout_directions(net, params, xs, directions)
    t_max, rtol = _scalar_hyper(t_max, rtol)
    n_grid = _validate.positive_int(n_grid, "n_grid")
    n_bisect = _common.nonneg_int(n_bisect, "n_bisect")
    fn = _LineSearch(net.apply, n_grid, n_bisect)
    return kernels.map_pairs(
        fn, net, params, xs, per_x=per_x, per_pair=per_pair, shared=(t_max, rtol), chunk_size=chunk_size, max_bytes=max_bytes
    )


# ---------------------------------------------------------------------------------------
# one step shared by a whole set


class SharedLineSearchResult(NamedTuple):
    """Result of :func:`shared_line_search`.

    Attributes:
      t: ``(n_net,)`` or ``()`` the smallest shared step found; ``inf`` where not found
        within t_max.
      success: ``(n_net,)`` or ``()`` every (unmasked) point strictly flipped at t, verified.
      flipped: ``(n_net, m)`` or ``(m,)`` per point, strict sign change at the returned t (at
        t_max where the search failed).
      f_clean: ``(n_net, m)`` or ``(m,)`` f(x_i).
      f_adv: ``(n_net, m)`` or ``(m,)`` f(x_i + t·u_i) (t_max where failed).
      n_forward: ``(n_net,)`` or ``()`` int32 evaluations of the whole set (clean, grid,
        bisection, final check); each costs m forward passes.
    """

    t: jax.Array
    success: jax.Array
    flipped: jax.Array
    f_clean: jax.Array
    f_adv: jax.Array
    n_forward: jax.Array


@dataclasses.dataclass(frozen=True)
class _SharedLineSearch:
    apply: Callable
    n_grid: int
    n_bisect: int

    def __call__(self, params, xs, us, where, t_max, rtol) -> SharedLineSearchResult:
        dt = xs.dtype
        t_max, rtol = t_max.astype(dt), rtol.astype(dt)

        def f(points):
            return jax.vmap(lambda x: self.apply(params, x))(points)

        f0 = f(xs)

        def pred(t):
            return jnp.all(_common.flipped(f0, f(xs + t * us)) | ~where)

        t, found, n = first_crossing(pred, geometric_grid(t_max, self.n_grid), self.n_bisect, rtol)
        t = jnp.where(found, t, t_max)
        f_adv = f(xs + t * us)
        fl = _common.flipped(f0, f_adv)
        # An empty selection is vacuously 'all flipped' at t = 0: report it as a failure.
        success = found & jnp.any(where) & jnp.all(fl | ~where)
        return SharedLineSearchResult(
            t=jnp.where(success, t, jnp.asarray(jnp.inf, dt)),
            success=success,
            flipped=fl,
            f_clean=f0,
            f_adv=f_adv,
            n_forward=(n + 2).astype(jnp.int32),
        )


def shared_line_search(
    net: Network,
    params: Params,
    xs: jax.Array,
    directions: jax.Array,
    *,
    t_max: float,
    n_grid: int = 32,
    n_bisect: int = 30,
    rtol: float = 1e-4,
    where: jax.Array | None = None,
    chunk_size: int | None = None,
) -> SharedLineSearchResult:
    """The smallest t ≥ 0 at which ONE shared step flips every point of a set at once.

    Vardi, Yehudai & Shamir 2022, §6: with z = Σ_{i∈I} y_i x_i over the margin set I and
    u_i = −y_i z/‖z‖, the reported perturbation size is the smallest c > 0 such that
    y_i f(x_i − y_i c z/‖z‖) < 0 for every i ∈ I; that is this function with
    ``directions[i] = u_i``. The predicate is "every point i has a strict sign change between
    f(x_i) and f(x_i + t·u_i)". The set of such t need not be an interval, so the search
    scans a geometric grid t_max·2^{-10}…t_max for the first t where all points are flipped
    and bisects on the same predicate between it and the previous grid point (or 0).

    Args:
      net: the network family.
      params: one network's params, or many stacked on a leading axis.
      xs: ``(m, *input_shape)`` one set (for one network, or shared by all networks), or
        ``(n_net, m, *input_shape)`` a set per network.
      directions: u_i, shape ``xs.shape``, or ``(n_net, m, *input_shape)`` (per-network
        directions for a shared set). Not normalised here: t is in units of u_i.
      t_max: the largest t searched (traced).
      n_grid: grid points (static).
      n_bisect: maximum bisection steps (static).
      chunk_size: networks per vmapped block (see :func:`jaxadv.kernels.map_nets`).
      rtol: relative tolerance on t (traced; 0 bisects to float resolution).
      where: optional boolean mask ``(m,)`` or ``(n_net, m)``: only points with True must
        flip (e.g. the margin set of each network out of a common data set).

    Returns:
      :class:`SharedLineSearchResult`; per-network fields have shape ``(n_net,)`` (``()`` for
      one network), per-point fields ``(n_net, m)`` (``(m,)``).
    """
    xs = _validate.float_array(xs, "xs")
    lay = kernels.layout(net, params, xs)
    us = _validate.float_array(directions, "directions").astype(xs.dtype)
    in_shape = tuple(net.input_shape)
    m = lay.n_x
    shapes = [tuple(xs.shape)]
    if lay.n_net is not None and not lay.per_net_inputs:
        shapes.append((lay.n_net, m, *in_shape))
    if tuple(us.shape) not in shapes:
        raise ValueError(f"`directions` must have shape {' or '.join(map(str, shapes))}, got {tuple(us.shape)}.")
    per_net_sets = lay.per_net_inputs or tuple(us.shape) != tuple(xs.shape)
    if per_net_sets and not lay.per_net_inputs:
        xs = jnp.broadcast_to(xs, us.shape)
    if where is None:
        mask = jnp.ones(xs.shape[: xs.ndim - len(in_shape)], bool)
    else:
        mask = jnp.asarray(where)
        if mask.dtype != jnp.bool_:
            raise TypeError(f"`where` must be a boolean mask, got dtype {mask.dtype}.")
        ok = [(m,)] + ([(lay.n_net, m)] if lay.n_net is not None else [])
        if tuple(mask.shape) not in ok:
            raise ValueError(f"`where` must have shape {' or '.join(map(str, ok))}, got {tuple(mask.shape)}.")
        if per_net_sets:
            mask = jnp.broadcast_to(mask, (lay.n_net, m))
        elif mask.ndim == 2:  # a mask per network over a shared set
            xs, us = (jnp.broadcast_to(a, (lay.n_net, *a.shape)) for a in (xs, us))
            per_net_sets = True
    t_max, rtol = _scalar_hyper(t_max, rtol)
    n_grid = _validate.positive_int(n_grid, "n_grid")
    n_bisect = _common.nonneg_int(n_bisect, "n_bisect")
    fn = _SharedLineSearch(net.apply, n_grid, n_bisect)
    if lay.n_net is None or per_net_sets:
        return kernels.map_nets(fn, net, params, per_net=(xs, us, mask), shared=(t_max, rtol), chunk_size=chunk_size)
    return kernels.map_nets(fn, net, params, shared=(xs, us, mask, t_max, rtol), chunk_size=chunk_size)
