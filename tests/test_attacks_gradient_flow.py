"""gradient_flow: Daniely & Schacham 2020 — small gradient steps on f reach the boundary."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxadv import attacks, data, kernels, nets


def test_linear_closed_form(x64):
    # f(x) = wᵀx + b: the flow is the straight line toward the boundary; the crossing is at
    # distance |f|/‖w‖. Normalised steps of length s reach it after ⌈dist/s⌉ steps; the
    # refined point is within rtol·s past it; without refinement, within one step.
    d = 6
    net = nets.linear(d)
    params = net.init(jax.random.key(0))
    xs = data.gaussian(jax.random.key(1), 30, d)
    w = np.asarray(params["w"])
    exact = np.abs(np.asarray(xs @ params["w"] + params["b"])) / np.linalg.norm(w)
    s = 0.1
    r = attacks.gradient_flow(net, params, xs, step_size=s, normalized=True, max_steps=200, n_bisect=60, rtol=0.0)
    assert bool(r.success.all())
    np.testing.assert_allclose(r.distance, exact, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(r.path_length, r.distance, rtol=1e-9)  # a straight path
    np.testing.assert_array_equal(np.asarray(r.n_steps), np.ceil(exact / s).astype(int))
    np.testing.assert_allclose(r.max_step, s, rtol=1e-12)
    np.testing.assert_array_equal(np.asarray(r.n_grad), np.asarray(r.n_steps) + 1)
    r0 = attacks.gradient_flow(net, params, xs, step_size=s, normalized=True, max_steps=200, n_bisect=0)
    dist0 = np.asarray(r0.distance)
    assert np.all((dist0 >= exact) & (dist0 <= exact + s * (1 + 1e-12)))
    assert np.all(np.asarray(r0.n_forward) == 0)
    # Fixed steps x ← x − s·sign(f)·w: each step has length s‖w‖ exactly.
    rf = attacks.gradient_flow(net, params, xs, step_size=s, max_steps=200, n_bisect=60, rtol=0.0)
    np.testing.assert_allclose(rf.max_step, s * np.linalg.norm(w), rtol=1e-12)
    np.testing.assert_allclose(rf.distance, exact, rtol=1e-9, atol=1e-12)
    # The step cap: too few steps to get there is a failure, with n_steps = max_steps.
    rc = attacks.gradient_flow(net, params, xs, step_size=s, normalized=True, max_steps=2, n_bisect=0)
    far = exact > 2 * s * (1 + 1e-9)
    np.testing.assert_array_equal(np.asarray(rc.success), ~far)
    assert np.all(np.asarray(rc.n_steps)[far] == 2) and np.all(np.isinf(np.asarray(rc.distance)[far]))


def test_random_nets_step_invariants_and_verified_success():
    d = k = 100
    net = nets.two_layer(d, k)
    params = kernels.init_many(net, jax.random.key(30), 4)
    xs = data.sphere(jax.random.key(31), 25, d)
    s = 0.05
    r = attacks.gradient_flow(net, params, xs, step_size=s, normalized=True)
    assert bool(r.success.all())
    # Never a step longer than the step size (normalised: every full step is s, up to rounding),
    # and the path is at most n_steps full steps and at least the straight distance.
    assert float(r.max_step.max()) <= s * (1 + 1e-5)
    assert bool(jnp.all(r.path_length <= r.n_steps * s * (1 + 1e-5)))
    assert bool(jnp.all(r.path_length >= r.distance * (1 - 1e-5)))
    assert bool(jnp.all(r.path_length > (r.n_steps - 1) * s * (1 - 1e-5)))  # the last step is partial
    f_adv = kernels.forward(net, params, r.x_adv)
    np.testing.assert_array_equal(np.asarray(jnp.sign(f_adv)), -np.asarray(jnp.sign(r.f_clean)))
    # Daniely & Schacham: the distance is Õ(‖x‖/√d) = O(1); the flow ends near the one-step
    # point (the gradient barely turns, Bubeck et al. eq. (6)), so it is at most the
    # one-step distance plus a step and far below ‖x‖ = 10.
    o = attacks.one_step(net, params, xs)
    assert bool(jnp.all(r.distance <= o.distance * 1.05 + s))
    assert float(jnp.median(r.distance)) < 1.0


def test_batch_consistency_and_dtypes():
    net = nets.two_layer(10, 12, "softplus")
    params = kernels.init_many(net, jax.random.key(1), 3)
    xs = data.sphere(jax.random.key(2), 12, 10).reshape(3, 4, 10)
    r = attacks.gradient_flow(net, params, xs, step_size=0.1)
    assert float(r.success.mean()) > 0.5
    for j in range(3):
        rj = attacks.gradient_flow(net, jax.tree.map(lambda a: a[j], params), xs[j], step_size=0.1)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a[j], b, rtol=1e-5, atol=1e-6), r, rj)
    with jax.enable_x64(True):
        p64 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
        r64 = attacks.gradient_flow(net, p64, jnp.asarray(xs, jnp.float64), step_size=0.1)
        d64, n64 = np.asarray(r64.distance), np.asarray(r64.n_steps)
    np.testing.assert_array_equal(np.asarray(r.n_steps), n64)
    np.testing.assert_allclose(r.distance, d64, rtol=1e-3)


def test_zero_input_and_dead_network_fail_cleanly():
    net = nets.two_layer(10, 8)
    params = net.init(jax.random.key(0))
    dead = {"W": -jnp.abs(params["W"]), "a": params["a"]}
    for p, x in ((params, jnp.zeros((1, 10))), (dead, jnp.ones((1, 10)))):
        for normalized in (False, True):
            r = attacks.gradient_flow(net, p, x, normalized=normalized)
            assert not bool(r.success.any()) and bool(jnp.all(jnp.isinf(r.distance)))
            assert int(r.n_steps[0]) == 0 and int(r.n_grad[0]) == 1
            np.testing.assert_array_equal(np.asarray(r.x_adv), np.asarray(x))
            for leaf in jax.tree.leaves(r):
                assert not bool(jnp.any(jnp.isnan(leaf)))


KEY = jax.random.key(0)
NET = nets.two_layer(5, 4)
PARAMS = NET.init(KEY)
XS = data.sphere(KEY, 3, 5)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(step_size=0.0), ValueError, "`step_size` must be a finite number > 0"),
        (dict(step_size=-0.1), ValueError, "`step_size` must be a finite number > 0"),
        (dict(max_steps=0), ValueError, "`max_steps` must be a positive integer"),
        (dict(max_steps=10.0), TypeError, "`max_steps` must be a positive integer"),
        (dict(normalized="yes"), TypeError, "`normalized` must be True or False"),
        (dict(n_bisect=-1), ValueError, "`n_bisect` must be an integer ≥ 0"),
        (dict(rtol=float("nan")), ValueError, "`rtol` must be a finite number ≥ 0"),
    ],
)
def test_bad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        attacks.gradient_flow(NET, PARAMS, XS, **kwargs)


def test_bad_inputs():
    with pytest.raises(ValueError, match="`xs` must be finite"):
        attacks.gradient_flow(NET, PARAMS, XS.at[0, 0].set(jnp.nan))
    with pytest.raises(ValueError, match=r"`xs` must have shape"):
        attacks.gradient_flow(NET, PARAMS, XS[:, :3])
