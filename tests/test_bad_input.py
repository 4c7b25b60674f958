"""Every public entry point rejects bad input with an error naming the argument, before compute."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxadv import data, kernels, nets

KEY = jax.random.key(0)
NET = nets.mlp(5, [4, 3])
PARAMS = NET.init(KEY)
MANY = kernels.init_many(NET, KEY, 2)
XS = data.sphere(KEY, 3, 5)


@pytest.mark.parametrize(
    "call, exc, match",
    [
        # constructors
        (lambda: nets.two_layer(0, 5), ValueError, "`d` must be a positive integer"),
        (lambda: nets.two_layer(5, -2), ValueError, "`k` must be a positive integer"),
        (lambda: nets.two_layer(5.0, 2), TypeError, "`d` must be a positive integer"),
        (lambda: nets.two_layer(5, 2, "sigmoidish"), ValueError, "`activation` must be one of"),
        (lambda: nets.two_layer(5, 2, 3), TypeError, "`activation` must be a name or a callable"),
        (lambda: nets.two_layer(5, 2, lambda z: z.sum()), ValueError, "`activation` must be elementwise"),
        (lambda: nets.two_layer(5, 2, readout="uniform"), ValueError, "`readout` must be one of"),
        (lambda: nets.mlp(5, [4, 0]), ValueError, r"`widths\[1\]` must be a positive integer"),
        (lambda: nets.mlp(5, []), ValueError, "`widths` must contain at least one width"),
        (lambda: nets.mlp(5, 4), TypeError, "`widths` must be a sequence"),
        (lambda: nets.mlp(5, [4], readout="bernoulli"), ValueError, "`readout` must be one of"),
        (lambda: nets.mlp(5, [4], bias="yes"), TypeError, "`bias` must be True or False"),
        (lambda: nets.mlp(5, [4], weight_std=-1.0), ValueError, "`weight_std` must be a finite number > 0"),
        (lambda: nets.mlp(5, [4], bias_std=float("inf")), ValueError, "`bias_std` must be a finite number"),
        (lambda: nets.mlp(5, [4], precision="fast"), ValueError, "`precision` must be one of"),
        (lambda: nets.shallow(5, 3, init="xavier"), ValueError, "`init` must be one of"),
        (lambda: nets.linear(5, dtype="int8"), TypeError, "`dtype` must be a floating dtype"),
        # init and apply
        (lambda: NET.init(0), TypeError, "`key` must be a JAX PRNG key"),
        (lambda: NET.init(np.zeros(2, np.float32)), TypeError, "`key` must be a JAX PRNG key"),
        (lambda: NET.init(jax.random.split(KEY, 3)), ValueError, "`key` must be a single PRNG key"),
        (lambda: NET.apply(PARAMS, jnp.ones(6)), ValueError, r"`x` must be ONE input of shape \(5,\)"),
        (lambda: NET.apply(PARAMS, jnp.ones((3, 5))), ValueError, r"`x` must be ONE input of shape \(5,\)"),
        # kernels
        (lambda: kernels.init_many(NET, KEY, 0), ValueError, "`n` must be a positive integer"),
        (lambda: kernels.init_many(NET, 3, 2), TypeError, "`key` must be a JAX PRNG key"),
        (lambda: kernels.init_many("mlp", KEY, 2), TypeError, "`net` must be a jaxadv.nets.Network"),
        (lambda: kernels.evaluate(NET, PARAMS, jnp.ones((3, 6))), ValueError, r"`xs` must have shape \(n_x, 5\)"),
        (lambda: kernels.evaluate(NET, PARAMS, jnp.ones(5)), ValueError, r"`xs` must have shape \(n_x, 5\)"),
        (lambda: kernels.evaluate(NET, MANY, jnp.ones((3, 3, 5))), ValueError, "`xs` has inputs for 3 networks but `params` holds 2"),
        (lambda: kernels.evaluate(NET, MANY, jnp.ones((2, 3, 4))), ValueError, r"`xs` must have shape \(n_x, 5\) or \(n_net, n_x, 5\)"),
        (lambda: kernels.evaluate(NET, XS.at[1, 2].set(jnp.nan), XS), ValueError, "`params` must be the pytree"),
        (lambda: kernels.evaluate(NET, PARAMS, XS.at[1, 2].set(jnp.nan)), ValueError, "`xs` must be finite, but 1 of its 15"),
        (lambda: kernels.evaluate(NET, PARAMS, XS.at[0, 0].set(jnp.inf)), ValueError, "`xs` must be finite"),
        (lambda: kernels.evaluate(NET, PARAMS, XS.astype(jnp.complex64)), TypeError, "`xs` must hold real numbers"),
        (lambda: kernels.evaluate(NET, nets.mlp(5, [4, 4]).init(KEY), XS), ValueError, "`params` leaves must have shapes"),
        (lambda: kernels.evaluate(NET, PARAMS, XS, chunk_size=0), ValueError, "`chunk_size` must be a positive integer"),
        (lambda: kernels.evaluate(NET, PARAMS, XS, max_bytes=-5), ValueError, "`max_bytes` must be a positive integer"),
        (lambda: kernels.forward(NET, MANY, jnp.ones((4,))), ValueError, "`xs` must have shape"),
        (lambda: kernels.value_and_input_grad(3), TypeError, "`apply` must be callable"),
        (lambda: kernels.map_pairs(lambda p, x, u: x, NET, PARAMS, XS, per_x=(jnp.ones((2, 5)),)), ValueError, r"`per_x\[0\]` must have leading axes \(3,\)"),
        (lambda: kernels.map_pairs(lambda p, x, t: x, NET, MANY, XS, per_pair=(jnp.ones((3,)),)), ValueError, r"`per_pair\[0\]` must have leading axes \(2, 3\)"),
    ],
)
def test_bad_input_is_rejected_with_a_clear_error(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_validation_happens_before_compute(monkeypatch):
    # A bad argument must be caught before anything is traced or compiled.
    traced = []
    monkeypatch.setattr(kernels, "_map_pairs", lambda *a, **k: traced.append(1))
    with pytest.raises(ValueError):
        kernels.evaluate(NET, PARAMS, XS.at[0, 0].set(jnp.nan))
    with pytest.raises(ValueError):
        kernels.evaluate(NET, PARAMS, XS, chunk_size=-1)
    assert traced == []
