"""Bubeck, Cherapanamjeri, Gidel & Tachet des Combes 2021, §4 and Figs 1–2: one gradient step
flips the sign of random ReLU networks.

For each cell (d, k = d, L hidden layers) the experiment draws ``n_net`` networks (L = 1:
``two_layer``, eq. (1); L ≥ 2: ``mlp`` with equal widths, NN-DEF scaling, the hidden-layer
variance the paper leaves unstated) and ``n_x`` inputs per network on the sphere of radius
√d, and runs :func:`jaxadv.attacks.one_step` with |η| < 20. It records per pair whether the
sign switched, the smallest η and ‖∇f(x)‖.

Grids (the paper does not state its d and k grids; powers of ten and their halves):

* quick: d = k ∈ {10, 30, 100, 300}, L ∈ {1, 2, 4}, 10 networks × 20 inputs;
* paper: d = k ∈ {10, 50, 100, 500, 1000, 5000, 10000}, L ∈ {1, …, 6}, 100 × 100.
"""

from __future__ import annotations

from typing import Any, Mapping

import jax
import numpy as np

from jaxadv import attacks, data, kernels, nets
from jaxadv.experiments._spec import Experiment
from jaxadv.experiments.claims import Claim

SCALES = {
    "quick": {"dims": [10, 30, 100, 300], "depths": [1, 2, 4], "n_net": 10, "n_x": 20, "eta_max": 20.0},
    "paper": {"dims": [10, 50, 100, 500, 1000, 5000, 10000], "depths": [1, 2, 3, 4, 5, 6], "n_net": 100, "n_x": 100, "eta_max": 20.0},
}

# "Roughly constant in d and k" (Fig 2): the largest over the smallest per-cell mean, for
# L = 1. ‖∇f‖ has E‖∇f‖² = 1/2 exactly at every d (§1.2), so its means differ only by
# sampling noise; the smallest η ≈ |f|/‖∇f‖² is heavier-tailed, hence the wider bound.
GRAD_SPREAD_TOL = 1.25
ETA_SPREAD_TOL = 2.0


def _cell_name(d: int, depth: int) -> str:
    return f"L={depth},d={d}"


def _net(d: int, depth: int) -> nets.Network:
    return nets.two_layer(d, d) if depth == 1 else nets.mlp(d, [d] * depth)


def cells(config: Mapping[str, Any]):
    out = []
    grid = [(depth, d) for depth in config["depths"] for d in config["dims"]]
    for index, (depth, d) in enumerate(grid):
        def compute(d=d, depth=depth, index=index):
            key = jax.random.fold_in(jax.random.key(config["seed"]), index)
            k_net, k_x = jax.random.split(key)
            net = _net(d, depth)
            params = kernels.init_many(net, k_net, config["n_net"])
            xs = data.sphere(k_x, config["n_net"] * config["n_x"], d).reshape(config["n_net"], config["n_x"], d)
            res = attacks.one_step(net, params, xs, eta_max=config["eta_max"])
            return {
                "success": np.asarray(res.success),
                "eta": np.asarray(res.eta),
                "grad_norm": np.asarray(res.grad_norm),
                "step_norm": np.asarray(res.distance),
            }

        out.append((_cell_name(d, depth), compute))
    return out


def _summary(config, results):
    rows = []
    for depth in config["depths"]:
        for d in config["dims"]:
            r = results[_cell_name(d, depth)]
            per_net = r["success"].mean(axis=1)
            eta = np.abs(r["eta"][r["success"]])
            rows.append({
                "L": depth, "d": d,
                "switched": float(r["success"].mean()), "switched_std": float(per_net.std()),
                "eta": float(eta.mean()) if eta.size else float("nan"),
                "grad_norm": float(r["grad_norm"].mean()),
            })
    return rows


def claims(config, results) -> list[Claim]:
    rows = _summary(config, results)
    one = [r for r in rows if r["L"] == 1]
    big = [r for r in one if r["d"] > 50]
    all_switched = min(r["switched"] for r in big) if big else float("nan")
    g = [r["grad_norm"] for r in one]
    e = [r["eta"] for r in one if np.isfinite(r["eta"])]
    grad_spread = max(g) / min(g)
    eta_spread = max(e) / min(e) if e else float("nan")
    first_full = {}
    for depth in config["depths"]:
        full = [r["d"] for r in rows if r["L"] == depth and r["switched"] == 1.0]
        first_full[depth] = min(full) if full else float("inf")
    order = [first_full[L] for L in config["depths"]]
    return [
        Claim("bubeck2021/L1-all-switched", "With L = 1 and d = k > 50, one gradient step with |η| < 20 switches 100% of inputs.",
              "100%", all_switched, bool(big) and all_switched == 1.0),
        Claim("bubeck2021/grad-norm-constant", f"Mean ‖∇f(x)‖ is roughly constant in d = k for L = 1 (largest/smallest cell mean ≤ {GRAD_SPREAD_TOL}).",
              "≈ constant (E‖∇f‖² = 1/2)", grad_spread, grad_spread <= GRAD_SPREAD_TOL),
        Claim("bubeck2021/eta-constant", f"The mean smallest |η| is roughly constant in d = k for L = 1 (largest/smallest cell mean ≤ {ETA_SPREAD_TOL}).",
              "≈ constant", eta_spread, bool(e) and eta_spread <= ETA_SPREAD_TOL),
        Claim("bubeck2021/threshold-grows-with-L", "The smallest d = k with 100% switched does not decrease with depth L.",
              "grows with L", [f"L={L}: d={first_full[L]}" for L in config["depths"]], all(a <= b for a, b in zip(order, order[1:]))),
    ]


def figures(config, results, directory) -> list[str]:
    import os

    from matplotlib.figure import Figure  # no pyplot: no global backend or figure state

    rows = _summary(config, results)
    fig = Figure(figsize=(13, 3.6))
    axes = fig.subplots(1, 3)
    for depth in config["depths"]:
        rs = [r for r in rows if r["L"] == depth]
        ds = [r["d"] for r in rs]
        m = np.array([r["switched"] for r in rs])
        s = np.array([r["switched_std"] for r in rs])
        axes[0].plot(ds, m, marker="o", label=f"L = {depth}")
        axes[0].fill_between(ds, m - s, np.minimum(m + s, 1), alpha=0.2)
        axes[1].plot(ds, [r["eta"] for r in rs], marker="o", label=f"L = {depth}")
        axes[2].plot(ds, [r["grad_norm"] for r in rs], marker="o", label=f"L = {depth}")
    for ax, title in zip(axes, ["fraction switched (Fig 1)", "mean smallest |η| (Fig 2a)", "mean ‖∇f(x)‖ (Fig 2b)"]):
        ax.set_xscale("log")
        ax.set_xlabel("input dimension d (= width k)")
        ax.set_title(title)
        ax.legend(fontsize=8)
    fig.tight_layout()
    name = "bubeck2021.png"
    fig.savefig(os.path.join(directory, name), dpi=110)
    return [name]


EXPERIMENT = Experiment(
    name="bubeck2021",
    title="Bubeck et al. 2021: one gradient step switches the sign of random ReLU nets (L = 1..6)",
    scales=SCALES,
    cells=cells,
    claims=claims,
    figures=figures,
)
