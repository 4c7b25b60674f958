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
# # Bubeck et al. 2021: a single gradient step finds adversarial examples on random two-layer networks
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/jaxadv/jaxadv/blob/main/notebooks/bubeck2021.ipynb)
#
# Bubeck, Cherapanamjeri, Gidel & Tachet des Combes (2021), *A single gradient step finds
# adversarial examples on random two-layers neural networks*. For a random two-layer ReLU
# network f(x) = k^{-1/2} Σ_ℓ a_ℓ relu(w_ℓ·x) (w_ℓ ~ N(0, I_d/d), a_ℓ = ±1) and an input x on
# the sphere of radius √d, both f(x) and ‖∇f(x)‖ are O(1), so the linearised step to the
# decision boundary, of length |f(x)|/‖∇f(x)‖, is O(1) while ‖x‖ = √d; the paper proves that
# this one gradient step does flip the sign of f, and its §4 (Figures 1–2) measures it.
#
# This notebook first shows the mechanism with the library's kernels (random networks,
# f and ∇f, the moments E f² = E‖∇f‖² = 1/2, one gradient step over a few d), then runs the
# experiment of `jaxadv reproduce bubeck2021` cell by cell (networks with L = 1 … 6 hidden
# layers, the paper's variants) and states each claim next to the number measured.
#
# Set `JAXADV_SMOKE=1` in the environment to run everything at a size that takes seconds
# (the test suite does); at that size the claims are computed but the samples are too small
# to judge them.

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
import tempfile
import time

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Image, Markdown, display

from jaxadv import attacks, data, experiments, kernels, nets

# %% [markdown]
# ## Parameters
# In Colab these are form fields. `mech_*` size the mechanism section (two-layer networks
# with k = d); `scale` picks the experiment's grid: `quick` takes minutes on a laptop CPU,
# `paper` is the paper's grid (d up to 10⁴, k up to 10⁵, L up to 6, 100 × 100 pairs per cell,
# plus one matrix-free cell at k = 10⁶) and is meant for a GPU.

# %%
mech_dims = [10, 30, 100, 300, 1000]  # @param {type:"raw"}
mech_n_net = 10  # @param {type:"integer"}
mech_n_x = 50  # @param {type:"integer"}
scale = "quick"  # @param ["quick", "paper"]
seed = 0  # @param {type:"integer"}
if SMOKE:
    # One d, with the same networks and inputs per network as the experiment's smoke grid
    # below, so that the two sections share their compiled attack.
    mech_dims, mech_n_net, mech_n_x = [100], 3, 8

# %% [markdown]
# ## Random networks, f and ∇f
# `nets.two_layer(d, k)` is the paper's eq. (1). `kernels.init_many` draws `n_net` networks
# stacked on a leading axis, and `kernels.evaluate` returns f and ∇ₓf for every (network,
# input) pair; here each network gets its own `n_x` inputs on the sphere of radius √d.
# By §1.2, E f(x)² = E‖∇f(x)‖² = 1/2 at every d and k: half the units are active, each
# contributes 1/k of the variance. The inputs of one network are correlated through it, so the
# sample means below fluctuate more than `n_net × n_x` independent draws would.

# %%
def draw(d, key):
    """`mech_n_net` networks two_layer(d, d) and `mech_n_x` inputs per network on √d·S^{d−1}."""
    net = nets.two_layer(d, d)
    k_net, k_x = jax.random.split(key)
    params = kernels.init_many(net, k_net, mech_n_net)
    xs = data.sphere(k_x, mech_n_net * mech_n_x, d).reshape(mech_n_net, mech_n_x, d)
    return net, params, xs


moments = []
for d in mech_dims:
    net, params, xs = draw(d, jax.random.fold_in(jax.random.key(seed), d))
    f, grad = (np.asarray(a) for a in kernels.evaluate(net, params, xs))  # (n_net, n_x), (n_net, n_x, d)
    grad_sq = np.sum(grad**2, axis=-1)
    lin_step = np.abs(f) / np.sqrt(grad_sq)  # the linearised distance to the boundary
    moments.append((d, np.mean(f**2), np.mean(grad_sq), np.median(lin_step)))
    print(f"d = k = {d:5d}: mean f² = {moments[-1][1]:.3f}, mean ‖∇f‖² = {moments[-1][2]:.3f}, "
          f"median |f|/‖∇f‖ = {moments[-1][3]:.3f} while ‖x‖ = √d = {np.sqrt(d):.1f}")

# %% [markdown]
# ## One gradient step, over d
# `attacks.one_step` finds for every pair the smallest |η| < 20 such that x + η∇f(x) has the
# other sign, and checks the sign at the returned point. Per d we record the fraction of
# inputs switched (the paper's Fig. 1), the mean smallest |η| (Fig. 2a) and the mean ‖∇f(x)‖
# (Fig. 2b): the last two stay roughly constant in d, so the step's length ‖η∇f‖ = O(1)
# becomes a vanishing fraction of ‖x‖ = √d.

# %%
steps = []
for d in mech_dims:
    net, params, xs = draw(d, jax.random.fold_in(jax.random.key(seed), d))
    r = attacks.one_step(net, params, xs, eta_max=20.0)
    ok = np.asarray(r.success)
    f0, gn, eta = np.asarray(r.f_clean), np.asarray(r.grad_norm), np.asarray(r.eta)
    steps.append({"d": d, "switched": ok.mean(), "eta": np.abs(eta[ok]).mean(), "grad_norm": gn.mean(),
                  "step_over_x": np.median(np.asarray(r.distance)[ok]) / np.sqrt(d),
                  "eta_over_lin": np.abs(eta[ok]) / (np.abs(f0[ok]) / gn[ok] ** 2)})
    print(f"d = k = {d:5d}: switched {ok.mean():6.1%}, mean |η| = {steps[-1]['eta']:.3f}, "
          f"mean ‖∇f‖ = {gn.mean():.3f}, median ‖η∇f‖/‖x‖ = {steps[-1]['step_over_x']:.4f}")

fig, ax = plt.subplots(1, 4, figsize=(16, 3.4))
ds = [s["d"] for s in steps]
ax[0].plot(ds, [s["switched"] for s in steps], "o-")
ax[0].set(title="fraction switched (Fig. 1 shape)", ylim=(0, 1.05))
ax[1].plot(ds, [s["eta"] for s in steps], "o-")
ax[1].set(title="mean smallest |η| (Fig. 2a shape)", ylim=(0, None))
ax[2].plot(ds, [s["grad_norm"] for s in steps], "o-", label="measured")
ax[2].axhline(np.sqrt(0.5), color="k", ls=":", label="√(E‖∇f‖²) = 1/√2")
ax[2].set(title="mean ‖∇f(x)‖ (Fig. 2b shape)", ylim=(0, None))
ax[2].legend(fontsize=8)
ax[3].plot(ds, [s["step_over_x"] for s in steps], "o-", label="median ‖η∇f‖/‖x‖")
ax[3].plot(ds, steps[0]["step_over_x"] * np.sqrt(ds[0] / np.asarray(ds, float)), "k:", label="∝ 1/√d")
ax[3].set(title="step length relative to ‖x‖", yscale="log")
ax[3].legend(fontsize=8)
for a in ax:
    a.set(xscale="log", xlabel="d = k (L = 1)")
fig.tight_layout()
plt.show()

# %% [markdown]
# The smallest η is close to the linearised one, |f(x)|/‖∇f(x)‖²: the network is nearly
# linear at the scale of the step. The ratio η/η_lin, pooled over the switched pairs per d:

# %%
for s in steps:
    q = np.percentile(s["eta_over_lin"], [5, 50, 95]) if s["eta_over_lin"].size else [np.nan] * 3
    print(f"d = k = {s['d']:5d}: |η| / (|f|/‖∇f‖²) has median {q[1]:.3f} (5–95%: {q[0]:.3f}–{q[2]:.3f})")

# %% [markdown]
# ## The experiment, cell by cell
# `experiments.config_of` returns the grid `jaxadv reproduce bubeck2021 --scale <scale>`
# runs, as a plain dict; each cell is one (L, d, k) (or one variant at L = 1) and computes
# its arrays with `attacks.one_step`. L ≥ 2 uses `nets.mlp` with equal widths k = d. The
# variants: a Gaussian readout (footnote 2), smooth activations (softplus and tanh, Theorem 1)
# and the input-independent universal direction Σ_ℓ a_ℓ w_ℓ (§1.1).

# %%
exp = experiments.EXPERIMENTS["bubeck2021"]
config = experiments.config_of("bubeck2021", scale, seed=seed)
if SMOKE:
    config.update(dims=[100], depths=[1, 2], n_net=3, n_x=8, variants=[], variant_dims=[])
print({k: v for k, v in config.items() if k not in ("experiment",)})

results = {}
started = time.time()
for name, compute in exp.cells(config):
    t = time.time()
    results[name] = compute()
    r = results[name]
    print(f"{name:28s} switched {r['success'].mean():6.1%}  mean ‖∇f‖ = {r['grad_norm'].mean():.3f}  "
          f"({time.time() - t:.1f} s)")
print(f"{len(results)} cells in {time.time() - started:.1f} s")

# %% [markdown]
# ## Claims, as measured
# Each row states the paper's claim with the tolerance the experiment uses, the paper's value
# and the value this run measured; "holds" is computed from the measured arrays.

# %%
claims = exp.claims(config, results)
display(Markdown(experiments.markdown_table(claims)))
if SMOKE:
    print("Smoke size (one d = k = 100, L ∈ {1, 2}, 3 networks × 8 inputs per cell, no variants): the verdicts above are "
          "computed, but the sizes are too small for the claims to be judged; with one d, the spreads over d are 1 by "
          "construction.")

# %% [markdown]
# ## Figures
# The experiment's own figure: fraction switched (the paper's Fig. 1), mean smallest |η|
# (Fig. 2a) and mean ‖∇f‖ (Fig. 2b) against d, one curve per depth L, and the L = 1 variants.

# %%
out_dir = tempfile.mkdtemp()
for name in exp.figures(config, results, out_dir):
    display(Image(filename=os.path.join(out_dir, name)))
