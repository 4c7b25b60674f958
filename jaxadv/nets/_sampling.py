"""Gaussian weights bitwise equal to ``jax.random.normal``, drawn faster from threefry keys.

On CPU, JAX lowers its threefry2x32 hash as a loop over its 5 groups of 4 rounds, which keeps
compile times short but leaves each group's result in memory. Unrolled, the 20 rounds fuse with
the normal transform into one vectorised loop. Drawing the weights of a sweep over fresh
networks costs about as much as evaluating them, and ``benchmarks/kernels.py`` times it
(``draw_s``): on a 2-core CPU, ``init_many`` with a threefry key went from 2.2–2.6× slower
than with a philox key to 1.0–1.5× faster (``benchmarks/results/suite-cpu.json``, and the
run before this module).

:func:`normal` therefore reads a threefry key's data into a private PRNG implementation whose
``random_bits`` is the same hash, round by round, over the same counters as JAX's
(``jax_threefry_partitionable`` layout), and lets ``jax.random.normal`` apply its own
uniform-to-normal transform. The floats are bitwise those of ``jax.random.normal(key, ...)``
(``tests/test_nets_sampling.py``). Keys of other implementations, and draws this module does
not reproduce (the non-partitionable layout, 2³² values or more), go to ``jax.random.normal``
unchanged. No global JAX setting is read for more than that check, and none is changed.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend import random as jex_random

# Threefry-2x32 (Salmon et al. 2011, as in jax._src.random.threefry2x32): rotation constants of
# the two alternating groups of four rounds, and the key-schedule parity constant.
_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = np.uint32(0x1BD11BDA)


def _rotate_left(x: jax.Array, d: int) -> jax.Array:
    return (x << np.uint32(d)) | (x >> np.uint32(32 - d))


def threefry2x32(k1: jax.Array, k2: jax.Array, x1: jax.Array, x2: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The Threefry-2x32 hash (20 rounds) of counters ``(x1, x2)`` under key ``(k1, k2)``,
    written out round by round."""
    ks = (k1, k2, k1 ^ k2 ^ _PARITY)
    x1, x2 = x1 + ks[0], x2 + ks[1]
    for group in range(5):
        for r in _ROTATIONS[group % 2]:
            x1 = x1 + x2
            x2 = x1 ^ _rotate_left(x2, r)
        x1 = x1 + ks[(group + 1) % 3]
        x2 = x2 + ks[(group + 2) % 3] + np.uint32(group + 1)
    return x1, x2


def _random_bits(key_data: jax.Array, bit_width: int, shape: tuple[int, ...]) -> jax.Array:
    # JAX's partitionable layout: value i hashes the counter pair (i >> 32, i & 0xffffffff);
    # :func:`normal` only comes here below 2³² values, where the high word is 0.
    lo = jax.lax.iota(np.uint32, math.prod(shape)).reshape(shape)
    b1, b2 = threefry2x32(key_data[0], key_data[1], jnp.zeros_like(lo), lo)
    if bit_width == 64:
        return (b1.astype(np.uint64) << np.uint64(32)) | b2.astype(np.uint64)
    bits = b1 ^ b2
    return bits if bit_width == 32 else bits.astype({8: np.uint8, 16: np.uint16}[bit_width])


_THREEFRY = jex_random.threefry_prng_impl
# The same keys (seed, split and fold_in are JAX's own); only the bits' lowering differs.
_UNROLLED = jex_random.define_prng_impl(
    key_shape=_THREEFRY.key_shape, seed=_THREEFRY.seed, split=_THREEFRY.split, random_bits=_random_bits,
    fold_in=_THREEFRY.fold_in, name="threefry2x32_unrolled", tag="jaxadv_tfu")


@functools.cache
def _threefry_spec() -> Any:
    # What jax.random.key_impl returns for a threefry key (a name or a spec object, depending
    # on the JAX version), taken from JAX itself rather than spelled out.
    return jax.random.key_impl(jax.random.key(0, impl="threefry2x32"))


def _is_threefry(key: jax.Array) -> bool:
    return jax.random.key_impl(key) == _threefry_spec()


def reproduces(key: jax.Array, shape: tuple[int, ...]) -> bool:
    """Whether :func:`normal` draws ``shape`` from the typed ``key`` by the unrolled hash
    (else it calls ``jax.random.normal``)."""
    return (_is_threefry(key) and bool(jax.config.jax_threefry_partitionable)
            and all(isinstance(d, (int, np.integer)) for d in shape) and 0 < math.prod(shape) < 2**32)


def normal(key: jax.Array, shape: tuple[int, ...], dtype: Any = jnp.float32) -> jax.Array:
    """``jax.random.normal(key, shape, dtype)``, bitwise, for one key (typed, or a raw
    ``uint32[2]`` key, which jax.random reads with the default implementation)."""
    shape = tuple(shape)
    if not jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.wrap_key_data(key)
    if not reproduces(key, shape):
        return jax.random.normal(key, shape, dtype)
    unrolled = jax.random.wrap_key_data(jax.random.key_data(key), impl=_UNROLLED)
    return jax.random.normal(unrolled, shape, dtype)
