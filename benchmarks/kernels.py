"""Forward + input-gradient throughput of random MLPs, against the machine's own matmul rate.

    python -m benchmarks.kernels [--quick] [--out FILE] [--no-baselines]

For each cell (d, k, L) of ``mlp(d, [k] * L)`` with ``n_x`` = 100 inputs on the sphere per
network and ``n_net`` networks, ``jaxadv.kernels.evaluate`` is timed twice:

* ``pregenerated``: weights drawn once by ``kernels.init_many`` before timing;
* ``generated``: ``init_many`` + ``evaluate`` in one jitted function of the key, so drawing
  the weights is part of every timed call (the regime of a sweep over fresh networks).

Throughput is (network, input) pairs per second. Achieved FLOP/s uses the count in
:func:`flops_per_pair`, and is reported as a fraction of the matrix-multiply rate measured in
the same run, at the cell's shapes and at a large square (see ``benchmarks/roofline.py``).

When torch is importable, the same weights (converted from the JAX params) and inputs run
through two PyTorch baselines, and outputs and gradients are checked against jaxadv's:

* ``torch_loop``: as paper code is usually written, a Python loop over networks, each a
  module evaluated on the batch of inputs with ``x.requires_grad_()`` and
  ``f.sum().backward()``;
* ``torch_bmm``: all networks at once with ``torch.bmm`` and one backward pass; also timed
  with the weights drawn by ``torch.randn`` inside the timed call (``torch_bmm_generated``).
"""

from __future__ import annotations

import argparse
import functools
import math
import sys
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from benchmarks import _harness, roofline
from jaxadv import data, kernels, nets

N_X = 100

# n_net per cell chosen so one timed call takes about a second on a 2-core CPU.
FULL_CELLS = [
    dict(d=100, k=100, depth=1, n_net=1000),
    dict(d=1000, k=1000, depth=1, n_net=100),
    dict(d=1000, k=1000, depth=4, n_net=40),
    dict(d=1000, k=1000, depth=6, n_net=30),
    dict(d=1000, k=10000, depth=1, n_net=20),
]
QUICK_CELLS = [
    dict(d=100, k=100, depth=1, n_net=100),
    dict(d=1000, k=1000, depth=1, n_net=10),
    dict(d=1000, k=1000, depth=4, n_net=4),
]
QUICK = dict(repeats=3)
FULL = dict(repeats=5)


def flops_per_pair(d: int, k: int, depth: int) -> float:
    """FLOPs of f(x) and ∇ₓf(x) for one (network, input) pair of ``mlp(d, [k] * depth)``.

    Forward: 2·Σ fan_in·fan_out over the hidden layers and the readout (one multiply and one
    add per weight). The input gradient multiplies the backpropagated vector by each Wᵀ once,
    another 2·Σ fan_in·fan_out; no weight gradient is formed (only ∇ₓ is asked for), so the
    pair costs 2× the forward, not the 3× of a training step. ReLUs and masks are O(Σ fan_out)
    and not counted.
    """
    fans = [d] + [k] * depth + [1]
    forward = 2.0 * sum(a * b for a, b in zip(fans[:-1], fans[1:]))
    return 2.0 * forward


@functools.partial(jax.jit, static_argnames=("net", "n_net"))
def _generate_and_evaluate(net: nets.Network, n_net: int, key: jax.Array, xs: jax.Array) -> kernels.Evaluation:
    return kernels.evaluate(net, kernels.init_many(net, key, n_net), xs)


def _jaxadv_rows(net, params, key_p, xs, n_net: int, repeats: int, flops: float, pairs: int) -> tuple[list[dict], Any]:
    t_pre = _harness.timeit(lambda: kernels.evaluate(net, params, xs), repeats=repeats)
    ref = t_pre.pop("result")
    t_gen = _harness.timeit(lambda: _generate_and_evaluate(net, n_net, key_p, xs), repeats=repeats)
    gen = t_gen.pop("result")
    # The jitted generate-and-evaluate draws the same networks as init_many outside jit.
    same = bool(np.allclose(np.asarray(gen.f), np.asarray(ref.f), rtol=1e-5, atol=1e-6))
    rows = []
    for name, t in (("jaxadv.evaluate", t_pre), ("jaxadv.evaluate+init", t_gen)):
        row = {"impl": name, "weights": "pregenerated" if t is t_pre else "generated"}
        row.update(_harness.rates(t, pairs, "pairs"))
        row["flops_per_s"] = {q: v * flops for q, v in row["pairs_per_s"].items()}
        rows.append(row)
    rows[1]["matches_pregenerated"] = same
    return rows, ref


def _torch_rows(params, xs, ref: kernels.Evaluation, depth: int, repeats: int, pairs: int, flops: float) -> list[dict]:
    import torch

    from benchmarks import _torch_baselines as tb

    n_net = jax.tree.leaves(params)[0].shape[0]
    params_np = jax.tree.map(np.asarray, params)
    x_np = np.asarray(xs, np.float32)
    x = torch.tensor(x_np)
    modules = [tb.torch_network("mlp", jax.tree.map(lambda a, j=j: a[j], params_np)) for j in range(n_net)]
    Ws = [torch.tensor(layer["W"]) for layer in params_np["hidden"]]  # (n_net, fan_out, fan_in)
    w_out = torch.tensor(params_np["readout"]["w"])  # (n_net, k)

    def loop():
        fs, gs = [], []
        for m in modules:
            xi = x.clone().requires_grad_()
            f = m(xi)
            f.sum().backward()
            fs.append(f.detach())
            gs.append(xi.grad)
        return torch.stack(fs), torch.stack(gs)

    def batched(weights, readout):
        xb = x.expand(n_net, *x.shape).clone().requires_grad_()
        h = xb
        for W in weights:
            h = torch.relu(torch.bmm(h, W.transpose(1, 2)))
        f = torch.bmm(h, readout.unsqueeze(-1)).squeeze(-1)
        f.sum().backward()
        return f.detach(), xb.grad

    d = x.shape[1]
    fans = [d] + [W.shape[1] for W in Ws]

    def generated():
        # The same distribution as jaxadv.nets.mlp: N(0, 1/fan_in) weights, Gaussian readout.
        weights = [torch.randn(n_net, fans[i + 1], fans[i]) / math.sqrt(fans[i]) for i in range(len(Ws))]
        return batched(weights, torch.randn(n_net, fans[-1]) / math.sqrt(fans[-1]))

    f_ref, g_ref = np.asarray(ref.f), np.asarray(ref.grad)
    rows = []
    for name, fn, weights in (
        ("torch_loop", loop, "pregenerated"),
        ("torch_bmm", lambda: batched(Ws, w_out), "pregenerated"),
        ("torch_bmm+randn", generated, "generated"),
    ):
        t = _harness.timeit(fn, repeats=repeats)
        f, g = t.pop("result")
        row = {"impl": name, "weights": weights}
        row.update(_harness.rates(t, pairs, "pairs"))
        row["flops_per_s"] = {q: v * flops for q, v in row["pairs_per_s"].items()}
        if weights == "pregenerated":
            f, g = f.numpy(), g.numpy()
            # float32 sums in another order agree to a few ulps of the largest entries. A hidden
            # unit whose pre-activation is within rounding of 0 can fall on the other side of the
            # ReLU, which changes that pair's gradient by a few percent (seen once in 400 pairs
            # at L = 4): gradients are compared pair by pair and up to 1% of pairs may differ.
            rel = np.linalg.norm(g - g_ref, axis=-1) / np.maximum(np.linalg.norm(g_ref, axis=-1), 1e-30)
            row["max_abs_err_f"] = float(np.max(np.abs(f - f_ref)))
            row["max_rel_err_grad"] = float(np.max(rel))
            row["grad_pairs_differing"] = int(np.sum(rel > 1e-4))
            row["outputs_match"] = bool(
                np.allclose(f, f_ref, rtol=1e-4, atol=1e-5 * np.max(np.abs(f_ref)))
                and row["grad_pairs_differing"] <= 0.01 * rel.size
            )
        rows.append(row)
    return rows


def _torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def run_cell(
    cell: dict[str, int],
    *,
    repeats: int,
    baselines: bool,
    n_x: int = N_X,
    square_flops_per_s: float | None = None,
    cell_flops_per_s: float | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Times one cell; fractions of the roofline are filled in when rates are given."""
    d, k, depth, n_net = cell["d"], cell["k"], cell["depth"], cell["n_net"]
    net = nets.mlp(d, [k] * depth)
    key_p, key_x = jax.random.split(jax.random.fold_in(jax.random.key(seed), d * 1_000_003 + k * 101 + depth))
    params = jax.block_until_ready(kernels.init_many(net, key_p, n_net))
    xs = data.sphere(key_x, n_x, d)
    flops = flops_per_pair(d, k, depth)
    pairs = n_net * n_x
    rows, ref = _jaxadv_rows(net, params, key_p, xs, n_net, repeats, flops, pairs)
    if baselines and _torch_available():
        rows += _torch_rows(params, xs, ref, depth, repeats, pairs, flops)
    for row in rows:
        med = row["flops_per_s"]["median"]
        row["fraction_of_cell_matmul"] = None if not cell_flops_per_s else med / cell_flops_per_s
        row["fraction_of_square_matmul"] = None if not square_flops_per_s else med / square_flops_per_s
    by = {r["impl"]: r["pairs_per_s"]["median"] for r in rows}
    ratios = {}
    if "torch_loop" in by:
        ratios["pregenerated_vs_torch_loop"] = by["jaxadv.evaluate"] / by["torch_loop"]
        ratios["pregenerated_vs_torch_bmm"] = by["jaxadv.evaluate"] / by["torch_bmm"]
        ratios["generated_vs_torch_bmm_generated"] = by["jaxadv.evaluate+init"] / by["torch_bmm+randn"]
    return {
        "network": net.name,
        "cell": [d, k, depth],
        "n_net": n_net,
        "n_x": n_x,
        "flops_per_pair": flops,
        "cell_matmul_flops_per_s": cell_flops_per_s,
        "square_matmul_flops_per_s": square_flops_per_s,
        "rows": rows,
        "ratios_jaxadv_over_torch": ratios,
    }


def run(
    *,
    quick: bool,
    baselines: bool,
    cells: Sequence[dict[str, int]] | None = None,
    n_x: int = N_X,
    repeats: int | None = None,
    roofline_result: dict[str, Any] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Every cell, with its matmul rate measured here and the square rate from
    ``roofline_result`` (measured here too when not given)."""
    cells = list(QUICK_CELLS if quick else FULL_CELLS) if cells is None else list(cells)
    repeats = (QUICK if quick else FULL)["repeats"] if repeats is None else repeats
    if roofline_result is None:
        roofline_result = roofline.run(quick=quick, repeats=repeats)
    square = roofline_result["square"]["flops_per_s"]["median"]
    out: dict[str, Any] = {"n_x": n_x, "repeats": repeats, "torch": baselines and _torch_available(), "cells": []}
    for c in cells:
        ceiling = roofline.cell_rate(c["d"], c["k"], c["depth"], n_net=c["n_net"], n_x=n_x, repeats=repeats)
        roofline_result.setdefault("cells", []).append(ceiling)
        out["cells"].append(run_cell(c, repeats=repeats, baselines=baselines, n_x=n_x, square_flops_per_s=square,
                                     cell_flops_per_s=ceiling["flops_per_s"]["median"], seed=seed))
    return out


def rows(res: dict[str, Any]) -> list[dict[str, Any]]:
    """Flat table rows, one per (cell, implementation)."""
    out = []
    for cell in res["cells"]:
        for r in cell["rows"]:
            ratio = None
            if r["impl"] == "jaxadv.evaluate":
                ratio = cell["ratios_jaxadv_over_torch"].get("pregenerated_vs_torch_bmm")
            elif r["impl"] == "jaxadv.evaluate+init":
                ratio = cell["ratios_jaxadv_over_torch"].get("generated_vs_torch_bmm_generated")
            out.append({
                "cell": f"{tuple(cell['cell'])} x{cell['n_net']}",
                "impl": r["impl"],
                "pairs_per_s": r["pairs_per_s"]["median"],
                "range": f"{r['pairs_per_s']['min']:.0f}-{r['pairs_per_s']['max']:.0f}",
                "gflops": r["flops_per_s"]["median"] / 1e9,
                "frac_cell": r["fraction_of_cell_matmul"],
                "frac_square": r["fraction_of_square_matmul"],
                "compile_s": r["compile_s"],
                "vs_torch_bmm": ratio,
                "match": r.get("outputs_match", r.get("matches_pregenerated")),
            })
    return out


COLUMNS = [
    ("cell", "(d, k, L) x nets", ""),
    ("impl", "implementation", ""),
    ("pairs_per_s", "pairs/s", ".0f"),
    ("range", "min-max", ""),
    ("gflops", "GFLOP/s", ".1f"),
    ("frac_cell", "of cell matmul", ".0%"),
    ("frac_square", "of square", ".0%"),
    ("compile_s", "compile s", ".2f"),
    ("vs_torch_bmm", "x torch bmm", ".2f"),
    ("match", "checked", ""),
]


def main(argv: list[str] | None = None) -> int:
    from jaxadv.experiments import write_json

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the first three cells, fewer networks")
    parser.add_argument("--out", default=None, help="JSON output (default benchmarks/results/kernels-<backend>.json)")
    parser.add_argument("--no-baselines", action="store_true", help="skip PyTorch")
    args = parser.parse_args(argv)
    roof = roofline.run(quick=args.quick)
    res = {"environment": _harness.environment(), "scale": "quick" if args.quick else "full", "roofline": roof}
    res["kernels"] = run(quick=args.quick, baselines=not args.no_baselines, roofline_result=roof)
    print(_harness.table(roofline.rows(roof), roofline.COLUMNS))
    print()
    print(_harness.table(rows(res["kernels"]), COLUMNS))
    path = args.out or f"benchmarks/results/kernels-{jax.default_backend()}{'-quick' if args.quick else ''}.json"
    write_json(path, res)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
