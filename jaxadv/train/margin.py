"""Margin-maximising training: gradient descent on the exponential (or logistic) loss with a
growing learning rate, until the loss is below 1e−30 (Vardi, Yehudai & Shamir 2022, §6).

Steps run in ``lax.scan`` chunks under one jit; between chunks the host checks whether every
network has stopped and (optionally) updates a tqdm bar. Several networks (seeds, data sets)
train at once under ``vmap``; a stopped network is frozen while the others continue, so
network j of a batched run is network j run alone.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxadv import _validate, kernels
from jaxadv.nets._network import Network, Params
from jaxadv.train import losses, schedules

STOP_REASONS = ("running", "target", "max_steps", "diverged")
RUNNING, TARGET, MAX_STEPS, DIVERGED = range(4)
_LN10 = math.log(10.0)
_LR_FLOOR = 1e-50  # Lyu & Li's ``lr_lb``: the adaptive rule gives up below this base rate


class TrainHistory(NamedTuple):
    """Full-data statistics recorded at step 0 and after every chunk.

    Every field has shape ``(n_rec,)``, or ``(n_net, n_rec)`` for many networks; records
    after a network stopped repeat its final values (``step`` stops growing).

    Attributes:
      step: iterations done (int32).
      loss: 𝓛(θ) on all the data in the params' dtype (0 where it underflows).
      log10_loss: log₁₀ 𝓛(θ), exact where ``loss`` underflows.
      min_margin: q_min = min_i y_i N(x_i).
      normalised_margin: q_min / ‖θ‖^order (Lyu & Li's q̄_min; order 2 for depth-2 nets
        with first-layer biases).
      lr: the schedule's rate lr_t for the next step (times the adaptive factor, if any).
      log10_lr_eff: log₁₀ of the effective rate on ∇𝓛 (lr_t, or lr_t/𝓛 when normalised).
      param_norm: ‖θ‖₂ over all parameters.
      cos: cos(θ, −∇𝓛(θ)); → 1 under directional convergence (Ji & Telgarsky 2020).
    """

    step: jax.Array
    loss: jax.Array
    log10_loss: jax.Array
    min_margin: jax.Array
    normalised_margin: jax.Array
    lr: jax.Array
    log10_lr_eff: jax.Array
    param_norm: jax.Array
    cos: jax.Array


class TrainResult(NamedTuple):
    """What :func:`train_margin` returns (a pytree; leading ``(n_net,)`` axis for many networks).

    Attributes:
      params: the final params; always finite (on divergence, the last params whose loss
        was finite).
      history: a :class:`TrainHistory`.
      n_steps: ``()`` int32 iterations done (rejected adaptive steps included).
      reason: ``()`` int32 index into :data:`STOP_REASONS`: 1 target loss reached,
        2 step cap, 3 diverged (non-finite loss or parameters, or the adaptive rate
        fell below 1e−50).
    """

    params: Params
    history: TrainHistory
    n_steps: jax.Array
    reason: jax.Array

    def reasons(self) -> Any:
        """The stop reasons as strings (a str, or a list for many networks)."""
        r = np.asarray(self.reason)
        return STOP_REASONS[int(r)] if r.ndim == 0 else [STOP_REASONS[int(v)] for v in r.ravel()]


class _State(NamedTuple):
    params: Params
    opt_state: Any
    log_l: jax.Array  # log 𝓛 at params, on the batch the last accepted step was evaluated on
    grad: Any  # ∇ log 𝓛 at params, same batch
    step: jax.Array  # int32 iterations done
    done: jax.Array  # bool
    reason: jax.Array  # int32
    log_adapt: jax.Array  # log of Lyu & Li's adaptive factor
    key: jax.Array
    perm: jax.Array  # (m,) int32 the current epoch's shuffle (mini-batch), (0,) for full batch


class _Hyper(NamedTuple):
    schedule: schedules.Schedule
    log_target: jax.Array
    max_steps: jax.Array
    order: jax.Array  # traced like every continuous hyperparameter: a sweep compiles once


@dataclasses.dataclass(frozen=True)
class _Config:
    apply: Callable
    kind: str
    reduction: str
    m: int
    batch_size: int | None  # None: full batch
    chunk: int


def _all_finite(tree: Any) -> jax.Array:
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(tree)]))


def _vdot(a: Any, b: Any) -> jax.Array:
    return sum(jnp.vdot(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def _n_batches(cfg: _Config) -> int:
    return cfg.m // cfg.batch_size  # drop_last: each epoch reshuffles, so no sample is left out for long


def _shuffle(cfg: _Config, key, epoch):
    """Epoch ``epoch``'s order of the m samples: a function of (key, epoch) only."""
    if cfg.batch_size is None:
        return jnp.zeros((0,), jnp.int32)
    return jax.random.permutation(jax.random.fold_in(key, epoch), cfg.m).astype(jnp.int32)


def _next_perm(cfg: _Config, key, perm, t):
    """The shuffle of iteration t given iteration t − 1's: redrawn only when an epoch begins.

    ``t`` must be the same for every network of a vmapped batch (see :func:`_chunk_one`), so
    the ``cond`` stays a branch under ``vmap`` and the O(m log m) shuffle runs once per epoch,
    not once per step.
    """
    if cfg.batch_size is None:
        return perm
    n_b = _n_batches(cfg)
    return jax.lax.cond(t % n_b == 0, lambda: _shuffle(cfg, key, t // n_b), lambda: perm)


def _batch(cfg: _Config, X, y, perm, t):
    """The data of iteration t: everything, or batch t mod n_b of the current epoch's shuffle ``perm``."""
    if cfg.batch_size is None:
        return X, y
    idx = jax.lax.dynamic_slice(perm, ((t % _n_batches(cfg)) * cfg.batch_size,), (cfg.batch_size,))
    return X[idx], y[idx]


def _evaluate(cfg: _Config, params, X, y):
    (log_l, q), g = losses.log_loss_and_grad(cfg.apply, params, X, y, kind=cfg.kind, reduction=cfg.reduction)
    return log_l, q, g


def _step(cfg: _Config, hyper: _Hyper, X, y, state: _State, t: jax.Array) -> _State:
    """One iteration; ``t`` = the iterations done by every still-running network (= state.step there)."""
    sched = hyper.schedule
    adaptive = isinstance(sched, schedules.LossNormalisedLR) and sched.adaptive
    tx = schedules.scale_by_loss(sched)

    def advance(s: _State) -> _State:
        updates, opt_new = tx.update(s.grad, s.opt_state, s.params, log_loss=s.log_l, log_lr_offset=s.log_adapt)
        cand = optax.apply_updates(s.params, updates)
        perm = _next_perm(cfg, s.key, s.perm, t + 1)
        Xb, yb = _batch(cfg, X, y, perm, t + 1)
        log_l, _, g = _evaluate(cfg, cand, Xb, yb)
        finite = jnp.isfinite(log_l) & _all_finite(g) & _all_finite(cand)
        accept = finite & (log_l <= s.log_l) if adaptive else finite
        kept = jax.tree.map(
            lambda new, old: jnp.where(accept, new, old),
            (cand, opt_new, log_l, g),
            (s.params, s.opt_state, s.log_l, s.grad),
        )
        step = s.step + 1
        log_adapt = s.log_adapt
        if adaptive:
            log_adapt = log_adapt + jnp.where(accept, jnp.log(sched.up), -jnp.log(sched.down)).astype(log_adapt.dtype)
            diverged = sched.log(step) + log_adapt < math.log(_LR_FLOOR)
        else:
            diverged = ~accept
        reached = accept & (kept[2] < hyper.log_target) if cfg.batch_size is None else jnp.bool_(False)
        reason = jnp.where(
            diverged, DIVERGED, jnp.where(reached, TARGET, jnp.where(step >= hyper.max_steps, MAX_STEPS, RUNNING))
        ).astype(jnp.int32)
        return _State(*kept, step, reason != RUNNING, reason, log_adapt, s.key, perm)

    return jax.lax.cond(state.done, lambda s: s, advance, state)


def _record(cfg: _Config, hyper: _Hyper, state: _State, log_l, q, g) -> TrainHistory:
    dtype = log_l.dtype
    norm = jnp.sqrt(_vdot(state.params, state.params))
    g_norm = jnp.sqrt(_vdot(g, g))
    cos = -_vdot(state.params, g) / jnp.maximum(norm * g_norm, jnp.finfo(dtype).tiny)
    q_min = jnp.min(q)
    log_lr = (hyper.schedule.log(state.opt_state.count) + state.log_adapt).astype(dtype)
    log_eff = log_lr - log_l if hyper.schedule.normalised else log_lr
    return TrainHistory(
        step=state.step,
        loss=jnp.exp(log_l),
        log10_loss=log_l / _LN10,
        min_margin=q_min,
        normalised_margin=q_min / norm**hyper.order,
        lr=jnp.exp(log_lr),
        log10_lr_eff=log_eff / _LN10,
        param_norm=norm,
        cos=cos,
    )


def _init_one(cfg: _Config, hyper: _Hyper, X, y, params, key) -> tuple[_State, TrainHistory]:
    tx = schedules.scale_by_loss(hyper.schedule)
    log_full, q, g_full = _evaluate(cfg, params, X, y)
    if cfg.batch_size is None:
        log_l, g = log_full, g_full
    else:
        Xb, yb = _batch(cfg, X, y, _shuffle(cfg, key, 0), 0)
        log_l, _, g = _evaluate(cfg, params, Xb, yb)
    finite = jnp.isfinite(log_l) & _all_finite(g)
    reason = jnp.where(~finite, DIVERGED, jnp.where(log_full < hyper.log_target, TARGET, RUNNING)).astype(jnp.int32)
    state = _State(
        params, tx.init(params), log_l, g, jnp.int32(0), reason != RUNNING, reason, jnp.zeros((), log_l.dtype), key,
        _shuffle(cfg, key, 0),
    )
    return state, _record(cfg, hyper, state, log_full, q, g_full)


def _chunk_one(cfg: _Config, hyper: _Hyper, X, y, state: _State, t0: jax.Array) -> tuple[_State, TrainHistory]:
    """``cfg.chunk`` iterations. ``t0`` (unbatched under vmap) is the step of every running network:
    all networks start at 0 and a running one advances by one per iteration (rejected adaptive
    steps included), so running networks share the step count and stopped ones are frozen."""

    def body(carry, _):
        s, t = carry
        return (_step(cfg, hyper, X, y, s, t), t + 1), None

    (state, _), _ = jax.lax.scan(body, (state, t0), None, length=cfg.chunk)
    log_full, q, g = _evaluate(cfg, state.params, X, y)
    if cfg.batch_size is not None:  # mini-batch: the target is checked on the full loss, once per chunk
        reached = ~state.done & (log_full < hyper.log_target)
        reason = jnp.where(reached, TARGET, state.reason).astype(jnp.int32)
        state = state._replace(done=state.done | reached, reason=reason)
    return state, _record(cfg, hyper, state, log_full, q, g)


def _batched(fn: Callable, hyper, X, y, *args, cfg: _Config, n_net: int | None, per_net_data: bool):
    if n_net is None:
        return fn(cfg, hyper, X, y, *args)
    ax = 0 if per_net_data else None
    return jax.vmap(functools.partial(fn, cfg, hyper), in_axes=(ax, ax) + (0,) * len(args))(X, y, *args)


def _chunk_batched(hyper, X, y, state, *, cfg: _Config, n_net: int | None, per_net_data: bool):
    t0 = jnp.max(state.step)  # the running networks' step (stopped ones have fewer or equal)
    if n_net is None:
        return _chunk_one(cfg, hyper, X, y, state, t0)
    ax = 0 if per_net_data else None
    return jax.vmap(functools.partial(_chunk_one, cfg, hyper), in_axes=(ax, ax, 0, None))(X, y, state, t0)


_init_jit = jax.jit(functools.partial(_batched, _init_one), static_argnames=("cfg", "n_net", "per_net_data"))
_chunk_jit = jax.jit(_chunk_batched, static_argnames=("cfg", "n_net", "per_net_data"))


def _check_labels(y: Any, shape: tuple[int, ...]) -> jax.Array:
    y = _validate.float_array(y, "y")
    if tuple(y.shape) != tuple(shape):
        raise ValueError(f"`y` must have shape {tuple(shape)} (one label per row of `X`), got {tuple(y.shape)}.")
    if not _validate.is_tracer(y) and not bool(jnp.all((y == 1) | (y == -1))):
        bad = np.unique(np.asarray(y)[(np.asarray(y) != 1) & (np.asarray(y) != -1)])[:5]
        raise ValueError(f"`y` must hold labels in {{−1, +1}}, got values such as {bad.tolist()}.")
    return y


def check_data(net: Network, params: Params, X: Any, y: Any) -> tuple[jax.Array, jax.Array, kernels.Layout]:
    """Validates a data set for ``net``/``params``: X ``(m, d)`` or ``(n_net, m, d)``, y ``X.shape[:-1]``
    in {−1, +1}, both finite. Returns (X, y, layout)."""
    if not isinstance(net, Network):
        raise TypeError(f"`net` must be a jaxadv.nets.Network (e.g. jaxadv.nets.shallow(d, k)), got {type(net).__name__}.")
    X = _validate.float_array(X, "X")
    lead = _validate.trailing_shape(X, "X", net.input_shape, (1, 2))
    y = _check_labels(y, X.shape[:lead])
    lay = kernels.layout(net, params, X)
    return X, y, lay


def _param_dtype(params: Params) -> Any:
    return jnp.result_type(*jax.tree.leaves(params))


def train_margin(
    net: Network,
    key: jax.Array,
    params: Params,
    X: jax.Array,
    y: jax.Array,
    *,
    lr: Any = None,
    target_loss: float = 1e-30,
    max_steps: int = 1_000_000,
    loss: str = "exponential",
    reduction: str = "sum",
    batch_size: int = 5000,
    chunk: int = 100,
    order: float = 2.0,
    progress: bool = False,
) -> TrainResult:
    """Gradient descent on 𝓛(θ) = Σ_i ℓ(y_i N_θ(x_i)) until 𝓛 < ``target_loss`` (Vardi et al. 2022, §6).

    The update is θ ← θ − η_t ∇𝓛(θ), computed as −exp(log η_t + log 𝓛)·∇log 𝓛 so that float32
    reaches 𝓛 = 1e−30 and far below (see :mod:`jaxadv.train.losses`). Training stops when

    * the loss is below ``target_loss`` (full batch: checked after every step; mini-batch:
      on the full loss after every chunk);
    * ``max_steps`` iterations are done;
    * the loss, its gradient or the parameters become non-finite (or Lyu & Li's adaptive rate
      falls below 1e−50): "diverged"; the returned params are then the last ones whose loss
      was finite, never NaN.

    Args:
      key: PRNG key for the mini-batch shuffles (unused, but required, for full batch). With
        many networks, network j uses ``jax.random.split(key, n_net)[j]``.
      net: the network family, e.g. ``jaxadv.nets.shallow(d, k)``.
      params: one network's initial params, or many stacked on a leading axis (seeds).
      X: inputs ``(m, d)`` shared by every network, or ``(n_net, m, d)`` one data set each.
        Cast to the params' dtype, in which all computation runs.
      y: labels in {−1, +1}, ``(m,)`` or ``(n_net, m)``.
      lr: a schedule from :func:`growing_lr` (default: the paper's lr0 = 1e−5, ×1.1 every 100
        steps), :func:`loss_normalised_lr` (Lyu & Li), or a number (constant rate).
      target_loss: stop below this loss (> 0), 1e−30 in the paper.
      max_steps: step cap.
      loss: ``"exponential"`` (the paper) or ``"logistic"``.
      reduction: ``"sum"`` (the paper's eq. (1)) or ``"mean"``; applies to each batch.
      batch_size: SGD batch (the paper: 5000); full-batch gradient descent when m ≤ batch_size.
        Each epoch reshuffles and uses ⌊m/batch_size⌋ batches.
      chunk: steps per ``lax.scan`` chunk (= the history's resolution, one record per chunk).
      order: homogeneity order L in the normalised margin q_min/‖θ‖^L.
      progress: show a tqdm bar (step, log₁₀ loss, min margin, lr; worst network for many).

    Returns:
      A :class:`TrainResult`.

    Examples:
      >>> import jax
      >>> from jaxadv import nets, train
      >>> X, y = train.sphere_dataset(jax.random.key(0), 10, 10)
      >>> net = nets.shallow(10, 20)
      >>> res = train.train_margin(net, jax.random.key(1), net.init(jax.random.key(2)), X, y,
      ...                          lr=train.loss_normalised_lr(0.1), max_steps=5000)
      >>> res.reasons(), bool(res.history.log10_loss[-1] < -30)
      ('target', True)
    """
    key = _validate.key(key)
    X, y, lay = check_data(net, params, X, y)
    sched = schedules.check_schedule(schedules.growing_lr() if lr is None else lr)
    target = _validate.positive_float(target_loss, "target_loss")
    max_steps = _validate.positive_int(max_steps, "max_steps")
    loss = _validate.choice(loss, "loss", losses.KINDS)
    reduction = _validate.choice(reduction, "reduction", losses.REDUCTIONS)
    batch_size = _validate.positive_int(batch_size, "batch_size")
    chunk = _validate.positive_int(chunk, "chunk")
    order = _validate.positive_float(order, "order")
    m = lay.n_x
    full = m <= batch_size
    if not full and isinstance(sched, schedules.LossNormalisedLR) and sched.adaptive:
        raise ValueError(
            "Lyu & Li's adaptive rule compares the loss before and after a step, which needs full-batch "
            f"training: use batch_size ≥ m = {m} or loss_normalised_lr(..., adaptive=False)."
        )
    dtype = _param_dtype(params)
    X, y = X.astype(dtype), y.astype(dtype)
    cfg = _Config(net.apply, loss, reduction, m, None if full else batch_size, chunk)
    hyper = _Hyper(
        jax.tree.map(lambda v: jnp.asarray(v, dtype if isinstance(v, float) else None), sched),
        jnp.asarray(math.log(target), dtype),
        jnp.asarray(max_steps, jnp.int32),
        jnp.asarray(order, dtype),
    )
    keys = key if lay.n_net is None else jax.random.split(key, lay.n_net)
    static = dict(cfg=cfg, n_net=lay.n_net, per_net_data=lay.per_net_inputs)
    state, rec = _init_jit(hyper, X, y, params, keys, **static)
    records = [rec]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=max_steps, unit="step")
    try:
        for _ in range(-(-max_steps // chunk)):
            if bool(jnp.all(state.done)):
                break
            state, rec = _chunk_jit(hyper, X, y, state, **static)
            records.append(rec)
            if bar is not None:
                bar.update(int(jnp.max(rec.step)) - bar.n)
                worst = int(jnp.argmax(jnp.ravel(rec.log10_loss)))
                bar.set_postfix(
                    log10_loss=f"{float(jnp.ravel(rec.log10_loss)[worst]):.2f}",
                    min_margin=f"{float(jnp.ravel(rec.min_margin)[worst]):.3g}",
                    lr=f"{float(jnp.ravel(rec.lr)[worst]):.3g}",
                )
    finally:
        if bar is not None:
            bar.close()
    history = jax.tree.map(lambda *xs: jnp.stack(xs, axis=-1), *records)
    return TrainResult(state.params, history, state.step, state.reason)
