"""Inputs for experiments: random points now; image datasets live beside them."""

from jaxadv.data.synthetic import gaussian, sphere

__all__ = ["gaussian", "sphere"]
