"""Image networks (nets.resnet, small_cnn, lenet): structure, initialisation, batching, attacks."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_nets_layers import conv_oracle, homogeneity_gaps

from jaxadv import attacks, kernels, nets
from jaxadv.nets import layers as L


def uniform(seed, shape, dtype=np.float32):
    """U[0, 1] pixels from NumPy (an eager jax.random call would compile a kernel per shape)."""
    return np.random.default_rng(seed).uniform(size=shape).astype(dtype)


def net_j(params, j):
    """Network j's params from a stacked pytree (NumPy indexing: no compile)."""
    return jax.tree.map(lambda a: np.asarray(a)[j], params)


def _shapes(net):
    return jax.tree.map(lambda a: a.shape, jax.eval_shape(net.init, jax.random.key(0)))


def _layer_dicts(tree):
    """Each layer's params dict in layer order (a block's main path, then its shortcut)."""
    for p in tree:
        if "main" in p:
            yield from _layer_dicts(p["main"])
            yield from _layer_dicts(p["shortcut"])
        else:
            yield p


def _weights(tree):
    """The "W" leaves in layer order (stem, blocks' main then shortcut, dense)."""
    return [p["W"] for p in _layer_dicts(tree) if "W" in p]


TINY = dict(depth=8, filters=(3, 4, 4))  # one block per stage: every kind of block, fast to compile


# ---------------------------------------------------------------------------------------
# structure


@pytest.mark.parametrize("s", [9, 12, 13])
def test_resnet20_structure(s):
    # De Palma et al.'s ResNet v1, depth 20: 1 stem + 18 block convs + 2 projections + 1 dense.
    net = nets.resnet((s, s, 3))
    shapes = _shapes(net)
    ws = _weights(shapes)
    assert len(ws) == 22
    side = math.ceil(s / 4)
    expected = [(3, 3, 3, 32)]
    for stage, (c_in, c) in enumerate([(32, 32), (32, 64), (64, 128)]):
        for block in range(3):
            expected += [(3, 3, c_in if block == 0 else c, c), (3, 3, c, c)]
            if stage > 0 and block == 0:
                expected.append((1, 1, c_in, c))  # the 1×1 stride-2 projection shortcut
    expected.append((128 * side**2, 1))
    assert ws == expected
    blocks = [p for p in shapes if "main" in p]
    assert len(blocks) == 9 and [len(b["shortcut"]) for b in blocks] == [0, 0, 0, 1, 0, 0, 1, 0, 0]
    assert not any("b" in p for p in _layer_dicts(shapes))  # bias-free by default
    out = jax.eval_shape(net.apply, jax.eval_shape(net.init, jax.random.key(0)), jax.ShapeDtypeStruct((s, s, 3), jnp.float32))
    assert out.shape == ()
    assert nets.smoothness_m(net) == pytest.approx(s / side)
    assert net.name == f"resnet(input_shape=({s}, {s}, 3), depth=20, filters=(32, 64, 128))"


def test_resnet_depth_filters_and_biases():
    deep = _weights(_shapes(nets.resnet((8, 8, 3), depth=32, filters=(4, 8, 16))))
    assert len(deep) == 1 + 30 + 2 + 1 and deep[-1] == (16 * 2 * 2, 1)
    two = _weights(_shapes(nets.resnet((8, 8, 1), depth=10, filters=(4, 8))))  # 2 stages × 2 blocks
    assert len(two) == 1 + 8 + 1 + 1 and two[-1] == (8 * 4 * 4, 1)
    biased = _shapes(nets.resnet((8, 8, 3), bias=True, **TINY))
    assert biased[0]["b"] == (3,) and biased[2]["shortcut"] == [] and biased[3]["shortcut"][0]["b"] == (4,)
    assert biased[-1]["b"] == (1,)
    assert nets.resnet((8, 8, 3), **TINY) == nets.resnet([8, 8, 3], depth=8, filters=[3, 4, 4])
    assert nets.resnet((8, 8, 3), **TINY) != nets.resnet((8, 8, 3), padding="wrap", **TINY)


def test_small_cnn_and_lenet_structure():
    cnn = nets.small_cnn((10, 10, 3))
    assert _weights(_shapes(cnn)) == [(3, 3, 3, 128)] + [(3, 3, 128, 128)] * 3 + [(128 * 100, 1)]
    assert nets.smoothness_m(cnn) == 1.0
    le = nets.lenet((16, 16, 3))
    assert _weights(_shapes(le)) == [(3, 3, 3, 128)] + [(3, 3, 128, 128)] * 3 + [(128 * 16, 512), (512, 512), (512, 1)]
    assert nets.smoothness_m(le) == 4.0
    small = nets.lenet((10, 10, 1), channels=(4, 6), convs_per_stage=1, hidden=(), pool="max")
    assert _weights(_shapes(small)) == [(3, 3, 1, 4), (3, 3, 4, 6), (6 * 2 * 2, 1)]
    assert nets.smoothness_m(small) == 5.0  # 10×10 → 5×5 → 2×2
    assert "pool='max'" in small.name and "hidden=()" in small.name


@pytest.mark.parametrize("s", [9, 10, 13, 14, 15, 16])
def test_smoothness_m_rounds_up_in_resnet_and_down_in_lenet(s):
    # Theorem 2's M = s / (side before flattening). ResNet's stride-2 "same" convs give
    # ⌈⌈s/2⌉/2⌉ = ⌈s/4⌉; LeNet's 2×2 poolings give ⌊⌊s/2⌋/2⌋ = ⌊s/4⌋. The two differ whenever
    # 4 ∤ s (s = 10: 10/3 and 10/2).
    res = nets.resnet((s, s, 3), **TINY)
    le = nets.lenet((s, s, 3), channels=(2, 2), hidden=())
    assert nets.smoothness_m(res) == pytest.approx(s / math.ceil(s / 4))
    assert nets.smoothness_m(le) == pytest.approx(s / (s // 4))
    assert (nets.smoothness_m(res) == nets.smoothness_m(le)) == (s % 4 == 0)
    assert _weights(_shapes(le))[-1] == (2 * (s // 4) ** 2, 1)  # the flattened side, from the params


def test_smoothness_m():
    # Theorem 2: M = √(input pixels / pixels before flattening).
    assert nets.smoothness_m(nets.mlp(10, [5])) == 1.0
    assert nets.smoothness_m(nets.two_layer(10, 5)) == 1.0
    glob = nets.sequential([L.Conv(2), L.AvgPool(8), L.Flatten(), L.Dense(1)], (8, 8, 3))
    assert nets.smoothness_m(glob) == 8.0  # global pooling: one pixel left
    strided = nets.sequential([L.Conv(2, 3, (2, 1)), L.Flatten(), L.Dense(1)], (8, 6, 1))
    assert nets.smoothness_m(strided) == pytest.approx(math.sqrt(2))
    dense = nets.sequential([L.Flatten(), L.Dense(3), L.Activation(), L.Dense(1)], (4, 4, 3))
    assert nets.smoothness_m(dense) == 1.0
    inner = nets.sequential([L.Residual([L.AvgPool(2), L.Flatten()], [L.AvgPool(2), L.Flatten()]), L.Dense(1)], (4, 4, 1))
    assert nets.smoothness_m(inner) == 2.0  # the flatten inside the residual block
    with pytest.raises(TypeError, match="`net` must be a jaxadv.nets.Network"):
        nets.smoothness_m("resnet")
    custom = nets.Network(lambda k: {}, lambda p, x: jnp.sum(x), (4, 4, 1), "custom")
    with pytest.raises(TypeError, match="smoothness_m needs a network built from layers"):
        nets.smoothness_m(custom)


def test_bad_family_arguments():
    for depth in (21, 2, 15):
        with pytest.raises(ValueError, match=r"`depth` must be 2 \+ 6·k"):
            nets.resnet((8, 8, 3), depth=depth)
    with pytest.raises(ValueError, match="`depth` must be a positive integer"):
        nets.resnet((8, 8, 3), depth=0)
    with pytest.raises(ValueError, match=r"`padding` must be one of \['same', 'wrap'\]"):
        nets.resnet((8, 8, 3), padding="valid")
    with pytest.raises(ValueError, match=r"`input_shape` must be an image shape \(H, W, C\), got \(8, 8\)"):
        nets.resnet((8, 8))
    with pytest.raises(ValueError, match=r"`filters\[1\]` must be a positive integer"):
        nets.resnet((8, 8, 3), filters=(4, 0, 4))
    with pytest.raises(ValueError, match=r"`layers\[9\]` \(AvgPool.*pooling window 2×2 is larger than the input image 1×1"):
        nets.lenet((3, 3, 1))
    with pytest.raises(ValueError, match=r"kernel 3×3 is larger than the input image 2×2"):
        nets.small_cnn((2, 2, 3), padding="valid")
    with pytest.raises(ValueError, match="`pool` must be one of"):
        nets.lenet((8, 8, 1), pool="min")
    with pytest.raises(ValueError, match="`activation` must be one of"):
        nets.small_cnn((8, 8, 1), activation="sigmoid")
    with pytest.raises(TypeError, match="`bias` must be True or False"):
        nets.resnet((8, 8, 3), bias=1)
    net = nets.resnet((6, 6, 3), **TINY)
    p = jax.tree.map(lambda a: np.zeros(a.shape, a.dtype), jax.eval_shape(net.init, jax.random.key(0)))
    for shape in [(6, 6), (6, 6, 1), (6, 6, 3, 1)]:
        with pytest.raises(ValueError, match=r"`x` must be ONE input of shape \(6, 6, 3\)"):
            net.apply(p, np.zeros(shape, np.float32))


# ---------------------------------------------------------------------------------------
# ground truth: the architecture of PROTOCOLS §1.3, written out in NumPy


def _resnet_oracle(P, x, *, stride_on_second=False, relu_after_sum=True):
    """De Palma et al.'s ResNet v1 (no batch norm) with one block per stage, in float64, from
    the architecture description (not from jaxadv.nets.layers): stem conv 3×3 + ReLU; per stage
    a block y = conv3×3(h) + ReLU, y = conv3×3(y), stride 2 on the FIRST conv in stages 2 and
    3, shortcut the identity or a 1×1 stride-2 linear projection, h = ReLU(h + y); flatten;
    dense scalar. Every conv is "same" (TensorFlow's padding, test_nets_layers.conv_oracle).
    The keyword arguments build the two wrong wirings the test must tell apart."""

    def conv(h, p, stride):
        return conv_oracle(h, p["W"], p.get("b"), (stride, stride), "same")

    relu = lambda a: np.maximum(a, 0.0)  # noqa: E731
    # params: [stem conv, {}, block, block, block, {} (flatten), dense]
    stem, blocks, dense = P[0], P[2:5], P[6]
    h = relu(conv(x, stem, 1))
    for stage, block in enumerate(blocks):
        first, _, second = block["main"]
        stride = 1 if stage == 0 else 2
        s1, s2 = (1, stride) if stride_on_second else (stride, 1)
        y = conv(relu(conv(h, first, s1)), second, s2)
        shortcut = h if stride == 1 else conv(h, block["shortcut"][0], 2)
        assert len(block["shortcut"]) == (stride == 2)
        h = shortcut + y
        h = relu(h) if relu_after_sum else h
    return float((h.ravel() @ dense["W"] + dense.get("b", 0.0))[0])


@pytest.mark.parametrize("bias", [False, True])
def test_resnet_equals_numpy_chain_of_the_architecture(x64, bias):
    # s = 7 is odd, so the stride-2 stages (7 → 4 → 2) pad asymmetrically and a stride moved
    # to the second conv reads other pixels. The test fails if the stride sits on the second
    # conv of a block or if the ReLU after the sum is dropped: those wirings give the same
    # shapes but values that differ here by 2–8 times |f| (asserted > 1% below on the oracle, and
    # checked by mutating resnet_layers), against a float64 tolerance of 1e−11. The weights
    # are standard normals filling the network's own params pytree (the draw is tested
    # elsewhere; NumPy avoids compiling the initialiser).
    s, c = 7, 2
    net = nets.resnet((s, s, c), depth=8, filters=(2, 3, 4), bias=bias)
    rng = np.random.default_rng(13)
    params = jax.tree.map(lambda a: rng.standard_normal(a.shape), jax.eval_shape(net.init, jax.random.key(0)))
    conv = ["W", "b"] if bias else ["W"]
    assert [sorted(p) for p in params] == [conv, [], *[["main", "shortcut"]] * 3, [], conv]
    x = rng.uniform(size=(s, s, c))
    f = jax.jit(net.apply)(params, x)
    assert f.dtype == jnp.float64
    expected = _resnet_oracle(params, x)
    np.testing.assert_allclose(float(f), expected, rtol=1e-11)
    for wrong in (dict(stride_on_second=True), dict(relu_after_sum=False)):
        gap = abs(_resnet_oracle(params, x, **wrong) - expected)
        assert gap > 1e-2 * abs(expected), wrong


# ---------------------------------------------------------------------------------------
# initialisation


def test_resnet_weight_variances_and_independence():
    # He-normal: W ~ N(0, 2/fan_in), fan_in = 3·3·C_in (1·1·C_in for projections, 128·side²
    # for the dense). The sample variance of n entries has SD var·√(2/n); allow 5 SDs.
    net = nets.resnet((8, 8, 3))
    ws = _weights(net.init(jax.random.key(1)))
    for w in ws:
        w = np.asarray(w, np.float64)
        var = 2.0 / math.prod(w.shape[:-1])
        assert abs(w.var() / var - 1) < 5 * math.sqrt(2 / w.size), (w.shape, w.var() / var)


@pytest.mark.slow  # the same property for any stack of layers: test_nets_layers
def test_resnet_init_independence():
    # A layer's draw does not depend on the layers after it: depth 8 and depth 14 share the
    # stem and the first block of stage 1 (the deeper net has more blocks after it). (Network
    # j of kernels.init_many = network j alone: test_nets_layers and the batched test below.)
    a = nets.resnet((6, 6, 3), bias=True, bias_std=0.2, **TINY).init(jax.random.key(3))
    b = nets.resnet((6, 6, 3), bias=True, bias_std=0.2, depth=14, filters=(3, 4, 4)).init(jax.random.key(3))
    jax.tree.map(np.testing.assert_array_equal, a[:3], b[:3])
    assert not np.array_equal(a[3]["main"][0]["W"], b[3]["main"][0]["W"])


# ---------------------------------------------------------------------------------------
# homogeneity, batching


@pytest.mark.slow  # the same property for any stack of layers: test_nets_layers
def test_resnet_is_positively_homogeneous_without_biases(x64):
    # f(x) = ⟨∇f(x), x⟩ and f(cx) = c·f(x) for the bias-free ReLU ResNet. (That the check
    # fails with biases, and holds for every layer with the default "patches" convolution, is
    # tested in test_nets_layers.)
    xs = np.random.default_rng(4).uniform(size=(3, 6, 6, 3))
    net = nets.resnet((6, 6, 3), conv_impl="xla", **TINY)
    assert np.all(homogeneity_gaps(net, net.init(jax.random.key(5)), xs) < 1e-12)


@pytest.mark.parametrize("impl", ["xla", pytest.param("patches", marks=pytest.mark.slow)])
def test_batched_equals_one_by_one(impl):
    # (xla in the default run: it compiles 2–3× faster; the two implementations agree in
    # test_nets_layers.)
    net = nets.resnet((6, 6, 3), conv_impl=impl, **TINY)
    params = kernels.init_many(net, jax.random.key(6), 2)
    xs = uniform(7, (2, 3, 6, 6, 3))
    ev = jax.tree.map(np.asarray, kernels.evaluate(net, params, xs))
    assert ev.f.shape == (2, 3) and ev.grad.shape == (2, 3, 6, 6, 3)
    one = kernels.value_and_input_grad(net.apply)
    f_scale, g_scale = np.max(np.abs(ev.f)), np.max(np.abs(ev.grad))
    for j in range(2):
        pj = net_j(params, j)
        for i in range(3):
            f, g = one(pj, xs[j, i])
            # Batched products sum in another order: float32 rounding, relative 1e-5.
            np.testing.assert_allclose(ev.f[j, i], f, atol=1e-5 * f_scale)
            np.testing.assert_allclose(ev.grad[j, i], g, atol=1e-5 * g_scale)
    # Network j of init_many is network j alone.
    alone = net.init(list(jax.random.split(jax.random.key(6), 2))[1])
    jax.tree.map(np.testing.assert_array_equal, net_j(params, 1), alone)


@pytest.mark.slow
def test_shared_inputs_and_forward_match_evaluate():
    net = nets.lenet((8, 8, 2), channels=(3, 4), hidden=(5,), pool="max")
    params = kernels.init_many(net, jax.random.key(6), 3)
    xs = uniform(7, (4, 8, 8, 2))
    ev = kernels.evaluate(net, params, xs)
    assert ev.f.shape == (3, 4) and ev.grad.shape == (3, 4, 8, 8, 2)
    per_net = kernels.evaluate(net, params, np.broadcast_to(xs, (3, *xs.shape)))
    scale = float(np.max(np.abs(ev.f)))
    np.testing.assert_allclose(per_net.f, ev.f, atol=1e-5 * scale)
    np.testing.assert_allclose(kernels.forward(net, params, xs), ev.f, atol=1e-5 * scale)
    one = kernels.value_and_input_grad(net.apply)
    f, g = one(net_j(params, 2), xs[3])
    np.testing.assert_allclose(f, ev.f[2, 3], atol=1e-5 * scale)
    np.testing.assert_allclose(g, ev.grad[2, 3], atol=1e-5 * float(np.max(np.abs(ev.grad))))


# ---------------------------------------------------------------------------------------
# attacks on image networks


def _check_flips(net, params, xs, res, bounds=None):
    """Every reported success really flips sign f (evaluated here, pair by pair)."""
    f = jax.jit(jax.vmap(jax.vmap(net.apply, (None, 0)), (0, 0)))
    f_x, f_adv = np.asarray(f(params, xs)), np.asarray(f(params, res.x_adv))
    ok = np.asarray(res.success)
    # Small bias-free nets on inputs in [0, 1] often keep one sign on most of the box, so a
    # few pairs may fail within the budget; every reported success must be a real flip.
    assert ok.mean() >= 0.5, ok
    assert np.all(np.sign(f_adv[ok]) == -np.sign(f_x[ok]))
    np.testing.assert_allclose(res.f_clean, f_x, rtol=1e-5, atol=1e-6 * np.abs(f_x).max())
    if bounds is not None:
        x_adv = np.asarray(res.x_adv)
        assert x_adv.min() >= bounds[0] and x_adv.max() <= bounds[1]
    return ok


def test_one_step_flips_the_sign_on_a_cnn():
    # Per-network images (n_net, n_x, H, W, C); the verdict is checked by evaluating f at
    # x_adv independently. (min_norm, whose graph takes ~8 s to compile, is in the slow tests.)
    shape = (6, 6, 3)
    net = nets.small_cnn(shape, channels=(4, 4))
    params = kernels.init_many(net, jax.random.key(8), 2)
    xs = uniform(9, (2, 3, *shape))
    step = attacks.one_step(net, params, xs)
    assert step.x_adv.shape == xs.shape
    _check_flips(net, params, xs, step)


@pytest.mark.slow
@pytest.mark.parametrize("family", ["small_cnn", "resnet"])
def test_min_norm_and_one_step_on_image_networks(x64, family):
    shape = (6, 6, 3)
    if family == "small_cnn":
        net = nets.small_cnn(shape, channels=(4, 4))
    else:
        net = nets.resnet(shape, depth=8, filters=(8, 8, 8))
    params = kernels.init_many(net, jax.random.key(8), 2)
    xs = uniform(9, (2, 3, *shape), np.float64)
    res = attacks.min_norm(net, params, xs, norm=2, bounds=(0.0, 1.0), n_steps=8)
    ok = _check_flips(net, params, xs, res, bounds=(0.0, 1.0))
    dist = np.sqrt(np.sum((np.asarray(res.x_adv) - np.asarray(xs)) ** 2, axis=(2, 3, 4)))
    np.testing.assert_allclose(res.distance[ok], dist[ok], rtol=1e-10)
    step = attacks.one_step(net, params, xs)
    _check_flips(net, params, xs, step)
    # Network j alone gives network j's results.
    p1 = net_j(params, 1)
    alone = attacks.min_norm(net, p1, xs[1], norm=2, bounds=(0.0, 1.0), n_steps=8)
    np.testing.assert_allclose(alone.distance, res.distance[1], rtol=1e-9)
    np.testing.assert_allclose(alone.x_adv, res.x_adv[1], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(attacks.one_step(net, p1, xs[1]).eta, step.eta[1], rtol=1e-9)


@pytest.mark.slow
@pytest.mark.parametrize("norm", [1, 2, np.inf])
def test_every_norm_and_line_search_on_resnet(norm):
    net = nets.resnet((8, 8, 3), padding="wrap", depth=8, filters=(8, 8, 8))
    params = kernels.init_many(net, jax.random.key(10), 2)
    xs = uniform(11, (2, 4, 8, 8, 3))
    res = attacks.min_norm(net, params, xs, norm=norm, bounds=(0.0, 1.0))
    ok = _check_flips(net, params, xs, res, bounds=(0.0, 1.0))
    delta = (np.asarray(res.x_adv) - np.asarray(xs)).reshape(2, 4, -1)
    dist = np.linalg.norm(delta, ord=norm, axis=-1)
    np.testing.assert_allclose(res.distance[ok], dist[ok], rtol=1e-5)
    u = np.random.default_rng(12).standard_normal(xs.shape).astype(np.float32)
    u /= np.linalg.norm(u.reshape(2, 4, -1), axis=-1)[..., None, None, None]
    line = attacks.line_search(net, params, xs, u, t_max=100.0)
    assert line.x_adv.shape == xs.shape and line.distance.shape == (2, 4)
    _check_flips(net, params, xs, line)
