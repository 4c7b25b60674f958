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
# # Bartlett et al. 2021: adversarial examples in multi-layer random ReLU networks
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/jaxadv/jaxadv/blob/main/notebooks/bartlett2021.ipynb)
#
# Bartlett, Bubeck & Cherapanamjeri (2021), *Adversarial examples in multi-layer random ReLU
# networks*. For a random ReLU network of depth ℓ (NN-DEF: no biases, (W_i)_{jk} ~ N(0, 1/d_{i−1}),
# a Gaussian readout) whose widths are polynomially related, one gradient step of length
# O(‖x‖/√d) flips the sign of f(x) (Theorem 1.1), whatever the width profile, bottlenecks
# included. Behind it: ‖∇f(x)‖ and |f(x)| are of the same order (Lemma 2.2) and the gradient
# barely changes over the step (Lemma 2.8). The paper also shows the limits of the argument:
# the hidden representations of two inputs become more correlated with each layer, following
# the arc-cosine correlation map κ (Lemma 3.2), so a very deep network is nearly constant on
# the sphere (Theorem 3.1).
#
# The paper has no experiments. This notebook first shows each mechanism with the library
# (`nets.mlp`, `attacks.one_step`, `jaxadv.theory`), then runs the checks of
# `jaxadv reproduce bartlett2021` cell by cell and states each claim next to the number measured.
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
import math
import tempfile
import time

import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Image, Markdown, display

from jaxadv import attacks, data, experiments, kernels, nets, theory

# %% [markdown]
# ## Parameters
# In Colab these are form fields. The mechanism sections use equal-width networks of width d
# on inputs in ℝ^d: `depths` for the one-step attack, `deep_depth` layers for the correlations.
# `scale` picks the experiment's grid: `quick` takes minutes on a laptop CPU; `paper` goes to
# d = 10⁴ with 100 networks × 20 inputs per cell and is meant for a GPU.

# %%
d = 256  # @param {type:"integer"}
depths = [1, 2, 3, 4, 8]  # @param {type:"raw"}
deep_depth = 32  # @param {type:"integer"}
n_net = 16  # @param {type:"integer"}
n_x = 16  # @param {type:"integer"}
n_points = 64  # @param {type:"integer"}
scale = "quick"  # @param ["quick", "paper"]
seed = 0  # @param {type:"integer"}
if SMOKE:
    d, depths, deep_depth, n_net, n_x, n_points = 32, [3], 4, 4, 8, 16

# %% [markdown]
# ## Deep random networks: one network, every depth
# `nets.mlp(d, widths)` is NN-DEF. We draw `n_net` networks of `deep_depth` layers of width d
# once: since the layers are independent and the readout w ~ N(0, I/d) fits every layer, the
# first ℓ layers with that readout are an NN-DEF network of depth ℓ, so one draw serves every
# depth. Inputs are uniform on the sphere of radius √d, each network its own `n_x`. The keys
# use the Philox generator (`impl="philox4x32"`), which compiles faster on a CPU than the
# default Threefry (which then draws faster); any key gives the same law.

# %%
L_max = max(deep_depth, *depths)
key = jax.random.key(seed, impl="philox4x32")
k_net, k_x, k_pairs = jax.random.split(key, 3)
deep = nets.mlp(d, [d] * L_max)
params = kernels.init_many(deep, k_net, n_net)
xs = data.sphere(k_x, n_net * n_x, d).reshape(n_net, n_x, d)


def first_layers(params, depth):
    """The parameters of the first `depth` layers and the readout: an NN-DEF net of that depth."""
    return {"hidden": params["hidden"][:depth], "readout": params["readout"]}


print(f"{n_net} networks mlp({d}, [{d}] × {L_max}), {n_x} inputs each, ‖x‖ = √d = {math.sqrt(d):.1f}")

# %% [markdown]
# ## One gradient step at depth ℓ
# `attacks.one_step` finds the smallest |η| ≤ 1000 with sign f(x + η∇f(x)) ≠ sign f(x)
# (`chunk_size`: all pairs in one block, which fits at these sizes and skips the automatic
# memory plan, itself a few traces of the attack).
# By Lemma 2.1 every masked layer halves the gradient's second moment, so
# 2^ℓ·E‖∇f‖² = 2^ℓ·E f² = 1 at every width (and Lemma 2.2 puts ‖∇f‖ within 2^{±(ℓ+1)} with
# high probability), and Theorem 1.1 puts the step at ‖η∇f‖/‖x‖ = O(1/√d): √d·‖η∇f‖/‖x‖ = ‖η∇f‖
# stays O(1). The theorem's width condition grows with ℓ, so at a fixed d it says nothing
# about how many inputs a deeper network leaves unswitched; the fraction is measured below.

# %%
one = []
for ell in depths:
    r = attacks.one_step(nets.mlp(d, [d] * ell), first_layers(params, ell), xs, eta_max=1000.0, chunk_size=n_net * n_x)
    ok = np.asarray(r.success)
    f0, gn = np.asarray(r.f_clean), np.asarray(r.grad_norm)
    one.append({"L": ell, "switched": ok.mean(), "f_sq": 2.0**ell * np.mean(f0**2), "grad_sq": 2.0**ell * np.mean(gn**2),
                "step": np.median(np.asarray(r.distance)[ok]) / math.sqrt(d)})
    print(f"ℓ = {ell:2d}: switched {ok.mean():6.1%}, 2^ℓ·mean f² = {one[-1]['f_sq']:.3f}, "
          f"2^ℓ·mean ‖∇f‖² = {one[-1]['grad_sq']:.3f}, median ‖η∇f‖/‖x‖ = {one[-1]['step']:.4f} (1/√d = {1 / math.sqrt(d):.4f})")

fig, ax = plt.subplots(1, 3, figsize=(13, 3.4))
Ls = [o["L"] for o in one]
ax[0].plot(Ls, [o["switched"] for o in one], "o-")
ax[0].set(title="fraction switched by one step", ylim=(0, 1.05))
ax[1].plot(Ls, [o["grad_sq"] for o in one], "o-", label="2^ℓ·mean ‖∇f‖²")
ax[1].plot(Ls, [o["f_sq"] for o in one], "s--", label="2^ℓ·mean f²")
ax[1].axhline(1, color="k", ls=":", lw=0.8)
ax[1].set(title="Lemmas 2.1–2.2: both 1 in expectation", ylim=(0, None))
ax[1].legend(fontsize=8)
ax[2].plot(Ls, [o["step"] * math.sqrt(d) for o in one], "o-")
ax[2].set(title="median √d·‖η∇f‖/‖x‖ (Theorem 1.1: O(1))", ylim=(0, None))
for a in ax:
    a.set(xlabel="depth ℓ")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## A bottleneck
# Theorem 1.1 allows any widths within polynomial factors of each other. A middle layer of
# b = ⌈2√d⌉ units, `nets.mlp(d, [d, b, d])`, against the equal widths (d, d, d): the moments
# 2^ℓ·E f² = 2^ℓ·E‖∇f‖² = 1 do not depend on the widths, and one step still flips the sign.
# The bottleneck networks are cut from the same draws: the first b rows of layer 2 and the
# first b columns of layer 3, rescaled by √(d/b) to the NN-DEF variance 1/b of a fan-in of b,
# are exactly an NN-DEF draw of widths (d, b, d), so the two rows below differ only by the cut.
#
# The attack runs on the bottleneck zero-padded to the equal-width layout, as the experiment
# does with `pad_widths`: a unit whose weights in and out are zero computes relu(0) = 0 and
# adds nothing to f or ∇f, so it is the same function (checked below against
# `nets.mlp(d, [d, b, d])` itself), and the attack compiled for depth 3 serves both.

# %%
b = math.ceil(2 * math.sqrt(d))
W1, W2, W3 = (layer["W"] for layer in params["hidden"][:3])  # (n_net, d, d) each
cut = {"hidden": [{"W": W1}, {"W": W2[:, :b, :]}, {"W": W3[:, :, :b] * math.sqrt(d / b)}], "readout": params["readout"]}
keep = (jnp.arange(d) < b).astype(W2.dtype)  # the b units kept in layer 2
padded = {"hidden": [{"W": W1}, {"W": W2 * keep[:, None]}, {"W": W3 * keep * math.sqrt(d / b)}], "readout": params["readout"]}
equal_3 = nets.mlp(d, [d] * 3)
f_cut = kernels.forward(nets.mlp(d, [d, b, d]), cut, xs, chunk_size=n_net * n_x)
f_pad = kernels.forward(equal_3, padded, xs, chunk_size=n_net * n_x)
print(f"nets.mlp({d}, [{d}, {b}, {d}]) and its padded form: largest |Δf| = {float(jnp.max(jnp.abs(f_cut - f_pad))):.1e}")
for label, p in {f"equal ({d}, {d}, {d})": first_layers(params, 3), f"bottleneck ({d}, {b}, {d})": padded}.items():
    r = attacks.one_step(equal_3, p, xs, eta_max=1000.0, chunk_size=n_net * n_x)
    ok = np.asarray(r.success)
    print(f"{label:24s}: switched {ok.mean():6.1%}, 8·mean f² = {8 * np.mean(np.asarray(r.f_clean) ** 2):.3f}, "
          f"8·mean ‖∇f‖² = {8 * np.mean(np.asarray(r.grad_norm) ** 2):.3f}, "
          f"median ‖η∇f‖/‖x‖ = {np.median(np.asarray(r.distance)[ok]) / math.sqrt(d):.4f}")

# %% [markdown]
# ## The arc-cosine correlation map
# For g ~ N(0, I) and inputs at angle θ, the correlation of relu(g·x) and relu(g·y) is
# κ(cos θ) = (sin θ)/π + (1 − θ/π) cos θ (Lemma 3.2, `theory.relu_correlation`). In a wide
# network the normalised inner product of the hidden representations follows ρ_ℓ = κ(ρ_{ℓ−1})
# (`theory.iterated_relu_correlation`); 1 is its attracting fixed point, so depth pulls every
# pair of inputs together. Below: the map, and its iterates from a few starting correlations.

# %%
rho = jnp.linspace(-1.0, 1.0, 201)
starts = jnp.asarray([-1.0, -0.5, 0.0, 0.5])
iterates = np.asarray(theory.iterated_relu_correlation(starts, L_max))  # (L_max, 4)

fig, ax = plt.subplots(1, 2, figsize=(10, 3.6))
ax[0].plot(rho, theory.relu_correlation(rho), label="κ(ρ)")
ax[0].plot(rho, rho, "k:", lw=0.8, label="identity")
ax[0].set(xlabel="ρ = cos θ", ylabel="κ(ρ)", title="Lemma 3.2: one ReLU layer")
ax[0].legend(fontsize=8)
for i, r0 in enumerate(np.asarray(starts)):
    ax[1].plot(np.arange(L_max + 1), np.concatenate([[r0], iterates[:, i]]), "o-", ms=3, label=f"ρ_0 = {r0:g}")
ax[1].set(xlabel="layer ℓ", ylabel="ρ_ℓ = κ^ℓ(ρ_0)", title="iterated: correlations climb to 1")
ax[1].legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Measured: the hidden representations of the random networks
# Pairs of inputs at angles θ (x = √d·a, y = √d·(cos θ·a + sin θ·b), a ⊥ b unit vectors) go
# through the `n_net` deep networks drawn above, layer by layer (h_ℓ = relu(W_ℓ h_{ℓ−1}),
# computed here with NumPy from the parameter pytree). The pooled normalised inner product
# Σ⟨h_ℓ(x), h_ℓ(y)⟩/√(Σ‖h_ℓ(x)‖²·Σ‖h_ℓ(y)‖²) over the networks against κ^ℓ(cos θ); the
# finite width d adds an O(ℓ/d) drift.

# %%
thetas = np.asarray([0.3, 0.6, 1.0, np.pi / 2, 2.0, 2.5, 3.0])
P = len(thetas)
drawn = np.asarray(data.sphere(k_pairs, 2 * P + n_points, d), np.float64)  # P pairs of directions, then points
pts = drawn[2 * P:]
g = drawn[:2 * P].reshape(P, 2, d)
a = g[:, 0] / np.linalg.norm(g[:, 0], axis=-1, keepdims=True)
u = g[:, 1] - np.sum(g[:, 1] * a, -1, keepdims=True) * a
u = u / np.linalg.norm(u, axis=-1, keepdims=True)
pair_x = math.sqrt(d) * a
pair_y = math.sqrt(d) * (np.cos(thetas)[:, None] * a + np.sin(thetas)[:, None] * u)


def hidden(params, x):
    """h_ℓ(x) for ℓ = 1 … L_max of every network: (L_max, n_net, n_inputs, d)."""
    h = np.broadcast_to(x, (n_net, *x.shape))
    out = []
    for layer in params["hidden"]:
        h = np.maximum(h @ np.asarray(layer["W"], np.float64).transpose(0, 2, 1), 0)
        out.append(h)
    return np.stack(out)


hs = hidden(params, np.concatenate([pair_x, pair_y, pts]))
hx, hy = hs[:, :, :P], hs[:, :, P:2 * P]
measured = np.sum(hx * hy, (1, 3)) / np.sqrt(np.sum(hx**2, (1, 3)) * np.sum(hy**2, (1, 3)))  # (L_max, n_θ)
fine = np.linspace(0, np.pi, 121)
kappa = np.asarray(theory.iterated_relu_correlation(np.cos(np.concatenate([thetas, fine])), L_max))
kappa_at, kappa_fine = kappa[:, :P], kappa[:, P:]

shown = [2**i for i in range(int(math.log2(L_max)) + 1)]
fig, ax = plt.subplots(figsize=(6, 4))
for i, ell in enumerate(shown):
    ax.plot(fine, kappa_fine[ell - 1], color=f"C{i}", lw=1)
    ax.plot(thetas, measured[ell - 1], "o", color=f"C{i}", label=f"ℓ = {ell}")
ax.set(xlabel="angle θ between x and y", ylabel="normalised ⟨h_ℓ(x), h_ℓ(y)⟩",
       title=f"κ^ℓ(cos θ) (lines) vs {n_net} networks of width {d} (points)")
ax.legend(fontsize=8)
plt.show()
print(f"largest |measured − κ^ℓ| over θ and ℓ ≤ {L_max}: {np.max(np.abs(measured - kappa_at)):.4f} "
      f"(finite-width drift scale ℓ/d up to {L_max / d:.3f})")

# %% [markdown]
# ## Very deep networks are nearly constant on the sphere
# With every pair of hidden representations pulled together, f_ℓ = w·h_ℓ varies less and less
# over the sphere (Theorem 3.1 needs ℓ ≥ d³ for its bound; here the qualitative trend). For
# each depth ℓ, the relative variation √(Σ_nets Var_x f_ℓ / Σ_nets mean_x f_ℓ²) over
# `n_points` points on the sphere, against its infinite-width value √(1 − mean_{x,y} κ^ℓ(cos θ_xy)).
# One readout per network makes a noisy estimate; averaging over the readout w ~ N(0, I/d)
# exactly (E_w (w·a)(w·b) = a·b/d) leaves √(1 − Σ‖mean_x h_ℓ(x)‖² / Σ mean_x ‖h_ℓ(x)‖²).
# Then the map itself at depths no network reaches: 1 − ρ_ℓ from ρ_0 = 0
# (`theory.iterated_relu_correlation_gap`, exact near ρ = 1 in float32) against its asymptote
# 9π²/(2ℓ²) (`theory.correlation_gap_asymptote`).

# %%
hp = hs[:, :, 2 * P:]  # (L_max, n_net, n_points, d)
f_ell = np.einsum("lnpi,ni->lnp", hp, np.asarray(params["readout"]["w"], np.float64))
variation = np.sqrt(f_ell.var(axis=-1).sum(-1) / (f_ell**2).mean(axis=-1).sum(-1))
averaged = np.sqrt(1 - np.sum(hp.mean(2) ** 2, (1, 2)) / np.sum((hp**2).mean(2), (1, 2)))  # readout averaged out
unit = pts / np.linalg.norm(pts, axis=-1, keepdims=True)
cos_xy = np.clip(unit @ unit.T, -1, 1)
predicted = np.sqrt(1 - np.asarray(theory.iterated_relu_correlation(cos_xy, L_max)).mean(axis=(1, 2)))

depth_map = 10_000
gap = np.asarray(theory.iterated_relu_correlation_gap(1.0, depth_map))
ells = np.arange(1, depth_map + 1)
asymptote = np.asarray(theory.correlation_gap_asymptote(ells))

fig, ax = plt.subplots(1, 2, figsize=(11, 3.8))
ax[0].plot(np.arange(1, L_max + 1), variation, "o-", label=f"{n_net} networks, width {d}")
ax[0].plot(np.arange(1, L_max + 1), averaged, "s--", label="the same, readout averaged")
ax[0].plot(np.arange(1, L_max + 1), predicted, "k-", label="infinite width")
ax[0].set(xscale="log", yscale="log", xlabel="depth ℓ", ylabel="√(Var_x f / mean_x f²)",
          title="variation of f over the sphere")
ax[0].legend(fontsize=8)
ax[1].plot(ells, gap, label="1 − ρ_ℓ (iterated κ, ρ_0 = 0)")
ax[1].plot(ells, asymptote, "k:", label="9π²/(2ℓ²)")
ax[1].set(xscale="log", yscale="log", xlabel="depth ℓ", ylabel="1 − ρ_ℓ", title="the gap closes like 1/ℓ²")
ax[1].legend(fontsize=8)
fig.tight_layout()
plt.show()
for ell in (10, 100, 1000, 10_000):
    print(f"ℓ = {ell:6d}: ℓ²(1 − ρ_ℓ) = {ell**2 * gap[ell - 1]:.3f}  (9π²/2 = {9 * np.pi**2 / 2:.3f})")

# %% [markdown]
# ## The experiment, cell by cell
# `experiments.config_of` returns the grid `jaxadv reproduce bartlett2021 --scale <scale>`
# runs, as a plain dict. Cells `arch=<profile>,d=<d>` run one step, the ray
# x − sign f(x)·τ·η_lin·∇f(x) (Theorem 1.1's full statement, f reaching −f(x)) and the gradient's
# change within a radius (Lemma 2.8) for four width profiles (equal, shrinking, expanding,
# bottleneck) at depth 3; the cell `deep` reads hidden representations layer by layer
# (Lemma 3.2, Theorem 3.1); the cell `map` iterates κ.

# %%
exp = experiments.EXPERIMENTS["bartlett2021"]
config = experiments.config_of("bartlett2021", scale, seed=seed)
if SMOKE:
    config.update(dims=[16], n_net=3, n_x=2, ray=[0.5, 16.0, 9], radii=[0.3, 1.0, 3.0], map_depths=[1, 10, 100],
                  deep={"d": 4, "width": 16, "depth": 4, "n_net": 3, "n_points": 6, "thetas": [0.5, 1.5, 2.5]})
print({k: v for k, v in config.items() if k not in ("experiment", "architectures")})

results = {}
started = time.time()
for name, compute in exp.cells(config):
    t = time.time()
    results[name] = compute()
    r = results[name]
    what = f"switched {r['success'].mean():6.1%}" if "success" in r else ""
    print(f"{name:24s} {what:18s} ({time.time() - t:.1f} s)")
print(f"{len(results)} cells in {time.time() - started:.1f} s")

# %% [markdown]
# ## Claims, as measured
# Each row states the claim with the tolerance the experiment uses, the paper's value and the
# value this run measured; "holds" is computed from the measured arrays. The probability
# statements are judged at the largest d of the grid.

# %%
claims = exp.claims(config, results)
display(Markdown(experiments.markdown_table(claims)))
if SMOKE:
    print("Smoke size (one d = 16, 3 networks × 2 inputs per cell, a 4-layer width-16 deep cell): the verdicts above "
          "are computed, but the sizes are too small for the claims to be judged.")

# %% [markdown]
# ## Figures
# The paper has no figures; the experiment's panels are named by the statement they check.

# %%
out_dir = tempfile.mkdtemp()
for name in exp.figures(config, results, out_dir):
    display(Image(filename=os.path.join(out_dir, name)))
