"""The ``Network`` type every family returns."""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax

Params = Any  # a pytree of arrays


class Network(NamedTuple):
    """A random-network family as a pair of pure functions.

    Attributes:
      init: ``init(key) -> params``, a pytree of arrays for one network.
      apply: ``apply(params, x) -> f`` for ONE input ``x`` of shape ``input_shape``; ``f`` is a
        scalar. Batching over inputs and networks is done by :mod:`jaxadv.kernels`.
      input_shape: the shape of one input, e.g. ``(d,)``.
      name: the constructor call that made it, e.g. ``"mlp(d=100, widths=(100, 100))"``.

    ``init`` and ``apply`` are frozen dataclasses that compare equal when their configuration
    is equal, so two calls ``mlp(100, [100])`` give equal, equally hashed networks and a jitted
    kernel compiled for one is reused for the other.

    Optional first-layer protocol: an ``apply`` may also define ``first_linear(params, x)``, a
    map linear in ``x`` (e.g. W₁x), and ``after_first(params, z)`` with
    ``apply(params, x) == after_first(params, first_linear(params, x))``. Attacks along a ray
    x + ηu then compute ``first_linear`` of x and u once and evaluate only the later layers
    per η (:func:`jaxadv.attacks.one_step`). ``mlp`` and ``two_layer`` define it.
    """

    init: Callable[[jax.Array], Params]
    apply: Callable[[Params, jax.Array], jax.Array]
    input_shape: tuple[int, ...]
    name: str

    def __repr__(self) -> str:
        return f"Network({self.name})"

    @property
    def d(self) -> int:
        """Input dimension (number of scalar inputs)."""
        n = 1
        for s in self.input_shape:
            n *= s
        return n
