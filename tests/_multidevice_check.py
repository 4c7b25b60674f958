"""Many devices = one device, checked in a process of its own with 4 simulated CPU devices.

Run by tests/test_devices.py as ``python tests/_multidevice_check.py OUT_DIR`` (the device
count is fixed when JAX starts its backend, so it cannot change inside the test process;
importing this module changes nothing).
Every check compares the default run, split over the 4 devices, with the same call on one
device of the same process; the arrays of the first check also go to OUT_DIR for the parent
(a genuinely single-device process) to compare. Prints one JSON line of what was checked.

Bit for bit where each device runs the one-device program on fewer networks (the batched
products then take the same per-network path); to float32 rounding where the split changes
the shapes of a block's products (inputs split over devices, or a memory plan that chunks
differently per device), for the reason chunked and unchunked calls differ (README).

``python tests/_multidevice_check.py --process ID PORT`` is one of two processes (2 CPU
devices each) joined by ``jax.distributed``: the README's multi-host recipes, run by the
slow test in tests/test_devices.py.
"""

import dataclasses
import json
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np

from jaxadv import attacks, kernels, nets
from jaxadv.experiments import bubeck2021, runner

RTOL, ATOL = 2e-5, 2e-6  # tests/conftest.py's float32 tolerances: the same sums in another order


def same(a, b):
    jax.tree.map(lambda u, v: np.testing.assert_array_equal(np.asarray(u), np.asarray(v)), a, b)


def close(a, b):
    jax.tree.map(lambda u, v: np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=RTOL, atol=ATOL), a, b)


def n_devices(tree) -> int:
    return len(set().union(*(leaf.sharding.device_set for leaf in jax.tree.leaves(tree))))


def draw(shape, seed):
    # NumPy draws: equality does not need jaxadv's samplers, and compiling them costs seconds.
    return (np.random.default_rng(seed).standard_normal(shape) / np.sqrt(shape[-1])).astype(np.float32)


def stacked_params(net, n, seed):
    shapes = jax.eval_shape(net.init, jax.random.key(0))
    leaves, tree = jax.tree.flatten(shapes)
    return jax.tree.unflatten(tree, [draw((n, *leaf.shape), seed + i) for i, leaf in enumerate(leaves)])


def main(out: str) -> dict:
    assert len(jax.devices()) == 4, jax.devices()
    one = jax.local_devices()[:1]
    done = {}
    flags = (jax.config.jax_enable_x64, jax.config.jax_default_device, jax.config.jax_default_matmul_precision)

    # 7 networks (not a multiple of 4): 2 per device, the last network repeated into the padding.
    net = nets.mlp(12, [24, 12], bias=True)
    params, xs = stacked_params(net, 7, 0), draw((6, 12), 10)
    p = kernels.plan(net, params, xs)
    assert (p.n_devices, p.sharded_axis, p.net_chunk, p.x_chunk) == (4, "networks", None, None), p
    ev = kernels.evaluate(net, params, xs)
    assert n_devices(ev) == 4
    ev1 = kernels.evaluate(net, params, xs, devices=one)
    assert n_devices(ev1) == 1
    same(ev, ev1)
    np.savez(os.path.join(out, "evaluate.npz"), f=np.asarray(ev.f), grad=np.asarray(ev.grad))
    done["evaluate/networks"] = "bitwise"

    # The memory plan applies per device: a budget that forces blocks of 1 network.
    budget = kernels.plan(net, params, xs, chunk_size=6).estimated_bytes  # one network's 6 inputs
    p = kernels.plan(net, params, xs, max_bytes=budget)
    assert p.n_devices == 4 and p.net_chunk == 1 and p.estimated_bytes <= budget, p
    close(kernels.evaluate(net, params, xs, max_bytes=budget), ev1)
    done["evaluate/chunked-per-device"] = "float32 rounding"

    # One network: the inputs are split instead (7 inputs, padded to 8).
    p1, xs7 = jax.tree.map(lambda a: a[0], params), draw((7, 12), 11)
    assert kernels.plan(net, p1, xs7).sharded_axis == "inputs"
    f = kernels.forward(net, p1, xs7)
    assert n_devices(f) == 4
    close(f, kernels.forward(net, p1, xs7, devices=one))
    # Fewer networks than devices, each with its own inputs: the input axis again.
    p2, xs2 = jax.tree.map(lambda a: a[:2], params), draw((2, 7, 12), 12)
    assert kernels.plan(net, p2, xs2).sharded_axis == "inputs"
    close(kernels.evaluate(net, p2, xs2), kernels.evaluate(net, p2, xs2, devices=one))
    done["forward+evaluate/inputs"] = "float32 rounding"

    # one_step with the networks and inputs of the reproduce cell below (same shapes: compiled once).
    tl = nets.two_layer(8, 8)
    tp, xs_tl = stacked_params(tl, 5, 20), draw((5, 4, 8), 30) * np.sqrt(8)
    r4 = attacks.one_step(tl, tp, xs_tl)
    with kernels.use_devices(one):
        r1 = attacks.one_step(tl, tp, xs_tl)
    assert n_devices(r4) == 3 and n_devices(r1) == 1  # 5 networks: 2 per device is reached with 3 devices
    assert bool(r4.success.any())
    same(r4, r1)
    done["one_step"] = "bitwise"

    # map_nets: a set-level function of each network.
    sets = draw((5, 4, 8), 13)
    out4 = kernels.map_nets(_SetMin(tl.apply), tl, tp, per_net=(sets,), shared=(1.0,))
    assert n_devices(out4) == 3
    same(out4, kernels.map_nets(_SetMin(tl.apply), tl, tp, per_net=(sets,), shared=(1.0,), devices=one))
    done["map_nets"] = "bitwise"

    # A tiny `jaxadv reproduce bubeck2021`: every cell file and every claim equal. Figures are
    # drawn from the arrays compared here, and matplotlib costs seconds: left out.
    bubeck2021.SCALES["quick"] = {"dims": [8], "depths": [1], "n_net": 5, "n_x": 4, "eta_max": 20.0, "variants": [],
                                  "variant_dims": []}
    runner.EXPERIMENTS["bubeck2021"] = dataclasses.replace(runner.EXPERIMENTS["bubeck2021"], figures=lambda *a: [])
    claims4 = runner.run("bubeck2021", out=os.path.join(out, "four"), progress=False)
    with kernels.use_devices(one):
        claims1 = runner.run("bubeck2021", out=os.path.join(out, "one"), progress=False)
    assert claims4 == claims1, (claims4, claims1)
    cells = sorted(f for f in os.listdir(os.path.join(out, "four", "bubeck2021")) if f.endswith(".npz"))
    assert cells == ["L=1,d=8.npz"], cells
    for f in cells:
        a, b = np.load(os.path.join(out, "four", "bubeck2021", f)), np.load(os.path.join(out, "one", "bubeck2021", f))
        assert a.files == b.files
        for k in a.files:
            np.testing.assert_array_equal(a[k], b[k])
    done["reproduce/bubeck2021"] = "bitwise"

    # The library left JAX's global state as it found it.
    assert (jax.config.jax_enable_x64, jax.config.jax_default_device, jax.config.jax_default_matmul_precision) == flags
    assert jax.sharding.get_abstract_mesh().empty
    return done


class _SetMin:
    # Hashable by value (see kernels.map_nets), so both calls reuse one compiled kernel.
    def __init__(self, apply):
        self.apply = apply

    def __hash__(self):
        return hash(self.apply)

    def __eq__(self, other):
        return isinstance(other, _SetMin) and other.apply == self.apply

    def __call__(self, p, x_set, offset):
        return jnp.min(jax.vmap(self.apply, (None, 0))(p, x_set)) + offset


def two_hosts(process_id: int, port: int) -> dict:
    """One of two processes with 2 CPU devices each, joined by ``jax.distributed`` (the README's
    multi-host recipe on one machine): the same script runs in both."""
    from jax.experimental import multihost_utils

    jax.distributed.initialize(f"localhost:{port}", num_processes=2, process_id=process_id)
    assert len(jax.local_devices()) == 2 and len(jax.devices()) == 4
    net = nets.two_layer(8, 16)
    params, xs = stacked_params(net, 7, 0), draw((5, 8), 1)  # the same arrays on every host
    with kernels.use_devices(jax.local_devices()[:1]):
        alone = kernels.evaluate(net, params, xs)
        alone_step = attacks.one_step(net, params, xs)
    # Each host its own block of networks, on its own devices (the default).
    lo, hi = [(0, 4), (4, 7)][jax.process_index()]
    mine = kernels.evaluate(net, jax.tree.map(lambda a: a[lo:hi], params), xs)
    same(mine, jax.tree.map(lambda a: a[lo:hi], alone))
    # Every device of every host as one mesh; results gathered onto each host.
    ev = kernels.evaluate(net, params, xs, devices=jax.devices())
    assert not ev.f.is_fully_addressable
    same(multihost_utils.process_allgather(ev, tiled=True), alone)
    with kernels.use_devices(jax.devices()):
        step = attacks.one_step(net, params, xs)
    same(multihost_utils.process_allgather(step, tiled=True), alone_step)
    return {"process": jax.process_index(), "per-host blocks": "bitwise", "global mesh": "bitwise"}


if __name__ == "__main__":
    # Before first use: a backend's device count is fixed once it starts (importing jaxadv starts none).
    jax.config.update("jax_platforms", "cpu")
    if sys.argv[1] == "--process":  # _multidevice_check.py --process ID PORT
        jax.config.update("jax_num_cpu_devices", 2)
        print(json.dumps(two_hosts(int(sys.argv[2]), int(sys.argv[3]))))
    else:
        jax.config.update("jax_num_cpu_devices", 4)
        print(json.dumps(main(sys.argv[1])))
