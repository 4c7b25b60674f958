"""What Vardi, Yehudai & Shamir 2022 measure on a trained network (§4, §6).

* :func:`margins`, :func:`normalised_margin`: q_i = y_i N(x_i) and q_min/‖θ‖^L.
* :func:`margin_set`: I = {i : q_i ≤ slack·q_min} (slack 1.1 in §6), its count and fraction
  (Fig 2a/2b).
* :func:`shared_perturbation`: z = Σ_{i∈I} y_i x_i and the smallest c with
  y_i N(x_i − y_i c z/‖z‖) < 0 for every i ∈ I (Fig 1), via
  :func:`jaxadv.attacks.shared_line_search`.
* :func:`kkt_residuals`: the KKT conditions (eqs. 3–4) θ = Σ_{i∈I} λ_i ∇_θ q_i(θ), λ ≥ 0,
  fitted by non-negative least squares; their relative residual per parameter block.

All functions take one network's params or many stacked on a leading axis, with data
``X`` ``(m, d)`` shared or ``(n_net, m, d)`` per network (as :func:`jaxadv.train.train_margin`).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from jaxadv import _validate, kernels
from jaxadv.nets._network import Network, Params
from jaxadv.train.margin import check_data


def _slack(slack: Any) -> float:
    s = _validate.positive_float(slack, "slack")
    if s < 1:
        raise ValueError(f"`slack` must be ≥ 1 (the margin set is q_i ≤ slack·q_min), got {slack}.")
    return s


def margins(net: Network, params: Params, X: jax.Array, y: jax.Array, *, chunk_size: int | None = None) -> jax.Array:
    """q_i = y_i N(x_i).

    Args:
      net, params: the network(s).
      X: ``(m, d)`` or ``(n_net, m, d)``.
      y: ``(m,)`` or ``(n_net, m)`` labels in {−1, +1}.
      chunk_size: as in :func:`jaxadv.kernels.forward`.

    Returns:
      ``(m,)`` or ``(n_net, m)``.
    """
    X, y, _ = check_data(net, params, X, y)
    chunk_size = _validate.optional_positive_int(chunk_size, "chunk_size")
    return y * kernels.forward(net, params, X, chunk_size=chunk_size)


def _param_norm(params: Params, batched: bool) -> jax.Array:
    sq = [jnp.sum(leaf.reshape((leaf.shape[0], -1) if batched else (-1,)) ** 2, axis=-1) for leaf in jax.tree.leaves(params)]
    return jnp.sqrt(sum(sq))


def normalised_margin(net: Network, params: Params, X: jax.Array, y: jax.Array, *, order: float = 2.0) -> jax.Array:
    """q_min / ‖θ‖^order (Lyu & Li's normalised margin; order 2 for depth-2 nets with first-layer biases).

    Returns:
      ``()`` or ``(n_net,)``.
    """
    order = _validate.positive_float(order, "order")
    q = margins(net, params, X, y)
    return jnp.min(q, axis=-1) / _param_norm(params, q.ndim == 2) ** order


class MarginSet(NamedTuple):
    """The samples on the margin (Vardi et al. 2022, §6). Leading ``(n_net,)`` axis for many networks.

    Attributes:
      in_set: ``(m,)`` bool, q_i ≤ slack·q_min.
      count: ``()`` int32 |I| (Fig 2b plots m − count).
      fraction: ``()`` |I|/m (Fig 2a).
      min_margin: ``()`` q_min.
      all_correct: ``()`` bool, every q_i > 0 (the paper's precondition; when False the set
        is still computed by the same rule but is not meaningful).
      margins: ``(m,)`` q_i.
    """

    in_set: jax.Array
    count: jax.Array
    fraction: jax.Array
    min_margin: jax.Array
    all_correct: jax.Array
    margins: jax.Array


def _margin_set_from(q: jax.Array, slack: float) -> MarginSet:
    q_min = jnp.min(q, axis=-1, keepdims=True)
    in_set = q <= slack * q_min
    count = jnp.sum(in_set, axis=-1).astype(jnp.int32)
    return MarginSet(in_set, count, count / q.shape[-1], q_min[..., 0], jnp.all(q > 0, axis=-1), q)


def margin_set(net: Network, params: Params, X: jax.Array, y: jax.Array, *, slack: float = 1.1) -> MarginSet:
    """I = {i : y_i N(x_i) ≤ slack · min_j y_j N(x_j)} (Vardi et al. 2022, §6; slack 1.1 = 10 %).

    Args:
      net, params, X, y: as in :func:`margins`.
      slack: ≥ 1.

    Returns:
      A :class:`MarginSet`.
    """
    slack = _slack(slack)
    return _margin_set_from(margins(net, params, X, y), slack)


class SharedPerturbation(NamedTuple):
    """The shared perturbation of Vardi et al. 2022, Thm 4.1 / Fig 1. Leading ``(n_net,)`` axis for many networks.

    Attributes:
      c: ``()`` the smallest c > 0 with y_i N(x_i − y_i c ẑ) < 0 for every i ∈ I (ẑ = z/‖z‖);
        ``inf`` where none was found up to ``t_max`` or the analysis does not apply (a
        misclassified sample, an empty margin set, z = 0).
      success: ``()`` bool, c was found and verified; False unless every sample is
        classified correctly, I ≠ ∅ and z ≠ 0.
      z: ``(d,)`` z = Σ_{i∈I} y_i x_i.
      z_norm: ``()`` ‖z‖.
      in_set: ``(m,)`` the margin set I.
      count: ``()`` |I|.
      flipped: ``(m,)`` bool, strict sign change of every sample (margin set or not) at c
        (at ``t_max`` where the search failed): how many others the same step flips.
      n_forward: ``()`` int32 evaluations of the whole set spent by the line search.
    """

    c: jax.Array
    success: jax.Array
    z: jax.Array
    z_norm: jax.Array
    in_set: jax.Array
    count: jax.Array
    flipped: jax.Array
    n_forward: jax.Array


def shared_perturbation(
    net: Network,
    params: Params,
    X: jax.Array,
    y: jax.Array,
    *,
    slack: float = 1.1,
    t_max: float | None = None,
    n_grid: int = 32,
    n_bisect: int = 30,
    rtol: float = 1e-4,
    chunk_size: int | None = None,
) -> SharedPerturbation:
    """z = Σ_{i∈I} y_i x_i over the margin set I and the minimal c of Vardi et al.'s Fig 1.

    The search is :func:`jaxadv.attacks.shared_line_search` on all m samples with directions
    u_i = −y_i z/‖z‖ and the margin set as its ``where`` mask, so shapes stay static across
    networks whose margin sets differ; samples off the margin need not flip.

    The result is a success only where the analysis is meaningful: the network classifies
    every sample correctly (q_min > 0, the paper's precondition), so that I is non-empty, and
    z ≠ 0. Otherwise (a misclassified sample, hence I = ∅ or only q_i = 0; or z = 0) c = inf
    and ``success`` is False, never a vacuous c ≈ 0.

    Args:
      net, params, X, y: as in :func:`margins`.
      slack: margin-set slack (≥ 1), 1.1 in the paper.
      t_max: the largest c searched (> 0); ``None`` means 2·max_i ‖x_i‖ (twice the data
        radius, beyond which a "perturbation" is no longer small: the paper's reference is √d).
      n_grid, n_bisect, rtol, chunk_size: passed to ``shared_line_search``.

    Returns:
      A :class:`SharedPerturbation`.
    """
    from jaxadv import attacks  # the attacks package imports nothing from train
    from jaxadv.attacks import _common

    # every argument is checked before the forward pass (and before the host sync of t_max)
    slack = _slack(slack)
    X, y, lay = check_data(net, params, X, y)
    if t_max is not None:
        t_max = _common.positive_scalar(t_max, "t_max")
    n_grid = _validate.positive_int(n_grid, "n_grid")
    n_bisect = _common.nonneg_int(n_bisect, "n_bisect")
    rtol = _common.nonneg_scalar(rtol, "rtol")
    chunk_size = _validate.optional_positive_int(chunk_size, "chunk_size")
    x_flat = X.reshape(*X.shape[: X.ndim - len(net.input_shape)], -1)
    if t_max is None:
        radius = jnp.max(jnp.linalg.norm(x_flat, axis=-1))
        t_max = jnp.where(radius > 0, 2 * radius, 1)  # all-zero data: z = 0, nothing can succeed
    ms = _margin_set_from(y * kernels.forward(net, params, X, chunk_size=chunk_size), slack)
    w = jnp.where(ms.in_set, y, 0).astype(X.dtype)  # (m,) or (n_net, m)
    lead = "nm" if w.ndim == 2 else "m"
    xl = "nm" if lay.per_net_inputs else "m"
    z = jnp.einsum(f"{lead},{xl}d->{lead[:-1]}d", w, x_flat, precision=jax.lax.Precision.HIGHEST)
    z_norm = jnp.linalg.norm(z, axis=-1)
    unit = z / jnp.maximum(z_norm, jnp.finfo(X.dtype).tiny)[..., None]
    directions = -y[..., None] * unit[..., None, :]  # (…, m, d)
    directions = directions.reshape(*directions.shape[:-1], *net.input_shape)
    # Vardi et al.'s predicate y_i N(x_i − y_i c ẑ) < 0 is the line search's strict sign change
    # between N(x_i) and N(x_i + c·u_i) exactly when y_i N(x_i) > 0, i.e. for correctly
    # classified points: hence the mask q_i > 0 and the all_correct condition below.
    where = ms.in_set & (ms.margins > 0)
    res = attacks.shared_line_search(
        net, params, X, directions, t_max=t_max, n_grid=n_grid, n_bisect=n_bisect, rtol=rtol,
        chunk_size=chunk_size, where=where,
    )
    success = res.success & ms.all_correct & (ms.count > 0) & (z_norm > 0)
    c = jnp.where(success, res.t, jnp.inf).astype(res.t.dtype)
    return SharedPerturbation(c, success, z, z_norm, ms.in_set, ms.count, res.flipped, res.n_forward)


class KKTResult(NamedTuple):
    """Fit of the KKT conditions θ = Σ_{i∈I} λ_i ∇_θ q_i(θ), λ ≥ 0 (Vardi et al. 2022, eqs. 3–4).

    Leading ``(n_net,)`` axis for many networks. The fit is scale-invariant: for a 2-homogeneous
    net the λ fitted at θ are the multipliers at θ/√q_min (margins normalised to 1).

    Attributes:
      lam: ``(m,)`` λ_i ≥ 0, zero off the margin set.
      residual: ``()`` ‖θ − Σ λ_i ∇q_i‖ / ‖θ‖ over all parameters.
      residuals: dict ``{leaf name: ()}`` the same per parameter block (for ``shallow``:
        "w" eq. (3), "b" eq. (4), "v" its analogue v_j = Σ λ_i y_i σ(w_jᵀx_i + b_j)).
      in_set: ``(m,)`` the margin set used.
    """

    lam: jax.Array
    residual: jax.Array
    residuals: dict
    in_set: jax.Array


def _leaf_names(params: Params) -> list[str]:
    paths = jax.tree_util.tree_flatten_with_path(params)[0]
    return [jax.tree_util.keystr(p, simple=True, separator="/") or "params" for p, _ in paths]


def nnls(A: jax.Array, b: jax.Array, *, mask: jax.Array | None = None, n_iter: int = 3000) -> jax.Array:
    """min_{λ ≥ 0} ½λᵀAλ − bᵀλ for a positive semi-definite A: the normal equations of
    min_{λ≥0} ‖Gλ − θ‖² with A = GᵀG, b = Gᵀθ. Accelerated projected gradient (FISTA with
    restarts), step 1/λ_max(A); coordinates outside ``mask`` are held at 0. jit-compatible.

    Args:
      A: ``(n, n)`` PSD.
      b: ``(n,)``.
      mask: ``(n,)`` bool, free coordinates (default all).
      n_iter: iterations (static).

    Returns:
      ``(n,)`` λ ≥ 0.
    """
    A = _validate.float_array(A, "A")
    b = _validate.float_array(b, "b")
    n_iter = _validate.positive_int(n_iter, "n_iter")
    if b.ndim != 1:
        raise ValueError(f"`b` must have shape (n,), got {tuple(b.shape)}.")
    n = b.shape[0]
    if tuple(A.shape) != (n, n):
        raise ValueError(f"`A` must have shape ({n}, {n}) to match `b`, got {tuple(A.shape)}.")
    if mask is None:
        mask = jnp.ones((n,), bool)
    else:
        mask = jnp.asarray(mask)
        if mask.dtype != jnp.bool_ or tuple(mask.shape) != (n,):
            raise ValueError(f"`mask` must be a boolean array of shape ({n},), got {mask.dtype}{list(mask.shape)}.")
    A, b = jnp.asarray(A, jnp.result_type(A, b)), jnp.asarray(b, jnp.result_type(A, b))
    A = jnp.where(mask[:, None] & mask[None, :], A, 0)
    b = jnp.where(mask, b, 0)
    step = 1.0 / jnp.maximum(jnp.linalg.eigvalsh(A)[-1], jnp.finfo(A.dtype).tiny)

    def objective(lam):
        return 0.5 * lam @ A @ lam - b @ lam

    def body(_, s):
        lam, mom, t, f_old = s
        new = jnp.where(mask, jnp.maximum(mom - step * (A @ mom - b), 0), 0)
        f_new = objective(new)
        restart = f_new > f_old  # O'Donoghue & Candès: restart the momentum when it overshoots
        t_new = jnp.where(restart, 1.0, (1 + jnp.sqrt(1 + 4 * t * t)) / 2)
        mom_new = jnp.where(restart, new, new + ((t - 1) / t_new) * (new - lam))
        return new, mom_new, t_new.astype(t.dtype), f_new

    zero = jnp.zeros((n,), A.dtype)
    init = (zero, zero, jnp.ones((), A.dtype), objective(zero))
    return jax.lax.fori_loop(0, n_iter, body, init)[0]


@dataclasses.dataclass(frozen=True)
class _KKT:
    apply: Callable
    n_iter: int

    def __call__(self, params, X, y, in_set):
        flat, unravel = ravel_pytree(params)

        def q_one(p_flat, x, yi):
            return yi * self.apply(unravel(p_flat), x)

        G = jax.vmap(jax.grad(q_one), in_axes=(None, 0, 0))(flat, X, y)  # (m, P): ∇_θ q_i
        hi = jax.lax.Precision.HIGHEST
        A = jnp.matmul(G, G.T, precision=hi)
        b = jnp.matmul(G, flat, precision=hi)
        lam = nnls(A, b, mask=in_set, n_iter=self.n_iter)
        r = unravel(flat - jnp.matmul(lam, G, precision=hi))
        rel = [jnp.linalg.norm(rl.ravel()) / jnp.maximum(jnp.linalg.norm(pl.ravel()), jnp.finfo(flat.dtype).tiny)
               for rl, pl in zip(jax.tree.leaves(r), jax.tree.leaves(params))]
        total = jnp.linalg.norm(flat - jnp.matmul(lam, G, precision=hi)) / jnp.linalg.norm(flat)
        return lam, total, rel


def kkt_residuals(
    net: Network, params: Params, X: jax.Array, y: jax.Array, *, slack: float = 1.1, n_iter: int = 3000
) -> KKTResult:
    """Fits λ ≥ 0 on the margin set to θ = Σ_i λ_i ∇_θ q_i(θ) and reports the relative residuals.

    Vardi et al. 2022, eqs. (3)–(4): at a KKT point of min ½‖θ‖² s.t. q_i ≥ 1, for every
    neuron j, w_j = Σ_{i∈I} λ_i y_i v_j σ'_{ij} x_i and b_j = Σ_{i∈I} λ_i y_i v_j σ'_{ij} (and
    v_j = Σ λ_i y_i σ(w_jᵀx_i + b_j)); autodiff's σ'(0) = 0 stands for the subgradient at the
    kink. The per-sample gradients G ``(m, P)`` are built explicitly (memory m·P floats: for
    the paper's largest cells use a subset or an accelerator); the NNLS is :func:`nnls`.

    Args:
      net, params, X, y: as in :func:`margins`.
      slack: margin-set slack (≥ 1).
      n_iter: NNLS iterations (static).

    Returns:
      A :class:`KKTResult`.
    """
    slack = _slack(slack)
    n_iter = _validate.positive_int(n_iter, "n_iter")
    X, y, lay = check_data(net, params, X, y)
    ms = _margin_set_from(y * kernels.forward(net, params, X), slack)
    fn = _KKT(net.apply, n_iter)
    if lay.n_net is None:
        lam, total, rel = _kkt_jit(fn, params, X, y, ms.in_set)
    else:
        ax = 0 if lay.per_net_inputs else None
        lam, total, rel = _kkt_many(fn, ax, params, X, y, ms.in_set)
    return KKTResult(lam, total, dict(zip(_leaf_names(params), rel)), ms.in_set)


_kkt_jit = jax.jit(lambda fn, *a: fn(*a), static_argnums=0)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _kkt_many(fn, ax, params, X, y, in_set):
    return jax.vmap(fn, in_axes=(0, ax, ax, 0))(params, X, y, in_set)
