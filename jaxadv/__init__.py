"""jaxadv: a JAX functional toolkit for the science of adversarial examples.

Networks are pure parameter pytrees (:mod:`jaxadv.nets`); batched forward and
input-gradient kernels (:mod:`jaxadv.kernels`) map per-example functions over many
networks and inputs; inputs come from :mod:`jaxadv.data`; attacks (:mod:`jaxadv.attacks`)
and margin-maximisation training (:mod:`jaxadv.train`) are composed from the kernels;
:mod:`jaxadv.theory` holds the papers' closed forms; :mod:`jaxadv.experiments` reproduces
the papers as resumable sweeps.
"""

from importlib.metadata import PackageNotFoundError as _PackageNotFoundError
from importlib.metadata import version as _version

from jaxadv import attacks, data, kernels, nets, theory, train
from jaxadv.kernels import (
    Evaluation,
    evaluate,
    forward,
    init_many,
    value_and_input_grad,
)
from jaxadv.nets import Network

try:
    __version__ = _version("jaxadv")
except _PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "Evaluation",
    "Network",
    "__version__",
    "attacks",
    "data",
    "evaluate",
    "forward",
    "init_many",
    "kernels",
    "nets",
    "theory",
    "train",
    "value_and_input_grad",
]
