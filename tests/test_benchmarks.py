"""The benchmark scripts run end to end at their smallest scale (opt-in: they take minutes)."""

import json

import pytest


@pytest.mark.slow
def test_attack_benchmark_quick_without_baselines(tmp_path):
    from benchmarks import attacks

    out = tmp_path / "attacks.json"
    assert attacks.main(["--quick", "--no-baselines", "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    rows = {r["attack"]: r for cell in res["cells"] for r in cell["rows"]}
    assert rows["jaxadv.min_norm(l2)"]["success_rate"] == 1.0
    assert res["environment"]["backend"]


@pytest.mark.slow
def test_report_renders_every_results_file(tmp_path, monkeypatch):
    from benchmarks import attacks, report

    monkeypatch.setattr(report, "HERE", str(tmp_path))
    (tmp_path / "results").mkdir()
    attacks.main(["--quick", "--no-baselines", "--out", str(tmp_path / "results" / "attacks-cpu-quick.json")])
    text = report.render()
    assert "## Attacks" in text and "jaxadv.min_norm(l2)" in text


def _finite_positive(rates):
    import math

    return all(math.isfinite(v) and v > 0 for v in (rates["min"], rates["median"], rates["max"]))


def test_roofline_at_tiny_sizes_gives_finite_positive_rates():
    from benchmarks import roofline

    res = roofline.run(quick=True, square=64, bandwidth_bytes=1 << 16, repeats=2,
                       cells=[dict(d=6, k=5, depth=2, n_net=3, n_x=4)])
    assert _finite_positive(res["square"]["flops_per_s"]) and res["square"]["shape"] == [64, 64, 64]
    assert _finite_positive(res["bandwidth"]["bytes_per_s"])
    (cell,) = res["cells"]
    assert _finite_positive(cell["flops_per_s"])
    # (6 -> 5) once and (5 -> 5) once, each as a forward and a transposed (gradient) product.
    assert sorted((p["product"], tuple(p["shape"]), p["layers"]) for p in cell["products"]) == [
        ("forward", (4, 5, 5), 1), ("forward", (4, 6, 5), 1),
        ("input_gradient", (4, 5, 5), 1), ("input_gradient", (4, 6, 5), 1),
    ]
    for p in cell["products"]:
        assert p["compile_s"] >= 0 and p["seconds"]["min"] <= p["seconds"]["median"] <= p["seconds"]["max"]


def test_kernel_flop_count_is_the_hand_count():
    from benchmarks import kernels

    # mlp(3, [4, 4]): weights 4x3, 4x4 and a readout of 4 -> 12 + 16 + 4 = 32 multiply-adds;
    # forward 2 * 32 = 64 flops, the input gradient as many again.
    assert kernels.flops_per_pair(3, 4, 2) == 128.0
    # two layers of width 1 on one input: 1 + 1 + 1 multiply-adds.
    assert kernels.flops_per_pair(1, 1, 2) == 12.0


def test_kernels_at_a_tiny_cell_runs_both_regimes_and_checks_them():
    from benchmarks import kernels, roofline

    roof = roofline.run(quick=True, square=32, bandwidth_bytes=1 << 14, repeats=1)
    res = kernels.run(quick=True, baselines=False, cells=[dict(d=3, k=4, depth=2, n_net=2)], n_x=5, repeats=2,
                      roofline_result=roof)
    (cell,) = res["cells"]
    assert cell["flops_per_pair"] == 128.0 and cell["n_net"] * cell["n_x"] == 10
    rows = {r["impl"]: r for r in cell["rows"]}
    assert set(rows) == {"jaxadv.evaluate", "jaxadv.evaluate+init"}
    for r in rows.values():
        assert _finite_positive(r["pairs_per_s"]) and _finite_positive(r["flops_per_s"])
        assert r["flops_per_s"]["median"] == r["pairs_per_s"]["median"] * 128.0
        assert r["fraction_of_cell_matmul"] > 0 and r["fraction_of_square_matmul"] > 0
    # Drawing the weights inside the jitted call gives the networks init_many gives outside.
    assert rows["jaxadv.evaluate+init"]["matches_pregenerated"] is True
    assert len(roof["cells"]) == 1  # the cell's ceiling is recorded with the roofline
    assert kernels.rows(res)[0]["cell"] == "(3, 4, 2) x2"


def test_torch_baseline_matches_jaxadv_at_a_tiny_cell():
    pytest.importorskip("torch")
    from benchmarks import kernels

    res = kernels.run_cell(dict(d=3, k=4, depth=2, n_net=2), repeats=1, baselines=True, n_x=5)
    rows = {r["impl"]: r for r in res["rows"]}
    assert rows["torch_loop"]["outputs_match"] and rows["torch_bmm"]["outputs_match"]
    assert set(res["ratios_jaxadv_over_torch"]) == {
        "pregenerated_vs_torch_loop", "pregenerated_vs_torch_bmm", "generated_vs_torch_bmm_generated"}


def test_suite_entry_point_writes_one_json(tmp_path, monkeypatch):
    from benchmarks import __main__ as suite
    from benchmarks import kernels, roofline

    monkeypatch.setattr(roofline, "QUICK", dict(square=32, bandwidth_bytes=1 << 14, repeats=1))
    monkeypatch.setattr(kernels, "QUICK_CELLS", [dict(d=3, k=4, depth=1, n_net=2)])
    monkeypatch.setattr(kernels, "QUICK", dict(repeats=1))
    out = tmp_path / "suite.json"
    assert suite.main(["--quick", "--no-baselines", "--only", "roofline,kernels", "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["environment"]["backend"] and res["sections"] == ["roofline", "kernels"]
    assert "attacks" not in res and res["kernels"]["cells"][0]["cell"] == [3, 4, 1]
    with pytest.raises(SystemExit):
        suite.main(["--only", "nope"])
