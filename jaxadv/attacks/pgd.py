"""Fixed-budget attacks: FGSM, PGD and robust accuracy as a function of ε."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxadv import _validate, kernels
from jaxadv.attacks import _common
from jaxadv.attacks._projections import project_ball, steepest, uniform_ball
from jaxadv.nets._network import Network, Params

__all__ = ["AttackResult", "RobustAccuracy", "fgsm", "pgd", "robust_accuracy"]

ATTACKS = ("pgd", "fgsm")


class AttackResult(NamedTuple):
    """Result of :func:`fgsm` and :func:`pgd`; leading axes ``(n_net, n_x)`` or ``(n_x,)``.

    Attributes:
      x_adv: ``(..., *input_shape)`` the returned point, inside the ε-ball (and the box): the
        first sign-flipped iterate, else the iterate with the largest margin −s·f.
      distance: ``(...)`` ‖x_adv − x‖_p where the attack succeeded, ``inf`` where it failed.
      success: ``(...)`` bool, sign f(x_adv) strictly opposite to sign f(x).
      f_clean: ``(...)`` f(x).
      f_adv: ``(...)`` f(x_adv), evaluated at x_adv.
      n_forward: ``(...)`` int32 forward-only evaluations spent.
      n_grad: ``(...)`` int32 value-and-gradient evaluations spent.
    """

    x_adv: jax.Array
    distance: jax.Array
    success: jax.Array
    f_clean: jax.Array
    f_adv: jax.Array
    n_forward: jax.Array
    n_grad: jax.Array


class RobustAccuracy(NamedTuple):
    """Result of :func:`robust_accuracy`.

    Attributes:
      eps: ``(n_eps,)`` the radii.
      robust_accuracy: ``(n_eps,)`` fraction of (network, input) pairs NOT flipped at each ε.
      success: ``(n_eps, n_net, n_x)`` (or ``(n_eps, n_x)``) bool, the attack flipped the pair.
    """

    eps: jax.Array
    robust_accuracy: jax.Array
    success: jax.Array


@dataclasses.dataclass(frozen=True)
class _FGSM:
    apply: Callable[[Params, jax.Array], jax.Array]
    p: float
    bounds: tuple[float, float] | None

    def __call__(self, params: Params, x: jax.Array, eps: jax.Array) -> AttackResult:
        f0, g = jax.value_and_grad(self.apply, argnums=1)(params, x)
        s = jnp.sign(f0)
        x_adv = _common.clip_box(x - s * eps.astype(x.dtype) * steepest(g, self.p), self.bounds)
        f_adv = self.apply(params, x_adv)
        success = _common.flipped(f0, f_adv)
        return AttackResult(
            x_adv, _common.distance_or_inf(x, x_adv, success, self.p), success, f0, f_adv,
            jnp.asarray(1, jnp.int32), jnp.asarray(1, jnp.int32),
        )


@dataclasses.dataclass(frozen=True)
class _PGD:
    apply: Callable[[Params, jax.Array], jax.Array]
    p: float
    n_steps: int
    random_start: bool
    bounds: tuple[float, float] | None

    def __call__(self, params: Params, x: jax.Array, key: jax.Array, eps: jax.Array, step_size: jax.Array) -> AttackResult:
        p, bounds = self.p, self.bounds
        dtype = x.dtype
        eps, step_size = eps.astype(dtype), step_size.astype(dtype)

        def f(z):
            return self.apply(params, z)

        vg = jax.value_and_grad(f)
        f0 = f(x)
        s = jnp.sign(f0)

        def project(z):
            # Ball first, then the box: clipping into the box only shrinks |δ_i| (x is in
            # the box), so the point stays in the ball.
            return _common.clip_box(x + project_ball(z - x, eps, p), bounds)

        z0 = x + uniform_ball(key, x.shape, eps, p, dtype) if self.random_start else x
        z0 = project(z0)

        def cond(st):
            i, _, _, _, done = st
            return (i < self.n_steps) & ~done

        def body(st):
            i, z, best, fbest, _ = st
            fz, g = vg(z)
            # Keep the iterate with the largest margin −s·f; a flipped one ends the attack.
            better = -s * fz > -s * fbest
            best = jnp.where(better, z, best)
            fbest = jnp.where(better, fz, fbest)
            done = _common.flipped(f0, fbest)
            z_next = project(z - s * step_size * steepest(g, p))
            return i + 1, jnp.where(done, z, z_next), best, fbest, done

        init = (jnp.asarray(0, jnp.int32), z0, x, f0, jnp.asarray(False))
        n_grad, z, best, fbest, done = jax.lax.while_loop(cond, body, init)
        # The last iterate has not been evaluated yet (unless the attack stopped early).
        fz = jnp.where(done, fbest, f(z))
        better = ~done & (-s * fz > -s * fbest)
        x_adv = jnp.where(better, z, best)
        f_adv = jnp.where(better, fz, fbest)
        success = _common.flipped(f0, f_adv)
        return AttackResult(
            x_adv, _common.distance_or_inf(x, x_adv, success, p), success, f0, f_adv,
            jnp.where(done, 1, 2).astype(jnp.int32), n_grad,
        )


def _check_common(net, params, xs, norm, bounds):
    p = _common.check_norm(norm)
    bounds = _common.check_bounds(bounds)
    xs = _validate.float_array(xs, "xs")
    kernels.layout(net, params, xs)
    _common.check_inputs_in_box(xs, bounds)
    return p, bounds, xs


def _pair_keys(key: jax.Array, layout: kernels.Layout) -> jax.Array:
    """One key per (network, input): pair (j, i) gets ``split(split(key, n_net)[j], n_x)[i]``
    (one network: ``split(key, n_x)[i]``), so network j alone with key
    ``split(key, n_net)[j]`` reproduces network j of a batched call."""
    if layout.n_net is None:
        return jax.random.split(key, layout.n_x)
    return jax.vmap(lambda k: jax.random.split(k, layout.n_x))(jax.random.split(key, layout.n_net))


def fgsm(
    net: Network,
    params: Params,
    xs: jax.Array,
    *,
    eps: Any,
    norm: Any = math.inf,
    bounds: Any = None,
    chunk_size: int | None = None,
    max_bytes: int | None = None,
) -> AttackResult:
    """Fast gradient (sign) method: one steepest-ascent step of size ε on the margin −s·f(x).

    x_adv = x − s·ε·u with s = sign f(x) and u the unit-ℓp steepest direction of ∇f(x):
    sign ∇f (ℓ∞, Goodfellow et al. 2015), ∇f/‖∇f‖₂ (ℓ2), the coordinate of largest |∂_i f|
    (ℓ1); clipped into ``bounds`` when given. On an affine f it flips x exactly when
    ε > |f(x)|/‖∇f‖_q (q the dual exponent).

    Args:
      net, params, xs: as in :func:`jaxadv.kernels.map_pairs`.
      eps: radius ε ≥ 0 (traced: a sweep compiles once).
      norm: 1, 2 or ``inf``.
      bounds: optional box ``(lo, hi)``; inputs must lie inside it.
      chunk_size, max_bytes: see :func:`jaxadv.kernels.map_pairs`.

    Returns:
      :class:`AttackResult` with leading axes ``(n_net, n_x)`` or ``(n_x,)``.
    """
    p, bounds, xs = _check_common(net, params, xs, norm, bounds)
    eps = _common.nonneg_scalar(eps, "eps")
    return kernels.map_pairs(_FGSM(net.apply, p, bounds), net, params, xs, shared=(eps,), chunk_size=chunk_size, max_bytes=max_bytes)


def _pgd_setup(net, key, params, xs, norm, n_steps, bounds, random_start):
    key = _validate.key(key)
    p, bounds, xs = _check_common(net, params, xs, norm, bounds)
    n_steps = _validate.positive_int(n_steps, "n_steps")
    if not isinstance(random_start, bool):
        raise TypeError(f"`random_start` must be True or False, got {random_start!r}.")
    lay = kernels.layout(net, params, xs)
    return key, p, bounds, xs, n_steps, lay


def pgd(
    net: Network,
    key: jax.Array,
    params: Params,
    xs: jax.Array,
    *,
    eps: Any,
    norm: Any = math.inf,
    n_steps: int = 20,
    step_size: Any = None,
    random_start: bool = True,
    bounds: Any = None,
    chunk_size: int | None = None,
    max_bytes: int | None = None,
) -> AttackResult:
    """Projected gradient ascent on the margin −s·f(x + δ) over the ℓp ball ‖δ‖_p ≤ ε.

    Madry et al. 2018 for a scalar binary classifier, s = sign f(x): start uniformly in the
    ball (``random_start``), step δ ← Π(δ − s·α·u) with u the unit-ℓp steepest direction of
    ∇f (sign for ℓ∞, normalised for ℓ2, one coordinate for ℓ1) and Π the Euclidean
    projection onto the ball (ℓ1: Duchi et al. 2008) followed by clipping into ``bounds``.
    The first sign-flipped iterate ends the attack; otherwise the iterate of largest
    margin is returned.

    Randomness: pair (j, i) uses ``split(split(key, n_net)[j], n_x)[i]`` (one network:
    ``split(key, n_x)[i]``), so network j alone with ``split(key, n_net)[j]`` reproduces
    network j of a batch.

    Args:
      net: the network family.
      key: PRNG key for the random starts.
      params, xs: as in :func:`jaxadv.kernels.map_pairs`.
      eps: radius ε ≥ 0 (traced).
      norm: 1, 2 or ``inf``.
      n_steps: maximum gradient steps (static).
      step_size: α (traced); default 2.5·ε/n_steps.
      random_start: start uniformly in the ball (else at x).
      bounds: optional box ``(lo, hi)``; inputs must lie inside it.
      chunk_size, max_bytes: see :func:`jaxadv.kernels.map_pairs`.

    Returns:
      :class:`AttackResult`; ``n_grad`` counts the steps actually taken.
    """
    key, p, bounds, xs, n_steps, lay = _pgd_setup(net, key, params, xs, norm, n_steps, bounds, random_start)
    eps = _common.nonneg_scalar(eps, "eps")
    alpha = 2.5 * eps / n_steps if step_size is None else _common.nonneg_scalar(step_size, "step_size")
    fn = _PGD(net.apply, p, n_steps, random_start, bounds)
    return kernels.map_pairs(
        fn, net, params, xs, per_pair=(_pair_keys(key, lay),), shared=(eps, alpha), chunk_size=chunk_size, max_bytes=max_bytes
    )


@dataclasses.dataclass(frozen=True)
class _OverEps:
    # The per-pair attack vmapped over ε: one compile for the whole curve.
    attack: Any
    relative_step: bool

    def __call__(self, params, x, *rest):
        if isinstance(self.attack, _PGD):
            key, eps_values, step = rest
            steps = eps_values * step if self.relative_step else jnp.broadcast_to(step, eps_values.shape)
            out = jax.vmap(lambda e, a: self.attack(params, x, key, e, a))(eps_values, steps)
        else:
            (eps_values,) = rest
            out = jax.vmap(lambda e: self.attack(params, x, e))(eps_values)
        return out.success


def robust_accuracy(
    net: Network,
    key: jax.Array,
    params: Params,
    xs: jax.Array,
    eps_values: Any,
    *,
    attack: str = "pgd",
    norm: Any = math.inf,
    n_steps: int = 20,
    step_size: Any = None,
    random_start: bool = True,
    bounds: Any = None,
    chunk_size: int | None = None,
    max_bytes: int | None = None,
) -> RobustAccuracy:
    """Robust accuracy against ``attack`` at each radius ε: the fraction of pairs not flipped.

    The attack is vmapped over ``eps_values`` inside one compiled kernel; every ε uses the
    same per-pair keys (see :func:`pgd`), so with random starts off the curve is exactly
    non-increasing for FGSM on affine f and, in practice, for PGD.

    Args:
      net: the network family.
      key: PRNG key for PGD's random starts (unused by FGSM).
      params, xs: as in :func:`jaxadv.kernels.map_pairs`.
      eps_values: ``(n_eps,)`` radii ≥ 0.
      attack: ``"pgd"`` or ``"fgsm"``.
      norm: 1, 2 or ``inf``.
      n_steps, random_start: PGD's (static).
      step_size: PGD's α shared by every ε; default 2.5·ε/n_steps for each ε.
      bounds: optional box ``(lo, hi)``.
      chunk_size, max_bytes: see :func:`jaxadv.kernels.map_pairs`.

    Returns:
      :class:`RobustAccuracy` with ``success`` of shape ``(n_eps, n_net, n_x)`` (or
      ``(n_eps, n_x)`` for one network).
    """
    attack = _validate.choice(attack, "attack", ATTACKS)
    key, p, bounds, xs, n_steps, lay = _pgd_setup(net, key, params, xs, norm, n_steps, bounds, random_start)
    eps_values = _validate.float_array(eps_values, "eps_values")
    if eps_values.ndim != 1 or eps_values.size == 0:
        raise ValueError(f"`eps_values` must be a non-empty 1-D array of radii, got shape {eps_values.shape}.")
    if not _validate.is_tracer(eps_values) and bool(np.any(np.asarray(eps_values) < 0)):
        raise ValueError(f"`eps_values` must be ≥ 0, got {np.asarray(eps_values)}.")
    if attack == "pgd":
        relative = step_size is None
        step = jnp.asarray(2.5 / n_steps) if relative else _common.nonneg_scalar(step_size, "step_size")
        fn = _OverEps(_PGD(net.apply, p, n_steps, random_start, bounds), relative)
        success = kernels.map_pairs(
            fn, net, params, xs, per_pair=(_pair_keys(key, lay),), shared=(eps_values, step), chunk_size=chunk_size, max_bytes=max_bytes
        )
    else:
        fn = _OverEps(_FGSM(net.apply, p, bounds), False)
        success = kernels.map_pairs(fn, net, params, xs, shared=(eps_values,), chunk_size=chunk_size, max_bytes=max_bytes)
    success = jnp.moveaxis(success, -1, 0)
    acc = 1.0 - jnp.mean(success.reshape(success.shape[0], -1), axis=1)
    return RobustAccuracy(eps_values, acc, success)
