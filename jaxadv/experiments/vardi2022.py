"""Vardi, Yehudai & Shamir 2022, §6 and Figs 1–2: gradient descent converges to non-robust
depth-2 ReLU networks, although a √d-robust network of the same data exists (Thm 3.1).

Each run trains ``jaxadv.nets.shallow(d, k)`` (N(x) = Σ_j v_j σ(w_jᵀx + b_j), PyTorch's
default uniform initialisation) on m = round(d^α) samples x ~ U(√d·S^{d−1}), y uniform on
{±1} (:func:`jaxadv.train.sphere_dataset`), with the exponential loss summed over the batch
(eq. (1)), by :func:`jaxadv.train.train_margin` until 𝓛 < 1e−30, for ``n_seeds`` seeds. It
then measures (:func:`jaxadv.train.shared_perturbation`) the margin set
I = {i : y_i N(x_i) ≤ 1.1·min_j y_j N(x_j)}, z = Σ_{i∈I} y_i x_i and the minimal c > 0 with
y_i N(x_i − y_i c z/‖z‖) < 0 for every i ∈ I (one shared perturbation), and records:

* Fig 1a: c against d, one curve per α, width ``width``, with the √d line;
* Fig 1b: c against d for m = d and several widths;
* Fig 2a / 2b: the fraction |I|/m and the number m − |I| of samples on / off the margin;
* beside the trained net, Thm 3.1's robust construction for the same data
  (:func:`jaxadv.train.robust_network`, width m): the ℓ2 :func:`jaxadv.attacks.min_norm`
  distance of the first ``n_attack`` samples for both networks, and the theorem's
  guaranteed radius (1 − c)√d/4 with c = max_{i≠j}|⟨x_i, x_j⟩|/d.

Grids:

* quick (≤ 120 s on a 2-core CPU): d ∈ {100, 200} (the paper's two smallest), α ∈ {0.5, 1},
  width 100, 3 seeds; Fig 1b at d = 100 with widths {30, 100, 300}; the robust comparison
  at α = 1, d = 100 on 20 samples. **Schedule:** the paper's growing rate (lr0 = 1e−5, ×1.1)
  with the period shortened from 100 to 3 steps: ~2.3k instead of ~73k steps to 𝓛 < 1e−30.
  Both discretise the same gradient flow and stop at the same loss: at d = m = 100, widths
  25 and 100, 3 seeds, period 3 gave every c within 4% of period 100's and the same margin
  counts (±1); period 2 put one seed's c 34% off and period 1 diverges early for m ≳ 300,
  so 3 is the shortest period used (a test compares periods 3 and 100 at a tiny size). No
  α > 1 at quick scale: the extra compilations (one per (d, m)) do not fit the budget.
* paper: d ∈ {100, 200, …, 1000}, α ∈ {0.5, 0.8, 1, 1.2, 1.5}, width 1000, 5 seeds; Fig 1b
  at every d with widths {100, 200, 500, 1000, 2000, 4000, 8000}; SGD with batch 5000
  (full batch for m ≤ 5000); the paper's schedule (period 100); robust comparison at every
  α on 100 samples.

What the paper leaves unstated, and what we chose:

* the rounding of m = d^α: to the nearest integer;
* sum or mean loss: the sum over the batch (eq. (1));
* the initialisation: PyTorch's ``nn.Linear`` default (``shallow``'s ``init="uniform"``);
* Fig 1b's exact widths: {100, 200, 500, 1000, 2000, 4000, 8000} ("from 100 to 8000"), and
  its d grid: Fig 1a's;
* the search for c: :func:`jaxadv.attacks.shared_line_search` (geometric grid up to 2√d,
  then bisection to 1e−4 relative);
* data and widths: the data of a (d, α, seed) are the same for every width, so Fig 1b
  compares widths on the same data sets, and the α = 1 runs of width ``width`` are shared
  by Figs 1a and 1b.

Implementation: a cell is one (α, d) with all its widths (``pad_widths=True``, quick) or
one (α, d, width) (paper). With ``pad_widths`` the narrower networks are padded with
zero neurons (w_j = 0, b_j = 0, v_j = 0) to the widest one and trained together: a zero
neuron has zero output and zero gradient (ReLU′(0) = 0), so it stays zero and the padded
network is the narrow one, while every width of a cell shares one compilation; the robust
network and the trained one are likewise padded to a common width for one ``min_norm``
call. At paper scale padding would waste most of the work, so each width is its own cell.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxadv import attacks, kernels, nets, train
from jaxadv.experiments._spec import Experiment
from jaxadv.experiments.claims import Claim

SCALES = {
    "quick": {
        "dims": [100, 200],
        "alphas": [0.5, 1.0],
        "width": 100,
        "n_seeds": 3,
        "fig1b_dims": [100],
        "fig1b_widths": [30, 100, 300],
        "schedule": {"name": "growing", "lr0": 1e-5, "factor": 1.1, "every": 3},
        "target_loss": 1e-30,
        "max_steps": 20_000,
        "chunk": 250,
        "loss": "exponential",
        "reduction": "sum",
        "batch_size": 5000,
        "init": "uniform",
        "slack": 1.1,
        "robust_alphas": [1.0],
        "robust_dims": [100],
        "n_attack": 20,
        "pad_widths": True,
        "line_search_chunk": None,
    },
    "paper": {
        "dims": [100, 200, 300, 400, 500, 600, 700, 800, 900, 1000],
        "alphas": [0.5, 0.8, 1.0, 1.2, 1.5],
        "width": 1000,
        "n_seeds": 5,
        "fig1b_dims": [100, 200, 300, 400, 500, 600, 700, 800, 900, 1000],
        "fig1b_widths": [100, 200, 500, 1000, 2000, 4000, 8000],
        "schedule": {"name": "growing", "lr0": 1e-5, "factor": 1.1, "every": 100},
        "target_loss": 1e-30,
        # ~73k steps reach 1e−30 at d = m = 20 (benchmarks/train.py) and at d = m = 100 alike:
        # the count is set by the schedule (~727 periods of 100 steps); 4× headroom
        "max_steps": 300_000,
        # steps between full-data records; with SGD (m > 5000) the 1e−30 target is checked
        # once per chunk, so training stops at most one learning-rate period late
        "chunk": 100,
        "loss": "exponential",
        "reduction": "sum",
        "batch_size": 5000,
        "init": "uniform",
        "slack": 1.1,
        "robust_alphas": [0.5, 0.8, 1.0, 1.2, 1.5],
        "robust_dims": [100, 200, 300, 400, 500, 600, 700, 800, 900, 1000],
        "n_attack": 100,
        "pad_widths": False,
        # one network at a time in the shared line search: it evaluates all m points at all
        # 32 grid values at once, 32·m·k floats per network (4 GB at m = 31623, k = 1000)
        "line_search_chunk": 1,
    },
}

# "c ≪ √d" (Fig 1a: "much smaller than √d"): the seed-mean c of every (α, d) cell is at
# most √d/2. Why a factor 2: √d/2 is what the paper's robust construction needs to flip ANY
# single point on orthogonal data (§5.1; Thm 3.1's guarantee (1 − c)√d/4 is a lower bound
# on the same radius), so c ≤ √d/2 means that one perturbation shared by all margin points
# is no longer than what that network needs for each point alone; and a factor 2 is far
# beyond the measurement's own error (the line search's 1e−4 relative tolerance).
SQRT_D_FRACTION = 0.5
# "All samples are on the margin" for α = 0.5 (Lemma D.1): exactly, in every seed and d,
# under the paper's own margin-set rule (slack 1.1, i.e. q_i ≤ 1.1·q_min).
ALPHA_ALL_ON_MARGIN = 0.5
# "For α = 0.8, 1, 1.2, 1.5 at least 92% of the samples are on the margin": the paper's
# number, applied to the seed mean of every (α ≥ 0.8, d) cell (Fig 2a plots the mean).
MARGIN_ALPHA_MIN = 0.8
MARGIN_FRACTION_MIN = 0.92
# "Width does not change c much" (Fig 1b: "almost the same, regardless of the width"):
# c ∝ k^β over the widths of each d, β fitted by least squares on the log of the seed-mean
# c, with |β| ≤ 0.05 + 2·SE(β): 0.05 is the effect size we call "not much" (over the
# paper's 80× range of widths, 100 → 8000, at most 80^0.05 = 1.24×; a tenth of the exponent
# ½ with which Thm 4.1's bound √(d/(c²m)) depends on the data size), and 2·SE(β) allows for
# the seed-to-seed noise of the fit (SE from the seeds' standard error of each log mean,
# propagated through the least-squares slope; 0 with a single seed). The test fails when the
# data show a width exponent above 0.05 beyond two standard errors.
WIDTH_EXPONENT_MAX = 0.05
WIDTH_EXPONENT_N_SE = 2.0
# "The robust network is much more robust": the median min_norm distance of Thm 3.1's
# network is at least twice the trained network's, in every compared cell: the same
# factor 2 as "≪" above.
ROBUST_RATIO_MIN = 2.0
# An attack that found no boundary point is no evidence of robustness (its distance is
# recorded as ∞): both robustness claims need min_norm to have succeeded on at least this
# fraction of the attacked samples of each network, in every compared cell.
ATTACK_SUCCESS_MIN = 0.9


def _n_samples(d: int, alpha: float) -> int:
    """m = d^α rounded to the nearest integer (the paper does not state its rounding)."""
    return round(d**alpha)


def _fmt(alpha: float) -> str:
    return f"{alpha:g}"


def _runs(config: Mapping[str, Any]) -> list[tuple[str, int, float, list[int]]]:
    """The sweep's cells: ``(name, d, α, widths)``.

    Fig 1a's (α, d) runs at ``width`` and Fig 1b's (α = 1, d) runs at ``fig1b_widths`` are
    merged where they coincide. With ``pad_widths`` all widths of an (α, d) are one cell,
    zero-padded to the widest of them; without it each width is a cell.
    """
    groups: dict[tuple[float, int], set[int]] = {}
    for alpha in config["alphas"]:
        for d in config["dims"]:
            groups.setdefault((float(alpha), int(d)), set()).add(int(config["width"]))
    for d in config["fig1b_dims"]:
        groups.setdefault((1.0, int(d)), set()).update(int(k) for k in config["fig1b_widths"])
    out = []
    for (alpha, d), widths in sorted(groups.items()):
        widths = sorted(widths)
        batches = [widths] if config["pad_widths"] else [[k] for k in widths]
        out += [(f"alpha={_fmt(alpha)},d={d},k={'+'.join(map(str, b))}", d, alpha, b) for b in batches]
    return out


def _schedule(spec: Mapping[str, Any]):
    if spec["name"] == "growing":
        return train.growing_lr(spec["lr0"], factor=spec["factor"], every=spec["every"])
    if spec["name"] == "loss_normalised":
        return train.loss_normalised_lr(spec["lr"], adaptive=spec.get("adaptive", True))
    raise ValueError(f"unknown schedule {spec['name']!r}; expected 'growing' or 'loss_normalised'.")


def pad_width(params: Mapping[str, jax.Array], k: int) -> dict[str, jax.Array]:
    """A ``shallow`` network padded with zero neurons (w_j = 0, b_j = 0, v_j = 0) to width k.

    The padded network computes the same function, and under gradient descent on any loss of
    its outputs its zero neurons get zero gradient (v_j = 0 and ReLU′(0) = 0; ∂/∂v_j = σ(0)
    = 0), so training the padded network trains the narrow one. Works on stacked params.

    Args:
      params: ``{"w": (..., k0, d), "b": (..., k0), "v": (..., k0)}`` with k0 ≤ k.
      k: the new width.
    """
    k0 = params["b"].shape[-1]
    if k0 > k:
        raise ValueError(f"cannot pad width {k0} down to {k}.")

    def pad(a, axis):
        widths = [(0, 0)] * a.ndim
        widths[axis] = (0, k - k0)
        return jnp.pad(a, widths)

    return {"w": pad(params["w"], params["w"].ndim - 2), "b": pad(params["b"], params["b"].ndim - 1),
            "v": pad(params["v"], params["v"].ndim - 1)}


def _stack(trees):
    return jax.tree.map(lambda *a: jnp.stack(a), *trees)


def _base_key(config, d: int, alpha: float) -> jax.Array:
    """The key of an (α, d) cell: stable integers d and round(1000·α) folded into the seed's key."""
    return jax.random.fold_in(jax.random.fold_in(jax.random.key(config["seed"]), d), round(alpha * 1000))


def _initial(base: jax.Array, d: int, m: int, widths: list[int], n_seeds: int, init: str):
    """Data and initial networks of a cell.

    Returns X ``(S, m, d)`` and y ``(S, m)`` (seed s: ``sphere_dataset(fold_in(fold_in(base, 0),
    s))``, the same for every width), and params of W·S networks, width-major: for width k,
    ``init_many(shallow(d, k), fold_in(fold_in(base, 1), k), S)`` zero-padded to max(widths).
    (Eager on purpose: jitting this compiles a fresh random-number program per cell, slower
    on a CPU than the eager ops, most of which are shared by all cells.)
    """
    sets = [train.sphere_dataset(jax.random.fold_in(jax.random.fold_in(base, 0), s), m, d) for s in range(n_seeds)]
    X, y = jnp.stack([x for x, _ in sets]), jnp.stack([t for _, t in sets])
    params = [pad_width(kernels.init_many(nets.shallow(d, k, init=init), jax.random.fold_in(jax.random.fold_in(base, 1), k),
                                          n_seeds), max(widths)) for k in widths]
    return X, y, jax.tree.map(lambda *a: jnp.concatenate(a), *params)


def _compute(config, d: int, alpha: float, widths: list[int]) -> dict[str, np.ndarray]:
    n_seeds = config["n_seeds"]
    m = _n_samples(d, alpha)
    base = _base_key(config, d, alpha)
    X, y, params = _initial(base, d, m, widths, n_seeds, config["init"])
    K = max(widths)
    W = len(widths)
    Xt, yt = jnp.tile(X, (W, 1, 1)), jnp.tile(y, (W, 1))
    net = nets.shallow(d, K)
    res = train.train_margin(
        net, jax.random.fold_in(base, 2), params, Xt, yt, lr=_schedule(config["schedule"]),
        target_loss=config["target_loss"], max_steps=config["max_steps"], loss=config["loss"],
        reduction=config["reduction"], batch_size=config["batch_size"], chunk=config["chunk"],
    )
    sp = train.shared_perturbation(net, res.params, Xt, yt, slack=config["slack"], chunk_size=config["line_search_chunk"])
    # to NumPy at once: further eager JAX ops would each compile for this cell's shapes
    sp, h, n_steps, reason = jax.device_get((sp, res.history, res.n_steps, res.reason))

    def per_run(a):
        a = np.asarray(a)
        return a.reshape(W, n_seeds, *a.shape[1:])

    out = {
        "widths": np.asarray(widths, np.int32),
        "m": np.asarray(m, np.int32),
        "c": per_run(sp.c),
        "success": per_run(sp.success),
        "z_norm": per_run(sp.z_norm),
        "count": per_run(sp.count),
        "flipped_fraction": per_run(np.mean(sp.flipped, axis=-1)),
        "n_steps": per_run(n_steps),
        "reason": per_run(reason),
        "log10_loss": per_run(h.log10_loss[:, -1]),
        "min_margin": per_run(h.min_margin[:, -1]),
        "normalised_margin": per_run(h.normalised_margin[:, -1]),
        "cos": per_run(h.cos[:, -1]),
    }
    robust = alpha in [float(a) for a in config["robust_alphas"]] and d in [int(v) for v in config["robust_dims"]]
    if robust and int(config["width"]) in widths:
        out.update(_robust(config, d, X, y, res.params, widths.index(int(config["width"])), K))
    return out


def _robust(config, d: int, X, y, trained, j: int, K: int) -> dict[str, np.ndarray]:
    """min_norm distances of the first ``n_attack`` samples: trained (width ``width``) vs Thm 3.1's network."""
    n_seeds, m = X.shape[0], X.shape[1]
    mine = jax.tree.map(lambda a: a[j * n_seeds:(j + 1) * n_seeds], trained)
    robust = _stack([train.robust_network(X[s], y[s]) for s in range(n_seeds)])  # width m
    # the c robust_network used, c = max_(i≠j)|⟨x_i, x_j⟩|/d, recovered from b = −(1 + c)/(1 − c)
    b = np.asarray(robust["b"][:, 0], np.float64)
    c_ip = -(1 + b) / (1 - b)
    xs = X[:, : min(config["n_attack"], m)]
    if config["pad_widths"]:  # one network shape, one compilation
        Kr = max(K, m)
        both = _stack([pad_width(mine, Kr), pad_width(robust, Kr)])
        both = jax.tree.map(lambda a: a.reshape(2 * n_seeds, *a.shape[2:]), both)
        r = attacks.min_norm(nets.shallow(d, Kr), both, jnp.concatenate([xs, xs]))
        dist, ok = np.asarray(r.distance), np.asarray(r.success)
        t_dist, r_dist, t_ok, r_ok = dist[:n_seeds], dist[n_seeds:], ok[:n_seeds], ok[n_seeds:]
    else:
        rt = attacks.min_norm(nets.shallow(d, K), mine, xs)
        rr = attacks.min_norm(nets.shallow(d, m), robust, xs)
        t_dist, t_ok, r_dist, r_ok = (np.asarray(a) for a in (rt.distance, rt.success, rr.distance, rr.success))
    return {
        "trained_dist": t_dist, "trained_dist_ok": t_ok, "robust_dist": r_dist, "robust_dist_ok": r_ok,
        "inner_c": c_ip, "thm31_radius": (1 - c_ip) * math.sqrt(d) / 4,
    }


def cells(config: Mapping[str, Any]):
    out = []
    for name, d, alpha, widths in _runs(config):
        def compute(d=d, alpha=alpha, widths=widths):
            return _compute(config, d, alpha, widths)

        out.append((name, compute))
    return out


# ---------------------------------------------------------------------------------------
# reading the results


_ROBUST_FIELDS = ("trained_dist", "trained_dist_ok", "robust_dist", "robust_dist_ok", "inner_c", "thm31_radius")


def _by_run(config, results) -> dict[tuple[float, int, int], dict[str, np.ndarray]]:
    """``{(α, d, width): {field: (n_seeds, ...)}}`` from the cells' arrays (the robust
    comparison's fields only on the run of width ``width`` they belong to)."""
    table = {}
    for name, d, alpha, widths in _runs(config):
        r = results[name]
        for i, k in enumerate(np.asarray(r["widths"]).tolist()):
            row = {f: np.asarray(v)[i] for f, v in r.items() if f not in ("widths", "m") + _ROBUST_FIELDS}
            row["m"] = int(r["m"])
            if k == int(config["width"]):
                row.update({f: np.asarray(r[f]) for f in _ROBUST_FIELDS if f in r})
            table[(alpha, d, int(k))] = row
    return table


def width_exponent(widths: list[int], cs: list[np.ndarray]) -> tuple[float, float]:
    """β and SE(β) of the least-squares fit log c̄_k = a + β·log k over widths k.

    Args:
      widths: the widths k (at least two distinct).
      cs: per width, the seeds' values of c ``(S,)``; c̄_k is their mean.

    Returns:
      ``(β, SE(β))``. SE(β)² = Σ_k (x_k − x̄)² s_k² / (Σ_k (x_k − x̄)²)² with x = log k and
      s_k = std(c_k)/(√S·c̄_k) the standard error of log c̄_k (delta method); 0 for one seed.
      ``(inf, 0)`` if any c is infinite (a failed search); ``(nan, nan)`` for fewer than two
      widths (nothing to fit).
    """
    x = np.log(np.asarray(widths, float))
    cs = [np.asarray(c, float) for c in cs]
    if len(set(widths)) < 2:
        return float("nan"), float("nan")
    if not all(np.all(np.isfinite(c)) for c in cs):
        return float("inf"), 0.0
    mean = np.array([c.mean() for c in cs])
    se = np.array([c.std(ddof=1) / (math.sqrt(c.size) * c.mean()) if c.size > 1 else 0.0 for c in cs])
    dx = x - x.mean()
    sxx = float(np.sum(dx**2))
    beta = float(np.sum(dx * np.log(mean)) / sxx)
    return beta, float(math.sqrt(np.sum(dx**2 * se**2)) / sxx)


def _mean(a) -> float:
    a = np.asarray(a, float)
    return float(np.mean(a)) if np.all(np.isfinite(a)) else float("inf")


def claims(config, results) -> list[Claim]:
    t = _by_run(config, results)
    k1a = int(config["width"])
    fig1a = {(a, d): t[(float(a), int(d), k1a)] for a in config["alphas"] for d in config["dims"]}

    # trained to the target, every sample classified correctly
    reached = np.concatenate([(r["reason"] == train.STOP_REASONS.index("target")) & (r["min_margin"] > 0) for r in t.values()])
    converged = float(reached.mean())

    # c ≪ √d
    ratios = {key: _mean(r["c"]) / math.sqrt(key[1]) for key, r in fig1a.items()}
    worst_key = max(ratios, key=ratios.get)
    worst = ratios[worst_key]

    # margin fractions
    half = [r["count"] / r["m"] for (a, _), r in fig1a.items() if float(a) == ALPHA_ALL_ON_MARGIN]
    all_on = float(np.min(np.concatenate(half))) if half else float("nan")
    big = {(a, d): float(np.mean(r["count"] / r["m"])) for (a, d), r in fig1a.items() if float(a) >= MARGIN_ALPHA_MIN}
    low_key = min(big, key=big.get) if big else None
    lowest = big[low_key] if big else float("nan")

    # width exponent β of c ∝ k^β at each Fig 1b dimension
    fits = {int(d): width_exponent([int(k) for k in config["fig1b_widths"]],
                                   [t[(1.0, int(d), int(k))]["c"] for k in config["fig1b_widths"]])
            for d in config["fig1b_dims"]}
    excess = {d: abs(b) - WIDTH_EXPONENT_N_SE * se for d, (b, se) in fits.items()}
    beta_key = max(excess, key=excess.get) if excess else None
    beta, beta_se = fits[beta_key] if fits else (float("nan"), float("nan"))

    # robust construction vs trained
    robust = {key: r for key, r in fig1a.items() if "robust_dist" in r}
    rr = {}
    for key, r in robust.items():
        tr = np.where(r["trained_dist_ok"], r["trained_dist"], np.inf)
        ro = np.where(r["robust_dist_ok"], r["robust_dist"], np.inf)
        rr[key] = float(np.median(ro) / np.median(tr))
    rr_key = min(rr, key=rr.get) if rr else None
    found = min((float(min(np.mean(r["trained_dist_ok"]), np.mean(r["robust_dist_ok"]))) for r in robust.values()),
                default=float("nan"))
    attacks_found = bool(robust) and found >= ATTACK_SUCCESS_MIN
    bound_ratio = min((float(np.min(np.where(r["robust_dist_ok"], r["robust_dist"], np.inf) / r["thm31_radius"][:, None]))
                       for r in robust.values()), default=float("nan"))
    trained_ratio = max((float(np.median(r["trained_dist"]) / math.sqrt(k[1])) for k, r in robust.items()), default=float("nan"))

    def where(key):
        return f"α = {_fmt(float(key[0]))}, d = {key[1]}"

    name = "vardi2022"
    return [
        Claim(f"{name}/trained-to-target",
              f"Every run reaches 𝓛 < {config['target_loss']:g} and then classifies all training samples correctly (fraction of runs).",
              "all runs (§6: 'this happened in all of our experiments')", converged, converged == 1.0),
        Claim(f"{name}/c-much-below-sqrt-d",
              f"The minimal shared c is ≪ √d: seed-mean c ≤ {SQRT_D_FRACTION}·√d in every Fig 1a cell (worst c/√d; "
              f"worst cell {where(worst_key)}).",
              "much smaller than √d (Fig 1a)", worst, worst <= SQRT_D_FRACTION),
        Claim(f"{name}/all-on-margin-alpha-0.5",
              f"For m = d^0.5 every sample is on the margin (q_i ≤ {config['slack']}·q_min) in every seed and d (smallest fraction).",
              "100% (Fig 2a, Lemma D.1)", all_on, bool(half) and all_on == 1.0),
        Claim(f"{name}/margin-fraction-92",
              f"For α ≥ {MARGIN_ALPHA_MIN}, at least {MARGIN_FRACTION_MIN:.0%} of the samples are on the margin "
              f"(slack {config['slack']}; seed mean, smallest cell{'' if low_key is None else ': ' + where(low_key)}).",
              f"≥ {MARGIN_FRACTION_MIN:.0%} (Fig 2a)", lowest, bool(big) and lowest >= MARGIN_FRACTION_MIN),
        Claim(f"{name}/width-invariant",
              f"Width hardly changes c (m = d): c ∝ k^β over widths {config['fig1b_widths']} with "
              f"|β| ≤ {WIDTH_EXPONENT_MAX} + {WIDTH_EXPONENT_N_SE:g}·SE(β) at every d (β of the worst d"
              f"{'' if beta_key is None else f', d = {beta_key}, SE = {beta_se:.3f}'}).",
              "almost the same for widths 100…8000 (Fig 1b)", beta,
              bool(excess) and bool(excess[beta_key] <= WIDTH_EXPONENT_MAX)),
        Claim(f"{name}/robust-network-much-more-robust",
              f"Thm 3.1's network of the same data needs ≥ {ROBUST_RATIO_MIN}× the trained network's median min_norm ℓ2 distance "
              f"(smallest ratio of medians{'' if rr_key is None else ': ' + where(rr_key)}; trained median ≤ "
              f"{trained_ratio:.2f}·√d; min_norm must succeed on ≥ {ATTACK_SUCCESS_MIN:.0%} of samples of both networks: "
              f"{found:.2f}).",
              "√d-robust vs small perturbations (Thm 3.1 vs Thm 4.1)", rr[rr_key] if rr else float("nan"),
              attacks_found and rr[rr_key] >= ROBUST_RATIO_MIN),
        Claim(f"{name}/robust-network-thm3.1-radius",
              "Every min_norm distance of Thm 3.1's network is at least its guaranteed radius (1 − c)√d/4, "
              f"c = max_(i≠j)|⟨x_i, x_j⟩|/d (smallest distance/radius; min_norm only returns verified adversarial points, "
              f"and must succeed on ≥ {ATTACK_SUCCESS_MIN:.0%} of samples).",
              "> (1 − c)√d/4 (Thm 3.1)", bound_ratio, attacks_found and bound_ratio >= 1.0),
    ]


def figures(config, results, directory) -> list[str]:
    from matplotlib.figure import Figure  # no pyplot: no global backend or figure state

    t = _by_run(config, results)
    k1a = int(config["width"])
    fig = Figure(figsize=(15, 8))
    ax = fig.subplots(2, 3)
    dims = [int(d) for d in config["dims"]]
    grid = np.linspace(min(dims + [int(d) for d in config["fig1b_dims"]]), max(dims + [int(d) for d in config["fig1b_dims"]]), 50)

    def band(a, xs, rows, field, label, fn=lambda r, f: r[f], marker="o"):
        vals = [np.asarray(fn(r, field), float) for r in rows]
        vals = [v[np.isfinite(v)] for v in vals]  # a failed search (c = inf) is in the claims, not the plot
        mean = np.array([v.mean() if v.size else np.nan for v in vals])
        std = np.array([v.std() if v.size else np.nan for v in vals])
        if len(xs) > 1:
            a.plot(xs, mean, marker=marker, label=label)
            a.fill_between(xs, mean - std, mean + std, alpha=0.2)
        else:  # one d: a point with an error bar
            a.errorbar(xs, mean, yerr=std, marker=marker, capsize=4, label=label)

    for alpha in config["alphas"]:
        rows = [t[(float(alpha), d, k1a)] for d in dims]
        lab = f"$m = d^{{{_fmt(float(alpha))}}}$"
        band(ax[0, 0], dims, rows, "c", lab)
        band(ax[1, 0], dims, rows, "count", lab, fn=lambda r, f: r[f] / r["m"])
        band(ax[1, 1], dims, rows, "count", lab, fn=lambda r, f: r["m"] - r[f])
        band(ax[1, 2], dims, rows, "cos", lab)
        rob = [(d, r) for d, r in zip(dims, rows) if "robust_dist" in r]
        if rob:
            xs = [d for d, _ in rob]
            line = ax[0, 2].plot(xs, [np.median(r["trained_dist"]) for _, r in rob], marker="o", label=f"trained, {lab}")[0]
            ax[0, 2].plot(xs, [np.median(r["robust_dist"]) for _, r in rob], marker="s", ls="--", color=line.get_color(),
                          label=f"Thm 3.1 net, {lab}")
            ax[0, 2].plot(xs, [np.mean(r["thm31_radius"]) for _, r in rob], marker="v", ls=":", color=line.get_color(),
                          label=f"(1 − c)√d/4, {lab}")
    f1b = [int(d) for d in config["fig1b_dims"]]
    for k in config["fig1b_widths"]:
        band(ax[0, 1], f1b, [t[(1.0, d, int(k))] for d in f1b], "c", f"width {k}")
    for a in (ax[0, 0], ax[0, 1], ax[0, 2]):
        a.plot(grid, np.sqrt(grid), "k--", label="√d")
        a.set_ylabel("minimal perturbation size")
    ax[0, 0].set_title(f"Fig 1a: shared c, width {k1a}")
    ax[0, 1].set_title("Fig 1b: shared c, m = d")
    ax[0, 2].set_title("Thm 3.1 net vs trained: median min_norm ℓ2")
    ax[0, 2].set_ylabel("ℓ2 distance to the boundary")
    ax[1, 0].set_title("Fig 2a: fraction of samples on the margin")
    ax[1, 0].set_ylabel("|I| / m")
    ax[1, 1].set_title("Fig 2b: samples not on the margin")
    ax[1, 1].set_ylabel("m − |I|")
    ax[1, 2].set_title(r"cos(θ, $-\nabla\mathcal{L}$) at the end of training")
    ax[1, 2].set_ylabel("cosine")
    for a in ax.ravel():
        a.set_xlabel("input dimension d")
        a.legend(fontsize=7)
    fig.suptitle(f"Vardi, Yehudai & Shamir 2022 (scale {config.get('scale', '?')}, seed {config['seed']}, "
                 f"{config['n_seeds']} seeds; mean ± std)")
    fig.tight_layout()
    name = "vardi2022.png"
    fig.savefig(os.path.join(directory, name), dpi=100)
    return [name]


EXPERIMENT = Experiment(
    name="vardi2022",
    title="Vardi et al. 2022: trained depth-2 nets are non-robust; one shared perturbation ≪ √d flips the margin set",
    scales=SCALES,
    cells=cells,
    claims=claims,
    figures=figures,
)
