"""One gradient step: the smallest η such that x + η∇f(x) is on the other side of the boundary.

Bubeck, Cherapanamjeri, Gidel & Tachet des Combes 2021, §4 (Figures 1–2) and Bartlett,
Bubeck & Cherapanamjeri 2021, Theorem 1.1: for random ReLU networks, one step along the
gradient of size ‖η∇f(x)‖ = O(1) = O(‖x‖/√d) flips sign f(x).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from jaxadv import _validate, kernels
from jaxadv.attacks import _common
from jaxadv.attacks._root import first_sign_change
from jaxadv.attacks.directions import layout_directions
from jaxadv.nets._network import Network, Params

__all__ = ["OneStepResult", "one_step"]

# The returned point must be on the other side of the boundary for the network as evaluated
# (apply at x_adv), not only for the search's model of the ray, whose first layer is
# W₁x + η·W₁u: its float rounding differs from W₁(x + η·u). The difference in f is the
# rounding of z₁ = W₁x seen through ∂f/∂z₁, measured (two_layer and bias-free mlp,
# d = 12…10⁴, k = 16…10⁴, L ≤ 4) at median 0.1–0.3 and at most 2 times
# noise = eps·Σ_l |∂f/∂z₁,l|·|z₁,l|, which is O(k) to compute. So the search stops at a
# bracket of width max(rtol·η, noise/|ψ'|) (no rounds are spent below the rounding), and the
# returned η is moved past the crossing until the model is MARGIN·noise below 0 — a shift of
# the order of the rounding itself, which keeps verification failures rare (each costs a
# vmapped batch one more forward pass, however few members need it). Where verification
# still fails (biased networks, whose rounding the estimate does not capture; networks
# without the protocol, where the model is apply itself, vmapped), η is nudged by the
# measured gap, at most NUDGES times.
MARGIN = 2.0
NUDGES = 3


class OneStepResult(NamedTuple):
    """Result of :func:`one_step`; leading axes ``(n_net, n_x)`` or ``(n_x,)``.

    Attributes:
      x_adv: ``(..., *input_shape)`` x + η·u; where failed, the last point evaluated:
        x + sign·eta_max·u when no sign change was found (x itself when f(x) = 0 or
        ⟨∇f(x), u⟩ = 0).
      distance: ``(...)`` ‖η·u‖₂ (‖η∇f(x)‖ for the gradient step); ``inf`` where failed.
      success: ``(...)`` strict sign change, verified by evaluating f at x_adv.
      f_clean: ``(...)`` f(x).
      f_adv: ``(...)`` f(x_adv).
      n_forward: ``(...)`` int32 full forward passes: the verification at x_adv and its
        nudges, plus the search's probes for networks without the first-layer protocol.
      n_grad: ``(...)`` int32 gradient evaluations (1: ∇f(x), which also gives f(x)).
      eta: ``(...)`` the signed step η (x_adv = x + η·u); ``inf`` where failed.
      grad_norm: ``(...)`` ‖∇f(x)‖₂ (Bubeck et al. Fig. 2b), reported also where failed.
      n_partial: ``(...)`` int32 evaluations of the layers after the first only
        (``apply.after_first``: the search's probes with the first-layer protocol; 0 without).
      n_first_layer: ``(...)`` int32 products by the first layer alone
        (``apply.first_linear(params, u)``: 1 with the protocol, 0 without).
    """

    x_adv: jax.Array
    distance: jax.Array
    success: jax.Array
    f_clean: jax.Array
    f_adv: jax.Array
    n_forward: jax.Array
    n_grad: jax.Array
    eta: jax.Array
    grad_norm: jax.Array
    n_partial: jax.Array
    n_first_layer: jax.Array


@dataclasses.dataclass(frozen=True)
class _OneStep:
    apply: Callable
    max_rounds: int
    given_direction: bool

    def __call__(self, params, x, *rest) -> OneStepResult:
        if self.given_direction:
            u, eta_max, rtol = rest
        else:
            eta_max, rtol = rest
        dt = x.dtype
        eta_max, rtol = eta_max.astype(dt), rtol.astype(dt)
        first = getattr(self.apply, "first_linear", None)
        after = getattr(self.apply, "after_first", None)
        layered = first is not None and after is not None
        if layered:
            # f and ∇f through the split, so that W₁x is computed once and reused on the ray.
            z0, back_first = jax.vjp(lambda v: first(params, v), x)
            f0, back_after = jax.vjp(lambda z: after(params, z), z0)
            (gz,) = back_after(jnp.ones_like(f0))
            (g,) = back_first(gz)
        else:
            f0, g = jax.value_and_grad(self.apply, argnums=1)(params, x)
        if not self.given_direction:
            u = g
        gu = jnp.vdot(g, u).astype(dt)
        # η opposes the first-order change: sign(η) = −sign(f(x))·sign(⟨∇f(x), u⟩).
        s_f = jnp.sign(f0).astype(dt)
        sign = -s_f * jnp.sign(gu)
        valid = sign != 0  # f(x) = 0 (already on the boundary) or no first-order change
        one = jnp.ones((), dt)

        # ψ(t) = sign(f(x))·f(x + sign·t·u): ψ(0) = |f(x)| > 0, ψ'(0) = −|⟨∇f, u⟩| < 0.
        if layered:
            dz = first(params, u)

            def psi(ts):
                return (s_f * jax.vmap(lambda t: after(params, z0 + (sign * t) * dz))(ts)).astype(dt)
        else:

            def psi(ts):
                return (s_f * jax.vmap(lambda t: self.apply(params, x + (sign * t) * u))(ts)).astype(dt)

        psi0 = jnp.where(valid, jnp.abs(f0).astype(dt), one)
        slope0 = jnp.where(valid, jnp.abs(gu), one)
        eps = jnp.finfo(dt).eps
        if layered:

            def noise(t):
                return eps * jnp.vdot(jnp.abs(gz), jnp.abs(z0) + t * jnp.abs(dz)).astype(dt)
        else:

            def noise(t):
                return jnp.zeros((), dt)

        atol = noise(psi0 / slope0) / slope0
        br = first_sign_change(psi, psi0, slope0, eta_max, rtol, self.max_rounds, atol=atol, active=valid)
        found = valid & jnp.isfinite(br.hi)

        # −ψ' near the crossing, to turn a wanted change of ψ into a change of t: the smaller
        # of the slopes across the final bracket and from 0 to hi (moving on too far costs
        # accuracy, too little a nudge), floored at 1/8 of the latter: a bracket closed at
        # the rounding level (atol) has a slope that is mostly noise.
        gap = br.hi - br.lo
        mean_slope = (psi0 - br.psi_hi) / jnp.where(found, br.hi, one)
        slope = (br.psi_lo - br.psi_hi) / jnp.where(gap > 0, gap, one)
        slope = jnp.where((gap > 0) & jnp.isfinite(slope), jnp.minimum(slope, mean_slope), mean_slope)
        slope = jnp.where(found, jnp.maximum(slope, mean_slope / 8), slope0)
        u_norm = _common.lp_norm(u, 2.0)
        t = jnp.where(found, br.hi, eta_max)
        psi_t = jnp.where(found, br.psi_hi, 0)  # the model's ψ at t
        push = jnp.where(found, jnp.maximum(psi_t + MARGIN * noise(t), 0) / slope, 0)
        t = jnp.minimum(t + push, eta_max)
        psi_t = psi_t - slope * push

        # The check at t, then at most NUDGES more: one loop, so that apply is compiled once.
        def again(s):
            t, psi_t, f_adv, ok, n = s
            return (n == 0) | (found & ~ok & (n <= NUDGES) & (t < eta_max))

        def check(s):
            # After a failed check (not flipped although the model says ψ(t) < 0), move on by
            # twice (4×, 8×) the measured gap between the network and the model, or a few ulps.
            t, psi_t, f_adv, ok, n = s
            miss = s_f * f_adv - psi_t
            step = jnp.where(n > 0, jnp.maximum((psi_t + 2.0**n * miss) / slope, 4 * eps * t), 0)
            t = jnp.minimum(t + step, eta_max)
            f_adv = self.apply(params, x + (sign * t) * u)
            return t, psi_t - slope * step, f_adv, found & _common.flipped(f0, f_adv), n + 1

        start = (t, psi_t, jnp.zeros((), f0.dtype), jnp.zeros((), bool), jnp.zeros((), jnp.int32))
        t, _, f_adv, ok, n_checks = jax.lax.while_loop(again, check, start)
        success = ok
        x_adv = x + (sign * t) * u
        inf = jnp.asarray(jnp.inf, dt)
        n_probes = 2 * br.n_rounds
        return OneStepResult(
            x_adv=x_adv,
            distance=jnp.where(success, t * u_norm, inf),
            success=success,
            f_clean=f0,
            f_adv=f_adv,
            n_forward=(n_checks + (0 if layered else n_probes)).astype(jnp.int32),
            n_grad=jnp.ones((), jnp.int32),
            eta=jnp.where(success, sign * t, inf),
            grad_norm=_common.lp_norm(g, 2.0),
            n_partial=(n_probes if layered else 0 * n_probes).astype(jnp.int32),
            n_first_layer=jnp.full((), 1 if layered else 0, jnp.int32),
        )


def one_step(
    net: Network,
    params: Params,
    xs: jax.Array,
    *,
    eta_max: float = 20.0,
    directions: jax.Array | None = None,
    n_grid: int = 16,
    n_bisect: int = 30,
    rtol: float = 1e-4,
    chunk_size: int | None = None,
    max_bytes: int | None = None,
) -> OneStepResult:
    """The smallest |η| ≤ ``eta_max`` such that one step x + η∇f(x) flips sign f(x).

    Bubeck et al. 2021, §4: "for each (network, x), find the smallest η such that
    x + η∇f(x) changes sign(f)", η of sign opposite to f(x), |η| < 20; Bartlett et al. 2021,
    Theorem 1.1 for deep nets. Reports η, ‖η∇f(x)‖ and ‖∇f(x)‖ (their Fig. 2a, 2b).

    Search (:mod:`jaxadv.attacks._root`): one gradient evaluation gives f(x), ∇f(x) and the
    linear prediction |η_lin| = |f(x)|/|⟨∇f(x), u⟩| (|f|/‖∇f‖² for the gradient step), the
    exact answer for a linear f and within a few percent of it for the nearly linear random
    networks of the papers (Bubeck et al. eq. (6)). Each round evaluates f at a pair
    η̂·(1 ± 0.45·rtol) around the current estimate η̂ — η_lin first, then Newton steps with
    the pair's slope (growth ≤ ×4 per round; past 32·η_lin, eta_max) until the sign flips,
    then the secant, regula falsi or bisection inside the bracket — until
    ``hi − lo ≤ rtol·hi``: the pair closes the bracket in the round whose estimate is
    within rtol/2 of the crossing. For networks with the first-layer protocol (``mlp``,
    ``two_layer``; see :class:`jaxadv.nets.Network`) the first layer's pre-activations are
    affine along the ray, W₁(x + ηu) = W₁x + η·W₁u, so W₁x (from the gradient pass) and W₁u
    (one product) are computed once and each probe runs only the later layers — O(k) work
    for ``two_layer``; otherwise each probe is a forward pass.

    The flipping end of the bracket is returned after f is evaluated there with the
    network's own ``apply`` (a bracket is never trusted): it must show a strict sign
    change. So that the float rounding of W₁(x + ηu), which differs from W₁x + η·W₁u, does
    not undo a flip found on the model, η is first moved past the crossing until the model
    is ``MARGIN`` rounding levels (eps·Σ_l |∂f/∂z₁,l|·|z₁,l|) below 0; where the check
    still fails, η is moved on by the measured gap (at most ``NUDGES`` times) and otherwise
    the pair is a failure.

    Guarantees: a success is a verified strict sign change at x_adv. |η| is within
    ``rtol``·|η| above a crossing of the ray, plus a few rounding levels of f divided by the
    slope (which matters only where f(x) itself is within ~1e4 rounding levels of 0, where
    the float32 crossing is not defined to rtol anyway); a search stopped by ``n_bisect``
    leaves a wider bracket. It is the *first* crossing when f crosses once before it; an
    excursion to the other side that starts and ends between two probes of the bracketing
    phase (≤ ×4 apart) is missed, as the previous 16-point grid missed those within one of
    its cells (×1.49 apart).

    Cost per (network, input), as counted in the result: 1 gradient (``n_grad``), 1 product
    W₁u (``n_first_layer``), 2 probes per round (``n_partial``: the layers after the first)
    and 1 forward pass to check (``n_forward``). A search takes 2 rounds (median) at L = 1
    and 3 at L = 4–6; under ``vmap`` a batch pays for its slowest pair: 4, 4 and 5 rounds
    over 5·10³–10⁴ pairs. Measured against :func:`jaxadv.kernels.evaluate` (f and ∇f) on
    the same batch (the ``one_step`` section of ``python -m benchmarks``, recorded in
    ``benchmarks/results/suite-cpu.json``; 2-core CPU, float32, 100 inputs per network):
    one_step takes 2.28× its time for ``two_layer(1000, 1000)``, 4.65× and 4.38× for
    ``mlp(1000, [1000] * L)`` at L = 4 and 6 (the previous 16-point grid + bisection: 14.1×,
    13.6×, 10.8×), with |η| within 4.5e-5 to 4.6e-5 (median) of a float64 reference.

    With ``directions`` u the step is x + η·u instead (e.g. :func:`universal_direction`,
    Bubeck et al. §1.1). The sign of η is then −sign(f(x))·sign(⟨∇f(x), u⟩): the side on
    which f moves toward 0 to first order (for u = ∇f, the paper's rule). The search is
    one-sided; to search along both ±u without a gradient, use :func:`line_search` with
    u and −u. Where f(x) = 0 or ⟨∇f(x), u⟩ = 0 (e.g. ∇f = 0) there is no such side and the
    attack fails (``success=False``, ``distance=inf``).

    Args:
      net: the network family.
      params: one network's params, or many stacked on a leading axis.
      xs: ``(n_x, *input_shape)`` or ``(n_net, n_x, *input_shape)`` inputs.
      eta_max: bound on |η| (> 0; traced, so a sweep compiles once). In units of u.
      directions: ``None`` (the gradient step) or u with the layout of ``xs``, per pair
        ``(n_net, n_x, *input_shape)``, per network ``(n_net, *input_shape)`` or one
        ``input_shape`` for all.
      n_grid: ignored (static, ≥ 2). It set the size of the grid of the previous search,
        which the rounds above replace; kept so that existing calls run unchanged.
      n_bisect: the most rounds after the first (static): the search stops there with the
        bracket it has, wider than rtol (0: only the pair around η_lin).
      rtol: relative tolerance on |η| (traced; 0 means float resolution, 4·eps).
      chunk_size: pairs per vmapped block (see :func:`jaxadv.kernels.map_pairs`).
      max_bytes: memory budget of one block.

    Returns:
      :class:`OneStepResult` with leading axes ``(n_net, n_x)`` or ``(n_x,)``.

    Examples:
      >>> import jax, jaxadv
      >>> net = jaxadv.nets.two_layer(d=100, k=100)
      >>> params = jaxadv.kernels.init_many(net, jax.random.key(0), 4)
      >>> xs = jaxadv.data.sphere(jax.random.key(1), 8, 100)
      >>> r = jaxadv.attacks.one_step(net, params, xs)
      >>> r.distance.shape, bool(r.success.all())
      ((4, 8), True)
    """
    xs = _validate.float_array(xs, "xs")
    if directions is None:
        kernels.layout(net, params, xs)
        per_x, per_pair = (), ()
    else:
        per_x, per_pair = layout_directions(net, params, xs, directions)
    eta_max = _common.positive_scalar(eta_max, "eta_max")
    rtol = _common.nonneg_scalar(rtol, "rtol")
    n_grid = _validate.positive_int(n_grid, "n_grid")
    if n_grid < 2:
        raise ValueError(f"`n_grid` must be ≥ 2 (geometric points and eta_max), got {n_grid}.")
    n_bisect = _common.nonneg_int(n_bisect, "n_bisect")
    fn = _OneStep(net.apply, 1 + n_bisect, directions is not None)
    return kernels.map_pairs(
        fn, net, params, xs, per_x=per_x, per_pair=per_pair, shared=(eta_max, rtol), chunk_size=chunk_size, max_bytes=max_bytes
    )
