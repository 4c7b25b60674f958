"""Learning-rate schedules for margin maximisation, and the optax step that applies them.

Two schedules, both optax schedules (``schedule(step) -> lr``) that are also pytrees (their
numbers are traced, so a sweep over them compiles once) with an exact ``log(step)``:

* :func:`growing_lr`: Vardi, Yehudai & Shamir 2022, §6: lr_t = lr0 · factor^{⌊t/every⌋} with
  lr0 = 1e−5, factor 1.1, every 100 steps. The step on θ is lr_t · ∇𝓛.
* :func:`loss_normalised_lr`: Lyu & Li 2020 (``LossBasedLRv1``, PROTOCOLS §6.1): the step is
  (lr_t / 𝓛(θ)) · ∇𝓛 = lr_t · ∇log 𝓛. With ``adaptive=True`` (their rule) a step that
  increases the loss (or makes it non-finite) is rolled back and lr ← lr / 2^{1/10}; an
  accepted step sets lr ← lr · 2^{1/5}. Full-batch training only (their rule is per epoch).

:func:`scale_by_loss` turns ∇log 𝓛 into the optax update −exp(log lr_t + log 𝓛)·∇log 𝓛
(growing) or −lr_t·∇log 𝓛 (normalised), so no factor ever under- or overflows on its own.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxadv import _validate


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class GrowingLR:
    """lr_t = lr0 · factor^{⌊t / every⌋} (Vardi et al. 2022, §6). Build it with :func:`growing_lr`.

    Attributes:
      lr0: initial learning rate.
      factor: multiplicative growth per period.
      every: period in steps.
    """

    lr0: Any
    factor: Any
    every: Any

    normalised = False  # the step is lr_t · ∇𝓛

    def log(self, step: jax.Array) -> jax.Array:
        """log lr_t, exact in log space (lr_t itself may overflow after very long runs)."""
        periods = jnp.floor_divide(jnp.asarray(step), jnp.asarray(self.every))
        return jnp.log(jnp.asarray(self.lr0)) + periods * jnp.log(jnp.asarray(self.factor))

    def __call__(self, step: jax.Array) -> jax.Array:
        return jnp.exp(self.log(step))


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class LossNormalisedLR:
    """Lyu & Li's loss-normalised step lr_t/𝓛(θ) (PROTOCOLS §6.1). Build it with :func:`loss_normalised_lr`.

    Attributes:
      lr: the base rate lr_0 (lr_t = lr_0 times the adaptive factor accumulated so far).
      up: factor applied after an accepted step (adaptive only).
      down: divisor applied after a rejected step (adaptive only).
      adaptive: static; whether Lyu & Li's accept/roll-back rule is on.
    """

    lr: Any
    up: Any
    down: Any
    adaptive: bool = dataclasses.field(default=True, metadata=dict(static=True))

    normalised = True  # the step is lr_t · ∇log 𝓛

    def log(self, step: jax.Array) -> jax.Array:
        """log of the base rate (the adaptive factor lives in the training state).

        Constant in ``step``; broadcast to its shape so that, like :meth:`GrowingLR.log`, an
        array of steps gives an array of rates.
        """
        return jnp.broadcast_to(jnp.log(jnp.asarray(self.lr)), jnp.shape(step))

    def __call__(self, step: jax.Array) -> jax.Array:
        return jnp.exp(self.log(step))


Schedule = GrowingLR | LossNormalisedLR


def growing_lr(lr0: float = 1e-5, *, factor: float = 1.1, every: int = 100) -> GrowingLR:
    """The paper's growing learning rate lr_t = lr0 · factor^{⌊t/every⌋} (Vardi et al. 2022, §6).

    Args:
      lr0: initial rate (> 0), 1e−5 in the paper.
      factor: growth factor per period (≥ 1), 1.1 in the paper.
      every: period in steps, 100 in the paper.

    Returns:
      A :class:`GrowingLR`, usable as an optax schedule.

    Examples:
      >>> from jaxadv.train import growing_lr
      >>> lr = growing_lr()
      >>> round(float(lr(10_000)) / 0.1378, 2)  # 1e−5 · 1.1^100
      1.0
    """
    lr0 = _validate.positive_float(lr0, "lr0")
    factor = _validate.positive_float(factor, "factor")
    if factor < 1:
        raise ValueError(f"`factor` must be a finite number ≥ 1 (a growing rate), got {factor}.")
    every = _validate.positive_int(every, "every")
    return GrowingLR(lr0, factor, every)


def constant_lr(lr: float) -> GrowingLR:
    """A constant rate lr (a :class:`GrowingLR` with factor 1)."""
    return GrowingLR(_validate.positive_float(lr, "lr"), 1.0, 1)


def loss_normalised_lr(
    lr: float = 0.1, *, adaptive: bool = True, up: float = 2 ** (1 / 5), down: float = 2 ** (1 / 10)
) -> LossNormalisedLR:
    """Lyu & Li's loss-normalised rate: effective rate lr_t / 𝓛(θ) on ∇𝓛 (PROTOCOLS §6.1).

    Args:
      lr: base rate (> 0); Lyu & Li start at 0.1.
      adaptive: Lyu & Li's rule (accept: lr·up; loss increase or non-finite: roll back, lr/down).
        With ``False`` the rate stays ``lr`` and a non-finite loss stops training.
      up: > 1, 2^{1/5} in their code.
      down: > 1, 2^{1/10} in their code.

    Returns:
      A :class:`LossNormalisedLR`.
    """
    lr = _validate.positive_float(lr, "lr")
    if not isinstance(adaptive, bool):
        raise TypeError(f"`adaptive` must be True or False, got {adaptive!r}.")
    up = _validate.positive_float(up, "up")
    down = _validate.positive_float(down, "down")
    if up < 1 or down <= 1:
        raise ValueError(f"`up` must be ≥ 1 and `down` > 1, got up={up}, down={down}.")
    return LossNormalisedLR(lr, up, down, adaptive)


def check_schedule(lr: Any, name: str = "lr") -> Schedule:
    """A schedule from a number (constant rate) or a :class:`GrowingLR` / :class:`LossNormalisedLR`."""
    if isinstance(lr, (GrowingLR, LossNormalisedLR)):
        for field in ("lr0", "factor") if isinstance(lr, GrowingLR) else ("lr", "up", "down"):
            value = getattr(lr, field)
            if not _validate.is_tracer(value):
                v = float(value)
                if not (math.isfinite(v) and v > 0):
                    raise ValueError(f"`{name}.{field}` must be a finite number > 0, got {value!r}.")
        return lr
    if isinstance(lr, bool) or not isinstance(lr, (int, float)):
        raise TypeError(
            f"`{name}` must be a number or a schedule from jaxadv.train (growing_lr, loss_normalised_lr, "
            f"constant_lr), got {type(lr).__name__}."
        )
    return constant_lr(lr)


class ScaleByLossState(NamedTuple):
    """State of :func:`scale_by_loss`.

    Attributes:
      count: ``()`` int32, number of accepted steps (the schedule's t).
    """

    count: jax.Array


def scale_by_loss(schedule: Schedule) -> optax.GradientTransformationExtraArgs:
    """Turns ∇log 𝓛 into the step −η_t·∇𝓛, combining η_t and 𝓛 in log space.

    ``update(grad_log_loss, state, params=None, *, log_loss, log_lr_offset=0.0)`` returns
    −exp(log lr_t + log_lr_offset + log 𝓛)·∇log 𝓛 for :class:`GrowingLR` (= −lr_t ∇𝓛) and
    −exp(log lr_t + log_lr_offset)·∇log 𝓛 for :class:`LossNormalisedLR` (= −(lr_t/𝓛) ∇𝓛).
    ``log_lr_offset`` carries Lyu & Li's adaptive factor.

    Args:
      schedule: a :class:`GrowingLR` or :class:`LossNormalisedLR` (a number: a constant rate).

    Returns:
      An optax ``GradientTransformationExtraArgs``.
    """
    schedule = check_schedule(schedule, "schedule")

    def init(params):
        del params
        return ScaleByLossState(jnp.zeros([], jnp.int32))

    def update(updates, state, params=None, *, log_loss, log_lr_offset=0.0, **extra):
        del params, extra
        log_step = schedule.log(state.count) + log_lr_offset
        if not schedule.normalised:
            log_step = log_step + log_loss
        updates = jax.tree.map(lambda g: -jnp.exp(log_step.astype(g.dtype)) * g, updates)
        return updates, ScaleByLossState(optax.safe_increment(state.count))

    return optax.GradientTransformationExtraArgs(init, update)
