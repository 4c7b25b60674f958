"""De Palma, Kiani & Lloyd 2021, §4 and Figs 1–4: random networks are robust up to ~1/√n.

For each cell (architecture, input dimension n = 3s², a block of networks) the experiment
draws random networks and inputs x0 with i.i.d. U[0,1] pixels (the code's
``img_data_generator``: an s×s×3 image, flattened for fully connected nets; §1.2 of
PROTOCOLS.md), and measures, per (network, input):

* the ℓ1, ℓ2 and ℓ∞ distance to the decision boundary, by :func:`jaxadv.attacks.min_norm`
  (one attack per norm on the SAME pairs; the perturbations stay in the [0,1] box, as
  Foolbox's bounds keep them in the paper's code);
* the ℓ1, ℓ2 and ℓ∞ norms of each attack's perturbation, so that one attack's result can be
  checked against the others (the paper's distance is a minimum over many attacks: an
  ℓ2 perturbation with a smaller ℓ1 norm than the ℓ1 attack's is a witness that the latter
  missed the minimum);
* ‖x0‖₁, ‖x0‖₂, ‖x0‖∞ (Fig 2 divides by ‖x0‖_p);
* the distance t to the first sign change along a random unit direction v (Theorem 1,
  segment part), by :func:`jaxadv.attacks.line_search` with
  :func:`jaxadv.attacks.random_directions` (no box: the theorem has none).

From these: Fig 1 (median distance against n with ±5-percentile bars, log-log fits;
Remark 5 predicts slopes +½, 0, −½ for ℓ1, ℓ2, ℓ∞; also the slopes of the per-pair ratios
d1/d2 and d2/d∞, where the common factor |f(x0)| cancels), Fig 2 (median ‖Δx‖_p/‖x0‖_p,
slope −½ in every norm), Fig 3 (sorted ℓ1 distances against the percentile at the largest
n, with the paper's linear fit over percentiles 0–0.25; the claim pools every n), the
segment theorem (t/‖x0‖₂ stays a finite fraction as n grows; P(t < r) ≤ δ for
r = π‖x0‖₂δ/(2M + π)) and Corollary 1's ℓ1 guarantee P(d1 < r_δ) ≤ δ.

Architectures are entries of ``archs`` (name → spec, built by
:func:`jaxadv.experiments.depalma2021_trained.network`):

* ``fc``: fully connected ReLU networks with weights AND biases (``nets.mlp``,
  ``bias=True``), hidden widths [100, 100] as the code's FCN, σ_W² = 2/fan-in (the code's
  ``VarianceScaling(2.0)``), σ_b = 0.5 (random biases: the paper's text).
* ``resnet``: the paper's simplified residual network (:func:`jaxadv.nets.resnet`, ResNet v1
  of depth 20 without batch norm, filters 32/64/128, He-normal weights) on s×s×3 images,
  WITHOUT biases, as in the authors' code (Keras' zero biases); M = 4 (Theorem 2).

Each runs twice per norm where ``nobox_archs`` names it: in the [0, 1] box (the paper's
Foolbox bounds; the claims above) and without it (the theory's setting; one claim per
architecture, the three slopes). Figs 3–4 on image datasets, random against trained
networks, are :mod:`jaxadv.experiments.depalma2021_trained` (the ``images`` entry).

Grids:

* quick: ``fc``; s ∈ {4, 6, 8, 11, 16}, n = 48, 108, 192, 363, 768; 100 networks × 1
  input per n (independent pairs: more information per attack than 10 correlated inputs
  of one network); min_norm with 8 gradient steps, with and without the box; t searched
  up to 8·E‖x0‖₂. The residual network is not in the quick Figs 1–2: every (n, norm, box)
  costs one XLA compilation of min_norm on it (20–40 s on a 2-core CPU, where one
  compilation serves every n of the FC net), so even three sizes take minutes; it is in
  the quick Figs 3–4 (one input size). Images part: see that module.
* paper: ``fc`` and ``resnet``; s = 12, 16, …, 60 (the code's ResNet sweep
  ``range(12, 61, 4)``), n = 432 … 10800 (13 sizes); 200 networks × 10 inputs per n (2000
  pairs; §1.2), in cells of 50 FC networks (≤ 220 MB of weights each) or 20 residual ones;
  min_norm with its default 20 gradient steps, with and without the box; t up to
  8·E‖x0‖₂. Hours on a CPU; meant for an accelerator.

Where the paper is silent, and what we chose:

* σ_b: the paper allows any σ_b (Remark 3: the bounds do not depend on it); the code's
  Keras layers have zero biases. We use σ_b = 0.5, which puts about a quarter of the first
  layer's pre-activation variance (2·E x_i² = 2/3) in the bias: biases matter without
  dominating.
* One set of networks serves all three norms and the line search (the code draws a fresh
  set per norm; the distributions are the same, and shared pairs make the cross-norm
  check possible).
* The attack: the code takes the minimum over 8–12 Foolbox attacks per norm (§1.4); we use
  one, ``min_norm``, per norm. Against 60 gradient steps in 3 restarts, on these networks
  (n = 108 and 768, 60 pairs), its median distance is higher by 0.3% (ℓ2), 0.8–1.0% (ℓ1)
  and 0.4–0.8% (ℓ∞) with the quick scale's 8 steps, and by ≤ 0.06% with the paper's 20;
  a few pairs are up to 26% (ℓ1), 9% (ℓ∞), 13% (ℓ2) higher at 8 steps. These shift the
  medians by far less than their sampling error and hardly at all with n. The box [0,1]
  raises the ℓ1 distance (4.8 against 4.1 at n = 768: sparse steps hit the box) and
  barely moves ℓ2 and ℓ∞.
* Fig 2 divides by the sample's own ‖x0‖_p (the paper's caption); the code divides by the
  expected norm (n/2, √(n/3), 1). They differ by O(1/√n) relative.
* Fig 3 at the largest n of the grid (the paper does not say which n; its code's profile
  reads untrained ResNets on MNIST/CIFAR10-sized inputs); its claim pools all n.
* The segment search scans t ∈ (0, 8·√(n/3)] (√(n/3) = E‖x0‖₂); lines that do not cross
  within it count as t = ∞. They are most lines (55–72%): U[0,1] inputs share a large
  mean component, and far along a line the sign is that of f(v), correlated with f(x0).
* ``shared_compile`` (quick only): every n runs through ONE compiled attack per norm, on
  the n-dimensional network embedded in ℝ^{n_max} (first-layer weights zero on the
  n_max − n unused coordinates, inputs zero there). f does not depend on those
  coordinates, so the attacks' gradients vanish there and every step stays in ℝⁿ; the
  distances are measured on the first n coordinates (``pad_leak`` records the largest
  unused-coordinate change, 0 in practice), and sign changes are exact because
  f(x_adv) = f(x_adv restricted to ℝⁿ) bit for bit. This trades n_max-sized arithmetic for
  the ~10 s of XLA compilation each (norm, n) would otherwise cost on a CPU.
"""

from __future__ import annotations

import functools
import math
import os
import zlib
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxadv import attacks, kernels, nets
from jaxadv.experiments import _blocks as _blocks_of
from jaxadv.experiments import depalma2021_trained
from jaxadv.experiments._spec import Experiment
from jaxadv.experiments.claims import Claim
from jaxadv.experiments.depalma2021_trained import PROFILE_FIT_TO, PROFILE_INTERCEPT_TOL, network, profile_fit

_FC = {"kind": "mlp", "widths": [100, 100], "weight_std": math.sqrt(2.0), "bias_std": 0.5}
# The paper's residual network (Figs 1–4), without biases as in the authors' code.
_RESNET = {"kind": "resnet", "depth": 20, "filters": [32, 64, 128]}
# Quick, for Figs 3–4 on 8×8 digits: the same family with one block per stage, narrower.
_RESNET_QUICK = {"kind": "resnet", "depth": 8, "filters": [8, 16, 32]}

SCALES = {
    "quick": {
        "archs": {"fc": _FC},
        "sides": [4, 6, 8, 11, 16],
        "n_net": 100,
        "n_x": 1,
        "nets_per_cell": 100,
        "bounds": [0.0, 1.0],
        "nobox_archs": ["fc"],
        "n_steps": 8,
        "t_max": 8.0,
        "shared_compile": True,
        "images": {"datasets": ["mnist", "cifar10"], "arch": _RESNET_QUICK, "n_nets": 8, "nets_per_cell": 8,
                   "n_images": 10, "n_train": 2000, "epochs": {"mnist": 15, "cifar10": 25}, "n_steps": 8},
    },
    "paper": {
        "archs": {"fc": _FC, "resnet": {**_RESNET, "nets_per_cell": 20}},
        "sides": list(range(12, 61, 4)),
        "n_net": 200,
        "n_x": 10,
        "nets_per_cell": 50,
        "bounds": [0.0, 1.0],
        "nobox_archs": ["fc", "resnet"],
        "n_steps": 20,
        "t_max": 8.0,
        "shared_compile": False,
        "images": {"datasets": ["mnist", "cifar10"], "arch": _RESNET, "n_nets": 50, "nets_per_cell": 10,
                   "n_images": 20, "n_train": None, "epochs": {"mnist": 15, "cifar10": 25}, "n_steps": 20},
    },
}

NORMS = (1, 2, math.inf)
_NORM_KEYS = ("l1", "l2", "linf")
_NORM_LABEL = {"l1": "ℓ1", "l2": "ℓ2", "linf": "ℓ∞"}

# Remark 5: median ℓp distance ∝ n^{1/p − 1/2} (up to logs), so log-log slopes +½, 0, −½;
# relative to ‖x0‖_p ∝ n^{1/p}, every norm gives −½.
PAPER_SLOPE = {"l1": 0.5, "l2": 0.0, "linf": -0.5}
RELATIVE_SLOPE = -0.5

# Slope tolerance = LOG_POWER·(ln ln n_max − ln ln n_min)/(ln n_max − ln n_min) + SE_MULT·SE.
# The first term: Remark 5 holds "up to logarithmic factors", and a factor (ln n)^a changes
# the log-log slope over the grid by a times that secant of ln ln n. The mechanism's log is
# the ℓ∞ norm of an n-dimensional gradient, ‖∇f‖_∞ ≈ √(2 ln n)·‖∇f‖₂/√n (the largest of n
# Gaussian-like coordinates), which sets the ℓ1 distance |f|/‖∇f‖_∞: a = ½. (Eq. (10)'s
# √(ln n · ln 2n) ~ ln n is the proof's, not sharp, Remark 2.) It is 0.097 on the quick
# grid and 0.066 on the paper's; the measured d1/d2 slopes, 0.41 (quick) and 0.45 (the
# paper's n range at 40 networks × 5 inputs), sit at ½ minus about that. The second: 3 standard errors of the fitted slope, from a
# bootstrap over networks (inputs of one network are correlated; networks are independent).
LOG_POWER = 0.5
SE_MULT = 3.0
N_BOOT = 400

# Fig 3: the paper's linear fit of the sorted ℓ1 distances over percentiles 0–0.25. A
# fraction of inputs within distance r that grows linearly in r (Corollary 1: P ≤ δ at
# r ∝ δ; a distance density positive at 0) makes that fit pass through the origin: for the
# |Gaussian| profile its intercept is −0.3% of the fit's value at 0.25. A fraction ∝ r²
# (profile ∝ √q) gives +25%, ∝ r^{3/2} gives +14%, ∝ √r (profile ∝ q²) gives −20%; 10%
# separates linear from those. The claim pools every n of the grid, each n's distances
# divided by their median (Fig 1 shows the scale is all that changes with n): the
# intercept's sampling SD is 0.066 for 120 |Gaussian| samples but 0.03 for 600 and 0.016
# for 2000, so 10% is > 3 SD at both scales where one n alone (quick) would not be.
# (PROFILE_FIT_TO, PROFILE_INTERCEPT_TOL: defined beside Fig 3 on images, which shares them.)

# The theorems' guarantees P(distance < r_δ) ≤ δ are checked at these δ, each against the
# fraction of pairs below r_δ plus a Hoeffding margin √(ln(K/α)/(2·n_net)) over networks
# (independent; their inputs' indicators averaged per network lie in [0, 1]), Bonferroni
# over the K values of δ and the grid's n, α = 1%.
DELTAS = (0.05, 0.1, 0.2, 0.3, 0.5)
ALPHA = 0.01

# Segment theorem, as a number per n: the mean of T = t/‖x0‖₂ over the random lines that
# cross within one ‖x0‖₂ (most lines never cross: the median is infinite, and low quantiles
# rest on a handful of pairs: bootstrap SE 0.14–0.18 on the slope at 60 networks × 2
# inputs on the quick grid, against 0.08 for this mean). If the boundary along random directions were as close as the adversarial
# one, ∝ ‖x0‖₂/√n, this mean would fall with slope −½; Theorem 1 says it stays Θ(1): slope
# 0 within the same tolerance as Fig 1's. (The guarantee itself, P(T < ρ) ≤ ρ(2M+π)/π, is
# the segment-guarantee claim.)
SEGMENT_WITHIN = 1.0

# Attack consistency: for an exact minimum no other perturbation has a smaller ℓp norm. A
# fixed-budget attack can stall on a rare pair (on these nets, at 8 steps, the largest
# ratio to 60 steps in 3 restarts was 1.04–1.26 while the median was 1.003–1.010); 1% of
# pairs allows those, not a systematic miss.
CONSISTENCY_TOL = 0.01


# ---------------------------------------------------------------------------------------
# networks and cells


_PER_ARCH = ("sides", "n_net", "n_x", "nets_per_cell")


def _grid(config: Mapping[str, Any], arch: str) -> dict[str, Any]:
    """The grid of one architecture: the config's, with the architecture's own ``sides``,
    ``n_net``, ``n_x`` or ``nets_per_cell`` where its spec gives them (a residual net costs
    more per pair than a fully connected one)."""
    spec = config["archs"][arch]
    return {**config, **{k: spec[k] for k in _PER_ARCH if k in spec}}


def _sides(config: Mapping[str, Any], arch: str) -> list[int]:
    """The image sides s (n = 3s²) of an architecture."""
    return list(_grid(config, arch)["sides"])


def _input_shape(spec: Mapping[str, Any], s: int) -> tuple[int, ...]:
    # Fully connected nets see the flattened s×s×3 image; convolutional ones the image.
    return (3 * s * s,) if spec["kind"] == "mlp" else (s, s, 3)


def _network(spec: Mapping[str, Any], s: int) -> nets.Network:
    return network(spec, _input_shape(spec, s))


def smoothness_m(spec: Mapping[str, Any], s: int) -> float:
    """Theorem 2's M = √(|I⁽⁰⁾|/|I^(L_f)|): 1 for fully connected nets, ≈ 4 for the residual net."""
    return nets.smoothness_m(_network(spec, s))


@functools.partial(jax.jit, static_argnames=("net", "count", "n_x"))
def _draw_embedded(net: nets.Network, key: jax.Array, n: jax.Array, count: int, n_x: int):
    """``count`` n-dimensional networks, inputs and directions, embedded in ℝ^{n_pad}.

    ``net`` is the n_pad-dimensional ``mlp``; its first-layer weights N(0, σ_W²/n_pad) are
    zeroed beyond coordinate n and scaled by √(n_pad/n) on the first n, which makes them
    exactly N(0, σ_W²/n): the law of ``mlp(n, …)``. Inputs are U[0,1] on the first n
    coordinates and 0 beyond; directions are uniform on the unit sphere of ℝⁿ. ``n`` is
    traced, so one compilation serves every n.
    """
    k_net, k_x, k_dir = jax.random.split(key, 3)
    n_pad = net.input_shape[0]
    used = jnp.arange(n_pad) < n
    params = jax.vmap(net.init)(jax.random.split(k_net, count))
    hidden = [dict(layer) for layer in params["hidden"]]
    w = hidden[0]["W"]
    hidden[0]["W"] = jnp.where(used, w * jnp.sqrt(n_pad / n).astype(w.dtype), 0)
    params = {"hidden": hidden, "readout": params["readout"]}
    xs = jnp.where(used, jax.random.uniform(k_x, (count, n_x, n_pad)), 0)
    g = jnp.where(used, jax.random.normal(k_dir, (count, n_x, n_pad)), 0)
    return params, xs, g / jnp.linalg.norm(g, axis=-1, keepdims=True)


def _blocks(config: Mapping[str, Any]) -> list[tuple[int, int]]:
    size = config["nets_per_cell"]
    return _blocks_of.ranges(config["n_net"], size)


def _cell_name(arch: str, n: int, block: tuple[int, int]) -> str:
    return f"{arch},n={n},nets={block[0]}-{block[1] - 1}"


def _norms(delta: np.ndarray, n: int) -> np.ndarray:
    """(3, ...) ℓ1, ℓ2, ℓ∞ norms of the first n input coordinates (flattened), in float64."""
    a = np.abs(delta.reshape(*delta.shape[:2], -1)[..., :n].astype(np.float64))
    return np.stack([a.sum(-1), np.sqrt((a * a).sum(-1)), a.max(-1)])


def _boxes(config: Mapping[str, Any], arch: str) -> tuple[str, ...]:
    """"box": attacks stay in [0, 1] (the paper's setup); "nobox" also, without it (the theory's)."""
    return ("box", "nobox") if arch in config.get("nobox_archs", ()) else ("box",)


def _compute(config: Mapping[str, Any], arch: str, s: int, block: tuple[int, int]) -> dict[str, np.ndarray]:
    spec = config["archs"][arch]
    n = 3 * s * s
    # A stable integer per cell: the architecture's name (crc32), n and the first network.
    key = jax.random.key(config["seed"])
    for part in (zlib.crc32(arch.encode()) & 0x7FFFFFFF, n, block[0]):
        key = jax.random.fold_in(key, part)
    count, n_x = block[1] - block[0], _grid(config, arch)["n_x"]
    if config["shared_compile"] and spec["kind"] == "mlp":
        net = _network(spec, max(_sides(config, arch)))
        params, xs_run, u_run = _draw_embedded(net, key, jnp.asarray(n), count, n_x)
    else:
        k_net, k_x, k_dir = jax.random.split(key, 3)
        net = _network(spec, s)
        params = kernels.init_many(net, k_net, count)
        xs_run = jax.random.uniform(k_x, (count, n_x, *net.input_shape))
        u_run = attacks.random_directions(k_dir, xs_run.shape, input_ndim=len(net.input_shape))
    x = np.asarray(xs_run)
    out: dict[str, np.ndarray] = {"x_norms": _norms(x, n)}
    leak = 0.0
    for box in _boxes(config, arch):
        bounds = tuple(config["bounds"]) if box == "box" and config["bounds"] is not None else None
        suffix = "" if box == "box" else "_nobox"
        for p, name in zip(NORMS, _NORM_KEYS):
            res = attacks.min_norm(net, params, xs_run, norm=p, n_steps=config["n_steps"], bounds=bounds)
            delta = (np.asarray(res.x_adv) - x).reshape(count, n_x, -1)
            leak = max(leak, float(np.max(np.abs(delta[..., n:]), initial=0.0)))
            success = np.asarray(res.success)
            out[f"norms_{name}_attack{suffix}"] = np.where(success, _norms(delta, n), np.inf)
            out[f"success_{name}{suffix}"] = success
    t_max = config["t_max"] * math.sqrt(n / 3)  # E‖x0‖₂ = √(n/3) for U[0,1] pixels
    line = attacks.line_search(net, params, xs_run, u_run, t_max=t_max)
    out["t_line"] = np.asarray(line.t, np.float64)
    out["pad_leak"] = np.asarray(leak)
    return out


def cells(config: Mapping[str, Any]):
    out = []
    for arch in config["archs"]:
        for s in _sides(config, arch):
            for block in _blocks(_grid(config, arch)):
                def compute(arch=arch, s=s, block=block):
                    return _compute(config, arch, s, block)

                out.append((_cell_name(arch, 3 * s * s, block), compute))
    return out + depalma2021_trained.cells(config)


# ---------------------------------------------------------------------------------------
# analysis (from the cells' arrays only)


def _gather(config, results, arch: str) -> tuple[list[int], dict[int, dict[str, np.ndarray]]]:
    """Per n, the cells' arrays concatenated over network blocks (network axis first)."""
    ns = [3 * s * s for s in _sides(config, arch)]
    per_n = {}
    for n in ns:
        parts = [results[_cell_name(arch, n, b)] for b in _blocks(_grid(config, arch))]
        per_n[n] = {k: np.concatenate([p[k] for p in parts], axis=1 if parts[0][k].ndim == 3 else 0)
                    for k in parts[0] if parts[0][k].ndim >= 2}
    return ns, per_n


def _distance(cell: Mapping[str, np.ndarray], name: str) -> np.ndarray:
    """(n_net, n_x) the ℓp attack's own ℓp distance."""
    return cell[f"norms_{name}_attack"][_NORM_KEYS.index(name)]


def _relative(cell: Mapping[str, np.ndarray], name: str) -> np.ndarray:
    i = _NORM_KEYS.index(name)
    return cell[f"norms_{name}_attack"][i] / cell["x_norms"][i]


def _median_band(samples: np.ndarray) -> tuple[float, float, float]:
    flat = np.sort(samples.ravel())
    return tuple(float(np.percentile(flat, q)) for q in (50, 45, 55))


def _median(values: np.ndarray) -> np.ndarray:
    return np.median(values, axis=-1)


def _fit_slope(ns, samples: list[np.ndarray], seed: int, stat=_median):
    """OLS slope of ln stat(samples) on ln n, and its standard error by a bootstrap over networks.

    Args:
      ns: input dimensions.
      samples: per n, ``(n_net, n_x)`` values (inf allowed: failed searches).
      seed: seeds the bootstrap (a deterministic function of the data and the seed).
      stat: the per-n statistic, reducing the last axis (default: the median).

    Returns:
      ``(slope, se, intercept)``; nan where a statistic is not finite and positive.
    """
    x = np.log(np.asarray(ns, np.float64))
    y = np.log([float(stat(v.ravel())) for v in samples])
    if not np.all(np.isfinite(y)):
        return float("nan"), float("nan"), float("nan")
    slope, intercept = np.polyfit(x, y, 1)
    rng = np.random.default_rng(seed)
    boot = np.empty((N_BOOT, len(ns)))
    for j, v in enumerate(samples):
        idx = rng.integers(0, v.shape[0], size=(N_BOOT, v.shape[0]))  # resample networks
        boot[:, j] = stat(v[idx].reshape(N_BOOT, -1))
    ly = np.log(boot)
    ok = np.all(np.isfinite(ly), axis=1)
    if ok.sum() < 2:
        return float(slope), float("nan"), float(intercept)
    slopes = np.polyfit(x, ly[ok].T, 1)[0]
    return float(slope), float(np.std(slopes, ddof=1)), float(intercept)


def log_allowance(ns) -> float:
    """Slope change over the grid from a factor (ln n)^LOG_POWER (see LOG_POWER)."""
    lo, hi = min(ns), max(ns)
    return LOG_POWER * (math.log(math.log(hi)) - math.log(math.log(lo))) / (math.log(hi) - math.log(lo))


def crossing_mean(values: np.ndarray) -> np.ndarray:
    """The mean of the values ≤ SEGMENT_WITHIN along the last axis (nan where there are none)."""
    near = values <= SEGMENT_WITHIN
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sum(np.where(near, values, 0), axis=-1) / np.sum(near, axis=-1)


def guarantee_excess(ratios: list[np.ndarray], bound_of_delta, n_cells: int) -> tuple[float, float]:
    """max over n and δ of [fraction of pairs with ratio < bound(δ)] − δ, and the Hoeffding margin.

    Args:
      ratios: per n, ``(n_net, n_x)`` distance/‖x0‖₂ (inf: no crossing found).
      bound_of_delta: ``bound(δ, k)``, the ratio below which P ≤ δ at the k-th n.
      n_cells: how many n (for Bonferroni).
    """
    excess = -np.inf
    n_net = min(r.shape[0] for r in ratios)
    for k, r in enumerate(ratios):
        for delta in DELTAS:
            excess = max(excess, float(np.mean(r < bound_of_delta(delta, k)) - delta))
    margin = math.sqrt(math.log(len(DELTAS) * n_cells / ALPHA) / (2 * n_net))
    return excess, margin


def corollary1_l1_ratio(n: int, m: float) -> float:
    """Corollary 1 / eq. (10): r ≤ ‖x0‖₂·δ·√π / (M(12√ln 4n + 8√(ln n ln 2n) + 2√π)); returns r/(‖x0‖₂ δ)."""
    return math.sqrt(math.pi) / (m * (12 * math.sqrt(math.log(4 * n)) + 8 * math.sqrt(math.log(n) * math.log(2 * n))
                                      + 2 * math.sqrt(math.pi)))


def segment_ratio(m: float) -> float:
    """Theorem 1 (segment), eq. (12): r ≤ π‖x0‖₂δ/(2M + π); returns r/(‖x0‖₂ δ)."""
    return math.pi / (2 * m + math.pi)


def _summary(config, results, arch):
    # Failed attacks are inf; their ratios (inf/inf) and interpolated percentiles are nan,
    # which propagate into the fits and make the claims that need them fail.
    with np.errstate(divide="ignore", invalid="ignore"):
        return _summary_impl(config, results, arch)


def _summary_impl(config, results, arch):
    ns, per_n = _gather(config, results, arch)
    seed = config["seed"]
    spec = config["archs"][arch]
    out: dict[str, Any] = {"ns": ns, "per_n": per_n}
    for name in _NORM_KEYS:
        d = [_distance(per_n[n], name) for n in ns]
        rel = [_relative(per_n[n], name) for n in ns]
        out[name] = {
            "band": [_median_band(v) for v in d],
            "rel_band": [_median_band(v) for v in rel],
            "fit": _fit_slope(ns, d, seed),
            "rel_fit": _fit_slope(ns, rel, seed + 1),
        }
    if "norms_l1_attack_nobox" in per_n[ns[0]]:  # the same attacks without the [0,1] box
        out["nobox_fits"] = {name: _fit_slope(ns, [per_n[n][f"norms_{name}_attack_nobox"][_NORM_KEYS.index(name)]
                                                   for n in ns], seed + 5 + i) for i, name in enumerate(_NORM_KEYS)}
    # Remark 5's norm dependence on the same pairs, where the common factor |f(x0)| cancels:
    # d1/d2 ≈ ‖∇f‖₂/‖∇f‖_∞ ∝ √n (up to √ln n) and d2/d∞ ≈ ‖∇f‖₁/‖∇f‖₂ ∝ √n.
    d = {k: [_distance(per_n[n], k) for n in ns] for k in _NORM_KEYS}
    out["ratio_fits"] = {
        "l1/l2": _fit_slope(ns, [a / b for a, b in zip(d["l1"], d["l2"])], seed + 3),
        "l2/linf": _fit_slope(ns, [a / b for a, b in zip(d["l2"], d["linf"])], seed + 4),
    }
    seg = [per_n[n]["t_line"] / per_n[n]["x_norms"][1] for n in ns]
    out["segment"] = {
        "ratios": seg,
        "crossing_mean": [float(crossing_mean(r.ravel())) for r in seg],
        "crossing_fraction": [float(np.mean(r <= SEGMENT_WITHIN)) for r in seg],
        "q10": [float(np.quantile(r.ravel(), 0.1)) for r in seg],
        "q25": [float(np.quantile(r.ravel(), 0.25)) for r in seg],
        "crossed": [float(np.mean(np.isfinite(r))) for r in seg],
        "fit": _fit_slope(ns, seg, seed + 2, stat=crossing_mean),
    }
    ms = [smoothness_m(spec, side) for side in _sides(config, arch)]
    out["segment"]["guarantee"] = guarantee_excess(seg, lambda delta, k: delta * segment_ratio(ms[k]), len(ns))
    l1_rel2 = [_distance(per_n[n], "l1") / per_n[n]["x_norms"][1] for n in ns]
    out["l1_guarantee"] = guarantee_excess(l1_rel2, lambda delta, k: delta * corollary1_l1_ratio(ns[k], ms[k]), len(ns))
    out["profile"] = profile_fit(_distance(per_n[ns[-1]], "l1"))
    pooled = [v / np.median(v) for v in d["l1"]]
    out["profile_pooled"] = profile_fit(np.concatenate([v.ravel() for v in pooled]))
    out["profile_per_n"] = [profile_fit(v) for v in pooled]
    # Consistency: pairs where another attack's perturbation is shorter in the attack's norm.
    beaten = {}
    for name in ("l1", "linf"):
        i = _NORM_KEYS.index(name)
        counts = total = 0
        for n in ns:
            own = per_n[n][f"norms_{name}_attack"][i]
            others = np.minimum.reduce([per_n[n][f"norms_{o}_attack"][i] for o in _NORM_KEYS if o != name])
            counts += int(np.sum(others < own))
            total += own.size
        beaten[name] = counts / total
    out["beaten"] = beaten
    out["success"] = float(np.mean([np.mean(per_n[n][f"success_{k}"]) for n in ns for k in _NORM_KEYS]))
    return out


def _tolerance(fit, ns) -> float:
    return log_allowance(ns) + SE_MULT * fit[1]


def _within(fit, target, ns) -> bool:
    slope, se, _ = fit
    return bool(np.isfinite(slope) and np.isfinite(se) and abs(slope - target) <= _tolerance(fit, ns))


def claims(config, results) -> list[Claim]:
    out = []
    for arch in config["archs"]:
        s = _summary(config, results, arch)
        ns = s["ns"]
        grid = f"n = {min(ns)}…{max(ns)}"
        allow = log_allowance(ns)
        for name in _NORM_KEYS:
            fit, paper = s[name]["fit"], PAPER_SLOPE[name]
            out.append(Claim(
                f"depalma2021/{arch}-{name}-slope",
                f"Median {_NORM_LABEL[name]} distance to the boundary against n (Fig 1, {grid}): log-log slope "
                f"{paper:+g} within {_tolerance(fit, ns):.3f} (√ln n allowance {allow:.3f} + {SE_MULT:g} bootstrap SE "
                f"{fit[1]:.3f}).",
                f"{paper:+g} (Remark 5)", round(fit[0], 4), _within(fit, paper, ns)))
        if "nobox_fits" in s:
            fits = s["nobox_fits"]
            out.append(Claim(
                f"depalma2021/{arch}-slopes-without-box",
                f"Without the [0,1] box (the theory's setting), median ℓ1, ℓ2, ℓ∞ distances against n ({grid}): log-log "
                f"slopes +½, 0, −½, each within √ln n allowance + {SE_MULT:g} bootstrap SE "
                f"({', '.join(f'{_tolerance(f, ns):.3f}' for f in fits.values())}).",
                "+½, 0, −½ (Remark 5)", [f"{_NORM_LABEL[k]}: {f[0]:+.3f}" for k, f in fits.items()],
                all(_within(f, PAPER_SLOPE[k], ns) for k, f in fits.items())))
        ratio = s["ratio_fits"]
        out.append(Claim(
            f"depalma2021/{arch}-norm-ratio-slopes",
            f"On the same pairs, median d1/d2 and d2/d∞ grow like √n ({grid}; |f(x0)| cancels): each log-log slope "
            f"+½ within √ln n allowance + {SE_MULT:g} bootstrap SE "
            f"({', '.join(f'{_tolerance(f, ns):.3f}' for f in ratio.values())}).",
            "+½ each (Remark 5)", [f"{k}: {f[0]:+.3f} ± {f[1]:.3f}" for k, f in ratio.items()],
            all(_within(f, 0.5, ns) for f in ratio.values())))
        rel = [s[name]["rel_fit"] for name in _NORM_KEYS]
        out.append(Claim(
            f"depalma2021/{arch}-relative-slopes",
            f"Median relative distance ‖Δx‖_p/‖x0‖_p falls like 1/√n for p = 1, 2, ∞ (Fig 2, {grid}): each log-log "
            f"slope −½ within √ln n allowance + {SE_MULT:g} bootstrap SE ({', '.join(f'{_tolerance(f, ns):.3f}' for f in rel)}).",
            "−½ in every norm (Remark 5)", [f"{_NORM_LABEL[k]}: {f[0]:+.3f}" for k, f in zip(_NORM_KEYS, rel)],
            all(_within(f, RELATIVE_SLOPE, ns) for f in rel)))
        prof = s["profile_pooled"]
        out.append(Claim(
            f"depalma2021/{arch}-l1-profile-linear",
            f"Sorted ℓ1 distances grow linearly with the percentile from 0 (Fig 3; every n pooled, each divided by its "
            f"median): the linear fit over percentiles 0–{PROFILE_FIT_TO} has |intercept| ≤ {PROFILE_INTERCEPT_TOL:g} × "
            "its value at 0.25 (quadratic growth gives +0.25).",
            "linear from 0 (Corollary 1)", round(prof["intercept_ratio"], 4),
            bool(np.isfinite(prof["intercept_ratio"]) and abs(prof["intercept_ratio"]) <= PROFILE_INTERCEPT_TOL)))
        spec = config["archs"][arch]
        ms = [smoothness_m(spec, side) for side in _sides(config, arch)]
        excess, margin = s["segment"]["guarantee"]
        out.append(Claim(
            f"depalma2021/{arch}-segment-guarantee",
            f"Along a random unit direction, P(t < π‖x0‖₂δ/(2M+π)) ≤ δ (Theorem 1, segment; M = {ms[-1]:g}) for "
            f"δ ∈ {list(DELTAS)} at every n: the largest (fraction below) − δ is ≤ the Hoeffding margin {margin:.3f}.",
            "≤ δ", round(excess, 4), bool(excess <= margin)))
        seg = s["segment"]
        fit = seg["fit"]
        out.append(Claim(
            f"depalma2021/{arch}-segment-finite-fraction",
            f"Along random directions the boundary stays a finite fraction of ‖x0‖₂ away as n grows ({grid}): the mean "
            f"t/‖x0‖₂ of the lines that cross within ‖x0‖₂ has log-log slope 0 within {_tolerance(fit, ns):.3f} "
            f"(√ln n allowance + {SE_MULT:g} bootstrap SE; the ℓ2 adversarial distance/‖x0‖₂ has slope "
            f"{s['l2']['rel_fit'][0]:+.2f}).",
            "Θ(1) (Theorem 1)",
            [f"slope {fit[0]:+.3f}"] + [f"n={n}: {v:.3f} ({c:.0%} cross)" for n, v, c in
                                         zip(ns, seg["crossing_mean"], seg["crossing_fraction"])],
            _within(fit, 0.0, ns)))
        excess, margin = s["l1_guarantee"]
        out.append(Claim(
            f"depalma2021/{arch}-l1-guarantee",
            f"P(ℓ1 distance < r_δ) ≤ δ at Corollary 1's r_δ (eq. (10), M = {ms[-1]:g}) for δ ∈ {list(DELTAS)} at every "
            f"n: the largest (fraction below) − δ is ≤ the Hoeffding margin {margin:.3f}. A consistency check, not a tight "
            f"test: the distances are min_norm's (upper bounds of the true distance) inside the box, and r_δ is far below them.",
            "≤ δ", round(excess, 4), bool(excess <= margin)))
        beaten = s["beaten"]
        out.append(Claim(
            f"depalma2021/{arch}-min-norm-consistent",
            "min_norm finds a sign change for every pair, and for ≤ "
            f"{CONSISTENCY_TOL:.0%} of pairs another norm's attack gives a shorter ℓ1 (resp. ℓ∞) perturbation "
            "than the ℓ1 (ℓ∞) attack (a witness of a missed minimum).",
            "exact minima (paper: min over 8–12 attacks)",
            [f"success {s['success']:.3f}", f"ℓ1 beaten {beaten['l1']:.3f}", f"ℓ∞ beaten {beaten['linf']:.3f}"],
            bool(s["success"] == 1.0 and beaten["l1"] <= CONSISTENCY_TOL and beaten["linf"] <= CONSISTENCY_TOL)))
    return out + depalma2021_trained.claims(config, results)


# ---------------------------------------------------------------------------------------
# figures


def figures(config, results, directory) -> list[str]:
    from matplotlib.figure import Figure  # no pyplot: no global backend or figure state
    from matplotlib.ticker import NullFormatter

    def log_n(ax):
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # the labelled minor ticks of a short decade overlap
        ax.set_xlabel("input dimension n")

    summaries = {arch: _summary(config, results, arch) for arch in config["archs"]}
    names = []

    def save(fig, name):
        fig.tight_layout()
        fig.savefig(os.path.join(directory, name), dpi=90)
        names.append(name)

    # Fig 1: median ℓp distance against n, ±5 percentiles.
    fig = Figure(figsize=(13, 3.8))
    axes = fig.subplots(1, 3)
    for ax, name in zip(axes, _NORM_KEYS):
        for arch, s in summaries.items():
            ns = np.array(s["ns"], float)
            med, lo, hi = np.array(s[name]["band"]).T
            ax.errorbar(ns, med, yerr=[med - lo, hi - med], marker="o", capsize=3, label=f"{arch} (median, 45–55th pct)")
            slope, se, b = s[name]["fit"]
            if np.isfinite(slope):
                ax.plot(ns, np.exp(b) * ns**slope, "--", label=f"fit: slope {slope:+.2f} ± {se:.2f}")
        log_n(ax)
        ax.set_yscale("log")
        ax.set_ylabel(f"{_NORM_LABEL[name]} distance")
        ax.set_title(f"Fig 1: {_NORM_LABEL[name]} (paper: slope {PAPER_SLOPE[name]:+g})")
        ax.legend(fontsize=7)
    save(fig, "depalma2021_fig1.png")

    # Fig 2: median relative distance.
    fig = Figure(figsize=(5.5, 4.2))
    ax = fig.subplots()
    for arch, s in summaries.items():
        ns = np.array(s["ns"], float)
        for name in _NORM_KEYS:
            med, lo, hi = np.array(s[name]["rel_band"]).T
            ax.errorbar(ns, med, yerr=[med - lo, hi - med], marker="o", capsize=3,
                        label=f"{arch} {_NORM_LABEL[name]} (slope {s[name]['rel_fit'][0]:+.2f})")
        ref = np.array(s["l2"]["rel_band"])[0, 0] * (ns / ns[0]) ** -0.5
        ax.plot(ns, ref, "k:", label="∝ 1/√n")
    log_n(ax)
    ax.set_yscale("log")
    ax.set_ylabel("‖Δx‖_p / ‖x0‖_p")
    ax.set_title("Fig 2: relative distance")
    ax.legend(fontsize=7)
    save(fig, "depalma2021_fig2.png")

    # Fig 3: percentile profile of the ℓ1 distance.
    fig = Figure(figsize=(11, 4.2))
    ax, ax2 = fig.subplots(1, 2)
    for arch, s in summaries.items():
        p = s["profile"]
        ax.plot(p["q"], p["y"], label=f"{arch}, random images, n = {s['ns'][-1]}")
        ax.plot(p["q"], p["slope"] * p["q"] + p["intercept"], "-", lw=1,
                label=f"linear fit over 0–{PROFILE_FIT_TO} (intercept {p['intercept_ratio']:+.0%} of fit(0.25))")
        for n, pn in zip(s["ns"], s["profile_per_n"]):
            ax2.plot(pn["q"], pn["y"], lw=0.8, alpha=0.6, label=f"{arch}, n = {n}")
        pp = s["profile_pooled"]
        ax2.plot(pp["q"], pp["slope"] * pp["q"] + pp["intercept"], "k-", lw=1.5,
                 label=f"pooled fit over 0–{PROFILE_FIT_TO} (intercept {pp['intercept_ratio']:+.0%})")
    ax.set_ylabel("ℓ1 adversarial distance")
    ax.set_title("Fig 3: ℓ1 distance by percentile (random networks)")
    ax2.set_ylabel("ℓ1 distance / its median at that n")
    ax2.set_ylim(0, 3)
    ax2.set_title("Fig 3, every n (claim: pooled fit)")
    for a in (ax, ax2):
        a.set_xlabel("percentile")
        a.legend(fontsize=7)
    save(fig, "depalma2021_fig3.png")

    # Segment theorem: t/‖x0‖₂ along random directions vs the ℓ2 adversarial distance.
    fig = Figure(figsize=(5.8, 6.0))
    ax = fig.subplots()
    for arch, s in summaries.items():
        ns = np.array(s["ns"], float)
        seg = s["segment"]
        ax.plot(ns, seg["crossing_mean"], marker="o", label=f"{arch}: mean t/‖x0‖₂ of crossings within ‖x0‖₂")
        ax.plot(ns, seg["q25"], marker="s", label=f"{arch}: 25% quantile of t/‖x0‖₂")
        ax.plot(ns, seg["q10"], marker="v", label=f"{arch}: 10% quantile of t/‖x0‖₂")
        ax.plot(ns, np.array(s["l2"]["rel_band"])[:, 0], marker="^", label=f"{arch}: median ℓ2 adversarial / ‖x0‖₂")
        c = segment_ratio(smoothness_m(config["archs"][arch], _sides(config, arch)[-1]))
        ax.axhline(0.1 * c, color="grey", ls=":", label="Theorem 1: 10% quantile ≥ 0.1·π/(2M+π)")
    log_n(ax)
    ax.set_yscale("log")
    ax.set_ylabel("distance / ‖x0‖₂")
    ax.set_title("Theorem 1 (segment): random directions vs adversarial")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16))  # below: the curves fill the axes
    save(fig, "depalma2021_segment.png")
    return names + depalma2021_trained.figures(config, results, directory)


EXPERIMENT = Experiment(
    name="depalma2021",
    title="De Palma et al. 2021: ℓ1/ℓ2/ℓ∞ boundary distance of random nets scales as √n, 1, 1/√n; random vs trained nets on images",
    scales=SCALES,
    cells=cells,
    claims=claims,
    figures=figures,
    prepare=depalma2021_trained.prepare,
)
