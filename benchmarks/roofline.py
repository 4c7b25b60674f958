"""The machine's own ceilings, measured in the same run as the kernels they bound.

    python -m benchmarks.roofline [--quick] [--out FILE]

* Matrix-multiply rate: ``jnp.dot`` in float32 at a large square (2048³ with ``--quick``,
  4096³ otherwise), in FLOP/s (2·m·k·n per product).
* The same at the workload's skinny shapes: for an MLP cell (d, k, L) with ``n_x`` inputs per
  network and ``n_net`` networks, every layer's batched product (n_net, n_x, fan_in) ×
  (n_net, fan_out, fan_in)ᵀ as the vmapped forward pass issues it, and its transpose
  (n_net, n_x, fan_out) × (n_net, fan_out, fan_in) as the input-gradient pass issues it; each
  also as one network's 2-D product, and the faster of the two counts. The cell's rate is the
  total FLOPs of those products over their total time.
* Memory bandwidth: ``x * a + y`` on float32 arrays (256 MB each, 64 MB with ``--quick``):
  bytes moved (two reads and one write) per second.

Precision is ``"highest"``, as in ``jaxadv.nets.mlp``'s default, so the kernels are compared
with products of the same accuracy (on CPU it is the only float32 path anyway).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import _harness

HIGHEST = jax.lax.Precision.HIGHEST

QUICK = dict(square=2048, bandwidth_bytes=64 * 2**20, repeats=3)
FULL = dict(square=4096, bandwidth_bytes=256 * 2**20, repeats=5)


def _uniform(rng: np.random.Generator, shape: tuple[int, ...]) -> jax.Array:
    # Uniform from NumPy: the values only need to be ordinary floats, and a jitted draw would
    # compile once per shape.
    return jax.block_until_ready(jnp.asarray(rng.random(shape, dtype=np.float32) - 0.5))


@jax.jit
def _dot(a: jax.Array, b: jax.Array) -> jax.Array:
    return jnp.dot(a, b, precision=HIGHEST)


@jax.jit
def _forward_product(h: jax.Array, w: jax.Array) -> jax.Array:
    # h: (n_net, n_x, fan_in), w: (n_net, fan_out, fan_in), as vmap(vmap(W @ h)) lays it out.
    return jnp.einsum("nxi,noi->nxo", h, w, precision=HIGHEST)


@jax.jit
def _backward_product(g: jax.Array, w: jax.Array) -> jax.Array:
    # g: (n_net, n_x, fan_out): the input-gradient pass multiplies by Wᵀ.
    return jnp.einsum("nxo,noi->nxi", g, w, precision=HIGHEST)


@jax.jit
def _axpy(x: jax.Array, a: jax.Array, y: jax.Array) -> jax.Array:
    return x * a + y


def square_rate(n: int, *, repeats: int, seed: int = 0) -> dict[str, Any]:
    """FLOP/s of an (n × n) @ (n × n) float32 product."""
    rng = np.random.default_rng(seed)
    a, b = _uniform(rng, (n, n)), _uniform(rng, (n, n))
    out = _harness.rates(_harness.timeit(lambda: _dot(a, b), repeats=repeats), 2.0 * n**3, "flops")
    out["shape"] = [n, n, n]
    return out


def bandwidth(n_bytes: int, *, repeats: int) -> dict[str, Any]:
    """Bytes per second of ``x * a + y`` over float32 arrays of ``n_bytes`` each."""
    n = max(n_bytes // 4, 1)
    x = jnp.ones((n,), jnp.float32)
    y = jnp.full((n,), 2.0, jnp.float32)
    a = jnp.float32(0.5)
    out = _harness.rates(_harness.timeit(lambda: _axpy(x, a, y), repeats=repeats), 3.0 * 4 * n, "bytes")
    out["array_bytes"] = 4 * n
    return out


def layer_shapes(d: int, k: int, depth: int) -> list[tuple[int, int]]:
    """(fan_in, fan_out) of the hidden layers of ``mlp(d, [k] * depth)`` (the readout is a
    matrix-vector product, not a matrix product, and is left out of the roofline)."""
    return [(d, k)] + [(k, k)] * (depth - 1)


def cell_rate(d: int, k: int, depth: int, *, n_net: int, n_x: int, repeats: int, seed: int = 0) -> dict[str, Any]:
    """The matrix-multiply rate at the shapes a forward + input-gradient pass of the cell issues."""
    shapes = Counter(layer_shapes(d, k, depth))
    per_shape, total_flops, t_min, t_med, t_max, compile_s = [], 0.0, 0.0, 0.0, 0.0, 0.0
    rng = np.random.default_rng(seed)
    for (fan_in, fan_out), count in sorted(shapes.items()):
        h = _uniform(rng, (n_net, n_x, fan_in))
        w = _uniform(rng, (n_net, fan_out, fan_in))
        g = _uniform(rng, (n_net, n_x, fan_out))
        flops = 2.0 * n_net * n_x * fan_in * fan_out
        for name, fn, arg in (("forward", _forward_product, h), ("input_gradient", _backward_product, g)):
            r = _harness.rates(_harness.timeit(lambda fn=fn, arg=arg, w=w: fn(arg, w), repeats=repeats), flops, "flops")
            # One network's 2-D product, repeated n_net times in the count: XLA's CPU backend
            # runs some batched products slower than the same products one by one, and the
            # ceiling is the faster of the two ways to issue them.
            one = _harness.rates(
                _harness.timeit(lambda fn=fn, arg=arg, w=w: fn(arg[:1], w[:1]), repeats=repeats), flops / n_net, "flops")
            r["single_network_flops_per_s"] = one["flops_per_s"]
            if one["flops_per_s"]["median"] > r["flops_per_s"]["median"]:
                r["seconds"] = {q: v * n_net for q, v in one["seconds"].items()}
                r["flops_per_s"], r["issued"] = one["flops_per_s"], "one network at a time"
            else:
                r["issued"] = "batched over networks"
            r.update(product=name, batch=n_net, shape=[n_x, fan_in, fan_out], layers=count)
            per_shape.append(r)
            total_flops += count * flops
            t_min += count * r["seconds"]["min"]
            t_med += count * r["seconds"]["median"]
            t_max += count * r["seconds"]["max"]
            compile_s += r["compile_s"]
        del h, w, g
    return {
        "cell": [d, k, depth],
        "n_net": n_net,
        "n_x": n_x,
        "flops_per_s": {"min": total_flops / t_max, "median": total_flops / t_med, "max": total_flops / t_min},
        "compile_s": compile_s,
        "products": per_shape,
    }


def run(
    *,
    quick: bool,
    square: int | None = None,
    bandwidth_bytes: int | None = None,
    repeats: int | None = None,
    cells: Sequence[dict[str, int]] = (),
) -> dict[str, Any]:
    """Square matmul rate, memory bandwidth and (for each of ``cells``, dicts with d, k,
    depth, n_net, n_x) the rate at that cell's shapes; sizes override the scale's defaults."""
    scale = dict(QUICK if quick else FULL)
    if square is not None:
        scale["square"] = square
    if bandwidth_bytes is not None:
        scale["bandwidth_bytes"] = bandwidth_bytes
    if repeats is not None:
        scale["repeats"] = repeats
    return {
        "precision": "highest",
        "dtype": "float32",
        "square": square_rate(scale["square"], repeats=scale["repeats"]),
        "bandwidth": bandwidth(scale["bandwidth_bytes"], repeats=scale["repeats"]),
        "cells": [cell_rate(c["d"], c["k"], c["depth"], n_net=c["n_net"], n_x=c["n_x"], repeats=scale["repeats"]) for c in cells],
    }


def rows(res: dict[str, Any]) -> list[dict[str, Any]]:
    """Table rows: one per measured ceiling (GFLOP/s or GB/s, median and range)."""
    sq = res["square"]
    out = [
        {"what": f"matmul {'x'.join(map(str, sq['shape']))}", "median": sq["flops_per_s"]["median"] / 1e9,
         "min": sq["flops_per_s"]["min"] / 1e9, "max": sq["flops_per_s"]["max"] / 1e9, "unit": "GFLOP/s",
         "compile_s": sq["compile_s"]},
    ]
    bw = res["bandwidth"]
    out.append({"what": f"x*a+y {bw['array_bytes'] / 2**20:.0f} MiB", "median": bw["bytes_per_s"]["median"] / 1e9,
                "min": bw["bytes_per_s"]["min"] / 1e9, "max": bw["bytes_per_s"]["max"] / 1e9, "unit": "GB/s",
                "compile_s": bw["compile_s"]})
    for c in res["cells"]:
        r = c["flops_per_s"]
        when = f" ({c['when']})" if c.get("when") else ""
        out.append({"what": f"matmul at cell {tuple(c['cell'])} x{c['n_net']} nets{when}", "median": r["median"] / 1e9,
                    "min": r["min"] / 1e9, "max": r["max"] / 1e9, "unit": "GFLOP/s", "compile_s": c["compile_s"]})
    return out


COLUMNS = [
    ("what", "ceiling", ""),
    ("median", "median", ".1f"),
    ("min", "min", ".1f"),
    ("max", "max", ".1f"),
    ("unit", "unit", ""),
    ("compile_s", "compile s", ".2f"),
]


def main(argv: list[str] | None = None) -> int:
    from jaxadv.experiments import write_json

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller square and arrays")
    parser.add_argument("--out", default=None, help="JSON output (default benchmarks/results/roofline-<backend>.json)")
    args = parser.parse_args(argv)
    res = {"environment": _harness.environment(), "scale": "quick" if args.quick else "full",
           "roofline": run(quick=args.quick)}
    print(_harness.table(rows(res["roofline"]), COLUMNS))
    path = args.out or f"benchmarks/results/roofline-{jax.default_backend()}{'-quick' if args.quick else ''}.json"
    write_json(path, res)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
