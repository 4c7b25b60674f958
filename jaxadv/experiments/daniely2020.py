"""Daniely & Schacham 2020, "Most ReLU networks suffer from ℓ2 adversarial perturbations".

The paper (theory only: no experiments, no figures, no official code; PROTOCOLS.md §4)
proves that for random bias-free ReLU networks whose width *decreases at every layer*, for
most networks and most inputs x, gradient flow on the output (or gradient descent with
small enough steps) reaches a sign change of f at Euclidean distance Õ(‖x‖/√d).

What this experiment measures. For each cell (depth L, input dimension d) it draws
``n_net`` networks ``nets.mlp(d, widths(d, L))`` (NN-DEF scaling: (W_i)_{jk} ~ N(0, 1/d_{i−1}),
Gaussian readout, no biases) and ``n_x`` inputs per network uniform on the sphere of radius
‖x‖ = √d, and runs on every (network, input) pair

* :func:`jaxadv.attacks.gradient_flow` with fixed-length steps of ``step_size``·‖x‖/√d
  (``normalized=True``) for at most ``max_steps`` steps, the crossing step refined by
  bisection: the paper's attack. Its straight-line distance ‖x_adv − x‖ and its path length;
* :func:`jaxadv.attacks.one_step` (Bubeck et al. 2021 / Bartlett et al. 2021): the smallest
  single step x + η∇f(x) that flips the sign, |η| ≤ ``eta_max``;
* optionally :func:`jaxadv.attacks.min_norm` (ℓ2): the tightest reference distance we have.

Success is reported per pair as found: a pair where gradient flow stops without a sign change
(every ReLU on its path switched off, f of one sign near x, or the step cap reached) is a
failure with distance ∞. The claims' distance statistic is the *mean* of dist/‖x‖ over the
pairs that flipped (a mean has about half the sampling variance of a median for these
|N(0, 1)|-like distances), next to the success rates; the figure also shows medians over all
pairs, failures included.

Claims: gradient flow flips ≥ 95% of pairs at the largest d of every depth; the log-log slope
of the mean dist/‖x‖ against d is −1/2 up to one power of ln d and sampling error; the mean
of dist·√d/‖x‖ lies within a factor ln d of √(2/π) (a random linear function's value) in
every cell; gradient flow and one gradient step (and min_norm, where run) find distances
within a factor 1.25 of each other (median per-pair ratio).

Grids:

* quick: d ∈ {128, 256, 512, 1024}, L ∈ {1, 2, 3}, 64 networks × 4 inputs per cell, steps of
  0.1‖x‖/√d, at most 100 steps (a path of 10‖x‖/√d), no min_norm (its compilation alone
  would take most of the time budget);
* paper: d ∈ {100, 316, 1000, 3162, 10000}, L ∈ {1, 2, 3, 4}, 50 networks × 20 inputs per
  cell (networks handled 10 at a time: one network at d = 10⁴, L = 4 has 3.5·10⁷ weights),
  steps of 0.05‖x‖/√d, at most 400 steps (a path of 20‖x‖/√d), min_norm on.

What the paper leaves unstated and what we chose:

* the exact width schedule (the text in papers/ has only the abstract; successors describe
  "each layer has vanishing width relative to the previous layer"). We take
  d_i = ⌈d^{1 − i/(2L)}⌉, i = 1..L: every layer shrinks by the same factor d^{1/(2L)} → ∞, so
  d_i/d_{i−1} → 0 as the paper requires, and the narrowest layer d_L = ⌈√d⌉ still grows with d
  (widths of a handful of units give networks whose output has one sign everywhere, which no
  attack can flip);
* the weight variance: NN-DEF's 1/fan-in. For bias-free ReLU networks it does not move the
  decision boundary (positive homogeneity), so no distance depends on it;
* the inputs (uniform on √d·S^{d−1}), sample counts, step size and step cap (the unofficial
  code of PROTOCOLS.md §4 steps by 0.1·∇f with ‖x‖² = d, the same units, without a cap);
* the paper scale: the paper has no experiments, so the grid above, up to d = 10⁴, is ours.

Compile time. On a CPU the quick run is dominated by XLA compilation (seconds per attack
and per distinct shape), not by arithmetic. So networks and inputs are drawn with NumPy
(from a generator seeded by the cell's JAX key; see :func:`draw`), and with ``embed`` on
(quick scale) every network of a depth is embedded exactly in the shapes of that depth's
largest cell by zero-padding, so each attack compiles once per depth instead of once per
cell, at the price of the largest cell's arithmetic in every cell. At paper scale the
arithmetic dominates and ``embed`` is off.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxadv import attacks, nets
from jaxadv.experiments._spec import Experiment, cell_key
from jaxadv.experiments.claims import Claim

SCALES = {
    "quick": {
        "dims": [128, 256, 512, 1024], "depths": [1, 2, 3], "n_net": 64, "n_x": 4, "net_chunk": 64,
        "step_size": 0.1, "max_steps": 100, "eta_max": 1000.0, "min_norm": False, "embed": True,
    },
    "paper": {
        "dims": [100, 316, 1000, 3162, 10000], "depths": [1, 2, 3, 4], "n_net": 50, "n_x": 20, "net_chunk": 10,
        "step_size": 0.05, "max_steps": 400, "eta_max": 1000.0, "min_norm": True, "embed": False,
    },
}

# The reference value. For a random *linear* function f(x) = ⟨w, x⟩ with w uniform in
# direction, the distance to the boundary normalised as dist·√d/‖x‖ = √d·|cos∠(w, x)| tends to
# |N(0, 1)| in law, whose mean is √(2/π) = 0.798. A bias-free ReLU network has
# f(x) = ⟨∇f(x), x⟩ exactly, so its linearised distance |f|/‖∇f‖ is of this form with
# w = ∇f(x); the papers' claim is that the true distance stays within logs of it.
LINEAR_MEAN = math.sqrt(2 / math.pi)
LINEAR_MEDIAN = 0.6744897501960817  # median of |N(0, 1)|, Φ⁻¹(3/4): the figure's reference line

# Õ(·) hides logarithms: the mean normalised distance of a cell of dimension d must lie in
# [LINEAR_MEAN/ln(d)^LOG_POWER, LINEAR_MEAN·ln(d)^LOG_POWER]. One power of ln d (4.6–9.2 on
# these grids) is the smallest "up to logs" allowance; a distance of order ‖x‖ (normalised:
# √d = 10–100 here) lies far outside it.
LOG_POWER = 1.0

# Slope of ln mean(dist/‖x‖) against ln d: −1/2 for dist ~ ‖x‖/√d. Two allowances:
# (i) a factor ln(d)^{±LOG_POWER} bends the slope by at most
#     LOG_POWER·ln(ln d_max/ln d_min)/ln(d_max/d_min) (0.17 on the quick grid, 0.15 on the paper's);
# (ii) sampling: SLOPE_Z standard errors of the fitted slope, each cell's standard error from a
#      bootstrap over *networks* (inputs of one network are not independent samples: part of
#      the spread of f is per network), propagated through the least-squares fit. Three
#      standard errors keep the claim from failing by chance on any of the depths (with a
#      Gaussian slope estimate, a 0.3% chance per depth).
SLOPE_Z = 3.0
N_BOOTSTRAP = 400

# Local linearity. If the gradient changes by at most a fraction ε of ‖∇f(x)‖ over the ball
# the attacks explore (Bubeck et al. eq. (6), Bartlett et al. Lemma 2.8: ε = o(1)), then every
# sign change is at distance ≥ |f(x)|/((1+ε)‖∇f(x)‖), the one-step crossing is at most
# |f|/((1−ε)‖∇f‖) and so is gradient flow's path (f decreases at rate ≥ (1−ε)‖∇f(x)‖ along it).
# Any two of these distances are then within a factor (1+ε)/(1−ε); ε = 1/9 gives the band
# [0.8, 1.25] for the median per-pair ratio of gradient flow to one step and to min_norm.
LINEARITY_EPS = 1.0 / 9.0
RATIO_BAND = ((1 - LINEARITY_EPS) / (1 + LINEARITY_EPS), (1 + LINEARITY_EPS) / (1 - LINEARITY_EPS))

# "Most networks and most x": the failure probability is o(1) in d. We ask for at least
# MIN_SUCCESS of the pairs at the largest d of every depth. Observed failures come from the
# narrow last layers (width ⌈√d⌉): with few units the output can keep one sign along the whole
# path, or every unit on the path can switch off; their share falls with d.
MIN_SUCCESS = 0.95


def widths(d: int, depth: int) -> list[int]:
    """Hidden widths d_i = ⌈d^{1 − i/(2L)}⌉, i = 1..L: shrinking from d to ⌈√d⌉ geometrically."""
    return [math.ceil(d ** (1 - i / (2 * depth)) - 1e-9) for i in range(1, depth + 1)]


def draw(rng: np.random.Generator, n_net: int, n_x: int, d: int, depth: int,
         big: tuple[int, list[int]] | None = None) -> tuple[dict[str, Any], np.ndarray]:
    """``n_net`` random ``mlp(d, widths(d, depth))`` networks and ``n_x`` inputs for each.

    The NN-DEF law of :func:`jaxadv.nets.mlp`: (W_i)_{jk} ~ N(0, 1/d_{i−1}), readout
    N(0, I/d_L), no biases; inputs uniform on the sphere of radius √d. Drawn with NumPy, one
    network after the other (its weights layer by layer, then its inputs), so the draw does
    not depend on how networks are later batched, and it compiles nothing: XLA compiles
    ``init_many``'s samplers anew for every cell's shapes, 7–11 s per cell for the quick
    grid's deeper networks on a shared 2-core CPU, a large part of the quick budget.

    With ``big = (D, widths_big)`` every network is embedded exactly in the shapes of
    ``mlp(D, widths_big)``: weights zero-padded (padded units have zero incoming and outgoing
    weights), inputs zero-padded to D. A padded unit has pre-activation 0, ReLU(0) = 0 and
    JAX's ReLU'(0) = 0, so f and ∇f are those of the d-dimensional network, ∇f is 0 on the
    padded coordinates, and gradient steps never leave ℝ^d × {0}. All cells of a depth then
    share one compiled attack.

    Args:
      rng: the cell's generator.
      n_net: networks.
      n_x: inputs per network.
      d: input dimension.
      depth: number of hidden layers L.
      big: ``(D, widths_big)`` with D ≥ d and each big width ≥ the network's, or ``None``.

    Returns:
      ``(params, xs)``: stacked ``mlp`` params (``W`` of shape ``(n_net, d_i, d_{i−1})``, readout
      ``(n_net, d_L)``) and ``xs`` of shape ``(n_net, n_x, d)``, in the big shapes if given;
      float32.
    """
    ws = widths(d, depth)
    big_d, big_ws = big if big is not None else (d, ws)
    fan_ins, big_fan_ins = (d, *ws[:-1]), (big_d, *big_ws[:-1])
    hidden = [np.zeros((n_net, r, c), np.float32) for r, c in zip(big_ws, big_fan_ins)]
    readout = np.zeros((n_net, big_ws[-1]), np.float32)
    xs = np.zeros((n_net, n_x, big_d), np.float32)
    for j in range(n_net):
        for w, rows, cols in zip(hidden, ws, fan_ins):
            w[j, :rows, :cols] = rng.standard_normal((rows, cols), np.float32) / np.float32(math.sqrt(cols))
        readout[j, : ws[-1]] = rng.standard_normal(ws[-1], np.float32) / np.float32(math.sqrt(ws[-1]))
        g = rng.standard_normal((n_x, d), np.float32)
        xs[j, :, :d] = g * (np.float32(math.sqrt(d)) / np.linalg.norm(g, axis=-1, keepdims=True))
    return {"hidden": [{"W": w} for w in hidden], "readout": {"w": readout}}, xs


def _cell_name(d: int, depth: int) -> str:
    return f"L={depth},d={d}"


@jax.jit
def _distance(x_adv: jax.Array, xs: jax.Array, success: jax.Array, d: jax.Array) -> jax.Array:
    # ‖x_adv − x‖ over the first d coordinates. f does not depend on the padded ones, so x_adv
    # with those zeroed is still adversarial and no farther; every gradient-based step keeps
    # them 0 anyway, this only guards min_norm's rare random jumps on flat regions.
    mask = jnp.arange(xs.shape[-1]) < d
    return jnp.where(success, jnp.linalg.norm(jnp.where(mask, x_adv - xs, 0), axis=-1), jnp.inf)


def _attack(config: Mapping[str, Any], net: nets.Network, params: Any, xs: jax.Array, d: int) -> dict[str, np.ndarray]:
    # Steps of step_size·‖x‖/√d: ‖x‖ = √d, so the unit is 1.
    gf = attacks.gradient_flow(net, params, xs, step_size=config["step_size"], max_steps=config["max_steps"], normalized=True)
    os1 = attacks.one_step(net, params, xs, eta_max=config["eta_max"])
    res = {
        "x_norm": np.linalg.norm(np.asarray(xs), axis=-1),
        "f_clean": np.asarray(gf.f_clean),
        "grad_norm": np.asarray(os1.grad_norm),
        "gf_success": np.asarray(gf.success),
        "gf_distance": np.asarray(_distance(gf.x_adv, xs, gf.success, d)),
        "gf_path": np.where(np.asarray(gf.success), np.asarray(gf.path_length), np.inf),
        "gf_steps": np.asarray(gf.n_steps),
        "os_success": np.asarray(os1.success),
        "os_distance": np.asarray(_distance(os1.x_adv, xs, os1.success, d)),
    }
    if config["min_norm"]:
        mn = attacks.min_norm(net, params, xs, norm=2)
        res["mn_success"] = np.asarray(mn.success)
        res["mn_distance"] = np.asarray(_distance(mn.x_adv, xs, mn.success, d))
    return res


def cells(config: Mapping[str, Any]):
    out = []
    for depth, d in ((depth, d) for depth in config["depths"] for d in config["dims"]):
        def compute(d=d, depth=depth):
            key = cell_key(config["seed"], _cell_name(d, depth))
            rng = np.random.default_rng(np.asarray(jax.random.key_data(key)))
            big_d = max(config["dims"]) if config["embed"] else d
            big = (big_d, widths(big_d, depth))
            net = nets.mlp(*big)
            parts = []
            # Networks in groups of net_chunk: at d = 10⁴ one network's weights take ~140 MB.
            # Drawing is sequential per network, so the grouping does not change the draw.
            for start in range(0, config["n_net"], config["net_chunk"]):
                n = min(config["net_chunk"], config["n_net"] - start)
                params, xs = draw(rng, n, config["n_x"], d, depth, big)
                parts.append(_attack(config, net, jax.tree.map(jnp.asarray, params), jnp.asarray(xs), d))
            return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

        out.append((_cell_name(d, depth), compute))
    return out


def _log_mean_and_se(rel: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
    """ln of the mean of the finite entries of ``rel`` ``(n_net, n_x)``, and its bootstrap
    standard error over networks (NaN and ∞ when there are none)."""
    def log_mean(a):
        f = a[np.isfinite(a)]
        return float(np.log(f.mean())) if f.size else float("nan")

    n_net = rel.shape[0]
    boots = np.array([log_mean(rel[rng.integers(0, n_net, n_net)]) for _ in range(N_BOOTSTRAP)])
    se = float(np.std(boots, ddof=1)) if np.all(np.isfinite(boots)) else float("inf")
    return log_mean(rel), se


def slope_fit(dims, rels) -> tuple[float, float]:
    """Least-squares slope of ln mean(rel) on ln d, with its standard error.

    Args:
      dims: the input dimensions.
      rels: per dimension, an ``(n_net, n_x)`` array of dist/‖x‖ (∞ where the attack failed;
        the mean is over the finite entries).

    Returns:
      ``(slope, standard error)``, the error from a bootstrap over networks in each cell
      (fixed generator: the statistic is deterministic); ``(nan, inf)`` if a cell has no success.
    """
    rng = np.random.default_rng(0)
    x = np.log(np.asarray(dims, dtype=float))
    ys, ses = zip(*(_log_mean_and_se(r, rng) for r in rels))
    y, se = np.asarray(ys), np.asarray(ses)
    if not np.all(np.isfinite(y)):
        return float("nan"), float("inf")
    xc = x - x.mean()
    sxx = float(np.sum(xc**2))
    return float(np.sum(xc * (y - y.mean())) / sxx), float(np.sqrt(np.sum(xc**2 * se**2)) / sxx)


def log_allowance(dims) -> float:
    """How much a factor ln(d)^{±LOG_POWER} can bend a log-log slope over ``dims``."""
    lo, hi = min(dims), max(dims)
    return LOG_POWER * math.log(math.log(hi) / math.log(lo)) / math.log(hi / lo)


def _summary(config, results):
    rows = []
    for depth in config["depths"]:
        for d in config["dims"]:
            r = results[_cell_name(d, depth)]
            row = {"L": depth, "d": d}
            for which in ("gf", "os", "mn"):
                if f"{which}_distance" not in r:
                    continue
                norm = r[f"{which}_distance"] * math.sqrt(d) / r["x_norm"]
                ok = norm[np.isfinite(norm)]
                row[f"{which}_success"] = float(r[f"{which}_success"].mean())
                row[f"{which}_mean"] = float(ok.mean()) if ok.size else float("nan")
                row[f"{which}_median"] = float(np.median(norm))  # over all pairs, failures as ∞
                # No interpolation: with failures (∞) among the samples it would compute ∞ − ∞.
                row[f"{which}_q25"], row[f"{which}_q75"] = (float(q) for q in np.quantile(norm, [0.25, 0.75], method="inverted_cdf"))
            for which in ("os", "mn"):
                if f"{which}_distance" in r:
                    # Over the pairs where both attacks flipped the sign (both distances finite).
                    both = r["gf_success"] & r[f"{which}_success"]
                    ratio = r["gf_distance"][both] / r[f"{which}_distance"][both]
                    row[f"{which}_ratio"] = float(np.median(ratio)) if ratio.size else float("nan")
            rows.append(row)
    return rows


def claims(config, results) -> list[Claim]:
    rows = _summary(config, results)
    dims, depths = config["dims"], config["depths"]
    out = []

    # 1. Gradient flow finds a sign change for most networks and inputs.
    last = [r["gf_success"] for r in rows if r["d"] == max(dims)]
    worst = min(last)
    every = [r["gf_success"] for r in rows]
    out.append(Claim(
        "daniely2020/gf-finds-sign-change",
        f"Gradient flow (path ≤ {config['step_size'] * config['max_steps']:g}‖x‖/√d) reaches a sign change for most "
        f"(network, x) pairs: ≥ {MIN_SUCCESS:.0%} at the largest d = {max(dims)}, for every depth. Measured: the "
        f"worst depth at the largest d; over all cells the rate is {min(every):.3f} … {max(every):.3f}.",
        "most networks, most x (1 − o(1))", round(worst, 4), worst >= MIN_SUCCESS))

    # 2. Distance ~ ‖x‖/√d: log-log slope of mean dist/‖x‖ against d is −1/2 (up to logs).
    allow = log_allowance(dims)
    fits = {}
    for depth in depths:
        rels = [results[_cell_name(d, depth)]["gf_distance"] / results[_cell_name(d, depth)]["x_norm"] for d in dims]
        fits[depth] = slope_fit(dims, rels)
    ok = all(np.isfinite(s) and np.isfinite(se) and abs(s + 0.5) <= allow + SLOPE_Z * se for s, se in fits.values())
    out.append(Claim(
        "daniely2020/distance-slope",
        f"For every depth, the log-log slope of the mean gradient-flow distance/‖x‖ (over pairs it flipped) "
        f"against d is −1/2 within {allow:.3f} (one power of ln d over the grid) + {SLOPE_Z:g} bootstrap "
        f"standard errors (measured: slope ± that tolerance).",
        -0.5, [f"L={L}: {s:+.3f} ± {allow + SLOPE_Z * se:.3f}" for L, (s, se) in fits.items()], bool(ok)))

    # 3. Normalised distance dist·√d/‖x‖ is O(1) up to logs in every cell.
    def inside(r):
        band = math.log(r["d"]) ** LOG_POWER
        return np.isfinite(r["gf_mean"]) and LINEAR_MEAN / band <= r["gf_mean"] <= LINEAR_MEAN * band

    bad = [f"L={r['L']},d={r['d']}" for r in rows if not inside(r)]
    means = [r["gf_mean"] for r in rows]
    out.append(Claim(
        "daniely2020/normalised-distance-bounded",
        f"In every cell the mean of dist·√d/‖x‖ over pairs gradient flow flipped lies in "
        f"[{LINEAR_MEAN:.3f}/ln d, {LINEAR_MEAN:.3f}·ln d] ({LINEAR_MEAN:.3f} = √(2/π): a random linear function).",
        "O(1) up to logs", f"{np.nanmin(means):.3f} … {np.nanmax(means):.3f}" + (f" (outside: {bad})" if bad else ""),
        not bad))

    # 4. Gradient flow vs one step (and min_norm): the same distance up to local linearity.
    lo, hi = RATIO_BAND
    for key, other, short, paper in (("os", "one gradient step (Bubeck et al. 2021)", "one step", "≈ 1 (local linearity)"),
                                     ("mn", "min_norm (ℓ2, the tightest reference)", "min_norm", "≈ 1")):
        if any(f"{key}_ratio" not in r for r in rows):
            continue
        ratios = [r[f"{key}_ratio"] for r in rows]
        ok = all(np.isfinite(v) and lo <= v <= hi for v in ratios)
        finite = [v for v in ratios if np.isfinite(v)]
        success = [r[f"{key}_success"] for r in rows]
        out.append(Claim(
            f"daniely2020/gf-vs-{'one-step' if key == 'os' else 'min-norm'}",
            f"In every cell the median per-pair ratio of the gradient-flow distance to that of {other}, over pairs "
            f"both flipped, lies in [{lo:.2f}, {hi:.2f}] (relative gradient change ≤ {LINEARITY_EPS:.3f} over the "
            f"ball). Measured: the ratios' range over cells; the success rate of {short} over cells.",
            paper,
            (f"{min(finite):.3f} … {max(finite):.3f}" if finite else "no pair")
            + (" (a cell with no pair)" if len(finite) < len(ratios) else "")
            + f"; success {min(success):.3f} … {max(success):.3f}",
            bool(ok)))
    return out


def figures(config, results, directory) -> list[str]:
    from matplotlib.figure import Figure  # no pyplot: no global backend or figure state
    from matplotlib.ticker import NullLocator

    rows = _summary(config, results)
    fig = Figure(figsize=(14, 4.2))
    axes = fig.subplots(1, 3)
    labels = {"gf": "gradient flow", "os": "one step", "mn": "min_norm"}
    styles = {"gf": ("-", "o"), "os": ("--", "x"), "mn": (":", "+")}
    for i, depth in enumerate(config["depths"]):
        rs = [r for r in rows if r["L"] == depth]
        ds = np.array([r["d"] for r in rs], dtype=float)
        c = f"C{i}"
        for which in ("gf", "os", "mn"):
            if f"{which}_median" not in rs[0]:
                continue
            ls, m = styles[which]
            axes[0].plot(ds, [r[f"{which}_median"] for r in rs], ls=ls, marker=m, color=c, label=f"L = {depth}, {labels[which]}")
            axes[2].plot(ds, [r[f"{which}_success"] for r in rs], ls=ls, marker=m, color=c, label=f"L = {depth}, {labels[which]}")
        axes[0].fill_between(ds, [r["gf_q25"] for r in rs], [r["gf_q75"] for r in rs], color=c, alpha=0.12)
        axes[1].plot(ds, [r["gf_mean"] / math.sqrt(r["d"]) for r in rs], marker="o", color=c, label=f"L = {depth}")
    ds = np.array(config["dims"], dtype=float)
    axes[0].axhline(LINEAR_MEDIAN, color="gray", lw=0.8, label="random linear f: median |N(0,1)|")
    axes[1].plot(ds, LINEAR_MEAN / np.sqrt(ds), color="gray", lw=0.8, ls="--", label="√(2/π)/√d (slope −1/2)")
    axes[0].set_ylabel("median dist·√d/‖x‖ (gradient flow: 25–75% band)")
    axes[1].set_ylabel("mean dist/‖x‖, gradient flow (claims' statistic)")
    axes[1].set_yscale("log")
    axes[2].set_ylabel("fraction of pairs with a sign change")
    axes[2].set_ylim(0, 1.05)
    titles = ["normalised distance stays O(1)", "distance/‖x‖ ~ 1/√d", "success rate (failures counted)"]
    for ax, title in zip(axes, titles):
        ax.set_xscale("log")
        ax.set_xticks(ds, [str(int(v)) for v in ds])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlabel("input dimension d")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=6)
    fig.suptitle("Daniely & Schacham 2020 (the paper has no figures; its main theorem): random ReLU nets with "
                 "shrinking widths d_i = ⌈d^{1−i/(2L)}⌉, inputs ‖x‖ = √d", fontsize=10)
    fig.tight_layout()
    name = "daniely2020.png"
    fig.savefig(os.path.join(directory, name), dpi=110)
    return [name]


EXPERIMENT = Experiment(
    name="daniely2020",
    title="Daniely & Schacham 2020: gradient flow flips random shrinking-width ReLU nets at distance ~‖x‖/√d",
    scales=SCALES,
    cells=cells,
    claims=claims,
    figures=figures,
)
