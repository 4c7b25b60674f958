"""Margins, margin set, shared perturbation, robust network and KKT fit (Vardi et al. 2022)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxadv import attacks, nets
from jaxadv.train import (
    inner_product_bound,
    kkt_residuals,
    margin_set,
    margins,
    nnls,
    normalised_margin,
    orthogonal_dataset,
    robust_network,
    shared_perturbation,
    sphere_dataset,
)

D = 16


def _margin_better(X, y, scale=None):
    """§5.1's N′: w′_j = x_j/d, b′ = 0, v_j = y_j (times ``scale`` per neuron)."""
    d = X.shape[1]
    v = y if scale is None else y * scale
    return {"w": X / d, "b": jnp.zeros(d), "v": v}


def test_section_5_1_example_margin_better_network_is_not_robust():
    X, y = orthogonal_dataset(D)
    net = nets.shallow(D, D)
    p = _margin_better(X, y)
    np.testing.assert_allclose(np.asarray(margins(net, p, X, y)), 1.0, rtol=1e-6)
    # the paper's z = (4/d) Σ_{j>d/2} x_j: ‖z‖ = 2√2 and N′(x_1 + z) = 1 − (d/2)(4/d) = −1
    z = (4 / D) * jnp.sum(X[D // 2 :], axis=0)
    np.testing.assert_allclose(float(jnp.linalg.norm(z)), 2 * math.sqrt(2), rtol=1e-6)
    np.testing.assert_allclose(float(net.apply(p, X[0] + z)), -1.0, rtol=1e-5)
    # Fig 1's shared step along ẑ, z = Σ y_i x_i: N′(x_i − y_i c ẑ) = y_i(1 − c/d − c/2) for c < d,
    # so the minimal c is 2d/(d + 2) < 2, whatever d.
    sp = shared_perturbation(net, p, X, y, rtol=1e-6)
    assert bool(sp.success) and int(sp.count) == D
    np.testing.assert_allclose(float(sp.z_norm), D, rtol=1e-6)  # ‖Σ y_i √d e_i‖ = d
    np.testing.assert_allclose(float(sp.c), 2 * D / (D + 2), rtol=1e-4)


def test_section_5_1_example_robust_network_needs_sqrt_d_over_2():
    X, y = orthogonal_dataset(D)
    assert float(inner_product_bound(X)) == 0.0
    p = robust_network(X, y)  # c = 0: w_j = 2x_j/d, b_j = −1
    np.testing.assert_allclose(np.asarray(p["w"]), 2 * np.asarray(X) / D, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(p["b"]), -1.0)
    net = nets.shallow(D, D)
    np.testing.assert_allclose(np.asarray(margins(net, p, X, y)), 1.0, rtol=1e-6)
    # the same shared step needs c > d/2 here: N(x_i − y_i c ẑ) = y_i[(1 − 2c/d)₊ − (d/2)(2c/d − 1)₊]
    sp = shared_perturbation(net, p, X, y, t_max=D, rtol=1e-6)
    assert bool(sp.success)
    np.testing.assert_allclose(float(sp.c), D / 2, rtol=1e-4)
    # §5.1: reaching N = 0 from x_i needs √d/2 (turn neuron i off: w_iᵀx + b_i = 1 − 2t/√d along
    # −e_i), after which N stays 0 along that ray (every neuron is off). A *strict* flip must also
    # switch on an opposite neuron j: (1 − 2a/√d)₊ < (2b/√d − 1)₊ with a, b the moves along
    # −e_i, +e_j, i.e. a + b > √d: the exact strict-flip distance is √(d/2).
    x1 = X[0]
    np.testing.assert_allclose(float(net.apply(p, x1 - 0.999 * math.sqrt(D) / 2 * jnp.eye(D)[0])), 0.001, rtol=1e-2)
    assert float(net.apply(p, x1 - 2.0 * math.sqrt(D) * jnp.eye(D)[0])) == 0.0
    corner = x1 - (math.sqrt(D) / 2 + 1e-3) * (jnp.eye(D)[0] - jnp.eye(D)[-1])
    assert float(net.apply(p, corner)) < 0  # flipped at distance just above √(d/2)
    mn = attacks.min_norm(net, p, X, norm=2)
    assert bool(jnp.all(mn.success))
    dist = np.asarray(mn.distance)
    assert np.all(dist >= math.sqrt(D / 2) * (1 - 1e-4))  # no attack can beat the exact distance
    np.testing.assert_allclose(dist.min(), math.sqrt(D / 2), rtol=1e-3)


def test_robust_network_on_random_sphere_data():
    d, m = 64, 12
    X, y = sphere_dataset(jax.random.key(0), m, d)
    c = float(inner_product_bound(X))
    assert 0 < c < 1
    p = robust_network(X, y, c)
    net = nets.shallow(d, m)
    # Thm 3.1: margins exactly 1, every flip needs more than (1 − c)√d/4
    np.testing.assert_allclose(np.asarray(margins(net, p, X, y)), 1.0, rtol=1e-5)
    mn = attacks.min_norm(net, p, X, norm=2)
    # every point can be flipped: N(x_j) = y_j exactly, so the segment from x_i to any x_j of the
    # other label holds a strict flip within 2√d. The attack must find one for ≥ 95 % of the
    # points (here: all 12), and no flip it finds may beat the theorem's lower bound.
    assert set(np.asarray(y).tolist()) == {-1.0, 1.0}
    success = np.asarray(mn.success)
    assert success.mean() >= 0.95, success
    found = np.asarray(mn.distance)[success]
    assert np.all(found > (1 - c) * math.sqrt(d) / 4), (found.min(), (1 - c) * math.sqrt(d) / 4)
    # a larger admissible c gives the same margins
    np.testing.assert_allclose(np.asarray(margins(net, robust_network(X, y, 0.5 * (1 + c)), X, y)), 1.0, rtol=1e-5)


def test_margin_set_counts_the_samples_within_the_slack():
    # On the §5.1 data with v_j = y_j s_j, neuron i alone is active at x_i, so q_i = s_i exactly.
    X, y = orthogonal_dataset(8)
    s = jnp.array([1.0, 1.05, 1.2, 2.0, 1.1, 1.0999, 3.0, 1.5])
    net = nets.shallow(8, 8)
    p = _margin_better(X, y, s)
    ms = margin_set(net, p, X, y)
    np.testing.assert_array_equal(np.asarray(ms.in_set), np.asarray(s <= 1.1))
    assert int(ms.count) == 4 and float(ms.fraction) == 0.5 and bool(ms.all_correct)
    np.testing.assert_allclose(float(ms.min_margin), 1.0, rtol=1e-6)
    assert int(margin_set(net, p, X, y, slack=1.25).count) == 5
    # many networks at once: network j of the batch = network j alone
    p2 = jax.tree.map(lambda a, b: jnp.stack([a, b]), p, _margin_better(X, y))
    ms2 = margin_set(net, p2, X, y)
    np.testing.assert_array_equal(np.asarray(ms2.count), [4, 8])
    sp2 = shared_perturbation(net, p2, X, y)
    sp_one = shared_perturbation(net, p, X, y)
    np.testing.assert_allclose(float(sp2.c[0]), float(sp_one.c), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(sp2.z[0]), np.asarray(sp_one.z), rtol=1e-6)


def test_shared_perturbation_fails_when_a_sample_is_misclassified():
    # §5.1's N′ with one label flipped: q_1 = −1 < 0, so the paper's precondition fails and the
    # margin set q ≤ 1.1·q_min = −1.1 is empty. Before the fix this read as z = 0, c ≈ 0, success.
    X, y = orthogonal_dataset(8)
    net = nets.shallow(8, 8)
    p = _margin_better(X, y)
    y_bad = y.at[0].multiply(-1)
    ms = margin_set(net, p, X, y_bad)
    assert not bool(ms.all_correct) and int(ms.count) == 0
    sp = shared_perturbation(net, p, X, y_bad)
    assert not bool(sp.success) and float(sp.c) == math.inf and int(sp.count) == 0
    assert float(sp.z_norm) == 0.0
    # batched: network j of the batch = network j alone (one misclassifies, one does not)
    p2 = jax.tree.map(lambda a: jnp.stack([a, a]), p)
    y2 = jnp.stack([y_bad, y])
    sp2 = shared_perturbation(net, p2, jnp.stack([X, X]), y2, rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(sp2.success), [False, True])
    assert float(sp2.c[0]) == math.inf
    np.testing.assert_allclose(float(sp2.c[1]), 2 * 8 / (8 + 2), rtol=1e-4)  # the §5.1 value 2d/(d + 2)


def test_shared_perturbation_with_a_zero_margin_is_not_a_success():
    # The zero network: q_i = 0 for all i, so q_min = 0 and I = {q_i ≤ 0} holds every sample,
    # but no sample is correctly classified (q_i > 0), so nothing can "flip": c = inf.
    X, y = orthogonal_dataset(8)
    net = nets.shallow(8, 8)
    p = {"w": jnp.zeros((8, 8)), "b": jnp.zeros(8), "v": jnp.zeros(8)}
    sp = shared_perturbation(net, p, X, y)
    assert int(sp.count) == 8 and not bool(sp.success) and float(sp.c) == math.inf


def test_shared_perturbation_with_z_zero_is_not_a_success():
    # X = (x, −x), both labelled +1, and f ≡ 1 (a linear net with w = 0, b = 1): both samples
    # are correct with q = 1, both on the margin, and z = x + (−x) = 0: no direction, no success.
    d = 4
    x = jnp.eye(d)[0] * 2.0
    net = nets.linear(d, bias=True)
    X = jnp.stack([x, -x])
    p = {"w": jnp.zeros(d), "b": jnp.asarray(1.0)}  # f ≡ 1: both labelled +1 points correct, q = 1
    y = jnp.array([1.0, 1.0])
    sp = shared_perturbation(net, p, X, y)
    assert bool(jnp.all(margins(net, p, X, y) > 0)) and int(sp.count) == 2
    assert float(sp.z_norm) == 0.0 and not bool(sp.success) and float(sp.c) == math.inf


def _exploding_net(d):
    """A network whose forward pass raises: any computation before validation is caught."""

    def apply(params, x):
        raise AssertionError("computed before the arguments were validated")

    return nets.Network(lambda key: {"w": jnp.zeros(d)}, apply, (d,), "exploding")


@pytest.mark.parametrize(
    "kwargs, err, match",
    [
        (dict(t_max=0.0), ValueError, "`t_max`"),
        (dict(t_max=-1.0), ValueError, "`t_max`"),
        (dict(t_max=float("nan")), ValueError, "`t_max`"),
        (dict(n_grid=0), ValueError, "`n_grid`"),
        (dict(n_grid=2.5), TypeError, "`n_grid`"),
        (dict(n_bisect=-1), ValueError, "`n_bisect`"),
        (dict(rtol=-1e-4), ValueError, "`rtol`"),
        (dict(rtol=float("inf")), ValueError, "`rtol`"),
        (dict(slack=0.5), ValueError, "`slack`"),
        (dict(chunk_size=0), ValueError, "`chunk_size`"),
    ],
)
def test_shared_perturbation_validates_before_any_compute(kwargs, err, match):
    X, y = orthogonal_dataset(8)
    net = _exploding_net(8)
    with pytest.raises(err, match=match):
        shared_perturbation(net, {"w": jnp.zeros(8)}, X, y, **kwargs)


@pytest.mark.parametrize(
    "call, err, match",
    [
        (lambda net, p, X, y: margins(net, p, X, y, chunk_size=0), ValueError, "`chunk_size`"),
        (lambda net, p, X, y: margin_set(net, p, X, y, slack=float("nan")), ValueError, "`slack`"),
        (lambda net, p, X, y: normalised_margin(net, p, X, y, order=0.0), ValueError, "`order`"),
        (lambda net, p, X, y: kkt_residuals(net, p, X, y, slack=0.9), ValueError, "`slack`"),
        (lambda net, p, X, y: kkt_residuals(net, p, X, y, n_iter=0), ValueError, "`n_iter`"),
        (lambda net, p, X, y: margins(net, p, X, 3 * y), ValueError, "labels"),
    ],
)
def test_analysis_validates_before_any_compute(call, err, match):
    X, y = orthogonal_dataset(8)
    with pytest.raises(err, match=match):
        call(_exploding_net(8), {"w": jnp.zeros(8)}, X, y)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n_iter=0), "`n_iter`"),
        (dict(A=jnp.eye(3)), "`A`"),
        (dict(b=jnp.ones((2, 2))), "`b`"),
        (dict(b=jnp.array([1.0, jnp.nan])), "`b` must be finite"),
        (dict(mask=jnp.ones(2)), "`mask`"),
        (dict(mask=jnp.ones(3, bool)), "`mask`"),
    ],
)
def test_nnls_bad_input(kwargs, match):
    args = dict(A=jnp.eye(2), b=jnp.ones(2))
    args.update(kwargs)
    A, b = args.pop("A"), args.pop("b")
    with pytest.raises((ValueError, TypeError), match=match):
        nnls(A, b, **args)


def test_kkt_fit_recovers_exact_multipliers_of_a_linear_model(x64):
    # For f(x) = wᵀx + b, ∇_θ q_i = y_i (x_i, 1). Build θ = Σ λ*_i ∇q_i with λ* = (1, 1.5, 2):
    # the KKT identity holds exactly, so the fit must return λ* and a zero residual.
    d = 5
    X = math.sqrt(d) * jnp.eye(d, dtype=jnp.float64)[:3] * jnp.array([[1.0], [1.0], [-1.0]])
    y = jnp.array([1.0, 1.0, -1.0])
    lam = jnp.array([1.0, 1.5, 2.0])
    p = {"w": jnp.sum((lam * y)[:, None] * X, axis=0), "b": jnp.sum(lam * y)}
    net = nets.linear(d)
    q = margins(net, p, X, y)
    assert bool(jnp.all(q > 0)) and float(jnp.max(q)) <= 2 * float(jnp.min(q))  # all within slack 2
    res = kkt_residuals(net, p, X, y, slack=2.0, n_iter=5000)
    np.testing.assert_allclose(np.asarray(res.lam), np.asarray(lam), rtol=1e-6)
    assert float(res.residual) < 1e-8 and all(float(r) < 1e-8 for r in res.residuals.values())


def test_nnls_matches_scipy(x64):
    scipy_opt = pytest.importorskip("scipy.optimize")
    G = jax.random.normal(jax.random.key(1), (30, 8), jnp.float64)
    t = jax.random.normal(jax.random.key(2), (30,), jnp.float64)
    ref, ref_res = scipy_opt.nnls(np.asarray(G), np.asarray(t))
    lam = nnls(G.T @ G, G.T @ t, n_iter=20_000)
    assert bool(jnp.all(lam >= 0))
    np.testing.assert_allclose(float(jnp.linalg.norm(G @ lam - t)), ref_res, rtol=1e-8)
    np.testing.assert_allclose(np.asarray(lam), ref, atol=1e-6)
    # a mask pins coordinates to 0
    mask = jnp.arange(8) % 2 == 0
    lam_m = nnls(G.T @ G, G.T @ t, mask=mask, n_iter=20_000)
    ref_m, res_m = scipy_opt.nnls(np.asarray(G)[:, ::2], np.asarray(t))
    np.testing.assert_allclose(np.asarray(lam_m[::2]), ref_m, atol=1e-6)
    assert float(jnp.max(jnp.abs(lam_m[1::2]))) == 0.0


@pytest.mark.slow
def test_kkt_residuals_of_a_trained_network_match_scipy_nnls():
    scipy_opt = pytest.importorskip("scipy.optimize")
    from jaxadv.train import loss_normalised_lr, train_margin

    d, m, k = 6, 8, 10
    net = nets.shallow(d, k)
    X, y = sphere_dataset(jax.random.key(3), m, d)
    res = train_margin(net, jax.random.key(0), net.init(jax.random.key(4)), X, y, lr=loss_normalised_lr(0.1, adaptive=False), max_steps=2000)
    kkt = kkt_residuals(net, res.params, X, y, n_iter=20_000)
    # reference: scipy's active-set NNLS on the explicit per-sample gradients of the margin set
    flat, unravel = jax.flatten_util.ravel_pytree(res.params)
    G = jax.vmap(jax.grad(lambda f, x, yi: yi * net.apply(unravel(f), x)), (None, 0, 0))(flat, X, y)
    I = np.asarray(kkt.in_set)
    lam_ref, r_ref = scipy_opt.nnls(np.asarray(G, np.float64)[I].T, np.asarray(flat, np.float64))
    np.testing.assert_allclose(float(kkt.residual), r_ref / float(jnp.linalg.norm(flat)), rtol=2e-3, atol=1e-5)
    assert set(kkt.residuals) == {"w", "b", "v"} and float(jnp.max(jnp.abs(kkt.lam[~I]))) == 0.0


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda X, y: robust_network(X, y, 1.0), "`c`"),
        (lambda X, y: robust_network(X, y, -0.1), "`c`"),
        (lambda X, y: robust_network(2 * X, y), "sphere"),
        (lambda X, y: robust_network(X, y[:-1]), "`y`"),
        (lambda X, y: robust_network(X, 0 * y), "labels"),
        (lambda X, y: robust_network(X.at[0, 0].set(jnp.nan), y), "finite"),
        (lambda X, y: margin_set(nets.shallow(8, 8), _margin_better(X, y), X, y, slack=0.9), "slack"),
        (lambda X, y: margins(nets.shallow(8, 8), _margin_better(X, y), X, 2 * y), "labels"),
        (lambda X, y: margins(nets.shallow(8, 8), _margin_better(X, y), X[:3], y), "`y`"),
        (lambda X, y: orthogonal_dataset(7), "even"),
    ],
)
def test_bad_input(call, match):
    X, y = orthogonal_dataset(8)
    with pytest.raises((ValueError, TypeError), match=match):
        call(X, y)


def test_robust_network_rejects_a_c_below_the_inner_product_bound():
    X, y = sphere_dataset(jax.random.key(0), 10, 32)
    c = float(inner_product_bound(X))
    with pytest.raises(ValueError, match="`c`"):
        robust_network(X, y, 0.5 * c)
