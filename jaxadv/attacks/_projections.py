"""ℓp geometry for one input: hyperplane and ball projections, steepest directions, uniform balls.

Every function acts on ONE example (any shape; norms are over all coordinates) and is
safe at degenerate inputs: a zero gradient gives a zero step, never NaN. ``p`` is static
(1.0, 2.0 or inf). Box constraints enter as per-coordinate limits ``lo ≤ δ ≤ hi`` on the
step (``lo = box_lo − z ≤ 0 ≤ hi = box_hi − z`` for a point z inside the box).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

_N_MULTIPLIER_BISECT = 60  # halvings of the Lagrange multiplier: < 1e-18 of its range


def _safe_div(a: jax.Array, b: jax.Array) -> jax.Array:
    ok = b != 0
    return jnp.where(ok, a / jnp.where(ok, b, 1), 0)


def hyperplane_step(g: jax.Array, c: jax.Array, p: float, lo=None, hi=None) -> jax.Array:
    """The ℓp-smallest step δ with ⟨g, δ⟩ = c (and ``lo ≤ δ ≤ hi`` when given).

    Without a box this is the closed form of the ℓp projection onto a hyperplane,
    δ = c · u / ‖g‖_q with q the dual exponent and u the dual direction (‖u‖_p = 1,
    ⟨g, u⟩ = ‖g‖_q): u = g/‖g‖₂ (p = 2), sign(g) (p = ∞), e_i sign(g_i) with
    i = argmax|g_i| (p = 1, a one-coordinate step). With a box the problem is still convex:

    * p = 2, ∞: δ(λ) = clip(λ·h, lo, hi) with h = g (p = 2) or sign(g) (p = ∞), and the
      multiplier λ solves ⟨g, δ(λ)⟩ = c (monotone in λ; found by bisection);
    * p = 1: the greedy solution — coordinates in decreasing |g_i|, each moved to its box
      limit, until the level c is reached (the last one partially).

    When the box cannot reach the level, the step goes as far toward it as the box allows.

    Args:
      g: gradient, any shape.
      c: scalar level.
      p: 1.0, 2.0 or inf (static).
      lo, hi: optional arrays shaped like ``g`` with lo ≤ 0 ≤ hi.

    Returns:
      δ shaped like ``g``; zero where g = 0 or c = 0.
    """
    shape = g.shape
    g = jnp.ravel(g)
    sc = jnp.sign(c).astype(g.dtype)
    ac = jnp.abs(c).astype(g.dtype)
    if lo is None:
        if p == 2.0:
            d = _safe_div(c, jnp.sum(g * g)) * g
        elif p == math.inf:
            d = _safe_div(c, jnp.sum(jnp.abs(g))) * jnp.sign(g)
        else:
            i = jnp.argmax(jnp.abs(g))
            d = jnp.zeros_like(g).at[i].set(_safe_div(c, g[i]))
        return d.reshape(shape)
    lo, hi = jnp.ravel(lo), jnp.ravel(hi)
    # Work with the level |c| and the oriented gradient: moving coordinate i by t_i ≥ 0 in
    # direction sign(c·g_i) raises sc·⟨g, δ⟩ by |g_i| t_i; its room is the box limit there.
    dirn = sc * jnp.sign(g)
    room = jnp.where(dirn > 0, hi, jnp.where(dirn < 0, -lo, 0))
    ag = jnp.abs(g)
    if p == 1.0:
        order = jnp.argsort(-ag)
        ag_s, room_s = ag[order], room[order]
        cap = ag_s * room_s
        before = jnp.cumsum(cap) - cap
        amount_s = jnp.clip(_safe_div(ac - before, ag_s), 0, room_s)
        amount = jnp.zeros_like(g).at[order].set(amount_s)
        return (dirn * amount).reshape(shape)
    h = ag if p == 2.0 else (ag > 0).astype(g.dtype)
    lam_max = jnp.max(jnp.where(h > 0, _safe_div(room, h), 0))

    def level(lam):
        return jnp.sum(ag * jnp.minimum(lam * h, room))

    def body(_, lr):
        a, b = lr
        m = 0.5 * (a + b)
        up = level(m) >= ac
        return jnp.where(up, a, m), jnp.where(up, m, b)

    _, lam = jax.lax.fori_loop(0, _N_MULTIPLIER_BISECT, body, (jnp.zeros_like(lam_max), lam_max))
    return (dirn * jnp.minimum(lam * h, room) * (ac > 0)).reshape(shape)


def steepest(g: jax.Array, p: float) -> jax.Array:
    """The unit-ℓp direction u maximising ⟨g, u⟩ (zero where g = 0).

    u = g/‖g‖₂ (p = 2), sign(g) (p = ∞), e_i sign(g_i) with i = argmax|g_i| (p = 1).
    """
    shape = g.shape
    g = jnp.ravel(g)
    if p == 2.0:
        u = _safe_div(g, jnp.sqrt(jnp.sum(g * g)))
    elif p == math.inf:
        u = jnp.sign(g)
    else:
        i = jnp.argmax(jnp.abs(g))
        u = jnp.zeros_like(g).at[i].set(jnp.sign(g[i]))
    return u.reshape(shape)


def project_ball(delta: jax.Array, eps: jax.Array, p: float) -> jax.Array:
    """Euclidean projection of δ onto the ℓp ball of radius ε (p = 1 by Duchi et al. 2008)."""
    shape = delta.shape
    v = jnp.ravel(delta)
    if p == math.inf:
        out = jnp.clip(v, -eps, eps)
    elif p == 2.0:
        n = jnp.sqrt(jnp.sum(v * v))
        out = v * jnp.minimum(1, _safe_div(eps, n) + (n == 0))
    else:
        a = jnp.abs(v)
        s = jnp.sort(a)[::-1]
        cs = jnp.cumsum(s)
        j = jnp.arange(1, v.size + 1, dtype=v.dtype)
        cond = s - (cs - eps) / j > 0
        rho = jnp.max(jnp.where(cond, jnp.arange(v.size), 0))
        theta = jnp.maximum((cs[rho] - eps) / (rho + 1).astype(v.dtype), 0)
        inside = jnp.sum(a) <= eps
        out = jnp.where(inside, v, jnp.sign(v) * jnp.maximum(a - theta, 0))
    return out.reshape(shape)


def uniform_ball(key: jax.Array, shape: tuple[int, ...], eps: jax.Array, p: float, dtype) -> jax.Array:
    """A point drawn uniformly from the ℓp ball of radius ε in R^shape."""
    n = math.prod(shape)
    if p == math.inf:
        v = jax.random.uniform(key, (n,), dtype, -1, 1)
    elif p == 2.0:
        k_dir, k_rad = jax.random.split(key)
        z = jax.random.normal(k_dir, (n,), dtype)
        r = jax.random.uniform(k_rad, (), dtype) ** (1.0 / n)
        v = r * _safe_div(z, jnp.sqrt(jnp.sum(z * z)))
    else:
        # (E_1..E_n)/(E_1+..+E_{n+1}) with E_i ~ Exp(1) is uniform on the simplex's interior
        # {y ≥ 0, Σy ≤ 1}; random signs make it uniform on the ℓ1 ball.
        k_e, k_s = jax.random.split(key)
        e = jax.random.exponential(k_e, (n + 1,), dtype)
        v = e[:n] / jnp.sum(e) * jax.random.rademacher(k_s, (n,), dtype)
    return (eps * v).reshape(shape)
