"""Attacks: every way the papers measure the distance from x to the decision boundary of f.

Each attack is written for one network and one input and batched over networks and inputs
by :func:`jaxadv.kernels.map_pairs`, with the kernels' conventions (one or many networks,
shared or per-network inputs, automatic chunking). Results are NamedTuple pytrees with
per-sample fields ``x_adv, distance, success, f_clean, f_adv, n_forward, n_grad``; see
:mod:`jaxadv.attacks._common` for the success rule and failure values.
"""

from jaxadv.attacks._common import NORMS

# one_step, line_search, gradient_flow  (attacks-core)
# min_norm, fgsm, pgd, robust_accuracy  (attacks-minnorm)

__all__ = ["NORMS"]
