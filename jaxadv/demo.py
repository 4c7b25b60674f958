"""A one-minute demonstration of what jaxadv measures, built only from the public API."""

from __future__ import annotations

import time
from typing import TextIO

import jax
import jax.numpy as jnp

from jaxadv import attacks, data, kernels, nets


def bubeck_demo(*, seed: int = 0, n_net: int = 10, n_x: int = 30, out: TextIO) -> None:
    """Bubeck et al. 2021 in numbers, on random two-layer ReLU nets with d = k and ‖x‖ = √d.

    Columns: E f² and E‖∇f‖² (both 1/2 in theory, §1.2); the fraction of inputs whose sign a
    single gradient step with |η| < 20 flips (§4: 100% for d, k > 50) and the median size
    ‖η∇f‖ of that step (O(1), so it shrinks like 1/√d relative to ‖x‖); the median
    minimum-norm ℓ2 distance to the boundary (``min_norm``), which the one step nearly
    attains; and the throughput of the batched one-step attack.
    """
    key = jax.random.key(seed)
    head = f"{'d=k':>6} {'E f^2':>7} {'E|grad|^2':>10} {'one step flips':>15} {'|eta grad|':>11} {'/|x|':>7} {'min-norm l2':>12} {'pairs/s':>9}"
    print(head, file=out)
    for d in (10, 100, 1000):
        k_net, k_x, key = jax.random.split(key, 3)
        net = nets.two_layer(d, d)
        params = kernels.init_many(net, k_net, n_net)
        xs = data.sphere(k_x, n_x, d)
        f, g = kernels.evaluate(net, params, xs)
        attacks.one_step(net, params, xs).success.block_until_ready()  # compile
        t0 = time.perf_counter()
        step = attacks.one_step(net, params, xs)
        step.success.block_until_ready()
        dt = time.perf_counter() - t0
        mn = attacks.min_norm(net, params, xs)
        med_step = float(jnp.median(step.distance))  # inf where it failed, so a median of all pairs
        print(
            f"{d:>6} {float(jnp.mean(f**2)):>7.3f} {float(jnp.mean(jnp.sum(g**2, -1))):>10.3f} "
            f"{float(jnp.mean(step.success)):>15.1%} {med_step:>11.3f} {med_step / d**0.5:>7.4f} "
            f"{float(jnp.median(mn.distance)):>12.3f} {n_net * n_x / dt:>9.0f}",
            file=out,
        )
