"""Shared fixtures and tolerances.

Tolerances depend on dtype (neural-tangents' convention): float32 results of the same
mathematics computed in a different order agree to a few ulps of the magnitudes involved;
float64 to ~1e-12.
"""

import os

# The default run is dominated by XLA compilations of small programs, not by running them:
# LLVM's optimisation of the generated CPU code halves the suite's time on a 2-core machine
# when switched off. It changes how fast the code runs, not the operations it computes
# (XLA's own graph passes still run, and fast-math stays off), and every child process (the
# CLI, the 4-device check, notebook kernels) inherits it. Put another
# --xla_backend_optimization_level in XLA_FLAGS yourself to test the optimised code.
if "--xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip()

import jax  # noqa: E402  (after XLA_FLAGS: the CPU backend reads them when it starts)
import pytest  # noqa: E402

from jaxadv import nets  # noqa: E402

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


# The per-family sweeps of the default run: a two-layer ReLU net (Bubeck et al.), a deep ReLU
# net and a deep net with biases and a smooth activation (Bartlett et al.), a shallow net
# with every parameter trainable (Vardi et al.) and the linear closed form. The other
# families (another readout or activation on the same layers) run with -m slow: each one
# costs a compilation per kernel, and they add no code path of their own.
DEFAULT_FAMILIES = ("two_layer", "mlp", "mlp_bias_softplus", "shallow_gauss_gelu", "linear")


def family_names(default=DEFAULT_FAMILIES):
    """``families()`` names as pytest parameters, those not in ``default`` marked slow."""
    return [n if n in default else pytest.param(n, marks=pytest.mark.slow) for n in sorted(families())]
