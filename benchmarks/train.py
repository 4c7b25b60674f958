"""Margin-maximisation training: steps per second at the paper's largest cell, and steps
needed to reach a loss of 1e-30 with the paper's schedule vs Lyu & Li's loss-normalised one.

    python -m benchmarks.train [--quick] [--out FILE]

1. Throughput: Vardi et al. 2022 §6's largest cell, d = 1000, m = d^1.5 ≈ 31623, width
   1000, mini-batch 5000 (``--quick``: d = 300, m = 5196, batch 1000); the median seconds
   per step over timed chunks after a compiling one, and the achieved FLOP/s of the step
   (forward + backward of a depth-2 net ≈ 6·B·d·k flops).
2. Steps to 1e-30 on a small instance (d = m = 20, k = 50, 3 seeds): the paper's growing
   rate (1e-5, ×1.1 every 100 steps), and the loss-normalised rate lr/𝓛 (fixed and Lyu &
   Li's adaptive rule); the ratio of steps is printed.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import _harness
from jaxadv import kernels, nets, train
from jaxadv.experiments import write_json


def throughput(*, quick: bool) -> dict[str, Any]:
    d = 300 if quick else 1000
    m = int(round(d**1.5))
    k = 300 if quick else 1000
    batch = 1000 if quick else 5000
    chunk = 5
    net = nets.shallow(d, k)
    X, y = train.sphere_dataset(jax.random.key(0), m, d)
    p0 = net.init(jax.random.key(1))
    lr = train.growing_lr(1e-5)

    def run(n_steps: int):
        res = train.train_margin(net, jax.random.key(2), p0, X, y, lr=lr, max_steps=n_steps, batch_size=batch, chunk=chunk, target_loss=1e-300)
        return res.params

    t0 = time.perf_counter()
    _harness.block(run(chunk))  # compiles, and records the step-0 statistics
    first = time.perf_counter() - t0
    times = []
    for n in (chunk, 3 * chunk):
        t0 = time.perf_counter()
        _harness.block(run(n))
        times.append((n, time.perf_counter() - t0))
    # Two run lengths: the slope removes what does not scale with steps (history records,
    # dispatch) from the per-step time.
    (n1, t1), (n2, t2) = times
    per_step = max((t2 - t1) / (n2 - n1), 1e-12)
    flops = 6.0 * batch * d * k
    return {
        "cell": f"d={d}, m={m}, k={k}, batch={batch}",
        "steps_per_s": 1.0 / per_step,
        "seconds_per_step": per_step,
        "gflops_per_s": flops / per_step / 1e9,
        "first_call_s": first,
    }


def steps_to_target(*, quick: bool) -> list[dict[str, Any]]:
    d = m = 20
    k = 50
    n_seeds = 2 if quick else 3
    net = nets.shallow(d, k)
    params = kernels.init_many(net, jax.random.key(3), n_seeds)
    data = [train.sphere_dataset(jax.random.key(10 + s), m, d) for s in range(n_seeds)]
    X = jnp.stack([a for a, _ in data])
    y = jnp.stack([b for _, b in data])
    schedules = {
        "paper: 1e-5 x1.1/100 steps": (train.growing_lr(1e-5), 300_000, 2000),
        "loss-normalised lr/L (0.1)": (train.loss_normalised_lr(0.1, adaptive=False), 20_000, 20),
        "loss-normalised adaptive (Lyu & Li)": (train.loss_normalised_lr(0.1, adaptive=True), 20_000, 20),
    }
    rows = []
    for name, (lr, cap, chunk) in schedules.items():
        t0 = time.perf_counter()
        res = train.train_margin(net, jax.random.key(4), params, X, y, lr=lr, max_steps=cap, chunk=chunk)
        _harness.block(res.params)
        seconds = time.perf_counter() - t0
        reasons = res.reasons()
        steps = np.asarray(res.n_steps)
        reached = np.array([r == "target" for r in np.atleast_1d(reasons)])
        sp = train.shared_perturbation(net, res.params, X, y)
        rows.append(
            {
                "schedule": name,
                "reached": f"{int(reached.sum())}/{n_seeds}",
                "median_steps": float(np.median(steps[reached])) if reached.any() else float("nan"),
                "final_cos": float(np.median(np.asarray(res.history.cos)[:, -1])),
                "median_c": float(np.median(np.asarray(sp.c))),
                "sqrt_d": math.sqrt(d),
                "seconds": seconds,
            }
        )
    base = rows[0]["median_steps"]
    for r in rows:
        r["steps_ratio_vs_paper"] = r["median_steps"] / base if base == base else None
    return rows


STEPS_COLUMNS = [
    ("schedule", "schedule", ""),
    ("reached", "reached", ""),
    ("median_steps", "steps", ".0f"),
    ("steps_ratio_vs_paper", "ratio", ".4f"),
    ("final_cos", "cos(θ,-∇L)", ".3f"),
    ("median_c", "shared c", ".2f"),
    ("sqrt_d", "√d", ".2f"),
    ("seconds", "seconds", ".1f"),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    out = {"environment": _harness.environment(), "scale": "quick" if args.quick else "full"}
    out["throughput"] = throughput(quick=args.quick)
    t = out["throughput"]
    print(f"train_margin at {t['cell']}: {t['steps_per_s']:.2f} steps/s ({t['gflops_per_s']:.1f} GFLOP/s), first call {t['first_call_s']:.1f} s")
    out["steps_to_1e-30"] = steps_to_target(quick=args.quick)
    print("\nsteps to loss < 1e-30, d = m = 20, k = 50 (median over seeds that reached it)")
    print(_harness.table(out["steps_to_1e-30"], STEPS_COLUMNS))
    path = args.out or f"benchmarks/results/train-{jax.default_backend()}{'-quick' if args.quick else ''}.json"
    write_json(path, out)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
