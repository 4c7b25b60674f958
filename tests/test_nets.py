"""Network families: parameterisations, gradients, homogeneity."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import families, family_names
from jax.test_util import check_grads

from jaxadv import data, nets


def test_two_layer_analytic_gradient_equals_autodiff(x64):
    # Bubeck et al. eq. (1): ∇f(x) = k^{-1/2} Σ_ℓ a_ℓ ψ'(w_ℓ·x) w_ℓ.
    d, k = 30, 50
    for act, dact in [("relu", lambda z: (z > 0).astype(z.dtype)), ("tanh", lambda z: 1 - jnp.tanh(z) ** 2)]:
        net = nets.two_layer(d, k, act)
        params = net.init(jax.random.key(1))
        for x in data.sphere(jax.random.key(2), 5, d):
            analytic = (params["a"] * dact(params["W"] @ x)) @ params["W"] / math.sqrt(k)
            auto = jax.grad(net.apply, argnums=1)(params, x)
            np.testing.assert_allclose(auto, analytic, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", family_names())
def test_check_grads_float64(x64, name):
    net = families()[name]
    params = net.init(jax.random.key(3))
    assert all(leaf.dtype == jnp.float64 for leaf in jax.tree.leaves(params))
    x = data.sphere(jax.random.key(4), 1, 12)[0]
    smooth = "relu" not in net.name and "linear" not in net.name
    check_grads(lambda x_: net.apply(params, x_), (x,), order=2 if smooth else 1, modes=("fwd", "rev"))


def test_dtype_follows_x64_and_argument():
    net = nets.mlp(5, [4])
    assert all(l.dtype == jnp.float32 for l in jax.tree.leaves(net.init(jax.random.key(0))))
    with jax.enable_x64(True):
        assert all(l.dtype == jnp.float64 for l in jax.tree.leaves(net.init(jax.random.key(0))))
        net16 = nets.mlp(5, [4], dtype="float16")
        assert all(l.dtype == jnp.float16 for l in jax.tree.leaves(net16.init(jax.random.key(0))))
    assert not jax.config.jax_enable_x64  # the context restored the user's setting


@pytest.mark.parametrize(
    "net",
    [nets.two_layer(20, 30), nets.mlp(20, [30, 30, 30]), nets.mlp(20, [40, 10, 3], readout="rademacher"), nets.linear(20, bias=False)],
    ids=lambda n: n.name,
)
def test_positive_homogeneity(x64, net):
    # Bias-free ReLU nets are positively 1-homogeneous: f(x) = ⟨∇f(x), x⟩ (Euler), f(αx) = αf(x).
    params = net.init(jax.random.key(5))
    for x in data.sphere(jax.random.key(6), 4, 20):
        f, g = jax.value_and_grad(net.apply, argnums=1)(params, x)
        np.testing.assert_allclose(f, g @ x, rtol=1e-12, atol=1e-13)
        for alpha in (0.1, 3.0, 1e3):
            np.testing.assert_allclose(net.apply(params, alpha * x), alpha * f, rtol=1e-12, atol=1e-13)


def test_homogeneity_fails_with_bias():
    # The identity above is a real check: a net with biases must violate it.
    net = nets.mlp(20, [30], bias=True)
    params = net.init(jax.random.key(7))
    x = data.sphere(jax.random.key(8), 1, 20)[0]
    f, g = jax.value_and_grad(net.apply, argnums=1)(params, x)
    assert abs(float(f - g @ x)) > 1e-3


def test_parameter_shapes_and_scales():
    d, k = 400, 300
    p = nets.two_layer(d, k).init(jax.random.key(0))
    assert p["W"].shape == (k, d) and p["a"].shape == (k,)
    assert set(np.unique(np.asarray(p["a"]))) == {-1.0, 1.0}
    # Var W_ij = 1/d; with 1.2e5 entries the sample variance is within ~0.4% (4 standard errors of √(2/n)).
    np.testing.assert_allclose(float(jnp.var(p["W"])) * d, 1.0, rtol=4 * math.sqrt(2 / p["W"].size))
    pg = nets.two_layer(d, k, readout="gaussian").init(jax.random.key(0))
    assert len(np.unique(np.asarray(pg["a"]))) == k

    m = nets.mlp(d, [200, 100], bias=True, bias_std=0.3).init(jax.random.key(1))
    assert [l["W"].shape for l in m["hidden"]] == [(200, d), (100, 200)]
    np.testing.assert_allclose(float(jnp.var(m["hidden"][1]["W"])) * 200, 1.0, rtol=4 * math.sqrt(2 / 2e4))
    # The sample std of n = 200 draws has standard error σ/√(2n); allow 4 of them.
    np.testing.assert_allclose(float(jnp.std(m["hidden"][0]["b"])), 0.3, rtol=4 / math.sqrt(2 * 200))
    assert m["readout"]["w"].shape == (100,) and m["readout"]["b"].shape == ()

    s = nets.shallow(d, k).init(jax.random.key(2))
    bound = 1 / math.sqrt(d)
    assert float(jnp.max(jnp.abs(s["w"]))) <= bound and float(jnp.max(jnp.abs(s["w"]))) > 0.99 * bound
    assert float(jnp.max(jnp.abs(s["v"]))) <= 1 / math.sqrt(k)


def test_equal_configs_give_equal_networks():
    # Equal configuration ⇒ equal (hashable) networks, so jitted kernels are reused.
    a, b = nets.mlp(10, [5, 5]), nets.mlp(10, (5, 5))
    assert a == b and hash(a) == hash(b)
    assert nets.mlp(10, [5, 5]) != nets.mlp(10, [5, 6])
    assert "mlp(d=10, widths=(5, 5)" in repr(a)


def test_init_is_deterministic_in_key_and_differs_across_keys():
    net = nets.mlp(10, [5])
    a, b, c = (net.init(jax.random.key(s)) for s in (0, 0, 1))
    jax.tree.map(np.testing.assert_array_equal, a, b)
    assert not np.array_equal(a["hidden"][0]["W"], c["hidden"][0]["W"])


def test_legacy_uint32_keys_are_accepted():
    net = nets.two_layer(4, 3)
    p = net.init(jax.random.PRNGKey(0))
    assert p["W"].shape == (3, 4)


def test_custom_activation_callable():
    net = nets.two_layer(6, 8, lambda z: jnp.maximum(z, 0.1 * z))
    p = net.init(jax.random.key(0))
    x = jnp.ones(6)
    z = p["W"] @ x
    np.testing.assert_allclose(net.apply(p, x), p["a"] @ jnp.maximum(z, 0.1 * z) / math.sqrt(8), rtol=1e-6)
