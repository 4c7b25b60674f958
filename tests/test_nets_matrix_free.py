"""Matrix-free layers: the same function as the dense network built from the same tiles.

Ground truth is :func:`jaxadv.nets.materialize`, which draws the dense weights from the same
row keys, and a float64 NumPy evaluation of those weights. Float32 tolerances are forward
error bounds: a length-n dot product in float32 is within n·u·Σ|aᵢbᵢ| of the exact value
(u = 2⁻²⁴), and through ReLU layers (1-Lipschitz, same activation pattern) the errors add up
to at most n·u times the network evaluated with |W| and |x|, n the summed lengths of the
forward and backward sums (``_abs_bound``).
"""

import collections
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from jaxadv import attacks, kernels, nets
from jaxadv.nets import matrix_free

U32 = 2.0**-24


def _mlp(tile_rows=None, weights="matrix_free", **kw):
    return nets.mlp(12, [20, 13], weights=weights, tile_rows=tile_rows, **kw)


def _two_layer(tile_rows=None, weights="matrix_free"):
    return nets.two_layer(12, 21, weights=weights, tile_rows=tile_rows)


def _dense_f64(dense_params, xs, family):
    """f and ∇ₓf in float64 NumPy from the materialised (float32) weights, for ReLU nets."""
    xs = np.asarray(xs, np.float64)
    if family == "two_layer":
        W, a = (np.asarray(dense_params[k], np.float64) for k in ("W", "a"))
        z = xs @ W.T
        f = np.maximum(z, 0) @ a / math.sqrt(len(a))
        g = ((z > 0) * a / math.sqrt(len(a))) @ W
        return f, g
    Ws = [np.asarray(layer["W"], np.float64) for layer in dense_params["hidden"]]
    w = np.asarray(dense_params["readout"]["w"], np.float64)
    h, masks = xs, []
    for W in Ws:
        z = h @ W.T
        masks.append(z > 0)
        h = np.maximum(z, 0)
    f = h @ w
    g = np.broadcast_to(w, h.shape)
    for W, m in zip(reversed(Ws), reversed(masks)):
        g = (g * m) @ W
    return f, g


def _abs_bound(dense_params, xs, family):
    """n·u·F|·|: the float32 error bound of f and of each ∇f entry (n: the summed lengths)."""
    xs = np.abs(np.asarray(xs, np.float64))
    if family == "two_layer":
        Ws = [np.abs(np.asarray(dense_params["W"], np.float64))]
        w = np.abs(np.asarray(dense_params["a"], np.float64)) / math.sqrt(len(dense_params["a"]))
    else:
        Ws = [np.abs(np.asarray(layer["W"], np.float64)) for layer in dense_params["hidden"]]
        w = np.abs(np.asarray(dense_params["readout"]["w"], np.float64))
    # Forward sums run over fan-ins, backward ones over widths: count both.
    n = sum(W.shape[0] + W.shape[1] for W in Ws) + len(w)
    h = xs
    for W in Ws:
        h = h @ W.T
    g = np.broadcast_to(w, h.shape)
    for W in reversed(Ws):
        g = g @ W
    return n * U32 * (h @ w), n * U32 * g


FAMILIES = {"mlp": _mlp, "two_layer": _two_layer}


def _sphere(seed, n, d=12):
    # NumPy inputs on the sphere of radius √d: no sampler to compile.
    g = np.random.default_rng(seed).standard_normal((n, d))
    return jnp.asarray(g * (math.sqrt(d) / np.linalg.norm(g, axis=1, keepdims=True)), jnp.float32)


def _assert_close_to_dense(net, params, dense_net, dense_params, xs, family, n_net=None):
    """f, ∇ₓf of both networks within the float32 bound of the float64 value, per network."""
    mf, dn = kernels.evaluate(net, params, xs), kernels.evaluate(dense_net, dense_params, xs)
    for j in [None] if n_net is None else range(n_net):
        dp = dense_params if j is None else jax.tree.map(lambda a: a[j], dense_params)
        f64, g64 = _dense_f64(dp, xs, family)
        bf, bg = _abs_bound(dp, xs, family)
        for out in (mf, dn):
            f, g = (out.f, out.grad) if j is None else (out.f[j], out.grad[j])
            assert np.all(np.abs(np.asarray(f, np.float64) - f64) <= bf)
            assert np.all(np.abs(np.asarray(g, np.float64) - g64) <= bg)
    return mf


def test_mlp_equals_dense_network_from_the_same_tiles():
    # A matrix-free first layer (first_linear uses the tiles) and a dense second one; tiles
    # of 3 rows do not divide the width 20: the last tile is partly discarded.
    net = _mlp(tile_rows=3, weights=("matrix_free", "dense"))
    assert net.name.endswith("weights=('matrix_free', 'dense'))")
    key = jax.random.key(0, impl="philox4x32")  # compiles faster than threefry
    many = kernels.init_many(net, key, 2)
    dense_net, dense_many = nets.materialize(net, many)
    assert dense_net == _mlp(weights="dense")
    np.testing.assert_array_equal(dense_many["hidden"][1]["W"], many["hidden"][1]["W"])  # passed through
    xs = _sphere(1, 4)
    out = _assert_close_to_dense(net, many, dense_net, dense_many, xs, "mlp", n_net=2)
    # Network j of the batch is net.init(split(key)[j]) (same keys, same dense parts), and
    # batched equals one input at a time to float32 rounding (gemm and gemv sum in
    # different orders).
    vg = kernels.value_and_input_grad(net.apply)
    for j, k in enumerate(jax.random.split(key, 2)):
        alone = net.init(k)
        for a, b in zip(jax.tree.leaves(jax.tree.map(lambda p: p[j], many)), jax.tree.leaves(alone)):
            if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):
                a, b = jax.random.key_data(a), jax.random.key_data(b)
            np.testing.assert_array_equal(a, b)
        dense_alone = jax.tree.map(lambda a: a[j], dense_many)
        bf, bg = _abs_bound(dense_alone, xs, "mlp")
        for i, x in enumerate(xs):
            f, g = vg(alone, x)
            assert abs(float(out.f[j, i]) - float(f)) <= 2 * bf[i]
            assert np.all(np.abs(np.asarray(out.grad[j, i]) - np.asarray(g)) <= 2 * bg[i])


def test_two_layer_with_one_tile_is_bitwise_the_dense_network():
    # The default tile covers all 21 rows: for one input the product IS the dense product,
    # forward and backward. A philox key: every key impl works.
    net = _two_layer()
    assert net.apply.free[0].n_tiles() == 1
    params = net.init(jax.random.key(2, impl="philox4x32"))
    dense_net, dense = nets.materialize(net, params)
    xs = _sphere(3, 3)
    bf, bg = _abs_bound(dense, xs, "two_layer")
    f64, g64 = _dense_f64(dense, xs, "two_layer")
    for i, x in enumerate(xs):
        f, g = jax.value_and_grad(net.apply, argnums=1)(params, x)
        fd, gd = jax.value_and_grad(dense_net.apply, argnums=1)(dense, x)
        assert abs(float(f) - f64[i]) <= bf[i] and np.all(np.abs(np.asarray(g, np.float64) - g64[i]) <= bg[i])
        if jax.default_backend() == "cpu":
            assert f == fd
            np.testing.assert_array_equal(g, gd)


@pytest.mark.slow
@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("tile_rows", [None, 1, 3, 7, 8, 16, 64])
def test_every_tile_size_equals_the_dense_network(family, tile_rows):
    net = FAMILIES[family](tile_rows)
    params = net.init(jax.random.key(0))
    dense_net, dense_params = nets.materialize(net, params)
    assert dense_net == FAMILIES[family](weights="dense")
    _assert_close_to_dense(net, params, dense_net, dense_params, _sphere(1, 6), family)


def test_draw_is_row_keyed_of_the_dense_law_and_not_the_dense_draw():
    rows, cols, std = 256, 300, 1 / math.sqrt(300)
    key = jax.random.key(4, impl="philox4x32")
    w = jax.jit(matrix_free.GaussianMatrix(rows, cols, std).materialize)(key)
    # Tiles of 40 rows (not dividing 256) give the same matrix: the draw is keyed by row.
    np.testing.assert_array_equal(matrix_free.GaussianMatrix(rows, cols, std, tile_rows=40).materialize(key), w)
    # Row r is std·normal(fold_in(key, r)); equal up to the last ulp, which fused and unfused
    # samplers may round differently.
    row = jax.jit(lambda k: std * jax.random.normal(jax.random.fold_in(k, 37), (cols,)))(key)
    np.testing.assert_allclose(w[37], row, rtol=2**-22, atol=0)
    # The dense law, N(0, 1/fan_in) i.i.d.: over n = 256·300 entries the mean of √fan_in·W
    # is within 5/√n of 0 and the variance within 5·√(2/n) of 1 (5 standard errors each);
    # the largest row correlation of 256 independent rows of 300 is ≈ √(2·ln(256²/2)/300)
    # ≈ 0.37 (rows sharing a key would give 1).
    z = np.asarray(w, np.float64) / std
    assert abs(z.mean()) < 5 / math.sqrt(z.size)
    assert abs(z.var() - 1) < 5 * math.sqrt(2 / z.size)
    assert np.max(np.abs(np.corrcoef(z) - np.eye(rows))) < 0.45
    # ...but not the dense draw from the same key (the layer's key is the one the dense
    # layer draws from).
    k_w = nets.two_layer(cols, rows, weights="matrix_free").init(key)["W_key"]
    dense = nets.two_layer(cols, rows, weights="dense").init(key)["W"]
    assert not np.allclose(matrix_free.GaussianMatrix(rows, cols, std).materialize(k_w), dense)


@pytest.mark.slow
@pytest.mark.parametrize("impl", ["threefry2x32", "philox4x32", "threefry4x32", "raw"])
def test_every_key_impl(impl):
    key = jax.random.PRNGKey(7) if impl == "raw" else jax.random.key(7, impl=impl)
    net = _two_layer(tile_rows=8)
    params = net.init(key)
    assert jax.dtypes.issubdtype(params["W_key"].dtype, jax.dtypes.prng_key) and params["W_key"].shape == ()
    dense_net, dense = nets.materialize(net, params)
    _assert_close_to_dense(net, params, dense_net, dense, _sphere(8, 3), "two_layer")


@pytest.mark.slow
def test_check_grads_float64_forward_and_reverse(x64):
    # Rematerialised tiles are plain JAX ops, so forward mode (jvp) works as well as reverse.
    for net in (nets.mlp(12, [20, 13], "softplus", bias=True, weights="matrix_free", tile_rows=3),
                nets.two_layer(12, 21, "tanh", weights="matrix_free", tile_rows=4)):
        params = net.init(jax.random.key(9))
        x = _sphere(10, 1)[0].astype(jnp.float64)
        check_grads(lambda x_: net.apply(params, x_), (x,), order=2, modes=("fwd", "rev"))


def test_auto_switches_exactly_above_the_limit():
    limit = matrix_free.DENSE_LIMIT_BYTES
    assert limit == 2**32
    d = 2**15
    rows = limit // (4 * d)  # a float32 (rows, d) layer of exactly the limit stays dense
    assert nets.mlp(d, [rows]).name == f"mlp(d={d}, widths=({rows},), activation='relu')"
    assert nets.mlp(d, [rows + 1]).name.endswith("weights='matrix_free')")
    assert nets.two_layer(d, rows).init.free == (None,)
    assert nets.two_layer(d, rows + 1).init.free[0] is not None
    # Per layer: (d, rows) dense, (rows, rows) matrix-free; dtype sets the bytes per entry
    # (None counts as float32 whatever the x64 flag).
    assert nets.mlp(d, [rows, rows + 1]).name.endswith("weights=('dense', 'matrix_free'))")
    assert matrix_free.choose("auto", [(rows // 2, d), (rows // 2 + 1, d)], "float64") == (False, True)
    assert matrix_free.choose("auto", [(rows, d)], None) == (False,)
    assert matrix_free.choose("dense", [(10 * rows, d)], None) == (False,)
    assert matrix_free.choose("matrix_free", [(1, 1), (2, 2)], None) == (True, True)
    # The shapes are abstract: building such a network allocates nothing.
    shapes = jax.eval_shape(nets.mlp(d, [rows + 1]).init, jax.random.key(0))
    assert shapes["hidden"][0]["W_key"].shape == ()


def test_names_record_matrix_free_and_dense_names_are_unchanged():
    assert _mlp(weights="dense").name == "mlp(d=12, widths=(20, 13), activation='relu')"
    assert _mlp(weights="auto").name == _mlp(weights="dense").name
    assert _mlp().name == "mlp(d=12, widths=(20, 13), activation='relu', weights='matrix_free')"
    # tile_rows does not change the draw, so it is not part of the name.
    assert _mlp(tile_rows=3).name == _mlp().name
    assert _two_layer().name == "two_layer(d=12, k=21, activation='relu', readout='rademacher', weights='matrix_free')"


def _avals(jaxpr, out):
    for eqn in jaxpr.eqns:
        out.extend((eqn.primitive.name, tuple(getattr(v.aval, "shape", ()))) for v in eqn.outvars)
        for p in eqn.params.values():
            for sub in p if isinstance(p, (tuple, list)) else (p,):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    _avals(inner, out)
    return out


def test_weights_are_never_stored_and_drawn_once_for_all_inputs():
    # f and ∇ₓf over 7 inputs, as jaxadv.kernels batches them, of a net whose dense weights
    # would be 2¹⁶·2¹⁶·4 B = 16 GiB. Traced only (nothing runs): every value in the jaxpr,
    # forward and backward, is at most one tile; tiles are drawn without an input axis
    # (once per call for all inputs), once forward and once backward per layer.
    k, d, n_x, tile = 2**16, 64, 7, 16
    net = nets.mlp(d, [k, k], weights="matrix_free", tile_rows=tile)
    params = jax.eval_shape(net.init, jax.random.key(0))
    fn = jax.vmap(jax.value_and_grad(net.apply, argnums=1), in_axes=(None, 0))
    avals = _avals(jax.make_jaxpr(fn)(params, jax.ShapeDtypeStruct((n_x, d), jnp.float32)).jaxpr, [])
    assert max(math.prod(s) for _, s in avals) <= max(tile * k, n_x * (k + tile))
    draws = collections.Counter(s for p, s in avals if p == "random_bits")
    assert draws == {(tile, d): 2, (tile, k): 2}


@pytest.mark.slow  # tests/test_experiments_bubeck2021.py runs one_step on a tiny matrix-free net by default
def test_one_step_runs():
    # Through the first-layer protocol: W₁x and W₁u by the matrix-free product, and the
    # probes through the second matrix-free layer.
    net = _mlp(tile_rows=8)
    params = kernels.init_many(net, jax.random.key(11), 2)
    r = attacks.one_step(net, params, _sphere(12, 3))
    # A tiny deep net may have inputs no step with |η| < 20 switches: most do.
    ok = np.asarray(r.success)
    assert r.eta.shape == (2, 3) and ok.mean() >= 0.5
    # The attack verified each flip with the matrix-free network's own apply.
    assert np.all(np.sign(np.asarray(r.f_adv))[ok] == -np.sign(np.asarray(r.f_clean))[ok])


@pytest.mark.slow
def test_one_step_matches_the_dense_network():
    net = _mlp(tile_rows=8)
    params = kernels.init_many(net, jax.random.key(11), 2)
    dense_net, dense = nets.materialize(net, params)
    xs = _sphere(12, 5)
    r, rd = attacks.one_step(net, params, xs), attacks.one_step(dense_net, dense, xs)
    np.testing.assert_array_equal(r.success, rd.success)
    ok = np.asarray(r.success)
    assert ok.any()
    # Both searches stop within rtol = 1e-4 (relative) of the same crossing.
    np.testing.assert_allclose(np.asarray(r.eta)[ok], np.asarray(rd.eta)[ok], rtol=3e-4)


@pytest.mark.parametrize(
    "make, exc, match",
    [
        (lambda: nets.mlp(4, [3], weights="sparse"), ValueError, "`weights`"),
        (lambda: nets.two_layer(4, 3, weights=None), ValueError, "`weights`"),
        (lambda: nets.mlp(4, [3, 3], weights=("dense",)), ValueError, "`weights`"),
        (lambda: nets.mlp(4, [3], weights=("auto",)), ValueError, "`weights`"),
        (lambda: nets.mlp(4, [3], tile_rows=0), ValueError, "`tile_rows`"),
        (lambda: nets.two_layer(4, 3, tile_rows=2.5), TypeError, "`tile_rows`"),
        (lambda: nets.materialize("mlp", {}), TypeError, "`net`"),
        (lambda: nets.materialize(nets.linear(4), {}), TypeError, "`net`"),
        (lambda: nets.materialize(_mlp(), {"hidden": [], "readout": {}}), ValueError, "`params`"),
        (lambda: matrix_free.GaussianMatrix(2**31, 4, 1.0), ValueError, "`rows`"),
        (lambda: matrix_free.GaussianMatrix(3, 4, 1.0).matvec(jax.random.key(0), jnp.ones(3)), ValueError, "`x`"),
    ],
)
def test_bad_arguments(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


def test_dense_network_materializes_to_itself_and_params_layout_is_checked():
    net = _mlp(weights="dense")
    params = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), jax.eval_shape(net.init, jax.random.key(0)))
    same_net, same_params = nets.materialize(net, params)
    assert same_net is net and same_params is params
    # A matrix-free net refuses dense params (and vice versa) with the layout error.
    with pytest.raises(ValueError, match="`params`"):
        kernels.evaluate(_mlp(), params, jnp.ones((2, 12)))


def test_universal_direction_is_the_dense_one():
    # Σ_ℓ a_ℓ w_ℓ = Wᵀa summed over tiles of 7 rows (the last one partly discarded) against
    # the dense product of the materialised W. float32: the two sums differ only in order,
    # so by at most k·eps·Σ_ℓ |a_ℓ w_ℓi| per coordinate (|a_ℓ| = 1), the bound checked.
    d, k = 12, 30
    net = nets.two_layer(d, k, weights="matrix_free", tile_rows=7)
    params = kernels.init_many(net, jax.random.key(3, impl="philox4x32"), 3)  # compiles faster
    _, dense = nets.materialize(net, params)
    u = attacks.universal_direction(net, params)
    assert u.shape == (3, d)
    expected = attacks.universal_direction(nets.two_layer(d, k), dense)
    bound = k * np.finfo(np.float32).eps * np.sum(np.abs(np.asarray(dense["W"])), axis=1)
    assert np.all(np.abs(np.asarray(u) - np.asarray(expected)) <= bound)
    one = jax.tree.map(lambda a: a[1], params)
    np.testing.assert_allclose(attacks.universal_direction(net, one), u[1], rtol=1e-6, atol=1e-7)
    with pytest.raises(TypeError, match="`net` must be the two_layer"):
        attacks.universal_direction(nets.two_layer(d, k), params)
    with pytest.raises(ValueError, match="`y` must have shape"):
        net.init.free[0].rmatvec(one["W_key"], jnp.ones(k + 1))
