"""Exponential and logistic losses of the margins q_i = y_i N(x_i), computed in log space.

Vardi, Yehudai & Shamir 2022, eq. (1): 𝓛(θ) = Σ_i ℓ(y_i N_θ(x_i)) with ℓ(q) = e^{−q}
(exponential) or ℓ(q) = log(1 + e^{−q}) (logistic). Their experiments train until
𝓛 < 1e−30, i.e. margins q ≈ 69 + ln m; float32 cannot hold e^{−q} for q > ~87 (nor its
gradient long before that). Everything here is therefore computed as

    log 𝓛 = logsumexp_i log ℓ(q_i)        (− log m for the mean),

with log ℓ(q) = −q (exponential) or a stable log softplus(−q) (logistic), and the gradient
as ∇𝓛 = 𝓛 · ∇ log 𝓛: the factor 𝓛 is combined with the learning rate in log space
(:func:`jaxadv.train.scale_by_loss`), never materialised on its own.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from jaxadv import _validate

KINDS = ("exponential", "logistic")
REDUCTIONS = ("sum", "mean")

# Below this argument, log softplus(t) = t + log1p(−eᵗ/2) to within eᵗ²/5 < 2e−14.
_SOFTPLUS_SWITCH = -15.0


def _log_softplus(t: jax.Array) -> jax.Array:
    """log(log(1 + eᵗ)), finite for every finite t (including t → −∞, where softplus underflows)."""
    # Clamped per branch so that neither branch's gradient is NaN where it is not selected;
    # by `where`, not min/max, whose tie at the switch would split (halve) the gradient.
    small = jnp.where(t < _SOFTPLUS_SWITCH, t, _SOFTPLUS_SWITCH)
    big = jnp.where(t < _SOFTPLUS_SWITCH, _SOFTPLUS_SWITCH, t)
    return jnp.where(t < _SOFTPLUS_SWITCH, small + jnp.log1p(-0.5 * jnp.exp(small)), jnp.log(jax.nn.softplus(big)))


def log_losses(q: jax.Array, *, kind: str = "exponential") -> jax.Array:
    """Per-sample log ℓ(q_i), shape of ``q``.

    Args:
      q: margins y_i N(x_i), any shape.
      kind: ``"exponential"`` (log ℓ = −q) or ``"logistic"`` (log log(1 + e^{−q})).
    """
    kind = _validate.choice(kind, "kind", KINDS)
    q = jnp.asarray(q)
    return -q if kind == "exponential" else _log_softplus(-q)


def log_loss(q: jax.Array, *, kind: str = "exponential", reduction: str = "sum") -> jax.Array:
    """log 𝓛 of the margins ``q``, via log-sum-exp (Vardi et al. 2022, eq. (1), in log space).

    Args:
      q: margins y_i N(x_i), shape ``(m,)`` (the loss reduces over the last axis, so
        ``(..., m)`` gives one loss per leading index).
      kind: ``"exponential"`` or ``"logistic"``.
      reduction: ``"sum"`` (the paper's eq. (1)) or ``"mean"``.

    Returns:
      log 𝓛, shape ``q.shape[:-1]``; finite for finite margins of any size.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxadv.train import log_loss
      >>> float(log_loss(jnp.array([1000.0, 2000.0])))  # 𝓛 = e^{−1000} underflows; its log does not
      -1000.0
    """
    reduction = _validate.choice(reduction, "reduction", REDUCTIONS)
    lq = log_losses(q, kind=kind)
    out = jax.nn.logsumexp(lq, axis=-1)
    if reduction == "mean":
        out = out - jnp.log(jnp.asarray(lq.shape[-1], lq.dtype))
    return out


def loss(q: jax.Array, *, kind: str = "exponential", reduction: str = "sum") -> jax.Array:
    """𝓛 = exp(log 𝓛) in the dtype of ``q`` (0 where it underflows; use :func:`log_loss` there)."""
    return jnp.exp(log_loss(q, kind=kind, reduction=reduction))


def margins_fn(apply: Callable, params: Any, X: jax.Array, y: jax.Array) -> jax.Array:
    """q_i = y_i N(x_i) for one network and a data set ``X`` ``(m, d)``, ``y`` ``(m,)``."""
    return y * jax.vmap(apply, in_axes=(None, 0))(params, X)


def log_loss_and_grad(
    apply: Callable, params: Any, X: jax.Array, y: jax.Array, *, kind: str = "exponential", reduction: str = "sum"
) -> tuple[tuple[jax.Array, jax.Array], Any]:
    """((log 𝓛(θ), q), ∇_θ log 𝓛(θ)) for one network; ∇𝓛 = 𝓛·∇log 𝓛.

    Args:
      apply: ``net.apply``.
      params: one network's params θ.
      X: ``(m, *input_shape)`` inputs.
      y: ``(m,)`` labels in {−1, +1}.
      kind, reduction: as in :func:`log_loss`.

    Returns:
      ``((log_loss, margins), grad)`` with ``grad`` a pytree like ``params``.
    """
    kind = _validate.choice(kind, "kind", KINDS)
    reduction = _validate.choice(reduction, "reduction", REDUCTIONS)

    def objective(p):
        q = margins_fn(apply, p, X, y)
        return log_loss(q, kind=kind, reduction=reduction), q

    return jax.value_and_grad(objective, has_aux=True)(params)
