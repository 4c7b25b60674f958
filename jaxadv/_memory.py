"""Memory estimates for batched kernels, and the chunk plan that keeps a batch within budget.

The estimate traces (never runs) the batched function at tiny batch sizes and adds up the
sizes of every value its jaxpr creates. That over-counts what is live at once (XLA frees and
fuses), so a plan made from it errs on the side of smaller chunks. Fitting
``bytes(n_net, n_x) ≈ c0 + n_net·c1 + n_net·n_x·c2`` from three traces separates what a
network costs (its parameters, weight-sized intermediates) from what each (network, input)
pair costs (activations, gradients).
"""

from __future__ import annotations

import math
import os
from typing import Any, Callable, NamedTuple

import jax
import numpy as np


class ChunkPlan(NamedTuple):
    """How a batch of (network, input) pairs is split.

    Attributes:
      net_chunk: networks per vmapped block (``None``: all at once).
      x_chunk: inputs per vmapped block (``None``: all at once).
      estimated_bytes: estimated peak bytes of one block.
    """

    net_chunk: int | None
    x_chunk: int | None
    estimated_bytes: int


def _jaxpr_bytes(jaxpr: Any) -> int:
    total = 0
    for eqn in jaxpr.eqns:
        for v in eqn.outvars:
            aval = getattr(v, "aval", None)
            shape = getattr(aval, "shape", None)
            if shape is not None and hasattr(aval, "dtype"):
                try:
                    itemsize = np.dtype(aval.dtype).itemsize
                except TypeError:  # PRNG key types
                    itemsize = 8
                total += int(math.prod(shape)) * itemsize
        for p in eqn.params.values():
            for sub in p if isinstance(p, (tuple, list)) else (p,):
                inner = getattr(sub, "jaxpr", None)
                if inner is not None and hasattr(inner, "eqns"):
                    total += _jaxpr_bytes(inner)
                elif hasattr(sub, "eqns"):
                    total += _jaxpr_bytes(sub)
    return total


def traced_bytes(fn: Callable[..., Any], *abstract_args: Any) -> int:
    """Sum of the sizes of all values ``fn`` creates, from its jaxpr (no compute)."""
    return _jaxpr_bytes(jax.make_jaxpr(fn)(*abstract_args).jaxpr)


def default_budget() -> int:
    """Bytes a single batched call may use: half an accelerator's memory, a quarter of host RAM."""
    device = jax.local_devices()[0]
    stats = None
    try:
        stats = device.memory_stats()
    except Exception:  # noqa: BLE001 - not every backend reports memory
        stats = None
    if stats and stats.get("bytes_limit"):
        return int(stats["bytes_limit"]) // 2
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        ram = 8 << 30
    return int(ram) // 4


def plan(
    cost: Callable[[int, int], int],
    n_net: int | None,
    n_x: int,
    max_bytes: int,
) -> ChunkPlan:
    """Chooses chunk sizes so that one block's estimated bytes stay under ``max_bytes``.

    Args:
      cost: ``cost(n_net, n_x)`` estimated bytes of one vmapped block of that size.
      n_net: number of networks, or ``None`` for a single (unbatched) network.
      n_x: inputs per network.
      max_bytes: the budget.
    """
    nets = 1 if n_net is None else n_net
    b11, b12, b21 = cost(1, 1), cost(1, min(2, n_x) if n_x > 1 else 2), cost(2, 1)
    c2 = max(b12 - b11, 0)
    c1 = max(b21 - b11 - c2, 0)
    c0 = max(b11 - c1 - c2, 0)

    def est(nc: int, xc: int) -> int:
        return c0 + nc * c1 + nc * xc * c2

    if est(nets, n_x) <= max_bytes:
        return ChunkPlan(None, None, est(nets, n_x))
    if n_net is not None and est(1, n_x) <= max_bytes:
        nc = max(1, min(nets, (max_bytes - c0) // max(c1 + n_x * c2, 1)))
        return ChunkPlan(int(nc), None, est(nc, n_x))
    xc = max(1, min(n_x, (max_bytes - c0 - c1) // max(c2, 1)))
    return ChunkPlan(1 if n_net is not None else None, int(xc), est(1, xc))
