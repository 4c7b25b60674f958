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
