"""Bartlett, Bubeck & Cherapanamjeri 2021, "Adversarial examples in multi-layer random ReLU
networks": the checkable predictions of Theorem 1.1, Lemmas 2.2, 2.8 and 3.2 and Theorem 3.1.

The paper is theory only (no experiments, no code; PROTOCOLS.md §3), so every grid below is
ours. Networks are NN-DEF (``jaxadv.nets.mlp``: no biases, (W_i)_{jk} ~ N(0, 1/d_{i−1}),
readout N(0, I/d_ℓ)); inputs are uniform on the sphere of radius √d (the proof's ‖x‖ = √d).

What is measured
----------------
* **Theorem 1.1 / Lemma 2.2 / Lemma 2.8 cells** ``arch=<name>,d=<d>``: ℓ = ``depth`` hidden
  layers whose widths vary with d as d_i = ⌈c_i·d^{p_i}⌉ (``architectures``: equal (d, d, d),
  shrinking (d, d/2, d/4), expanding (d/2, d, 2d), and a bottleneck (d, 2√d, d)), built
  with ``nets.mlp(d, widths)``. For ``n_net`` networks × ``n_x`` inputs per network:

  - :func:`jaxadv.attacks.one_step` with |η| ≤ ``eta_max``: whether one gradient step flips
    sign f(x), and its length ‖η∇f(x)‖ (Theorem 1.1 predicts ‖η∇f‖/‖x‖ = O(1/√d));
  - f along the ray x − sign f(x)·τ·η_lin·∇f(x), η_lin = |f(x)|/‖∇f(x)‖² (the step that
    would reach the boundary if f were linear), on a geometric grid of τ (``ray``: from, to,
    points): where f(x + η∇f) ≤ −f(x), Theorem 1.1's full statement (sign flipped AND
    |f(x + η∇f)| ≥ |f(x)|); a linear f gives τ = 2;
  - f(x) and ‖∇f(x)‖ (Lemma 2.2's bounds and the exact moments its proof implies);
  - ‖∇f(x + δ) − ∇f(x)‖/‖∇f(x)‖ for ‖δ‖ ∈ ``radii`` (in units of ‖x‖/√d = 1), along a
    uniformly random direction and along the step's direction (Lemma 2.8, eq. (1)).

  Many networks with few inputs each: the inputs of one network are strongly correlated
  (f has a common component over the sphere, Theorem 3.1's mechanism: at ℓ = 3 the hidden
  representations of orthogonal inputs already correlate at κ³(0) ≈ 0.59), the intra-network
  correlation of log|f|/‖∇f‖ is ≈ 0.2, so ``n_x`` inputs count as ≈ n_x/(1 + 0.2(n_x − 1)).

* **Lemma 3.2 / Theorem 3.1 cell** ``deep``: ``n_net`` equal-width networks (width k,
  ``depth`` L layers, input dimension d) read at every layer ℓ ≤ L:

  - the normalised inner product ρ̂_ℓ = ⟨h_ℓ(x), h_ℓ(y)⟩/(‖h_ℓ(x)‖‖h_ℓ(y)‖) of the hidden
    representations of pairs x, y at each angle in ``thetas``, against κ^ℓ(cos θ), κ the
    arc-cosine correlation map (:mod:`jaxadv.theory`);
  - f_ℓ = w_ℓ·h_ℓ on ``n_points`` points of the sphere, with an independent NN-DEF readout
    w_ℓ ~ N(0, I/k) per depth (so f_ℓ is an NN-DEF network of depth ℓ): the relative
    variation of f over the sphere, √(Σ_nets Var_x f / Σ_nets mean_x f²), and its
    infinite-width value 1 − mean_{x,y} κ^ℓ(cos θ_xy) (its square).

* **Iterated map cell** ``map``: 1 − ρ_ℓ from ρ_0 = 0 up to ℓ = max(``map_depths``) with
  :func:`jaxadv.theory.iterated_relu_correlation_gap`, against 9π²/(2ℓ²).

Grids
-----
* quick: ℓ = 3; d ∈ {32, 128, 512}; all four architectures; 40 networks × 5 inputs;
  |η| ≤ 1000; ray τ ∈ [1/2, 16] (33 points); radii {0.1, 0.3, 1, 3, 10}; deep cell d = 16,
  k = 256, L = 16, 32 networks, 8 angles, 64 sphere points; map to ℓ = 10⁴.
* paper: ℓ = 3; d ∈ {32, 128, 512, 2048, 10000}; the same four architectures (at d = 10⁴
  equal is 3·10⁸ weights, 1.2 GB per network, expanding (5000, 10⁴, 2·10⁴) the same:
  networks are drawn and attacked one at a time, see experiments/_blocks.py); 100 networks × 20 inputs;
  ray 65 points; radii {0.03, 0.1, 0.3, 1, 3, 10, 30}; deep cell d = 16, k = 1024, L = 64,
  64 networks, 12 angles, 128 points; map to ℓ = 10⁵. Meant for a GPU; on a CPU the d = 10⁴
  cells take hours each.

What the paper leaves open, and what we chose
---------------------------------------------
* Theorem 1.1's constants c1, c2, c3 (and C in Lemmas 2.2, 2.8) are unspecified and its
  width condition d_min ≥ (Cℓ log d_max)^{240ℓ} is far out of reach; we test the scalings
  (the −1/2 log-log slope of ‖η∇f‖/‖x‖ in d) and the constants the proofs do fix (2^{±(ℓ+1)}).
* The proof's step η = −2^ℓ log d·√(log 1/δ)/‖∇f‖² overshoots by orders of magnitude at
  simulable d; we measure the smallest η instead (one_step), and the smallest η on the ray
  grid with f(x + η∇f) ≤ −f(x).
* Theorem 3.1 needs ℓ ≥ d³ and k ≥ (ℓd)^{20}; we test it qualitatively at k ≫ 1, and
  measure a root-mean-square variation over sampled points instead of the sup over the sphere.
* Parameters are NN-DEF but drawn by a shape-independent sampler (fixed-size blocks of
  ``jax.random.normal``, one stream per network) rather than ``net.init``: every (arch, d)
  cell has its own shapes and ``init`` compiles per shape (seconds each on a CPU), which
  alone would exceed the quick budget. Network j of a cell depends only on the seed, the
  cell and j, never on how networks are batched.
* ``pad_widths`` (quick scale): at each d the four architectures run zero-padded to one
  common layout (the widest layer of any of them, layer by layer), so the attack and the
  probe compile once per d instead of once per cell: the same functions (a padded unit has
  zero weights in and out), at the price of computing the padding; the paper scale runs each
  architecture at its own widths.
* Width profiles (the paper requires only polynomially related widths): halving and doubling
  per layer, and a middle layer of 2√d units; widths are ⌈c·d^p⌉.
* The Lemma 2.2 and Theorem 1.1 probability statements are judged at the largest d; at the
  smallest (32) the narrowest layers have 8–16 units, outside the theorem's premise.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
import os
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxadv import attacks, kernels, nets, theory
from jaxadv.experiments._blocks import net_block
from jaxadv.experiments._spec import Experiment, cell_key
from jaxadv.experiments.claims import Claim

NAME = "bartlett2021"

_ARCHITECTURES = {
    "equal": [[1, 1], [1, 1], [1, 1]],
    "shrinking": [[1, 1], [0.5, 1], [0.25, 1]],
    "expanding": [[0.5, 1], [1, 1], [2, 1]],
    "bottleneck": [[1, 1], [2, 0.5], [1, 1]],
}

SCALES = {
    "quick": {
        "depth": 3,
        "architectures": _ARCHITECTURES,
        "dims": [32, 128, 512],
        "pad_widths": True,
        "n_net": 40,
        "n_x": 5,
        "eta_max": 1000.0,
        "ray": [0.5, 16.0, 33],
        "radii": [0.1, 0.3, 1.0, 3.0, 10.0],
        "deep": {"d": 16, "width": 256, "depth": 16, "n_net": 32, "n_points": 64,
                 "thetas": [0.1, 0.3, 0.6, 1.0, 1.5707963267948966, 2.0, 2.5, 3.0]},
        "map_depths": [1, 10, 100, 1000, 10000],
    },
    "paper": {
        "depth": 3,
        "architectures": _ARCHITECTURES,
        "dims": [32, 128, 512, 2048, 10000],
        "pad_widths": False,
        "n_net": 100,
        "n_x": 20,
        "eta_max": 1000.0,
        "ray": [0.5, 16.0, 65],
        "radii": [0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0],
        "deep": {"d": 16, "width": 1024, "depth": 64, "n_net": 64, "n_points": 128,
                 "thetas": [0.05, 0.1, 0.2, 0.3, 0.6, 1.0, 1.25, 1.5707963267948966, 2.0, 2.5, 2.8, 3.1]},
        "map_depths": [1, 10, 100, 1000, 10000, 100000],
    },
}

# ---------------------------------------------------------------------------------------
# tolerances (each derived next to it)

# Theorem 1.1 and Lemma 2.2 hold "with probability at least 1 − δ" once d_min ≥ polylog(d_max).
# We judge them at δ = 0.01 at the largest d of the grid (the fraction of (network, input)
# pairs where the event holds must be ≥ 0.99: two failures in 200 at quick scale); at smaller
# d, where the narrowest layer has 8–16 units, the premise fails and we only require the
# failure fraction to fall with d.
DELTA = 0.01

# Slope of log median(‖η∇f‖/‖x‖) against log d, predicted −1/2. The step factors exactly as
# ‖η∇f‖/‖x‖ = τ·|⟨∇f/‖∇f‖, x/‖x‖⟩| with τ = η/η_lin, and by Lemma 2.2's proof the second factor
# is |u_1|, u uniform on S^{d−1}, whose median is 0.674/√d up to O(1/d): slope −1/2 exactly once
# τ stops depending on d (τ → 1 is Lemma 2.8's local linearity). Noise: the median of N pairs has
# relative s.e. 1.17/√N_eff (density of |Z| at its median), N_eff ≈ 200/(1 + 4·0.2) ≈ 110 at
# quick scale, and a least-squares slope over d = 32, 128, 512 (Σ(log d − mean)² = 3.84) then has
# s.e. ≈ 0.057 (the bootstrap over networks, reported with the claim, gives 0.05–0.07); 3 s.e. ≈
# 0.18. Bias, pre-asymptotic, in both directions: the median τ drifts from ≈ 1.2 at d = 32 to
# ≈ 1.06 at d = 512 (steeper by ≈ 0.05), while restricting to switched pairs at d = 32 (75%)
# keeps the shorter steps (flatter by a similar amount). ±0.2 covers 3 s.e. and the residual.
SLOPE_TOL = 0.2

# Exact moments implied by Lemma 2.1 (∇f(x) has the law of W̃_{ℓ+1}ΠD_iW̃_i with independent
# Bernoulli(1/2) masks, and given its norm it is uniform on the sphere, independent of x):
# E‖∇f(x)‖² = 2^{−ℓ} (each masked layer halves the second moment, E‖W_{ℓ+1}‖² = 1), E f(x)² =
# E‖∇f‖²·E⟨θ, x⟩² = 2^{−ℓ} for ‖x‖ = √d, and E[d f²/(‖∇f‖²‖x‖²)] = d·E u_1² = 1 — at every
# width. Judged per architecture (pooled over d) by a z-score whose standard error comes from
# the spread of per-network means (inputs sharing a network are correlated); |z| ≤ 4 has a
# false-alarm rate below 1e-3 per test (t with ≥ 29 d.o.f.), 1% over the 12 tests.
MOMENT_Z = 4.0

# Lemma 3.2 by Monte Carlo: the pooled ratio Σ⟨h(x), h(y)⟩/√(Σ‖h(x)‖²·Σ‖h(y)‖²) over all
# units of all networks is a ratio of means, consistent with bias O(1/(k·n_net)); its s.e. is
# the jackknife over networks. Layer 1 is Lemma 3.2 itself: |error| ≤ 4 s.e. At layer ℓ the
# finite-width network also deviates from the infinite-width recursion κ^ℓ by O(1/k) per layer
# (fluctuations of ‖h_ℓ‖ feed back into the next layer's correlation; finite-width corrections
# to the kernel accumulate linearly in depth), so the deeper layers are judged with 4 s.e. + ℓ/k,
# the O(ℓ/k) drift with constant 1 (measured at k = 256, ℓ = 16: 0.03–0.07 < 16/256 + 4 s.e.).
CORR_Z = 4.0

# Lemma 2.8 / eq. (1): the gradient is locally almost constant, ‖∇f(x) − ∇f(y)‖ = o(1) for
# ‖x − y‖ ≤ R ∝ √d_min/polylog. We read it at ‖δ‖ = LINEAR_RADIUS·‖x‖/√d, the scale of the
# one-step perturbation (|f|/‖∇f‖ = O(1)), and claim that the median relative change falls with
# d (a negative log-log slope; the paper gives no rate). Heuristic rate: a perturbation of
# relative size ε = ‖δ‖/‖x‖ = 1/√d flips a fraction ~ε of the units of each layer, and the
# gradient changes by ~√(ℓε), i.e. ∝ d^{−1/4} at fixed ‖δ‖ (measured at quick scale: −0.20 to
# −0.24, and −0.15 with the bottleneck, whose narrow layer has 2√d units).
LINEAR_RADIUS = 1.0

# 1 − ρ_ℓ ≈ 9π²/(2ℓ²): the relative error of the asymptote is ≈ 3 ln ℓ/ℓ + O(1/ℓ) (see
# jaxadv.theory.correlation_gap_asymptote), 0.36% at ℓ = 10⁴ from ρ_0 = 0; we require ≤ 1% at
# the largest depth of the grid, and the error to decrease along the grid from ℓ = 10 on.
ASYMPTOTE_TOL = 0.01

# ---------------------------------------------------------------------------------------
# sampling


# The sampler draws a stream of n normals in blocks of a fixed size, block i from
# fold_in(key, i): two compiled shapes serve every tensor of every cell. Small streams use
# 2^16-blocks (little waste); streams of at least 2^24 numbers (a 10⁴ × 10⁴ layer) use
# 2^24-blocks, so a large network is a few dozen calls rather than thousands.
_BLOCKS = (1 << 16, 1 << 24)


@functools.partial(jax.jit, static_argnames=("size", "dtype"))
def _normal_block(key: jax.Array, size: int, dtype: Any) -> jax.Array:
    return jax.random.normal(key, (size,), dtype)


def _normals(key: jax.Array, n: int) -> np.ndarray:
    """``n`` standard normals from one stream: blocks fold_in(key, 0), fold_in(key, 1), …"""
    dtype = jnp.result_type(float)
    size = _BLOCKS[1] if n >= _BLOCKS[1] else _BLOCKS[0]
    blocks = [np.asarray(_normal_block(jax.random.fold_in(key, i), size, dtype)) for i in range(-(-n // size))]
    return np.concatenate(blocks)[:n]


def _sphere(key: jax.Array, shape: tuple[int, ...]) -> np.ndarray:
    """Points uniform on the sphere of radius √d, ``shape = (..., d)``."""
    g = _normals(key, math.prod(shape)).reshape(shape)
    return g * (math.sqrt(shape[-1]) / np.linalg.norm(g, axis=-1, keepdims=True))


def _widths(spec, d: int) -> list[int]:
    """d_i = ⌈c_i·d^{p_i}⌉ (at least 1) for the architecture ``spec = [[c_i, p_i], …]``."""
    return [max(1, math.ceil(c * d**p - 1e-9)) for c, p in spec]


def _draw_mlp(key: jax.Array, d: int, widths: list[int]) -> dict:
    """One NN-DEF network in ``nets.mlp(d, widths)``'s params layout, from one stream."""
    fan = [d, *widths]
    sizes = [widths[i] * fan[i] for i in range(len(widths))] + [widths[-1]]
    z = _normals(key, sum(sizes))
    parts = np.split(z, np.cumsum(sizes)[:-1])
    hidden = [{"W": parts[i].reshape(widths[i], fan[i]) / math.sqrt(fan[i])} for i in range(len(widths))]
    return {"hidden": hidden, "readout": {"w": parts[-1] / math.sqrt(widths[-1])}}


def _pad_mlp(params: dict, d: int, shape: list[int]) -> dict:
    """Zero-pads a ``nets.mlp(d, widths)`` draw to the layout of ``nets.mlp(d, shape)``.

    A padded unit has zero incoming and outgoing weights: its pre-activation is 0, σ(0) = 0,
    and it adds nothing to f or to ∇f, so the padded network computes the same function.
    """
    fan = [d, *shape]
    hidden = []
    for i, layer in enumerate(params["hidden"]):
        w = np.zeros((shape[i], fan[i]), layer["W"].dtype)
        w[: layer["W"].shape[0], : layer["W"].shape[1]] = layer["W"]
        hidden.append({"W": w})
    r = np.zeros((shape[-1],), params["readout"]["w"].dtype)
    r[: params["readout"]["w"].shape[0]] = params["readout"]["w"]
    return {"hidden": hidden, "readout": {"w": r}}


def _common_widths(config: Mapping[str, Any], d: int) -> list[int]:
    """Layer by layer, the widest layer of any architecture at input dimension d."""
    return [max(ws) for ws in zip(*(_widths(spec, d) for spec in config["architectures"].values()))]


def _stack(trees: list) -> Any:
    return jax.tree.map(lambda *a: jnp.asarray(np.stack(a)), *trees)


# Below this estimate the pair kernels run as one block with an explicit chunk_size, which
# skips map_pairs' automatic memory plan (three traces of the kernel: ~0.4 s per cell on a
# CPU); above it, the automatic plan keeps memory bounded. The estimate counts, per pair,
# every point the probe evaluates times every activation, four times over (values, masks,
# cotangents, slack); one block or the automatic plan give the same numbers.
SMALL_BYTES = 1 << 28


def _pairs_chunk(n_pairs: int, n_points: int, d: int, widths: list[int], itemsize: int) -> int | None:
    estimate = 4 * n_pairs * n_points * (d + sum(widths)) * itemsize
    return n_pairs if estimate <= SMALL_BYTES else None


# ---------------------------------------------------------------------------------------
# the per-pair probe (one compiled kernel per cell besides one_step)


@dataclasses.dataclass(frozen=True)
class _Probe:
    """f along the gradient ray and the gradient change at x + r·u and x + r·(step direction)."""

    apply: Callable

    def __call__(self, params, x, u, taus, radii):
        f0, g = jax.value_and_grad(self.apply, argnums=1)(params, x)
        gn = jnp.sqrt(jnp.vdot(g, g))
        s = -jnp.sign(f0)  # the step's side: towards the boundary
        eta_lin = jnp.abs(f0) / (gn * gn)
        ray = x[None, :] + (s * eta_lin * taus)[:, None] * g[None, :]
        f_ray = jax.vmap(self.apply, in_axes=(None, 0))(params, ray)
        q = -s * f_ray / jnp.abs(f0)  # sign f(x)·f/|f(x)|: 1 at x, 1 − τ for a linear f
        ghat = g / gn
        pts = jnp.concatenate([x + radii[:, None] * u[None, :], x + radii[:, None] * (s * ghat)[None, :]])
        grads = jax.vmap(jax.grad(self.apply, argnums=1), in_axes=(None, 0))(params, pts)
        rel = jnp.linalg.norm(grads - g[None, :], axis=-1) / gn
        n_r = radii.shape[0]
        return q, rel[:n_r], rel[n_r:]


def _arch_cell(config: Mapping[str, Any], name: str, arch: str, d: int) -> dict[str, np.ndarray]:
    widths = _widths(config["architectures"][arch], d)
    # With ``pad_widths`` every architecture at this d runs zero-padded to one common layout,
    # so the attack and the probe compile once per d rather than once per (architecture, d):
    # the same functions (see _pad_mlp), at the cost of computing the padding.
    shape = _common_widths(config, d) if config["pad_widths"] else widths
    net = nets.mlp(d, shape)
    n_net, n_x = config["n_net"], config["n_x"]
    key = cell_key(config["seed"], name)
    k_net, k_x, k_u = jax.random.split(key, 3)
    xs = _sphere(k_x, (n_net, n_x, d))
    us = _sphere(k_u, (n_net, n_x, d)) / math.sqrt(d)
    lo, hi, n_tau = config["ray"]
    dtype = jnp.result_type(float)
    taus = jnp.asarray(np.geomspace(lo, hi, int(n_tau)), dtype)
    radii = jnp.asarray(config["radii"], dtype)
    n_params = sum(a * b for a, b in zip(shape, [d, *shape])) + shape[-1]
    itemsize = jnp.dtype(dtype).itemsize
    batch = net_block(n_net, n_params * itemsize)
    chunk = _pairs_chunk(batch * n_x, int(n_tau) + 2 * len(config["radii"]) + 2, d, shape, itemsize)
    out: dict[str, list] = {}
    for start in range(0, n_net, batch):
        draws = [_draw_mlp(jax.random.fold_in(k_net, j), d, widths) for j in range(start, start + batch)]
        params = _stack([_pad_mlp(p, d, shape) for p in draws] if shape != widths else draws)
        x = jnp.asarray(xs[start:start + batch], dtype)
        u = jnp.asarray(us[start:start + batch], dtype)
        r = attacks.one_step(net, params, x, eta_max=config["eta_max"], chunk_size=chunk)
        q, rel_random, rel_step = kernels.map_pairs(_Probe(net.apply), net, params, x, per_x=(u,), shared=(taus, radii),
                                                    chunk_size=chunk)
        part = {"success": r.success, "eta": r.eta, "distance": r.distance, "grad_norm": r.grad_norm,
                "f": r.f_clean, "ray_q": q, "rel_random": rel_random, "rel_step": rel_step}
        for k, v in part.items():
            out.setdefault(k, []).append(np.asarray(v))
    res = {k: np.concatenate(v) for k, v in out.items()}
    res["widths"] = np.asarray(widths)
    return res


# ---------------------------------------------------------------------------------------
# the deep cell: hidden representations layer by layer


@jax.jit
def _deep_stats(w1, ws, readouts, xa, ya, pts):
    """Per layer: pair statistics of (xa, ya), sphere-point statistics and readouts.

    Args:
      w1: ``(k, d)`` first layer; ws: ``(L − 1, k, k)`` the others; readouts: ``(L, k)``.
      xa, ya: ``(n_θ, d)`` pairs; pts: ``(M, d)`` points on the sphere.

    Returns:
      ``pair``: ``(L, n_θ, 3)`` ⟨h(x), h(y)⟩, ‖h(x)‖², ‖h(y)‖²; ``sphere``: ``(L, 2)``
      mean_x ‖h(x)‖² and ‖mean_x h(x)‖²; ``f``: ``(L, M)`` the readouts w_ℓ·h_ℓ(x).
    """
    hi = jax.lax.Precision.HIGHEST
    n_t = xa.shape[0]

    def stats(h, w):
        hx, hy, hp = h[:n_t], h[n_t:2 * n_t], h[2 * n_t:]
        pair = jnp.stack([jnp.sum(hx * hy, -1), jnp.sum(hx * hx, -1), jnp.sum(hy * hy, -1)], -1)
        mean = jnp.mean(hp, 0)
        sphere = jnp.stack([jnp.mean(jnp.sum(hp * hp, -1)), jnp.sum(mean * mean)])
        return pair, sphere, jnp.matmul(hp, w, precision=hi)

    h = jax.nn.relu(jnp.matmul(jnp.concatenate([xa, ya, pts]), w1.T, precision=hi))
    first = stats(h, readouts[0])

    def layer(h, wr):
        w, r = wr
        h = jax.nn.relu(jnp.matmul(h, w.T, precision=hi))
        return h, stats(h, r)

    _, rest = jax.lax.scan(layer, h, (ws, readouts[1:]))
    return tuple(jnp.concatenate([a[None], b]) for a, b in zip(first, rest))


FINE_ANGLES = 121  # κ^ℓ on a grid of θ ∈ [0, π], for the figure


def _deep_cell(config: Mapping[str, Any]) -> dict[str, np.ndarray]:
    c = config["deep"]
    d, k, depth, n_net, m = c["d"], c["width"], c["depth"], c["n_net"], c["n_points"]
    thetas = np.asarray(c["thetas"], np.float64)
    key = cell_key(config["seed"], "deep")
    k_pair, k_pts, k_net = jax.random.split(key, 3)
    # Orthonormal (a, b) per angle: x = √d·a, y = √d·(cos θ a + sin θ b).
    g = _normals(k_pair, 2 * len(thetas) * d).reshape(len(thetas), 2, d).astype(np.float64)
    a = g[:, 0] / np.linalg.norm(g[:, 0], axis=-1, keepdims=True)
    b = g[:, 1] - np.sum(g[:, 1] * a, -1, keepdims=True) * a
    b /= np.linalg.norm(b, axis=-1, keepdims=True)
    xa = math.sqrt(d) * a
    ya = math.sqrt(d) * (np.cos(thetas)[:, None] * a + np.sin(thetas)[:, None] * b)
    pts = _sphere(k_pts, (m, d))
    dtype = jnp.result_type(float)
    xa_, ya_, pts_ = (jnp.asarray(v, dtype) for v in (xa, ya, pts))
    pair, sphere, fs = [], [], []
    sizes = [k * d, (depth - 1) * k * k, depth * k]
    for j in range(n_net):
        z = _normals(jax.random.fold_in(k_net, j), sum(sizes))
        w1, ws, rs = np.split(z, np.cumsum(sizes)[:-1])
        out = _deep_stats(jnp.asarray(w1.reshape(k, d) / math.sqrt(d)), jnp.asarray(ws.reshape(depth - 1, k, k) / math.sqrt(k)),
                          jnp.asarray(rs.reshape(depth, k) / math.sqrt(k)), xa_, ya_, pts_)
        for lst, v in zip((pair, sphere, fs), out):
            lst.append(np.asarray(v))
    # Infinite-width value of Var_x f / mean_x f² at each depth: 1 − mean_{x,y} κ^ℓ(cos θ_xy).
    unit = pts / np.linalg.norm(pts, axis=-1, keepdims=True)
    cos = np.clip(unit @ unit.T, -1, 1)
    rho = np.asarray(theory.iterated_relu_correlation(jnp.asarray(cos, dtype), depth))
    # The closed forms the claims and figures compare with (Lemma 3.2 iterated).
    fine = np.linspace(0, np.pi, FINE_ANGLES)
    kappa = np.asarray(theory.iterated_relu_correlation(jnp.asarray(np.cos(np.concatenate([thetas, fine])), dtype), depth))
    return {"pair": np.stack(pair), "sphere": np.stack(sphere), "f": np.stack(fs), "thetas": thetas,
            "kappa": kappa[:, :len(thetas)], "kappa_fine": kappa[:, len(thetas):],
            "variation_pred": 1 - rho.mean(axis=(1, 2))}


def _map_cell(config: Mapping[str, Any]) -> dict[str, np.ndarray]:
    depth = max(config["map_depths"])
    gaps = np.asarray(theory.iterated_relu_correlation_gap(1.0, depth))  # gap 1: ρ_0 = 0
    ells = np.arange(1, depth + 1)
    return {"gap": gaps, "depth": ells, "asymptote": np.asarray(theory.correlation_gap_asymptote(jnp.asarray(ells, gaps.dtype)))}


def _arch_name(arch: str, d: int) -> str:
    return f"arch={arch},d={d}"


def cells(config: Mapping[str, Any]):
    out = []
    for arch in config["architectures"]:
        for d in config["dims"]:
            name = _arch_name(arch, d)
            out.append((name, functools.partial(_arch_cell, config, name, arch, d)))
    out.append(("deep", functools.partial(_deep_cell, config)))
    out.append(("map", functools.partial(_map_cell, config)))
    return out


# ---------------------------------------------------------------------------------------
# summaries computed from the results


def _reflection_tau(q: np.ndarray, taus: np.ndarray) -> np.ndarray:
    """Smallest τ on the ray with sign f(x)·f ≤ −|f(x)| (q ≤ −1), linearly interpolated; inf if none."""
    hit = q <= -1
    first = np.argmax(hit, axis=-1)
    found = hit.any(axis=-1)
    j0 = np.maximum(first - 1, 0)
    q1 = np.take_along_axis(q, first[..., None], -1)[..., 0]
    q0 = np.take_along_axis(q, j0[..., None], -1)[..., 0]
    t1, t0 = taus[first], taus[j0]
    frac = np.where((first > 0) & (q0 != q1), (q0 + 1) / np.where(q0 != q1, q0 - q1, 1), 1.0)
    tau = np.where(first > 0, t0 + np.clip(frac, 0, 1) * (t1 - t0), t1)
    return np.where(found, tau, np.inf)


def _fit_slope(x, y) -> float:
    lx, ly = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    if len(lx) < 2 or not np.all(np.isfinite(ly)):
        return float("nan")
    return float(np.polyfit(lx, ly, 1)[0])


def _arch_rows(config, results):
    depth = config["depth"]
    lo, hi, n_tau = config["ray"]
    taus = np.geomspace(lo, hi, int(n_tau))
    radii = np.asarray(config["radii"], float)
    i_lin = int(np.argmin(np.abs(np.log(radii / LINEAR_RADIUS))))
    rows = []
    for arch in config["architectures"]:
        for d in config["dims"]:
            r = results[_arch_name(arch, d)]
            f, gn = r["f"].astype(float), r["grad_norm"].astype(float)
            live = gn > 0  # ∇f(x) = 0 (every unit of a layer off at x): no direction, no step
            ratio = r["distance"].astype(float) / math.sqrt(d)  # ‖η∇f‖/‖x‖, inf where failed
            tau = _reflection_tau(r["ray_q"].astype(float), taus)
            with np.errstate(invalid="ignore", divide="ignore"):
                refl_ratio = np.where(np.isfinite(tau) & live, tau * np.abs(f) / (gn * math.sqrt(d)), np.inf)
                dir_sq = np.where(live, f**2 / np.where(live, gn, 1) ** 2, np.nan)
            rel_random = np.where(live[..., None], r["rel_random"], np.nan)
            rel_step = np.where(live[..., None], r["rel_step"], np.nan)
            bound_f = 2.0 ** (depth + 1) * math.sqrt(2 * math.log(2 / DELTA))
            rows.append({
                "arch": arch, "d": d, "widths": [int(w) for w in r["widths"]],
                "switched": float(r["success"].mean()),
                "reflected": float(np.isfinite(tau).mean()),
                "median_ratio": float(np.median(ratio[r["success"]])) if r["success"].any() else float("nan"),
                "ratio": np.where(r["success"], ratio, np.nan),  # switched pairs only
                "median_refl_ratio": float(np.median(refl_ratio[np.isfinite(refl_ratio)])) if np.isfinite(refl_ratio).any() else float("nan"),
                "grad_in_range": float(((gn >= 2.0 ** -(depth + 1)) & (gn <= 2.0 ** (depth + 1))).mean()),
                "f_in_bound": float((np.abs(f) <= bound_f).mean()),
                "grad_sq_net": (2.0**depth * gn**2).mean(axis=1),
                "f_sq_net": (2.0**depth * f**2).mean(axis=1),
                "dir_sq_net": _nanmean_rows(dir_sq),  # d f²/(‖∇f‖²‖x‖²) with ‖x‖² = d
                "gn": gn, "f_abs": np.abs(f),
                "ray_q": np.nanmedian(np.where(live[..., None], r["ray_q"], np.nan), axis=(0, 1)),
                "rel_random": np.nanmedian(rel_random, axis=(0, 1)),
                "rel_step": np.nanmedian(rel_step, axis=(0, 1)),
                "rel_random_mean": np.nanmean(rel_random, axis=(0, 1)),
                "rel_step_mean": np.nanmean(rel_step, axis=(0, 1)),
                "linear_at_step": float(max(np.nanmedian(rel_random[..., i_lin]), np.nanmedian(rel_step[..., i_lin]))),
            })
    return rows


def _nanmean_rows(a: np.ndarray) -> np.ndarray:
    """Mean over axis 1 ignoring NaN; rows that are all NaN are dropped."""
    ok = np.isfinite(a)
    n = ok.sum(axis=1)
    return (np.where(ok, a, 0).sum(axis=1) / np.maximum(n, 1))[n > 0]


# Bootstrap replicates (networks resampled within each cell) for the s.e. of the slope; a
# fixed generator keeps claims a pure function of the results.
N_BOOT = 200


def _slope_with_se(config, rows) -> tuple[float, float]:
    """Slope of log median(‖η∇f‖/‖x‖ over switched pairs) against log d, and its bootstrap s.e."""
    ds = [r["d"] for r in rows]

    def median(a):
        a = a[np.isfinite(a)]
        return float(np.median(a)) if a.size else float("nan")

    slope = _fit_slope(ds, [median(r["ratio"]) for r in rows])
    rng = np.random.default_rng(0)
    reps = []
    for _ in range(N_BOOT):
        meds = []
        for r in rows:
            pick = rng.integers(0, r["ratio"].shape[0], r["ratio"].shape[0])
            meds.append(median(r["ratio"][pick]))
        reps.append(_fit_slope(ds, meds))
    reps = np.asarray(reps)
    return slope, float(np.nanstd(reps[np.isfinite(reps)], ddof=1)) if np.isfinite(reps).sum() > 1 else float("nan")


def _zscore(samples: np.ndarray) -> float:
    """(mean − 1)/s.e. with the s.e. from the spread of the samples (per-network means)."""
    s = np.asarray(samples, float).ravel()
    if s.size < 2:
        return float("inf")
    # A floor at float resolution: identical samples equal to 1 give z = 0, not 0/0.
    se = max(s.std(ddof=1) / math.sqrt(s.size), 1e-12)
    return float((s.mean() - 1) / se)


def _pooled_corr(pair: np.ndarray):
    """Pooled ρ̂ per (layer, θ) and its jackknife s.e. over networks; ``pair``: (n_net, L, n_θ, 3)."""
    tot = pair.sum(axis=0)
    rho = tot[..., 0] / np.sqrt(tot[..., 1] * tot[..., 2])
    n = pair.shape[0]
    loo = tot[None] - pair
    rho_loo = loo[..., 0] / np.sqrt(loo[..., 1] * loo[..., 2])
    se = np.sqrt((n - 1) / n * ((rho_loo - rho_loo.mean(0)) ** 2).sum(0))
    return rho, se


def _variation(f: np.ndarray) -> np.ndarray:
    """√(Σ_nets Var_x f / Σ_nets mean_x f²) per depth; ``f``: (n_net, L, M)."""
    return np.sqrt(f.var(axis=-1).sum(0) / (f**2).mean(axis=-1).sum(0))


def _feature_variation(sphere: np.ndarray) -> np.ndarray:
    """√(E_w Σ_nets Var_x f / E_w Σ_nets mean_x f²) = √(1 − Σ‖mean_x h_ℓ‖²/Σ mean_x‖h_ℓ‖²) per depth.

    The readout w ~ N(0, I/k) averaged out exactly: E_w (w·a)(w·b) = a·b/k. ``sphere``:
    ``(n_net, L, 2)`` with mean_x‖h_ℓ(x)‖² and ‖mean_x h_ℓ(x)‖².
    """
    tot = sphere.sum(axis=0)
    return np.sqrt(np.clip(1 - tot[:, 1] / tot[:, 0], 0, None))


def _doublings(depth: int) -> list[int]:
    return [2**i for i in range(int(math.log2(depth)) + 1)]


def claims(config, results) -> list[Claim]:
    rows = _arch_rows(config, results)
    depth = config["depth"]
    archs = list(config["architectures"])
    out = []

    d_max, d_min = max(config["dims"]), min(config["dims"])
    by_arch = {a: [r for r in rows if r["arch"] == a] for a in archs}

    top = {a: next(r for r in rs if r["d"] == d_max) for a, rs in by_arch.items()}
    out.append(Claim(
        f"{NAME}/one-step-switches",
        f"Theorem 1.1: one gradient step (attacks.one_step, |η| ≤ {config['eta_max']:g}) flips sign f(x) for ≥ {1 - DELTA:.0%} "
        f"of inputs at d = {d_max} for every width profile (ℓ = {depth}: equal, shrinking, expanding, bottleneck).",
        f"w.p. ≥ 1 − δ once d_min ≥ polylog (δ = {DELTA})",
        [f"{a}: " + "/".join(f"{r['switched']:.3f}" for r in rs) + f" at d = {'/'.join(str(r['d']) for r in rs)}" for a, rs in by_arch.items()],
        all(r["switched"] >= 1 - DELTA for r in top.values())))

    def falling(vals):
        return all(b <= a for a, b in itertools.pairwise(vals)) and (vals[-1] < vals[0] or vals[0] == 0)

    fails = {a: [1 - r["reflected"] for r in rs] for a, rs in by_arch.items()}
    out.append(Claim(
        f"{NAME}/one-step-full-statement",
        f"Theorem 1.1 in full: the fraction of inputs where NO step η along ∇f (searched up to {config['ray'][1]:g}·|f|/‖∇f‖²) gives "
        f"both sign f(x + η∇f) ≠ sign f(x) and |f(x + η∇f)| ≥ |f(x)| falls as d grows (never rises along d = "
        f"{', '.join(str(d) for d in config['dims'])}, and is lower at d = {d_max} than at d = {d_min}) for every width profile.",
        "failure probability ≤ δ once d_min ≥ polylog",
        [f"{a}: " + "/".join(f"{v:.3f}" for v in vs) for a, vs in fails.items()], all(falling(v) for v in fails.values())))

    slopes = {a: _slope_with_se(config, rs) for a, rs in by_arch.items()}
    ok = all(abs(sl + 0.5) <= SLOPE_TOL for sl, _ in slopes.values())
    out.append(Claim(
        f"{NAME}/step-falls-like-1-over-sqrt-d",
        f"Theorem 1.1: ‖η∇f(x)‖/‖x‖ ≤ c3√(log(1/δ)/d): the log-log slope against d of the median one-step ‖η∇f‖/‖x‖ "
        f"(over switched inputs) is −1/2 ± {SLOPE_TOL} for every width profile.",
        -0.5, [f"{a}: {sl:+.3f} (bootstrap s.e. {se:.3f})" for a, (sl, se) in slopes.items()], ok))

    out.append(Claim(
        f"{NAME}/lemma2.2-gradient-bounds",
        f"Lemma 2.2 and eq. (2): 2^-(ℓ+1) ≤ ‖∇f(x)‖ ≤ 2^(ℓ+1) (ℓ = {depth}) for ≥ {1 - DELTA:.0%} of inputs at d = {d_max}, "
        f"every width profile (the lemma assumes d_min ≥ c·log(4ℓ/δ)).",
        f"[{2.0 ** -(depth + 1):g}, {2.0 ** (depth + 1):g}] w.p. ≥ 1 − δ",
        [f"{a}: " + "/".join(f"{r['grad_in_range']:.3f}" for r in rs) for a, rs in by_arch.items()],
        all(r["grad_in_range"] >= 1 - DELTA for r in top.values())))

    bound_f = 2.0 ** (depth + 1) * math.sqrt(2 * math.log(2 / DELTA))
    out.append(Claim(
        f"{NAME}/lemma2.2-output-bound",
        f"Lemma 2.2: |f(x)| ≤ c·2^ℓ√(log 1/δ) with the constant its proof gives, 2^(ℓ+1)·√(2 log(2/δ)) = {bound_f:.3g} "
        f"(‖∇f‖ ≤ 2^(ℓ+1) and the sub-Gaussian tail of a uniform direction), δ = {DELTA}: holds for ≥ {1 - DELTA:.0%} of "
        f"inputs in every cell. A loose sanity bound: typical |f| is about 0.35 at ℓ = 3.",
        f"|f| ≤ {bound_f:.3g} w.p. ≥ 1 − δ", f"min fraction {min(r['f_in_bound'] for r in rows):.3f}",
        all(r["f_in_bound"] >= 1 - DELTA for r in rows)))

    zs = {a: [_zscore(np.concatenate([r[key] for r in rs])) for key in ("grad_sq_net", "f_sq_net", "dir_sq_net")]
          for a, rs in by_arch.items()}
    zmax = max(abs(z) for v in zs.values() for z in v)
    out.append(Claim(
        f"{NAME}/lemma2.2-exact-moments",
        f"Lemma 2.1/2.2 (∇f has the law of a product with independent Bernoulli(1/2) masks, uniform in direction): "
        f"2^ℓ·E‖∇f‖² = 2^ℓ·E f² = E[d f²/(‖∇f‖²‖x‖²)] = 1 at every width; |z| ≤ {MOMENT_Z:g} for each width profile "
        f"(all d pooled; s.e. from per-network means).",
        "1, 1, 1", [f"{a}: z = " + ", ".join(f"{z:+.2f}" for z in v) for a, v in zs.items()], zmax <= MOMENT_Z))

    bad = [f"{r['arch']} d={r['d']}" for r in rows if not np.all(np.diff(r["rel_random_mean"]) >= 0)]
    out.append(Claim(
        f"{NAME}/lemma2.8-grows-with-radius",
        "Lemma 2.8 / eq. (1): the mean relative gradient change ‖∇f(x+δ) − ∇f(x)‖/‖∇f(x)‖ (random directions) is "
        "nondecreasing in ‖δ‖ in every cell.",
        "small for small ‖δ‖, growing with ‖δ‖", "all cells" if not bad else f"not in {bad}", not bad))

    trend = {a: _fit_slope([r["d"] for r in rs], [r["linear_at_step"] for r in rs]) for a, rs in by_arch.items()}
    out.append(Claim(
        f"{NAME}/lemma2.8-locally-linear",
        "Lemma 2.8 / eq. (1): at ‖δ‖ = ‖x‖/√d (the one-step scale) the median relative gradient change (the larger of random "
        "and step directions) falls with d (negative log-log slope) for every width profile.",
        "≤ C^ℓ/log^ℓ d_max = o(1) within ‖δ‖ ≤ R ∝ √d_min",
        [f"{a}: " + "/".join(f"{r['linear_at_step']:.3f}" for r in rs) + f" (slope {trend[a]:+.2f})" for a, rs in by_arch.items()],
        all(t < 0 for t in trend.values())))

    deep = results["deep"]
    k = config["deep"]["width"]
    thetas = deep["thetas"]
    rho, se = _pooled_corr(deep["pair"])
    L = rho.shape[0]
    kappa = deep["kappa"].astype(float)
    z1 = np.max(np.abs(rho[0] - kappa[0]) / np.maximum(se[0], 1e-12))
    out.append(Claim(
        f"{NAME}/lemma3.2-correlation-map",
        f"Lemma 3.2: the normalised inner product of one random ReLU layer's outputs (width {k}, Monte Carlo over networks) "
        f"equals (sin θ)/π + (1 − θ/π)cos θ within {CORR_Z:g} jackknife s.e. at every θ.",
        "κ(cos θ)", f"max |z| = {z1:.2f} over {len(thetas)} angles", z1 <= CORR_Z))

    ells = np.arange(1, L + 1)[:, None]
    excess = np.abs(rho - kappa) - (CORR_Z * se + ells / k)
    out.append(Claim(
        f"{NAME}/lemma3.2-iterated-map",
        f"Lemma 3.2 iterated: at layer ℓ ≤ {L} of width-{k} networks the correlation follows κ^ℓ(cos θ) within "
        f"{CORR_Z:g} s.e. + ℓ/k (finite-width drift) at every θ.",
        "κ^ℓ(cos θ) (infinite width)", f"max |ρ̂ − κ^ℓ| = {np.max(np.abs(rho - kappa)):.4f}", bool(np.all(excess <= 0))))

    var = _feature_variation(deep["sphere"])
    ds = _doublings(L)
    v = [var[l - 1] for l in ds]
    ok = all(b < a for a, b in itertools.pairwise(v))
    out.append(Claim(
        f"{NAME}/theorem3.1-variation-shrinks-with-depth",
        f"Theorem 3.1 (qualitative): at fixed width {k}, the relative variation of f over the sphere, "
        f"√(E Var_x f / E mean_x f²) (readout averaged exactly), decreases at every doubling of the depth "
        f"ℓ = {ds[0]}…{ds[-1]} (d = {config['deep']['d']}).",
        "|f(x) − f(y)|/|f(x)| ≤ C√(log d/d) once ℓ ≥ d³", [f"ℓ={l}: {x:.3f}" for l, x in zip(ds, v)], ok))

    gap = results["map"]["gap"]
    md = [m for m in config["map_depths"]]
    asym = results["map"]["asymptote"]
    err = [abs(gap[m - 1] / asym[m - 1] - 1) for m in md]
    tail = [e for m, e in zip(md, err) if m >= 10]
    ok = err[-1] <= ASYMPTOTE_TOL and all(b < a for a, b in itertools.pairwise(tail))
    out.append(Claim(
        f"{NAME}/iterated-map-asymptote",
        f"The iterated map from ρ_0 = 0: ℓ²(1 − ρ_ℓ) → 9π²/2 ≈ 44.41; relative error ≤ {ASYMPTOTE_TOL:.0%} at ℓ = {md[-1]} "
        f"and decreasing along ℓ = {', '.join(str(m) for m in md if m >= 10)}.",
        "1 − ρ_ℓ ≈ 9π²/(2ℓ²)", [f"ℓ={m}: {m**2 * gap[m - 1]:.3f}" for m in md], ok))
    return [dataclasses.replace(c, holds=bool(c.holds)) for c in out]


# ---------------------------------------------------------------------------------------
# figures


def figures(config, results, directory) -> list[str]:
    from matplotlib.figure import Figure  # no pyplot: no global backend or figure state

    rows = _arch_rows(config, results)
    depth = config["depth"]
    archs = list(config["architectures"])
    colors = {a: f"C{i}" for i, a in enumerate(archs)}
    fig = Figure(figsize=(16, 9))
    ax = fig.subplots(2, 3)

    a = ax[0, 0]
    for arch in archs:
        rs = [r for r in rows if r["arch"] == arch]
        a.plot([r["d"] for r in rs], [r["median_ratio"] for r in rs], "o-", color=colors[arch], label=f"{arch} one step")
        a.plot([r["d"] for r in rs], [r["median_refl_ratio"] for r in rs], "x--", color=colors[arch], alpha=0.6)
    dims = np.asarray(config["dims"], float)
    ref = next(r["median_ratio"] for r in rows if r["arch"] == archs[0]) * np.sqrt(dims[0] / dims)
    a.plot(dims, ref, "k:", label="∝ d^(−1/2)")
    a.plot([], [], "kx--", alpha=0.6, label="first η with f(x+η∇f) = −f(x)")
    a.set(xscale="log", yscale="log", xlabel="input dimension d", ylabel="median ‖η∇f(x)‖ / ‖x‖ (switched inputs)",
          title=f"Theorem 1.1 (ℓ = {depth}): length of the one gradient step")
    a.legend(fontsize=7)

    a = ax[0, 1]
    for arch in archs:
        rs = [r for r in rows if r["arch"] == arch]
        ds = [r["d"] for r in rs]
        for key, style in (("gn", "o-"), ("f_abs", "s--")):
            q = np.array([np.percentile(r[key], [5, 50, 95]) for r in rs])
            a.plot(ds, q[:, 1], style, color=colors[arch], label=f"{arch} {'‖∇f‖' if key == 'gn' else '|f|'}")
            a.fill_between(ds, q[:, 0], q[:, 2], color=colors[arch], alpha=0.08)
    for y, lab in ((2.0 ** -(depth + 1), "2^-(ℓ+1)"), (2.0 ** (depth + 1), "2^(ℓ+1)"), (2.0 ** (-depth / 2), "2^(−ℓ/2) = √E‖∇f‖²")):
        a.axhline(y, color="k", lw=0.8, ls=":")
        a.text(dims[0], y * 1.1, lab, fontsize=7)
    a.set(xscale="log", yscale="log", xlabel="input dimension d", ylabel="median, 5–95% band",
          title="Lemma 2.2: ‖∇f(x)‖ and |f(x)|")
    a.legend(fontsize=6, ncol=2)

    a = ax[0, 2]
    radii = np.asarray(config["radii"], float)
    for arch in archs:
        for r in (r for r in rows if r["arch"] == arch):
            alpha = 0.25 + 0.75 * (np.log(r["d"]) - np.log(dims[0])) / max(np.log(dims[-1] / dims[0]), 1e-9)
            a.plot(radii, r["rel_random_mean"], "-", color=colors[arch], alpha=alpha,
                   label=f"{arch}, random δ" if r["d"] == dims[-1] else None)
            if r["d"] == dims[-1]:
                a.plot(radii, r["rel_step_mean"], "--", color=colors[arch], label=f"{arch}, δ along the step")
    a.axvline(LINEAR_RADIUS, color="k", ls=":", lw=0.8)
    a.set(xscale="log", yscale="log", xlabel="‖δ‖ / (‖x‖/√d)", ylabel="mean ‖∇f(x+δ) − ∇f(x)‖ / ‖∇f(x)‖",
          title=f"Lemma 2.8 / eq. (1): faint to dark d = {int(dims[0])}…{int(dims[-1])}")
    a.legend(fontsize=6)
    for a in (ax[0, 0], ax[0, 1]):
        a.set_xticks(dims, [str(int(d)) for d in dims])
        a.minorticks_off()

    deep = results["deep"]
    rho, se = _pooled_corr(deep["pair"])
    thetas = deep["thetas"]
    L = rho.shape[0]
    kappa_fine = deep["kappa_fine"]
    fine = np.linspace(0, np.pi, kappa_fine.shape[1])
    a = ax[1, 0]
    for i, ell in enumerate(_doublings(L)):
        a.plot(fine, kappa_fine[ell - 1], color=f"C{i}", lw=1)
        a.errorbar(thetas, rho[ell - 1], yerr=2 * se[ell - 1], fmt="o", ms=3, color=f"C{i}", label=f"ℓ = {ell}")
    a.set(xlabel="angle θ between inputs", ylabel="normalised ⟨h_ℓ(x), h_ℓ(y)⟩",
          title=f"Lemma 3.2: κ^ℓ(cos θ) (lines) vs width {config['deep']['width']} nets (±2 s.e.)")
    a.legend(fontsize=7)

    a = ax[1, 1]
    var = _variation(deep["f"])
    ells = np.arange(1, L + 1)
    sph = deep["sphere"].sum(0)
    a.plot(ells, var, "o-", label="f over the sphere (readouts)")
    a.plot(ells, np.sqrt(1 - sph[:, 1] / sph[:, 0]), "s--", label="readout-averaged (features)")
    a.plot(ells, np.sqrt(deep["variation_pred"]), "k-", label="infinite width: √(1 − mean κ^ℓ)")
    a.set(xscale="log", yscale="log", xlabel="depth ℓ", ylabel="√(Var_x f / mean_x f²)",
          title=f"Theorem 3.1: variation of f over S^(d−1), d = {config['deep']['d']}")
    a.legend(fontsize=7)

    a = ax[1, 2]
    gap = results["map"]["gap"]
    ell = results["map"]["depth"]
    a.plot(ell, gap, "-", label="1 − ρ_ℓ, ρ_0 = 0 (iterated κ)")
    a.plot(ell, results["map"]["asymptote"], "k:", label="9π²/(2ℓ²)")
    i_orth = int(np.argmin(np.abs(thetas - np.pi / 2)))
    a.plot(np.arange(1, L + 1), 1 - rho[:, i_orth], "o", ms=3, label=f"width-{config['deep']['width']} nets, θ = {thetas[i_orth]:.2f}")
    a.set(xscale="log", yscale="log", xlabel="depth ℓ", ylabel="1 − ρ_ℓ", title="Lemma 3.2 iterated: 1 − ρ_ℓ ≈ 9π²/(2ℓ²)")
    a.legend(fontsize=7)

    fig.suptitle("Bartlett, Bubeck & Cherapanamjeri 2021 (no figures in the paper; panels named by statement)")
    fig.subplots_adjust(left=0.045, right=0.99, bottom=0.06, top=0.92, wspace=0.22, hspace=0.28)  # tight_layout costs ~0.6 s
    name = f"{NAME}.png"
    fig.savefig(os.path.join(directory, name), dpi=100)
    return [name]


EXPERIMENT = Experiment(
    name=NAME,
    title="Bartlett et al. 2021: multi-layer random ReLU nets (Thm 1.1, Lemmas 2.2/2.8/3.2, Thm 3.1)",
    scales=SCALES,
    cells=cells,
    claims=claims,
    figures=figures,
)
