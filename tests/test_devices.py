"""Many devices = one device: one child process with 4 simulated CPU devices runs every check
(tests/_multidevice_check.py: kernels, one_step, map_nets, a tiny `reproduce`), and this
single-device process checks the child's sharded numbers against its own."""

import json
import os
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest
from _multidevice_check import draw, stacked_params

from jaxadv import kernels, nets

CHECK = os.path.join(os.path.dirname(__file__), "_multidevice_check.py")


def test_four_devices_give_the_results_of_one_device(tmp_path):
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    # The child sets its device count through jax_num_cpu_devices; a host-platform count in
    # XLA_FLAGS would fight it.
    env["XLA_FLAGS"] = " ".join(f for f in env.get("XLA_FLAGS", "").split() if "xla_force_host_platform_device_count" not in f)
    proc = subprocess.run([sys.executable, CHECK, str(tmp_path)], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-6000:]
    done = json.loads(proc.stdout.strip().splitlines()[-1])
    assert done == {
        "evaluate/networks": "bitwise",
        "evaluate/chunked-per-device": "float32 rounding",
        "forward+evaluate/inputs": "float32 rounding",
        "one_step": "bitwise",
        "map_nets": "bitwise",
        "reproduce/bubeck2021": "bitwise",
    }
    # The child's 7 networks split over 4 devices against this process's single device.
    net = nets.mlp(12, [24, 12], bias=True)
    here = kernels.evaluate(net, stacked_params(net, 7, 0), draw((6, 12), 10))
    child = np.load(tmp_path / "evaluate.npz")
    np.testing.assert_array_equal(child["f"], np.asarray(here.f))
    np.testing.assert_array_equal(child["grad"], np.asarray(here.grad))


def test_one_device_runs_the_unsharded_kernel():
    # This process has one device: nothing is split, the plain jitted kernel runs.
    assert len(jax.local_devices()) == 1
    net = nets.two_layer(7, 11)
    params, xs = stacked_params(net, 3, 0), draw((5, 7), 1)
    p = kernels.plan(net, params, xs)
    assert (p.n_devices, p.sharded_axis) == (1, None)
    before = kernels._map_pairs._cache_size()
    out = kernels.evaluate(net, params, xs)
    assert kernels._map_pairs._cache_size() == before + 1 and kernels._map_pairs_sharded._cache_size() == 0
    np.testing.assert_array_equal(out.f, kernels.evaluate(net, params, xs, devices=jax.local_devices()).f)
    with kernels.use_devices(jax.local_devices()[:1]):
        np.testing.assert_array_equal(out.f, kernels.forward(net, params, xs))


@pytest.mark.parametrize("devices", [[], "cpu", [0], 3])
def test_devices_that_are_not_devices_are_refused(devices):
    net = nets.two_layer(6, 8)
    params, xs = stacked_params(net, 2, 0), draw((3, 6), 1)
    with pytest.raises(TypeError, match="`devices` must be a non-empty sequence of JAX devices"):
        kernels.evaluate(net, params, xs, devices=devices)
    with pytest.raises(TypeError, match="`devices` must be a non-empty sequence of JAX devices"):
        with kernels.use_devices(devices):
            pass
    with pytest.raises(ValueError, match="`devices` must list each device once"):
        kernels.evaluate(net, params, xs, devices=jax.local_devices() * 2)


@pytest.mark.slow
def test_two_processes_joined_by_jax_distributed(tmp_path):
    # The README's multi-host recipe, with two processes of 2 CPU devices on this machine.
    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    env["XLA_FLAGS"] = " ".join(f for f in env.get("XLA_FLAGS", "").split() if "xla_force_host_platform_device_count" not in f)
    procs = [subprocess.Popen([sys.executable, CHECK, "--process", str(i), str(port)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-6000:]
    assert sorted(json.loads(out.strip().splitlines()[-1])["process"] for out, _ in outs) == [0, 1]
