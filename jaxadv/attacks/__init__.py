"""Attacks: every way the papers measure the distance from x to the decision boundary of f.

Each attack is written for one network and one input and batched over networks and inputs
by :func:`jaxadv.kernels.map_pairs`, with the kernels' conventions (one or many networks,
shared or per-network inputs, automatic chunking). Results are NamedTuple pytrees with
per-sample fields ``x_adv, distance, success, f_clean, f_adv, n_forward, n_grad``; see
:mod:`jaxadv.attacks._common` for the success rule and failure values.
"""

from jaxadv.attacks._common import NORMS
from jaxadv.attacks.directions import random_directions, universal_direction
from jaxadv.attacks.gradient_flow import GradientFlowResult, gradient_flow
from jaxadv.attacks.line_search import (
    LineSearchResult,
    SharedLineSearchResult,
    line_search,
    shared_line_search,
)
from jaxadv.attacks.min_norm import MinNormResult, min_norm
from jaxadv.attacks.one_step import OneStepResult, one_step
from jaxadv.attacks.pgd import AttackResult, RobustAccuracy, fgsm, pgd, robust_accuracy

__all__ = [
    "NORMS",
    "AttackResult",
    "GradientFlowResult",
    "LineSearchResult",
    "MinNormResult",
    "OneStepResult",
    "RobustAccuracy",
    "SharedLineSearchResult",
    "fgsm",
    "gradient_flow",
    "line_search",
    "min_norm",
    "one_step",
    "pgd",
    "random_directions",
    "robust_accuracy",
    "shared_line_search",
    "universal_direction",
]
