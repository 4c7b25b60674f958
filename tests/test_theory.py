"""jaxadv.theory against ground truth: quadrature, Monte Carlo, float64 references, series."""

import doctest
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, stats

from jaxadv import theory


def _kappa_quad(rho: float) -> float:
    """E[σ(g)σ(ρg + s·g')]/E[σ(g)²] by one-dimensional quadrature (s = √(1 − ρ²)).

    Conditioning on g, E_{g'} σ(a + s·g') = a·Φ(a/s) + s·φ(a/s) with a = ρg; E σ(g)² = 1/2.
    Independent of the closed form it checks.
    """
    s = math.sqrt(1 - rho * rho)

    def inner(g):
        a = rho * g
        return g * (a * stats.norm.cdf(a / s) + s * stats.norm.pdf(a / s)) * stats.norm.pdf(g)

    val, _ = integrate.quad(inner, 0, np.inf, epsabs=1e-13, epsrel=1e-12)
    return 2 * val


def _kappa_np(rho):
    """The paper's formula in float64 numpy: (√(1 − ρ²) + (π − arccos ρ)ρ)/π."""
    return (np.sqrt(1 - rho**2) + (np.pi - np.arccos(rho)) * rho) / np.pi


@pytest.mark.parametrize("rho", [-0.9, -0.3, 0.0, 0.2, 0.5, 0.8, 0.95])
def test_correlation_map_matches_quadrature(x64, rho):
    assert float(theory.relu_correlation(rho)) == pytest.approx(_kappa_quad(rho), abs=1e-10)


def test_correlation_map_values_and_angle_form(x64):
    # Fixed points and the (sin θ)/π + (1 − θ/π)cos θ form of Lemma 3.2.
    assert float(theory.relu_correlation(1.0)) == pytest.approx(1.0, abs=1e-15)
    assert float(theory.relu_correlation(0.0)) == pytest.approx(1 / math.pi, abs=1e-15)
    assert float(theory.relu_correlation(-1.0)) == pytest.approx(0.0, abs=1e-15)
    theta = np.array([0.3, 1.0, 2.0, 3.0])
    expected = np.sin(theta) / np.pi + (1 - theta / np.pi) * np.cos(theta)
    np.testing.assert_allclose(theory.relu_correlation(jnp.cos(theta)), expected, rtol=1e-13, atol=1e-15)
    # PROTOCOLS.md §3: the formula's values at θ = 0.3, 1, 2, 3.
    np.testing.assert_allclose(expected, [0.9582, 0.6362, 0.1382, 0.0003], atol=6e-5)


def test_correlation_map_derivative_is_one_minus_angle_over_pi(x64):
    # dκ/dρ = (π − arccos ρ)/π: the probability that two correlated Gaussians are both positive, doubled.
    rho = jnp.linspace(-0.95, 0.95, 9)
    grad = jax.vmap(jax.grad(theory.relu_correlation))(rho)
    np.testing.assert_allclose(grad, 1 - np.arccos(np.asarray(rho)) / np.pi, rtol=1e-12)


@jax.jit
def _monte_carlo(key):
    kx, kg = jax.random.split(key)
    x, y = jax.random.normal(kx, (2, 5))
    g = jax.random.normal(kg, (100_000, 5))
    a, b = jax.nn.relu(g @ x), jax.nn.relu(g @ y)
    return x, y, a * b, a * a, b * b


def test_relu_kernel_by_monte_carlo():
    # E[σ(g·x)σ(g·y)] for g ~ N(0, I_5), n = 10⁵ samples: |mean − kernel| ≤ 5 standard errors
    # (the standard error estimated from the same samples; 5σ: a false alarm below 1e-6).
    x, y, prod, aa, bb = _monte_carlo(jax.random.key(0))
    mean, se = float(prod.mean()), float(prod.std() / math.sqrt(prod.size))
    assert abs(mean - float(theory.relu_kernel(x, y))) <= 5 * se
    # The normalised ratio of Lemma 3.2: its delta-method s.e. is ≈ s.e.(mean)/√(E a² E b²),
    # here below 4e-3, so 0.02 is 5 s.e.
    rho = float(x @ y / (jnp.linalg.norm(x) * jnp.linalg.norm(y)))
    ratio = mean / math.sqrt(float(aa.mean() * bb.mean()))
    assert se / math.sqrt(float(aa.mean() * bb.mean())) < 4e-3
    assert ratio == pytest.approx(float(theory.relu_correlation(rho)), abs=0.02)


def test_relu_kernel_diagonal_zero_and_broadcast(x64):
    x = jnp.asarray(np.random.default_rng(0).normal(size=(4, 7)))
    np.testing.assert_allclose(theory.relu_kernel(x, x), 0.5 * np.sum(np.asarray(x) ** 2, -1), rtol=1e-13)
    assert float(theory.relu_kernel(jnp.zeros(7), x[0])) == 0.0
    assert theory.relu_kernel(x, x[0]).shape == (4,)


def test_gap_is_accurate_where_the_naive_form_cancels(x64):
    # Moderate gaps: 1 − κ(1 − u) agrees with the naive float64 formula.
    u = np.logspace(-3, np.log10(2), 40)
    np.testing.assert_allclose(theory.relu_correlation_gap(u), 1 - _kappa_np(1 - u), rtol=1e-9)
    # Tiny gaps: the series u − a u^{3/2} − b u^{5/2} (a = 2√2/(3π), b = √2/(30π)), exact to
    # relative O(u³/u) here, where the naive form has lost every digit.
    tiny = np.logspace(-14, -6, 9)
    a, b = 2 * math.sqrt(2) / (3 * math.pi), math.sqrt(2) / (30 * math.pi)
    np.testing.assert_allclose(theory.relu_correlation_gap(tiny), tiny - a * tiny**1.5 - b * tiny**2.5, rtol=1e-12)


def test_gap_in_float32_keeps_relative_precision():
    u = np.logspace(-12, 0.3, 60)
    with jax.enable_x64(True):
        ref = np.asarray(theory.relu_correlation_gap(jnp.asarray(u, jnp.float64)))
    got = theory.relu_correlation_gap(jnp.asarray(u, jnp.float32))
    assert got.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(got, np.float64), ref, rtol=2e-6)


def test_iterates_match_a_float64_reference_and_protocols_values(x64):
    # Reference: the naive formula iterated in float64 numpy (1 − ρ stays ≥ 4e-7 ≫ 1e-16 here).
    depth = 10_000
    rho, ref = 0.0, []
    for _ in range(depth):
        rho = _kappa_np(rho)
        ref.append(1 - rho)
    ref = np.asarray(ref)
    gaps = np.asarray(theory.iterated_relu_correlation_gap(1.0, depth))
    # The naive reference itself rounds: ~1e-16 absolute per step on gaps down to 4.4e-7, so
    # after ℓ steps its relative error is up to ~ℓ·2e-10: 1e-10 at ℓ ≤ 100, 5e-6 at 10⁴.
    np.testing.assert_allclose(gaps[:100], ref[:100], rtol=1e-10)
    np.testing.assert_allclose(gaps, ref, rtol=5e-6)
    np.testing.assert_allclose(theory.iterated_relu_correlation(0.0, 5), 1 - ref[:5], rtol=1e-12)
    # PROTOCOLS.md §3 (derived): 1 − ρ_ℓ at ℓ = 1, 2, 5, 10, 100, 1000, 10⁴ from ρ_0 = 0.
    expected = {1: 0.682, 2: 0.506, 5: 0.264, 10: 0.1285, 100: 3.58e-3, 1000: 4.31e-5, 10_000: 4.43e-7}
    for ell, value in expected.items():
        assert gaps[ell - 1] == pytest.approx(value, rel=3e-3)


def test_iterates_in_float32_at_depth_ten_thousand():
    gaps = theory.iterated_relu_correlation_gap(jnp.float32(1.0), 10_000)
    assert gaps.dtype == jnp.float32
    with jax.enable_x64(True):
        ref = np.asarray(theory.iterated_relu_correlation_gap(1.0, 10_000))
    # Relative error per step ~1e-7 and the map contracts gaps: after 10⁴ steps still ≤ 1e-4.
    np.testing.assert_allclose(np.asarray(gaps, np.float64), ref, rtol=1e-4)


def test_asymptote(x64):
    # ℓ²(1 − ρ_ℓ) → 9π²/2, with relative error ≈ 3 ln ℓ/ℓ + O(1/ℓ): 0.36% at ℓ = 10⁴, shrinking.
    assert float(theory.correlation_gap_asymptote(1.0)) == pytest.approx(9 * math.pi**2 / 2, rel=1e-15)
    gaps = np.asarray(theory.iterated_relu_correlation_gap(1.0, 100_000))
    ells = np.array([100, 1000, 10_000, 100_000])
    err = 1 - gaps[ells - 1] / np.asarray(theory.correlation_gap_asymptote(ells.astype(float)))
    assert np.all(err > 0) and np.all(np.diff(err) < 0)
    assert err[2] < 0.005 and err[3] < 0.001
    # The same limit from any start ρ_0 > −1.
    for rho0 in (-0.9, 0.5, 0.99):
        g = theory.iterated_relu_correlation_gap(1 - rho0, 100_000)[-1]
        assert float(g) * 1e10 == pytest.approx(9 * math.pi**2 / 2, rel=2e-3)


def test_jit_vmap_shapes_and_bad_depth():
    rho0 = jnp.array([[0.0, 0.5], [-0.5, 0.9]])
    out = jax.jit(theory.iterated_relu_correlation, static_argnums=1)(rho0, 7)
    assert out.shape == (7, 2, 2)
    np.testing.assert_allclose(out, theory.iterated_relu_correlation(rho0, 7), rtol=1e-6)
    np.testing.assert_allclose(jax.vmap(theory.relu_correlation)(rho0.ravel()), theory.relu_correlation(rho0).ravel(), rtol=1e-6)
    # Integer and Python inputs become the default float; values outside [−1, 1] are clipped.
    assert theory.relu_correlation(0).dtype == jnp.result_type(float)
    assert float(theory.relu_correlation(1.5)) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="depth"):
        theory.iterated_relu_correlation(0.0, 0)
    with pytest.raises(TypeError, match="depth"):
        theory.iterated_relu_correlation_gap(1.0, 2.5)


def test_module_examples():
    assert doctest.testmod(theory, optionflags=doctest.ELLIPSIS).failed == 0
