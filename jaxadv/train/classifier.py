"""Training binary image classifiers with Adam on the logistic loss, many networks at once, with
the re-initialisation rule of De Palma, Kiani & Lloyd 2021's released code (PROTOCOLS §1.6).

The authors train ``resnet_v1(depth=20)`` with Keras: Adam (learning rate 1e−4), batch 32,
sparse categorical cross-entropy on two softmax outputs. Here a network has ONE scalar
output f(x) and the label 1 ↔ f(x) > 0; the logistic loss log(1 + e^{−(2y−1) f}) is that
cross-entropy with f the difference of the two logits. Their schedule:

1. train one epoch; measure the accuracy on the first 1000 training images;
2. while it is below 0.53: re-initialise and train one epoch again;
3. train the remaining epochs (MNIST: 14 more, 15 in all; CIFAR-10: 24 more, 25 in all).

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
      f: network outputs, shape ``(..., m)``.
      labels: ``(..., m)`` labels in {0, 1} (any real dtype).
      weights: optional ``(..., m)`` non-negative weights; the mean is Σ w_i ℓ_i / Σ w_i
        (0/1 weights mask out the padding of a partial batch).

    Returns:
      ``f.shape[:-1]``, in the dtype of ``f``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from jaxadv.train import logistic_loss
      >>> round(float(logistic_loss(jnp.array([0.0, 100.0, -100.0]), jnp.array([1, 1, 1]))), 4)  # (ln 2 + 0 + 100)/3
      33.5644
    """
    f = jnp.asarray(f)
    s = 2 * jnp.asarray(labels, f.dtype) - 1
    per = jax.nn.softplus(-s * f)
    if weights is None:
        return jnp.mean(per, axis=-1)
    w = jnp.asarray(weights, f.dtype)
    return jnp.sum(w * per, axis=-1) / jnp.sum(w, axis=-1)


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


def _n_batches(cfg: _Config) -> int:
    return -(-cfg.n // cfg.batch_size)


def _epoch_one(cfg: _Config, learning_rate, images, labels, state: _State, key, attempt, epoch):
    """One epoch of one network: ⌈N/B⌉ Adam steps, the last on the N mod B remaining images
    (as Keras' ``fit``), which are padded to B with zero weight so every step has one shape."""
    _, k_shuffle = _attempt_keys(key, attempt)
    n, b, n_b = cfg.n, cfg.batch_size, _n_batches(cfg)
    perm = jax.random.permutation(jax.random.fold_in(k_shuffle, epoch), n).astype(jnp.int32)
    perm = jnp.concatenate([perm, jnp.zeros((n_b * b - n,), jnp.int32)])
    tx = _tx(cfg.optimizer, learning_rate)
    dtype = jnp.result_type(*jax.tree.leaves(state.params))

    def batch_loss(params, xb, yb, wb):
        f = jax.vmap(cfg.net.apply, in_axes=(None, 0))(params, xb)
        return logistic_loss(f, yb, weights=wb)

    def step(s: _State, t):
        start = t * b
        idx = jax.lax.dynamic_slice(perm, (start,), (b,))
        w = (start + jnp.arange(b) < n).astype(dtype)
        xb = images[idx].astype(dtype)
        yb = labels[idx].astype(dtype)
        value, grads = jax.value_and_grad(batch_loss)(s.params, xb, yb, w)
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


def _epoch_batched(cfg: _Config, learning_rate, images, labels, state, keys, attempts, epoch):
    fn = functools.partial(_epoch_one, cfg, learning_rate, images, labels)
    if cfg.n_nets is None:
        return fn(state, keys, attempts, epoch)
    return jax.vmap(fn, in_axes=(0, 0, 0, None))(state, keys, attempts, epoch)


# Initialisation is a program of its own, so the (larger) epoch program is compiled once and
# serves the first epoch, the restarts and the remaining epochs. The epoch number and the
# learning rate are traced: one compile serves every epoch, every block of networks of the
# same size and every rate.
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
    try:
        arr = np.asarray(labels)
    except Exception as e:  # noqa: BLE001 - any conversion failure is the caller's input
        raise TypeError(f"`labels` must be an array of 0/1 labels, got {type(labels).__name__}.") from e
    if not (arr.dtype == np.bool_ or np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise TypeError(f"`labels` must hold 0/1 labels (bool, integer or float), got dtype {arr.dtype}.")
    if tuple(arr.shape) != tuple(shape):
        raise ValueError(
            f"`labels` must have shape {tuple(shape)} (one label per image of `images`), got {tuple(arr.shape)}."
        )
    bad = (arr != 0) & (arr != 1)
    if np.any(bad):
        raise ValueError(f"`labels` must hold labels in {{0, 1}}, got values such as {np.unique(arr[bad])[:5].tolist()}.")
    return jnp.asarray(arr, jnp.int32)


def _check_real(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise ValueError(f"`{name}` must be a finite real number, got {value!r}.")
    return float(value)


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
) -> ClassifierResult:
    """Trains ``n_nets`` binary classifiers with Adam on the logistic loss as De Palma et al. 2021's
    code does (PROTOCOLS §1.6), re-initialising those that fail the first-epoch check.

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
      restart_threshold: re-initialise while the check accuracy is below this (0.53; 0 never
        re-initialises).
      restart_check: the check uses the first ``min(restart_check, N)`` training images (1000).
      max_restarts: most re-initialisations per network (the authors' loop is unbounded; 10
        bounds the cost of a network that never learns).
      throw: with ``True``, a network still below the threshold after ``max_restarts`` raises
        ``RuntimeError`` (before the remaining epochs); with ``False`` it is trained on and
        reported (``passed=False``) with a ``RuntimeWarning``.
      progress: show a tqdm bar over the epochs.

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
    threshold = _check_real(restart_threshold, "restart_threshold")
    restart_check = _validate.positive_int(restart_check, "restart_check")
    max_restarts = _check_non_negative_int(max_restarts, "max_restarts")
    if not isinstance(throw, bool):
        raise TypeError(f"`throw` must be True or False, got {throw!r}.")
    images = _check_images(images, net)
    n = int(images.shape[0])
    labels = _check_labels(labels, (n,))
    if batch_size > n:
        raise ValueError(f"`batch_size` must be at most the number of images N = {n}, got {batch_size}.")

    cfg = _Config(net, n, batch_size, optimizer, n_nets)
    dtype = jnp.result_type(*jax.tree.leaves(jax.eval_shape(net.init, key)))
    learning_rate = jnp.asarray(lr, dtype)
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
        state, loss0 = _epoch_jit(cfg, learning_rate, images, labels, state, keys, attempts, 0)
        acc0 = check(state.params)
        failing = _failing(acc0, threshold, n_check)
        for _ in range(max_restarts):
            if not failing.any():
                break
            mask = jnp.asarray(failing)
            attempts = attempts + mask.astype(jnp.int32)
            new_state = _init_jit(net, optimizer, n_nets, learning_rate, keys, attempts)
            new_state, new_loss0 = _epoch_jit(cfg, learning_rate, images, labels, new_state, keys, attempts, 0)
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
            state, loss_e = _epoch_jit(cfg, learning_rate, images, labels, state, keys, attempts, epoch)
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
