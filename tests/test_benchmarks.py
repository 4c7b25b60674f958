"""The benchmark suite: its sections at tiny sizes, its wiring, the targets judged from synthetic numbers
and RESULTS.md rendering (the end-to-end runs of whole scripts are opt-in, marked slow)."""

import json
import sys
import types

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


def test_kernels_at_a_tiny_cell_runs_every_regime_and_checks_them(monkeypatch):
    from benchmarks import kernels, roofline

    roof = roofline.run(quick=True, square=32, bandwidth_bytes=1 << 14, repeats=1)
    # philox alone: it compiles in a fraction of threefry's time, and the code path is the same.
    res = kernels.run(quick=True, baselines=False, cells=[dict(d=3, k=4, depth=2, n_net=4)], n_x=5, repeats=1,
                      roofline_result=roof, key_impls=("philox4x32",))
    (cell,) = res["cells"]
    assert cell["flops_per_pair"] == 128.0 and cell["n_net"] * cell["n_x"] == 20
    rows = {r["impl"]: r for r in cell["rows"]}
    generated = {kernels.generated_name("philox4x32", way) for way in kernels.WAYS}
    assert set(rows) == {kernels.PREGENERATED} | generated
    assert set(kernels.KEY_IMPLS) == {"threefry2x32", "philox4x32"}  # what the suite runs
    for r in rows.values():
        assert _finite_positive(r["pairs_per_s"]) and _finite_positive(r["flops_per_s"])
        assert r["flops_per_s"]["median"] == r["pairs_per_s"]["median"] * 128.0
        assert r["fraction_of_cell_matmul"] > 0 and r["fraction_of_square_matmul"] > 0
    for name in generated:
        # Every way of drawing inside the timed call gives the networks init_many gives outside
        # it from the same key.
        assert rows[name]["matches_pregenerated"] is True
    assert {rows[n]["way"] for n in generated} == {"separate", "fused"}
    assert set(cell["draw_s"]) == {"philox4x32"} and _finite_positive(cell["draw_s"]["philox4x32"])
    # The cell's ceilings, taken just before and just after it, are recorded with the roofline,
    # and the fractions are of their mean.
    assert [c["when"] for c in roof["cells"]] == ["before", "after"]
    assert cell["cell_matmul_flops_per_s"] == sum(cell["cell_matmul_before_after_flops_per_s"]) / 2
    r = rows[kernels.PREGENERATED]
    assert r["fraction_of_cell_matmul"] == r["flops_per_s"]["median"] / cell["cell_matmul_flops_per_s"]
    assert kernels.rows(res)[0]["cell"] == "(3, 4, 2) x4"


def test_generated_names_are_distinct_and_checked():
    from benchmarks import kernels

    names = {kernels.generated_name(i, w) for i in kernels.KEY_IMPLS for w in kernels.WAYS}
    assert len(names) == 4 and kernels.PREGENERATED not in names
    with pytest.raises(ValueError, match="way"):
        kernels.generated_name("philox4x32", "chunked")


def test_torch_baseline_matches_jaxadv_at_a_tiny_cell():
    pytest.importorskip("torch")
    from benchmarks import kernels

    res = kernels.run_cell(dict(d=3, k=4, depth=2, n_net=2), repeats=1, baselines=True, n_x=5)
    rows = {r["impl"]: r for r in res["rows"]}
    for name in ("torch_loop", "torch_bmm", "torch_vmap"):
        assert rows[name]["outputs_match"], name
    ratios = res["ratios_jaxadv_over_torch"]
    assert ratios["best_torch_batched_generated"] in {"torch_bmm+randn", "torch_vmap+randn"}
    assert ratios["best_generated"] in {kernels.generated_name(i, w) for i in kernels.KEY_IMPLS for w in kernels.WAYS}
    assert set(res["draw_s"]) == set(kernels.KEY_IMPLS) | {"torch.randn"}
    assert ratios["draw_philox4x32_over_torch_randn"] > 0


def test_suite_entry_point_writes_one_json(tmp_path, monkeypatch):
    from benchmarks import __main__ as suite
    from benchmarks import roofline

    monkeypatch.setattr(roofline, "QUICK", dict(square=32, bandwidth_bytes=1 << 14, repeats=1))
    out = tmp_path / "suite.json"
    assert suite.main(["--quick", "--no-baselines", "--only", "roofline", "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["environment"]["backend"] and res["sections"] == ["roofline"]
    assert "kernels" not in res and res["roofline"]["square"]["shape"] == [32, 32, 32]
    assert len(res["loadavg"]["start"]) == 3 and len(res["loadavg"]["end"]) == 3
    # The load sampled during the run: at least the sample taken when sampling starts.
    assert res["loadavg"]["during"]["all"]["n"] >= 1 and res["loadavg"]["during"]["roofline"]["mean"] is not None
    assert res["targets"] == {}  # no section with a target ran
    with pytest.raises(SystemExit):
        suite.main(["--only", "nope"])


def test_reproduce_runs_only_in_full_suites_unless_named():
    from benchmarks import __main__ as suite

    assert "reproduce" not in suite.default_sections(quick=True)
    assert suite.default_sections(quick=False) == list(suite.SECTIONS)
    assert suite._sections("reproduce,one_step") == ["reproduce", "one_step"]


def test_default_output_name_has_backend_and_device_kind(monkeypatch):
    from benchmarks import __main__ as suite

    class Dev:
        device_kind = "NVIDIA H200"

    monkeypatch.setattr(suite.jax, "default_backend", lambda: "gpu")
    monkeypatch.setattr(suite.jax, "devices", lambda: [Dev(), Dev()])
    assert suite.default_out(False).endswith("results/suite-gpu-nvidia-h200.json")
    Dev.device_kind = "cpu"
    monkeypatch.setattr(suite.jax, "default_backend", lambda: "cpu")
    assert suite.default_out(True).endswith("results/suite-cpu-quick.json")


# ---------------------------------------------------------------------------------------
# the one_step section, through a stand-in module


def _one_step_cell(depth, time_ratio):
    return {"network": f"mlp L={depth}", "cell": [10, 10, depth], "n_net": 2,
            "algorithms": [{"algorithm": "one_step", "time_ratio": time_ratio, "counted_median_pair": 2.0,
                            "counted_batch_max": 2.5, "success_rate": 1.0,
                            "accuracy": {"median_rel_err": 1e-5, "max_rel_err": 9e-5}},
                           {"algorithm": "grid+bisection (previous)", "time_ratio": 0.5}]}


def _fake_one_step(cells):
    mod = types.ModuleType("benchmarks.one_step")
    mod.calls = []

    def run(*, quick):
        mod.calls.append(quick)
        return {"cells": cells}

    mod.run = run
    mod.rows = lambda res: [{"L": c["cell"][-1], "equivalents": c["algorithms"][0]["time_ratio"]} for c in res["cells"]]
    mod.COLUMNS = [("L", "L", "d"), ("equivalents", "fwd+grad equivalents", ".2f")]
    mod.main = lambda argv=None: 0
    return mod


def _install(monkeypatch, mod):
    import benchmarks

    monkeypatch.setitem(sys.modules, "benchmarks.one_step", mod)
    if mod is None:
        monkeypatch.delattr(benchmarks, "one_step", raising=False)
    else:
        monkeypatch.setattr(benchmarks, "one_step", mod, raising=False)


def test_suite_runs_the_one_step_section_and_judges_its_target(tmp_path, monkeypatch, capsys):
    from benchmarks import __main__ as suite

    mod = _fake_one_step([_one_step_cell(1, 2.5), _one_step_cell(4, 6.5)])
    _install(monkeypatch, mod)
    out = tmp_path / "suite.json"
    assert suite.main(["--quick", "--only", "one_step", "--out", str(out)]) == 0
    assert mod.calls == [True]
    res = json.loads(out.read_text())
    assert res["one_step"]["cells"][0]["algorithms"][0]["time_ratio"] == 2.5
    t = res["targets"]["one_step.equivalents"]
    # 2.5 <= 3 at L = 1, but 6.5 > 6 at L = 4.
    assert [r["met"] for r in t["rows"]] == [True, False] and t["met"] is False
    printed = capsys.readouterr().out
    assert "fwd+grad equivalents" in printed and "NOT MET" in printed


def test_suite_records_a_missing_one_step_module_as_skipped(tmp_path, monkeypatch):
    from benchmarks import __main__ as suite

    _install(monkeypatch, None)
    out = tmp_path / "suite.json"
    assert suite.main(["--quick", "--only", "one_step", "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    assert "not in this checkout" in res["one_step"]["skipped"] and res["targets"] == {}


# ---------------------------------------------------------------------------------------
# the reproduce section, with a stand-in command

_FAKE_REPRODUCE = """
import json, os, sys
out = sys.argv[sys.argv.index("--out") + 1]
data = os.environ["JAXADV_DATA_DIR"]
assert os.path.isdir(data) and not os.listdir(data), "the data directory must be empty"
assert not os.path.exists(out), "the results directory must be fresh"
for name, holds in (("a", [True, True, False]), ("b", [None, True])):
    os.makedirs(os.path.join(out, name))
    with open(os.path.join(out, name, "results.json"), "w") as fh:
        json.dump({"claims": [{"id": str(i), "holds": h} for i, h in enumerate(holds)]}, fh)
os.makedirs(os.path.join(out, "a.superseded-1"))
print("report: done")
"""


def test_reproduce_section_times_a_fresh_hermetic_run_and_counts_claims(tmp_path, monkeypatch):
    from benchmarks import __main__ as suite
    from benchmarks import reproduce

    monkeypatch.setattr(reproduce, "COMMAND", ("-c", _FAKE_REPRODUCE))
    out = tmp_path / "suite.json"
    assert suite.main(["--quick", "--only", "reproduce", "--out", str(out)]) == 0
    r = json.loads(out.read_text())["reproduce"]
    assert r["returncode"] == 0 and r["wall_s"] > 0
    assert r["claims"]["per_experiment"] == {"a": {"holds": 2, "fails": 1, "not_measured": 0},
                                             "b": {"holds": 1, "fails": 0, "not_measured": 1}}
    assert r["claims"]["total"] == {"holds": 3, "fails": 1, "not_measured": 1}
    assert reproduce.rows(r)[-1]["experiment"] == "all"


def test_reproduce_records_a_failing_command():
    from benchmarks import reproduce

    r = reproduce.run(command=("-c", "import sys; print('boom', file=sys.stderr); sys.exit(3)"))
    assert r["returncode"] == 3 and "boom" in r["output_tail"] and r["claims"]["total"] == {}


# ---------------------------------------------------------------------------------------
# verdicts from synthetic numbers


def _rate(median):
    return {"min": 0.9 * median, "median": median, "max": 1.1 * median}


def _kernel_row(impl, weights, pairs, *, frac=None, key_impl=None):
    row = {"impl": impl, "weights": weights, "pairs_per_s": _rate(pairs), "flops_per_s": _rate(pairs * 1e6),
           "fraction_of_cell_matmul": frac, "fraction_of_square_matmul": frac, "compile_s": 0.1,
           "vs_best_torch_batched": None}
    if key_impl is not None:
        row["key_impl"] = key_impl
    return row


def _kernel_cell(cell, *, frac, gen, fused, torch_gen):
    from benchmarks import kernels

    rows = [_kernel_row(kernels.PREGENERATED, "pregenerated", 1000.0, frac=frac),
            _kernel_row(kernels.generated_name("threefry2x32", "separate"), "generated", gen / 2, key_impl="threefry2x32"),
            _kernel_row(kernels.generated_name("philox4x32", "separate"), "generated", gen, key_impl="philox4x32"),
            _kernel_row(kernels.generated_name("philox4x32", "fused"), "generated", fused, key_impl="philox4x32")]
    # 2 networks x 10 inputs = 20 pairs per call; init_many draws them in 0.01 s.
    draw = {"philox4x32": _rate(0.01), "threefry2x32": _rate(0.04)}
    if torch_gen is not None:
        rows += [_kernel_row("torch_bmm+randn", "generated", torch_gen),
                 _kernel_row("torch_vmap+randn", "generated", torch_gen / 2),
                 _kernel_row("torch_loop", "pregenerated", 10 * torch_gen)]
        draw["torch.randn"] = _rate(0.02)
    return {"cell": list(cell), "n_net": 2, "n_x": 10, "cell_matmul_flops_per_s": 1e9, "rows": rows, "draw_s": draw,
            "flops_per_pair": 1e6, "square_matmul_flops_per_s": 2e9}


def test_kernel_targets_are_judged_from_the_numbers():
    from benchmarks import targets

    res = {"cells": [_kernel_cell((100, 100, 1), frac=0.2, gen=300.0, fused=200.0, torch_gen=100.0),
                     _kernel_cell((1000, 1000, 4), frac=0.75, gen=300.0, fused=200.0, torch_gen=100.0),
                     _kernel_cell((1000, 10000, 1), frac=0.70, gen=300.0, fused=200.0, torch_gen=100.0)]}
    t = targets.kernels_targets(res)
    # (100, 100, 1) is not a cell of the pregenerated target; 0.75 and exactly 0.70 meet it.
    assert [(r["cell"], r["met"]) for r in t["pregenerated"]["rows"]] == [
        ("(1000, 1000, 4) x2", True), ("(1000, 10000, 1) x2", True)]
    assert t["pregenerated"]["met"] is True
    # Generation: the best variant (philox, two calls, 300) over the best batched torch (bmm, 100) = 3.
    assert [r["measured"] for r in t["generated"]["rows"]] == [3.0, 3.0, 3.0] and t["generated"]["met"] is True
    # The ceiling: torch's 20 pairs at 100 pairs/s take 0.2 s; init_many alone (philox) 0.01 s.
    # At the square rate, the 20 pairs' 2e7 FLOPs take another 0.01 s: 0.2 / 0.02 = 10.
    assert ("init_many 0.01 s, torch.randn 0.02 s; ceiling with free compute 20.00x, with compute at the square "
            "matmul rate 10.00x") in t["generated"]["rows"][0]["detail"]
    # A faster fused variant is the best one.
    res["cells"][0] = _kernel_cell((100, 100, 1), frac=0.2, gen=300.0, fused=450.0, torch_gen=100.0)
    assert targets.kernels_targets(res)["generated"]["rows"][0]["measured"] == 4.5

    res["cells"][2] = _kernel_cell((1000, 10000, 1), frac=0.69, gen=140.0, fused=100.0, torch_gen=100.0)
    t = targets.kernels_targets(res)
    assert t["pregenerated"]["met"] is False and [r["met"] for r in t["generated"]["rows"]] == [True, True, False]
    assert t["generated"]["met"] is False

    # Without PyTorch the generation target is not measured; without the (1000, 10000, 1) cell
    # (a quick run) the pregenerated target is not measured either, even where the rest is met.
    quick = {"cells": [_kernel_cell((1000, 1000, 4), frac=0.9, gen=1.0, fused=1.0, torch_gen=None)]}
    t = targets.kernels_targets(quick)
    assert t["pregenerated"]["met"] is None and t["generated"]["met"] is None


def _attack_row(attack, dist, grads, pair=None):
    row = {"attack": attack, "median_distance": dist, "median_n_grad": grads, "success_rate": 1.0}
    if pair is not None:
        row["pair_ratio_vs_best_baseline"] = pair
    return row


def _attack_cell(network, rows):
    return {"network": network, "n_net": 2, "n_x": 3, "rows": rows}


def test_min_norm_target_picks_a_setting_that_meets_it_everywhere():
    from benchmarks import targets

    def cell(name, default, ten, fab, ddn):
        return _attack_cell(name, [_attack_row("jaxadv.min_norm(l2)", default, 20, 0.99),
                                   _attack_row("jaxadv.min_norm(l2, 10 grads)", ten, 10, 1.0),
                                   _attack_row("jaxadv.one_step", 0.1, 1),
                                   _attack_row("foolbox_ddn", ddn, 100), _attack_row("torchattacks_fab", fab, 20)])

    # The default setting is closer but uses as many gradients as FAB (not fewer): it fails.
    # 10 gradients: 0.705 / 0.70 = 1.0071 <= 1.01 (best baseline DDN here) and 0.69 / 0.69.
    res = {"cells": [cell("two_layer(d=1)", 0.69, 0.705, 0.71, 0.70), cell("mlp(d=1)", 0.68, 0.69, 0.69, 0.72)]}
    t = targets.attacks_targets(res)["min_norm"]
    assert t["per_setting"] == {"jaxadv.min_norm(l2)": False, "jaxadv.min_norm(l2, 10 grads)": True}
    assert t["met"] is True and t["setting"] == "jaxadv.min_norm(l2, 10 grads)"
    row = next(r for r in t["rows"] if r["setting"] == "jaxadv.min_norm(l2, 10 grads)" and r["cell"] == "two_layer")
    assert row["best_baseline"] == "foolbox_ddn" and abs(row["measured"] - 0.705 / 0.70) < 1e-12
    assert row["pair_ratio"] == 1.0 and row["fewer_grads"] is True

    # 0.71 / 0.70 > 1.01 in one family: no setting meets it everywhere.
    res["cells"][0] = cell("two_layer(d=1)", 0.69, 0.71, 0.71, 0.70)
    t = targets.attacks_targets(res)["min_norm"]
    assert t["met"] is False and t["setting"] is None

    # Without the baselines nothing is judged.
    bare = {"cells": [_attack_cell("mlp(d=1)", [_attack_row("jaxadv.min_norm(l2)", 0.7, 20)])]}
    assert targets.attacks_targets(bare)["min_norm"]["met"] is None


def test_one_step_target_needs_both_depth_regimes():
    from benchmarks import targets

    # The previous algorithm's rows (0.5 here) are not what is judged.
    both = {"cells": [_one_step_cell(1, 3.0), _one_step_cell(6, 6.0)]}
    t = targets.one_step_targets(both)["equivalents"]
    assert [r["met"] for r in t["rows"]] == [True, True] and t["met"] is True
    assert [r["measured"] for r in t["rows"]] == [3.0, 6.0] and "counted 2.00" in t["rows"][0]["detail"]
    over = {"cells": [_one_step_cell(1, 3.01), _one_step_cell(2, 1.0)]}
    assert targets.one_step_targets(over)["equivalents"]["met"] is False
    shallow_only = {"cells": [_one_step_cell(1, 2.0)]}
    assert targets.one_step_targets(shallow_only)["equivalents"]["met"] is None


# ---------------------------------------------------------------------------------------
# RESULTS.md


def _suite_json(backend, kind, cores, scale, started, *, frac):
    return {"environment": {"backend": backend, "device_kinds": [kind], "cpu_count": cores, "jax": "0.0",
                            "torch": None},
            "scale": scale, "started": started, "finished": started, "loadavg": {"start": [0.5, 0, 0], "end": [1.5, 0, 0]},
            "sections": ["kernels"], "wall_s": {"kernels": 1.0},
            "kernels": {"n_x": 3, "repeats": 1,
                        "cells": [_kernel_cell((1000, 1000, 4), frac=frac, gen=1.0, fused=1.0, torch_gen=None)]}}


def test_report_has_one_section_per_machine_from_its_latest_full_run(tmp_path, monkeypatch):
    from benchmarks import report, targets

    monkeypatch.setattr(report, "HERE", str(tmp_path))
    results = tmp_path / "results"
    results.mkdir()
    files = {
        "suite-cpu.json": _suite_json("cpu", "cpu", 2, "full", "2025-01-02T00:00:00+00:00", frac=0.61),
        "suite-cpu-old.json": _suite_json("cpu", "cpu", 2, "full", "2025-01-01T00:00:00+00:00", frac=0.11),
        "suite-cpu-quick.json": _suite_json("cpu", "cpu", 2, "quick", "2025-01-03T00:00:00+00:00", frac=0.22),
        "suite-gpu-nvidia-h200-quick.json": _suite_json("gpu", "NVIDIA H200", 16, "quick", "2025-01-01T00:00:00+00:00",
                                                        frac=0.93),
    }
    for name, res in files.items():
        res["targets"] = targets.evaluate(res)
        (results / name).write_text(json.dumps(res))
    assert report.main() == 0
    text = (tmp_path / "RESULTS.md").read_text()
    assert text.count("\n## ") == 2  # two machines
    assert "## cpu (cpu; 2 CPU cores)" in text and "## gpu (NVIDIA H200; 16 CPU cores)" in text
    # The CPU's section is its latest full run (61%), not an older full one nor a newer quick one;
    # the GPU has only a quick run, which is shown.
    assert "61%" in text and "11%" not in text and "22%" not in text and "93%" in text
    assert "From `results/suite-cpu.json`" in text and "load average 0.50 at the start, 1.50 at the end" in text
    assert "kernels.pregenerated" in text and "Targets, judged from this run's numbers" in text
