"""The first sign change of a scalar function on a ray, starting from its linear prediction.

Given ψ on t ≥ 0 with ψ(0) > 0 and ψ'(0) < 0, :func:`first_sign_change` looks for the
smallest t ≤ t_max with ψ(t) < 0 and returns a bracket ``lo < hi`` with ψ(lo) ≥ 0 > ψ(hi)
and ``hi − lo ≤ max(rtol·hi, atol)``. It is the engine of :func:`jaxadv.attacks.one_step`,
where ψ is ±f along x + t·u and nearly linear (Bubeck et al. 2021, eq. (6)); it is built
for that case — few rounds when ψ is close to linear — and stays safe when it is not.

Each round evaluates ψ at a *pair* of points c ± h, h = 0.45·max(rtol·c, atol), around the
current estimate c of the crossing, in one batched call (memory-bound at L = 1, where two
points cost about what one does; one matrix product with twice the columns otherwise). The
pair closes the bracket in the round whose estimate is within h of the crossing, and its
difference quotient is a local slope for the next estimate:

* round 1 probes the linear prediction t_lin = ψ(0)/|ψ'(0)|;
* until a sign change is seen, the next estimate is a Newton step from the pair with that
  slope (monotone and quadratic from the left when ψ is convex, which the secant from 0
  is not), at most ×``GROWTH`` beyond the last point; past ``REACH``·t_lin, t_max itself;
* once bracketed: the secant through this and the last round's best probes when it lands
  between the best probe and the midpoint (Dekker), else regula falsi on the bracket, and
  bisection instead when the steps stop shrinking (Brent's rule) or ψ(lo) = 0 (a flat
  stretch where f is exactly 0, e.g. all ReLUs dead, where regula falsi cannot move).

Rounds stop when the bracket is closed (r = max(rtol, 4·eps), so rtol = 0 means float
resolution; the pair is 0.9·r wide so that rounding cannot keep a closed pair just above
r·hi), when the ray up to t_max has no sign change, or after ``max_rounds``. Under ``vmap``
a batch runs as many rounds as its slowest member, so what counts is the *maximum* number
of rounds: on the papers' random networks (d = k = 1000, 100 inputs per network, 5·10³–10⁴
pairs) the median is 2 rounds at L = 1 and 3 at L = 4 and 6, the maximum 4, 4 and 5.

Guaranteed: ψ(lo) ≥ 0 > ψ(hi) at the returned ends, both evaluated (lo = 0 is ψ(0)). Not
guaranteed: that no earlier sign change exists. The crossing found is the first one when ψ
crosses once before hi; an excursion to ψ < 0 that starts and ends between two probes of
the bracketing phase (at most ×``GROWTH`` apart) is not seen — the blind spot of any search
that samples the ray.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

# Largest growth of the bracketing phase per round, and the reach (in units of t_lin) after
# which the next probe is t_max. 2^5 matches the old 16-point grid's last geometric point:
# a crossing beyond 32·t_lin is far from linear behaviour and is searched in [lo, t_max].
GROWTH = 4.0
REACH = 32.0
# Half-width of the closing pair in units of rtol (see the module docstring).
PAIR = 0.45


class Bracket(NamedTuple):
    """Result of :func:`first_sign_change` (scalars; batched under ``vmap``).

    Attributes:
      lo: largest probed t with ψ(t) ≥ 0 before ``hi`` (0 when none was probed).
      hi: smallest probed t with ψ(t) < 0; ``inf`` when no sign change was found.
      psi_lo: ψ(lo).
      psi_hi: ψ(hi) (``-inf`` when ``hi`` is ``inf``).
      n_rounds: int32 rounds run; each evaluated ψ at two points.
    """

    lo: jax.Array
    hi: jax.Array
    psi_lo: jax.Array
    psi_hi: jax.Array
    n_rounds: jax.Array


class _State(NamedTuple):
    lo: jax.Array
    psi_lo: jax.Array
    hi: jax.Array
    psi_hi: jax.Array
    last: jax.Array  # the previous round's probe nearest the crossing (smallest |ψ|)
    psi_last: jax.Array
    estimate: jax.Array  # the centre of the next pair
    step_1: jax.Array  # |estimate − best probe| one and two rounds ago (inf before bracketing)
    step_2: jax.Array
    n: jax.Array


def first_sign_change(
    psi: Callable[[jax.Array], jax.Array],
    psi0: jax.Array,
    slope0: jax.Array,
    t_max: jax.Array,
    rtol: jax.Array,
    max_rounds: int,
    *,
    atol: jax.Array | float = 0.0,
    active: jax.Array | bool = True,
) -> Bracket:
    """Bracket the first t ∈ (0, t_max] with ψ(t) < 0 to a width max(``rtol``·hi, ``atol``).

    Args:
      psi: ``psi(ts) -> values`` for a ``(2,)`` array of t (one batched call per round).
      psi0: ψ(0) > 0.
      slope0: −ψ'(0) > 0; t_lin = psi0/slope0 is the first estimate.
      t_max: the largest t searched (> 0).
      rtol: relative width of the final bracket (≥ 0; clipped below at 4·eps).
      atol: absolute width that is enough (≥ 0): the resolution below which ψ's own
        rounding makes its sign meaningless, so that rounds are not spent below it.
      max_rounds: the most rounds (static).
      active: where False the search does not run (``hi = inf``, ``n_rounds = 0``; under
        ``vmap`` such members ride along unchanged); psi0 and slope0 may then be anything
        finite and positive.

    Returns:
      :class:`Bracket`.
    """
    dt = jnp.result_type(psi0)
    psi0, slope0, t_max, rtol, atol = (jnp.asarray(v, dt) for v in (psi0, slope0, t_max, rtol, atol))
    r = jnp.maximum(rtol, 4 * jnp.finfo(dt).eps)
    inf = jnp.asarray(jnp.inf, dt)
    zero = jnp.zeros((), dt)
    t_lin = psi0 / slope0

    def cond(s: _State) -> jax.Array:
        closed = jnp.isfinite(s.hi) & (s.hi - s.lo <= jnp.maximum(r * s.hi, atol))
        return ~closed & (s.lo < t_max) & (s.n < max_rounds)

    def body(s: _State) -> _State:
        top = jnp.minimum(s.hi, t_max)
        c = jnp.clip(s.estimate, s.lo, top)
        half = PAIR * jnp.maximum(r * c, atol)
        p1 = jnp.clip(c - half, s.lo, top)
        p2 = jnp.clip(c + half, s.lo, top)
        v = psi(jnp.stack([p1, p2]))
        v1, v2 = v[0], v[1]
        f1, f2 = v1 < 0, v2 < 0
        # The bracket: the first flipped probe is the new hi, the unflipped ones below it lo.
        lo = jnp.where(f1, s.lo, jnp.where(f2, p1, p2))
        psi_lo = jnp.where(f1, s.psi_lo, jnp.where(f2, v1, v2))
        hi = jnp.where(f1, p1, jnp.where(f2, p2, s.hi))
        psi_hi = jnp.where(f1, v1, jnp.where(f2, v2, s.psi_hi))
        bracketed = jnp.isfinite(hi)
        near = jnp.abs(v1) < jnp.abs(v2)
        best, psi_best = jnp.where(near, p1, p2), jnp.where(near, v1, v2)

        # Bracketed: the secant through this round's and the last round's best probes, kept
        # when it falls between the best probe and the bracket's midpoint (Dekker's rule);
        # otherwise regula falsi on the bracket; bisection when the step is not below half
        # the step of two rounds ago (Brent's rule: the iterates are not converging) or
        # ψ(lo) = 0.
        width = hi - lo
        falsi = lo + width * (psi_lo / jnp.where(bracketed, psi_lo - psi_hi, 1))
        dpsi = psi_best - s.psi_last
        secant = best - psi_best * (best - s.last) / jnp.where(dpsi != 0, dpsi, 1)
        mid = lo + width / 2
        dekker = (dpsi != 0) & (jnp.minimum(best, mid) <= secant) & (secant <= jnp.maximum(best, mid))
        dekker = dekker & (lo < secant) & (secant < hi)
        inside = jnp.where(dekker, secant, falsi)
        step_in = jnp.abs(inside - best)
        slow = (step_in >= s.step_2 / 2) | (psi_lo == 0)
        inside = jnp.where(slow, mid, inside)

        # Not bracketed yet: a Newton step with the pair's slope (ψ decreasing), growth ≤ GROWTH.
        slope = (v1 - v2) / jnp.where(p2 > p1, p2 - p1, 1)
        step = jnp.where((slope > 0) & (p2 > p1), v2 / jnp.where(slope > 0, slope, 1), inf)
        outside = jnp.minimum(lo + step, GROWTH * jnp.maximum(lo, t_lin))
        outside = jnp.where(lo >= REACH * t_lin, t_max, outside)

        return _State(
            lo=lo, psi_lo=psi_lo, hi=hi, psi_hi=psi_hi, last=best, psi_last=psi_best,
            estimate=jnp.where(bracketed, inside, outside),
            step_1=jnp.where(bracketed, jnp.abs(inside - best), inf), step_2=s.step_1, n=s.n + 1,
        )

    start = _State(
        lo=jnp.where(active, zero, t_max), psi_lo=psi0, hi=inf, psi_hi=-inf, last=zero, psi_last=psi0,
        estimate=t_lin, step_1=inf, step_2=inf,
        n=jnp.zeros((), jnp.int32),
    )
    s = jax.lax.while_loop(cond, body, start)
    lo = jnp.where(active, s.lo, zero)
    return Bracket(lo=lo, hi=s.hi, psi_lo=s.psi_lo, psi_hi=s.psi_hi, n_rounds=s.n)
