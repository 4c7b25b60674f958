"""Timing, metadata and output shared by the benchmarks.

Timings: one untimed call compiles (its wall time is reported separately as compile time),
then ``repeats`` timed calls each end with ``block_until_ready``; min/median/max are kept.
These machines are shared and noisy, so comparisons are made as ratios within one run.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Any, Callable

import jax


def block(tree: Any) -> Any:
    return jax.tree.map(lambda a: a.block_until_ready() if hasattr(a, "block_until_ready") else a, tree)


def timeit(fn: Callable[[], Any], *, repeats: int = 3) -> dict[str, Any]:
    """Compile time (first call) and min/median/max seconds of ``repeats`` further calls."""
    t0 = time.perf_counter()
    out = block(fn())
    compile_s = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = block(fn())
        times.append(time.perf_counter() - t0)
    return {
        "first_call_s": compile_s,
        "min_s": min(times),
        "median_s": statistics.median(times),
        "max_s": max(times),
        "repeats": repeats,
        "result": out,
    }


def environment() -> dict[str, Any]:
    from jaxadv._env import environment as env

    info = env()
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        info["torch"] = None
    info["cpu_count"] = os.cpu_count()
    return info


def table(rows: list[dict[str, Any]], columns: list[tuple[str, str, str]]) -> str:
    """Plain-text table; ``columns`` are (key, header, format)."""
    cells = [[h for _, h, _ in columns]]
    for r in rows:
        cells.append([("" if r.get(k) is None else format(r[k], f)) for k, _, f in columns])
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def seconds(timing: dict[str, Any]) -> dict[str, float]:
    """The min/median/max seconds of a timing from :func:`timeit`."""
    return {q: timing[f"{q}_s"] for q in ("min", "median", "max")}


def rates(timing: dict[str, Any], work: float, unit: str) -> dict[str, Any]:
    """A timing from :func:`timeit` as rates of ``work`` per second (min/median/max) plus
    the compile time (first call minus a median call), without the call's result."""
    return {
        f"{unit}_per_s": {
            "min": work / timing["max_s"],
            "median": work / timing["median_s"],
            "max": work / timing["min_s"],
        },
        "seconds": seconds(timing),
        "compile_s": max(timing["first_call_s"] - timing["median_s"], 0.0),
        "repeats": timing["repeats"],
    }


class LoadSampler:
    """Samples the 1-minute load average every ``period`` seconds in a background thread, so
    a run records how busy the machine was during each section, not only at its ends."""

    def __init__(self, period: float = 10.0) -> None:
        import threading

        self.period = period
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while True:
            self.samples.append((time.perf_counter(), os.getloadavg()[0]))
            if self._stop.wait(self.period):
                return

    def __enter__(self) -> "LoadSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self, t0: float, t1: float) -> dict[str, Any]:
        """Mean and max of the samples taken between ``t0`` and ``t1`` (perf_counter times),
        and of the last one before ``t0`` (a span shorter than the period may hold none)."""
        before = [v for t, v in self.samples if t < t0][-1:]
        xs = before + [v for t, v in self.samples if t0 <= t <= t1]
        return {"mean": statistics.fmean(xs) if xs else None, "max": max(xs) if xs else None, "n": len(xs)}
