"""The networks' normal sampler: the Threefry-2x32 hash against its published answers, and
every draw bitwise equal to jax.random.normal (the sampler only changes how the hash is
lowered, never a value)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.extend import random as jex_random

from jaxadv import kernels, nets
from jaxadv.nets import _sampling

U32 = np.uint32


@pytest.mark.parametrize("key, counter, expected", [
    # Known-answer tests of Threefry-2x32 with 20 rounds (Salmon et al. 2011, Random123's
    # kat_vectors; the same three that JAX's own tests use).
    ((0, 0), (0, 0), (0x6B200159, 0x99BA4EFE)),
    ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
    ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0)),
])
def test_threefry_hash_gives_the_published_answers(key, counter, expected):
    out = _sampling.threefry2x32(*(jnp.asarray([v], U32) for v in (*key, *counter)))
    assert tuple(int(o[0]) for o in out) == expected


def test_threefry_hash_equals_jaxs_on_many_counters():
    rng = np.random.default_rng(0)
    k = rng.integers(0, 2**32, 2, dtype=np.uint64).astype(U32)
    c = rng.integers(0, 2**32, (2, 1000), dtype=np.uint64).astype(U32)
    ours = jax.jit(_sampling.threefry2x32)(k[0], k[1], c[0], c[1])
    theirs = jex_random.threefry_2x32(jnp.asarray(k), jnp.asarray(c.reshape(-1)))  # halves: x1, x2
    np.testing.assert_array_equal(np.concatenate([np.asarray(o) for o in ours]), np.asarray(theirs))


SHAPES = [(1,), (7,), (3, 5), (2, 3, 4), (1000,), (64, 1000)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
def test_normal_is_jax_random_normal_bitwise(shape, dtype):
    for seed in (0, 1, 12345):
        key = jax.random.key(seed)
        assert _sampling.reproduces(key, shape)
        ours = jax.jit(lambda k: _sampling.normal(k, shape, dtype))(key)
        theirs = jax.jit(lambda k: jax.random.normal(k, shape, dtype))(key)
        assert ours.dtype == theirs.dtype and ours.shape == shape
        np.testing.assert_array_equal(np.asarray(ours.astype(jnp.float32)), np.asarray(theirs.astype(jnp.float32)))
    # Eagerly too, and from a raw uint32[2] key (read with the default implementation).
    key = jax.random.PRNGKey(3)
    np.testing.assert_array_equal(np.asarray(_sampling.normal(key, shape, dtype).astype(jnp.float32)),
                                  np.asarray(jax.random.normal(key, shape, dtype).astype(jnp.float32)))


def test_normal_is_bitwise_under_vmap_fold_in_and_x64(x64):
    keys = jax.random.split(jax.random.key(7), 5)
    draw = jax.jit(jax.vmap(lambda k: _sampling.normal(jax.random.fold_in(k, 3), (9, 4), jnp.float32)))
    ref = jax.jit(jax.vmap(lambda k: jax.random.normal(jax.random.fold_in(k, 3), (9, 4), jnp.float32)))
    np.testing.assert_array_equal(np.asarray(draw(keys)), np.asarray(ref(keys)))
    # float64 takes 64-bit words (both halves of the hash).
    np.testing.assert_array_equal(np.asarray(_sampling.normal(keys[0], (11,), jnp.float64)),
                                  np.asarray(jax.random.normal(keys[0], (11,), jnp.float64)))


def test_other_key_implementations_and_layouts_go_to_jax_unchanged():
    key = jax.random.key(0, impl="philox4x32")
    assert not _sampling.reproduces(key, (5,))
    np.testing.assert_array_equal(np.asarray(_sampling.normal(key, (5,))), np.asarray(jax.random.normal(key, (5,))))
    key = jax.random.key(0)
    assert _sampling.reproduces(key, (np.int64(3), 2))  # NumPy integers are sizes too
    np.testing.assert_array_equal(np.asarray(_sampling.normal(key, (np.int64(3), 2))),
                                  np.asarray(jax.random.normal(key, (3, 2))))
    assert not _sampling.reproduces(key, (0, 3))  # nothing to draw
    assert _sampling.normal(key, (0, 3)).shape == (0, 3)
    assert not _sampling.reproduces(key, (2**16, 2**16))  # counters past 32 bits
    # JAX's other counter layout: the unrolled hash would give other numbers, so it must not run.
    with jax.threefry_partitionable(False):
        assert not _sampling.reproduces(key, (5,))
        np.testing.assert_array_equal(np.asarray(jax.jit(lambda k: _sampling.normal(k, (5,)))(key)),
                                      np.asarray(jax.jit(lambda k: jax.random.normal(k, (5,)))(key)))


def test_networks_take_the_unrolled_hash_only_from_threefry_keys():
    # Without this, every equality test would also pass with the sampler never used.
    net = nets.mlp(4, [3])
    jaxpr = lambda key: str(jax.make_jaxpr(lambda k: kernels.init_many(net, k, 2))(key))  # noqa: E731
    assert "jaxadv_tfu" in jaxpr(jax.random.key(0))
    assert "jaxadv_tfu" not in jaxpr(jax.random.key(0, impl="philox4x32"))


@pytest.mark.parametrize("net", [nets.two_layer(12, 16), nets.mlp(12, [16, 8]),
                                 nets.two_layer(12, 16, weights="matrix_free")], ids=lambda n: n.name)
def test_networks_draw_what_jax_random_normal_draws(net):
    # The draw inside every family goes through the sampler; swapping jax.random.normal back
    # in must not change one bit of any network.
    key = jax.random.key(5)
    ours = kernels.init_many(net, key, 3)
    original = _sampling.normal
    try:
        _sampling.normal = lambda k, shape, dtype=jnp.float32: jax.random.normal(k, shape, dtype)
        jax.clear_caches()
        theirs = kernels.init_many(net, key, 3)
        xs = jnp.ones((2, 12))
        f_theirs = kernels.evaluate(net, theirs, xs)
    finally:
        _sampling.normal = original
        jax.clear_caches()
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs)):
        if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):
            a, b = jax.random.key_data(a), jax.random.key_data(b)
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    f_ours = kernels.evaluate(net, ours, xs)  # matrix-free weights are drawn here
    np.testing.assert_array_equal(np.asarray(f_ours.f), np.asarray(f_theirs.f))
    np.testing.assert_array_equal(np.asarray(f_ours.grad), np.asarray(f_theirs.grad))
