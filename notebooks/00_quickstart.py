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
# # jaxadv quickstart: one gradient step flips a random ReLU network
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/jaxadv/jaxadv/blob/main/notebooks/00_quickstart.ipynb)
#
# The whole story of Bubeck, Cherapanamjeri, Gidel & Tachet des Combes (2021) in a screen
# of code: draw many random two-layer ReLU networks f(x) = k^{-1/2} Σ a_ℓ relu(w_ℓ·x),
# evaluate f and its input gradient ∇f for a batch of networks and inputs on the sphere of
# radius √d, take *one* gradient step x − η·sign(f(x))·∇f(x), and count how often the sign
# of f flips. The step that flips it has length O(1), while ‖x‖ = √d.
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
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from jaxadv import attacks, data, kernels, nets

# %% [markdown]
# ## Parameters
# In Colab these are form fields.

# %%
d = 1000  # @param {type:"integer"}
k = 1000  # @param {type:"integer"}
n_net = 50  # @param {type:"integer"}
n_x = 100  # @param {type:"integer"}
seed = 0  # @param {type:"integer"}
if SMOKE:
    d, k, n_net, n_x = 100, 100, 4, 16

# %% [markdown]
# ## Networks are parameter pytrees; kernels batch them
# `net.init(key)` draws ONE network and `net.apply(params, x)` evaluates it on ONE input;
# `kernels.init_many` stacks `n_net` of them on a leading axis and `kernels.evaluate` gives
# f and ∇ₓf for every (network, input) pair in one jit-compiled, vmapped call.

# %%
net = nets.two_layer(d, k)
params = kernels.init_many(net, jax.random.key(seed), n_net)
xs = data.sphere(jax.random.key(seed + 1), n_x, d)  # shared by all networks, ‖x‖ = √d
f, grad = kernels.evaluate(net, params, xs)
grad_sq = jnp.sum(grad**2, axis=-1)
print(f"f: {f.shape}, ∇f: {grad.shape}")
print(f"mean f² = {float(jnp.mean(f**2)):.3f} and mean ‖∇f‖² = {float(jnp.mean(grad_sq)):.3f}"
      " (both 1/2 in expectation, Bubeck et al. §1.2)")

# %% [markdown]
# ## One gradient step
# Move every input against the sign of f by a step of length s along ∇f, and count the
# flipped signs. The linearisation f(x + δ) ≈ f(x) + ⟨∇f, δ⟩ predicts the flip at
# s = |f|/‖∇f‖, which is O(1) here although ‖x‖ = √d.

# %%
unit = grad / jnp.sqrt(grad_sq)[..., None]
lengths = jnp.linspace(0.0, 3.0, 31)


def fraction_switched(s):
    x_new = xs[None] - s * jnp.sign(f)[..., None] * unit  # (n_net, n_x, d): per network
    return jnp.mean(jnp.sign(kernels.forward(net, params, x_new)) != jnp.sign(f))


switched = np.array([float(fraction_switched(s)) for s in lengths])
predicted = np.array([float(jnp.mean(jnp.abs(f) / jnp.sqrt(grad_sq) <= s)) for s in lengths])

fig, ax = plt.subplots(figsize=(5, 3.5))
ax.plot(lengths, switched, marker="o", label="measured: sign f(x + step) ≠ sign f(x)")
ax.plot(lengths, predicted, linestyle="--", label="linear prediction |f|/‖∇f‖ ≤ length")
ax.set_xlabel("step length ‖δ‖ (‖x‖ = √d = %.0f)" % np.sqrt(d))
ax.set_ylabel("fraction switched")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## The smallest step, exactly
# `attacks.one_step` finds, for every pair, the smallest |η| ≤ 20 for which x + η∇f(x)
# flips the sign (the paper's experiment), checking the sign at the returned point.

# %%
r = attacks.one_step(net, params, xs)
print(f"switched: {float(jnp.mean(r.success)):.1%} of {r.success.size} pairs")
print(f"median step length ‖η∇f‖ = {float(jnp.median(r.distance)):.3f}, "
      f"i.e. {float(jnp.median(r.distance)) / np.sqrt(d):.4f}·‖x‖")
print(f"forward+gradient evaluations per pair: {float(jnp.mean(r.n_grad)):.0f} gradient, "
      f"{float(jnp.mean(r.n_partial)):.1f} partial probes, {float(jnp.mean(r.n_forward)):.0f} check")
