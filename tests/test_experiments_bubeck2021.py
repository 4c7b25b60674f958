"""bubeck2021 at a tiny scale: cells, claims computed from data, report, CLI, resume."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from jaxadv.experiments import CellStore, bubeck2021, config_of, run, write_report

TINY = {"dims": [8, 64], "depths": [1, 2], "n_net": 3, "n_x": 4, "eta_max": 20.0,
        "variants": list(bubeck2021.VARIANTS), "variant_dims": [64]}


@pytest.fixture
def tiny(monkeypatch):
    # Two variants are enough to run the variant cells end to end (each activation compiles anew).
    monkeypatch.setitem(bubeck2021.SCALES, "quick", {**TINY, "variants": ["tanh", "universal"]})


def _results(success_value: bool, grad=(0.7, 0.7), eta=(1.0, 1.0)):
    res = {}
    for depth in TINY["depths"]:
        for i, d in enumerate(TINY["dims"]):
            shape = (TINY["n_net"], TINY["n_x"])
            res[f"L={depth},d={d}"] = {
                "success": np.full(shape, success_value),
                "eta": np.full(shape, eta[i]),
                "grad_norm": np.full(shape, grad[i]),
                "step_norm": np.ones(shape),
            }
    res["L=2,d=8"]["success"][0, 0] = False  # the threshold grows with L: 8 for L = 1, 64 for L = 2
    for v in TINY["variants"]:
        for d in TINY["variant_dims"]:
            res[f"{v},d={d}"] = {**res[f"L=1,d={d}"], "step_norm": np.full(shape, 1.4 if v == "universal" else 1.0)}
    return res


def test_claims_are_computed_from_the_data():
    cfg = {"seed": 0, **TINY}
    good = {c.id: c.holds for c in bubeck2021.claims(cfg, _results(True))}
    assert all(good.values()), good
    # The same claims on synthetic data where they are false.
    bad = {c.id: c for c in bubeck2021.claims(cfg, _results(False, grad=(0.3, 0.9), eta=(1.0, 5.0)))}
    assert not bad["bubeck2021/L1-all-switched"].holds and bad["bubeck2021/L1-all-switched"].measured == 0.0
    assert not bad["bubeck2021/grad-norm-constant"].holds
    assert not bad["bubeck2021/eta-constant"].holds
    deeper_first = _results(True)
    deeper_first["L=1,d=8"]["success"][:] = False  # L = 1 needs a larger d than L = 2: claim false
    assert not {c.id: c.holds for c in bubeck2021.claims(cfg, deeper_first)}["bubeck2021/threshold-grows-with-L"]
    assert {"bubeck2021/variants-switched", "bubeck2021/universal-step-length"} <= set(good)
    tie = _results(True)
    tie["L=2,d=8"]["success"][:] = True  # the same threshold for every L: does not grow
    assert not {c.id: c.holds for c in bubeck2021.claims(cfg, tie)}["bubeck2021/threshold-grows-with-L"]
    never = _results(False)  # no depth reaches 100%: every threshold ∞, nothing measured, not "holds"
    assert not {c.id: c.holds for c in bubeck2021.claims(cfg, never)}["bubeck2021/threshold-grows-with-L"]
    stuck = _results(True)
    stuck["universal,d=64"]["success"][:] = False  # the universal step never switched: no finite ratio
    assert not {c.id: c.holds for c in bubeck2021.claims(cfg, stuck)}["bubeck2021/universal-step-length"]
    weak = _results(True)
    weak["tanh,d=64"]["success"][0, :] = False  # a quarter of the tanh inputs stay unswitched
    weak["universal,d=64"]["step_norm"][:] = 2.5  # 2.5× the gradient step's length
    weak_claims = {c.id: c for c in bubeck2021.claims(cfg, weak)}
    assert not weak_claims["bubeck2021/variants-switched"].holds
    assert not weak_claims["bubeck2021/universal-step-length"].holds and weak_claims["bubeck2021/universal-step-length"].measured == 2.5


def test_run_writes_cells_results_figures_and_report(tmp_path, tiny):
    claims = run("bubeck2021", scale="quick", out=str(tmp_path), seed=0, progress=False)
    exp_dir = tmp_path / "bubeck2021"
    assert sorted(f for f in os.listdir(exp_dir) if f.endswith(".npz")) == sorted(
        [f"L={L},d={d}.npz" for L in TINY["depths"] for d in TINY["dims"]]
        + [f"{v},d={d}.npz" for v in ["tanh", "universal"] for d in TINY["variant_dims"]]
    )
    res = json.loads((exp_dir / "results.json").read_text())
    assert res["config"]["n_net"] == 3 and res["environment"]["jax"] and res["environment"]["dtype"] == "float32"
    assert {c["id"] for c in res["claims"]} == {c["id"] for c in claims["bubeck2021"]}
    assert all(set(c) == {"id", "statement", "paper_value", "measured", "holds"} for c in res["claims"])
    assert (exp_dir / "bubeck2021.png").stat().st_size > 10_000
    report = (tmp_path / "REPORT.md").read_text()
    # `jaxadv report` rebuilds the same REPORT.md from saved results, without recomputing.
    os.remove(tmp_path / "REPORT.md")
    write_report(str(tmp_path))
    assert (tmp_path / "REPORT.md").read_text() == report
    # Same seed, same numbers: every cell computed again from the saved configuration (its
    # kernels compiled already).
    for name, compute in bubeck2021.cells(res["config"]):
        a, b = np.load(exp_dir / f"{name}.npz"), compute()
        assert set(a.files) == set(b)
        for k in a.files:
            np.testing.assert_array_equal(a[k], b[k])


def test_bad_names_scales_and_configs(tmp_path, tiny):
    with pytest.raises(ValueError, match="unknown experiment"):
        run("bubeck2020", out=str(tmp_path), progress=False)
    with pytest.raises(ValueError, match="`scale` must be one of"):
        run("bubeck2021", scale="huge", out=str(tmp_path), progress=False)
    # Results of seed 0 on disk (the store the run would write; its refusal logic is tested
    # with the store): a run with seed 1 is refused before any cell is computed.
    CellStore(str(tmp_path), "bubeck2021", config_of("bubeck2021", "quick", seed=0))
    with pytest.raises(ValueError, match="different configuration"):
        run("bubeck2021", scale="quick", out=str(tmp_path), seed=1, progress=False)
    assert not [f for f in os.listdir(tmp_path / "bubeck2021") if f.endswith(".npz")]


def test_cli_list_and_errors(tmp_path):
    out = subprocess.run([sys.executable, "-m", "jaxadv", "list"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.startswith("bubeck2021")
    bad = subprocess.run([sys.executable, "-m", "jaxadv", "reproduce", "nope", "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "unknown experiment" in bad.stderr


def test_networks_drawn_and_attacked_in_blocks_equal_one_block(monkeypatch):
    # Paper-scale cells hold a block of networks at a time (a network at d = k = 10⁴, L = 6
    # is 2.4 GB). Network j must not depend on the block size, and neither may its results
    # (up to float rounding: a block's batched products may sum in another order).
    cfg = {"seed": 1, **TINY, "n_net": 4}
    whole = bubeck2021._one_step_cell(cfg, "L=2,d=16", 16, 16, 2)
    monkeypatch.setattr(bubeck2021, "net_block", lambda n_net, nbytes: 1)
    blocks = bubeck2021._one_step_cell(cfg, "L=2,d=16", 16, 16, 2)
    assert whole["success"].shape == (4, TINY["n_x"])
    np.testing.assert_array_equal(whole["success"], blocks["success"])
    for k in ("eta", "grad_norm", "step_norm"):
        np.testing.assert_allclose(whole[k], blocks[k], rtol=1e-4)


def test_a_width_sweep_names_cells_by_k_keeps_what_fits_and_enters_the_claims():
    cfg = {"seed": 0, **TINY, "dims": [8, 64], "widths": [8, 64, 512], "max_net_bytes": 4 * 40_000}
    grid = bubeck2021._grid(cfg)
    # 4·(d·k + (L − 1)·k² + k) bytes ≤ 160 kB: every L = 1 cell (at most 33 280 weights) fits; at L = 2, k = 512
    # needs k² = 262 144 weights and is left out.
    assert [(L, d, k) for L, d, k, _ in grid] == [(1, 8, 8), (1, 8, 64), (1, 8, 512), (1, 64, 8), (1, 64, 64), (1, 64, 512),
                                                  (2, 8, 8), (2, 8, 64), (2, 64, 8), (2, 64, 64)]
    assert grid[1][3] == "L=1,d=8,k=64" and len({name for *_, name in grid}) == len(grid)
    shape = (TINY["n_net"], TINY["n_x"])
    res = {name: {"success": np.full(shape, True), "eta": np.ones(shape), "grad_norm": np.full(shape, 0.7),
                  "step_norm": np.ones(shape)} for *_, name in grid}
    res["L=2,d=8,k=8"]["success"][0, 0] = False
    for v in TINY["variants"]:
        res[f"{v},d=64"] = {**res["L=1,d=64,k=64"]}
    assert all(c.holds for c in bubeck2021.claims(cfg, res))
    res["L=1,d=64,k=64"]["success"][0, 0] = False  # d, k > 50 at L = 1, one input not switched
    assert not {c.id: c.holds for c in bubeck2021.claims(cfg, res)}["bubeck2021/L1-all-switched"]


def test_paper_grid_has_the_matrix_free_cells_and_quick_does_not():
    paper = [name for name, _ in bubeck2021.cells(config_of("bubeck2021", "paper", seed=0))]
    # The cell the paper could not reach: k = 10⁶, L = 6, d = 1000 (20 TB of dense weights).
    assert "L=6,d=1000,k=1000000,matrix_free" in paper
    assert bubeck2021.SCALES["paper"]["matrix_free_cells"] == [[6, 1000, 1_000_000, 1]]
    assert bubeck2021.SCALES["paper"]["n_x"] == 100
    quick = [name for name, _ in bubeck2021.cells(config_of("bubeck2021", "quick", seed=0))]
    assert "matrix_free_cells" not in bubeck2021.SCALES["quick"] and not any("matrix_free" in n for n in quick)
    # The dense cells stay dense whatever the automatic threshold: their draw is unchanged.
    assert bubeck2021._net(10_000, 100_000, 1).name == "two_layer(d=10000, k=100000, activation='relu', readout='rademacher')"


def test_a_tiny_matrix_free_cell_runs_through_the_same_code_path(monkeypatch):
    # L = 1 (two_layer) compiles fastest; L ≥ 2 builds mlp(..., weights="matrix_free") the same way.
    cfg = {"seed": 0, **TINY, "matrix_free_cells": [[1, 8, 40, 2]]}
    cells = dict(bubeck2021.cells(cfg))
    seen = []
    one_step = bubeck2021.attacks.one_step
    monkeypatch.setattr(bubeck2021.attacks, "one_step", lambda net, *a, **kw: seen.append(net.name) or one_step(net, *a, **kw))
    r = cells["L=1,d=8,k=40,matrix_free"]()
    assert seen == ["two_layer(d=8, k=40, activation='relu', readout='rademacher', weights='matrix_free')"]
    assert bubeck2021._net(8, 40, 6, weights="matrix_free").name == (
        "mlp(d=8, widths=(40, 40, 40, 40, 40, 40), activation='relu', weights='matrix_free')")
    assert r["success"].shape == (2, TINY["n_x"]) and r["eta"].shape == (2, TINY["n_x"])
    # one_step verified each flip with the matrix-free network's own apply.
    assert np.all(np.isfinite(r["grad_norm"])) and r["success"].any()
