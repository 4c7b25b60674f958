"""Bubeck, Cherapanamjeri, Gidel & Tachet des Combes 2021, §4 and Figs 1–2: one gradient step
flips the sign of random ReLU networks.

For each cell (d, k = d, L hidden layers) the experiment draws ``n_net`` networks (L = 1:
``two_layer``, eq. (1); L ≥ 2: ``mlp`` with equal widths, NN-DEF scaling, the hidden-layer
variance the paper leaves unstated) and ``n_x`` inputs per network on the sphere of radius
√d, and runs :func:`jaxadv.attacks.one_step` with |η| < 20. It records per pair whether the
sign switched, the smallest η and ‖∇f(x)‖.

Beside the ReLU nets with a Rademacher readout, three variants at L = 1 (``variants``):
a Gaussian readout (footnote 2: "qualitatively similar"), smooth activations (softplus and
tanh, Theorem 1), and the input-independent universal direction Σ_ℓ a_ℓ w_ℓ (§1.1), taken
as a unit vector so that |η| is the step's length.

Grids (the paper does not state its d and k grids; powers of ten and their halves):

* quick: d = k ∈ {10, 30, 100, 300}, L ∈ {1, 2, 4}, 10 networks × 20 inputs; variants at
  d = k ∈ {10, 100, 300};
* paper: d ∈ {10, 50, 100, 500, 1000, 5000, 10000} and k ∈ the same plus {5·10⁴, 10⁵},
  L ∈ {1, …, 6}, 100 × 100, every (d, k, L) whose float32 weights fit 8 GiB (all of them at
  L = 1; k ≤ 10⁴ at L = 6); variants at every d with k = d. Beyond them, the cell the paper
  could not reach ("due to GPU memory limitations, k could not reach 1,000,000 for deeper
  networks"): k = 10⁶, L = 6, d = 1000, 100 inputs, one network (``matrix_free_cells``,
  entries ``[L, d, k, n_net]``, named ``L=6,d=1000,k=1000000,matrix_free``). Its dense
  weights would be 20 TB; its networks are ``mlp(..., weights="matrix_free")`` (every hidden
  W drawn tile by tile on each use, see :mod:`jaxadv.nets.matrix_free`: the same law as the
  dense cells, a different draw), so it needs compute, not memory: ≈ 5·10¹² normals per
  pass through the network. The store's log records the cell's time; 100 networks take
  100× that (networks are independent and run one block after another). The figure marks
  these cells; the claims are those of the main grid.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from jaxadv import attacks, data, nets
from jaxadv.experiments._blocks import net_block
from jaxadv.experiments._spec import Experiment, cell_key
from jaxadv.experiments.claims import Claim

VARIANTS = ("gaussian-readout", "softplus", "tanh", "universal")
SCALES = {
    "quick": {"dims": [10, 30, 100, 300], "depths": [1, 2, 4], "n_net": 10, "n_x": 20, "eta_max": 20.0,
              "variants": list(VARIANTS), "variant_dims": [10, 100, 300]},
    "paper": {"dims": [10, 50, 100, 500, 1000, 5000, 10000], "depths": [1, 2, 3, 4, 5, 6], "n_net": 100, "n_x": 100, "eta_max": 20.0,
              "widths": [10, 50, 100, 500, 1000, 5000, 10000, 50000, 100000], "max_net_bytes": 8 << 30,
              "variants": list(VARIANTS), "variant_dims": [10, 50, 100, 500, 1000, 5000, 10000],
              "matrix_free_cells": [[6, 1000, 1_000_000, 1]]},
}

# "Roughly constant in d and k" (Fig 2): the largest over the smallest per-cell mean, for
# L = 1. ‖∇f‖ has E‖∇f‖² = 1/2 exactly at every d (§1.2), so its means differ only by
# sampling noise; the smallest η ≈ |f|/‖∇f‖² is heavier-tailed, hence the wider bound.
GRAD_SPREAD_TOL = 1.25
ETA_SPREAD_TOL = 2.0
# The universal direction u = Σ a_ℓ w_ℓ / ‖·‖ has ⟨∇f(x), u⟩ → 1/2 (half the units active,
# ‖w_ℓ‖ ≈ 1) against ‖∇f‖ → 1/√2, so its step is √2 ≈ 1.41 times the gradient step's length
# at large d; twice the gradient step leaves room for the finite-d fluctuations.
UNIVERSAL_RATIO_TOL = 2.0
# "Qualitatively similar" (footnote 2) read as: at most 1 input in 100 left unswitched.
VARIANT_SWITCHED_MIN = 0.99


def _cell_name(d: int, depth: int, k: int | None = None) -> str:
    return f"L={depth},d={d}" if k is None else f"L={depth},d={d},k={k}"


def _grid(config) -> list[tuple[int, int, int, str]]:
    """The main cells as (L, d, k, name): k = d unless the scale sweeps ``widths`` too, and
    then only the (d, k, L) whose float32 weights fit ``max_net_bytes`` ("where memory allows")."""
    widths = config.get("widths")
    out = []
    for depth in config["depths"]:
        for d in config["dims"]:
            for k in ([d] if widths is None else widths):
                if widths is not None and 4 * (d * k + (depth - 1) * k * k + k) > config["max_net_bytes"]:
                    continue
                out.append((depth, d, k, _cell_name(d, depth, None if widths is None else k)))
    return out


def _variant_cell_name(variant: str, d: int) -> str:
    return f"{variant},d={d}"


def _matrix_free_cell_name(d: int, depth: int, k: int) -> str:
    return f"{_cell_name(d, depth, k)},matrix_free"


def _net(d: int, k: int, depth: int, variant: str | None = None, weights: str = "dense") -> nets.Network:
    # weights is explicit (never "auto") so that a cell's draw never depends on a threshold.
    if variant == "gaussian-readout":
        return nets.two_layer(d, k, readout="gaussian", weights=weights)
    if variant in ("softplus", "tanh"):
        return nets.two_layer(d, k, activation=variant, weights=weights)
    return nets.two_layer(d, k, weights=weights) if depth == 1 else nets.mlp(d, [k] * depth, weights=weights)


def _one_step_cell(config, name: str, d: int, k: int, depth: int, variant: str | None = None, *,
                   weights: str = "dense", n_net: int | None = None):
    key = cell_key(config["seed"], name)
    k_net, k_x = jax.random.split(key)
    net = _net(d, k, depth, variant, weights)
    n_net, n_x = config["n_net"] if n_net is None else n_net, config["n_x"]
    # Network j is net.init(split(k_net, n_net)[j]), as in kernels.init_many, however many
    # networks a block holds; blocks bound the memory of the paper's widest cells.
    net_keys = jax.random.split(k_net, n_net)
    n_params = sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(jax.eval_shape(net.init, net_keys[0])))
    block = net_block(n_net, 4 * n_params)
    xs_all = data.sphere(k_x, n_net * n_x, d).reshape(n_net, n_x, d)
    parts = []
    for start in range(0, n_net, block):
        params = _init_block(net, net_keys[start:start + block])
        xs = xs_all[start:start + block]
        directions = None
        if variant == "universal":
            u = attacks.universal_direction(net, params)
            u = u / jnp.linalg.norm(u, axis=-1, keepdims=True)
            directions = jnp.broadcast_to(u[:, None, :], xs.shape)
        res = attacks.one_step(net, params, xs, eta_max=config["eta_max"], directions=directions)
        parts.append({"success": res.success, "eta": res.eta, "grad_norm": res.grad_norm, "step_norm": res.distance})
    return {k: np.concatenate([np.asarray(p[k]) for p in parts]) for k in parts[0]}


@functools.partial(jax.jit, static_argnums=0)
def _init_block(net: nets.Network, keys: jax.Array):
    return jax.vmap(net.init)(keys)


def cells(config: Mapping[str, Any]):
    out = []
    for depth, d, k, name in _grid(config):
        out.append((name, lambda name=name, d=d, k=k, depth=depth: _one_step_cell(config, name, d, k, depth)))
    for v, d in [(v, d) for v in config.get("variants", []) for d in config.get("variant_dims", [])]:
        name = _variant_cell_name(v, d)
        out.append((name, lambda name=name, d=d, v=v: _one_step_cell(config, name, d, d, 1, v)))
    for depth, d, k, n_net in config.get("matrix_free_cells", []):
        name = _matrix_free_cell_name(d, depth, k)
        out.append((name, lambda name=name, d=d, k=k, depth=depth, n_net=n_net: _one_step_cell(
            config, name, d, k, depth, weights="matrix_free", n_net=n_net)))
    return out


def _summary(config, results):
    rows = []
    for depth, d, k, name in _grid(config):
        r = results[name]
        per_net = r["success"].mean(axis=1)
        eta = np.abs(r["eta"][r["success"]])
        rows.append({
            "L": depth, "d": d, "k": k, "name": name,
            "switched": float(r["success"].mean()), "switched_std": float(per_net.std()),
            "eta": float(eta.mean()) if eta.size else float("nan"),
            "grad_norm": float(r["grad_norm"].mean()),
        })
    return rows


def _variant_claims(config, results) -> list[Claim]:
    big = [d for d in config.get("variant_dims", []) if d > 50]
    if not config.get("variants") or not big:
        return []
    worst = {v: min(float(results[_variant_cell_name(v, d)]["success"].mean()) for d in big) for v in config["variants"]}
    out = [Claim("bubeck2021/variants-switched",
                 f"With d = k > 50, one step with |η| < 20 switches at least {VARIANT_SWITCHED_MIN:.0%} of inputs for each variant "
                 "(Gaussian readout, smooth activations, universal direction).",
                 "qualitatively similar (footnote 2, Theorem 1, §1.1)", [f"{v}: {w:.3f}" for v, w in worst.items()],
                 all(w >= VARIANT_SWITCHED_MIN for w in worst.values()))]
    diagonal = {d: name for depth, d, k, name in _grid(config) if depth == 1 and k == d}  # the gradient step at k = d
    same = [d for d in big if d in diagonal] if "universal" in config["variants"] else []
    if same:
        def median_step(r):
            s = r["step_norm"][r["success"]]
            return float(np.median(s)) if s.size else float("inf")

        steps = [(median_step(results[_variant_cell_name("universal", d)]), median_step(results[diagonal[d]])) for d in same]
        # A cell where either step never switched has no finite ratio: that is a failure, not a small ratio.
        ratio = max(u / g if math.isfinite(u) and math.isfinite(g) else float("inf") for u, g in steps)
        out.append(Claim("bubeck2021/universal-step-length",
                         f"Along the universal direction Σ a_ℓ w_ℓ the median switching step is at most {UNIVERSAL_RATIO_TOL}× "
                         "the gradient step's (d = k > 50, largest ratio over d).",
                         "√2 ≈ 1.41 as d → ∞", ratio, ratio <= UNIVERSAL_RATIO_TOL))
    return out


def claims(config, results) -> list[Claim]:
    rows = _summary(config, results)
    one = [r for r in rows if r["L"] == 1]
    big = [r for r in one if r["d"] > 50 and r["k"] > 50]
    all_switched = min(r["switched"] for r in big) if big else float("nan")
    g = [r["grad_norm"] for r in one]
    e = [r["eta"] for r in one if np.isfinite(r["eta"])]
    grad_spread = max(g) / min(g)
    eta_spread = max(e) / min(e) if e else float("nan")
    first_full = {}
    for depth in config["depths"]:
        full = [r["d"] for r in rows if r["L"] == depth and r["k"] == r["d"] and r["switched"] == 1.0]
        first_full[depth] = min(full) if full else float("inf")
    order = [first_full[L] for L in config["depths"]]
    return [
        Claim("bubeck2021/L1-all-switched", "With L = 1 and d, k > 50, one gradient step with |η| < 20 switches 100% of inputs.",
              "100%", all_switched, bool(big) and all_switched == 1.0),
        Claim("bubeck2021/grad-norm-constant", f"Mean ‖∇f(x)‖ is roughly constant in d and k for L = 1 (largest/smallest cell mean ≤ {GRAD_SPREAD_TOL}).",
              "≈ constant (E‖∇f‖² = 1/2)", grad_spread, grad_spread <= GRAD_SPREAD_TOL),
        Claim("bubeck2021/eta-constant", f"The mean smallest |η| is roughly constant in d and k for L = 1 (largest/smallest cell mean ≤ {ETA_SPREAD_TOL}).",
              "≈ constant", eta_spread, bool(e) and eta_spread <= ETA_SPREAD_TOL),
        Claim("bubeck2021/threshold-grows-with-L",
              "The smallest d = k with 100% switched is reached within the grid for the shallowest L, never decreases with L, "
              "and is larger for the deepest L than for the shallowest (∞: not reached within the grid).",
              "grows with L", [f"L={L}: d={first_full[L]}" for L in config["depths"]],
              bool(order) and math.isfinite(order[0]) and all(a <= b for a, b in zip(order, order[1:])) and order[0] < order[-1]),
    ] + _variant_claims(config, results)


def figures(config, results, directory) -> list[str]:
    import os

    from matplotlib.figure import Figure  # no pyplot: no global backend or figure state

    rows = _summary(config, results)
    variants = config.get("variants", [])
    fig = Figure(figsize=(17 if variants else 13, 3.6))
    axes = fig.subplots(1, 4 if variants else 3)
    # One curve per L (k = d), or per (L, k) when the scale sweeps widths, as in the paper's Fig 1.
    curves = sorted({(r["L"], None if config.get("widths") is None else r["k"]) for r in rows}, key=lambda c: (c[0], c[1] or 0))
    for depth, k in curves:
        rs = [r for r in rows if r["L"] == depth and (k is None or r["k"] == k)]
        label = f"L = {depth}" if k is None else f"L = {depth}, k = {k}"
        ds = [r["d"] for r in rs]
        m = np.array([r["switched"] for r in rs])
        s = np.array([r["switched_std"] for r in rs])
        axes[0].plot(ds, m, marker="o", label=label)
        axes[0].fill_between(ds, m - s, np.minimum(m + s, 1), alpha=0.2)
        axes[1].plot(ds, [r["eta"] for r in rs], marker="o", label=label)
        axes[2].plot(ds, [r["grad_norm"] for r in rs], marker="o", label=label)
    for depth, d, k, _ in config.get("matrix_free_cells", []):
        r = results[_matrix_free_cell_name(d, depth, k)]
        axes[0].plot([d], [r["success"].mean()], marker="*", markersize=12, linestyle="none",
                     label=f"L = {depth}, k = {k:.0e} (matrix-free)")
    for v in variants:
        ds = config["variant_dims"]
        axes[3].plot(ds, [results[_variant_cell_name(v, d)]["success"].mean() for d in ds], marker="o", label=v)
    for ax, title in zip(axes, ["fraction switched (Fig 1)", "mean smallest |η| (Fig 2a)", "mean ‖∇f(x)‖ (Fig 2b)",
                                "L = 1 variants: fraction switched"]):
        ax.set_xscale("log")
        ax.set_xlabel("input dimension d")
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
