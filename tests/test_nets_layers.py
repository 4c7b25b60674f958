"""Building blocks of image networks (jaxadv.nets.layers, nets.sequential) against float64 NumPy oracles."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxadv import kernels, nets
from jaxadv.nets import layers as L

IMPLS = ("patches", "xla")


# ---------------------------------------------------------------------------------------
# independent float64 oracles: explicit loops over output pixels and kernel taps


def _tf_same(n, k, s):
    # TensorFlow's "SAME": output ⌈n/s⌉, total padding max((out−1)s + k − n, 0), the odd
    # one after. Cross-checked below against XLA's own "SAME" padding.
    out = -(-n // s)
    return out, max((out - 1) * s + k - n, 0) // 2


def conv_oracle(x, W, b, stride, padding):
    H, Wd, C = x.shape
    kh, kw, _, O = W.shape
    sh, sw = stride
    if padding == "valid":
        (oh, lo_h), (ow, lo_w) = ((H - kh) // sh + 1, 0), ((Wd - kw) // sw + 1, 0)
    else:
        (oh, lo_h), (ow, lo_w) = _tf_same(H, kh, sh), _tf_same(Wd, kw, sw)
    out = np.zeros((oh, ow, O))
    for i in range(oh):
        for j in range(ow):
            for u in range(kh):
                for v in range(kw):
                    r, c = i * sh + u - lo_h, j * sw + v - lo_w
                    if padding == "wrap":
                        r, c = r % H, c % Wd
                    elif not (0 <= r < H and 0 <= c < Wd):
                        continue  # a zero of the padding
                    out[i, j] += x[r, c] @ W[u, v]
    return out + (0 if b is None else b)


def pool_oracle(x, window, stride, op):
    H, Wd, C = x.shape
    oh, ow = (H - window[0]) // stride[0] + 1, (Wd - window[1]) // stride[1] + 1
    out = np.zeros((oh, ow, C))
    for i in range(oh):
        for j in range(ow):
            block = x[i * stride[0] : i * stride[0] + window[0], j * stride[1] : j * stride[1] + window[1]]
            out[i, j] = block.mean(axis=(0, 1)) if op == "avg" else block.max(axis=(0, 1))
    return out


def uniform(seed, shape, dtype=np.float32):
    """U[0, 1] pixels from NumPy (an eager jax.random call would compile a kernel per shape)."""
    return np.random.default_rng(seed).uniform(size=shape).astype(dtype)


def _rng_arrays(seed, *shapes):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s) for s in shapes]


# ---------------------------------------------------------------------------------------
# layers against the oracles


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(
    "hw, kernel, stride, padding",
    [
        ((6, 6), (3, 3), (1, 1), "same"),
        ((7, 5), (3, 3), (2, 2), "same"),
        ((6, 7), (2, 3), (2, 1), "same"),
        ((6, 6), (3, 3), (1, 1), "wrap"),
        ((7, 6), (3, 3), (2, 2), "wrap"),
        ((5, 6), (4, 2), (1, 2), "wrap"),
        ((6, 5), (1, 1), (2, 2), "same"),
        ((7, 6), (3, 2), (2, 3), "valid"),
        ((2, 1), (3, 3), (1, 1), "same"),
        ((2, 1), (3, 3), (2, 1), "wrap"),
    ],
)
def test_conv_equals_loop_oracle(x64, impl, hw, kernel, stride, padding):
    c_in, c_out = 2, 3
    x, W, b = _rng_arrays(0, (*hw, c_in), (*kernel, c_in, c_out), (c_out,))
    layer = L.Conv(c_out, kernel, stride, padding)
    expected = conv_oracle(x, W, b, stride, padding)
    assert layer.output_shape(x.shape) == expected.shape
    got = jax.jit(layer.apply, static_argnums=2)({"W": W, "b": b}, x, L.ApplyConfig("highest", impl))
    assert got.dtype == jnp.float64
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    if padding == "same":
        # The oracle's padding convention is XLA's (and TensorFlow's) "SAME".
        xla = jax.lax.conv_general_dilated(x[None], W, stride, "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))[0]
        np.testing.assert_allclose(expected, xla + b, rtol=1e-12, atol=1e-12)


def test_wrap_padding_is_circular_convolution(x64):
    # Stride 1, "wrap": out[i, j] = Σ_{u,v} x[(i+u−p) mod H, (j+v−q) mod W] W[u, v], p = (kh−1)//2:
    # a circular convolution with the kernel placed at (p − u, q − v) mod (H, W), computed by FFT.
    H, Wd, c_in, c_out, kh, kw = 6, 5, 2, 3, 3, 4
    x, W = _rng_arrays(1, (H, Wd, c_in), (kh, kw, c_in, c_out))
    p, q = (kh - 1) // 2, (kw - 1) // 2
    g = np.zeros((H, Wd, c_in, c_out))
    for u in range(kh):
        for v in range(kw):
            g[(p - u) % H, (q - v) % Wd] += W[u, v]
    fx = np.fft.fft2(x, axes=(0, 1))
    fg = np.fft.fft2(g, axes=(0, 1))
    expected = np.real(np.fft.ifft2(np.einsum("hwc,hwco->hwo", fx, fg), axes=(0, 1)))
    # The same by rolls: roll(x, (p − u, q − v))[i, j] = x[i − p + u, j − q + v].
    rolled = sum(np.roll(x, (p - u, q - v), axis=(0, 1)) @ W[u, v] for u in range(kh) for v in range(kw))
    np.testing.assert_allclose(rolled, expected, atol=1e-12)
    for impl in IMPLS:
        got = L.Conv(c_out, (kh, kw), 1, "wrap").apply({"W": jnp.asarray(W)}, jnp.asarray(x), L.ApplyConfig("highest", impl))
        np.testing.assert_allclose(got, expected, rtol=1e-11, atol=1e-12)
    # Periodic padding commutes with circular shifts of the image (translation equivariance).
    shifted = L.Conv(c_out, (kh, kw), 1, "wrap").apply({"W": jnp.asarray(W)}, jnp.roll(x, (2, 1), axis=(0, 1)), L.ApplyConfig())
    np.testing.assert_allclose(shifted, np.roll(expected, (2, 1), axis=(0, 1)), atol=1e-12)


@pytest.mark.parametrize(
    "layer, window, stride, op",
    [
        (L.AvgPool(2), (2, 2), (2, 2), "avg"),
        (L.AvgPool(3, 2), (3, 3), (2, 2), "avg"),
        (L.AvgPool((2, 3), (1, 2)), (2, 3), (1, 2), "avg"),
        (L.MaxPool(2), (2, 2), (2, 2), "max"),
        (L.MaxPool((3, 2), (2, 1)), (3, 2), (2, 1), "max"),
    ],
    ids=repr,
)
def test_pooling_equals_loop_oracle(x64, layer, window, stride, op):
    (x,) = _rng_arrays(2, (7, 6, 3))
    expected = pool_oracle(x, window, stride, op)
    assert layer.output_shape(x.shape) == expected.shape
    np.testing.assert_allclose(layer.apply({}, jnp.asarray(x), L.ApplyConfig()), expected, rtol=1e-13, atol=1e-14)


def test_dense_flatten_activation_and_residual(x64):
    x, W, b = _rng_arrays(3, (2, 3, 2), (12, 4), (4,))
    cfg = L.ApplyConfig()
    flat = L.Flatten().apply({}, jnp.asarray(x), cfg)
    np.testing.assert_array_equal(flat, [x[i, j, c] for i in range(2) for j in range(3) for c in range(2)])  # row-major H, W, C
    dense = L.Dense(4).apply({"W": jnp.asarray(W), "b": jnp.asarray(b)}, flat, cfg)
    np.testing.assert_allclose(dense, [sum(flat[k] * W[k, o] for k in range(12)) + b[o] for o in range(4)], rtol=1e-13)
    np.testing.assert_allclose(L.Activation("tanh").apply({}, jnp.asarray(x), cfg), np.tanh(x), rtol=1e-14)
    # σ(main(x) + shortcut(x)) with a strided main path and a 1×1 projection.
    (img,) = _rng_arrays(4, (6, 5, 2))
    W1, W2, Wp = _rng_arrays(5, (3, 3, 2, 3), (3, 3, 3, 3), (1, 1, 2, 3))
    block = L.Residual([L.Conv(3, 3, 2), L.Activation(), L.Conv(3)], [L.Conv(3, 1, 2)])
    params = {"main": [{"W": W1}, {}, {"W": W2}], "shortcut": [{"W": Wp}]}
    main = conv_oracle(np.maximum(conv_oracle(img, W1, None, (2, 2), "same"), 0), W2, None, (1, 1), "same")
    expected = np.maximum(main + conv_oracle(img, Wp, None, (2, 2), "same"), 0)
    assert block.output_shape(img.shape) == expected.shape == (3, 3, 3)
    np.testing.assert_allclose(jax.jit(block.apply, static_argnums=2)(params, img, cfg), expected, rtol=1e-12, atol=1e-12)
    identity = L.Residual([L.Conv(2)], activation=None)
    np.testing.assert_allclose(
        jax.jit(identity.apply, static_argnums=2)({"main": [{"W": W1[..., :2]}], "shortcut": []}, img, cfg),
        conv_oracle(img, W1[..., :2], None, (1, 1), "same") + img,
        rtol=1e-12,
        atol=1e-12,
    )


@pytest.mark.parametrize(
    "impl, slow_ok", [("patches", False), ("xla", False), pytest.param("xla", True, marks=pytest.mark.slow, id="xla-no-jit")]
)
def test_sequential_network_equals_oracle_chain(x64, impl, slow_ok):
    stack = [
        L.Conv(3, 3, 1, "wrap"),
        L.Activation(),
        L.Residual([L.Conv(4, 3, 2), L.Activation(), L.Conv(4)], [L.Conv(4, 1, 2)]),
        L.MaxPool(2, 1),
        L.Flatten(),
        L.Dense(5),
        L.Activation("softplus"),
        L.Dense(1),
    ]
    net = nets.sequential(stack, (7, 6, 2), bias=True, bias_std=0.5, conv_impl=impl)
    p = net.init(jax.random.key(0))
    assert [sorted(q) for q in p] == [["W", "b"], [], ["main", "shortcut"], [], [], ["W", "b"], [], ["W", "b"]]
    P = jax.tree.map(np.asarray, p)
    (x,) = _rng_arrays(6, (7, 6, 2))
    h = np.maximum(conv_oracle(x, P[0]["W"], P[0]["b"], (1, 1), "wrap"), 0)
    m = P[2]["main"]
    y = conv_oracle(np.maximum(conv_oracle(h, m[0]["W"], m[0]["b"], (2, 2), "same"), 0), m[2]["W"], m[2]["b"], (1, 1), "same")
    h = np.maximum(y + conv_oracle(h, P[2]["shortcut"][0]["W"], P[2]["shortcut"][0]["b"], (2, 2), "same"), 0)
    h = pool_oracle(h, (2, 2), (1, 1), "max").ravel()
    h = np.log1p(np.exp(h @ P[5]["W"] + P[5]["b"]))
    expected = (h @ P[7]["W"] + P[7]["b"])[0]
    f = jax.jit(net.apply)(p, x)
    assert f.shape == () and f.dtype == jnp.float64
    np.testing.assert_allclose(f, expected, rtol=1e-11)
    if slow_ok:  # no jit, op by op (every small op compiles once eagerly: seconds)
        np.testing.assert_allclose(net.apply(p, x), expected, rtol=1e-11)


@pytest.mark.slow
def test_conv_impls_agree_in_float32_under_vmap():
    # Batched over networks and images, both implementations give the same numbers up to
    # float32 rounding of sums of 9·C products (relative 1e-5 of the output scale).
    stack = [L.Conv(8, 3, 2, "wrap"), L.Activation(), L.Conv(8), L.Activation(), L.Flatten(), L.Dense(1)]
    a, b = (nets.sequential(stack, (8, 8, 3), conv_impl=i) for i in IMPLS)
    assert a != b
    params = kernels.init_many(a, jax.random.key(1), 3)
    xs = uniform(2, (3, 4, 8, 8, 3))
    ea, eb = kernels.evaluate(a, params, xs), kernels.evaluate(b, params, xs)
    scale = float(np.max(np.abs(ea.f)))
    np.testing.assert_allclose(ea.f, eb.f, atol=1e-5 * scale)
    np.testing.assert_allclose(ea.grad, eb.grad, atol=1e-5 * float(np.max(np.abs(ea.grad))))


# ---------------------------------------------------------------------------------------
# homogeneity: the identity the attacks' theory relies on


# Every kind of layer in one stack: wrap and same padding, strides, both residual shortcuts,
# max and average pooling, dense layers.
EVERY_LAYER = [
    L.Conv(4, 3, 1, "wrap"),
    L.Activation(),
    L.Residual([L.Conv(4), L.Activation(), L.Conv(4)]),
    L.Residual([L.Conv(5, 3, 2), L.Activation(), L.Conv(5)], [L.Conv(5, 1, 2)]),
    L.MaxPool(2, 1),
    L.Conv(3, 2, 1, "same"),
    L.Activation(),
    L.AvgPool(2),
    L.Flatten(),
    L.Dense(6),
    L.Activation(),
    L.Dense(1),
]


def homogeneity_gaps(net, params, xs, cs=(0.1, 7.0)):
    """max |f(x) − ⟨∇f(x), x⟩| and max |f(cx) − c·f(x)|/c over xs (NumPy), relative to max |f|."""
    xs = np.asarray(xs)
    scaled = np.concatenate([xs] + [c * xs for c in cs])
    f, g = map(np.asarray, jax.jit(jax.vmap(jax.value_and_grad(net.apply, argnums=1), (None, 0)))(params, scaled))
    n = len(xs)
    euler = np.sum(g[:n] * xs, axis=tuple(range(1, xs.ndim)))
    gaps = [np.max(np.abs(f[:n] - euler))]
    gaps += [np.max(np.abs(f[(i + 1) * n : (i + 2) * n] - c * f[:n])) / c for i, c in enumerate(cs)]
    return np.array(gaps) / np.max(np.abs(f[:n]))


def test_bias_free_relu_nets_are_positively_homogeneous(x64):
    # f(x) = ⟨∇f(x), x⟩ (Euler) and f(cx) = c·f(x) for c > 0: convs, ReLU, average and max
    # pooling, sums and flattening are all positively 1-homogeneous without biases.
    xs = uniform(4, (3, 9, 9, 2), np.float64)
    net = nets.sequential(EVERY_LAYER, (9, 9, 2))
    assert np.all(homogeneity_gaps(net, net.init(jax.random.key(3)), xs) < 1e-12)
    # With biases both identities fail, so the check above can fail.
    biased = nets.sequential([L.Conv(4, 3, 2), L.Activation(), L.Flatten(), L.Dense(1)], (9, 9, 2), bias=True, bias_std=0.5)
    assert np.all(homogeneity_gaps(biased, biased.init(jax.random.key(3)), xs) > 1e-3)


# ---------------------------------------------------------------------------------------
# initialisation


@pytest.mark.slow  # the He-normal default is checked on the ResNet in the default run (test_nets_images)
def test_weight_and_bias_variances_per_layer():
    # W ~ N(0, σ_W²/fan_in): the sample variance of n entries has standard deviation
    # ≈ var·√(2/n); allow 5 of them per layer (9 tensors, fixed key). Biases: sample std of
    # n draws has standard error σ_b/√(2n); allow 5.
    stack = [
        L.Conv(64, 3),
        L.Activation(),
        L.Conv(48, (1, 2), 2),
        L.Activation(),
        L.Residual([L.Conv(48, 3)], [L.Conv(48, 1)]),
        L.Flatten(),
        L.Dense(300),
        L.Activation(),
        L.Dense(1),
    ]
    sigma_w, sigma_b = 1.7, 0.3
    net = nets.sequential(stack, (6, 6, 5), weight_std=sigma_w, bias=True, bias_std=sigma_b)
    p = net.init(jax.random.key(7))
    tensors = [p[0], p[2], p[4]["main"][0], p[4]["shortcut"][0], p[6], p[8]]
    fan_ins = [9 * 5, 2 * 64, 9 * 48, 48, 3 * 3 * 48, 300]
    for layer, fan_in in zip(tensors, fan_ins):
        w = np.asarray(layer["W"], np.float64)
        var = sigma_w**2 / fan_in
        assert abs(w.var() / var - 1) < 5 * math.sqrt(2 / w.size), (w.shape, w.var(), var)
        assert abs(w.mean()) < 5 * math.sqrt(var / w.size)
        if layer["b"].size >= 48:
            assert abs(float(np.std(layer["b"])) / sigma_b - 1) < 5 / math.sqrt(2 * layer["b"].size)
    assert p[8]["W"].shape == (300, 1) and p[8]["b"].shape == (1,)
    zero = nets.sequential(stack, (6, 6, 5), bias=True, bias_std=0.0).init(jax.random.key(7))
    assert all(not np.any(np.asarray(leaf["b"])) for leaf in (zero[0], zero[6]))


def test_layer_draws_do_not_depend_on_later_layers_and_init_many():
    head = [L.Conv(4), L.Activation(), L.Residual([L.Conv(4)], [L.Conv(4, 1)]), L.AvgPool(2)]
    short = nets.sequential([*head, L.Flatten(), L.Dense(1)], (6, 6, 3), bias=True)
    long = nets.sequential(
        [*head, L.Conv(7), L.Activation(), L.Flatten(), L.Dense(9), L.Activation(), L.Dense(1)], (6, 6, 3), bias=True
    )
    a, b = short.init(jax.random.key(8)), long.init(jax.random.key(8))
    jax.tree.map(np.testing.assert_array_equal, a[: len(head)], b[: len(head)])
    assert not np.array_equal(a[0]["W"], short.init(jax.random.key(9))[0]["W"])
    # Network j of kernels.init_many is network j drawn alone.
    many = kernels.init_many(short, jax.random.key(10), 5)
    keys = list(jax.random.split(jax.random.key(10), 5))
    for j in (0, 3):
        alone = short.init(keys[j])
        jax.tree.map(lambda m, x: np.testing.assert_array_equal(np.asarray(m)[j], x), many, alone)
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(many))
    half = nets.sequential([L.Flatten(), L.Dense(1)], (2, 2, 1), dtype="float16")
    assert all(leaf.dtype == jnp.float16 for leaf in jax.tree.leaves(half.init(jax.random.key(0))))


def test_equal_configurations_give_equal_networks():
    a = nets.sequential([L.Conv(4, 3), L.Activation("relu"), L.Flatten(), L.Dense(1)], (5, 5, 3))
    b = nets.sequential((L.Conv(4, (3, 3), (1, 1), "same"), L.Activation(), L.Flatten(), L.Dense(1)), [5, 5, 3])
    assert a == b and hash(a) == hash(b)
    assert a != nets.sequential([L.Conv(4, 3, padding="wrap"), L.Activation(), L.Flatten(), L.Dense(1)], (5, 5, 3))
    assert L.AvgPool(2) != L.MaxPool(2) and L.AvgPool(2) == L.AvgPool(2, 2)
    assert "sequential(input_shape=(5, 5, 3), layers=[Conv(features=4" in a.name


# ---------------------------------------------------------------------------------------
# bad input


def test_apply_rejects_wrong_image_shapes():
    net = nets.sequential([L.Conv(2), L.Flatten(), L.Dense(1)], (5, 5, 3))
    p = jax.tree.map(lambda a: np.zeros(a.shape, a.dtype), jax.eval_shape(net.init, jax.random.key(0)))
    for shape in [(5, 5), (5, 5, 1), (1, 5, 5, 3), (75,)]:
        with pytest.raises(ValueError, match=r"`x` must be ONE input of shape \(5, 5, 3\)"):
            net.apply(p, np.zeros(shape, np.float32))
    many = jax.tree.map(lambda a: np.stack([a, a]), p)
    with pytest.raises(ValueError, match=r"`xs` must have shape \(n_x, 5, 5, 3\) or \(n_net, n_x, 5, 5, 3\)"):
        kernels.evaluate(net, many, np.zeros((2, 4, 5, 5, 1), np.float32))


@pytest.mark.parametrize(
    "stack, shape, match",
    [
        ([L.Conv(2, 5, padding="valid"), L.Flatten(), L.Dense(1)], (4, 6, 1), r"`layers\[0\]` \(Conv.*kernel 5×5 is larger than the input image 4×6"),
        ([L.Conv(2), L.AvgPool(4), L.Flatten(), L.Dense(1)], (3, 3, 1), r"`layers\[1\]`.*pooling window 4×4 is larger"),
        ([L.Conv(2), L.MaxPool(2), L.MaxPool(2), L.Flatten(), L.Dense(1)], (3, 3, 1), r"`layers\[2\]`.*2×2 is larger than the input image 1×1"),
        ([L.Conv(2), L.Dense(1)], (3, 3, 1), r"`layers\[1\]`.*put Flatten\(\) before it"),
        ([L.Flatten(), L.Conv(2)], (3, 3, 1), r"`layers\[1\]`.*images of shape \(H, W, C\)"),
        ([L.Residual([L.Conv(3, 3, 2)]), L.Flatten(), L.Dense(1)], (4, 4, 3), r"main path gives shape \(2, 2, 3\) but the shortcut gives \(4, 4, 3\)"),
        ([L.Residual([L.Conv(3), L.Dense(2)])], (4, 4, 3), r"`layers\[0\]`.*`main\[1\]`.*Flatten"),
        ([L.Conv(2), L.Flatten()], (3, 3, 1), r"single output.*shape \(18,\)"),
    ],
)
def test_impossible_stacks_fail_at_construction(stack, shape, match):
    with pytest.raises(ValueError, match=match):
        nets.sequential(stack, shape)


def test_bad_layer_arguments():
    with pytest.raises(ValueError, match="`stride` must be positive"):
        L.Conv(2, stride=0)
    with pytest.raises(ValueError, match="`stride` must be positive"):
        L.AvgPool(2, (1, -1))
    with pytest.raises(ValueError, match="`kernel` must be positive"):
        L.Conv(2, kernel=0)
    with pytest.raises(TypeError, match="`kernel` must be a positive integer or a pair"):
        L.Conv(2, kernel=(3, 3, 3))
    with pytest.raises(ValueError, match="`window` must be positive"):
        L.MaxPool(0)
    with pytest.raises(ValueError, match=r"`padding` must be one of \['same', 'valid', 'wrap'\], got 'circular'"):
        L.Conv(2, padding="circular")
    with pytest.raises(ValueError, match="`features` must be a positive integer"):
        L.Dense(0)
    with pytest.raises(ValueError, match="`fn` must be one of"):
        L.Activation("sigmoid")
    with pytest.raises(TypeError, match=r"`main\[1\]` must be a layer"):
        L.Residual([L.Conv(2), jax.nn.relu])
    with pytest.raises(ValueError, match="`main` must contain at least one layer"):
        L.Residual([])
    with pytest.raises(TypeError, match=r"`layers\[0\]` must be a layer"):
        nets.sequential([jnp.tanh, L.Flatten(), L.Dense(1)], (2, 2, 1))
    with pytest.raises(TypeError, match="`layers` must be a list of layers"):
        nets.sequential(L.Dense(1), (2,))
    with pytest.raises(ValueError, match="`input_shape` must be a tuple of positive integers"):
        nets.sequential([L.Flatten(), L.Dense(1)], (0, 2, 1))
    with pytest.raises(ValueError, match="`conv_impl` must be one of"):
        nets.sequential([L.Flatten(), L.Dense(1)], (2, 2, 1), conv_impl="fft")
    with pytest.raises(ValueError, match="`bias_std` must be a finite number ≥ 0"):
        nets.sequential([L.Flatten(), L.Dense(1)], (2, 2, 1), bias=True, bias_std=-1.0)
