"""min_norm against ground truth: closed forms on linear models (with and without a box),
an exact oracle on tiny ReLU networks, and a single DeepFool step on wide random networks."""

import dataclasses
import math

import exact_oracle
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import optimize

from jaxadv import data, kernels, nets
from jaxadv.attacks import min_norm
from jaxadv.nets import Network

NORMS = [1, 2, math.inf]
DUAL = {1: math.inf, 2: 2, math.inf: 1}
SMALL = dict(n_steps=12, n_restarts=3, chunk_size=4096)  # one compiled configuration shared by several tests


def _linear_case(d=8, n_net=3, n_x=5):
    net = nets.linear(d)
    params = kernels.init_many(net, jax.random.key(0), n_net)
    xs = data.sphere(jax.random.key(1), n_x, d)
    return net, params, xs


@pytest.mark.parametrize("norm", NORMS)
def test_linear_closed_form(x64, norm):
    # The minimal ℓp perturbation that flips wᵀx + b is |f(x)|/‖w‖_q (q dual to p). Never
    # below it (that would be a wrong distance or success check); within 1.01× (issue).
    net, params, xs = _linear_case()
    res = min_norm(net, params, xs, norm=norm, **SMALL)
    f = np.asarray(kernels.forward(net, params, xs))
    exact = np.abs(f) / np.linalg.norm(np.asarray(params["w"]), ord=DUAL[norm], axis=-1)[:, None]
    ratio = np.asarray(res.distance) / exact
    assert np.all(res.success)
    assert ratio.min() >= 1 - 1e-9, ratio
    assert ratio.max() <= 1.01, ratio
    # Verified: f_adv is f at x_adv, of opposite sign; the distance is ‖x_adv − x‖_p.
    f_at = jax.vmap(lambda p, xa: jax.vmap(lambda z: net.apply(p, z))(xa))(params, res.x_adv)
    np.testing.assert_array_equal(f_at, res.f_adv)
    assert np.all(np.sign(f_at) == -np.sign(f))
    dist = np.linalg.norm(np.asarray(res.x_adv - xs[None]), ord=norm, axis=-1)
    np.testing.assert_allclose(res.distance, dist, rtol=1e-12)
    assert np.all(res.n_grad == 12) and np.all(res.n_forward > 0)


def _box_reference(w, b, x, lo, hi, norm):
    """min ‖δ‖_p s.t. wᵀ(x+δ) + b = 0 and lo ≤ x+δ ≤ hi, by scipy (LP for ℓ1/ℓ∞, SLSQP for ℓ2)."""
    d = w.size
    c = -(w @ x + b)
    reach = np.sum(np.where(np.sign(c) * w > 0, hi - x, lo - x) * w)  # the furthest level in the box
    if abs(reach) <= abs(c):
        return np.inf
    if norm == 2:
        res = optimize.minimize(
            lambda v: v @ v, np.zeros(d), jac=lambda v: 2 * v, method="SLSQP",
            constraints=[{"type": "eq", "fun": lambda v: w @ v - c, "jac": lambda v: w}],
            bounds=list(zip(lo - x, hi - x)), options={"ftol": 1e-15, "maxiter": 500},
        )
        return math.sqrt(res.fun)
    if norm == math.inf:  # variables (δ, t): min t, −t ≤ δ_i ≤ t
        A_ub = np.block([[np.eye(d), -np.ones((d, 1))], [-np.eye(d), -np.ones((d, 1))]])
        res = optimize.linprog(np.r_[np.zeros(d), 1], A_ub=A_ub, b_ub=np.zeros(2 * d),
                               A_eq=np.r_[w, 0][None], b_eq=[c], bounds=list(zip(lo - x, hi - x)) + [(0, None)], method="highs")
        return res.fun
    # ℓ1: δ = u − v with u, v ≥ 0
    bnd = [(0, max(h, 0)) for h in hi - x] + [(0, max(-l, 0)) for l in lo - x]
    res = optimize.linprog(np.ones(2 * d), A_eq=np.r_[w, -w][None], b_eq=[c], bounds=bnd, method="highs")
    return res.fun


@pytest.mark.parametrize("norm", [2, math.inf, pytest.param(1, marks=pytest.mark.slow)])
def test_linear_in_a_box_matches_scipy(x64, norm):
    # A box [−0.6, 0.6] that binds: the unconstrained minimiser leaves it. The answer must
    # equal the constrained optimum (scipy) and every returned point must lie in the box.
    d = 6
    net = nets.linear(d)
    params = kernels.init_many(net, jax.random.key(3), 2)
    xs = 0.5 * jax.random.uniform(jax.random.key(4), (4, d), minval=-1, maxval=1)
    bounds = (-0.6, 0.6)
    res = min_norm(net, params, xs, norm=norm, bounds=bounds, **SMALL)
    assert np.all((res.x_adv >= -0.6) & (res.x_adv <= 0.6))
    for j in range(2):
        w, b = np.asarray(params["w"][j]), float(params["b"][j])
        for i in range(4):
            x = np.asarray(xs[i])
            lo, hi = np.full(d, -0.6), np.full(d, 0.6)
            ref = _box_reference(w, b, x, lo, hi, norm)
            if np.isfinite(ref):
                assert res.success[j, i]
                assert 1 - 1e-6 <= float(res.distance[j, i]) / ref <= 1.01, (j, i, float(res.distance[j, i]), ref)
            else:
                assert not res.success[j, i]


def _tiny_oracle_ratios(net, name, n_net, n_x, key):
    params = kernels.init_many(net, jax.random.key(key), n_net)
    xs = data.sphere(jax.random.key(key + 1), n_x, net.d)
    res = min_norm(net, params, xs, norm=2, n_steps=120, n_restarts=24, chunk_size=4096)
    ratios = []
    for j in range(n_net):
        Wbv = exact_oracle.from_jaxadv(name, jax.tree.map(lambda a: np.asarray(a[j]), params))
        for i in range(n_x):
            exact = exact_oracle.exact_distance(*Wbv, np.asarray(xs[i]))
            d = float(res.distance[j, i])
            ratios.append(1.0 if (np.isinf(exact) and np.isinf(d)) else d / exact)
    return np.array(ratios)


@pytest.mark.parametrize(
    "name, net",
    [
        ("two_layer", nets.two_layer(3, 6)),
        ("shallow", nets.shallow(2, 6)),
        pytest.param("two_layer", nets.two_layer(3, 8), marks=pytest.mark.slow),
        pytest.param("shallow", nets.shallow(3, 8), marks=pytest.mark.slow),
    ],
    ids=["two_layer_d3_k6", "shallow_d2_k6_bias", "two_layer_d3_k8", "shallow_d3_k8_bias"],
)
def test_tiny_relu_nets_match_the_exact_oracle(x64, name, net):
    # Issue: within 1.05× of the exact ℓ2 distance on ≥ 95% of points, and never below it
    # (below would mean a wrong oracle or a wrong success check); no point may succeed where
    # the oracle says no adversarial point exists. Misses are local minima of the distance,
    # common in d ≤ 3, that the restarts did not escape: the budget here is 24 runs of 5
    # gradients (with 12 runs, d = 3, k = 8 with biases reached only 91-94% with these keys).
    ratios = _tiny_oracle_ratios(net, name, 8, 8, 21)
    assert ratios.min() >= 1 - 1e-6, ratios.min()
    assert np.mean(ratios <= 1.05) >= 0.95, np.sort(ratios)[-8:]


def test_exact_oracle_itself():
    rng = np.random.default_rng(0)
    # 1) a linear function written as a ReLU pair: relu(t) − relu(−t) = t.
    for _ in range(5):
        w, b0, x = rng.normal(size=3), rng.normal(), rng.normal(size=3)
        W, b, v = np.stack([w, -w]), np.array([b0, -b0]), np.array([1.0, -1.0])
        assert math.isclose(exact_oracle.exact_distance(W, b, v, x), abs(w @ x + b0) / np.linalg.norm(w), rel_tol=1e-10)
    # 2) dense polar search in d = 2: the first flip along 2000 rays, radius step 1e-3. The
    # grid value is a real flipped point (≥ exact) and within the grid's resolution of it.
    for _ in range(3):
        W, b, v = rng.normal(size=(6, 2)), 0.5 * rng.normal(size=6), rng.normal(size=6)
        x = rng.normal(size=2)
        exact = exact_oracle.exact_distance(W, b, v, x)
        th = np.linspace(0, 2 * np.pi, 2000, endpoint=False)
        r = np.arange(1, 4001) * 1e-3
        pts = x + r[None, :, None] * np.stack([np.cos(th), np.sin(th)], -1)[:, None, :]
        s = np.sign(exact_oracle.evaluate(W, b, v, x))
        grid = np.where(s * exact_oracle.evaluate(W, b, v, pts) < 0, r[None], np.inf).min()
        assert exact <= grid + 1e-12
        assert grid <= exact + 1e-3 + exact * (np.pi / 2000) + 1e-9, (exact, grid)
    # 3) a function that never changes sign (all readout weights positive): inf.
    W, b, v = rng.normal(size=(4, 2)), np.ones(4), np.ones(4)
    assert exact_oracle.exact_distance(W, b, v, np.zeros(2)) == np.inf


def test_wide_random_nets_never_worse_than_one_deepfool_step():
    # d = k = 100, ‖x‖ = √d. One DeepFool step x − (1.02) f ∇f/‖∇f‖² (its budget's first
    # step) is an upper bound wherever it flips; min_norm keeps the best point of its whole
    # budget, so it must be ≤ it on every pair and succeed everywhere.
    # Measured with these keys (float32, 10 gradients per pair): median min_norm distance
    # 0.857 vs median linearised |f|/‖∇f‖ 0.859 (its law is ‖x‖·|u₁| ≈ |N(0, 1)|, mean
    # √(2/π) ≈ 0.80, see test_statistics.py; these are 128 pairs on 8 networks); ratio to
    # it: median 1.009, range [0.935, 1.181]. The single DeepFool step flips only 34% of
    # the pairs; where it does, min_norm is shorter (median ratio 0.98).
    d = k = 100
    net = nets.two_layer(d, k)
    params = kernels.init_many(net, jax.random.key(30), 8)
    xs = data.sphere(jax.random.key(31), 16, d)
    res = min_norm(net, params, xs, norm=2, n_steps=10, n_restarts=2, chunk_size=4096)
    ev = kernels.evaluate(net, params, xs)
    gn2 = jnp.sum(ev.grad**2, -1)
    x1 = xs[None] - (1.02 * ev.f / gn2)[..., None] * ev.grad
    f1 = kernels.forward(net, params, x1)
    one_ok = np.sign(f1) == -np.sign(ev.f)
    one_d = np.where(one_ok, np.linalg.norm(np.asarray(x1 - xs[None]), axis=-1), np.inf)
    assert np.all(res.success)
    assert np.all(np.asarray(res.distance) <= one_d * (1 + 1e-5))
    lin = np.abs(np.asarray(ev.f)) / np.sqrt(np.asarray(gn2))
    ratio = np.asarray(res.distance) / lin
    assert 0.9 < np.median(ratio) < 1.05, np.median(ratio)


def test_batch_equals_one_by_one():
    net = nets.mlp(6, [8, 5])
    params = kernels.init_many(net, jax.random.key(40), 3)
    xs = data.sphere(jax.random.key(41), 4, 6)
    batched = min_norm(net, params, xs, **SMALL)
    for j in range(3):
        pj = jax.tree.map(lambda a: a[j], params)
        alone = min_norm(net, pj, xs, **SMALL)
        for field in ("x_adv", "distance", "success", "f_adv", "n_forward", "n_grad"):
            np.testing.assert_allclose(getattr(alone, field), getattr(batched, field)[j], rtol=1e-6, atol=1e-7, err_msg=field)


@pytest.mark.slow
def test_one_input_alone_chunked_and_planned_equal_the_batch():
    net = nets.mlp(6, [8, 5])
    params = kernels.init_many(net, jax.random.key(40), 3)
    xs = data.sphere(jax.random.key(41), 4, 6)
    batched = min_norm(net, params, xs, **SMALL)
    one = min_norm(net, jax.tree.map(lambda a: a[1], params), xs[2:3], **SMALL)
    np.testing.assert_allclose(one.distance[0], batched.distance[1, 2], rtol=1e-6)
    chunked = min_norm(net, params, xs, **{**SMALL, "chunk_size": 5})
    np.testing.assert_allclose(chunked.distance, batched.distance, rtol=1e-6)
    planned = min_norm(net, params, xs, n_steps=12, n_restarts=3)
    np.testing.assert_allclose(planned.distance, batched.distance, rtol=1e-6)


def test_float32_agrees_with_float64():
    # Same parameters and inputs in both precisions. The paths can take different discrete
    # decisions only where two candidates tie to within float32 resolution, so we require
    # the distances to agree to 1e-3 relative on ≥ 90% of pairs and to 5% on all.
    net = nets.two_layer(20, 30)
    params = kernels.init_many(net, jax.random.key(50), 4)
    xs = data.sphere(jax.random.key(51), 6, 20)
    r32 = min_norm(net, params, xs, **SMALL)
    with jax.enable_x64(True):
        p64 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
        r64 = min_norm(net, p64, jnp.asarray(xs, jnp.float64), **SMALL)
        assert r64.distance.dtype == jnp.float64
    assert r32.distance.dtype == jnp.float32
    rel = np.abs(np.asarray(r32.distance, np.float64) / np.asarray(r64.distance) - 1)
    assert np.mean(rel < 1e-3) >= 0.9 and rel.max() < 0.05, np.sort(rel)[-5:]


@dataclasses.dataclass(frozen=True)
class _ConstApply:
    def __call__(self, params, x):
        return params["c"] + 0.0 * jnp.sum(x)


@dataclasses.dataclass(frozen=True)
class _ConstInit:
    def __call__(self, key):
        return {"c": jnp.asarray(1.0)}


@pytest.mark.parametrize("norm", [2, pytest.param(1, marks=pytest.mark.slow), pytest.param(math.inf, marks=pytest.mark.slow)])
def test_corner_cases_fail_as_values(norm):
    # x = 0 for a bias-free net (f = 0: already on the boundary), ReLUs all dead (f = 0 and
    # ∇f = 0), a constant f ≠ 0 (∇f = 0): success False, distance inf, no NaN anywhere.
    net = nets.two_layer(5, 7)
    params = net.init(jax.random.key(60))
    shallow = nets.shallow(5, 4)
    dead = {"w": jnp.zeros((4, 5)), "b": -jnp.ones(4), "v": jnp.ones(4)}
    const = Network(_ConstInit(), _ConstApply(), (5,), "const")
    xs = jnp.zeros((2, 5)).at[1].set(1.0)
    for n, p, x in [(net, params, xs[:1]), (shallow, dead, xs), (const, const.init(None), xs)]:
        res = min_norm(n, p, x, norm=norm, **SMALL)
        assert not np.any(res.success)
        assert np.all(np.isinf(res.distance))
        for leaf in jax.tree.leaves(res):
            assert not np.any(np.isnan(np.asarray(leaf, np.float64)))
        np.testing.assert_array_equal(res.x_adv, x)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(norm=3), ValueError, "`norm` must be one of 1, 2 or inf"),
        (dict(n_steps=0), ValueError, "`n_steps` must be a positive integer"),
        (dict(n_steps=2.5), TypeError, "`n_steps` must be a positive integer"),
        (dict(n_search=0), ValueError, "`n_search` must be a positive integer"),
        (dict(n_steps=3, n_restarts=4), ValueError, "`n_restarts` must be ≤ `n_steps`"),
        (dict(overshoot=-0.1), ValueError, "`overshoot` must be a finite number ≥ 0"),
        (dict(bounds=(1, 0)), ValueError, "`bounds` must be None or"),
        (dict(bounds="box"), TypeError, "`bounds` must be None or a pair"),
        (dict(bounds=(-0.1, 0.1)), ValueError, "`xs` must lie inside `bounds`"),
    ],
)
def test_bad_arguments(kwargs, exc, match):
    net = nets.two_layer(4, 3)
    params = net.init(jax.random.key(0))
    with pytest.raises(exc, match=match):
        min_norm(net, params, jnp.ones((2, 4)), **kwargs)


def test_bad_inputs():
    net = nets.two_layer(4, 3)
    params = net.init(jax.random.key(0))
    many = kernels.init_many(net, jax.random.key(0), 2)
    with pytest.raises(ValueError, match="`xs` must be finite"):
        min_norm(net, params, jnp.ones((2, 4)).at[0, 1].set(jnp.nan))
    with pytest.raises(ValueError, match="`xs` must have shape"):
        min_norm(net, params, jnp.ones((2, 5)))
    with pytest.raises(ValueError, match="`xs` has inputs for 3 networks"):
        min_norm(net, many, jnp.ones((3, 2, 4)))
    with pytest.raises(TypeError, match="`net` must be a jaxadv.nets.Network"):
        min_norm("net", params, jnp.ones((2, 4)))
