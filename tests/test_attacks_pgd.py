"""FGSM, PGD and robust accuracy: closed forms on linear models, ball and box invariants,
monotone robustness curves, key reproducibility and bad input."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxadv import data, kernels, nets
from jaxadv.attacks import fgsm, pgd, robust_accuracy

NORMS = [1, 2, math.inf]
DUAL = {1: math.inf, 2: 2, math.inf: 1}
CHUNK = dict(chunk_size=4096)  # one fixed block size, so tests share compiled kernels


def _linear_case():
    net = nets.linear(8)
    params = kernels.init_many(net, jax.random.key(0), 3)
    xs = data.sphere(jax.random.key(1), 5, 8)
    f = np.asarray(kernels.forward(net, params, xs))
    return net, params, xs, f


@pytest.mark.parametrize("norm", NORMS)
def test_fgsm_on_a_linear_model_flips_exactly_past_the_closed_form(x64, norm):
    # One steepest step of size ε changes f by −s·ε·‖w‖_q, so it flips iff ε > |f|/‖w‖_q.
    net, params, xs, f = _linear_case()
    exact = np.abs(f) / np.linalg.norm(np.asarray(params["w"]), ord=DUAL[norm], axis=-1)[:, None]
    for j in range(3):
        pj = jax.tree.map(lambda a: a[j], params)
        for i in range(5):
            for factor, flips in [(1 - 1e-6, False), (1 + 1e-6, True)]:
                res = fgsm(net, pj, xs[i : i + 1], eps=float(exact[j, i] * factor), norm=norm, **CHUNK)
                assert bool(res.success[0]) == flips, (j, i, factor)
                if flips:
                    assert math.isclose(float(res.distance[0]), exact[j, i] * factor, rel_tol=1e-9)
                else:
                    assert np.isinf(res.distance[0])


@pytest.mark.parametrize(
    "norm, bounds",
    [
        (2, (-1.0, 1.0)),
        (math.inf, (-1.0, 1.0)),
        pytest.param(1, (-1.0, 1.0), marks=pytest.mark.slow),
        pytest.param(1, None, marks=pytest.mark.slow),
        pytest.param(2, None, marks=pytest.mark.slow),
        pytest.param(math.inf, None, marks=pytest.mark.slow),
    ],
)
def test_pgd_stays_in_the_ball_and_the_box(norm, bounds):
    net = nets.two_layer(10, 20)
    params = kernels.init_many(net, jax.random.key(2), 3)
    xs = jax.random.uniform(jax.random.key(3), (6, 10), minval=-1, maxval=1)
    eps = {1: 1.5, 2: 0.8, math.inf: 0.3}[norm]
    res = pgd(net, jax.random.key(4), params, xs, eps=eps, norm=norm, n_steps=15, bounds=bounds, **CHUNK)
    delta = np.asarray(res.x_adv - xs[None], np.float64)
    size = np.linalg.norm(delta, ord=norm, axis=-1)
    assert np.all(size <= eps * (1 + 1e-5)), size.max()
    if bounds is not None:
        assert np.all((res.x_adv >= -1) & (res.x_adv <= 1))
    np.testing.assert_allclose(np.where(res.success, size, np.inf), res.distance, rtol=1e-6)
    f_at = jax.vmap(lambda p, xa: jax.vmap(lambda z: net.apply(p, z))(xa))(params, res.x_adv)
    np.testing.assert_array_equal(f_at, res.f_adv)
    assert np.all(res.success == (np.sign(f_at) == -np.sign(res.f_clean)))
    assert res.success.any() and not res.success.all()  # the check has something to check


def test_pgd_on_a_linear_model_matches_the_closed_form(x64):
    # ℓ∞ PGD moves every coordinate by −s·α·sign(w) each step and ends at the vertex
    # −s·ε·sign(w) (2.5ε of total travel), so it flips iff ε > |f|/‖w‖₁.
    net, params, xs, f = _linear_case()
    exact = np.abs(f) / np.abs(np.asarray(params["w"])).sum(-1)[:, None]
    # One ε pair per (network, input), through robust_accuracy's ε sweep (one compile).
    for j in range(3):
        pj = jax.tree.map(lambda a: a[j], params)
        for i in range(5):
            eps = np.array([exact[j, i] * 0.99, exact[j, i] * 1.01])
            out = robust_accuracy(net, jax.random.key(5), pj, xs[i : i + 1], eps, n_steps=10, **CHUNK)
            np.testing.assert_array_equal(out.success[:, 0], [False, True])


def test_robust_accuracy_is_one_at_zero_and_non_increasing():
    net = nets.two_layer(20, 40)
    params = kernels.init_many(net, jax.random.key(6), 4)
    xs = data.sphere(jax.random.key(7), 10, 20)
    eps = jnp.linspace(0.0, 0.6, 7)
    # ℓ∞ radii up to 0.12 and ℓ2 radii up to 0.6·√… scale: both curves must start at 1 and drop.
    for norm, scale in [(math.inf, 0.2), (2, 2.0)]:
        out = robust_accuracy(net, jax.random.key(8), params, xs, eps * scale, norm=norm, n_steps=20, **CHUNK)
        assert out.success.shape == (7, 4, 10)
        acc = np.asarray(out.robust_accuracy)
        assert acc[0] == 1.0
        assert np.all(np.diff(acc) <= 0), acc
        assert acc[-1] < 1.0  # the curve actually drops
        np.testing.assert_allclose(acc, 1 - np.asarray(out.success).reshape(7, -1).mean(1))


def test_fgsm_curve_and_single_calls_agree():
    net = nets.two_layer(20, 40)
    params = kernels.init_many(net, jax.random.key(6), 2)
    xs = data.sphere(jax.random.key(7), 5, 20)
    eps = np.array([0.0, 0.3, 0.6])
    out = robust_accuracy(net, jax.random.key(0), params, xs, eps, attack="fgsm", norm=2, **CHUNK)
    for e_i, e in enumerate(eps):
        single = fgsm(net, params, xs, eps=e, norm=2, **CHUNK)
        np.testing.assert_array_equal(single.success, out.success[e_i])


def test_network_j_alone_reproduces_the_batch_and_batch_equals_one_by_one():
    net = nets.mlp(6, [8, 5])
    params = kernels.init_many(net, jax.random.key(9), 3)
    xs = data.sphere(jax.random.key(10), 4, 6)
    key = jax.random.key(11)
    batched = pgd(net, key, params, xs, eps=0.7, norm=2, n_steps=10, **CHUNK)
    net_keys = jax.random.split(key, 3)
    for j in range(3):
        alone = pgd(net, net_keys[j], jax.tree.map(lambda a: a[j], params), xs, eps=0.7, norm=2, n_steps=10, **CHUNK)
        for field in ("x_adv", "distance", "success", "f_adv", "n_grad"):
            np.testing.assert_allclose(getattr(alone, field), getattr(batched, field)[j], rtol=1e-6, atol=1e-7, err_msg=field)


@pytest.mark.slow
def test_pgd_one_input_alone_equals_its_row():
    # Without a random start the attack is deterministic: one input alone = its row.
    net = nets.mlp(6, [8, 5])
    params = kernels.init_many(net, jax.random.key(9), 3)
    xs = data.sphere(jax.random.key(10), 4, 6)
    key = jax.random.key(11)
    det = pgd(net, key, params, xs, eps=0.7, norm=2, n_steps=10, random_start=False, **CHUNK)
    one = pgd(net, key, params, xs[1:2], eps=0.7, norm=2, n_steps=10, random_start=False, **CHUNK)
    np.testing.assert_allclose(one.x_adv[:, 0], det.x_adv[:, 1], rtol=1e-6, atol=1e-7)


def test_float32_agrees_with_float64():
    # FGSM is one closed-form step: the two precisions agree to float32 rounding (rtol 1e-5)
    # except where |f(x_adv)| is within rounding of 0, which these keys avoid.
    net = nets.two_layer(20, 40)
    params = kernels.init_many(net, jax.random.key(12), 3)
    xs = data.sphere(jax.random.key(13), 6, 20)
    r32 = fgsm(net, params, xs, eps=0.4, norm=2, **CHUNK)
    with jax.enable_x64(True):
        p64 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
        r64 = fgsm(net, p64, jnp.asarray(xs, jnp.float64), eps=0.4, norm=2, **CHUNK)
    np.testing.assert_array_equal(r32.success, r64.success)
    np.testing.assert_allclose(r32.f_adv, r64.f_adv, rtol=1e-4, atol=1e-5)


def test_eps_zero_and_corner_cases():
    # ε = 0 never flips (f(x) itself is not flipped); x = 0 of a bias-free net (f = 0) fails.
    net = nets.two_layer(5, 7)
    params = net.init(jax.random.key(14))
    xs = jnp.zeros((2, 5)).at[1].set(1.0)
    for res in [pgd(net, jax.random.key(0), params, xs, eps=0.0, **CHUNK), fgsm(net, params, xs, eps=0.0, **CHUNK)]:
        assert not np.any(res.success) and np.all(np.isinf(res.distance))
    res = pgd(net, jax.random.key(0), params, xs[:1], eps=0.5, **CHUNK)
    assert not res.success[0] and np.isinf(res.distance[0]) and not np.isnan(np.asarray(res.x_adv)).any()


KEY = jax.random.key(0)
NET = nets.two_layer(4, 3)
PARAMS = NET.init(KEY)
XS = jnp.ones((2, 4)) * 0.5


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: pgd(NET, KEY, PARAMS, XS, eps=-0.1), ValueError, "`eps` must be a finite number ≥ 0"),
        (lambda: fgsm(NET, PARAMS, XS, eps=-0.1), ValueError, "`eps` must be a finite number ≥ 0"),
        (lambda: pgd(NET, KEY, PARAMS, XS, eps=0.1, norm=0), ValueError, "`norm` must be one of 1, 2 or inf"),
        (lambda: fgsm(NET, PARAMS, XS, eps=0.1, norm="l3"), ValueError, "`norm` must be one of"),
        (lambda: pgd(NET, KEY, PARAMS, XS, eps=0.1, n_steps=0), ValueError, "`n_steps` must be a positive integer"),
        (lambda: pgd(NET, KEY, PARAMS, XS, eps=0.1, step_size=-1.0), ValueError, "`step_size` must be a finite number ≥ 0"),
        (lambda: pgd(NET, KEY, PARAMS, XS, eps=0.1, random_start=1), TypeError, "`random_start` must be True or False"),
        (lambda: pgd(NET, 0, PARAMS, XS, eps=0.1), TypeError, "`key` must be a JAX PRNG key"),
        (lambda: pgd(NET, KEY, PARAMS, XS.at[0, 0].set(jnp.inf), eps=0.1), ValueError, "`xs` must be finite"),
        (lambda: pgd(NET, KEY, PARAMS, jnp.ones((2, 5)), eps=0.1), ValueError, "`xs` must have shape"),
        (lambda: pgd(NET, KEY, PARAMS, XS, eps=0.1, bounds=(0, 0)), ValueError, "`bounds` must be None or"),
        (lambda: pgd(NET, KEY, PARAMS, XS, eps=0.1, bounds=(0.6, 1)), ValueError, "`xs` must lie inside `bounds`"),
        (lambda: fgsm(NET, PARAMS, XS, eps=0.1, bounds=[1]), TypeError, "`bounds` must be None or a pair"),
        (lambda: robust_accuracy(NET, KEY, PARAMS, XS, [0.1, -0.2]), ValueError, "`eps_values` must be ≥ 0"),
        (lambda: robust_accuracy(NET, KEY, PARAMS, XS, [[0.1]]), ValueError, "`eps_values` must be a non-empty 1-D"),
        (lambda: robust_accuracy(NET, KEY, PARAMS, XS, [0.1, np.nan]), ValueError, "`eps_values` must be finite"),
        (lambda: robust_accuracy(NET, KEY, PARAMS, XS, [0.1], attack="cw"), ValueError, "`attack` must be one of"),
    ],
)
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
