"""Forward + input-gradient throughput of random MLPs, against the machine's own matmul rate.

    python -m benchmarks.kernels [--quick] [--out FILE] [--no-baselines]

For each cell (d, k, L) of ``mlp(d, [k] * L)`` with ``n_x`` = 100 inputs on the sphere per
network and ``n_net`` networks, ``jaxadv.kernels.evaluate`` is timed with the weights

* ``pregenerated``: drawn once by ``kernels.init_many`` before timing;
* ``generated``: the weights drawn inside every timed call (the regime of a sweep over fresh
  networks), for each key implementation, ``threefry2x32`` (JAX's default) and
  ``philox4x32`` (``jax.random.key(seed, impl="philox4x32")``, which a user passes to
  ``init_many`` like any key), two ways:

  - ``init_many;evaluate``: ``kernels.init_many`` then ``kernels.evaluate``, two jitted calls,
    as the README shows and the experiments do;
  - ``jit(init_many+evaluate)``: both inside one ``jax.jit``. XLA's CPU backend then splits
    the normal sampler into several passes over the weights (its weights feed two products,
    forward and input gradient, which read them through different reshapes), and the call
    is slower than the two calls; the row keeps that measured.

  Every variant draws the networks ``init_many`` draws from the same key (checked).
  ``draw_s``: the seconds ``init_many`` alone takes for the cell (and ``torch.randn`` for
  the same weights when torch is importable), so the share of a generated call spent drawing
  is known.

Throughput is (network, input) pairs per second. Achieved FLOP/s uses the count in
:func:`flops_per_pair`, and is reported as a fraction of the matrix-multiply rate measured in
the same run, at the cell's shapes and at a large square (see ``benchmarks/roofline.py``),
each measured just before and just after the cell and averaged (both are kept in the JSON).

When torch is importable, the same weights (converted from the JAX params) and inputs run
through the PyTorch baselines, and outputs and gradients are checked against jaxadv's:

* ``torch_loop``: as paper code is usually written, a Python loop over networks, each a
  module evaluated on the batch of inputs with ``x.requires_grad_()`` and
  ``f.sum().backward()``;
* ``torch_bmm``: all networks at once with ``torch.bmm`` and one backward pass;
* ``torch_vmap``: ``torch.func.vmap`` over networks and inputs of ``grad_and_value`` of one
  network on one input;
* ``torch_bmm+randn``, ``torch_vmap+randn``: the same with the weights drawn by
  ``torch.randn`` inside the timed call. The best batched PyTorch of a regime is the faster
  of bmm and vmap.
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


KEY_IMPLS = ("threefry2x32", "philox4x32")
WAYS = ("separate", "fused")  # two jitted calls, or one

PREGENERATED = "jaxadv.evaluate"


def generated_name(impl: str, way: str) -> str:
    """The row name of a generated-weights variant."""
    short = impl.removesuffix("2x32").removesuffix("4x32")
    if way == "separate":
        return f"jaxadv.init_many;evaluate({short})"
    if way == "fused":
        return f"jaxadv.jit(init_many+evaluate)({short})"
    raise ValueError(f"`way` must be one of {WAYS}, got {way!r}.")


def _separate(net: nets.Network, n_net: int, key: jax.Array, xs: jax.Array) -> kernels.Evaluation:
    return kernels.evaluate(net, kernels.init_many(net, key, n_net), xs)


@functools.partial(jax.jit, static_argnames=("net", "n_net"))
def _fused(net: nets.Network, n_net: int, key: jax.Array, xs: jax.Array) -> kernels.Evaluation:
    return kernels.evaluate(net, kernels.init_many(net, key, n_net), xs)


def agreement(f: np.ndarray, g: np.ndarray, f_ref: np.ndarray, g_ref: np.ndarray) -> dict[str, Any]:
    """Whether outputs ``f`` (n_net, n_x) and gradients ``g`` (n_net, n_x, d) are those of the
    reference up to float32 rounding.

    float32 sums in another order agree to a few ulps of the largest entries. A hidden unit
    whose pre-activation is within rounding of 0 can fall on the other side of the ReLU, which
    changes that pair's gradient by a few percent (seen once in 400 pairs at L = 4):
    gradients are compared pair by pair and up to 1% of pairs may differ.
    """
    f, g, f_ref, g_ref = (np.asarray(a, np.float64) for a in (f, g, f_ref, g_ref))
    rel = np.linalg.norm(g - g_ref, axis=-1) / np.maximum(np.linalg.norm(g_ref, axis=-1), 1e-30)
    differing = int(np.sum(rel > 1e-4))
    return {
        "max_abs_err_f": float(np.max(np.abs(f - f_ref))),
        "max_rel_err_grad": float(np.max(rel)),
        "grad_pairs_differing": differing,
        "outputs_match": bool(np.allclose(f, f_ref, rtol=1e-4, atol=1e-5 * np.max(np.abs(f_ref)))
                              and differing <= 0.01 * rel.size),
    }


def _same(a: kernels.Evaluation, b: kernels.Evaluation) -> bool:
    return agreement(a.f, a.grad, b.f, b.grad)["outputs_match"]


def _jaxadv_rows(net, params, keys: dict[str, jax.Array], xs, n_net: int, repeats: int, flops: float,
                 pairs: int) -> tuple[list[dict], Any]:
    """``keys``: one key per implementation to time (dict order); ``params`` were drawn from
    the first."""
    t_pre = _harness.timeit(lambda: kernels.evaluate(net, params, xs), repeats=repeats)
    ref = t_pre.pop("result")
    timed = [(PREGENERATED, "pregenerated", None, None, t_pre)]
    # Every generated variant must draw the networks init_many draws from the same key: the
    # pregenerated weights for the first key, and once more (untimed) for each other.
    first = next(iter(keys))
    refs = {impl: ref if impl == first else kernels.evaluate(net, kernels.init_many(net, keys[impl], n_net), xs)
            for impl in keys}
    draw_s = {}
    for impl, key in keys.items():
        draw_s[impl] = _harness.seconds(_harness.timeit(lambda key=key: kernels.init_many(net, key, n_net),
                                                        repeats=repeats))
        for way, fn in (("separate", _separate), ("fused", _fused)):
            t = _harness.timeit(lambda fn=fn, key=key: fn(net, n_net, key, xs), repeats=repeats)
            out = t.pop("result")
            timed.append((generated_name(impl, way), "generated", impl, way, t, _same(out, refs[impl])))
            del out
    rows = []
    for name, weights, impl, way, t, *same in timed:
        row = {"impl": name, "weights": weights, "key_impl": impl or first}
        if weights == "generated":
            row.update(way=way, matches_pregenerated=same[0])
        row.update(_harness.rates(t, pairs, "pairs"))
        row["flops_per_s"] = {q: v * flops for q, v in row["pairs_per_s"].items()}
        rows.append(row)
    return rows, ref, draw_s


def _torch_rows(params, xs, ref: kernels.Evaluation, depth: int, repeats: int, pairs: int,
                flops: float) -> tuple[list[dict], dict[str, float]]:
    """The baselines' rows, and the seconds ``torch.randn`` takes to draw the cell's weights."""
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

    def draw():
        # The same distribution as jaxadv.nets.mlp: N(0, 1/fan_in) weights, Gaussian readout.
        weights = [torch.randn(n_net, fans[i + 1], fans[i]) / math.sqrt(fans[i]) for i in range(len(Ws))]
        return weights, torch.randn(n_net, fans[-1]) / math.sqrt(fans[-1])

    def generated():
        return batched(*draw())

    def one(weights, readout, xi):  # one network, one input
        h = xi
        for W in weights:
            h = torch.relu(W @ h)
        return h @ readout

    # grad_and_value over inputs (in_dims None for the weights), then over networks.
    per_pair = torch.func.grad_and_value(one, argnums=2)
    per_net = torch.func.vmap(per_pair, in_dims=(None, None, 0))
    all_pairs = torch.func.vmap(per_net, in_dims=(0, 0, None))

    def vmapped(weights, readout):
        g, f = all_pairs(weights, readout, x)
        return f, g

    def vmapped_generated():
        weights, readout = draw()
        return vmapped(weights, readout)

    f_ref, g_ref = np.asarray(ref.f), np.asarray(ref.grad)
    rows = []
    for name, fn, weights in (
        ("torch_loop", loop, "pregenerated"),
        ("torch_bmm", lambda: batched(Ws, w_out), "pregenerated"),
        ("torch_vmap", lambda: vmapped(Ws, w_out), "pregenerated"),
        ("torch_bmm+randn", generated, "generated"),
        ("torch_vmap+randn", vmapped_generated, "generated"),
    ):
        t = _harness.timeit(fn, repeats=repeats)
        f, g = t.pop("result")
        row = {"impl": name, "weights": weights}
        row.update(_harness.rates(t, pairs, "pairs"))
        row["flops_per_s"] = {q: v * flops for q, v in row["pairs_per_s"].items()}
        if weights == "pregenerated":
            row.update(agreement(f.detach().numpy(), g.detach().numpy(), f_ref, g_ref))
        rows.append(row)
    return rows, _harness.seconds(_harness.timeit(draw, repeats=repeats))


def best_torch_batched(rows: list[dict[str, Any]], weights: str) -> dict[str, Any] | None:
    """The fastest batched PyTorch row (bmm or vmap) of a weights regime, or None."""
    cands = [r for r in rows if r["impl"].startswith("torch_") and r["impl"] != "torch_loop" and r["weights"] == weights]
    return max(cands, key=lambda r: r["pairs_per_s"]["median"], default=None)


def best_generated(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The fastest generated-weights jaxadv row."""
    cands = [r for r in rows if r["impl"].startswith("jaxadv") and r["weights"] == "generated"]
    return max(cands, key=lambda r: r["pairs_per_s"]["median"], default=None)


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
    key_impls: Sequence[str] = KEY_IMPLS,
) -> dict[str, Any]:
    """Times one cell; fractions of the roofline are filled in when rates are given. The
    generated variants use each of ``key_impls``; the pre-generated weights, the first."""
    d, k, depth, n_net = cell["d"], cell["k"], cell["depth"], cell["n_net"]
    net = nets.mlp(d, [k] * depth)
    key_x = jax.random.fold_in(jax.random.key(seed), d * 1_000_003 + k * 101 + depth)
    cell_seed = (seed * 1_000_033 + d * 1_000_003 + k * 101 + depth + 1) % 2**31
    keys = {impl: jax.random.key(cell_seed, impl=impl) for impl in key_impls}
    params = jax.block_until_ready(kernels.init_many(net, keys[key_impls[0]], n_net))
    xs = data.sphere(key_x, n_x, d)
    flops = flops_per_pair(d, k, depth)
    pairs = n_net * n_x
    rows, ref, draw_s = _jaxadv_rows(net, params, keys, xs, n_net, repeats, flops, pairs)
    if baselines and _torch_available():
        torch_rows, draw_s["torch.randn"] = _torch_rows(params, xs, ref, depth, repeats, pairs, flops)
        rows += torch_rows
    ratios = {}
    best = {w: best_torch_batched(rows, w) for w in ("pregenerated", "generated")}
    for row in rows:
        ref_row = best[row["weights"]]
        row["vs_best_torch_batched"] = (None if ref_row is None or not row["impl"].startswith("jaxadv")
                                        else row["pairs_per_s"]["median"] / ref_row["pairs_per_s"]["median"])
    by = {r["impl"]: r for r in rows}
    if "torch_loop" in by:
        ratios["pregenerated_vs_torch_loop"] = by[PREGENERATED]["pairs_per_s"]["median"] / by["torch_loop"]["pairs_per_s"]["median"]
    for w in ("pregenerated", "generated"):
        if best[w] is not None:
            ratios[f"best_torch_batched_{w}"] = best[w]["impl"]
    gen = best_generated(rows)
    if best["generated"] is not None and gen is not None:
        ratios["best_generated"] = gen["impl"]
        ratios["best_generated_vs_best_torch_batched_generated"] = gen["vs_best_torch_batched"]
    if "torch.randn" in draw_s:
        # How fast each side draws the same weights: generation bounds the generated regime.
        ratios.update({f"draw_{impl}_over_torch_randn": draw_s["torch.randn"]["median"] / draw_s[impl]["median"]
                       for impl in keys})
    if best["pregenerated"] is not None:
        ratios["pregenerated_vs_best_torch_batched"] = by[PREGENERATED]["vs_best_torch_batched"]
    out = {
        "network": net.name,
        "cell": [d, k, depth],
        "n_net": n_net,
        "n_x": n_x,
        "flops_per_pair": flops,
        "rows": rows,
        "draw_s": draw_s,
        "ratios_jaxadv_over_torch": ratios,
    }
    set_fractions(out, cell_flops_per_s=cell_flops_per_s, square_flops_per_s=square_flops_per_s)
    return out


def run(
    *,
    quick: bool,
    baselines: bool,
    cells: Sequence[dict[str, int]] | None = None,
    n_x: int = N_X,
    repeats: int | None = None,
    roofline_result: dict[str, Any] | None = None,
    seed: int = 0,
    key_impls: Sequence[str] = KEY_IMPLS,
) -> dict[str, Any]:
    """Every cell, with the matmul rates at its shapes and at the square of
    ``roofline_result`` (measured here too when not given) taken just before and just after it."""
    cells = list(QUICK_CELLS if quick else FULL_CELLS) if cells is None else list(cells)
    repeats = (QUICK if quick else FULL)["repeats"] if repeats is None else repeats
    if roofline_result is None:
        roofline_result = roofline.run(quick=quick, repeats=repeats)
    n_square = roofline_result["square"]["shape"][0]
    out: dict[str, Any] = {"n_x": n_x, "repeats": repeats, "torch": baselines and _torch_available(), "cells": []}
    for c in cells:
        # The ceilings are measured just before and just after the cell, and their mean is the
        # denominator: on a shared machine the load changes within minutes, and a ceiling taken
        # at another time would make the fraction a measure of the load, not of the kernel.
        before = _ceilings(c, n_x, n_square, repeats)
        res = run_cell(c, repeats=repeats, baselines=baselines, n_x=n_x, seed=seed, key_impls=key_impls)
        after = _ceilings(c, n_x, n_square, repeats)
        cell_rate = (before[0]["flops_per_s"]["median"] + after[0]["flops_per_s"]["median"]) / 2
        square = (before[1]["flops_per_s"]["median"] + after[1]["flops_per_s"]["median"]) / 2
        for when, (ceiling, sq) in (("before", before), ("after", after)):
            ceiling["when"] = when
            roofline_result.setdefault("cells", []).append(ceiling)
            res[f"square_matmul_{when}"] = sq
        res["cell_matmul_before_after_flops_per_s"] = [before[0]["flops_per_s"]["median"], after[0]["flops_per_s"]["median"]]
        res["square_matmul_before_after_flops_per_s"] = [before[1]["flops_per_s"]["median"], after[1]["flops_per_s"]["median"]]
        set_fractions(res, cell_flops_per_s=cell_rate, square_flops_per_s=square)
        out["cells"].append(res)
    return out


def _ceilings(c: dict[str, int], n_x: int, n_square: int, repeats: int) -> tuple[dict[str, Any], dict[str, Any]]:
    cell = roofline.cell_rate(c["d"], c["k"], c["depth"], n_net=c["n_net"], n_x=n_x, repeats=repeats)
    return cell, roofline.square_rate(n_square, repeats=repeats)


def set_fractions(res: dict[str, Any], *, cell_flops_per_s: float | None, square_flops_per_s: float | None) -> None:
    """Fills in each row's achieved FLOP/s as a fraction of the given matmul rates."""
    res["cell_matmul_flops_per_s"] = cell_flops_per_s
    res["square_matmul_flops_per_s"] = square_flops_per_s
    for row in res["rows"]:
        med = row["flops_per_s"]["median"]
        row["fraction_of_cell_matmul"] = None if not cell_flops_per_s else med / cell_flops_per_s
        row["fraction_of_square_matmul"] = None if not square_flops_per_s else med / square_flops_per_s


def rows(res: dict[str, Any]) -> list[dict[str, Any]]:
    """Flat table rows, one per (cell, implementation)."""
    out = []
    for cell in res["cells"]:
        for r in cell["rows"]:
            out.append({
                "cell": f"{tuple(cell['cell'])} x{cell['n_net']}",
                "impl": r["impl"],
                "pairs_per_s": r["pairs_per_s"]["median"],
                "range": f"{r['pairs_per_s']['min']:.0f}-{r['pairs_per_s']['max']:.0f}",
                "gflops": r["flops_per_s"]["median"] / 1e9,
                "frac_cell": r["fraction_of_cell_matmul"],
                "frac_square": r["fraction_of_square_matmul"],
                "compile_s": r["compile_s"],
                "vs_torch": r.get("vs_best_torch_batched"),
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
    ("vs_torch", "x best torch batched", ".2f"),
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
