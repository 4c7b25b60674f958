"""A one-minute demonstration of what jaxadv measures, built only from the public kernels."""

from __future__ import annotations

import time
from typing import TextIO

import jax
import jax.numpy as jnp

from jaxadv import data, kernels, nets


def bubeck_demo(*, seed: int = 0, n_net: int = 20, n_x: int = 50, out: TextIO) -> None:
    """Bubeck et al. 2021 in numbers: E f² and E‖∇f‖² (both 1/2 for ReLU), and how far a
    single gradient step must go to reach the boundary.

    For each random two-layer ReLU net and input x with ‖x‖ = √d the linearised step
    δ = −f(x)∇f(x)/‖∇f(x)‖² reaches the tangent plane of the boundary; the demo reports
    ‖δ‖ (O(1), so ‖δ‖/‖x‖ ~ 1/√d) and the fraction of inputs whose sign is already flipped by
    the step 2δ.
    """
    key = jax.random.key(seed)
    print(f"{'d=k':>6} {'E f^2':>8} {'E|grad|^2':>10} {'median |delta|':>15} {'|delta|/|x|':>12} {'flipped by 2*delta':>19} {'pairs/s':>10}", file=out)
    for d in (10, 100, 1000):
        k_net, k_x, key = jax.random.split(key, 3)
        net = nets.two_layer(d, d)
        params = kernels.init_many(net, k_net, n_net)
        xs = data.sphere(k_x, n_x, d)
        kernels.evaluate(net, params, xs).f.block_until_ready()  # compile
        t0 = time.perf_counter()
        f, g = kernels.evaluate(net, params, xs)
        f.block_until_ready()
        dt = time.perf_counter() - t0
        g2 = jnp.sum(g**2, axis=-1)
        # ∇f = 0 (every ReLU dead, possible at small d) leaves the point where it is.
        safe = jnp.where(g2 > 0, g2, 1.0)
        delta = jnp.where(g2 > 0, -f / safe, 0.0)[..., None] * g
        flipped = jnp.sign(kernels.forward(net, params, xs[None] + 2 * delta)) != jnp.sign(f)
        dnorm = jnp.linalg.norm(delta, axis=-1)
        print(
            f"{d:>6} {float(jnp.mean(f**2)):>8.3f} {float(jnp.mean(g2)):>10.3f} {float(jnp.median(dnorm)):>15.3f} "
            f"{float(jnp.median(dnorm)) / d**0.5:>12.4f} {float(jnp.mean(flipped)):>19.1%} {n_net * n_x / dt:>10.0f}",
            file=out,
        )
