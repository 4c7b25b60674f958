"""Margin-maximisation training and Vardi, Yehudai & Shamir 2022's non-robustness analysis.

* Losses in log space (:mod:`~jaxadv.train.losses`): exponential and logistic, so that
  float32 training reaches 𝓛 < 1e−30 without underflow.
* Schedules (:mod:`~jaxadv.train.schedules`): the paper's growing rate and Lyu & Li's
  loss-normalised rate, as optax schedules; :func:`scale_by_loss` the optax step.
* :func:`train_margin`: full-batch GD or mini-batch SGD until a target loss, many seeds at
  once.
* Analysis (:mod:`~jaxadv.train.analysis`): margins, margin set, the shared perturbation of
  Thm 4.1 / Fig 1, KKT residuals (eqs. 3–4).
* Data and the robust network of Thm 3.1 (:mod:`~jaxadv.train.robust`).
* :func:`train_classifier`: binary image classifiers, Adam on the logistic loss, with De Palma
  et al. 2021's first-epoch re-initialisation rule, many networks at once; :func:`accuracy`.
"""

from jaxadv.train.analysis import (
    KKTResult,
    MarginSet,
    SharedPerturbation,
    kkt_residuals,
    margin_set,
    margins,
    nnls,
    normalised_margin,
    shared_perturbation,
)
from jaxadv.train.classifier import ClassifierResult, accuracy, logistic_loss, train_classifier
from jaxadv.train.losses import log_loss, log_losses, loss
from jaxadv.train.margin import STOP_REASONS, TrainHistory, TrainResult, train_margin
from jaxadv.train.robust import (
    inner_product_bound,
    orthogonal_dataset,
    robust_network,
    sphere_dataset,
)
from jaxadv.train.schedules import (
    GrowingLR,
    LossNormalisedLR,
    constant_lr,
    growing_lr,
    loss_normalised_lr,
    scale_by_loss,
)

__all__ = [
    "STOP_REASONS",
    "ClassifierResult",
    "GrowingLR",
    "KKTResult",
    "LossNormalisedLR",
    "MarginSet",
    "SharedPerturbation",
    "TrainHistory",
    "TrainResult",
    "accuracy",
    "constant_lr",
    "growing_lr",
    "inner_product_bound",
    "kkt_residuals",
    "log_loss",
    "log_losses",
    "logistic_loss",
    "loss",
    "loss_normalised_lr",
    "margin_set",
    "margins",
    "nnls",
    "normalised_margin",
    "orthogonal_dataset",
    "robust_network",
    "scale_by_loss",
    "shared_perturbation",
    "sphere_dataset",
    "train_classifier",
    "train_margin",
]
