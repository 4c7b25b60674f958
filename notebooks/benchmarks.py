# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # jaxadv benchmarks: kernel and attack throughput against this machine's matmul roofline
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/jaxadv/jaxadv/blob/main/notebooks/benchmarks.ipynb)
#
# Runs the repository's benchmark suite (`benchmarks/`, the same functions as
# `python -m benchmarks --only roofline,kernels,attacks`) on whatever accelerator this
# notebook has, and plots what it measured:
#
# * the machine's own ceilings, measured in this run: the float32 matrix-multiply rate at a
#   large square and at each kernel cell's own batched shapes, and the memory bandwidth;
# * the forward + input-gradient kernel (`kernels.evaluate` on random `mlp(d, [k] * L)`
#   networks, the workload of all five papers' experiments: Daniely & Schacham 2020, Bubeck
#   et al. 2021, Bartlett et al. 2021, Vardi et al. 2022, De Palma et al. 2021), in achieved
#   FLOP/s against that roofline, with weights drawn before timing and drawn inside the
#   timed call;
# * the attacks (`min_norm`, `one_step`, `gradient_flow`) on random ReLU networks: distance
#   found, gradient evaluations and (network, input) pairs per second.
#
# Every figure is from this run; timings on a shared machine are noisy, so compare ratios
# taken within the run. Set `JAXADV_SMOKE=1` in the environment to run at a size that takes
# seconds (the test suite does): the numbers are then too small to mean anything.

# %%
# Setup: in Colab, clones the repository (the benchmark suite, benchmarks/, is not part of the
# installed package), installs jaxadv from the clone and puts the clone on the path; elsewhere,
# run from a clone (`pip install -e .`). Then says where the computation runs.
import os
import subprocess
import sys

if "google.colab" in sys.modules:
    if not os.path.isdir("jaxadv"):
        subprocess.run(["git", "clone", "--depth", "1", "https://github.com/jaxadv/jaxadv"], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", "jaxadv"], check=True)
    sys.path.insert(0, os.path.abspath("jaxadv"))

import jax

SMOKE = os.environ.get("JAXADV_SMOKE") == "1"  # tiny sizes: seconds on a CPU
print(f"jax {jax.__version__} on {jax.default_backend()}: {jax.devices()}" + ("  [smoke size]" if SMOKE else ""))

# %%
import importlib.util
import time

import matplotlib.pyplot as plt
import numpy as np

if importlib.util.find_spec("benchmarks") is None and os.path.isdir(os.path.join("..", "benchmarks")):
    sys.path.insert(0, os.path.abspath(".."))  # a notebook opened from notebooks/ in a clone

from benchmarks import _harness, report, roofline, targets
from benchmarks import attacks as bench_attacks
from benchmarks import kernels as bench_kernels
from jaxadv import attacks, data, kernels

print(f"benchmarks from {os.path.dirname(importlib.util.find_spec('benchmarks').origin)}")

# %% [markdown]
# ## Parameters
# In Colab these are form fields. `scale`: the suite's `"quick"` (its `--quick`: a 2048³
# square, three kernel cells, small attack batches; minutes on a CPU) or `"full"` (five
# kernel cells up to (1000, 10000, 1), larger batches: for an accelerator). `baselines`: also
# run the PyTorch kernels (when torch is installed) and the Foolbox / torchattacks attacks
# (when installed) on the same weights; they run on the CPU.

# %%
scale = "quick"  # @param ["quick", "full"]
baselines = False  # @param {type:"boolean"}
quick = scale == "quick"
roofline_sizes = {}  # the suite's own sizes for the scale
kernel_sizes = {}
if SMOKE:
    roofline_sizes = dict(square=256, bandwidth_bytes=4 * 2**20, repeats=1)
    kernel_sizes = dict(cells=[dict(d=100, k=100, depth=1, n_net=10)], n_x=10, repeats=1, key_impls=("threefry2x32",))
    baselines = False

# %% [markdown]
# ## The roofline and the kernels
# `roofline.run` measures the square matmul rate and the bandwidth; `kernels.run` then times
# every cell, measuring the matmul rate at the cell's own shapes (its forward products and
# their transposes, which the input gradient issues) and the square rate just before and
# just after the cell: their means are the denominators of the fractions.

# %%
res = {"environment": _harness.environment(), "scale": "smoke" if SMOKE else scale, "wall_s": {},
       "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "loadavg": {"start": list(os.getloadavg())}}
t0 = time.perf_counter()
res["roofline"] = roofline.run(quick=quick, **roofline_sizes)
res["wall_s"]["roofline"] = time.perf_counter() - t0
t0 = time.perf_counter()
res["kernels"] = bench_kernels.run(quick=quick, baselines=baselines, roofline_result=res["roofline"], **kernel_sizes)
res["wall_s"]["kernels"] = time.perf_counter() - t0
print(_harness.table(roofline.rows(res["roofline"]), roofline.COLUMNS))
print()
print(_harness.table(bench_kernels.rows(res["kernels"]), bench_kernels.COLUMNS))

# %% [markdown]
# Left: each cell's achieved FLOP/s (4·Σ fan_in·fan_out per pair: the forward pass and one
# product by each Wᵀ for the input gradient; bars span min–max over repeats) against the
# matmul rate measured at that cell's shapes and at the large square. Right: the classic
# roofline, min(square matmul rate, bandwidth × arithmetic intensity), with the cells whose
# weights were drawn before timing; their intensity counts, as bytes moved, each network's
# weights read twice (forward and input gradient), the inputs read once and the gradients
# and outputs written once (float32), a lower bound on the traffic. On a shared machine the
# ceilings move with the load: a fraction above 100% means a ceiling was measured while the
# machine was busier than during the kernel (the grey band shows how far the square rate
# moved within this run).

# %%
def minor_label(v, _):
    """Labels the minor ticks at 2, 3 and 5 times a power of ten only."""
    return f"{v:g}" if round(v / 10 ** np.floor(np.log10(v))) in (2, 3, 5) else ""


def weights_per_network(d, k, depth):
    fans = [d] + [k] * depth + [1]
    return sum(a * b for a, b in zip(fans[:-1], fans[1:]))


square = res["roofline"]["square"]["flops_per_s"]["median"]
bandwidth = res["roofline"]["bandwidth"]["bytes_per_s"]["median"]
cells = res["kernels"]["cells"]
impls = list(dict.fromkeys(r["impl"] for c in cells for r in c["rows"]))
fig, (ax, ax2) = plt.subplots(1, 2, figsize=(14, 4.8))
width = 0.8 / len(impls)
for j, impl in enumerate(impls):
    xs_, med, lo, hi = [], [], [], []
    for i, c in enumerate(cells):
        row = next((r for r in c["rows"] if r["impl"] == impl), None)
        if row is not None:
            f = row["flops_per_s"]
            xs_.append(i - 0.4 + (j + 0.5) * width)
            med.append(f["median"] / 1e9)
            lo.append((f["median"] - f["min"]) / 1e9)
            hi.append((f["max"] - f["median"]) / 1e9)
    ax.errorbar(xs_, med, yerr=[lo, hi], fmt="o", capsize=2, label=impl)
for i, c in enumerate(cells):
    ax.hlines(c["cell_matmul_flops_per_s"] / 1e9, i - 0.45, i + 0.45, colors="k", lw=2,
              label="matmul at the cell's shapes" if i == 0 else None)
    ax.hlines(c["square_matmul_flops_per_s"] / 1e9, i - 0.45, i + 0.45, colors="grey", linestyles="--",
              label="matmul at the square" if i == 0 else None)
ax.set_xticks(range(len(cells)), [f"{tuple(c['cell'])}\n×{c['n_net']} nets" for c in cells])
ax.set_xlabel("cell (d, k, L), networks; 1 = one hidden layer")
ax.set_ylabel("GFLOP/s (forward + input gradient)")
ax.set_title(f"Achieved against the same run's matmul rate ({jax.default_backend()})")
ax.legend(fontsize=7)

intensity, achieved, labels = [], [], []
for c in cells:
    d, k, depth = c["cell"]
    n_net, n_x = c["n_net"], c["n_x"]
    moved = 4.0 * (2 * n_net * weights_per_network(d, k, depth) + n_x * d + n_net * n_x * (d + 1))
    row = next(r for r in c["rows"] if r["impl"] == bench_kernels.PREGENERATED)
    intensity.append(c["flops_per_pair"] * n_net * n_x / moved)
    achieved.append(row["flops_per_s"]["median"])
    labels.append(f"{tuple(c['cell'])}")
grid = np.logspace(np.log10(min(intensity)) - 1, np.log10(max(intensity)) + 1, 200)
ax2.plot(grid, np.minimum(square, bandwidth * grid) / 1e9, "k-",
         label=f"roofline: {square / 1e9:.0f} GFLOP/s square matmul, {bandwidth / 1e9:.1f} GB/s")
squares = [square] + [v for c in cells for v in c["square_matmul_before_after_flops_per_s"]]
ax2.axhspan(min(squares) / 1e9, max(squares) / 1e9, color="grey", alpha=0.15,
            label="square matmul rate: range of this run's measurements")
for x, y, label in zip(intensity, achieved, labels):
    ax2.plot(x, y / 1e9, "o")
    ax2.annotate(label, (x, y / 1e9), fontsize=7, xytext=(4, -10), textcoords="offset points")
for a in (ax, ax2):
    a.set_yscale("log")
    a.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}"))
    a.yaxis.set_minor_formatter(plt.FuncFormatter(minor_label))
ax2.set_xscale("log")
ax2.set_xlabel("arithmetic intensity (FLOP per byte moved)")
ax2.set_ylabel("GFLOP/s")
ax2.set_title(f"{bench_kernels.PREGENERATED}, weights drawn before timing")
ax2.legend(fontsize=7)
fig.tight_layout()
plt.show()
for c in cells:
    row = next(r for r in c["rows"] if r["impl"] == bench_kernels.PREGENERATED)
    print(f"{tuple(c['cell'])} x{c['n_net']}: {row['flops_per_s']['median'] / 1e9:.1f} GFLOP/s = "
          f"{row['fraction_of_cell_matmul']:.0%} of the matmul rate at its shapes, "
          f"{row['fraction_of_square_matmul']:.0%} of the square's")

# %% [markdown]
# ## The attacks
# `benchmarks/attacks.py` runs `min_norm` (ℓ2, its default 20 gradients and 10), `one_step`
# and `gradient_flow` on random `two_layer` and `mlp` ReLU networks with inputs on the sphere
# of radius √d: success rate, median distance found, gradient evaluations per sample and
# pairs per second (and, with `baselines`, Foolbox DDN / DeepFool and torchattacks FAB on the
# same networks). Each attack is one XLA compilation of seconds on a CPU; at smoke size only
# the two cheapest, `one_step` and `gradient_flow`, run, on a few pairs of the suite's first
# network, with the suite's own timer and row format.

# %%
t0 = time.perf_counter()
if SMOKE:
    family, cfg = bench_attacks.CELLS[0]
    net = bench_attacks._net(family, cfg)
    params = kernels.init_many(net, jax.random.key(0), 2)
    xs = data.sphere(jax.random.key(1), 8, cfg["d"])
    rows = []
    for name, run in (("jaxadv.one_step", lambda: attacks.one_step(net, params, xs)),
                      ("jaxadv.gradient_flow", lambda: attacks.gradient_flow(net, params, xs))):
        timing = _harness.timeit(run, repeats=1)
        r = timing.pop("result")
        row = bench_attacks._summary(name, r.distance, r.success, r.n_grad, timing["median_s"], r.distance.size)
        row["compile_s"] = timing["first_call_s"] - timing["median_s"]
        rows.append(row)
    res["attacks"] = {"scale": "smoke", "cells": [{"network": net.name, "n_net": 2, "n_x": 8, "rows": rows}]}
else:
    res["attacks"] = bench_attacks.run(quick=quick, baselines=baselines)
    res["attacks"].pop("environment", None)
res["wall_s"]["attacks"] = time.perf_counter() - t0
for cell in res["attacks"]["cells"]:
    print(f"\n{cell['network']}  ({cell['n_net']} networks x {cell['n_x']} inputs)")
    print(_harness.table(cell["rows"], bench_attacks.COLUMNS))

# %%
att_cells = res["attacks"]["cells"]
fig, axes = plt.subplots(1, len(att_cells), figsize=(6.5 * len(att_cells), 0.6 + 0.45 * max(len(c["rows"]) for c in att_cells)),
                         squeeze=False)
for ax, cell in zip(axes[0], att_cells):
    names = [r["attack"] for r in cell["rows"]]
    rate = [r["pairs_per_s"] for r in cell["rows"]]
    ax.barh(range(len(names)), rate, color=["C0" if n.startswith("jaxadv") else "C1" for n in names])
    for i, r in enumerate(cell["rows"]):
        ax.annotate(f" median ℓ2 {r['median_distance']:.3f}, {r['median_n_grad']:.0f} grads, "
                    f"{r['success_rate']:.0%} flipped", (r["pairs_per_s"], i), va="center", fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_xscale("log")
    ax.set_xlim(min(rate) / 2, max(rate) * 300)
    ax.set_xlabel("(network, input) pairs per second")
    ax.set_title(f"{cell['network'].split(', activation')[0]})\n{cell['n_net']} networks × {cell['n_x']} inputs",
                 fontsize=9)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## The suite's report and targets
# The same tables `python -m benchmarks` prints, and the targets judged from this
# run's numbers by `benchmarks/targets.py` ("not measured" where a cell or a baseline was not
# part of this run: the targets name the full scale's largest cells and the PyTorch
# baselines).

# %%
res["loadavg"]["end"] = list(os.getloadavg())
res["targets"] = targets.evaluate(res)
print(report.headline(res))
for title, body in report.blocks(res):
    print("\n" + title + ("\n" + body if body else ""))
