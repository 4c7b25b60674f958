"""Shared fixtures and tolerances.

Tolerances depend on dtype (neural-tangents' convention): float32 results of the same
mathematics computed in a different order agree to a few ulps of the magnitudes involved;
float64 to ~1e-12.
"""

import jax
import pytest

from jaxadv import nets

RTOL = {"float32": 2e-5, "float64": 1e-11}
ATOL = {"float32": 2e-6, "float64": 1e-12}


@pytest.fixture
def x64():
    """Runs a test body with x64 on, restoring the user's setting afterwards."""
    with jax.enable_x64(True):
        yield


def families(d=12):
    """One small instance of every network family (bias-free and with biases)."""
    return {
        "two_layer": nets.two_layer(d, 16),
        "two_layer_gauss_tanh": nets.two_layer(d, 16, "tanh", readout="gaussian"),
        "mlp": nets.mlp(d, [16, 8, 4]),
        "mlp_bias_softplus": nets.mlp(d, [16, 8], "softplus", bias=True, bias_std=0.5),
        "shallow": nets.shallow(d, 10),
        "shallow_gauss_gelu": nets.shallow(d, 10, "gelu", init="gaussian"),
        "linear": nets.linear(d),
    }
