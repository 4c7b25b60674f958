"""Training binary image classifiers with Adam on the logistic loss, many networks at once, with
the re-initialisation rule of De Palma, Kiani & Lloyd 2021's released code (PROTOCOLS §1.6).

The authors train ``resnet_v1(depth=20)`` with Keras: Adam (learning rate 1e−4), batch 32,
sparse categorical cross-entropy on two softmax outputs. Their schedule:

1. train one epoch; measure the accuracy on the first 1000 training images;
2. while it is below 0.53: re-initialise and train one epoch again;
3. train the remaining epochs (MNIST: 14 more, 15 in all; CIFAR-10: 24 more, 25 in all).

That schedule, the optimiser and its settings are reproduced. Two deviations from their
training:

* One scalar output instead of two logits. A network here has ONE output f(x), label 1 ↔
  f(x) > 0, and the logistic loss log(1 + e^{−(2y−1) f}) equals their cross-entropy with
  f = logit₁ − logit₀ at every point. The optimisation path is not the same, because Adam
  normalises each coordinate separately [derived, not tested]: the two readout columns get
  opposite gradients (∂ℓ/∂logit₀ = −∂ℓ/∂logit₁), hence opposite Adam steps, so their
  difference moves twice as far per step as a single readout would under Adam; and it
  starts with twice one column's variance. (The layers below the readout see the same
  gradients as with the scalar output.) Same loss and model class; as if the readout's
  initial variance and learning rate were doubled.
* No weight decay by default. Their ``resnet_layer`` puts a Keras ``l2(1e-4)`` kernel
  regulariser on every convolution, i.e. adds 1e−4·Σ‖W‖² over the conv kernels to the
  loss. ``weight_decay=1e-4`` adds that penalty here, over every weight tensor named
  ``"W"`` (conv and dense kernels of :func:`jaxadv.nets.sequential` networks, the hidden
  layers of :func:`jaxadv.nets.mlp`; biases excluded as in Keras), which for
  :func:`jaxadv.nets.resnet` also includes the dense readout that their code leaves
  unregularised.

:func:`train_classifier` runs this for ``n_nets`` networks under one ``vmap``: each epoch is
one jitted ``lax.scan`` over the mini-batches. Only the networks that fail the check are
re-initialised (with fresh keys); a network still failing after ``max_restarts``
re-initialisations is reported (``passed=False`` and a warning, or an error with
``throw=True``), never silently kept.

Randomness, split by purpose. Network j's key is ``k = jax.random.split(key, n_nets)[j]``
(``key`` itself for one unbatched network). Its attempt r (r = number of re-initialisations
so far) uses ``k_init, k_shuffle = jax.random.split(jax.random.fold_in(k, r))``: the params
are ``net.init(k_init)`` and epoch e visits the images in the order
``jax.random.permutation(jax.random.fold_in(k_shuffle, e), N)``. A network's training is
thus a function of its own key only, and network j of a batch equals the one-network run
with key ``k``.

Memory: the images are held on the device once, shared by every network; a step gathers
each network's batch ``images[perm[t·B:(t+1)·B]]`` (``(n_nets, B, *input_shape)``), so the
per-network cost is one ``(N,)`` permutation, never a copy of the data set.
"""

from __future__ import annotations

import dataclasses
import fractions
import functools
import math
import numbers
import warnings
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxadv import _validate, kernels
from jaxadv.nets._network import Network, Params


class ClassifierResult(NamedTuple):
    """What :func:`train_classifier` returns (a pytree; leading ``(n_nets,)`` axis for many networks).

    Attributes:
      params: the trained params, ``net.init``'s pytree (leaves ``(n_nets, …)``).
      loss: ``(n_nets, epochs)`` mean logistic loss of each epoch: the batch losses averaged
        over the epoch's samples (what Keras' ``fit`` reports), for the kept attempt.
      accuracy: ``(n_nets,)`` training accuracy on all N images after the last epoch.
      check_accuracy: ``(n_nets,)`` accuracy on the first ``min(restart_check, N)`` images
        after the first epoch of the kept attempt.
      restarts: ``(n_nets,)`` int32 re-initialisations (= the kept attempt's index r).
      passed: ``(n_nets,)`` bool, ``check_accuracy ≥ restart_threshold``; False only when
        ``max_restarts`` re-initialisations did not reach the threshold.
    """

    params: Params
    loss: jax.Array
    accuracy: jax.Array
    check_accuracy: jax.Array
    restarts: jax.Array
    passed: jax.Array


# ---------------------------------------------------------------------------------------
# loss and accuracy


def logistic_loss(f: jax.Array, labels: jax.Array, *, weights: jax.Array | None = None) -> jax.Array:
    """Mean logistic loss of scalar outputs ``f`` for labels in {0, 1} (label 1 ↔ f > 0).

    ℓ_i = log(1 + exp(−s_i f_i)) with s_i = 2 y_i − 1: the binary cross-entropy of the
    two-logit softmax in De Palma et al.'s code, with f the difference of the logits. Computed
    as ``softplus(−s f)`` (= max(0, −sf) + log1p(e^{−|sf|}), finite for every finite f, with
    gradient −s σ(−s f)). :func:`jaxadv.train.log_losses` gives log ℓ instead, for training to
    𝓛 < 1e−30; a classifier's loss stays far above float32's range limits, where that detour
    through exp(log ℓ) would only cost precision.

    Args:
      f: network outputs, shape ``(..., m)`` with m ≥ 1.
      labels: labels in {0, 1} (bool, integer or float dtype), the shape of ``f`` exactly
        (no broadcasting).
      weights: optional non-negative weights, the shape of ``f`` exactly; the mean is
        Σ w_i ℓ_i / Σ w_i (0/1 weights mask out the padding of a partial batch), so each
        row needs a positive sum.

    Returns:
      ``f.shape[:-1]``, in the dtype of ``f``.

    Raises:
      TypeError, ValueError: for a wrong dtype or shape, labels outside {0, 1}, or negative,
        non-finite or all-zero weights, naming the argument. Inside ``jit`` the shapes and
        dtypes are still checked; the values only when they are concrete (not tracers).

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxadv.train import logistic_loss
      >>> round(float(logistic_loss(jnp.array([0.0, 100.0, -100.0]), jnp.array([1, 1, 1]))), 4)  # (ln 2 + 0 + 100)/3
      33.5644
    """
    f, labels, weights = _check_loss_args(f, labels, weights)
    s = 2 * jnp.asarray(labels, f.dtype) - 1
    per = jax.nn.softplus(-s * f)
    if weights is None:
        return jnp.mean(per, axis=-1)
    w = jnp.asarray(weights, f.dtype)
    return jnp.sum(w * per, axis=-1) / jnp.sum(w, axis=-1)


def _real_array(x: Any, name: str, what: str) -> Any:
    """``x`` as an array of a real (or bool) dtype; a tracer is kept, anything else goes to NumPy."""
    if not _validate.is_tracer(x):
        try:
            x = np.asarray(x)
        except Exception as e:  # noqa: BLE001 - any conversion failure is the caller's input
            raise TypeError(f"`{name}` must be an array of {what}, got {type(x).__name__}.") from e
    dtype = np.dtype(x.dtype)
    if not (dtype == np.bool_ or np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)):
        raise TypeError(f"`{name}` must hold {what} (bool, integer or float), got dtype {dtype}.")
    return x


def _check_binary(labels: np.ndarray) -> None:
    bad = (labels != 0) & (labels != 1)
    if np.any(bad):
        raise ValueError(f"`labels` must hold labels in {{0, 1}}, got values such as {np.unique(labels[bad])[:5].tolist()}.")


def _check_loss_args(f: Any, labels: Any, weights: Any) -> tuple[jax.Array, Any, Any]:
    f = _validate.float_array(f, "f", finite=False)
    if f.ndim == 0 or f.shape[-1] == 0:
        raise ValueError(f"`f` must have shape (..., m) with m ≥ 1 outputs to average over, got {tuple(f.shape)}.")
    labels = _real_array(labels, "labels", "0/1 labels")
    if tuple(labels.shape) != tuple(f.shape):
        raise ValueError(f"`labels` must have the shape of `f`, {tuple(f.shape)}, got {tuple(labels.shape)}.")
    if not _validate.is_tracer(labels):
        _check_binary(labels)
    if weights is None:
        return f, labels, None
    weights = _real_array(weights, "weights", "non-negative weights")
    if tuple(weights.shape) != tuple(f.shape):
        raise ValueError(f"`weights` must have the shape of `f`, {tuple(f.shape)}, got {tuple(weights.shape)}.")
    if not _validate.is_tracer(weights):
        w = weights.astype(np.float64)
        if not np.all(np.isfinite(w)) or np.any(w < 0):
            bad = w[~(w >= 0) | ~np.isfinite(w)]
            raise ValueError(f"`weights` must be finite and ≥ 0, got values such as {bad[:5].tolist()}.")
        if np.any(np.sum(w, axis=-1) == 0):
            raise ValueError(
                "`weights` must have a positive sum along the last axis (the mean divides by it), got a row of zeros."
            )
    return f, labels, weights


@dataclasses.dataclass(frozen=True)
class _Correct:
    # Hashable by value (see kernels.map_pairs): equal networks reuse the compiled kernel.
    apply: Any

    def __call__(self, params: Params, x: jax.Array, label: jax.Array) -> jax.Array:
        return (self.apply(params, x) > 0) == (label > 0.5)


def _accuracy(net: Network, params: Params, images: jax.Array, labels: jax.Array, chunk_size, max_bytes) -> jax.Array:
    correct = kernels.map_pairs(
        _Correct(net.apply), net, params, images, per_x=(labels,), chunk_size=chunk_size, max_bytes=max_bytes
    )
    return jnp.mean(correct, axis=-1, dtype=jnp.float32)


def accuracy(
    net: Network,
    params: Params,
    images: jax.Array,
    labels: jax.Array,
    *,
    chunk_size: int | None = None,
    max_bytes: int | None = None,
) -> jax.Array:
    """Fraction of images classified correctly (prediction 1 ↔ f(x) > 0), per network.

    Evaluated through :func:`jaxadv.kernels.map_pairs`, in blocks that fit memory (60 000
    images × hundreds of networks included): only one boolean per (network, image) is kept.

    Args:
      net: the network family.
      params: one network's params or many stacked on a leading axis.
      images: ``(N, *input_shape)`` shared by every network, or ``(n_net, N, *input_shape)``.
      labels: labels in {0, 1}, shape ``images.shape[:-len(input_shape)]``.
      chunk_size, max_bytes: as in :func:`jaxadv.kernels.forward`.

    Returns:
      ``()`` float32 for one network, ``(n_net,)`` for many.
    """
    net = _check_net(net)
    images = _check_images(images, net, lead_ranks=(1, 2))
    labels = _check_labels(labels, images.shape[: images.ndim - len(net.input_shape)])
    chunk_size = _validate.optional_positive_int(chunk_size, "chunk_size")
    max_bytes = _validate.optional_positive_int(max_bytes, "max_bytes")
    return _accuracy(net, params, images, labels, chunk_size, max_bytes)


# ---------------------------------------------------------------------------------------
# one network's training (vmapped over networks by the callers)


@dataclasses.dataclass(frozen=True)
class _Config:
    net: Network
    n: int  # training images N
    batch_size: int
    optimizer: Any  # None: optax.adam(learning_rate), built in the trace so the rate stays traced
    n_nets: int | None  # None: one unbatched network


class _State(NamedTuple):
    params: Params
    opt_state: Any


def _tx(optimizer: Any, learning_rate: jax.Array) -> optax.GradientTransformation:
    return optax.adam(learning_rate) if optimizer is None else optimizer


def _attempt_keys(key: jax.Array, attempt: jax.Array) -> tuple[jax.Array, jax.Array]:
    k_init, k_shuffle = jax.random.split(jax.random.fold_in(key, attempt))
    return k_init, k_shuffle


def _is_kernel(path: tuple[Any, ...]) -> bool:
    return bool(path) and isinstance(path[-1], jax.tree_util.DictKey) and path[-1].key == "W"


def _l2_penalty(params: Params) -> jax.Array:
    """Σ‖W‖² over the leaves named ``"W"`` (conv and dense kernels; biases and other names excluded)."""
    leaves = [leaf for path, leaf in jax.tree_util.tree_leaves_with_path(params) if _is_kernel(path)]
    return sum((jnp.sum(jnp.square(w)) for w in leaves), jnp.zeros((), leaves[0].dtype if leaves else None))


def _n_batches(cfg: _Config) -> int:
    return -(-cfg.n // cfg.batch_size)


def _epoch_one(cfg: _Config, learning_rate, weight_decay, images, labels, state: _State, key, attempt, epoch):
    """One epoch of one network: ⌈N/B⌉ Adam steps, the last on the N mod B remaining images
    (as Keras' ``fit``), which are padded to B with zero weight so every step has one shape.
    Each step minimises the batch's mean logistic loss + weight_decay·Σ‖W‖² (Keras adds its
    regularisation losses to the batch loss the same way); the epoch's reported loss is the
    logistic part."""
    _, k_shuffle = _attempt_keys(key, attempt)
    n, b, n_b = cfg.n, cfg.batch_size, _n_batches(cfg)
    perm = jax.random.permutation(jax.random.fold_in(k_shuffle, epoch), n).astype(jnp.int32)
    perm = jnp.concatenate([perm, jnp.zeros((n_b * b - n,), jnp.int32)])
    tx = _tx(cfg.optimizer, learning_rate)
    dtype = jnp.result_type(*jax.tree.leaves(state.params))

    def batch_loss(params, xb, yb, wb):
        f = jax.vmap(cfg.net.apply, in_axes=(None, 0))(params, xb)
        data = logistic_loss(f, yb, weights=wb)
        return data + weight_decay * _l2_penalty(params), data

    def step(s: _State, t):
        start = t * b
        idx = jax.lax.dynamic_slice(perm, (start,), (b,))
        w = (start + jnp.arange(b) < n).astype(dtype)
        xb = images[idx].astype(dtype)
        yb = labels[idx].astype(dtype)
        (_, value), grads = jax.value_and_grad(batch_loss, has_aux=True)(s.params, xb, yb, w)
        updates, opt_state = tx.update(grads, s.opt_state, s.params)
        return _State(optax.apply_updates(s.params, updates), opt_state), value * jnp.sum(w)

    state, weighted = jax.lax.scan(step, state, jnp.arange(n_b))
    return state, jnp.sum(weighted) / n


def _init_one(net: Network, optimizer, learning_rate, key, attempt) -> _State:
    k_init, _ = _attempt_keys(key, attempt)
    params = net.init(k_init)
    return _State(params, _tx(optimizer, learning_rate).init(params))


def _init_batched(net: Network, optimizer, n_nets, learning_rate, keys, attempts) -> _State:
    fn = functools.partial(_init_one, net, optimizer, learning_rate)
    return fn(keys, attempts) if n_nets is None else jax.vmap(fn)(keys, attempts)


def _epoch_batched(cfg: _Config, learning_rate, weight_decay, images, labels, state, keys, attempts, epoch):
    fn = functools.partial(_epoch_one, cfg, learning_rate, weight_decay, images, labels)
    if cfg.n_nets is None:
        return fn(state, keys, attempts, epoch)
    return jax.vmap(fn, in_axes=(0, 0, 0, None))(state, keys, attempts, epoch)


# Initialisation is a program of its own, so the (larger) epoch program is compiled once and
# serves the first epoch, the restarts and the remaining epochs. The epoch number, the
# learning rate and the weight decay are traced: one compile serves every epoch, every block
# of networks of the same size, every rate and every weight decay.
_init_jit = jax.jit(_init_batched, static_argnames=("net", "optimizer", "n_nets"))
_epoch_jit = jax.jit(_epoch_batched, static_argnames=("cfg",))


@jax.jit
def _select(mask: jax.Array, new: Any, old: Any) -> Any:
    def pick(a, b):
        m = mask.reshape(mask.shape + (1,) * (a.ndim - mask.ndim))
        return jnp.where(m, a, b)

    return jax.tree.map(pick, new, old)


def _failing(acc: jax.Array, threshold: float, n_check: int) -> np.ndarray:
    # Compared exactly, as counts of correct images against the threshold as the decimal the
    # user wrote: 530 of 1000 passes 0.53, although float32(0.53) < 0.53 and 0.53·n may round up.
    correct = np.rint(np.asarray(acc, np.float64) * n_check).astype(np.int64)
    bound = fractions.Fraction(repr(threshold)) * n_check
    return np.vectorize(lambda k: k < bound, otypes=[bool])(correct)


# ---------------------------------------------------------------------------------------
# argument checks


def _check_net(net: Any) -> Network:
    if not isinstance(net, Network):
        raise TypeError(f"`net` must be a jaxadv.nets.Network (e.g. jaxadv.nets.mlp(...)), got {type(net).__name__}.")
    return net


def _check_images(images: Any, net: Network, *, lead_ranks: tuple[int, ...] = (1,)) -> jax.Array:
    images = _validate.float_array(images, "images", finite=False)
    shape = tuple(net.input_shape)
    lead = images.ndim - len(shape)
    if lead not in lead_ranks or tuple(images.shape[lead:]) != shape:
        dims = ", ".join(map(str, shape))
        expected = " or ".join(f"({', '.join(['n_net', 'N'][2 - r:])}, {dims})" for r in lead_ranks)
        raise ValueError(
            f"`images` must have shape {expected} (input_shape {shape} of {net.name}), got {tuple(images.shape)}."
        )
    # On the device (where the images go anyway): no host copy of a large data set.
    if not _validate.is_tracer(images) and not bool(jnp.all(jnp.isfinite(images))):
        n_bad = int(jnp.sum(~jnp.isfinite(images)))
        raise ValueError(f"`images` must be finite, but {n_bad} of its {images.size} entries are NaN or inf.")
    return images


def _check_labels(labels: Any, shape: tuple[int, ...]) -> jax.Array:
    if _validate.is_tracer(labels):
        raise TypeError("`labels` must be concrete (training and accuracy run their own jit), got a tracer.")
    arr = _real_array(labels, "labels", "0/1 labels")
    if tuple(arr.shape) != tuple(shape):
        raise ValueError(
            f"`labels` must have shape {tuple(shape)} (one label per image of `images`), got {tuple(arr.shape)}."
        )
    _check_binary(arr)
    return jnp.asarray(arr, jnp.int32)


def _check_threshold(value: Any) -> float:
    # Values above 1 are allowed on purpose: no accuracy reaches them, so every network is
    # re-initialised max_restarts times and reported (a way to exercise the restart path).
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`restart_threshold` must be a real number (an accuracy, e.g. 0.53), got {value!r}.")
    v = float(value)
    if not (math.isfinite(v) and v >= 0):
        raise ValueError(f"`restart_threshold` must be finite and ≥ 0 (an accuracy, e.g. 0.53), got {value!r}.")
    return v


def _check_non_negative_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"`{name}` must be an integer ≥ 0, got {value!r}.")
    return int(value)


# ---------------------------------------------------------------------------------------
# the public entry point


def train_classifier(
    net: Network,
    key: jax.Array,
    images: jax.Array,
    labels: jax.Array,
    *,
    epochs: int,
    n_nets: int | None = None,
    batch_size: int = 32,
    learning_rate: float | None = None,
    optimizer: optax.GradientTransformation | None = None,
    restart_threshold: float = 0.53,
    restart_check: int = 1000,
    max_restarts: int = 10,
    throw: bool = False,
    progress: bool = False,
    weight_decay: float = 0.0,
) -> ClassifierResult:
    """Trains ``n_nets`` binary classifiers with Adam on the logistic loss with De Palma et al.
    2021's schedule (PROTOCOLS §1.6), re-initialising those that fail the first-epoch check.

    Two deviations from the authors' training (see the module docstring): one scalar output
    instead of two softmax logits (the same loss at every point, but not the same Adam
    trajectory, since Adam normalises per coordinate), and no ``l2(1e-4)`` kernel
    regulariser unless ``weight_decay=1e-4`` is given.

    Each network: draw params, train one epoch, measure the accuracy on the first
    ``restart_check`` images; while it is below ``restart_threshold``, re-initialise (fresh
    keys) and train the first epoch again, at most ``max_restarts`` times; then train
    ``epochs − 1`` more epochs. Every epoch reshuffles and takes ⌈N/batch_size⌉ steps, the last
    one on the N mod batch_size remaining images (as Keras' ``fit``; each sample is seen once
    per epoch). See the module docstring for how keys are derived.

    A restart round re-runs the first epoch for the whole block and keeps the new result only
    for the failing networks, so the compiled program is reused (restarts are rare: a network
    that learns passes 0.53 after one epoch).

    Args:
      net: the network family (any ``input_shape``, e.g. ``(H, W, C)`` images).
      key: PRNG key. With ``n_nets`` networks, network j uses ``jax.random.split(key, n_nets)[j]``
        and equals the one-network run (``n_nets=None``) with that key.
      images: ``(N, *input_shape)`` training images, shared by every network and held on the
        device once (a float array is neither cast nor copied; each batch is cast to the
        params' dtype; integers are promoted to floats first).
      labels: ``(N,)`` labels in {0, 1}; label 1 ↔ f(x) > 0.
      epochs: total epochs, the first included (the authors: 15 MNIST, 25 CIFAR-10).
      n_nets: number of networks trained at once under ``vmap``; ``None``: one network, params
        without a leading axis.
      batch_size: images per step, ≤ N (the authors: 32).
      learning_rate: Adam's rate (default 1e−4, the authors'); traced, so changing it does not
        recompile. Not allowed together with ``optimizer``.
      optimizer: any optax transformation instead of ``optax.adam(learning_rate)`` (optax's
        b1 = 0.9, b2 = 0.999, eps = 1e−8; Keras' Adam has eps = 1e−7 added to the
        uncorrected √v, a difference only when gradients are tiny). Static: pass the same
        object again to reuse the compiled program.
      restart_threshold: re-initialise while the check accuracy is below this (0.53), a
        finite number ≥ 0. 0 never re-initialises; a value above 1 is never reached, so
        every network is re-initialised ``max_restarts`` times and reported with
        ``passed=False`` (a deliberate way to exercise the restart path).
      restart_check: the check uses the first ``min(restart_check, N)`` training images (1000).
      max_restarts: most re-initialisations per network (the authors' loop is unbounded; 10
        bounds the cost of a network that never learns).
      throw: with ``True``, a network still below the threshold after ``max_restarts`` raises
        ``RuntimeError`` (before the remaining epochs); with ``False`` it is trained on and
        reported (``passed=False``) with a ``RuntimeWarning``.
      progress: show a tqdm bar over the epochs (``True`` or ``False``).
      weight_decay: λ ≥ 0 of an L2 penalty λ·Σ‖W‖² added to each batch's mean loss, the sum
        over every parameter leaf named ``"W"`` (the kernels of :mod:`jaxadv.nets.layers`
        and of :func:`jaxadv.nets.mlp`'s hidden layers; biases and readout vectors named
        otherwise are excluded). 1e−4 is the authors' Keras ``l2(1e-4)`` on the conv kernels
        (for :func:`jaxadv.nets.resnet` it also covers the dense readout, which their code
        leaves unregularised). The penalty goes through Adam like the loss (as Keras does;
        not AdamW's decoupled decay). Traced: changing it does not recompile. The reported
        ``loss`` is the logistic loss alone. 0 (default): no penalty.

    Returns:
      A :class:`ClassifierResult`.

    Raises:
      RuntimeError: with ``throw=True``, when some network never passed the check.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from jaxadv import nets, train
      >>> x = jax.random.normal(jax.random.key(0), (256, 5))
      >>> y = (x[:, 0] > 0).astype(jnp.int32)
      >>> res = train.train_classifier(nets.linear(5), jax.random.key(1), x, y, epochs=5, n_nets=3,
      ...                              learning_rate=0.1)
      >>> res.loss.shape, bool(jnp.all(res.accuracy > 0.95)), res.restarts.tolist()
      ((3, 5), True, [0, 0, 0])
    """
    net = _check_net(net)
    key = _validate.key(key)
    epochs = _validate.positive_int(epochs, "epochs")
    n_nets = _validate.optional_positive_int(n_nets, "n_nets")
    batch_size = _validate.positive_int(batch_size, "batch_size")
    if optimizer is not None:
        if learning_rate is not None:
            raise ValueError("`learning_rate` and `optimizer` are exclusive: set the rate inside the optax optimizer.")
        if not isinstance(optimizer, optax.GradientTransformation):
            raise TypeError(f"`optimizer` must be an optax.GradientTransformation, got {type(optimizer).__name__}.")
    lr = 1e-4 if learning_rate is None else _validate.positive_float(learning_rate, "learning_rate")
    threshold = _check_threshold(restart_threshold)
    restart_check = _validate.positive_int(restart_check, "restart_check")
    max_restarts = _check_non_negative_int(max_restarts, "max_restarts")
    if not isinstance(throw, bool):
        raise TypeError(f"`throw` must be True or False, got {throw!r}.")
    if not isinstance(progress, bool):
        raise TypeError(f"`progress` must be True or False, got {progress!r}.")
    weight_decay = _validate.positive_float(weight_decay, "weight_decay", allow_zero=True)
    images = _check_images(images, net)
    n = int(images.shape[0])
    labels = _check_labels(labels, (n,))
    if batch_size > n:
        raise ValueError(f"`batch_size` must be at most the number of images N = {n}, got {batch_size}.")

    param_shapes = jax.eval_shape(net.init, key)
    paths = [path for path, _ in jax.tree_util.tree_leaves_with_path(param_shapes)]
    if weight_decay > 0 and not any(map(_is_kernel, paths)):
        names = ", ".join(jax.tree_util.keystr(path) for path in paths[:6])
        raise ValueError(
            f'`weight_decay` > 0 penalises the parameters named "W", but {net.name} has none (it has {names}).'
        )

    cfg = _Config(net, n, batch_size, optimizer, n_nets)
    dtype = jnp.result_type(*jax.tree.leaves(param_shapes))
    learning_rate = jnp.asarray(lr, dtype)
    decay = jnp.asarray(weight_decay, dtype)
    keys = key if n_nets is None else jax.random.split(key, n_nets)
    shape = () if n_nets is None else (n_nets,)
    attempts = jnp.zeros(shape, jnp.int32)
    n_check = min(restart_check, n)
    check_x, check_y = images[:n_check], labels[:n_check]

    def check(params):
        return _accuracy(net, params, check_x, check_y, None, None)

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=epochs, unit="epoch")
    try:
        state = _init_jit(net, optimizer, n_nets, learning_rate, keys, attempts)
        state, loss0 = _epoch_jit(cfg, learning_rate, decay, images, labels, state, keys, attempts, 0)
        acc0 = check(state.params)
        failing = _failing(acc0, threshold, n_check)
        for _ in range(max_restarts):
            if not failing.any():
                break
            mask = jnp.asarray(failing)
            attempts = attempts + mask.astype(jnp.int32)
            new_state = _init_jit(net, optimizer, n_nets, learning_rate, keys, attempts)
            new_state, new_loss0 = _epoch_jit(cfg, learning_rate, decay, images, labels, new_state, keys, attempts, 0)
            new_acc0 = check(new_state.params)
            state, loss0, acc0 = _select(mask, (new_state, new_loss0, new_acc0), (state, loss0, acc0))
            failing = _failing(acc0, threshold, n_check)
            if bar is not None:
                bar.set_postfix(restarts=int(jnp.sum(attempts)), failing=int(failing.sum()))
        if failing.any():
            which = np.flatnonzero(np.atleast_1d(failing)).tolist()
            msg = (
                f"{len(which)} network(s) (indices {which[:10]}{'…' if len(which) > 10 else ''}) stayed below "
                f"restart_threshold = {threshold} on the first {n_check} images after {max_restarts} "
                f"re-initialisations (check accuracy {np.atleast_1d(np.asarray(acc0))[which][:10].tolist()})."
            )
            if throw:
                raise RuntimeError(msg)
            warnings.warn(msg + " They are trained on and reported with passed=False.", RuntimeWarning, stacklevel=2)
        epoch_losses = [loss0]
        if bar is not None:
            bar.update(1)
        for epoch in range(1, epochs):
            state, loss_e = _epoch_jit(cfg, learning_rate, decay, images, labels, state, keys, attempts, epoch)
            epoch_losses.append(loss_e)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{float(jnp.max(loss_e)):.4g}")
    finally:
        if bar is not None:
            bar.close()
    return ClassifierResult(
        params=state.params,
        loss=jnp.stack(epoch_losses, axis=-1),
        accuracy=_accuracy(net, state.params, images, labels, None, None),
        check_accuracy=acc0,
        restarts=attempts,
        passed=jnp.asarray(~failing),
    )
