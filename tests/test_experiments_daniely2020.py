"""daniely2020 at a tiny scale: the exact embedding, the draw's law, claims computed from data, a run."""

import json
import math
import os

import jax
import numpy as np
import pytest

from jaxadv import nets
from jaxadv.experiments import daniely2020, run, runner

TINY = {"dims": [32, 64], "depths": [2], "n_net": 4, "n_x": 2, "net_chunk": 2, "step_size": 0.1,
        "max_steps": 100, "eta_max": 1000.0, "min_norm": False, "embed": True}


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setitem(runner.EXPERIMENTS, "daniely2020", daniely2020.EXPERIMENT)
    monkeypatch.setitem(daniely2020.SCALES, "quick", TINY)


def test_widths_shrink_to_sqrt_d():
    for depth in (1, 2, 3, 4):
        for d in (100, 1000, 10000):
            w = daniely2020.widths(d, depth)
            assert len(w) == depth and w[-1] == math.ceil(math.sqrt(d))
            assert all(a > b for a, b in zip([d, *w], w))  # every layer narrower than the previous
    assert daniely2020.widths(10000, 2) == [1000, 100]  # exact powers are not rounded up


def test_embedding_is_exact():
    """f and ∇f of the zero-padded network equal the original's; ∇f is 0 on the padding."""
    d, depth, big_d = 24, 3, 64
    big = (big_d, daniely2020.widths(big_d, depth))
    small_p, small_x = daniely2020.draw(np.random.default_rng(5), 3, 4, d, depth)
    big_p, big_x = daniely2020.draw(np.random.default_rng(5), 3, 4, d, depth, big)
    # The same draw: the top-left blocks are the small arrays, everything else is 0.
    for s, b in zip(jax.tree.leaves(small_p) + [small_x], jax.tree.leaves(big_p) + [big_x]):
        block = b[tuple(slice(0, n) for n in s.shape)]
        np.testing.assert_array_equal(block, s)
        assert np.count_nonzero(b) == np.count_nonzero(s)
    small_net, big_net = nets.mlp(d, daniely2020.widths(d, depth)), nets.mlp(*big)

    def value_and_grad(net, params, pts):  # per network (leading axis), per point
        per_point = jax.vmap(jax.value_and_grad(net.apply, argnums=1), in_axes=(None, 0))
        return jax.jit(jax.vmap(per_point))(params, pts)

    # At the inputs and at points around them (where other ReLUs are active).
    noise = np.random.default_rng(0).standard_normal(small_x.shape).astype(np.float32)
    pts = np.concatenate([small_x, small_x + noise], axis=1)  # (3 networks, 8 points, d)
    pad = np.zeros((*pts.shape[:2], big_d), np.float32)
    pad[..., :d] = pts
    f_s, g_s = value_and_grad(small_net, small_p, pts)
    f_b, g_b = value_and_grad(big_net, big_p, pad)
    np.testing.assert_allclose(f_b, f_s, rtol=2e-5, atol=2e-6)
    np.testing.assert_allclose(g_b[..., :d], g_s, rtol=2e-5, atol=2e-6)
    assert not np.any(np.asarray(g_b[..., d:]))  # exactly 0: steps never leave ℝ^d × {0}


def test_draw_law_and_grouping():
    """NN-DEF variances 1/fan-in, inputs on the √d sphere, and grouping-independent draws."""
    d, depth, n = 200, 2, 6
    params, xs = daniely2020.draw(np.random.default_rng(1), n, 3, d, depth)
    fan_ins = (d, *daniely2020.widths(d, depth))
    for layer, fan_in in zip(params["hidden"], fan_ins):
        z = layer["W"].ravel() * math.sqrt(fan_in)
        # Sample variance of m standard normals: standard error √(2/m); 5 of them.
        assert abs(z.var() - 1) < 5 * math.sqrt(2 / z.size)
        assert abs(z.mean()) < 5 / math.sqrt(z.size)
    np.testing.assert_allclose(np.linalg.norm(xs, axis=-1), math.sqrt(d), rtol=1e-5)
    # Networks drawn in two groups are the networks drawn at once.
    rng = np.random.default_rng(1)
    a = daniely2020.draw(rng, 4, 3, d, depth)
    b = daniely2020.draw(rng, 2, 3, d, depth)
    whole = jax.tree.map(lambda x, y: np.concatenate([x, y]), a, b)
    for u, v in zip(jax.tree.leaves(whole), jax.tree.leaves((params, xs))):
        np.testing.assert_array_equal(u, v)


def _synthetic(cfg, *, scale=lambda d: 1 / math.sqrt(d), success=1.0, os_factor=1.0, mn_factor=1.0, seed=0):
    """Results where dist/‖x‖ = scale(d)·|N(0, 1)|-like, with given success and attack ratios."""
    rng = np.random.default_rng(seed)
    res = {}
    shape = (cfg["n_net"], cfg["n_x"])
    for depth in cfg["depths"]:
        for d in cfg["dims"]:
            x_norm = np.full(shape, math.sqrt(d))
            dist = np.abs(rng.standard_normal(shape)) * scale(d) * x_norm + 1e-3
            ok = rng.random(shape) < success
            gf = np.where(ok, dist, np.inf)
            res[f"L={depth},d={d}"] = {
                "x_norm": x_norm, "f_clean": np.ones(shape), "grad_norm": np.ones(shape),
                "gf_success": ok, "gf_distance": gf, "gf_path": gf * 1.01, "gf_steps": np.ones(shape, np.int32),
                "os_success": ok, "os_distance": gf / os_factor, "mn_success": ok, "mn_distance": gf / mn_factor,
            }
    return res


CFG = {"seed": 0, "dims": [100, 300, 1000, 3000], "depths": [1, 2], "n_net": 100, "n_x": 10, "step_size": 0.1,
       "max_steps": 100}


def _holds(results):
    return {c.id: c.holds for c in daniely2020.claims(CFG, results)}


def test_claims_hold_on_data_that_agree():
    good = _holds(_synthetic(CFG))
    assert set(good) == {"daniely2020/gf-finds-sign-change", "daniely2020/distance-slope",
                         "daniely2020/normalised-distance-bounded", "daniely2020/gf-vs-one-step", "daniely2020/gf-vs-min-norm"}
    assert all(good.values()), good


def test_claims_fail_on_data_that_disagree():
    # Most pairs not flipped.
    assert not _holds(_synthetic(CFG, success=0.8))["daniely2020/gf-finds-sign-change"]
    # Distance of order ‖x‖ (robust networks): slope 0, normalised distance √d.
    robust = _holds(_synthetic(CFG, scale=lambda d: 1.0))
    assert not robust["daniely2020/distance-slope"] and not robust["daniely2020/normalised-distance-bounded"]
    # Distance ~ ‖x‖/d: slope −1 and the normalised distance 1/√d falls below the band at large d.
    fast = _holds(_synthetic(CFG, scale=lambda d: 1 / d))
    assert not fast["daniely2020/distance-slope"] and not fast["daniely2020/normalised-distance-bounded"]
    # Gradient flow twice as far as one step / half as far as min_norm.
    assert not _holds(_synthetic(CFG, os_factor=2.0))["daniely2020/gf-vs-one-step"]
    assert not _holds(_synthetic(CFG, mn_factor=0.5))["daniely2020/gf-vs-min-norm"]
    # A cell with no success at all: no finite statistic, so the claims on it cannot hold.
    none = _synthetic(CFG)
    none["L=2,d=300"]["gf_success"][:] = False
    none["L=2,d=300"]["gf_distance"][:] = np.inf
    held = _holds(none)
    assert not held["daniely2020/distance-slope"] and not held["daniely2020/normalised-distance-bounded"]
    assert not held["daniely2020/gf-vs-one-step"]


def test_slope_fit_recovers_a_power_law():
    dims = [100, 1000, 10000]
    base = np.abs(np.random.default_rng(3).standard_normal((20, 5))) + 0.1
    slope, se = daniely2020.slope_fit(dims, [base * d**-0.5 for d in dims])
    assert slope == pytest.approx(-0.5, abs=1e-9)
    # Each cell is bootstrapped on its own, so the error reflects the 20 networks' spread.
    assert 0 < se < 0.2
    # One power of ln d bends the slope by exactly the allowance over the grid.
    slope_log, _ = daniely2020.slope_fit([100, 10000], [base * d**-0.5 * math.log(d) for d in (100, 10000)])
    assert slope_log + 0.5 == pytest.approx(daniely2020.log_allowance([100, 10000]), rel=1e-9)


def test_run_writes_cells_results_and_figure(tmp_path, tiny):
    claims = run("daniely2020", scale="quick", out=str(tmp_path), seed=0, progress=False)
    exp_dir = tmp_path / "daniely2020"
    assert sorted(f for f in os.listdir(exp_dir) if f.endswith(".npz")) == sorted(
        f"L={L},d={d}.npz" for L in TINY["depths"] for d in TINY["dims"]
    )
    cell = np.load(exp_dir / "L=2,d=32.npz")
    assert cell["gf_distance"].shape == (TINY["n_net"], TINY["n_x"])
    np.testing.assert_allclose(cell["x_norm"], math.sqrt(32), rtol=1e-5)
    ok = cell["gf_success"]
    assert np.all(np.isfinite(cell["gf_distance"][ok])) and np.all(np.isinf(cell["gf_distance"][~ok]))
    assert np.all(cell["gf_path"][ok] >= cell["gf_distance"][ok] * (1 - 1e-5))  # a path is never shorter than its chord
    res = json.loads((exp_dir / "results.json").read_text())
    assert {c["id"] for c in res["claims"]} == {c["id"] for c in claims["daniely2020"]}
    assert all(set(c) == {"id", "statement", "paper_value", "measured", "holds"} for c in res["claims"])
    assert (exp_dir / "daniely2020.png").stat().st_size > 10_000
    assert "daniely2020" in (tmp_path / "REPORT.md").read_text()
