"""Cross-cutting attack properties: sweeps of traced hyperparameters compile once, attacks
run under an outer jit, and float32 agrees with a float64 reference for every attack.
"""


import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxadv import attacks, data, kernels, nets

NET = nets.two_layer(16, 32)
PARAMS = kernels.init_many(NET, jax.random.key(0), 3)
XS = data.sphere(jax.random.key(1), 4, 16)
US = attacks.random_directions(jax.random.key(2), XS)

# Each entry: the attack as a function of one traced hyperparameter, and two values of it.
SWEEPS = {
    "one_step.eta_max": (lambda v: attacks.one_step(NET, PARAMS, XS, eta_max=v).eta, (5.0, 20.0)),
    "line_search.t_max": (lambda v: attacks.line_search(NET, PARAMS, XS, US, t_max=v).t, (3.0, 9.0)),
    "shared_line_search.t_max": (lambda v: attacks.shared_line_search(NET, PARAMS, XS, jnp.broadcast_to(US, XS.shape), t_max=v).t, (3.0, 9.0)),
    "gradient_flow.step_size": (lambda v: attacks.gradient_flow(NET, PARAMS, XS, step_size=v, max_steps=50).distance, (0.05, 0.1)),
    "min_norm.overshoot": (lambda v: attacks.min_norm(NET, PARAMS, XS, overshoot=v, n_steps=4).distance, (0.02, 0.05)),
    "fgsm.eps": (lambda v: attacks.fgsm(NET, PARAMS, XS, eps=v).success, (0.1, 0.3)),
    "pgd.eps": (lambda v: attacks.pgd(NET, jax.random.key(3), PARAMS, XS, eps=v, n_steps=3).success, (0.1, 0.3)),
}


@pytest.mark.parametrize("name", list(SWEEPS))
def test_a_sweep_over_a_traced_hyperparameter_compiles_once(name):
    fn, (a, b) = SWEEPS[name]
    fn(a)
    sizes = (kernels._map_pairs._cache_size(), kernels._map_nets._cache_size())
    out = fn(b)
    assert (kernels._map_pairs._cache_size(), kernels._map_nets._cache_size()) == sizes, name
    assert jax.tree.leaves(out)  # the call returned something real


@pytest.mark.parametrize("name", ["pgd.eps", "one_step.eta_max", "min_norm.overshoot"])
def test_attacks_run_under_an_outer_jit_without_retracing(name):
    fn, (a, b) = SWEEPS[name]
    direct = np.asarray(fn(a))
    traced = chex.assert_max_traces(fn, n=1)
    jitted = jax.jit(traced)
    # Under an outer jit the closed-over params are compile-time constants and XLA may fuse
    # differently: equal to float32 rounding, not bit for bit. one_step's search stops at a
    # bracket of relative width rtol = 1e-4 (its default), and a rounding-level change of f
    # can move the probes and so the returned end within that bracket: 2·rtol covers both ends.
    rtol = 2e-4 if name.startswith("one_step") else 1e-5
    np.testing.assert_allclose(np.asarray(jitted(a)), direct, rtol=rtol, atol=1e-6)
    jitted(b)  # a new value, same shapes: no second trace


def _f64(tree):
    return jax.tree.map(lambda a: jnp.asarray(a, jnp.float64) if jnp.issubdtype(jnp.result_type(a), jnp.floating) else a, tree)


def test_float32_agrees_with_float64_for_line_searches_and_pgd():
    # The searches stop at a relative bracket rtol = 1e-4 (the default), so float32 and
    # float64 answers agree to ~rtol wherever both succeed; PGD's iterates agree to float32
    # rounding (~1e-6 relative per step over 10 steps), far inside the 1e-3 used here.
    net = nets.mlp(16, [32, 32])
    params = kernels.init_many(net, jax.random.key(4), 3)
    xs = data.sphere(jax.random.key(5), 6, 16)
    us = attacks.random_directions(jax.random.key(6), xs)
    ls32 = attacks.line_search(net, params, xs, us, t_max=20.0)
    sh32 = attacks.shared_line_search(net, params, xs, jnp.broadcast_to(us, (3, *xs.shape)), t_max=20.0)
    pg32 = attacks.pgd(net, jax.random.key(7), params, xs, eps=0.8, norm=2, n_steps=10, random_start=False)
    with jax.enable_x64(True):
        p64, x64, u64 = _f64(params), _f64(xs), _f64(us)
        ls64 = attacks.line_search(net, p64, x64, u64, t_max=20.0)
        sh64 = attacks.shared_line_search(net, p64, x64, jnp.broadcast_to(u64, (3, *xs.shape)), t_max=20.0)
        pg64 = attacks.pgd(net, jax.random.key(7), p64, x64, eps=0.8, norm=2, n_steps=10, random_start=False)
        assert ls64.t.dtype == jnp.float64 and pg64.x_adv.dtype == jnp.float64
    both = np.asarray(ls32.success) & np.asarray(ls64.success)
    assert both.sum() >= 5  # the comparison is not vacuous (random directions often never cross)
    np.testing.assert_array_equal(np.asarray(ls32.success), np.asarray(ls64.success))
    np.testing.assert_allclose(np.asarray(ls32.t)[both], np.asarray(ls64.t)[both], rtol=3e-4)
    np.testing.assert_array_equal(np.asarray(sh32.success), np.asarray(sh64.success))
    ok = np.asarray(sh64.success)
    np.testing.assert_allclose(np.asarray(sh32.t)[ok], np.asarray(sh64.t)[ok], rtol=3e-4)
    np.testing.assert_array_equal(np.asarray(pg32.success), np.asarray(pg64.success))
    np.testing.assert_allclose(np.asarray(pg32.x_adv, np.float64), np.asarray(pg64.x_adv), rtol=1e-3, atol=1e-4)


def test_shared_line_search_with_an_empty_selection_fails():
    where = jnp.zeros((3, 4), bool)
    res = attacks.shared_line_search(NET, PARAMS, XS, jnp.broadcast_to(US, (3, *XS.shape)), t_max=5.0, where=where)
    assert not bool(jnp.any(res.success))
    assert bool(jnp.all(jnp.isinf(res.t)))
