"""Network families as pure ``(init, apply)`` pairs acting on ONE input.

Every constructor returns a :class:`Network`; ``params = net.init(key)`` and
``f = net.apply(params, x)`` with ``x`` of shape ``net.input_shape``. Image networks
(``resnet``, ``small_cnn``, ``lenet``, or your own stack of :mod:`jaxadv.nets.layers` through
``sequential``) take one image ``(H, W, C)``.

``mlp`` and ``two_layer`` layers too wide to store are matrix-free (``weights="matrix_free"``,
or automatically above 4 GiB per layer): see :mod:`jaxadv.nets.matrix_free` and
:func:`materialize`.
"""

from jaxadv.nets import layers, matrix_free
from jaxadv.nets._network import Network, Params
from jaxadv.nets.activations import ACTIVATIONS
from jaxadv.nets.cnn import lenet, small_cnn
from jaxadv.nets.linear import linear
from jaxadv.nets.matrix_free import materialize
from jaxadv.nets.mlp import mlp
from jaxadv.nets.resnet import resnet
from jaxadv.nets.sequential import sequential, smoothness_m
from jaxadv.nets.shallow import shallow
from jaxadv.nets.two_layer import two_layer

__all__ = [
    "ACTIVATIONS",
    "Network",
    "Params",
    "layers",
    "lenet",
    "linear",
    "materialize",
    "matrix_free",
    "mlp",
    "resnet",
    "sequential",
    "shallow",
    "small_cnn",
    "smoothness_m",
    "two_layer",
]
