"""Laws over random networks that the papers state exactly.

Each check uses a fixed key. Pairs that share a network are correlated, so standard errors
come from per-network means (one independent value per network), and tolerances are four
such standard errors: a correct implementation fails with probability < 1e-4 per check,
while an error in a variance or a gradient (a factor √2, a missing 1/√k) moves the mean by
tens of standard errors.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special, stats

from jaxadv import data, kernels, nets


def _per_net_mean_and_se(values):
    per_net = np.asarray(values, np.float64).mean(axis=1)
    return per_net.mean(), per_net.std(ddof=1) / math.sqrt(per_net.size)


def test_bubeck_moments_relu():
    # Bubeck et al. §1.2: for ‖x‖ = √d, E f(x)² = E ψ(X)² = 1/2 and E‖∇f(x)‖² = E ψ'(X)² ‖w‖² = 1/2.
    d = k = 200
    net = nets.two_layer(d, k)
    params = kernels.init_many(net, jax.random.key(10), 200)
    xs = data.sphere(jax.random.key(11), 200 * 12, d).reshape(200, 12, d)  # 2400 pairs
    f, g = kernels.evaluate(net, params, xs)
    m_f, se_f = _per_net_mean_and_se(f**2)
    m_g, se_g = _per_net_mean_and_se(jnp.sum(g**2, axis=-1))
    assert abs(m_f - 0.5) < 4 * se_f, (m_f, se_f)
    assert abs(m_g - 0.5) < 4 * se_g, (m_g, se_g)
    assert se_f < 0.03 and se_g < 0.01  # the check has power: a 10% error is many SEs


def test_bubeck_moments_tanh():
    # Same identity for a smooth ψ: E tanh(X)² and E tanh'(X)² by Gauss–Hermite quadrature.
    nodes, weights = np.polynomial.hermite_e.hermegauss(80)
    weights = weights / weights.sum()
    e_psi2 = float(np.sum(weights * np.tanh(nodes) ** 2))
    e_dpsi2 = float(np.sum(weights * (1 - np.tanh(nodes) ** 2) ** 2))
    d = k = 200
    net = nets.two_layer(d, k, "tanh", readout="gaussian")
    params = kernels.init_many(net, jax.random.key(12), 200)
    xs = data.sphere(jax.random.key(13), 200 * 12, d).reshape(200, 12, d)
    f, g = kernels.evaluate(net, params, xs)
    m_f, se_f = _per_net_mean_and_se(f**2)
    m_g, se_g = _per_net_mean_and_se(jnp.sum(g**2, axis=-1))
    assert abs(m_f - e_psi2) < 4 * se_f, (m_f, e_psi2, se_f)
    assert abs(m_g - e_dpsi2) < 4 * se_g, (m_g, e_dpsi2, se_g)


def _mean_abs_u1(d):
    # E|u₁| for u uniform on S^{d−1}: Γ(d/2) / (√π Γ((d+1)/2)).
    return math.exp(special.gammaln(d / 2) - special.gammaln((d + 1) / 2)) / math.sqrt(math.pi)


@pytest.mark.parametrize(
    "widths",
    [(60,), (40, 40, 40), (80, 40, 20, 10)],
    ids=["one_hidden_layer", "equal_depth3", "shrinking"],
)
def test_ratio_f_over_grad_has_the_law_of_norm_x_times_u1(widths):
    # Bartlett et al. Lemma 2.1 (∇f is rotation invariant given its norm) and Euler's identity
    # f(x) = ⟨∇f(x), x⟩ give |f(x)|/‖∇f(x)‖ ~ ‖x‖·|u₁|, i.e. (ratio/‖x‖)² ~ Beta(1/2, (d−1)/2).
    d = 20
    n_net, n_x = 1500, 2
    net = nets.mlp(d, widths)
    params = kernels.init_many(net, jax.random.key(sum(widths)), n_net)
    xs = data.sphere(jax.random.key(1), n_net * n_x, d).reshape(n_net, n_x, d)
    f, g = kernels.evaluate(net, params, xs)
    gn = jnp.linalg.norm(g, axis=-1)
    alive = np.asarray(gn > 0)
    assert alive.mean() > 0.99  # dead networks (∇f = 0) are rare at these widths
    ratio = np.where(alive, np.abs(np.asarray(f)) / np.where(alive, gn, 1.0), np.nan)
    # Exact law: KS test on one input per network (independent samples).
    first = ratio[:, 0][alive[:, 0]] / math.sqrt(d)
    ks = stats.kstest(first**2, stats.beta(0.5, (d - 1) / 2).cdf)
    assert ks.pvalue > 1e-3, ks
    # Mean: √d·E|u₁| (→ √(2/π) ≈ 0.798 as d → ∞), with per-network standard errors.
    per_net = np.nanmean(ratio, axis=1) / math.sqrt(d)
    se = np.nanstd(per_net, ddof=1) / math.sqrt(np.sum(~np.isnan(per_net)))
    assert abs(np.nanmean(per_net) - _mean_abs_u1(d)) < 4 * se


def test_ratio_law_fails_for_a_net_with_biases():
    # The law above is specific to bias-free nets: the test can tell the difference.
    d = 20
    net = nets.mlp(d, (60,), bias=True)
    params = kernels.init_many(net, jax.random.key(0), 1500)
    xs = data.sphere(jax.random.key(1), 1500, d).reshape(1500, 1, d)
    f, g = kernels.evaluate(net, params, xs)
    ratio = np.abs(np.asarray(f[:, 0])) / np.maximum(np.linalg.norm(np.asarray(g[:, 0]), axis=-1), 1e-30)
    ks = stats.kstest((ratio / math.sqrt(d)) ** 2, stats.beta(0.5, (d - 1) / 2).cdf)
    assert ks.pvalue < 1e-3
