"""Attack quality and speed: jaxadv's attacks against the PyTorch libraries people use.

    python -m benchmarks.attacks [--quick] [--out FILE] [--no-baselines]

On random ``two_layer`` and ``mlp`` ReLU networks with inputs of norm √d, reports per attack
the median ℓ2 distance to the boundary found, the success rate, the median number of
gradient evaluations per sample and the throughput in (network, input) pairs per second.
When torch, Foolbox and torchattacks are installed (see README, "Benchmarks"), the same
networks, rebuilt in PyTorch with the same weights, go through Foolbox DDN and DeepFool and
torchattacks FAB, one network at a time as those libraries are used, and the run prints the
ratios (baseline / jaxadv min_norm) of median distance, gradient evaluations and time.

Per-pair distance ratios are taken only where both attacks succeeded; a ratio above 1 means
the baseline's perturbation was larger (worse). Each ``jaxadv.min_norm`` row also carries
the median over pairs of its distance over the best of Foolbox DDN and torchattacks FAB on
that pair (``pair_ratio_vs_best_baseline``; below 1: jaxadv's is smaller), which
``benchmarks/targets.py`` reports with the min_norm target.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import jax
import numpy as np

from benchmarks import _harness
from jaxadv import attacks, data, kernels, nets
from jaxadv.experiments import write_json

QUICK = dict(n_net=4, n_x=25, repeats=2)
FULL = dict(n_net=20, n_x=50, repeats=3)

CELLS = [
    ("two_layer", dict(d=100, k=100)),
    ("mlp", dict(d=100, widths=(100, 100, 100))),
]


def _net(family: str, cfg: dict) -> nets.Network:
    return nets.two_layer(cfg["d"], cfg["k"]) if family == "two_layer" else nets.mlp(cfg["d"], cfg["widths"])


def _summary(name: str, dist: np.ndarray, success: np.ndarray, n_grad: Any, seconds: float, pairs: int) -> dict:
    dist = np.asarray(dist, np.float64).ravel()
    success = np.asarray(success, bool).ravel()
    return {
        "attack": name,
        "success_rate": float(success.mean()),
        "median_distance": float(np.median(dist[success])) if success.any() else float("inf"),
        "median_n_grad": float(np.median(np.asarray(n_grad))),
        "pairs_per_s": pairs / seconds,
        "seconds": seconds,
    }


def _jaxadv_attacks(net, params, xs, repeats: int) -> tuple[list[dict], dict[str, np.ndarray]]:
    runs = {
        "jaxadv.min_norm(l2)": lambda: attacks.min_norm(net, params, xs, norm=2),
        "jaxadv.min_norm(l2, 10 grads)": lambda: attacks.min_norm(net, params, xs, norm=2, n_steps=10),
        "jaxadv.one_step": lambda: attacks.one_step(net, params, xs),
        "jaxadv.gradient_flow": lambda: attacks.gradient_flow(net, params, xs),
    }
    rows, dists = [], {}
    pairs = int(np.prod(np.asarray(kernels.forward(net, params, xs)).shape))
    for name, fn in runs.items():
        timing = _harness.timeit(fn, repeats=repeats)
        res = timing.pop("result")
        row = _summary(name, res.distance, res.success, res.n_grad, timing["median_s"], pairs)
        row["compile_s"] = timing["first_call_s"] - timing["median_s"]
        row["timing"] = timing
        rows.append(row)
        dists[name] = np.asarray(res.distance, np.float64)
    return rows, dists


def _baselines(family: str, params, xs, n_net: int) -> tuple[list[dict], dict[str, np.ndarray]]:
    from benchmarks import _torch_baselines as tb

    have = tb.available()
    names = [n for n, mod in (("foolbox_ddn", "foolbox"), ("foolbox_deepfool", "foolbox"), ("torchattacks_fab", "torchattacks")) if have.get(mod)]
    rows, dists = [], {}
    xs_np = np.asarray(xs)
    for name in names:
        per_net = [tb.run_baseline(name, family, jax.tree.map(lambda a: np.asarray(a[j]), params), xs_np) for j in range(n_net)]
        dist = np.stack([r["distance"] for r in per_net])
        succ = np.stack([r["success"] for r in per_net])
        seconds = sum(r["seconds"] for r in per_net)
        row = _summary(name, dist, succ, [r["n_grad_per_sample"] for r in per_net], seconds, dist.size)
        row["claimed_but_not_flipped"] = int(sum(np.sum(r["claimed_success"] & ~r["success"]) for r in per_net))
        rows.append(row)
        dists[name] = dist
    return rows, dists


def _pair_ratios(rows: list[dict], dists: dict[str, np.ndarray], b_dists: dict[str, np.ndarray]) -> None:
    """Adds to each jaxadv min_norm row the median over pairs of its distance over the best
    (smallest) distance Foolbox DDN or torchattacks FAB found on the same pair, over pairs
    where all of them succeeded, and the same against each of the two."""
    from benchmarks.targets import MIN_NORM_BASELINES

    have = [b for b in MIN_NORM_BASELINES if b in b_dists]
    for row in rows:
        if not row["attack"].startswith("jaxadv.min_norm") or not have:
            continue
        mine = dists[row["attack"]]
        best = np.min(np.stack([b_dists[b] for b in have]), axis=0)
        ok = np.isfinite(mine) & np.isfinite(best)
        row["pair_ratio_vs_best_baseline"] = float(np.median(mine[ok] / best[ok])) if ok.any() else None
        for b in have:
            ok_b = np.isfinite(mine) & np.isfinite(b_dists[b])
            row[f"pair_ratio_vs_{b}"] = float(np.median(mine[ok_b] / b_dists[b][ok_b])) if ok_b.any() else None


def run(*, quick: bool, baselines: bool, seed: int = 0) -> dict:
    scale = QUICK if quick else FULL
    out: dict[str, Any] = {"environment": _harness.environment(), "scale": "quick" if quick else "full", "cells": []}
    for family, cfg in CELLS:
        net = _net(family, cfg)
        key_p, key_x = jax.random.split(jax.random.fold_in(jax.random.key(seed), len(out["cells"])))
        params = kernels.init_many(net, key_p, scale["n_net"])
        xs = data.sphere(key_x, scale["n_x"], cfg["d"])
        rows, dists = _jaxadv_attacks(net, params, xs, scale["repeats"])
        if baselines:
            b_rows, b_dists = _baselines(family, params, xs, scale["n_net"])
            ref = dists["jaxadv.min_norm(l2)"]
            ref_row = rows[0]
            for row in b_rows:
                d_b = b_dists[row["attack"]]
                both = np.isfinite(d_b) & np.isfinite(ref)
                row["median_pair_ratio_vs_min_norm"] = float(np.median(d_b[both] / ref[both])) if both.any() else None
                row["grad_ratio_vs_min_norm"] = row["median_n_grad"] / max(ref_row["median_n_grad"], 1)
                row["time_ratio_vs_min_norm"] = ref_row["pairs_per_s"] / row["pairs_per_s"]
            _pair_ratios(rows, dists, b_dists)
            rows += b_rows
        out["cells"].append({"network": net.name, "n_net": scale["n_net"], "n_x": scale["n_x"], "rows": rows})
    return out


COLUMNS = [
    ("attack", "attack", ""),
    ("success_rate", "success", ".1%"),
    ("median_distance", "median l2", ".4f"),
    ("median_n_grad", "grads/sample", ".0f"),
    ("pairs_per_s", "pairs/s", ".1f"),
    ("median_pair_ratio_vs_min_norm", "dist ratio", ".3f"),
    ("grad_ratio_vs_min_norm", "grad ratio", ".2f"),
    ("time_ratio_vs_min_norm", "time ratio", ".1f"),
    ("pair_ratio_vs_best_baseline", "vs best DDN/FAB per pair", ".3f"),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small batch, for a smoke run")
    parser.add_argument("--out", default=None, help="JSON output (default benchmarks/results/attacks-<backend>.json)")
    parser.add_argument("--no-baselines", action="store_true", help="skip the PyTorch libraries")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    result = run(quick=args.quick, baselines=not args.no_baselines, seed=args.seed)
    for cell in result["cells"]:
        print(f"\n{cell['network']}  ({cell['n_net']} networks x {cell['n_x']} inputs)")
        print(_harness.table(cell["rows"], COLUMNS))
    print("\nratios are baseline / jaxadv.min_norm(l2): distance per pair (median over pairs both found), "
          "gradient evaluations per sample, and time per pair.")
    path = args.out or f"benchmarks/results/attacks-{jax.default_backend()}{'-quick' if args.quick else ''}.json"
    write_json(path, result)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
