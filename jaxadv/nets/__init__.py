"""Network families as pure ``(init, apply)`` pairs acting on ONE input.

Every constructor returns a :class:`Network`; ``params = net.init(key)`` and
``f = net.apply(params, x)`` with ``x`` of shape ``net.input_shape``.
"""

from jaxadv.nets._network import Network, Params
from jaxadv.nets.activations import ACTIVATIONS
from jaxadv.nets.linear import linear
from jaxadv.nets.mlp import mlp
from jaxadv.nets.shallow import shallow
from jaxadv.nets.two_layer import two_layer

__all__ = ["ACTIVATIONS", "Network", "Params", "linear", "mlp", "shallow", "two_layer"]
