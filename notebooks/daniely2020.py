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
# # Daniely & Schacham 2020: gradient flow flips random ReLU networks at distance ‖x‖/√d
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/jaxadv/jaxadv/blob/main/notebooks/daniely2020.ipynb)
#
# Amit Daniely and Hadas Schacham (2020), *Most ReLU networks suffer from ℓ2 adversarial
# perturbations*. For a random bias-free ReLU network whose width shrinks at every layer,
# for most networks and most inputs x, following the gradient of the output (gradient
# flow, or gradient descent with small steps) reaches a sign change of f at Euclidean
# distance Õ(‖x‖/√d): a vanishing fraction of ‖x‖ as the input dimension d grows.
#
# The paper is theory only (no experiments, no figures). This notebook first shows the
# mechanism with a few library calls (random `nets.mlp` networks with shrinking widths,
# `attacks.gradient_flow`, the distance against d next to the 1/√d line), then runs the
# experiment of `jaxadv reproduce daniely2020` (its own cells, claims and figure) at the
# chosen scale.
#
# Set `JAXADV_SMOKE=1` in the environment to run everything at a size that takes seconds
# (the test suite does).

# %%
# Setup: installs jaxadv when running in Colab (elsewhere, use your own environment, e.g.
# `pip install -e .` from a clone), then says where the computation runs.
import os
import subprocess
import sys

if "google.colab" in sys.modules:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "jaxadv @ git+https://github.com/jaxadv/jaxadv"],
                   check=True)

import jax

SMOKE = os.environ.get("JAXADV_SMOKE") == "1"  # tiny sizes: seconds on a CPU
print(f"jax {jax.__version__} on {jax.default_backend()}: {jax.devices()}" + ("  [smoke size]" if SMOKE else ""))

# %%
import math
import tempfile
import time

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Image, Markdown, display

from jaxadv import attacks, data, experiments, kernels, nets

# %% [markdown]
# ## Parameters
# In Colab these are form fields. The first group sizes the mechanism section; `scale`
# picks the experiment's grid: `"quick"` (minutes on a laptop CPU) or `"paper"` (up to
# d = 10⁴ with `min_norm` as a reference attack: for a GPU).

# %%
depth = 2  # @param {type:"integer"}
dims = [128, 256, 512, 1024]  # @param {type:"raw"}
n_net = 16  # @param {type:"integer"}
n_x = 4  # @param {type:"integer"}
step_size = 0.1  # @param {type:"number"}
max_steps = 100  # @param {type:"integer"}
scale = "quick"  # @param ["quick", "paper"]
seed = 0  # @param {type:"integer"}
if SMOKE:
    dims, n_net, n_x, scale = [32, 64], 4, 2, "quick"

# %% [markdown]
# ## Random networks with shrinking widths
# The theorem needs every layer to be narrower than the one before. We take the
# experiment's schedule d_i = ⌈d^{1 − i/(2L)}⌉, i = 1..L: each layer shrinks by the same
# factor d^{1/(2L)}, down to ⌈√d⌉. `nets.mlp(d, widths)` is Bartlett et al.'s NN-DEF law
# ((W_i)_{jk} ~ N(0, 1/d_{i−1}), Gaussian readout, no biases); `kernels.init_many` stacks
# `n_net` of them. (Keys of the `philox4x32` kind compile faster than the default on a CPU,
# which matters at these small sizes.)


# %%
def widths(d, L):
    """d_i = ⌈d^{1 − i/(2L)}⌉, i = 1..L (as jaxadv.experiments.daniely2020.widths)."""
    return [math.ceil(d ** (1 - i / (2 * L)) - 1e-9) for i in range(1, L + 1)]


for d in dims:
    print(f"d = {d:5d}: widths {widths(d, depth)}")

# %% [markdown]
# ## Gradient flow to the boundary
# For every (network, input) pair, `attacks.gradient_flow` steps from x along
# −sign f(x)·∇f/‖∇f‖ by `step_size`·‖x‖/√d (with ‖x‖ = √d that is `step_size` itself) until
# the sign of f changes, then bisects the last step onto the boundary. It reports the
# straight-line distance ‖x_adv − x‖ (∞ where no sign change was reached within
# `max_steps` steps) and the length of the path travelled.

# %%
key = jax.random.key(seed, impl="philox4x32")
rows = []
for d in dims:
    net = nets.mlp(d, widths(d, depth))
    params = kernels.init_many(net, jax.random.fold_in(key, d), n_net)
    # n_x inputs per network, uniform on the sphere of radius √d
    xs = data.sphere(jax.random.fold_in(key, d + 1), n_net * n_x, d).reshape(n_net, n_x, d)
    gf = attacks.gradient_flow(net, params, xs, step_size=step_size, max_steps=max_steps, normalized=True)
    ok = np.asarray(gf.success)
    dist = np.asarray(gf.distance)[ok]
    path = np.asarray(gf.path_length)[ok]
    rows.append({"d": d, "success": ok.mean(), "mean_dist": dist.mean(), "rel": dist.mean() / math.sqrt(d),
                 "straightness": np.median(dist / path)})
    print(f"d = {d:5d}: sign changed for {ok.mean():6.1%} of {ok.size} pairs; mean distance {dist.mean():.3f} "
          f"= {dist.mean() / math.sqrt(d):.4f}·‖x‖; median distance/path length {np.median(dist / path):.3f}")

ds = np.array([r["d"] for r in rows], dtype=float)
rel = np.array([r["rel"] for r in rows])
slope = np.polyfit(np.log(ds), np.log(rel), 1)[0]
print(f"log-log slope of mean distance/‖x‖ against d: {slope:+.3f} (the theorem: −1/2 up to logarithms)"
      + (f"; smoke size: {n_net * n_x} pairs per d, too few to judge it" if SMOKE else ""))

# %% [markdown]
# The distance stays of order one while ‖x‖ = √d grows: distance/‖x‖ falls like 1/√d.
# The grey line is √(2/π)/√d, the mean distance for a random *linear* function (a
# bias-free ReLU network has f(x) = ⟨∇f(x), x⟩, so its linearised distance is of that form;
# the theorem says the true distance stays within logarithms of it).

# %%
linear_mean = math.sqrt(2 / math.pi)
grid = np.geomspace(ds.min(), ds.max(), 50)
fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
axes[0].plot(ds, rel, marker="o", label=f"gradient flow, L = {depth} (mean over flipped pairs)")
axes[0].plot(grid, linear_mean / np.sqrt(grid), color="gray", ls="--", label="√(2/π)/√d (slope −1/2)")
axes[0].set_yscale("log")
axes[0].set_ylabel("distance / ‖x‖")
axes[0].set_title("distance/‖x‖ ~ 1/√d", fontsize=10)
axes[1].plot(ds, [r["mean_dist"] for r in rows], marker="o", label="gradient-flow distance (mean)")
axes[1].plot(grid, np.sqrt(grid), color="k", ls=":", label="‖x‖ = √d")
axes[1].set_yscale("log")
axes[1].set_ylabel("ℓ2 distance")
axes[1].set_title("the distance stays O(1) while ‖x‖ grows", fontsize=10)
for ax in axes:
    ax.set_xscale("log")
    ax.set_xticks(ds, [str(int(v)) for v in ds])
    ax.minorticks_off()
    ax.set_xlabel("input dimension d")
    ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## The experiment: `jaxadv reproduce daniely2020`
# Its cells are (depth L, dimension d) pairs. In each it draws `n_net` networks and `n_x`
# inputs per network and runs gradient flow (the paper's attack), one gradient step
# (`attacks.one_step`, Bubeck et al. 2021) and, at paper scale, `attacks.min_norm` (ℓ2) as a
# reference. The grids (from the module's docstring):
#
# * quick: d ∈ {128, 256, 512, 1024}, L ∈ {1, 2, 3}, 64 networks × 4 inputs per cell, steps of
#   0.1‖x‖/√d, at most 100 steps, no `min_norm`;
# * paper: d ∈ {100, 316, 1000, 3162, 10000}, L ∈ {1, 2, 3, 4}, 50 networks × 20 inputs per
#   cell, steps of 0.05‖x‖/√d, at most 400 steps, `min_norm` on.
#
# At smoke size the grid shrinks to d ∈ {32, 64}, L = 2, 4 networks × 2 inputs (two
# dimensions are the fewest a slope needs).

# %%
exp = experiments.EXPERIMENTS["daniely2020"]
config = experiments.config_of("daniely2020", scale, seed=seed)  # a plain dict, editable
if SMOKE:
    config.update(dims=[32, 64], depths=[2], n_net=4, n_x=2, net_chunk=4)
print({name: value for name, value in config.items() if name != "experiment"})

results = {}
for name, compute in exp.cells(config):
    start = time.perf_counter()
    results[name] = compute()
    r = results[name]
    print(f"{name:>12}: gradient flow flipped {r['gf_success'].mean():6.1%}, one step {r['os_success'].mean():6.1%} "
          f"({time.perf_counter() - start:.1f} s)")

# %% [markdown]
# ## Claims, as measured
# Each row states the paper's claim with the tolerance used to judge it, the paper's value,
# what this run measured and whether the measurement supports the claim.

# %%
claims = exp.claims(config, results)
display(Markdown(experiments.markdown_table(claims)))
if SMOKE:
    display(Markdown(
        "**Smoke size:** 4 networks × 2 inputs at d ∈ {32, 64} are far too few to judge these claims: the "
        "slope's tolerance (± its bootstrap error) spans almost anything, and success rates and ratios rest on "
        "a handful of pairs. The verdicts above are computed as at any size but say nothing about the paper; "
        "run with `scale = \"quick\"` (or `\"paper\"` on a GPU) for that."))

# %% [markdown]
# ## The experiment's figure
# Left: median normalised distance dist·√d/‖x‖ (gradient flow with its 25–75% band, one
# step, `min_norm` where run) against the median |N(0, 1)| of a random linear function;
# middle: the claims' statistic, mean dist/‖x‖, against √(2/π)/√d; right: success rates.

# %%
outdir = tempfile.mkdtemp()
for path in exp.figures(config, results, outdir):
    display(Image(filename=os.path.join(outdir, path)))
