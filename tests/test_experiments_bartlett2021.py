"""bartlett2021 at a tiny scale: cells, claims computed from data, figures; its helpers against ground truth."""

import json
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxadv import kernels, nets, theory
from jaxadv.experiments import bartlett2021, run, runner

TINY = {
    "depth": 3,
    "architectures": bartlett2021.SCALES["quick"]["architectures"],
    "dims": [16],  # one d keeps the end-to-end run short; the claims over d run on synthetic data below
    "pad_widths": True,
    "n_net": 3,
    "n_x": 2,
    "eta_max": 1000.0,
    "ray": [0.5, 16.0, 9],
    "radii": [0.3, 1.0, 3.0],
    "deep": {"d": 4, "width": 16, "depth": 4, "n_net": 3, "n_points": 6, "thetas": [0.5, 1.5, 2.5]},
    "map_depths": [1, 10, 100],
}
CFG = {"experiment": "bartlett2021", "scale": "quick", "seed": 0, **TINY, "dims": [8, 16]}
IDS = {
    "one-step-switches", "one-step-full-statement", "step-falls-like-1-over-sqrt-d", "lemma2.2-gradient-bounds",
    "lemma2.2-output-bound", "lemma2.2-exact-moments", "lemma2.8-grows-with-radius", "lemma2.8-locally-linear",
    "lemma3.2-correlation-map", "lemma3.2-iterated-map", "theorem3.1-variation-shrinks-with-depth", "iterated-map-asymptote",
}


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setitem(bartlett2021.SCALES, "quick", TINY)
    monkeypatch.setitem(runner.EXPERIMENTS, "bartlett2021", bartlett2021.EXPERIMENT)


def test_run_writes_cells_results_and_figure(tmp_path, tiny):
    claims = run("bartlett2021", scale="quick", out=str(tmp_path), seed=0, progress=False)
    exp_dir = tmp_path / "bartlett2021"
    cells = sorted(f for f in os.listdir(exp_dir) if f.endswith(".npz"))
    assert cells == sorted([f"arch={a},d={d}.npz" for a in TINY["architectures"] for d in TINY["dims"]] + ["deep.npz", "map.npz"])
    res = json.loads((exp_dir / "results.json").read_text())
    assert {c["id"] for c in res["claims"]} == {f"bartlett2021/{i}" for i in IDS} == {c["id"] for c in claims["bartlett2021"]}
    assert all(set(c) == {"id", "statement", "paper_value", "measured", "holds"} for c in res["claims"])
    assert (exp_dir / "bartlett2021.png").stat().st_size > 10_000
    cell = np.load(exp_dir / "arch=bottleneck,d=16.npz")
    assert cell["widths"].tolist() == [16, 8, 16] and cell["ray_q"].shape == (3, 2, 9) and cell["rel_step"].shape == (3, 2, 3)
    assert np.load(exp_dir / "deep.npz")["pair"].shape == (3, 4, 3, 3)
    # Same seed, same numbers: every cell computed again (its kernels compiled already).
    for name, compute in bartlett2021.cells(runner.config_of("bartlett2021", "quick", seed=0)):
        a, b = np.load(exp_dir / f"{name}.npz"), compute()
        assert set(a.files) == set(b)
        for k in a.files:
            np.testing.assert_array_equal(a[k], b[k])


# ---------------------------------------------------------------------------------------
# claims from synthetic results


def _ideal(cfg=CFG):
    """Results on which every claim holds: a linear-looking f, exact moments, exact κ^ℓ."""
    ell, n_net, n_x = cfg["depth"], cfg["n_net"], cfg["n_x"]
    lo, hi, n_tau = cfg["ray"]
    taus = np.geomspace(lo, hi, n_tau)
    radii = np.asarray(cfg["radii"])
    res = {}
    for arch, spec in cfg["architectures"].items():
        for d in cfg["dims"]:
            gn = np.full((n_net, n_x), 2.0 ** (-ell / 2))
            f = gn * np.where(np.arange(n_x) % 2 == 0, 1.0, -1.0)  # |f|/‖∇f‖ = 1 = ‖x‖/√d
            res[f"arch={arch},d={d}"] = {
                "success": np.ones((n_net, n_x), bool), "eta": -f / gn**2, "distance": np.ones((n_net, n_x)),
                "grad_norm": gn, "f": f, "ray_q": np.broadcast_to(1 - taus, (n_net, n_x, n_tau)).copy(),
                "rel_random": np.broadcast_to(0.3 * radii * d**-0.25, (n_net, n_x, len(radii))).copy(),
                "rel_step": np.broadcast_to(0.4 * radii * d**-0.25, (n_net, n_x, len(radii))).copy(),
                "widths": np.asarray(bartlett2021._widths(spec, d)),
            }
    c = cfg["deep"]
    L, th = c["depth"], np.asarray(c["thetas"])
    kappa = np.asarray(theory.iterated_relu_correlation(np.cos(th), L), float)
    pair = np.stack([kappa, np.ones_like(kappa), np.ones_like(kappa)], -1)[None].repeat(c["n_net"], 0)
    v2 = 0.8 / np.arange(1, L + 1)  # a variation that falls with depth
    sphere = np.stack([np.ones(L), 1 - v2], -1)[None].repeat(c["n_net"], 0)
    res["deep"] = {"pair": pair, "sphere": sphere, "f": np.ones((c["n_net"], L, c["n_points"])), "thetas": th,
                   "kappa": kappa, "kappa_fine": kappa, "variation_pred": v2}
    m = max(cfg["map_depths"])
    res["map"] = {"gap": np.asarray(theory.iterated_relu_correlation_gap(1.0, m), float), "depth": np.arange(1, m + 1),
                  "asymptote": np.asarray(theory.correlation_gap_asymptote(np.arange(1.0, m + 1)), float)}
    return res


def _holds(res, cfg=CFG):
    return {c.id.split("/")[1]: c.holds for c in bartlett2021.claims(cfg, res)}


def test_claims_hold_on_ideal_data():
    # map_depths up to 10⁴: the asymptote is within 1% there (not at 100).
    cfg = {**CFG, "map_depths": [1, 10, 100, 1000, 10_000]}
    assert set(_holds(_ideal(cfg), cfg)) == IDS
    assert all(_holds(_ideal(cfg), cfg).values()), _holds(_ideal(cfg), cfg)


def _broken(claim):
    """Ideal data altered so that exactly the named claim is false."""
    cfg = {**CFG, "map_depths": [1, 10, 100, 1000, 10_000]}
    res = _ideal(cfg)
    top, low = max(cfg["dims"]), min(cfg["dims"])
    cells = [k for k in res if k.startswith("arch=")]
    if claim == "one-step-switches":
        r = res[f"arch=equal,d={top}"]
        r["success"][:] = False
        r["eta"][:] = r["distance"][:] = np.inf
    elif claim == "one-step-full-statement":
        res[f"arch=shrinking,d={top}"]["ray_q"][:] = 0.5  # never reaches −f(x) at the largest d
    elif claim == "step-falls-like-1-over-sqrt-d":
        for k in cells:
            res[k]["distance"] = res[k]["distance"] * math.sqrt(int(k.split("d=")[1]))  # ratio constant in d
    elif claim == "lemma2.2-gradient-bounds":
        r = res[f"arch=expanding,d={top}"]
        r["grad_norm"] = r["grad_norm"] * 0.01  # below 2^-(ℓ+1) (f, distance follow)
        r["f"] = r["f"] * 0.01
        r["eta"] = -r["f"] / r["grad_norm"] ** 2
    elif claim == "lemma2.2-output-bound":
        r = res[f"arch=equal,d={low}"]
        r["f"] = r["f"] * 1e3
        r["grad_norm"] = r["grad_norm"] * 1e3 / 2 ** (TINY["depth"] + 1)  # keep |f|/‖∇f‖ moderate
    elif claim == "lemma2.2-exact-moments":
        for k in cells:
            res[k]["f"] = res[k]["f"] * 1.5  # E f² = 2.25·2^-ℓ
    elif claim == "lemma2.8-grows-with-radius":
        r = res[f"arch=bottleneck,d={low}"]
        r["rel_random"] = r["rel_random"][..., ::-1].copy()
    elif claim == "lemma2.8-locally-linear":
        for k in cells:
            if k.startswith("arch=bottleneck"):
                d = int(k.split("d=")[1])
                res[k]["rel_random"] = res[k]["rel_random"] * d  # grows with d
                res[k]["rel_step"] = res[k]["rel_step"] * d
    elif claim == "lemma3.2-correlation-map":
        res["deep"]["pair"][:, 0, 1, 0] += np.array([0.25, 0.3, 0.35])  # layer 1 off by 0.3, jackknife s.e. 0.03
    elif claim == "lemma3.2-iterated-map":
        res["deep"]["pair"][:, -1, 0, 0] -= np.array([0.55, 0.6, 0.65])  # off by 0.6 > 4 s.e. + ℓ/k = 0.37
    elif claim == "theorem3.1-variation-shrinks-with-depth":
        res["deep"]["sphere"][:, :, 1] = res["deep"]["sphere"][:, ::-1, 1]  # variation grows with depth
    elif claim == "iterated-map-asymptote":
        res["map"]["gap"] = res["map"]["gap"] * 1.05
    return cfg, res


@pytest.mark.parametrize("claim", sorted(IDS))
def test_each_claim_is_computed_from_the_data(claim):
    cfg, res = _broken(claim)
    holds = _holds(res, cfg)
    assert holds[claim] is False, holds


# ---------------------------------------------------------------------------------------
# the helpers against ground truth


def test_deep_statistics_match_nets_mlp():
    # The deep cell's layer-by-layer forward pass against the library's NN-DEF network.
    d, k, L = 5, 12, 3
    rng = np.random.default_rng(0)
    w1 = rng.normal(size=(k, d)) / math.sqrt(d)
    ws = rng.normal(size=(L - 1, k, k)) / math.sqrt(k)
    rs = rng.normal(size=(L, k)) / math.sqrt(k)
    xa, ya, pts = rng.normal(size=(2, d)), rng.normal(size=(2, d)), rng.normal(size=(4, d))
    pair, sphere, f = (np.asarray(a) for a in bartlett2021._deep_stats(*(jnp.asarray(a, jnp.float32) for a in (w1, ws, rs, xa, ya, pts))))
    for ell in range(1, L + 1):
        net = nets.mlp(d, [k] * ell)
        params = {"hidden": [{"W": jnp.asarray(w, jnp.float32)} for w in [w1, *ws[: ell - 1]]], "readout": {"w": jnp.asarray(rs[ell - 1], jnp.float32)}}
        np.testing.assert_allclose(f[ell - 1], kernels.forward(net, params, jnp.asarray(pts, jnp.float32)), rtol=1e-5, atol=1e-6)
        hx, hy = np.maximum(xa @ w1.T, 0), np.maximum(ya @ w1.T, 0)
        for w in ws[: ell - 1]:
            hx, hy = np.maximum(hx @ w.T, 0), np.maximum(hy @ w.T, 0)
        np.testing.assert_allclose(pair[ell - 1], np.stack([np.sum(hx * hy, -1), np.sum(hx * hx, -1), np.sum(hy * hy, -1)], -1), rtol=1e-4)
    assert sphere.shape == (L, 2) and np.all(sphere[:, 1] <= sphere[:, 0] + 1e-6)


def test_padding_keeps_the_function():
    # The quick scale runs every architecture zero-padded to one layout per d (one compile per
    # d); the paper scale runs them unpadded. The whole cell must agree: same networks, same
    # inputs, the same function — up to float rounding of sums with extra zero terms.
    d = 16
    assert bartlett2021._common_widths(TINY, d) == [16, 16, 32]
    draw = bartlett2021._draw_mlp(jax.random.key(1), d, [16, 8, 16])
    padded = bartlett2021._pad_mlp(draw, d, [16, 16, 32])
    assert padded["hidden"][1]["W"].shape == (16, 16) and not padded["hidden"][2]["W"][16:].any()
    a = bartlett2021._arch_cell({**CFG, "pad_widths": True}, "arch=bottleneck,d=16", "bottleneck", d)
    b = bartlett2021._arch_cell({**CFG, "pad_widths": False}, "arch=bottleneck,d=16", "bottleneck", d)
    np.testing.assert_array_equal(a["success"], b["success"])
    np.testing.assert_array_equal(a["widths"], b["widths"])
    for k in ("f", "grad_norm", "distance", "ray_q", "rel_random", "rel_step"):
        np.testing.assert_allclose(a[k], b[k], rtol=1e-4, atol=1e-6, err_msg=k)


def test_sampler_is_one_stream_and_nn_def_scaled():
    key = jax.random.key(3)
    long = bartlett2021._normals(key, 70_000)
    np.testing.assert_array_equal(bartlett2021._normals(key, 1000), long[:1000])  # a prefix of one stream
    # NN-DEF variances: (W_1)_{jk} ~ N(0, 1/d). 4·10⁴ entries: the sample variance is within
    # 5 s.e. (s.e. of a variance √(2/n)·σ² = 0.7%) of 1/d.
    p = bartlett2021._draw_mlp(key, 200, [200, 3, 4])
    assert p["hidden"][0]["W"].shape == (200, 200) and p["readout"]["w"].shape == (4,)
    assert p["hidden"][0]["W"].var() * 200 == pytest.approx(1.0, abs=5 * math.sqrt(2 / 40_000))
    x = bartlett2021._sphere(key, (3, 50))
    np.testing.assert_allclose(np.linalg.norm(x, axis=-1), math.sqrt(50), rtol=1e-6)


def test_reflection_on_a_linear_ray_is_two():
    # For a linear f, f(x + τη_lin∇f)·sign f(x)/|f(x)| = 1 − τ: the reflection is at τ = 2 exactly
    # (linear interpolation between grid points is exact), and never where q stays above −1.
    taus = np.geomspace(0.5, 16, 33)
    q = np.stack([1 - taus, 1 - 0.25 * taus, np.full_like(taus, 0.5)])
    np.testing.assert_allclose(bartlett2021._reflection_tau(q, taus), [2.0, 8.0, np.inf])


def test_pooled_correlation_and_jackknife():
    # Identical networks: zero spread, ratio exact; two different ones: the jackknife of n = 2.
    pair = np.array([[[[0.5, 1.0, 1.0]]], [[[0.5, 1.0, 1.0]]]])
    rho, se = bartlett2021._pooled_corr(pair)
    assert rho[0, 0] == pytest.approx(0.5) and se[0, 0] == pytest.approx(0.0)
    pair = np.array([[[[0.2, 1.0, 1.0]]], [[[0.6, 1.0, 1.0]]]])
    rho, se = bartlett2021._pooled_corr(pair)
    assert rho[0, 0] == pytest.approx(0.4) and se[0, 0] == pytest.approx(0.2)  # √(1/2·(0.04 + 0.04))
