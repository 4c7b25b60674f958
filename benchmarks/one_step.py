"""The one-step attack in units of one forward + input-gradient pass, on the papers' networks.

    python -m benchmarks.one_step [--quick] [--out FILE] [--no-old]

Target (issue 7): :func:`jaxadv.attacks.one_step` costs at most 3 forward+gradient
equivalents per (network, input) at L = 1 and at most 6 for deeper networks, at the
papers' accuracy, with the returned η verified at the precision used.

For each cell — ``two_layer(1000, 1000)`` (L = 1), ``mlp(1000, [1000] * 4)`` and
``mlp(1000, [1000] * 6)``, 100 inputs on the sphere per network (``--quick``: 5–10 networks
per cell instead of 50–100) —
the same run times, on the same batch and with the same vmapping (:func:`kernels.map_pairs`):

* ``kernels.evaluate`` (f and ∇ₓf: the unit), before and after the attacks (their mean is
  the denominator, so that drift of a shared machine shows in the JSON);
* ``kernels.forward``, the first layer alone (``apply.first_linear``) and the layers after
  it alone (``apply.after_first``), to price the attack's counted work;
* ``one_step`` itself, and the previous algorithm (16-point grid + bisection, a copy kept
  here) unless ``--no-old``.

Reported per algorithm: ``time ratio`` = one_step time / evaluate time (the wall-clock
equivalents; what the target is about), and the *counted* equivalents: n_grad +
n_forward·(t_forward/t_evaluate) + n_partial·(t_after_first/t_evaluate) +
n_first_layer·(t_first_linear/t_evaluate), with the counts of the median pair and with
the per-field maxima over the batch (under vmap every pair pays for the slowest one's
rounds). Accuracy: on 100 pairs (10 inputs of each of the first 10 networks; ``--quick``: 25),
|η| against a float64 reference computed independently (the float64 network with the same
weights: a 256-point geometric scan of the ray from η_lin/16 to eta_max, then 60 bisection
steps), as the median and maximum of | |η|/η_ref − 1 | over the pairs both found (pairs on a
ReLU kink, whose float32 and float64 gradients differ, are counted apart); the success rate
is over the whole batch.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import _harness
from jaxadv import attacks, data, kernels, nets
from jaxadv.attacks import _common
from jaxadv.attacks.line_search import first_crossing

N_X = 100
ETA_MAX = 20.0  # Bubeck et al. §4: |η| < 20
RTOL = 1e-4  # one_step's default
TARGET = {1: 3.0}  # forward+gradient equivalents; deeper nets: 6
TARGET_DEEP = 6.0

FULL_CELLS = [
    dict(family="two_layer", d=1000, k=1000, depth=1, n_net=100),
    dict(family="mlp", d=1000, k=1000, depth=4, n_net=50),
    dict(family="mlp", d=1000, k=1000, depth=6, n_net=50),
]
# The same shapes with fewer networks: a vmapped batch pays for its slowest pair, so fewer
# pairs can only flatter the ratio a little (the slowest of 10³ instead of 10⁴ pairs).
QUICK_CELLS = [
    dict(family="two_layer", d=1000, k=1000, depth=1, n_net=10),
    dict(family="mlp", d=1000, k=1000, depth=4, n_net=5),
    dict(family="mlp", d=1000, k=1000, depth=6, n_net=5),
]
FULL = dict(repeats=3, n_ref=100)
QUICK = dict(repeats=2, n_ref=25)


def _net(cell: dict[str, Any]) -> nets.Network:
    if cell["family"] == "two_layer":
        return nets.two_layer(cell["d"], cell["k"])
    return nets.mlp(cell["d"], [cell["k"]] * cell["depth"])


# ---------------------------------------------------------------------------------------
# the pieces whose times price the counts (per pair, batched by kernels.map_pairs)


@dataclasses.dataclass(frozen=True)
class _FirstLinear:
    apply: Callable

    def __call__(self, params, x):
        return self.apply.first_linear(params, x)


@dataclasses.dataclass(frozen=True)
class _AfterFirst:
    apply: Callable

    def __call__(self, params, x, z):
        return self.apply.after_first(params, z)


# ---------------------------------------------------------------------------------------
# the previous algorithm, kept for the comparison: a 16-point grid from η_lin/8 to 32·η_lin
# and eta_max, evaluated in one batched call, then bisection (≤ 30 steps) to rtol, then a
# forward pass to verify.


@dataclasses.dataclass(frozen=True)
class _GridOneStep:
    apply: Callable
    n_grid: int = 16
    n_bisect: int = 30

    def __call__(self, params, x, eta_max, rtol):
        dt = x.dtype
        eta_max, rtol = eta_max.astype(dt), rtol.astype(dt)
        f0, g = jax.value_and_grad(self.apply, argnums=1)(params, x)
        gu = jnp.vdot(g, g).astype(dt)
        sign = -jnp.sign(f0).astype(dt) * jnp.sign(gu)
        valid = sign != 0
        scale = jnp.abs(f0).astype(dt) / jnp.where(gu != 0, jnp.abs(gu), 1)
        taus = jnp.exp2(jnp.linspace(-3.0, 5.0, self.n_grid - 1, dtype=dt))
        grid = jnp.concatenate([jnp.minimum(scale * taus, eta_max), eta_max[None]])

        def pred(eta):
            return _common.flipped(f0, self.apply(params, x + (sign * eta) * g))

        eta, found, n = first_crossing(pred, grid, self.n_bisect, rtol)
        found = found & valid
        eta = jnp.where(found, eta, eta_max)
        f_adv = self.apply(params, x + (sign * eta) * g)
        success = found & _common.flipped(f0, f_adv)
        return {"eta": jnp.where(success, sign * eta, jnp.inf), "success": success, "n_forward": n + 1,
                "grad_norm": jnp.linalg.norm(g)}


def _old_one_step(net, params, xs):
    return kernels.map_pairs(_GridOneStep(net.apply), net, params, xs, shared=(jnp.asarray(ETA_MAX), jnp.asarray(RTOL)))


# ---------------------------------------------------------------------------------------
# the float64 reference


@dataclasses.dataclass(frozen=True)
class _Reference:
    apply: Callable
    n_scan: int = 256
    n_bisect: int = 60

    def __call__(self, params, x, eta_max):
        f0, g = jax.value_and_grad(self.apply, argnums=1)(params, x)
        sign = -jnp.sign(f0)
        t_lin = jnp.abs(f0) / jnp.vdot(g, g)
        lo = jnp.minimum(t_lin / 16, eta_max / 2)
        grid = jnp.exp(jnp.linspace(jnp.log(lo), jnp.log(eta_max), self.n_scan))

        def flipped(t):
            return _common.flipped(f0, self.apply(params, x + (sign * t) * g))

        fl = jax.vmap(flipped)(grid)
        j = jnp.argmax(fl)
        hi = grid[j]
        lo = jnp.where(j > 0, grid[jnp.maximum(j - 1, 0)], 0.0)

        def body(_, s):
            lo, hi = s
            mid = (lo + hi) / 2
            f = flipped(mid)
            return jnp.where(f, lo, mid), jnp.where(f, mid, hi)

        lo, hi = jax.lax.fori_loop(0, self.n_bisect, body, (lo, hi))
        return jnp.where(jnp.any(fl), hi, jnp.inf), jnp.linalg.norm(g)


def reference_eta(net: nets.Network, params: Any, xs: jax.Array, eta_max: float = ETA_MAX) -> tuple[np.ndarray, np.ndarray]:
    """|η| of the first sign change along x − sign f(x)·t·∇f(x), and ‖∇f(x)‖, the networks
    in float64 (``params`` and ``xs`` in any layout :func:`kernels.map_pairs` takes)."""
    with jax.enable_x64(True):
        p64 = jax.tree.map(lambda a: jnp.asarray(np.asarray(a), jnp.float64), params)
        x64 = jnp.asarray(np.asarray(xs), jnp.float64)
        eta, g_norm = kernels.map_pairs(_Reference(net.apply), net, p64, x64, shared=(jnp.asarray(eta_max, jnp.float64),))
        return np.asarray(eta), np.asarray(g_norm)


def _reference_subset(n_net: int, n_x: int, n_ref: int) -> tuple[int, int]:
    """``n_ref`` pairs spread over up to 10 networks (a network whose pairs mostly fail
    within eta_max would otherwise leave few to compare): the first ``m`` networks, each with
    its own ``n_ref // m`` consecutive inputs. Returns ``(m, per_net)``."""
    m = max(1, min(n_net, 10, n_ref))
    return m, max(1, min(n_ref // m, n_x // m))


def _accuracy(eta: np.ndarray, ref: np.ndarray, grad_norm: np.ndarray, ref_grad_norm: np.ndarray) -> dict[str, Any]:
    # A pair whose x sits on a ReLU kink (a pre-activation within rounding of 0) has two
    # gradients, and float32 and float64 may take different ones: the rays then differ and
    # so do their crossings (seen: 1 pair in 100 at L = 4, ‖∇f‖ 1.6% apart, η 2.2%). Such
    # pairs are told apart by ‖∇f‖ and counted, not compared: float32 alone agrees with
    # float64 on ‖∇f‖ to ~1e-6.
    smooth = np.abs(grad_norm / ref_grad_norm - 1) <= 1e-4
    both = np.isfinite(eta) & np.isfinite(ref) & smooth
    rel = np.abs(np.abs(eta[both]) / ref[both] - 1)
    return {
        "n_ref": int(ref.size),
        "n_on_a_kink": int(np.sum(~smooth)),
        "n_both_found": int(both.sum()),
        "n_found_differs": int(np.sum((np.isfinite(eta) != np.isfinite(ref)) & smooth)),
        "median_rel_err": float(np.median(rel)) if rel.size else None,
        "max_rel_err": float(np.max(rel)) if rel.size else None,
        "frac_within_rtol": float(np.mean(rel <= RTOL * (1 + 1e-3))) if rel.size else None,
    }


def _counts(res: Any, fields: tuple[str, ...]) -> dict[str, dict[str, float]]:
    out = {}
    for f in fields:
        a = np.asarray(getattr(res, f) if hasattr(res, f) else res[f])
        out[f] = {"median": float(np.median(a)), "max": float(np.max(a))}
    return out


def run_cell(cell: dict[str, Any], *, repeats: int, n_ref: int, old: bool = True, n_x: int = N_X, seed: int = 0) -> dict[str, Any]:
    """Times one cell and checks its accuracy; see the module docstring."""
    net = _net(cell)
    key_p, key_x = jax.random.split(jax.random.fold_in(jax.random.key(seed), cell["d"] * 101 + cell["depth"]))
    params = jax.block_until_ready(kernels.init_many(net, key_p, cell["n_net"]))
    xs = data.sphere(key_x, n_x, cell["d"])
    apply = net.apply

    def timed(fn):
        t = _harness.timeit(fn, repeats=repeats)
        return t.pop("result"), t

    _, t_eval_0 = timed(lambda: kernels.evaluate(net, params, xs))
    _, t_forward = timed(lambda: kernels.forward(net, params, xs))
    z, t_first = timed(lambda: kernels.map_pairs(_FirstLinear(apply), net, params, xs))
    _, t_after = timed(lambda: kernels.map_pairs(_AfterFirst(apply), net, params, xs, per_pair=(z,)))
    new, t_new = timed(lambda: attacks.one_step(net, params, xs, eta_max=ETA_MAX, rtol=RTOL))
    _, t_eval_1 = timed(lambda: kernels.evaluate(net, params, xs))
    t_eval = (t_eval_0["median_s"] + t_eval_1["median_s"]) / 2
    price = {
        "n_grad": 1.0,
        "n_forward": t_forward["median_s"] / t_eval,
        "n_partial": t_after["median_s"] / t_eval,
        "n_first_layer": t_first["median_s"] / t_eval,
    }

    def counted(counts: dict[str, dict[str, float]], q: str) -> float:
        return sum(price[f] * counts[f][q] for f in counts)

    m, per = _reference_subset(cell["n_net"], n_x, n_ref)
    ref_x = xs[: m * per].reshape(m, per, -1)  # network i: inputs i·per … (i + 1)·per − 1
    ref, ref_g = (a.ravel() for a in reference_eta(net, jax.tree.map(lambda a: a[:m], params), ref_x))
    ref_idx = (np.repeat(np.arange(m), per), np.arange(m * per))
    fields = ("n_grad", "n_forward", "n_partial", "n_first_layer")

    def algorithm(name, t, counts, res):
        return {
            "algorithm": name,
            "time_ratio": t["median_s"] / t_eval,
            "time_ratio_range": [t["min_s"] / t_eval, t["max_s"] / t_eval],
            "counted_median_pair": counted(counts, "median"),
            "counted_batch_max": counted(counts, "max"),
            "counts": counts,
            "success_rate": float(np.mean(np.asarray(res["success"]))),
            "accuracy": _accuracy(np.asarray(res["eta"])[ref_idx], ref, np.asarray(res["grad_norm"])[ref_idx], ref_g),
            "seconds": t,
        }

    algos = [algorithm("one_step", t_new, _counts(new, fields), new._asdict())]
    if old:
        res_old, t_old = timed(lambda: _old_one_step(net, params, xs))
        c_old = _counts(res_old, ("n_forward",))
        c_old["n_grad"] = {"median": 1.0, "max": 1.0}
        algos.append(algorithm("grid+bisection (previous)", t_old, c_old, res_old))
    target = TARGET.get(cell["depth"], TARGET_DEEP)
    return {
        "network": net.name,
        "cell": [cell["d"], cell["k"], cell["depth"]],
        "n_net": cell["n_net"],
        "n_x": n_x,
        "evaluate_s": {"before": t_eval_0, "after": t_eval_1},
        "price_in_evaluate_units": price,
        "piece_seconds": {"forward": t_forward, "first_linear": t_first, "after_first": t_after},
        "target_equivalents": target,
        "meets_target": algos[0]["time_ratio"] <= target and algos[0]["success_rate"] > 0,
        "algorithms": algos,
    }


def run(*, quick: bool, old: bool = True, cells: list[dict[str, Any]] | None = None, n_x: int = N_X,
        repeats: int | None = None, n_ref: int | None = None, seed: int = 0) -> dict[str, Any]:
    """Every cell (``QUICK_CELLS`` or ``FULL_CELLS`` unless given)."""
    scale = QUICK if quick else FULL
    cells = list(QUICK_CELLS if quick else FULL_CELLS) if cells is None else list(cells)
    repeats = scale["repeats"] if repeats is None else repeats
    n_ref = min(scale["n_ref"] if n_ref is None else n_ref, n_x)
    out: dict[str, Any] = {"n_x": n_x, "repeats": repeats, "eta_max": ETA_MAX, "rtol": RTOL, "cells": []}
    for c in cells:
        out["cells"].append(run_cell(c, repeats=repeats, n_ref=n_ref, old=old, n_x=n_x, seed=seed))
    return out


def rows(res: dict[str, Any]) -> list[dict[str, Any]]:
    """Flat table rows, one per (cell, algorithm)."""
    out = []
    for cell in res["cells"]:
        for a in cell["algorithms"]:
            acc, counts = a["accuracy"], a["counts"]
            partial = counts.get("n_partial")
            out.append({
                "cell": f"{tuple(cell['cell'])} x{cell['n_net']}",
                "algorithm": a["algorithm"],
                "time_ratio": a["time_ratio"],
                "target": cell["target_equivalents"] if a["algorithm"] == "one_step" else None,
                "counted_median": a["counted_median_pair"],
                "counted_max": a["counted_batch_max"],
                "forward": f"{counts['n_forward']['median']:.0f}/{counts['n_forward']['max']:.0f}",
                "partial": None if partial is None else f"{partial['median']:.0f}/{partial['max']:.0f}",
                "success": a["success_rate"],
                "median_rel_err": acc["median_rel_err"],
                "max_rel_err": acc["max_rel_err"],
                "compile_s": max(a["seconds"]["first_call_s"] - a["seconds"]["median_s"], 0.0),
            })
    return out


COLUMNS = [
    ("cell", "(d, k, L) x nets", ""),
    ("algorithm", "algorithm", ""),
    ("time_ratio", "time / evaluate", ".2f"),
    ("target", "target", ".0f"),
    ("counted_median", "counted (median pair)", ".2f"),
    ("counted_max", "counted (batch max)", ".2f"),
    ("forward", "forward med/max", ""),
    ("partial", "after-first med/max", ""),
    ("success", "success", ".1%"),
    ("median_rel_err", "median |η| rel err", ".1e"),
    ("max_rel_err", "max rel err", ".1e"),
    ("compile_s", "compile s", ".1f"),
]


def main(argv: list[str] | None = None) -> int:
    from jaxadv.experiments import write_json

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer networks per cell")
    parser.add_argument("--out", default=None, help="JSON output (default benchmarks/results/one_step-<backend>.json)")
    parser.add_argument("--no-old", action="store_true", help="skip the previous algorithm")
    args = parser.parse_args(argv)
    res = {"environment": _harness.environment(), "scale": "quick" if args.quick else "full"}
    res["one_step"] = run(quick=args.quick, old=not args.no_old)
    print(f"one_step vs kernels.evaluate on the same batch, {res['one_step']['n_x']} inputs per network "
          f"(median of {res['one_step']['repeats']}; rel err against a float64 reference)")
    print(_harness.table(rows(res["one_step"]), COLUMNS))
    path = args.out or f"benchmarks/results/one_step-{jax.default_backend()}{'-quick' if args.quick else ''}.json"
    write_json(path, res)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
