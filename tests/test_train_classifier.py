"""train_classifier: the logistic loss, Adam by hand, learning a separable set, the vmap contract,
the re-initialisation rule of De Palma et al.'s code (PROTOCOLS §1.6), images of any rank, bad input."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxadv import nets
from jaxadv.nets import layers as L
from jaxadv.train import ClassifierResult, accuracy, logistic_loss, train_classifier
from jaxadv.train.classifier import _epoch_jit

D, N, N_NETS = 8, 200, 3  # batches of 32: 6 full and a last one of 8
KEY = jax.random.key(1)
LR = 0.05  # 6 epochs × 7 steps of Adam at 0.05 separate the set below; the paper's 1e−4 needs ~10⁴ steps


def _separable(key, n, d, gamma=0.3):
    """x ~ N(0, I_d), pushed γ away from the hyperplane w*ᵀx = 0 (‖w*‖ = 1); label 1 ↔ w*ᵀx > 0."""
    k1, k2 = jax.random.split(key)
    w = jax.random.normal(k1, (d,))
    w = w / jnp.linalg.norm(w)
    x = jax.random.normal(k2, (n, d))
    s = jnp.sign(x @ w)
    return x + gamma * s[:, None] * w, (s > 0).astype(jnp.int32)


@pytest.fixture(scope="module")
def data():
    return _separable(jax.random.key(0), N, D)


@pytest.fixture(scope="module")
def trained(data):
    x, y = data
    return train_classifier(nets.linear(D), KEY, x, y, epochs=6, n_nets=N_NETS, learning_rate=LR, restart_threshold=0.0)


def _np_linear_accuracy(params, x, y):
    f = np.asarray(x, np.float64) @ np.asarray(params["w"], np.float64) + float(params["b"])
    return np.mean((f > 0) == (np.asarray(y) == 1))


def _pick(tree, j):
    return jax.tree.map(lambda a: a[j], tree)


def _attempt_init(net, k, r):
    """The documented key derivation: attempt r of the network with key k starts at net.init(k_init)."""
    k_init, _ = jax.random.split(jax.random.fold_in(k, r))
    return net.init(k_init)


# ---------------------------------------------------------------------------------------
# the loss


def test_logistic_loss_matches_the_float64_closed_form():
    # ℓ(f, y) = log(1 + e^{−s f}), s = 2y − 1, and ∂ℓ/∂f = −s σ(−s f), in float64 with NumPy.
    # float32 computes softplus(−s f) = max(0, −s f) + log1p(e^{−|s f|}) directly: a few ulps
    # relative, 4e−6 allowed. Margins s f stay ≤ 30, where ℓ ≈ e^{−30} ≈ 1e−13 is a normal
    # float32 (ℓ becomes subnormal beyond s f ≈ 87).
    f = np.concatenate([np.linspace(-60.0, 30.0, 91), [-1e-3, 0.0, 1e-3]])
    y = (np.arange(f.size) % 2).astype(np.int32)
    s = 2.0 * y - 1.0
    f_signed = f * s  # margins s·f from −60 to 30 for both labels
    ref = np.logaddexp(0.0, -s * f_signed)
    per = logistic_loss(jnp.asarray(f_signed[:, None], jnp.float32), jnp.asarray(y[:, None]))
    assert per.shape == (f.size,) and per.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(per), ref, rtol=4e-6)
    mean = logistic_loss(jnp.asarray(f_signed, jnp.float32), jnp.asarray(y))
    np.testing.assert_allclose(float(mean), ref.mean(), rtol=4e-6)
    # weights: Σ w ℓ / Σ w (the padding of a partial batch has weight 0)
    w = (np.arange(f.size) % 3 != 0).astype(np.float64)
    weighted = logistic_loss(jnp.asarray(f_signed, jnp.float32), jnp.asarray(y), weights=jnp.asarray(w))
    np.testing.assert_allclose(float(weighted), (w * ref).sum() / w.sum(), rtol=4e-6)
    grad = jax.grad(lambda v: logistic_loss(v, jnp.asarray(y)))(jnp.asarray(f_signed, jnp.float32))
    ref_grad = -s / (1.0 + np.exp(s * f_signed)) / f.size
    np.testing.assert_allclose(np.asarray(grad), ref_grad, rtol=1e-5, atol=1e-12)


def test_logistic_loss_in_float64(x64):
    f = np.linspace(-30.0, 30.0, 61)
    y = (f > 3).astype(np.int32)  # both signs of the margin for both labels
    s = 2.0 * y - 1.0
    np.testing.assert_allclose(float(logistic_loss(jnp.asarray(f), jnp.asarray(y))), np.logaddexp(0, -s * f).mean(), rtol=1e-13)


# ---------------------------------------------------------------------------------------
# Adam, by hand


def _linear_theta(p):
    """(w, b) of nets.linear ({"w", "b"}) or of a one-Dense sequential ([{"W", "b"}]) as one vector."""
    w, b = (p["w"], p["b"]) if isinstance(p, dict) else (p[0]["W"][:, 0], p[0]["b"][0])
    return np.concatenate([np.asarray(w, np.float64), [float(b)]])


def _reference_adam(net, key, x, y, lr, batch_size, epochs, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0):
    """The documented procedure written out in float64 with NumPy, for a linear model:
    attempt 0's init, epoch e's order permutation(fold_in(k_shuffle, e), N), ⌈N/B⌉ steps (the
    last on the N mod B remaining images), ∇ of the batch mean of log(1 + e^{−s(wᵀx+b)}) +
    λ‖w‖² (the bias not penalised) in closed form, and Adam (Kingma & Ba, Algorithm 1, with
    optax's ε outside the root)."""
    k_init, k_shuffle = jax.random.split(jax.random.fold_in(key, 0))
    theta = _linear_theta(net.init(k_init))
    is_weight = np.arange(theta.size) < theta.size - 1
    X = np.concatenate([np.asarray(x, np.float64), np.ones((x.shape[0], 1))], axis=1)
    s = 2.0 * np.asarray(y, np.float64) - 1.0
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    t = 0
    losses = []
    n = X.shape[0]
    for e in range(epochs):
        perm = np.asarray(jax.random.permutation(jax.random.fold_in(k_shuffle, e), n))
        total = 0.0
        for start in range(0, n, batch_size):
            idx = perm[start : start + batch_size]
            q = s[idx] * (X[idx] @ theta)
            total += np.logaddexp(0.0, -q).sum()
            g = (-(s[idx] / (1.0 + np.exp(q)))[:, None] * X[idx]).mean(axis=0) + 2 * weight_decay * theta * is_weight
            t += 1
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            theta = theta - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
        losses.append(total / n)
    return theta, np.asarray(losses)


def _check_against_reference(x, y, batch_size, rtol, atol, **how):
    net = nets.linear(D)
    res = train_classifier(net, KEY, x, y, epochs=2, batch_size=batch_size, restart_threshold=0.0, **how)
    theta, ref_losses = _reference_adam(net, KEY, x, y, LR, batch_size, 2)
    np.testing.assert_allclose(np.asarray(res.params["w"]), theta[:-1], rtol=rtol, atol=atol)
    np.testing.assert_allclose(float(res.params["b"]), theta[-1], rtol=rtol, atol=atol)
    np.testing.assert_allclose(np.asarray(res.loss), ref_losses, rtol=rtol, atol=atol)
    # the params moved by several steps of size ~lr (otherwise the check above would be weak)
    p0 = _attempt_init(net, KEY, 0)
    assert float(jnp.max(jnp.abs(res.params["w"] - p0["w"]))) > 2 * LR
    return res


def test_training_is_adam_on_the_batch_mean_logistic_loss_float64(data, x64):
    # 10 images in batches of 4: steps of 4, 4 and 2 images per epoch, 2 epochs, so the partial
    # batch, the reshuffle between epochs and Adam's bias correction all matter. The same
    # arithmetic in float64 in another order: measured 1e−16. The optimizer is given explicitly
    # here (the float32 test below uses the default, optax.adam(learning_rate)).
    res = _check_against_reference(data[0][:10], data[1][:10], 4, 1e-12, 1e-13, optimizer=optax.adam(LR))
    assert res.params["w"].dtype == jnp.float64


def test_training_is_adam_on_the_batch_mean_logistic_loss(data):
    # float32, 2 epochs of 7 steps (the last of 8 images): Adam divides m by √v, so a gradient
    # component's relative rounding error (6e−8 times the ratio of the terms it sums to the
    # component, up to ~10³ here) becomes lr times that in the step; measured ≤ 2e−6 on params
    # of size ~0.1–1.
    _check_against_reference(*data, 32, 0, 1e-5, learning_rate=LR)


def test_weight_decay_is_an_l2_penalty_on_the_kernels_float64(data, x64):
    # A linear model whose weight is named "W" (one Dense layer): λ‖W‖² is added to each
    # batch's mean loss, the bias is not penalised, and the reported loss is the logistic
    # part. Checked against the NumPy Adam above with the gradient 2λw added by hand, on the
    # setting of the float64 test above (same tolerance, same reasoning).
    x, y, lam = data[0][:10], data[1][:10], 0.3
    net = nets.sequential([L.Dense(1)], (D,), bias=True)
    kw = dict(epochs=2, batch_size=4, restart_threshold=0.0, optimizer=optax.adam(LR))
    res = train_classifier(net, KEY, x, y, weight_decay=lam, **kw)
    theta, ref_losses = _reference_adam(net, KEY, x, y, LR, 4, 2, weight_decay=lam)
    np.testing.assert_allclose(_linear_theta(res.params), theta, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(np.asarray(res.loss), ref_losses, rtol=1e-12, atol=1e-13)
    # It changes training: without the penalty the params end ≥ 1e−3 away (≫ the tolerance),
    # and the run matches the reference with λ = 0.
    plain = train_classifier(net, KEY, x, y, **kw)
    theta0, _ = _reference_adam(net, KEY, x, y, LR, 4, 2)
    np.testing.assert_allclose(_linear_theta(plain.params), theta0, rtol=1e-12, atol=1e-13)
    assert np.max(np.abs(theta0 - theta)) > 1e-3


# ---------------------------------------------------------------------------------------
# learning, and the result


def test_a_linearly_separable_set_is_learned(data, trained):
    # The set is separable by w*ᵀx = 0 with margin 0.3, so the logistic loss has no minimiser
    # and its descent drives the training error to 0 (Soudry et al. 2018: the direction tends to
    # the max-margin separator); 0.95 leaves 5% of points near the boundary after 36 steps.
    # Not reachable by chance: the initial accuracy is 1 − ∠(w, w*)/π ≈ 0.5 ± 0.15, and a
    # random direction in ℝ⁸ within 9° of w* (accuracy ≥ 0.95) has probability ~ sin⁷(9°) ≈ 2e−6.
    x, y = data
    assert isinstance(trained, ClassifierResult)
    assert trained.loss.shape == (N_NETS, 6) and trained.accuracy.shape == (N_NETS,)
    assert bool(jnp.all(trained.accuracy >= 0.95))
    assert bool(jnp.all(trained.loss[:, -1] < 0.5 * trained.loss[:, 0]))
    assert trained.restarts.tolist() == [0] * N_NETS and bool(jnp.all(trained.passed))
    for j in range(N_NETS):  # the reported accuracy is the params' accuracy, recomputed in float64
        np.testing.assert_allclose(float(trained.accuracy[j]), _np_linear_accuracy(_pick(trained.params, j), x, y))
    # check_accuracy: after the first epoch, on the first min(restart_check, N) = N images; the
    # first epoch of a 6-epoch run is a 1-epoch run with the same key
    first = train_classifier(nets.linear(D), KEY, x, y, epochs=1, n_nets=N_NETS, learning_rate=LR, restart_threshold=0.0)
    ref = [_np_linear_accuracy(_pick(first.params, j), x, y) for j in range(N_NETS)]
    np.testing.assert_allclose(np.asarray(trained.check_accuracy), ref)
    np.testing.assert_array_equal(np.asarray(first.loss[:, 0]), np.asarray(trained.loss[:, 0]))


def test_network_j_of_a_batch_equals_network_j_alone(data, trained):
    # The vmap contract: network j of n_nets uses key split(key, n_nets)[j] and nothing else.
    # Batched and unbatched programs may order float32 sums differently: a few ulps per step.
    x, y = data
    keys = jax.random.split(KEY, N_NETS)
    for j in range(N_NETS):
        one = train_classifier(nets.linear(D), keys[j], x, y, epochs=6, learning_rate=LR, restart_threshold=0.0)
        assert one.loss.shape == (6,) and one.params["w"].shape == (D,)
        for name in ("w", "b"):
            np.testing.assert_allclose(np.asarray(one.params[name]), np.asarray(trained.params[name][j]), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(np.asarray(one.loss), np.asarray(trained.loss[j]), rtol=1e-5)
        assert float(one.accuracy) == float(trained.accuracy[j]) and int(one.restarts) == int(trained.restarts[j])


def test_same_key_same_bits_other_key_other_params(data, trained):
    x, y = data
    n_compiled = _epoch_jit._cache_size()
    again = train_classifier(
        nets.linear(D), KEY, x, y, epochs=6, n_nets=N_NETS, learning_rate=LR, restart_threshold=0.0, progress=True
    )
    for a, b in zip(jax.tree.leaves(again), jax.tree.leaves(trained)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    kw = dict(epochs=6, n_nets=N_NETS, restart_threshold=0.0)
    other = train_classifier(nets.linear(D), jax.random.key(2), x, y, learning_rate=LR, **kw)
    assert not np.any(np.isclose(np.asarray(other.params["w"]), np.asarray(trained.params["w"]), rtol=1e-3, atol=0))
    slower = train_classifier(nets.linear(D), KEY, x, y, learning_rate=0.5 * LR, **kw)
    assert not np.any(np.isclose(np.asarray(slower.params["w"]), np.asarray(trained.params["w"]), rtol=1e-3, atol=0))
    # another key and another rate reuse the compiled epoch (the rate and the epoch are traced)
    assert _epoch_jit._cache_size() == n_compiled


# ---------------------------------------------------------------------------------------
# the re-initialisation rule


# With learning rate 1e−30, Adam's steps (|Δθ| ≲ lr) fall below half an ulp of every parameter
# (all ≫ 1e−22 here), so after the first epoch each network still holds its attempt's initial
# params, bitwise (checked below); its check accuracy, and hence the whole restart sequence,
# can then be predicted from the documented keys alone. The rate is traced: this reuses the
# compiled program of the other tests.
FROZEN = dict(epochs=1, n_nets=N_NETS, learning_rate=1e-30)


def _attempt_accuracies(net, x, y, n_check, n_attempts):
    keys = jax.random.split(KEY, N_NETS)
    return np.array(
        [[_np_linear_accuracy(_attempt_init(net, keys[j], r), x[:n_check], y[:n_check]) for r in range(n_attempts)] for j in range(N_NETS)]
    )


def test_only_the_failing_networks_are_reinitialised(data):
    x, y = data
    net, n_check, max_restarts = nets.linear(D), 100, 3
    acc = _attempt_accuracies(net, x, y, n_check, max_restarts + 1)
    threshold = float(np.median(acc[:, 0]))  # the network(s) below the median fail at first
    res = train_classifier(net, KEY, x, y, restart_threshold=threshold, restart_check=n_check, max_restarts=max_restarts, **FROZEN)
    # the rule: attempt r is kept if it is the first with accuracy ≥ threshold, or r = max_restarts
    expected = [next((r for r in range(max_restarts + 1) if acc[j, r] >= threshold), max_restarts) for j in range(N_NETS)]
    assert res.restarts.tolist() == expected
    assert 0 in expected and max(expected) >= 1  # both kinds present, so the check is not vacuous
    np.testing.assert_array_equal(np.asarray(res.passed), [acc[j, r] >= threshold for j, r in enumerate(expected)])
    np.testing.assert_allclose(np.asarray(res.check_accuracy), [acc[j, r] for j, r in enumerate(expected)])
    keys = jax.random.split(KEY, N_NETS)
    for j, r in enumerate(expected):  # each network holds the init of its kept attempt, bitwise
        p = _attempt_init(net, keys[j], r)
        np.testing.assert_array_equal(np.asarray(res.params["w"][j]), np.asarray(p["w"]))
    # threshold 0: nobody restarts, and every network is its first attempt
    none = train_classifier(net, KEY, x, y, restart_threshold=0.0, restart_check=n_check, **FROZEN)
    assert none.restarts.tolist() == [0] * N_NETS and bool(jnp.all(none.passed))
    np.testing.assert_allclose(np.asarray(none.check_accuracy), acc[:, 0])


def test_an_unreachable_threshold_restarts_up_to_the_cap_and_is_reported(data):
    x, y = data
    net = nets.linear(D)
    with pytest.warns(RuntimeWarning, match="stayed below restart_threshold"):
        res = train_classifier(net, KEY, x, y, restart_threshold=1.01, max_restarts=2, **FROZEN)
    assert res.restarts.tolist() == [2] * N_NETS and not bool(jnp.any(res.passed))
    keys = jax.random.split(KEY, N_NETS)
    for j in range(N_NETS):  # the last attempt is the one trained on
        np.testing.assert_array_equal(np.asarray(res.params["w"][j]), np.asarray(_attempt_init(net, keys[j], 2)["w"]))
    with pytest.raises(RuntimeError, match="3 network"):
        train_classifier(net, KEY, x, y, restart_threshold=1.01, max_restarts=2, throw=True, **FROZEN)
    # max_restarts=0: the check is still made and reported
    with pytest.warns(RuntimeWarning):
        res0 = train_classifier(net, KEY, x, y, restart_threshold=1.01, max_restarts=0, **FROZEN)
    assert res0.restarts.tolist() == [0] * N_NETS and not bool(jnp.any(res0.passed))


# ---------------------------------------------------------------------------------------
# images of any rank


@dataclasses.dataclass(frozen=True)
class _FlatInit:
    inner: nets.Network

    def __call__(self, key):
        return self.inner.init(key)


@dataclasses.dataclass(frozen=True)
class _FlatApply:
    inner: nets.Network

    def __call__(self, params, x):
        return self.inner.apply(params, x.reshape(-1))


def _flat(inner, shape):
    return nets.Network(_FlatInit(inner), _FlatApply(inner), shape, f"flat({inner.name}, {shape})")


def test_images_of_any_rank(data, trained):
    # A linear model on (2, 2, 2) images that flattens them: trained on the reshaped set with the
    # same key it must equal the linear model trained on the flat set (the reshape is exact).
    x, y = data
    shape = (2, 2, 2)
    net = _flat(nets.linear(D), shape)
    res = train_classifier(net, KEY, x.reshape(N, *shape), y, epochs=6, n_nets=N_NETS, learning_rate=LR, restart_threshold=0.0)
    for name in ("w", "b"):
        np.testing.assert_allclose(np.asarray(res.params[name]), np.asarray(trained.params[name]), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(res.accuracy), np.asarray(trained.accuracy))
    np.testing.assert_array_equal(np.asarray(res.restarts), np.asarray(trained.restarts))
    with pytest.raises(ValueError, match=r"`images` must have shape \(N, 2, 2, 2\)"):
        train_classifier(net, KEY, x, y, epochs=1)


@pytest.mark.slow
def test_a_small_mlp_learns_the_separable_set_from_rank_3_images(data):
    # The bar of the linear test: a ReLU net with biases and 16 hidden units can represent the
    # linear separator. Its params are the plain mlp's, so the plain mlp on the flat images
    # must agree with the reported accuracy.
    x, y = data
    mlp = nets.mlp(D, [16], bias=True)
    net = _flat(mlp, (2, 2, 2))
    res = train_classifier(net, KEY, x.reshape(N, 2, 2, 2), y, epochs=6, n_nets=2, learning_rate=LR)
    assert bool(jnp.all(res.accuracy >= 0.95)), res.accuracy
    assert res.params["hidden"][0]["W"].shape == (2, 16, D)
    np.testing.assert_array_equal(np.asarray(accuracy(mlp, res.params, x, y)), np.asarray(res.accuracy))


# ---------------------------------------------------------------------------------------
# accuracy


def test_accuracy_matches_numpy_and_chunking_changes_nothing(data, trained):
    x, y = data
    net = nets.linear(D)
    ref = [_np_linear_accuracy(_pick(trained.params, j), x, y) for j in range(N_NETS)]
    np.testing.assert_allclose(np.asarray(accuracy(net, trained.params, x, y)), ref)
    np.testing.assert_array_equal(
        np.asarray(accuracy(net, trained.params, x, y, chunk_size=7)), np.asarray(accuracy(net, trained.params, x, y))
    )
    assert accuracy(net, _pick(trained.params, 1), x, np.asarray(y, bool)).shape == ()
    # per-network images (n_net, N, d) with labels (n_net, N); flipped labels give 1 − accuracy
    xs = jnp.stack([x] * N_NETS)
    ys = np.stack([np.asarray(y), 1 - np.asarray(y), np.asarray(y)])
    got = np.asarray(accuracy(net, trained.params, xs, ys))
    np.testing.assert_allclose(got, [ref[0], 1 - ref[1], ref[2]], atol=1e-6)


# ---------------------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize(
    "change, error, match",
    [
        (dict(labels=lambda y: 2 * y - 1), ValueError, r"`labels` must hold labels in \{0, 1\}"),
        (dict(labels=lambda y: y[:-1]), ValueError, r"`labels` must have shape \(200,\)"),
        (dict(labels=lambda y: y.astype(jnp.float32) * 0.5), ValueError, "`labels`"),
        (dict(images=lambda x: x[:, :-1]), ValueError, r"`images` must have shape \(N, 8\)"),
        (dict(images=lambda x: x.reshape(-1)), ValueError, "`images` must have shape"),
        (dict(images=lambda x: x.at[3, 2].set(jnp.nan)), ValueError, "`images` must be finite, but 1 of"),
        (dict(images=lambda x: x.at[0, 0].set(jnp.inf)), ValueError, "`images` must be finite"),
        (dict(batch_size=N + 1), ValueError, "`batch_size` must be at most the number of images N = 200"),
        (dict(batch_size=0), ValueError, "`batch_size`"),
        (dict(epochs=0), ValueError, "`epochs`"),
        (dict(epochs=1.5), TypeError, "`epochs`"),
        (dict(n_nets=0), ValueError, "`n_nets`"),
        (dict(max_restarts=-1), ValueError, "`max_restarts`"),
        (dict(restart_check=0), ValueError, "`restart_check`"),
        (dict(restart_threshold=float("nan")), ValueError, "`restart_threshold`"),
        (dict(restart_threshold=float("inf")), ValueError, "`restart_threshold` must be finite and ≥ 0"),
        (dict(restart_threshold=-0.1), ValueError, "`restart_threshold` must be finite and ≥ 0"),
        (dict(restart_threshold="0.53"), TypeError, "`restart_threshold` must be a real number"),
        (dict(progress=1), TypeError, "`progress` must be True or False"),
        (dict(progress="yes"), TypeError, "`progress` must be True or False"),
        (dict(weight_decay=-1e-4), ValueError, "`weight_decay` must be a finite number ≥ 0"),
        (dict(weight_decay=float("nan")), ValueError, "`weight_decay`"),
        (dict(weight_decay=None), TypeError, "`weight_decay`"),
        (dict(weight_decay=1e-4), ValueError, r'`weight_decay` > 0 penalises the parameters named "W", but linear'),
        (dict(learning_rate=-1.0), ValueError, "`learning_rate`"),
        (dict(learning_rate=1e-3, optimizer=optax.adam(1e-3)), ValueError, "`learning_rate` and `optimizer`"),
        (dict(optimizer="adam"), TypeError, "`optimizer`"),
        (dict(throw=1), TypeError, "`throw`"),
        (dict(key=0), TypeError, "`key`"),
        (dict(net="linear"), TypeError, "`net`"),
    ],
)
def test_bad_input_is_named(data, change, error, match):
    x, y = data
    kw = dict(net=nets.linear(D), key=KEY, images=x, labels=y, epochs=1)
    for name, value in change.items():
        kw[name] = value(kw[name]) if callable(value) else value
    with pytest.raises(error, match=match):
        train_classifier(**kw)


def test_accuracy_bad_input(data, trained):
    x, y = data
    net = nets.linear(D)
    with pytest.raises(ValueError, match=r"`labels` must hold labels in \{0, 1\}"):
        accuracy(net, trained.params, x, 2 * y - 1)
    with pytest.raises(ValueError, match="`labels` must have shape"):
        accuracy(net, trained.params, x, y[:5])
    with pytest.raises(ValueError, match="`images`"):
        accuracy(net, trained.params, x[:, :3], y)
    with pytest.raises(ValueError, match="`params`"):
        accuracy(nets.linear(D + 1), trained.params, jnp.zeros((N, D + 1)), y)


@pytest.mark.parametrize(
    "f, labels, weights, error, match",
    [
        ([0.0, 1.0], [1, 2], None, ValueError, r"`labels` must hold labels in \{0, 1\}, got values such as \[2\]"),
        ([0.0, 1.0], [-1, 1], None, ValueError, r"`labels` must hold labels in \{0, 1\}"),
        ([0.0, 1.0], [0.5, 1.0], None, ValueError, r"`labels` must hold labels in \{0, 1\}"),
        ([0.0, 1.0], [1], None, ValueError, r"`labels` must have the shape of `f`, \(2,\), got \(1,\)"),
        ([[0.0, 1.0]] * 3, [1, 0], None, ValueError, r"`labels` must have the shape of `f`, \(3, 2\)"),
        ([0.0, 1.0], ["a", "b"], None, TypeError, "`labels` must hold 0/1 labels"),
        ([0.0, 1.0], [1, 0], [1.0, -1.0], ValueError, "`weights` must be finite and ≥ 0"),
        ([0.0, 1.0], [1, 0], [1.0, np.nan], ValueError, "`weights` must be finite and ≥ 0"),
        ([0.0, 1.0], [1, 0], [0.0, 0.0], ValueError, "`weights` must have a positive sum along the last axis"),
        ([0.0, 1.0], [1, 0], [1.0], ValueError, r"`weights` must have the shape of `f`, \(2,\), got \(1,\)"),
        ([0.0, 1.0], [1, 0], [[1.0, 1.0]] * 2, ValueError, "`weights` must have the shape of `f`"),
        (0.0, 1, None, ValueError, r"`f` must have shape \(\.\.\., m\) with m ≥ 1"),
        (np.zeros((2, 0)), np.zeros((2, 0)), None, ValueError, r"`f` must have shape \(\.\.\., m\) with m ≥ 1"),
        ("abc", [1], None, TypeError, "`f` must be an array of real numbers"),
        ([1 + 2j], [1], None, TypeError, "`f` must hold real numbers"),
    ],
)
def test_logistic_loss_bad_input(f, labels, weights, error, match):
    # Before any compute, naming the argument (broadcasting was silent before).
    with pytest.raises(error, match=match):
        logistic_loss(f, labels, weights=weights)


def test_logistic_loss_checks_inside_jit():
    # Under jit, shapes are still checked; values only when concrete (a closed-over array).
    f, y = jnp.array([0.0, 1.0]), jnp.array([1, 0])
    np.testing.assert_allclose(float(jax.jit(logistic_loss)(f, y)), float(logistic_loss(f, y)), rtol=1e-6)
    with pytest.raises(ValueError, match="`labels` must have the shape of `f`"):
        jax.jit(logistic_loss)(f, jnp.array([1, 0, 1]))
    with pytest.raises(ValueError, match=r"`labels` must hold labels in \{0, 1\}"):
        jax.jit(lambda v: logistic_loss(v, np.array([1, 2])))(f)
    with pytest.raises(ValueError, match="`weights` must be finite and ≥ 0"):
        jax.jit(lambda v: logistic_loss(v, y, weights=np.array([1.0, -1.0])))(f)
    # traced labels: no value check (the values do not exist yet), the loss is computed
    assert jax.jit(logistic_loss)(f, jnp.array([1, 2])).shape == ()
