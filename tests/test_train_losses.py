"""Log-space losses and schedules (Vardi, Yehudai & Shamir 2022, eq. (1); PROTOCOLS §5.2, §6.1)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxadv import nets
from jaxadv.train import (
    GrowingLR,
    constant_lr,
    growing_lr,
    log_loss,
    log_losses,
    loss,
    loss_normalised_lr,
    scale_by_loss,
)
from jaxadv.train.losses import log_loss_and_grad


def _direct(q, kind, reduction):
    per = jnp.exp(-q) if kind == "exponential" else jnp.log1p(jnp.exp(-q))
    return jnp.sum(per) if reduction == "sum" else jnp.mean(per)


@pytest.mark.parametrize("kind", ["exponential", "logistic"])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_value_and_gradient_equal_the_direct_formula(x64, kind, reduction):
    # Margins up to 40 keep e^{−q} and its gradient representable in float64; the log-space
    # value exp(log 𝓛) and gradient 𝓛·∇log 𝓛 must then equal the direct formula to rounding.
    net = nets.shallow(6, 9, dtype="float64")
    params = jax.tree.map(lambda a: 3.0 * a, net.init(jax.random.key(0)))
    X = jax.random.normal(jax.random.key(1), (11, 6), jnp.float64)
    y = jnp.where(jnp.arange(11) % 2 == 0, 1.0, -1.0)

    def direct(p):
        return _direct(y * jax.vmap(net.apply, (None, 0))(p, X), kind, reduction)

    (log_l, q), g_log = log_loss_and_grad(net.apply, params, X, y, kind=kind, reduction=reduction)
    L, g = jax.value_and_grad(direct)(params)
    np.testing.assert_allclose(float(jnp.exp(log_l)), float(L), rtol=1e-12)
    for k in params:
        np.testing.assert_allclose(np.exp(float(log_l)) * np.asarray(g_log[k]), np.asarray(g[k]), rtol=1e-10, atol=1e-300)
    # and the same on a wide range of margins, including negative ones
    q = jnp.linspace(-30.0, 40.0, 57)
    np.testing.assert_allclose(float(loss(q, kind=kind, reduction=reduction)), float(_direct(q, kind, reduction)), rtol=1e-12)
    np.testing.assert_allclose(
        np.asarray(jax.grad(lambda v: jnp.exp(log_loss(v, kind=kind, reduction=reduction)))(q)),
        np.asarray(jax.grad(lambda v: _direct(v, kind, reduction))(q)),
        rtol=1e-10,
        atol=1e-300,
    )


@pytest.mark.parametrize("kind", ["exponential", "logistic"])
def test_finite_where_the_direct_formula_underflows(kind):
    # q = 1000, 1001 in float32: e^{−q} is 0, yet log 𝓛 = −1000 + log(1 + e^{−1}) exactly
    # (for the logistic loss log(1+e^{−q}) = e^{−q}(1 + O(e^{−q})), the same to float32).
    q = jnp.array([1000.0, 1001.0], jnp.float32)
    assert float(_direct(q, kind, "sum")) == 0.0
    expected = -1000.0 + math.log1p(math.exp(-1.0))
    np.testing.assert_allclose(float(log_loss(q, kind=kind)), expected, rtol=1e-7)
    np.testing.assert_allclose(float(log_loss(q, kind=kind, reduction="mean")), expected - math.log(2), rtol=1e-7)
    g = jax.grad(lambda v: log_loss(v, kind=kind))(q)
    # ∇_q log 𝓛 = −softmax(−q): finite weights 1/(1+e^{−1}) and e^{−1}/(1+e^{−1})
    w = 1 / (1 + math.exp(-1.0))
    np.testing.assert_allclose(np.asarray(g), [-w, -(1 - w)], rtol=1e-6)
    assert bool(jnp.all(jnp.isfinite(log_losses(jnp.array([-1e4, 0.0, 1e4]), kind=kind))))


def test_margins_of_the_paper_target_in_float32_match_float64(x64):
    # 𝓛 = 1e−30 corresponds to q ≈ 69 + ln m: float32 computes log 𝓛 to ~1e−7 relative.
    q64 = 69.0 + math.log(50) + jax.random.uniform(jax.random.key(3), (50,), jnp.float64)
    for kind in ("exponential", "logistic"):
        ref = float(log_loss(q64, kind=kind))
        got = float(log_loss(q64.astype(jnp.float32), kind=kind))
        assert abs(got - ref) < 1e-5 * abs(ref)


def test_growing_lr_is_the_paper_schedule_and_an_optax_schedule():
    lr = growing_lr()
    for t in (0, 99, 100, 250, 10_000):
        np.testing.assert_allclose(float(lr(t)), 1e-5 * 1.1 ** (t // 100), rtol=1e-5)
    np.testing.assert_allclose(float(lr(10_000)), 0.1378, rtol=1e-3)  # PROTOCOLS §5.2 [derived]
    # usable wherever optax takes a schedule
    opt = optax.sgd(growing_lr(0.5, factor=2.0, every=1))
    p = {"a": jnp.ones(2)}
    s = opt.init(p)
    u1, s = opt.update({"a": jnp.ones(2)}, s)
    u2, s = opt.update({"a": jnp.ones(2)}, s)
    np.testing.assert_allclose(np.asarray(u1["a"]), -0.5)
    np.testing.assert_allclose(np.asarray(u2["a"]), -1.0)
    assert isinstance(constant_lr(0.3), GrowingLR) and float(constant_lr(0.3)(1000)) == pytest.approx(0.3)


def test_scale_by_loss_combines_rate_and_loss_in_log_space():
    # 𝓛 = 1e−40 (below float32's normal range) and lr = 1e35: the step lr·𝓛 = 1e−5 is exact.
    g = {"a": jnp.array([1.0, -2.0], jnp.float32)}
    log_l = jnp.float32(math.log(1e-40))
    tx = scale_by_loss(growing_lr(1e35, factor=1.0))
    u, state = tx.update(g, tx.init(g), log_loss=log_l)
    np.testing.assert_allclose(np.asarray(u["a"]), [-1e-5, 2e-5], rtol=1e-5)
    assert int(state.count) == 1
    tx = scale_by_loss(loss_normalised_lr(0.25))  # (lr/𝓛)·∇𝓛 = lr·∇log 𝓛
    u, _ = tx.update(g, tx.init(g), log_loss=log_l)
    np.testing.assert_allclose(np.asarray(u["a"]), [-0.25, 0.5], rtol=1e-6)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: growing_lr(0.0), "lr0"),
        (lambda: growing_lr(-1e-5), "lr0"),
        (lambda: growing_lr(1e-5, factor=0.9), "factor"),
        (lambda: growing_lr(1e-5, every=0), "every"),
        (lambda: constant_lr(float("nan")), "lr"),
        (lambda: loss_normalised_lr(0.0), "lr"),
        (lambda: loss_normalised_lr(0.1, down=1.0), "down"),
        (lambda: log_loss(jnp.ones(3), kind="hinge"), "kind"),
        (lambda: log_loss(jnp.ones(3), reduction="max"), "reduction"),
    ],
)
def test_bad_schedule_and_loss_arguments(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_schedules_give_one_rate_per_step():
    # both schedules map an array of steps to an array of rates of the same shape
    steps = jnp.arange(0, 300, 100)
    np.testing.assert_allclose(np.asarray(loss_normalised_lr(0.25)(steps)), [0.25, 0.25, 0.25], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(growing_lr(1.0, factor=2.0)(steps)), [1.0, 2.0, 4.0], rtol=1e-6)
    assert loss_normalised_lr(0.25).log(jnp.int32(3)).shape == ()


def test_logistic_gradient_is_continuous_at_the_branch_switch(x64):
    # At q = 15 the log-softplus switches branch (t = −q = −15). A min/max clamp tied there
    # would hand half the gradient to each branch; the exact derivative of
    # log(softplus(−q)) is −σ(−q)/softplus(−q), evaluated here in float64.
    for q in (14.999, 15.0, 15.001):
        got = float(jax.grad(lambda v: log_losses(v, kind="logistic"))(jnp.float64(q)))
        want = -(1 / (1 + np.exp(q))) / np.log1p(np.exp(-q))
        assert got == pytest.approx(want, rel=1e-9), q
