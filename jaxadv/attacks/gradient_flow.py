"""Gradient flow toward the boundary: Daniely & Schacham 2020.

"Most ReLU networks suffer from ℓ2 adversarial perturbations": for most random networks and
inputs an adversarial perturbation of size Õ(‖x‖/√d) exists and is found by gradient flow,
or gradient descent with sufficiently small steps, on the output: follow −sign(f(x))∇f(x)
until the sign changes.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from jaxadv import _validate, kernels
from jaxadv.attacks import _common
from jaxadv.attacks.line_search import bisect
from jaxadv.nets._network import Network, Params

__all__ = ["GradientFlowResult", "gradient_flow"]


class GradientFlowResult(NamedTuple):
    """Result of :func:`gradient_flow`; leading axes ``(n_net, n_x)`` or ``(n_x,)``.

    Attributes:
      x_adv: ``(..., *input_shape)`` the first flipped point, refined onto the crossing
        segment; where failed, the last iterate.
      distance: ``(...)`` ‖x_adv − x‖₂; ``inf`` where failed.
      path_length: ``(...)`` Euclidean length of the path travelled from x to x_adv.
      n_steps: ``(...)`` int32 descent steps taken (the crossing step included).
      max_step: ``(...)`` the longest step's Euclidean length: ``step_size`` when normalised,
        ``step_size·max‖∇f‖`` otherwise (0 when no step was taken).
      success: ``(...)`` strict sign change, verified by evaluating f at x_adv.
      f_clean: ``(...)`` f(x).
      f_adv: ``(...)`` f(x_adv).
      n_forward: ``(...)`` int32 forward-only passes (bisection, final check).
      n_grad: ``(...)`` int32 gradient evaluations (one at x and one per step).
    """

    x_adv: jax.Array
    distance: jax.Array
    path_length: jax.Array
    n_steps: jax.Array
    max_step: jax.Array
    success: jax.Array
    f_clean: jax.Array
    f_adv: jax.Array
    n_forward: jax.Array
    n_grad: jax.Array


class _State(NamedTuple):
    i: jax.Array  # () int32 steps taken
    x_prev: jax.Array  # input_shape, the iterate before the last step
    x: jax.Array  # input_shape, the current iterate
    f: jax.Array  # () f(x)
    g: jax.Array  # input_shape, ∇f(x)
    path: jax.Array  # () length travelled
    max_step: jax.Array  # () longest step
    last_step: jax.Array  # () length of the last step
    crossed: jax.Array  # () bool, sign(f(x)) ≠ sign(f(x0))


@dataclasses.dataclass(frozen=True)
class _GradientFlow:
    apply: Callable
    max_steps: int
    n_bisect: int
    normalized: bool

    def __call__(self, params, x0, step_size, rtol) -> GradientFlowResult:
        dt = x0.dtype
        step_size, rtol = step_size.astype(dt), rtol.astype(dt)
        vg = jax.value_and_grad(self.apply, argnums=1)
        f0, g0 = vg(params, x0)
        s0 = jnp.sign(f0).astype(dt)  # fixed along the path: until it flips, sign f = sign f(x0)
        zero = jnp.zeros((), dt)

        def cond(st: _State):
            return (~st.crossed) & (st.i < self.max_steps) & (_common.lp_norm(st.g, 2.0) > 0) & (s0 != 0)

        def body(st: _State) -> _State:
            gn = _common.lp_norm(st.g, 2.0)
            d = st.g / jnp.where(gn > 0, gn, 1) if self.normalized else st.g
            step = (-s0 * step_size) * d
            x_new = st.x + step
            length = _common.lp_norm(step, 2.0)
            f_new, g_new = vg(params, x_new)
            return _State(
                i=st.i + 1,
                x_prev=st.x,
                x=x_new,
                f=f_new,
                g=g_new,
                path=st.path + length,
                max_step=jnp.maximum(st.max_step, length),
                last_step=length,
                crossed=_common.flipped(f0, f_new),
            )

        init = _State(jnp.zeros((), jnp.int32), x0, x0, f0, g0, zero, zero, zero, jnp.zeros((), bool))
        st = jax.lax.while_loop(cond, body, init)

        # Refinement: the crossing lies on the segment x_prev → x of the last step; bisect on
        # θ ∈ (0, 1] (forward passes only) so x_adv is within rtol·step of the boundary instead
        # of up to one full step beyond it.
        seg = st.x - st.x_prev

        def point(theta):
            return st.x_prev + theta * seg

        def pred(theta):
            return _common.flipped(f0, self.apply(params, point(theta)))

        one = jnp.ones((), dt)
        lo = jnp.where(st.crossed, zero, one)  # no bracket (lo == hi) when not crossed
        _, theta, nb = bisect(pred, lo, one, self.n_bisect, rtol)
        refined = theta < 1
        cand = jnp.where(refined, point(theta), st.x)
        f_cand = jnp.where(refined, self.apply(params, cand), st.f)
        # Verify the refined point; if rounding made it disagree with the bracket, fall back to
        # the last iterate, whose f was computed with its gradient.
        ok = _common.flipped(f0, f_cand)
        x_adv = jnp.where(ok | ~refined, cand, st.x)
        f_adv = jnp.where(ok | ~refined, f_cand, st.f)
        success = st.crossed & _common.flipped(f0, f_adv)
        path = jnp.where(st.crossed, st.path - st.last_step + _common.lp_norm(x_adv - st.x_prev, 2.0), st.path)
        return GradientFlowResult(
            x_adv=x_adv,
            distance=_common.distance_or_inf(x0, x_adv, success, 2.0),
            path_length=path,
            n_steps=st.i,
            max_step=st.max_step,
            success=success,
            f_clean=f0,
            f_adv=f_adv,
            n_forward=(nb + refined.astype(jnp.int32)).astype(jnp.int32),
            n_grad=(st.i + 1).astype(jnp.int32),
        )


def gradient_flow(
    net: Network,
    params: Params,
    xs: jax.Array,
    *,
    step_size: float = 0.05,
    max_steps: int = 1000,
    normalized: bool = False,
    n_bisect: int = 20,
    rtol: float = 1e-4,
    chunk_size: int | None = None,
    max_bytes: int | None = None,
) -> GradientFlowResult:
    """Gradient descent on sign(f(x))·f with small steps until the sign of f changes.

    Daniely & Schacham 2020: iterate x ← x − s·sign(f(x₀))·∇f(x) (``normalized=False``, the
    step of their code, with s = ``step_size``) or x ← x − s·sign(f(x₀))·∇f(x)/‖∇f(x)‖
    (``normalized=True``: every step has Euclidean length s), at most ``max_steps`` steps, and
    stop at the first iterate whose sign differs from f(x₀). The crossing step is then refined
    by bisection on its segment (forward passes only, at most ``n_bisect``, to ``rtol`` of the
    step), so x_adv lies within ``rtol``·(step length) past the boundary rather than up to a
    whole step. Where ∇f = 0 (x = 0 for a bias-free net, all ReLUs dead) or f(x) = 0 the flow
    stops at once and fails (``success=False``, ``distance=inf``, no NaN).

    Args:
      net: the network family.
      params: one network's params, or many stacked on a leading axis.
      xs: ``(n_x, *input_shape)`` or ``(n_net, n_x, *input_shape)`` inputs.
      step_size: s > 0 (traced: a sweep does not recompile).
      max_steps: cap on the number of steps (static).
      normalized: fixed-length steps (static).
      n_bisect: maximum bisection steps on the crossing segment (static; 0 returns the first
        flipped iterate).
      rtol: tolerance of the bisection, as a fraction of the last step (traced).
      chunk_size: pairs per vmapped block (see :func:`jaxadv.kernels.map_pairs`).
      max_bytes: memory budget of one block.

    Returns:
      :class:`GradientFlowResult` with leading axes ``(n_net, n_x)`` or ``(n_x,)``.

    Examples:
      >>> import jax, jaxadv
      >>> net = jaxadv.nets.two_layer(d=50, k=50)
      >>> params = net.init(jax.random.key(0))
      >>> xs = jaxadv.data.sphere(jax.random.key(1), 4, 50)
      >>> r = jaxadv.attacks.gradient_flow(net, params, xs, step_size=0.05, normalized=True)
      >>> bool((r.max_step <= 0.05 * (1 + 1e-5)).all())
      True
    """
    xs = _validate.float_array(xs, "xs")
    kernels.layout(net, params, xs)
    step_size = _common.positive_scalar(step_size, "step_size")
    rtol = _common.nonneg_scalar(rtol, "rtol")
    max_steps = _validate.positive_int(max_steps, "max_steps")
    if not isinstance(normalized, bool):
        raise TypeError(f"`normalized` must be True or False, got {normalized!r}.")
    n_bisect = _common.nonneg_int(n_bisect, "n_bisect")
    fn = _GradientFlow(net.apply, max_steps, n_bisect, normalized)
    return kernels.map_pairs(fn, net, params, xs, shared=(step_size, rtol), chunk_size=chunk_size, max_bytes=max_bytes)
