"""Networks wider than memory: f, ∇ₓf and ``one_step`` through matrix-free layers.

    python -m benchmarks.wide [--width 100000] [--depth 2] [--d 1000] [--n-x 100]
                              [--n-net 1] [--impl threefry2x32] [--weights auto]
                              [--tile-rows N] [--repeats 0] [--out FILE]

Builds ``mlp(d, [width] * depth)`` (issue 7: width 10⁵ at depth 2, whose dense weights
are 4·10¹⁰ B = 40 GB; with ``weights="auto"`` the d × width first layer, 400 MB, stays
dense and the width × width layer is matrix-free), draws ``n_net`` networks and ``n_x``
inputs on the sphere of radius √d, and runs, in order and once each (each stage's wall time
includes its compilation, which is seconds against minutes of drawing):

1. ``init``: the parameters (keys, the dense first layer, the readout);
2. ``f``: :func:`jaxadv.kernels.forward`;
3. ``f_grad``: :func:`jaxadv.kernels.evaluate` (f and ∇ₓf);
4. ``one_step``: :func:`jaxadv.attacks.one_step` (Bubeck et al.'s one gradient step).

After each stage it records the process's peak resident memory so far, from
``resource.getrusage(RUSAGE_SELF).ru_maxrss`` and from ``VmHWM`` in ``/proc/self/status``
(the kernel's high-water mark of resident memory). ``--repeats N`` adds N timed calls of
``f`` and ``f_grad`` after the first (min/median/max). The JSON (default
``benchmarks/results/wide-<backend>.json``) is written atomically.

Every pass through a matrix-free layer draws its width × width normals again (10¹⁰ at the
default size), so the run takes minutes. Threefry keys (the default) draw them through the
unrolled hash of :mod:`jaxadv.nets._sampling`, faster on CPU than ``--impl philox4x32`` (a
different draw of the same law).
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import sys
import time
from typing import Any

import jax
import numpy as np

from benchmarks import _harness

RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def peak_memory() -> dict[str, int | None]:
    """Peak resident bytes of this process so far: ``ru_maxrss`` and ``/proc`` ``VmHWM``."""
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports ru_maxrss in KiB, macOS in bytes.
    maxrss_bytes = int(maxrss) if sys.platform == "darwin" else int(maxrss) * 1024
    hwm = None
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    hwm = int(line.split()[1]) * 1024  # "VmHWM:  123 kB"
    except OSError:
        pass
    return {"ru_maxrss_bytes": maxrss_bytes, "vmhwm_bytes": hwm}


def _stage(name: str, fn, stages: list[dict[str, Any]]) -> Any:
    t0 = time.perf_counter()
    out = _harness.block(fn())
    wall = time.perf_counter() - t0
    stages.append({"stage": name, "wall_s": wall, **peak_memory()})
    print(f"  {name:>10}: {wall:9.2f} s   peak RSS {stages[-1]['ru_maxrss_bytes'] / 2**30:6.2f} GiB", flush=True)
    return out


def run(*, width: int, depth: int, d: int, n_x: int, n_net: int, impl: str, weights: str,
        tile_rows: int | None, repeats: int, seed: int = 0) -> dict[str, Any]:
    from jaxadv import attacks, data, kernels, nets

    net = nets.mlp(d, [width] * depth, weights=weights, tile_rows=tile_rows)
    free = net.apply.free
    shapes = list(zip([width] * depth, [d] + [width] * (depth - 1)))
    dense_bytes = 4 * (sum(r * c for r, c in shapes) + width)
    stored_bytes = 4 * (sum(r * c for (r, c), f in zip(shapes, free) if f is None) + width)
    print(f"{net.name}: dense weights {dense_bytes / 1e9:.1f} GB, stored {stored_bytes / 1e9:.2f} GB; "
          f"{n_net} network(s) x {n_x} inputs, {impl} keys", flush=True)
    load_start = os.getloadavg()  # other jobs on a shared machine stretch every stage
    k_net, k_x = jax.random.split(jax.random.key(seed, impl=impl))
    stages: list[dict[str, Any]] = [{"stage": "start", "wall_s": 0.0, **peak_memory()}]
    params = _stage("init", lambda: kernels.init_many(net, k_net, n_net) if n_net > 1 else net.init(k_net), stages)
    xs = data.sphere(k_x, n_x, d)
    f = _stage("f", lambda: kernels.forward(net, params, xs), stages)
    ev = _stage("f_grad", lambda: kernels.evaluate(net, params, xs), stages)
    timed = {}
    if repeats > 0:
        for name, fn in [("f", lambda: kernels.forward(net, params, xs)), ("f_grad", lambda: kernels.evaluate(net, params, xs))]:
            t = _harness.timeit(fn, repeats=repeats)
            timed[name] = {k: v for k, v in t.items() if k != "result"}
    res = _stage("one_step", lambda: attacks.one_step(net, params, xs), stages)

    f, ev_f, grad = np.asarray(f), np.asarray(ev.f), np.asarray(ev.grad)
    success = np.asarray(res.success)
    dist = np.asarray(res.distance)[success]
    summary = {
        "f_abs_mean": float(np.mean(np.abs(f))),
        # forward and evaluate sum in different orders: float32 rounding apart.
        "f_forward_vs_evaluate_max_abs_diff": float(np.max(np.abs(f - ev_f))),
        "grad_norm_mean": float(np.mean(np.linalg.norm(grad, axis=-1))),
        "one_step_success_rate": float(np.mean(success)),
        "one_step_median_distance": float(np.median(dist)) if dist.size else math.inf,
        "one_step_median_distance_over_sqrt_d": float(np.median(dist) / math.sqrt(d)) if dist.size else math.inf,
    }
    for field in ("n_grad", "n_forward", "n_partial", "n_first_layer"):
        if hasattr(res, field):
            summary[f"one_step_mean_{field}"] = float(np.mean(np.asarray(getattr(res, field))))
    peak = max(s["ru_maxrss_bytes"] for s in stages)
    hwm = max((s["vmhwm_bytes"] or 0) for s in stages)
    return {
        "config": {"width": width, "depth": depth, "d": d, "n_x": n_x, "n_net": n_net, "impl": impl,
                   "weights": weights, "tile_rows": tile_rows, "seed": seed},
        "network": net.name,
        "matrix_free_layers": [f is not None for f in free],
        "tiles": [None if f is None else {"tile_rows": f.tile_size(), "n_tiles": f.n_tiles()} for f in free],
        "dense_weight_bytes": dense_bytes,
        "stored_weight_bytes_per_network": stored_bytes,
        "stages": stages,
        "repeated": timed,
        "summary": summary,
        "peak_ru_maxrss_bytes": peak,
        "peak_vmhwm_bytes": hwm,
        "environment": _harness.environment(),
        "load_average": {"start": list(load_start), "end": list(os.getloadavg())},
    }


def render(res: dict[str, Any]) -> str:
    rows = [{"stage": s["stage"], "wall_s": s["wall_s"], "rss": s["ru_maxrss_bytes"] / 2**30,
             "hwm": (s["vmhwm_bytes"] or 0) / 2**30} for s in res["stages"]]
    lines = [f"{res['network']} — dense weights {res['dense_weight_bytes'] / 1e9:.1f} GB", "",
             _harness.table(rows, [("stage", "stage", ""), ("wall_s", "wall s", ".2f"),
                                   ("rss", "peak ru_maxrss GiB", ".2f"), ("hwm", "peak VmHWM GiB", ".2f")]), ""]
    lines += [f"{k}: {v:.4g}" if isinstance(v, float) else f"{k}: {v}" for k, v in res["summary"].items()]
    lines.append(f"peak resident memory: {res['peak_ru_maxrss_bytes'] / 2**30:.2f} GiB (ru_maxrss), "
                 f"{res['peak_vmhwm_bytes'] / 2**30:.2f} GiB (VmHWM)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from jaxadv.experiments import write_json

    parser = argparse.ArgumentParser(prog="python -m benchmarks.wide", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=int, default=100_000, help="hidden width k (default 10^5)")
    parser.add_argument("--depth", type=int, default=2, help="hidden layers L (default 2)")
    parser.add_argument("--d", type=int, default=1000, help="input dimension (default 1000)")
    parser.add_argument("--n-x", type=int, default=100, help="inputs per network (default 100)")
    parser.add_argument("--n-net", type=int, default=1, help="networks (default 1)")
    parser.add_argument("--impl", default="threefry2x32", help="PRNG key implementation (default threefry2x32)")
    parser.add_argument("--weights", default="auto", choices=["auto", "dense", "matrix_free"], help="jaxadv.nets.mlp weights")
    parser.add_argument("--tile-rows", type=int, default=None, help="rows per drawn tile (default: ≤ 16 MiB tiles)")
    parser.add_argument("--repeats", type=int, default=0, help="extra timed calls of f and f_grad (default 0)")
    parser.add_argument("--out", default=None, help="JSON output (default benchmarks/results/wide-<backend>.json)")
    args = parser.parse_args(argv)
    res = run(width=args.width, depth=args.depth, d=args.d, n_x=args.n_x, n_net=args.n_net, impl=args.impl,
              weights=args.weights, tile_rows=args.tile_rows, repeats=args.repeats)
    print(render(res))
    path = args.out or os.path.join(RESULTS_DIR, f"wide-{jax.default_backend()}.json")
    write_json(path, res)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
