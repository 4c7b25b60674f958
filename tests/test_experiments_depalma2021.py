"""depalma2021 at a tiny scale: cells, claims computed from data, the embedding, the statistics."""

import json
import math
import os
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxadv import attacks, kernels
from jaxadv.experiments import depalma2021 as D
from jaxadv.experiments import run, runner

FC = {"kind": "mlp", "widths": [8], "weight_std": math.sqrt(2.0), "bias_std": 0.5}
# Two blocks of two networks per n, so that the cells' concatenation is exercised.
TINY = {"archs": {"fc": FC}, "sides": [2, 3], "n_net": 4, "n_x": 2, "nets_per_cell": 2,
        "bounds": [0.0, 1.0], "n_steps": 2, "t_max": 8.0, "shared_compile": True}


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setitem(runner.EXPERIMENTS, "depalma2021", D.EXPERIMENT)
    monkeypatch.setitem(D.SCALES, "quick", TINY)


def test_run_writes_cells_results_figures_and_report(tmp_path, tiny):
    claims = run("depalma2021", scale="quick", out=str(tmp_path), seed=0, progress=False)
    exp_dir = tmp_path / "depalma2021"
    expected = sorted(f"fc,n={3 * s * s},nets={a}-{b}.npz" for s in TINY["sides"] for a, b in [(0, 1), (2, 3)])
    assert sorted(f for f in os.listdir(exp_dir) if f.endswith(".npz")) == expected
    cell = np.load(exp_dir / expected[0])
    assert cell["norms_l2_attack"].shape == (3, 2, 2) and cell["x_norms"].shape == (3, 2, 2)
    assert cell["t_line"].shape == (2, 2) and float(cell["pad_leak"]) == 0.0
    res = json.loads((exp_dir / "results.json").read_text())
    assert res["config"]["n_net"] == 4 and res["environment"]["dtype"] == "float32"
    assert {c["id"] for c in res["claims"]} == {c["id"] for c in claims["depalma2021"]}
    assert len(res["claims"]) == 10
    assert all(set(c) == {"id", "statement", "paper_value", "measured", "holds"} for c in res["claims"])
    assert res["figures"] == ["depalma2021_fig1.png", "depalma2021_fig2.png", "depalma2021_fig3.png", "depalma2021_segment.png"]
    for f in res["figures"]:
        assert (exp_dir / f).stat().st_size > 10_000
    assert "depalma2021" in (tmp_path / "REPORT.md").read_text()
    # Same seed, same numbers (the compiled attacks are reused: this rerun is cheap).
    run("depalma2021", scale="quick", out=str(tmp_path / "again"), seed=0, progress=False)
    for f in expected:
        a, b = np.load(exp_dir / f), np.load(tmp_path / "again" / "depalma2021" / f)
        for k in a.files:
            np.testing.assert_array_equal(a[k], b[k])


def test_grids_and_cell_names():
    paper = D.SCALES["paper"]
    ns = [3 * s * s for s in paper["sides"]]
    assert ns[0] == 432 and ns[-1] == 10800 and len(ns) == 13  # the code's range(12, 61, 4)
    assert set(paper["archs"]) == {"fc", "resnet"} and paper["archs"]["resnet"]["depth"] == 20
    assert paper["n_net"] * paper["n_x"] == 2000  # 200 networks × 10 points
    for scale in ("quick", "paper"):
        cfg = {"seed": 0, **D.SCALES[scale], "images": None}  # the image part: test_experiments_depalma2021_trained
        names = [name for name, _ in D.cells(cfg)]
        expected = sum(len(D._sides(cfg, a)) * len(D._blocks(D._grid(cfg, a))) for a in cfg["archs"])
        assert len(names) == len(set(names)) == expected
        assert all(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.=,+-]*", n) for n in names)
        json.dumps(D.SCALES[scale])  # JSON-ready


# ---------------------------------------------------------------------------------------
# claims from synthetic data


def _synthetic(cfg, *, slopes=(0.5, 0.0, -0.5), profile="gauss", segment="flat", l1_tiny=False, beaten=0.0, seed=0,
               nobox_slopes=None):
    """Cells whose ℓp distances are c·n^{slope_p}·Z with one Z per pair shared by the norms."""
    rng = np.random.default_rng(seed)
    res = {}
    for s in cfg["sides"]:
        n = 3 * s * s
        for block in D._blocks(cfg):
            shape = (block[1] - block[0], cfg["n_x"])
            z = np.abs(rng.standard_normal(shape)) + 1e-3 if profile == "gauss" else np.sqrt(rng.uniform(size=shape))
            x_norms = np.stack([np.full(shape, n / 2), np.full(shape, math.sqrt(n / 3)), np.ones(shape)])
            d = [z * n**slopes[0] * (1e-6 if l1_tiny else 1.0), z * n**slopes[1], z * n**slopes[2]]
            cell = {"x_norms": x_norms, "pad_leak": np.asarray(0.0)}
            for i, name in enumerate(D._NORM_KEYS):
                # Each attack's perturbation: its own norm is d_p, the others twice the others' minima.
                norms = np.stack([d[j] * (1.0 if j == i else 2.0) for j in range(3)])
                cell[f"norms_{name}_attack"] = norms
                cell[f"success_{name}"] = np.ones(shape, bool)
                if nobox_slopes is not None:  # the unboxed attacks: own norm z·n^slope
                    cell[f"norms_{name}_attack_nobox"] = np.stack([z * n**nobox_slopes[i]] * 3)
                    cell[f"success_{name}_nobox"] = np.ones(shape, bool)
            if beaten:
                k = round(beaten * shape[0] * shape[1])
                cell["norms_l2_attack"][0].ravel()[:k] = 0.5 * d[0].ravel()[:k]  # a shorter ℓ1 witness
            ratio = rng.uniform(0.3, 3.0, shape)
            ratio[rng.uniform(size=shape) < 0.5] = np.inf  # half the lines never cross
            if segment == "shrinking":
                ratio = ratio * 0.5 / math.sqrt(n)  # distance ∝ ‖x0‖₂/√n, like the adversarial one
            cell["t_line"] = ratio * math.sqrt(n / 3)
            res[D._cell_name("fc", n, block)] = cell
    return res


SYN = {"archs": {"fc": FC}, "sides": [10, 20, 40], "n_net": 200, "n_x": 5, "nets_per_cell": 100,
       "bounds": [0.0, 1.0], "n_steps": 2, "t_max": 8.0, "shared_compile": False, "seed": 0}


def _holds(results):
    return {c.id.split("/")[1].removeprefix("fc-"): c.holds for c in D.claims(SYN, results)}


def test_claims_hold_on_data_with_the_predicted_scaling():
    good = _holds(_synthetic(SYN))
    assert all(good.values()), good


@pytest.mark.parametrize(
    ("kwargs", "fails"),
    [
        ({"slopes": (0.0, 0.0, -0.5)}, {"l1-slope", "norm-ratio-slopes", "relative-slopes"}),
        ({"slopes": (0.5, 0.5, -0.5)}, {"l2-slope", "norm-ratio-slopes", "relative-slopes"}),
        ({"slopes": (0.5, 0.0, 0.0)}, {"linf-slope", "norm-ratio-slopes", "relative-slopes"}),
        ({"profile": "sqrt"}, {"l1-profile-linear"}),
        ({"segment": "shrinking"}, {"segment-guarantee", "segment-finite-fraction"}),
        ({"l1_tiny": True}, {"l1-guarantee"}),
        ({"beaten": 0.05}, {"min-norm-consistent"}),
    ],
)
def test_each_claim_fails_on_data_where_it_is_false(kwargs, fails):
    holds = _holds(_synthetic(SYN, **kwargs))
    assert {k for k, v in holds.items() if not v} == fails, holds


def test_the_unboxed_attacks_get_their_own_slope_claim():
    assert "slopes-without-box" not in _holds(_synthetic(SYN))  # only where the attacks ran without the box
    assert _holds(_synthetic(SYN, nobox_slopes=(0.5, 0.0, -0.5)))["slopes-without-box"] is True
    holds = _holds(_synthetic(SYN, nobox_slopes=(0.5, 0.3, -0.5)))
    assert {k for k, v in holds.items() if not v} == {"slopes-without-box"}


def test_architectures_may_have_their_own_grid():
    cfg = {**SYN, "archs": {"fc": FC, "resnet": {"kind": "resnet", "depth": 8, "filters": [2, 2, 2], "sides": [4, 8],
                                                    "n_net": 6, "nets_per_cell": 3}}}
    names = [name for name, _ in D.cells(cfg)]
    assert [n for n in names if n.startswith("resnet")] == [
        "resnet,n=48,nets=0-2", "resnet,n=48,nets=3-5", "resnet,n=192,nets=0-2", "resnet,n=192,nets=3-5"]
    assert len([n for n in names if n.startswith("fc")]) == 3 * 2  # the grid's sides and blocks
    assert D.smoothness_m(cfg["archs"]["resnet"], 8) == 4.0 and D.smoothness_m(FC, 8) == 1.0
    assert D._network(cfg["archs"]["resnet"], 8).input_shape == (8, 8, 3)


@pytest.mark.slow  # ~1 min: XLA compiles min_norm per (n, norm, box) on a residual net
def test_residual_network_cells_with_and_without_the_box():
    spec = {"kind": "resnet", "depth": 8, "filters": [4, 4, 4], "sides": [4], "n_net": 2, "nets_per_cell": 2}
    cfg = {**SYN, "archs": {"resnet": spec}, "n_x": 2, "nobox_archs": ["resnet"]}
    (name, compute), = D.cells(cfg)
    cell = compute()
    assert name == "resnet,n=48,nets=0-1" and cell["norms_l2_attack"].shape == (3, 2, 2)
    for suffix in ("", "_nobox"):
        ok = cell[f"success_l2{suffix}"]
        assert ok.any()
        # the ℓp attack's own distance is finite exactly where it succeeded
        assert np.array_equal(np.isfinite(cell[f"norms_l2_attack{suffix}"][1]), ok)
    assert float(cell["pad_leak"]) == 0.0 and cell["t_line"].shape == (2, 2)


def test_failed_attacks_fail_the_consistency_claim():
    res = _synthetic(SYN)
    cell = res[D._cell_name("fc", 300, (0, 100))]
    cell["success_linf"][0, 0] = False
    cell["norms_linf_attack"][:, 0, 0] = np.inf
    assert not _holds(res)["min-norm-consistent"]


# ---------------------------------------------------------------------------------------
# the statistics against ground truth


def test_fit_slope_recovers_a_power_law_and_its_standard_error():
    # Medians of 400 |N(0,1)|·n^{0.3} samples: the log-median has SD ≈ 1/(2√N·f(m)·m) with
    # f the |N| density at its median m = 0.674: 1/(2·20·0.636·0.674) = 0.058. The OLS slope
    # over ln n ∈ ln{100, 400, 1600, 6400} then has SE 0.058/√Σ(x−x̄)² = 0.058/√(5·ln4²) = 0.0188.
    rng = np.random.default_rng(1)
    ns = [100, 400, 1600, 6400]
    samples = [np.abs(rng.standard_normal((400, 1))) * n**0.3 for n in ns]
    slope, se, _ = D._fit_slope(ns, samples, seed=0)
    assert abs(se / 0.0188 - 1) < 0.2  # 400 bootstrap replicates: the SE itself is within ~±7%
    assert abs(slope - 0.3) < 4 * 0.0188


def test_log_allowance_is_the_secant_of_half_ln_ln_n():
    assert D.log_allowance([48, 768]) == pytest.approx(0.5 * (math.log(math.log(768)) - math.log(math.log(48))) / math.log(16))
    assert 0.09 < D.log_allowance([48, 768]) < 0.1 and 0.06 < D.log_allowance([432, 10800]) < 0.07


def test_profile_fit_matches_the_paper_fit_and_its_alternatives():
    q = np.linspace(0, 1, 4000)
    assert D.profile_fit(3 * q)["intercept_ratio"] == pytest.approx(0, abs=1e-9)
    assert D.profile_fit(3 * q)["slope"] == pytest.approx(3)
    assert D.profile_fit(np.sqrt(q))["intercept_ratio"] == pytest.approx(0.25, abs=0.01)  # documented alternative
    assert D.profile_fit(q**2)["intercept_ratio"] == pytest.approx(-0.2, abs=0.01)
    y = np.array([3.0, np.inf, 1.0, 2.0, 0.0])
    assert np.array_equal(D.profile_fit(y)["y"], [0.0, 1.0, 2.0, 3.0])  # failures dropped, sorted


def test_theorem_constants():
    assert D.segment_ratio(1.0) == pytest.approx(math.pi / (2 + math.pi))
    # Eq. (10) at n = 3072 (CIFAR-sized), by hand: √ln 12288 = 3.0686, √(ln 3072·ln 6144) = 8.3695,
    # √π/(12·3.0686 + 8·8.3695 + 2√π) = 1.77245/107.324 = 0.016515.
    assert D.corollary1_l1_ratio(3072, 1.0) == pytest.approx(0.016515, rel=1e-4)
    assert D.corollary1_l1_ratio(3072, 4.0) == pytest.approx(0.016515 / 4, rel=1e-4)  # ∝ 1/M
    assert D.crossing_mean(np.array([0.5, np.inf, 2.0, 0.1])) == pytest.approx(0.3)
    assert math.isnan(D.crossing_mean(np.array([np.inf, 2.0])))


def test_guarantee_excess_and_margin():
    ratios = [np.full((100, 1), 0.001)]  # every pair below every r_δ: fraction 1
    excess, margin = D.guarantee_excess(ratios, lambda delta, k: delta, 1)
    assert excess == pytest.approx(1 - min(D.DELTAS))
    assert margin == pytest.approx(math.sqrt(math.log(len(D.DELTAS) / D.ALPHA) / 200))
    excess, _ = D.guarantee_excess([np.full((100, 1), np.inf)], lambda delta, k: delta, 1)
    assert excess == pytest.approx(-min(D.DELTAS))


# ---------------------------------------------------------------------------------------
# the embedding used by shared_compile


def test_embedded_network_is_the_n_dimensional_network():
    # TINY's shapes (n = 12 in ℝ^27, 2 networks × 2 inputs): the compiled draw is shared with the run above.
    n, n_pad, count, key = 12, 27, 2, jax.random.key(5)
    big = D.network(FC, (n_pad,))
    params, xs, u = D._draw_embedded(big, key, jnp.asarray(n), count, 2)
    w = np.asarray(params["hidden"][0]["W"])
    assert np.all(w[..., n:] == 0) and np.all(np.asarray(xs)[..., n:] == 0) and np.all(np.asarray(u)[..., n:] == 0)
    np.testing.assert_allclose(np.linalg.norm(np.asarray(u), axis=-1), 1, rtol=1e-5)
    x_used = np.asarray(xs)[..., :n]
    assert x_used.min() >= 0 and x_used.max() < 1
    # The weights are mlp(n_pad)'s own draw, N(0, σ_W²/n_pad), times √(n_pad/n) on the used
    # columns: exactly mlp(n)'s law N(0, σ_W²/n); every other tensor is mlp(n_pad)'s, whose
    # fan-ins (the hidden widths) do not depend on n.
    ref = kernels.init_many(big, jax.random.split(key, 3)[0], count)
    np.testing.assert_allclose(w[..., :n], np.asarray(ref["hidden"][0]["W"])[..., :n] * math.sqrt(n_pad / n), rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(params["readout"]["w"]), np.asarray(ref["readout"]["w"]))
    # f is the n-dimensional network's f, at the inputs and anywhere off the used coordinates.
    small = D.network(FC, (n,))
    params_n = {"hidden": [{**params["hidden"][0], "W": params["hidden"][0]["W"][..., :n]}], "readout": params["readout"]}
    f_big = kernels.forward(big, params, xs)
    f_small = kernels.forward(small, params_n, xs[..., :n])
    np.testing.assert_allclose(np.asarray(f_big), np.asarray(f_small), rtol=2e-5, atol=2e-6)
    junk = xs.at[..., n:].set(7.0)
    np.testing.assert_array_equal(np.asarray(kernels.forward(big, params, junk)), np.asarray(f_big))


@pytest.mark.slow
@pytest.mark.parametrize("norm", [1, 2, math.inf])
def test_embedded_attack_matches_the_n_dimensional_attack(norm):
    n, n_pad = 27, 75
    spec = {"kind": "mlp", "widths": [16], "weight_std": math.sqrt(2.0), "bias_std": 0.5}
    params, xs, _ = D._draw_embedded(D.network(spec, (n_pad,)), jax.random.key(3), jnp.asarray(n), 5, 4)
    params_n = {"hidden": [{**params["hidden"][0], "W": params["hidden"][0]["W"][..., :n]}], "readout": params["readout"]}
    big = attacks.min_norm(D.network(spec, (n_pad,)), params, xs, norm=norm, bounds=(0.0, 1.0))
    small = attacks.min_norm(D.network(spec, (n,)), params_n, xs[..., :n], norm=norm, bounds=(0.0, 1.0))
    assert bool(jnp.all(big.success == small.success))
    assert float(jnp.max(jnp.abs(big.x_adv[..., n:]))) == 0.0
    # Same iterations on the same numbers, up to float32 summation order over the extra zeros.
    np.testing.assert_allclose(np.asarray(big.distance), np.asarray(small.distance), rtol=1e-3)


@pytest.mark.slow
def test_quick_scale_claims_hold(tmp_path, monkeypatch):
    from jaxadv import data

    monkeypatch.setitem(runner.EXPERIMENTS, "depalma2021", D.EXPERIMENT)
    monkeypatch.setenv("JAXADV_DATA_DIR", str(tmp_path / "no-datasets"))  # hermetic: no user's files
    (tmp_path / "no-datasets").mkdir()
    claims = run("depalma2021", scale="quick", out=str(tmp_path), seed=0, progress=False)
    rows = claims["depalma2021"]
    assert not [c for c in rows if c["holds"] is False], [c for c in rows if c["holds"] is False]
    # Without dataset files only the image part's dataset-specific statements go untested.
    untested = {c["id"] for c in rows if c["holds"] is None}
    assert all(i.split("/")[1].startswith(("mnist-", "cifar10-")) for i in untested), untested
    if data.available("digits"):  # the digits stand in for MNIST: Fig 3's profile is judged on them
        assert "depalma2021/mnist-profile-linear" not in untested
