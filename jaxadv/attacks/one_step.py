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
from jaxadv.attacks.directions import layout_directions
from jaxadv.attacks.line_search import first_crossing
from jaxadv.nets._network import Network, Params

__all__ = ["OneStepResult", "one_step"]

# The grid, in units of the linear prediction |η_lin| = |f(x)|/|⟨∇f(x), u⟩| (for u = ∇f:
# |f|/‖∇f‖², the exact answer for a linear f): geometric from 2^{-3} to 2^{5}, then eta_max
# itself. Why: the scale of the answer differs per (network, input) by orders of magnitude
# (|f| → 0 near the boundary, ‖∇f‖ varies with depth and width), but in these units it is
# close to 1 for the nearly linear random networks of the papers (Bubeck et al. eq. (6)), so
# a few points per octave around 1 bracket it tightly and the bisection is short; a geometric
# grid gives every scale the same relative resolution; 2^{-3}…2^{5} covers strongly curved f
# (the first cell [0, 2^{-3}] is bisected too when 2^{-3} flips), and the last point eta_max
# covers the rest of the allowed range. Points beyond eta_max are clipped to it.
TAU_LO, TAU_HI = 2.0**-3, 2.0**5


class OneStepResult(NamedTuple):
    """Result of :func:`one_step`; leading axes ``(n_net, n_x)`` or ``(n_x,)``.

    Attributes:
      x_adv: ``(..., *input_shape)`` x + η·u; where failed, x + sign·eta_max·u (the farthest
        point tried; x itself when f(x) = 0 or ⟨∇f(x), u⟩ = 0).
      distance: ``(...)`` ‖η·u‖₂ (‖η∇f(x)‖ for the gradient step); ``inf`` where failed.
      success: ``(...)`` strict sign change, verified by evaluating f at x_adv.
      f_clean: ``(...)`` f(x).
      f_adv: ``(...)`` f(x_adv).
      n_forward: ``(...)`` int32 forward-only passes (grid, bisection, final check).
      n_grad: ``(...)`` int32 gradient evaluations (1: ∇f(x), which also gives f(x)).
      eta: ``(...)`` the signed step η (x_adv = x + η·u); ``inf`` where failed.
      grad_norm: ``(...)`` ‖∇f(x)‖₂ (Bubeck et al. Fig. 2b), reported also where failed.
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


@dataclasses.dataclass(frozen=True)
class _OneStep:
    apply: Callable
    n_grid: int
    n_bisect: int
    given_direction: bool

    def __call__(self, params, x, *rest) -> OneStepResult:
        if self.given_direction:
            u, eta_max, rtol = rest
        else:
            eta_max, rtol = rest
        dt = x.dtype
        eta_max, rtol = eta_max.astype(dt), rtol.astype(dt)
        f0, g = jax.value_and_grad(self.apply, argnums=1)(params, x)
        if not self.given_direction:
            u = g
        gu = jnp.vdot(g, u).astype(dt)
        # η opposes the first-order change: sign(η) = −sign(f(x))·sign(⟨∇f(x), u⟩).
        sign = -jnp.sign(f0).astype(dt) * jnp.sign(gu)
        valid = sign != 0  # f(x) = 0 (already on the boundary) or no first-order change
        scale = jnp.abs(f0).astype(dt) / jnp.where(gu != 0, jnp.abs(gu), 1)
        n_geo = self.n_grid - 1
        taus = jnp.exp2(jnp.linspace(jnp.log2(TAU_LO), jnp.log2(TAU_HI), n_geo, dtype=dt)) if n_geo > 1 else jnp.ones((1,), dt)
        grid = jnp.concatenate([jnp.minimum(scale * taus, eta_max), eta_max[None]])

        def pred(eta):
            return _common.flipped(f0, self.apply(params, x + (sign * eta) * u))

        eta, found, n = first_crossing(pred, grid, self.n_bisect, rtol)
        found = found & valid
        eta = jnp.where(found, eta, eta_max)
        x_adv = x + (sign * eta) * u
        f_adv = self.apply(params, x_adv)
        success = found & _common.flipped(f0, f_adv)
        inf = jnp.asarray(jnp.inf, dt)
        return OneStepResult(
            x_adv=x_adv,
            distance=jnp.where(success, eta * _common.lp_norm(u, 2.0), inf),
            success=success,
            f_clean=f0,
            f_adv=f_adv,
            n_forward=(n + 1).astype(jnp.int32),
            n_grad=jnp.ones((), jnp.int32),
            eta=jnp.where(success, sign * eta, inf),
            grad_norm=_common.lp_norm(g, 2.0),
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

    Search: one gradient evaluation gives f(x), ∇f(x) and the linear prediction
    |η_lin| = |f(x)|/‖∇f(x)‖². A grid of ``n_grid`` values of |η| — ``n_grid − 1`` geometric
    points from η_lin/8 to 32·η_lin, clipped to eta_max, then eta_max — is evaluated in one
    batched call; the first grid point whose step flips the sign is refined by bisection
    against the previous grid point (or 0) until ``hi − lo ≤ rtol·hi``, ``n_bisect`` steps or
    float resolution. The flipping end is returned and f is evaluated there again to verify
    the flip (a bracket is never trusted: float32 bisection runs out of resolution after
    ~20 halvings of a relative bracket). Cost per pair: 1 gradient + ``n_grid`` + (bisection
    steps) + 1 forward passes, e.g. 1 + 16 + 13 + 1 with the defaults.

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
      n_grid: grid points (static, ≥ 2).
      n_bisect: maximum bisection steps (static; 0 returns the grid point).
      rtol: relative tolerance on |η| (traced; 0 bisects to float resolution).
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
    fn = _OneStep(net.apply, n_grid, n_bisect, directions is not None)
    return kernels.map_pairs(
        fn, net, params, xs, per_x=per_x, per_pair=per_pair, shared=(eta_max, rtol), chunk_size=chunk_size, max_bytes=max_bytes
    )
