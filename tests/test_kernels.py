"""Batched kernels: batched = one by one, network j = network j alone, chunked = unchunked, jit = no jit."""

import re

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _multidevice_check import draw, stacked_params
from conftest import ATOL, RTOL, families, family_names

from jaxadv import data, kernels, nets


def _close(a, b, dtype="float32"):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=RTOL[dtype], atol=ATOL[dtype])


def _one(params, j):
    return jax.tree.map(lambda leaf: leaf[j], params)


@pytest.mark.parametrize("name", family_names())
def test_batched_equals_one_by_one_without_jit(name):
    net = families()[name]
    params = kernels.init_many(net, jax.random.key(0), 3)
    xs = data.sphere(jax.random.key(1), 4, 12)
    out = kernels.evaluate(net, params, xs)
    chex.assert_shape(out.f, (3, 4))
    chex.assert_shape(out.grad, (3, 4, 12))
    with jax.disable_jit():
        for j in range(3):
            pj = _one(params, j)
            for i in range(4):
                f, g = jax.value_and_grad(net.apply, argnums=1)(pj, xs[i])
                _close(out.f[j, i], f)
                _close(out.grad[j, i], g)


def test_network_j_of_init_many_is_network_j_alone():
    net = nets.mlp(12, [20, 10])
    params = kernels.init_many(net, jax.random.key(3), 5)
    keys = jax.random.split(jax.random.key(3), 5)
    for j in range(5):
        alone = net.init(keys[j])
        jax.tree.map(lambda a, b: np.testing.assert_array_equal(a, b), _one(params, j), alone)
    xs = data.sphere(jax.random.key(4), 6, 12)
    batched = kernels.evaluate(net, params, xs)
    for j in range(5):
        single = kernels.evaluate(net, net.init(keys[j]), xs)
        _close(batched.f[j], single.f)
        _close(batched.grad[j], single.grad)


def test_per_network_inputs():
    net = nets.two_layer(12, 30)
    params = kernels.init_many(net, jax.random.key(0), 4)
    xs = data.sphere(jax.random.key(1), 4 * 5, 12).reshape(4, 5, 12)
    out = kernels.evaluate(net, params, xs)
    for j in range(4):
        alone = kernels.evaluate(net, _one(params, j), xs[j])
        _close(out.f[j], alone.f)
        _close(out.grad[j], alone.grad)


@pytest.mark.parametrize("chunk_size", [1, 3, 7, 8, 20, 1000])
@pytest.mark.parametrize("per_net", [False, True])
def test_chunked_equals_unchunked(chunk_size, per_net):
    # Equal up to float32 rounding: a chunk of one pair is a matrix-vector product whose
    # summation order XLA may choose differently from a batched matrix product.
    net = nets.mlp(12, [24, 12], bias=True)
    params = kernels.init_many(net, jax.random.key(0), 4)
    xs = data.sphere(jax.random.key(1), 20 if per_net else 5, 12)
    if per_net:
        xs = xs.reshape(4, 5, 12)
    full = kernels.evaluate(net, params, xs)
    chunked = kernels.evaluate(net, params, xs, chunk_size=chunk_size)
    _close(chunked.f, full.f)
    _close(chunked.grad, full.grad)
    _close(kernels.forward(net, params, xs, chunk_size=chunk_size), full.f)


def test_the_plan_fits_each_budget_and_its_chunks_give_the_unchunked_numbers():
    net = nets.mlp(32, [64, 64])
    params, xs = stacked_params(net, 6, 0), draw((40, 32), 1)  # NumPy draws: no sampler to compile
    full = kernels.evaluate(net, params, xs)
    roomy = kernels.plan(net, params, xs, max_bytes=1 << 40)
    assert (roomy.net_chunk, roomy.x_chunk, roomy.budget, roomy.n_devices) == (None, None, 1 << 40, 1)
    pair = kernels.plan(net, params, xs, chunk_size=1).estimated_bytes  # 1 network × 1 input
    one_net = kernels.plan(net, params, xs, chunk_size=40).estimated_bytes  # 1 network × all 40 inputs
    assert pair < one_net < roomy.estimated_bytes
    seen = set()
    for budget in (pair, (pair + one_net) // 2, one_net, 3 * one_net, roomy.estimated_bytes):
        p = kernels.plan(net, params, xs, max_bytes=budget)
        assert p.estimated_bytes <= budget and p.budget == budget, (budget, p)
        # The largest block that fits: inputs of one network below one_net, whole networks from there.
        assert (p.x_chunk is not None) == (budget < one_net) and (p.net_chunk is None) == (budget >= roomy.estimated_bytes)
        chunked = kernels.evaluate(net, params, xs, max_bytes=budget)
        _close(chunked.f, full.f)
        _close(chunked.grad, full.grad)
        seen.add(p[:2])
    assert len(seen) == 5  # five budgets, five different chunkings
    # Shapes alone give the same plan: a run can be sized before its parameters exist.
    shapes = jax.eval_shape(lambda: kernels.init_many(net, jax.random.key(0), 6))
    assert jax.tree.map(lambda a: (a.shape, a.dtype), shapes) == jax.tree.map(lambda a: (a.shape, a.dtype), params)
    assert kernels.plan(net, shapes, jax.ShapeDtypeStruct(xs.shape, xs.dtype), max_bytes=one_net) == kernels.plan(
        net, params, xs, max_bytes=one_net)


def test_memory_estimate_grows_with_batch():
    net = nets.mlp(100, [200, 200])
    params = jax.eval_shape(lambda: kernels.init_many(net, jax.random.key(0), 2))

    def est(n_x):
        return kernels.plan(net, params, jax.ShapeDtypeStruct((n_x, 100), jnp.float32), max_bytes=1 << 40).estimated_bytes

    # 990 more pairs each hold at least an input, a gradient (100 floats each) and two activations.
    assert est(1000) - est(10) >= 2 * 990 * (2 * 100 + 2 * 200) * 4


_RUNS = []


def _counted(p, x):
    # Counts executions (not traces): the refusal must come before anything runs.
    jax.debug.callback(lambda: _RUNS.append(1))
    return nets.mlp(100, [200, 200]).apply(p, x)


def _bytes_in(message):
    return [int(n) for n in re.findall(r"\((\d+) bytes\)", message)]


def test_a_budget_below_one_pair_is_refused_before_any_compute_with_the_numbers():
    assert issubclass(kernels.MemoryBudgetError, MemoryError)
    net = nets.mlp(100, [200, 200])
    params, xs = stacked_params(net, 3, 0), draw((5, 100), 1)
    param_bytes = 4 * (100 * 200 + 200 * 200 + 200)  # one network's weights
    pair = kernels.plan(net, params, xs, fn=_counted, chunk_size=1).estimated_bytes
    assert pair > param_bytes
    compiled = kernels._map_pairs._cache_size()
    # The parameters alone exceed the budget: say so, and point to matrix-free layers.
    with pytest.raises(kernels.MemoryBudgetError, match="parameters alone take.*matrix_free") as err:
        kernels.map_pairs(_counted, net, params, xs, max_bytes=param_bytes // 2)
    assert _bytes_in(str(err.value)) == [pair, param_bytes // 2, param_bytes]
    assert f"raise max_bytes to at least {pair}" in str(err.value)
    # The parameters fit, one pair does not.
    with pytest.raises(kernels.MemoryBudgetError, match="largest feasible block is 0 pairs") as err:
        kernels.map_pairs(_counted, net, params, xs, max_bytes=pair - 1)
    assert _bytes_in(str(err.value)) == [pair, pair - 1] and "parameters alone" not in str(err.value)
    with pytest.raises(kernels.MemoryBudgetError):
        kernels.plan(net, params, xs, fn=_counted, max_bytes=pair - 1)
    assert _RUNS == [] and kernels._map_pairs._cache_size() == compiled  # nothing ran, nothing compiled
    kernels.map_pairs(_counted, net, params, xs, max_bytes=pair)  # exactly one pair per block fits
    jax.effects_barrier()
    assert len(_RUNS) > 0


def test_an_explicit_chunk_over_the_budget_is_refused_with_the_largest_that_fits():
    net = nets.mlp(32, [64, 64])
    params, xs = stacked_params(net, 6, 0), draw((40, 32), 1)  # NumPy draws: no sampler to compile
    one_net = kernels.plan(net, params, xs, chunk_size=40).estimated_bytes
    with pytest.raises(kernels.MemoryBudgetError, match=r"chunk_size=250 makes blocks of 6 network\(s\) × 40 input\(s\)") as err:
        kernels.evaluate(net, params, xs, chunk_size=250, max_bytes=one_net)
    largest = int(re.search(r"largest chunk_size that fits is (\d+) pairs", str(err.value)).group(1))
    assert largest == 40  # one network's inputs: two networks' would not fit
    assert kernels.plan(net, params, xs, chunk_size=largest, max_bytes=one_net).estimated_bytes == one_net
    _close(kernels.forward(net, params, xs, chunk_size=largest, max_bytes=one_net), kernels.forward(net, params, xs))


def test_init_many_refuses_before_drawing_and_names_the_largest_count():
    net = nets.mlp(100, [200, 200])
    one = 4 * (100 * 200 + 200 * 200 + 200)
    with pytest.raises(kernels.MemoryBudgetError, match=r"at most n=3 fit") as err:
        kernels.init_many(net, jax.random.key(0), 10, max_bytes=3 * one + 1)
    assert _bytes_in(str(err.value)) == [10 * one, one, 3 * one + 1]
    # Three fit (traced, not drawn: jax.eval_shape runs no compute).
    shapes = jax.eval_shape(lambda: kernels.init_many(net, jax.random.key(0), 3, max_bytes=3 * one + 1))
    assert jax.tree.leaves(shapes)[0].shape[0] == 3
    with pytest.raises(kernels.MemoryBudgetError, match="not one network fits.*matrix_free"):
        kernels.init_many(net, jax.random.key(0), 1, max_bytes=one - 1)


def test_jit_of_evaluate_equals_direct_call_and_compiles_once():
    net = nets.two_layer(12, 20)
    params = kernels.init_many(net, jax.random.key(0), 3)
    xs = data.sphere(jax.random.key(1), 4, 12)
    direct = kernels.evaluate(net, params, xs)
    jitted = jax.jit(lambda p, x: kernels.evaluate(net, p, x))(params, xs)
    _close(jitted.f, direct.f)
    _close(jitted.grad, direct.grad)

    calls = []

    @chex.assert_max_traces(n=1)
    def body(p, x):
        calls.append(1)
        return kernels.evaluate(net, p, x).f

    jbody = jax.jit(body)
    for seed in range(3):  # new values, same shapes: no retrace
        jbody(params, data.sphere(jax.random.key(seed), 4, 12))
    assert len(calls) == 1


def test_equal_networks_share_compiled_kernels():
    xs = data.sphere(jax.random.key(1), 4, 12)
    p = nets.mlp(12, [8]).init(jax.random.key(0))
    kernels.evaluate(nets.mlp(12, [8]), p, xs)
    before = kernels._map_pairs._cache_size()
    kernels.evaluate(nets.mlp(12, [8]), p, xs + 1.0)  # a new, equal Network object
    assert kernels._map_pairs._cache_size() == before


def test_value_and_input_grad():
    net = nets.two_layer(12, 20, "softplus")
    p = net.init(jax.random.key(0))
    x = data.sphere(jax.random.key(1), 1, 12)[0]
    f, g = kernels.value_and_input_grad(net.apply)(p, x)
    _close(f, net.apply(p, x))
    _close(g, jax.grad(net.apply, argnums=1)(p, x))
    assert kernels.value_and_input_grad(net.apply) is kernels.value_and_input_grad(nets.two_layer(12, 20, "softplus").apply)


def test_float64_inputs_give_float64_results(x64):
    net = nets.mlp(12, [10])
    params = kernels.init_many(net, jax.random.key(0), 2)
    xs = data.sphere(jax.random.key(1), 3, 12)
    out = kernels.evaluate(net, params, xs)
    assert out.f.dtype == jnp.float64 and out.grad.dtype == jnp.float64


def test_float32_agrees_with_float64_reference():
    net = nets.mlp(50, [100, 100, 100])
    params32 = kernels.init_many(net, jax.random.key(0), 3)
    xs32 = data.sphere(jax.random.key(1), 5, 50)
    out32 = kernels.evaluate(net, params32, xs32)
    with jax.enable_x64(True):
        params64 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params32)
        out64 = kernels.evaluate(net, params64, jnp.asarray(xs32, jnp.float64))
        # Relative error of a depth-3 float32 forward pass: a few hundred ulps at most.
        np.testing.assert_allclose(np.asarray(out32.f, np.float64), out64.f, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(np.asarray(out32.grad, np.float64), out64.grad, rtol=1e-4, atol=1e-5)


def test_map_pairs_with_per_x_per_pair_and_shared_arguments():
    net = nets.two_layer(6, 10)
    params = kernels.init_many(net, jax.random.key(0), 3)
    xs = data.sphere(jax.random.key(1), 4, 6)
    us = data.sphere(jax.random.key(2), 4, 6, radius=1.0)
    ts = jnp.arange(12.0).reshape(3, 4)

    def fn(p, x, u, t, scale):
        return net.apply(p, x + scale * t * u)

    out = kernels.map_pairs(fn, net, params, xs, per_x=(us,), per_pair=(ts,), shared=(0.5,), chunk_size=5)
    for j in range(3):
        for i in range(4):
            _close(out[j, i], net.apply(_one(params, j), xs[i] + 0.5 * ts[j, i] * us[i]))


def test_map_nets_over_a_per_network_data_set():
    net = nets.two_layer(6, 10)
    params = kernels.init_many(net, jax.random.key(0), 3)
    xs = data.sphere(jax.random.key(1), 12, 6).reshape(3, 4, 6)

    def set_min(p, x_set, offset):
        return jnp.min(jax.vmap(net.apply, (None, 0))(p, x_set)) + offset

    out = kernels.map_nets(set_min, net, params, per_net=(xs,), shared=(1.0,), chunk_size=2)
    assert out.shape == (3,)
    for j in range(3):
        pj = _one(params, j)
        _close(out[j], min(float(net.apply(pj, x)) for x in xs[j]) + 1.0)
    single = kernels.map_nets(set_min, net, _one(params, 1), per_net=(xs[1],), shared=(1.0,))
    _close(single, out[1])
    with pytest.raises(ValueError, match=r"`per_net\[0\]` must have a leading axis of 3"):
        kernels.map_nets(set_min, net, params, per_net=(xs[0],), shared=(1.0,))
