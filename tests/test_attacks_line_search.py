"""line_search and shared_line_search: De Palma et al. 2021 Thm 1; Vardi et al. 2022 §6."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxadv import attacks, data, kernels, nets


def _linear(d=6, n=40, seed=0):
    net = nets.linear(d)
    params = net.init(jax.random.key(seed))
    xs = data.gaussian(jax.random.key(seed + 1), n, d)
    u = attacks.random_directions(jax.random.key(seed + 2), xs)
    return net, params, xs, u


def test_random_directions_are_unit_and_need_a_key():
    u = attacks.random_directions(jax.random.key(0), (3, 4, 7))
    assert u.shape == (3, 4, 7)
    np.testing.assert_allclose(jnp.linalg.norm(u, axis=-1), 1.0, rtol=1e-6)
    with pytest.raises(TypeError, match="`key` must be a JAX PRNG key"):
        attacks.random_directions(0, (3, 4))
    with pytest.raises(ValueError, match="`input_ndim`"):
        attacks.random_directions(jax.random.key(0), (3,), input_ndim=2)


def test_linear_closed_form(x64):
    # Along x + t·u, f is linear: f(x) + t⟨w,u⟩; the crossing is t* = −f(x)/⟨w,u⟩, found iff
    # 0 < t* ≤ t_max. The returned t is the flipping end: t ∈ [t*, t*(1 + rtol)].
    net, params, xs, u = _linear()
    w = np.asarray(params["w"])
    f = np.asarray(xs @ params["w"] + params["b"])
    t_star = -f / (np.asarray(u) @ w)
    t_max = float(np.quantile(t_star[t_star > 0], 0.7))
    r = attacks.line_search(net, params, xs, u, t_max=t_max, rtol=1e-12, n_bisect=60)
    expect = (t_star > 0) & (t_star <= t_max)
    clear = np.abs(t_star - t_max) > 1e-9 * t_max
    np.testing.assert_array_equal(np.asarray(r.success)[clear], expect[clear])
    assert expect.sum() >= 10 and (~expect).sum() >= 10
    ok = np.asarray(r.success)
    np.testing.assert_allclose(np.asarray(r.t)[ok], t_star[ok], rtol=1e-9)
    assert np.all(np.asarray(r.t)[ok] >= t_star[ok] * (1 - 1e-13))
    np.testing.assert_allclose(np.asarray(r.distance)[ok], t_star[ok], rtol=1e-9)  # unit u
    assert np.all(np.isinf(np.asarray(r.t)[~ok])) and np.all(np.isinf(np.asarray(r.distance)[~ok]))
    np.testing.assert_allclose(np.asarray(r.x_adv)[~ok], (xs + t_max * u)[~ok], rtol=1e-12)
    assert np.all(np.asarray(r.n_grad) == 0)
    # t is in units of u: doubling u halves t and keeps the distance.
    r2 = attacks.line_search(net, params, xs, 2 * u, t_max=t_max, rtol=1e-12, n_bisect=60)
    ok2 = np.asarray(r2.success)
    np.testing.assert_allclose(np.asarray(r2.t)[ok2], t_star[ok2] / 2, rtol=1e-9)
    np.testing.assert_allclose(np.asarray(r2.distance)[ok2], t_star[ok2], rtol=1e-9)


def test_first_crossing_on_random_nets():
    # Invariant: no sign change on a fine grid of [0, t), a strict change at t (verified),
    # for random ReLU nets along random unit directions (De Palma et al.: t = Θ(‖x‖)).
    d = k = 30
    net = nets.two_layer(d, k)
    params = kernels.init_many(net, jax.random.key(3), 4)
    xs = data.sphere(jax.random.key(4), 25, d)
    u = attacks.random_directions(jax.random.key(5), (4, 25, d))  # per pair
    t_max = 3.0 * np.sqrt(d)
    r = attacks.line_search(net, params, xs, u, t_max=t_max, n_grid=64)
    ok = np.asarray(r.success)
    assert ok.mean() > 0.3
    n_fine = 2000
    frac = jnp.linspace(0.0, 1.0, n_fine, endpoint=False)
    t_fine = jnp.where(r.success, r.t, t_max)[..., None] * frac  # (4, 25, n_fine) in [0, t)
    pts = xs[None, :, None] + t_fine[..., None] * u[:, :, None]
    f = kernels.forward(net, params, pts.reshape(4, -1, d)).reshape(4, 25, n_fine)
    crossed = (jnp.sign(f) == -jnp.sign(r.f_clean)[..., None]).any(-1)
    # A grid can miss an excursion that starts and ends inside one cell (ratio 2^{10/63} here);
    # f along a line is piecewise linear with few kinks per cell, so such misses are rare.
    assert float(crossed.mean()) <= 0.02, float(crossed.mean())
    f_adv = kernels.forward(net, params, r.x_adv)
    np.testing.assert_array_equal(ok, np.asarray(jnp.sign(f_adv) == -jnp.sign(r.f_clean)))
    # Network j of the batch equals network j alone.
    r2 = attacks.line_search(net, jax.tree.map(lambda a: a[2], params), xs, u[2], t_max=t_max, n_grid=64)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a[2], b, rtol=1e-5, atol=1e-6), r, r2)
    # Θ(‖x‖): the crossings found along random directions are far beyond the O(1) gradient
    # distance (median of |N(0,1)| ≈ 0.67): here, a sizeable fraction of ‖x‖ = √30 ≈ 5.5.
    assert float(jnp.median(r.distance[r.success])) > 1.5


@pytest.mark.slow
def test_batch_consistency():
    net = nets.two_layer(10, 12, "tanh")
    params = kernels.init_many(net, jax.random.key(1), 3)
    xs = data.sphere(jax.random.key(2), 12, 10).reshape(3, 4, 10)
    u = attacks.random_directions(jax.random.key(3), xs)
    r = attacks.line_search(net, params, xs, u, t_max=20.0)
    for j in range(3):
        rj = attacks.line_search(net, jax.tree.map(lambda a: a[j], params), xs[j], u[j], t_max=20.0)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a[j], b, rtol=1e-5, atol=1e-6), r, rj)


# ---------------------------------------------------------------------------------------
# shared_line_search


def test_shared_linear_closed_form(x64):
    # Linear f: point i is flipped for all t ≥ t_i = −f_i/⟨w,u_i⟩ (when t_i > 0), so every point
    # is flipped exactly for t ≥ max_i t_i. Directions u_i = −sign(f_i)·(w/‖w‖ + noise) make
    # every t_i finite and positive.
    d, m = 6, 12
    net = nets.linear(d)
    params = kernels.init_many(net, jax.random.key(0), 3)
    xs = data.gaussian(jax.random.key(1), 3 * m, d).reshape(3, m, d)
    w, b = params["w"], params["b"]
    f = jnp.einsum("nmd,nd->nm", xs, w) + b[:, None]
    noise = 0.3 * jax.random.normal(jax.random.key(2), xs.shape)
    u = -jnp.sign(f)[..., None] * (w[:, None] / jnp.linalg.norm(w, axis=-1)[:, None, None] + noise)
    t_i = -f / jnp.einsum("nmd,nd->nm", u, w)
    assert bool(jnp.all(t_i > 0))
    expect = np.asarray(t_i.max(-1))
    r = attacks.shared_line_search(net, params, xs, u, t_max=float(expect.max()) * 2, rtol=1e-12, n_bisect=60)
    assert r.t.shape == (3,) and r.flipped.shape == (3, m)
    assert bool(r.success.all()) and bool(r.flipped.all())
    np.testing.assert_allclose(r.t, expect, rtol=1e-9)
    assert np.all(np.asarray(r.t) >= expect * (1 - 1e-13))
    # Network j alone equals network j of the batch.
    r1 = attacks.shared_line_search(net, jax.tree.map(lambda a: a[1], params), xs[1], u[1], t_max=float(expect.max()) * 2, rtol=1e-12, n_bisect=60)
    np.testing.assert_allclose(r1.t, r.t[1], rtol=1e-12)
    # One point that can never flip (u ⟂ w) makes the whole set fail …
    u_bad = u.at[:, 0].set(jnp.zeros(d))
    rb = attacks.shared_line_search(net, params, xs, u_bad, t_max=float(expect.max()) * 2, rtol=1e-12, n_bisect=60)
    assert not bool(rb.success.any()) and bool(jnp.all(jnp.isinf(rb.t)))
    assert not bool(rb.flipped[:, 0].any())
    # … unless it is masked out: then the answer is the max over the other points.
    rm = attacks.shared_line_search(
        net, params, xs, u_bad, t_max=float(expect.max()) * 2, rtol=1e-12, n_bisect=60, where=jnp.arange(m) > 0
    )
    np.testing.assert_allclose(rm.t, np.asarray(t_i[:, 1:].max(-1)), rtol=1e-9)


def test_shared_vardi_style_per_network_directions():
    # Vardi et al. §6: u_i = −y_i z/‖z‖, z = Σ_i y_i x_i (here y_i = sign f(x_i)), a data set
    # shared by all networks, directions per network. Checks: the per-network result equals
    # the network alone; at the returned t every point is flipped (verified independently);
    # slightly before t some point is not flipped (t is the first such value up to rtol).
    d, m = 20, 8
    net = nets.two_layer(d, 40)
    params = kernels.init_many(net, jax.random.key(5), 3)
    xs = data.sphere(jax.random.key(6), m, d)
    y = jnp.sign(kernels.forward(net, params, xs))  # (3, m)
    z = jnp.einsum("nm,md->nd", y, xs)
    u = -y[..., None] * (z / jnp.linalg.norm(z, axis=-1, keepdims=True))[:, None]
    t_max = 4 * float(np.sqrt(d))
    r = attacks.shared_line_search(net, params, xs, u, t_max=t_max)
    assert int(r.success.sum()) >= 2  # (untrained random nets need not all flip within t_max)
    for j in range(3):
        pj = jax.tree.map(lambda a: a[j], params)
        rj = attacks.shared_line_search(net, pj, xs, u[j], t_max=t_max)
        np.testing.assert_allclose(rj.t, r.t[j], rtol=1e-6)
        assert bool(rj.success) == bool(r.success[j])
        if not bool(r.success[j]):
            assert not bool(r.flipped[j].all())
            continue
        f_at = kernels.forward(net, pj, xs + r.t[j] * u[j])
        assert bool(jnp.all(jnp.sign(f_at) == -y[j]))
        f_before = kernels.forward(net, pj, xs + r.t[j] * (1 - 3e-4) * u[j])
        assert not bool(jnp.all(jnp.sign(f_before) == -y[j]))


KEY = jax.random.key(0)
NET = nets.two_layer(5, 4)
PARAMS = NET.init(KEY)
XS = data.sphere(KEY, 3, 5)
U = jnp.ones((3, 5))


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: attacks.line_search(NET, PARAMS, XS, U, t_max=0.0), ValueError, "`t_max` must be a finite number > 0"),
        (lambda: attacks.line_search(NET, PARAMS, XS, U, t_max=-2.0), ValueError, "`t_max` must be a finite number > 0"),
        (lambda: attacks.line_search(NET, PARAMS, XS, U, t_max=jnp.inf), ValueError, "`t_max` must be a finite number > 0"),
        (lambda: attacks.line_search(NET, PARAMS, XS, U[:2], t_max=1.0), ValueError, "`directions` must have one of the shapes"),
        (lambda: attacks.line_search(NET, PARAMS, XS, U.at[0, 0].set(jnp.nan), t_max=1.0), ValueError, "`directions` must be finite"),
        (lambda: attacks.line_search(NET, PARAMS, XS.at[0, 0].set(jnp.inf), U, t_max=1.0), ValueError, "`xs` must be finite"),
        (lambda: attacks.line_search(NET, PARAMS, XS, U, t_max=1.0, n_grid=0), ValueError, "`n_grid` must be a positive integer"),
        (lambda: attacks.line_search(NET, PARAMS, XS, U, t_max=1.0, rtol=-1), ValueError, "`rtol` must be a finite number ≥ 0"),
        (lambda: attacks.shared_line_search(NET, PARAMS, XS, U, t_max=0.0), ValueError, "`t_max` must be a finite number > 0"),
        (lambda: attacks.shared_line_search(NET, PARAMS, XS, U[:, :4], t_max=1.0), ValueError, "`directions` must have shape"),
        (lambda: attacks.shared_line_search(NET, PARAMS, XS[:, :4], U, t_max=1.0), ValueError, "`xs` must have shape"),
        (lambda: attacks.shared_line_search(NET, PARAMS, XS, U, t_max=1.0, where=jnp.ones(2, bool)), ValueError, "`where` must have shape"),
        (lambda: attacks.shared_line_search(NET, PARAMS, XS, U, t_max=1.0, where=jnp.ones(3)), TypeError, "`where` must be a boolean mask"),
        (lambda: attacks.shared_line_search(NET, PARAMS, XS, U, t_max=1.0, n_bisect=-1), ValueError, "`n_bisect` must be an integer ≥ 0"),
    ],
)
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
