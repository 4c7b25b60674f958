"""Memory estimates for batched kernels, and the chunk plan that keeps a batch within budget.

The estimate traces (never runs) the batched function at tiny batch sizes and adds up the
sizes of every value its jaxpr creates. That over-counts what is live at once (XLA frees and
fuses), so a plan made from it errs on the side of smaller chunks. Fitting
``bytes(n_net, n_x) ≈ c0 + n_net·c1 + n_net·n_x·c2`` from three traces separates what a
network costs (its parameters, weight-sized intermediates) from what each (network, input)
pair costs (activations, gradients). When even one network and one input exceed the budget,
the plan refuses (:class:`MemoryBudgetError`) before anything runs.
"""

from __future__ import annotations

import math
import os
from typing import Any, Callable, NamedTuple

import jax
import numpy as np


class MemoryBudgetError(MemoryError):
    """Raised before any compute when the smallest possible block does not fit the budget."""


class ChunkPlan(NamedTuple):
    """How a batch of (network, input) pairs is split, per device.

    Attributes:
      net_chunk: networks per vmapped block (``None``: all at once).
      x_chunk: inputs per vmapped block (``None``: all at once).
      estimated_bytes: estimated peak bytes of one block on one device (its inputs,
        intermediates and outputs); ``0`` when an explicit ``chunk_size`` skipped the estimate.
      budget: the bytes one block may use on one device (``None``: not checked).
      n_devices: devices the batch is split over.
      sharded_axis: ``"networks"``, ``"inputs"`` or ``None`` (one device).
    """

    net_chunk: int | None
    x_chunk: int | None
    estimated_bytes: int
    budget: int | None = None
    n_devices: int = 1
    sharded_axis: str | None = None


class CostModel(NamedTuple):
    """``bytes(nc, xc) = c0 + nc·c1 + nc·xc·c2`` for a block of ``nc`` networks × ``xc`` inputs."""

    c0: int
    c1: int
    c2: int

    def __call__(self, nc: int, xc: int) -> int:
        return self.c0 + nc * self.c1 + nc * xc * self.c2


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


def default_budget(device: Any = None) -> int:
    """Bytes a single batched call may use on ``device`` (default: the first local device):
    half an accelerator's memory, a quarter of host RAM."""
    device = jax.local_devices()[0] if device is None else device
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


def human(n: int) -> str:
    """``n`` bytes for people: ``"1.5 GiB (1610612736 bytes)"``."""
    value, unit = float(n), "B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024 or unit == "PiB":
            break
        value /= 1024
    return f"{value:.3g} {unit} ({int(n)} bytes)"


def fit(cost: Callable[[int, int], int], n_x: int) -> CostModel:
    """Fits :class:`CostModel` to three traced sizes: (1, 1), (1, 2) and (2, 1)."""
    b11, b12, b21 = cost(1, 1), cost(1, min(2, n_x) if n_x > 1 else 2), cost(2, 1)
    c2 = max(b12 - b11, 0)
    c1 = max(b21 - b11 - c2, 0)
    c0 = max(b11 - c1 - c2, 0)
    return CostModel(c0, c1, c2)


def _nothing_fits(model: CostModel, budget: int, param_bytes: int | None) -> MemoryBudgetError:
    smallest = model(1, 1)
    msg = (f"Even the smallest block, 1 network × 1 input, needs an estimated {human(smallest)} on one device, "
           f"over the memory budget of {human(budget)}: the largest feasible block is 0 pairs.")
    if param_bytes is not None and param_bytes > budget:
        msg += (f" The network's parameters alone take {human(param_bytes)}; draw its wide layers matrix-free "
                "(weights='matrix_free' on jaxadv.nets.mlp / two_layer) so they are never stored")
    else:
        msg += " Use a smaller network"
    return MemoryBudgetError(msg + f", or raise max_bytes to at least {smallest} if the device has that memory.")


def largest_pairs(model: CostModel, n_net: int | None, n_x: int, budget: int) -> int:
    """Most (network, input) pairs one block may hold within ``budget`` (whole networks'
    worth of inputs once one network's inputs all fit)."""
    xc = (budget - model.c0 - model.c1) // max(model.c2, 1)
    if xc < n_x or n_net is None:
        return int(max(0, min(xc, n_x)))
    nc = (budget - model.c0) // max(model.c1 + n_x * model.c2, 1)
    return int(min(nc, n_net) * n_x)


def plan(
    model: CostModel,
    n_net: int | None,
    n_x: int,
    max_bytes: int,
    *,
    param_bytes: int | None = None,
) -> ChunkPlan:
    """Chooses chunk sizes so that one block's estimated bytes stay under ``max_bytes``.

    Args:
      model: the block's bytes as a function of its size (see :func:`fit`).
      n_net: number of networks, or ``None`` for a single (unbatched) network.
      n_x: inputs per network.
      max_bytes: the budget.
      param_bytes: bytes of one network's parameters, named in the refusal when they alone
        exceed the budget.

    Raises:
      MemoryBudgetError: if a block of one network and one input does not fit.
    """
    nets = 1 if n_net is None else n_net
    if model(1, 1) > max_bytes:
        raise _nothing_fits(model, max_bytes, param_bytes)
    if model(nets, n_x) <= max_bytes:
        return ChunkPlan(None, None, model(nets, n_x), max_bytes)
    if n_net is not None and model(1, n_x) <= max_bytes:
        nc = max(1, min(nets, (max_bytes - model.c0) // max(model.c1 + n_x * model.c2, 1)))
        return ChunkPlan(int(nc), None, model(nc, n_x), max_bytes)
    xc = max(1, min(n_x, (max_bytes - model.c0 - model.c1) // max(model.c2, 1)))
    return ChunkPlan(1 if n_net is not None else None, int(xc), model(1, xc), max_bytes)


def check_chunk(
    model: CostModel,
    chunks: ChunkPlan,
    chunk_size: int,
    n_net: int | None,
    n_x: int,
    max_bytes: int | None,
    *,
    param_bytes: int | None = None,
) -> ChunkPlan:
    """Estimates an explicit chunking; refuses it when a block exceeds ``max_bytes`` (if given)."""
    nc = 1 if n_net is None else min(chunks.net_chunk or n_net, n_net)
    xc = chunks.x_chunk or n_x
    estimate = model(nc, xc)
    if max_bytes is not None and model(1, 1) > max_bytes:
        raise _nothing_fits(model, max_bytes, param_bytes)
    if max_bytes is not None and estimate > max_bytes:
        raise MemoryBudgetError(
            f"chunk_size={chunk_size} makes blocks of {nc} network(s) × {xc} input(s) that need an estimated "
            f"{human(estimate)} on one device, over the memory budget of {human(max_bytes)}; the largest chunk_size "
            f"that fits is {largest_pairs(model, n_net, n_x, max_bytes)} pairs (or leave chunk_size=None to plan "
            "automatically)."
        )
    return chunks._replace(estimated_bytes=estimate, budget=max_bytes)
