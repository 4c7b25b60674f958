import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxadv import data


def test_sphere_radius_and_isotropy():
    x = data.sphere(jax.random.key(0), 4000, 10)
    np.testing.assert_allclose(jnp.linalg.norm(x, axis=1), math.sqrt(10), rtol=1e-6)
    # Uniform on the sphere: E x xᵀ = (r²/d) I = I; 4000 samples give entries within ~4·√(2/4000).
    np.testing.assert_allclose(x.T @ x / 4000, np.eye(10), atol=4 * math.sqrt(2 / 4000))
    y = data.sphere(jax.random.key(0), 5, 7, radius=2.5)
    np.testing.assert_allclose(jnp.linalg.norm(y, axis=1), 2.5, rtol=1e-6)


def test_gaussian_scale_and_dtype(x64):
    x = data.gaussian(jax.random.key(1), 2000, 50, std=0.1)
    assert x.dtype == jnp.float64
    np.testing.assert_allclose(float(jnp.std(x)), 0.1, rtol=4 / math.sqrt(2 * x.size))


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: data.sphere(0, 5, 3), "`key` must be a JAX PRNG key"),
        (lambda: data.sphere(jax.random.key(0), 0, 3), "`n` must be a positive integer"),
        (lambda: data.sphere(jax.random.key(0), 5, -1), "`d` must be a positive integer"),
        (lambda: data.sphere(jax.random.key(0), 5, 3, radius=0.0), "`radius` must be a finite number > 0"),
        (lambda: data.gaussian(jax.random.key(0), 5, 3, std=float("nan")), "`std` must be a finite number > 0"),
        (lambda: data.sphere(jax.random.key(0), 5, 3, dtype="int32"), "`dtype` must be a floating dtype"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()
