"""`jaxadv reproduce` as a user runs it: killed with SIGKILL and rerun, read-only outputs."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from jaxadv.experiments import runner

# A child process runs `jaxadv reproduce toy` through the CLI's main(), with a toy experiment
# registered in place of a paper's: its cells are cheap NumPy draws seeded by the config, so
# the test exercises the command, the runner and the store without compiling anything. With
# BLOCK_AT=n the n-th cell hangs (as a long computation would), so the parent can kill the
# child with SIGKILL at a known point, after n finished cells are on disk.
CHILD = textwrap.dedent(
    """
    import os, sys, time
    import numpy as np
    from jaxadv import cli
    from jaxadv.experiments import Claim, runner
    from jaxadv.experiments._spec import Experiment
    block_at = int(os.environ.get("BLOCK_AT", "-1"))

    def cells(config):
        def compute(i):
            if i == block_at:
                time.sleep(3600)
            return {"x": np.random.default_rng([config["seed"], i]).normal(size=config["size"])}
        return [(f"cell={i}", lambda i=i: compute(i)) for i in range(config["n_cells"])]

    def claims(config, results):
        m = float(np.mean([r["x"].mean() for r in results.values()]))
        return [Claim("toy/mean", "mean of the draws is below 1", "0", m, m < 1)]

    runner.EXPERIMENTS = {"toy": Experiment("toy", "a toy sweep", {"quick": {"n_cells": 6, "size": 5}}, cells, claims,
                                            lambda config, results, directory: [])}
    sys.exit(cli.main(["reproduce", "toy", "--out", sys.argv[1], "--seed", "5"]))
    """
)


def _npz(directory):
    return sorted(f for f in os.listdir(directory) if f.endswith(".npz") and not f.startswith(".tmp-")) if directory.exists() else []


def _child(tmp_path, out, block_at=None):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = {**os.environ, "BLOCK_AT": str(-1 if block_at is None else block_at)}
    return subprocess.Popen([sys.executable, str(script), str(out)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_reproduce_killed_with_sigkill_resumes_to_the_uninterrupted_result(tmp_path):
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    proc = _child(tmp_path, killed, block_at=3)
    exp = killed / "toy"
    deadline = time.time() + 120
    while time.time() < deadline and len(_npz(exp)) < 3 and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(0.2)  # now inside the blocking cell
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = _npz(exp)
    assert len(done) == 3, (done, proc.stderr.read())
    assert not (exp / "results.json").exists()
    mtimes = {f: os.path.getmtime(exp / f) for f in done}

    for out in (killed, clean):
        p = _child(tmp_path, out)
        stdout, stderr = p.communicate(timeout=120)
        assert p.returncode == 0, stderr
    assert all(os.path.getmtime(exp / f) == t for f, t in mtimes.items())  # finished cells not recomputed
    log = (exp / "log.txt").read_text().splitlines()
    assert len(log) == 6 and len({line.split()[2] for line in log}) == 6  # each cell finished exactly once
    assert _npz(exp) == _npz(clean / "toy") and len(done) < len(_npz(exp))
    for f in _npz(exp):
        a, b = np.load(exp / f), np.load(clean / "toy" / f)
        for k in a.files:
            np.testing.assert_array_equal(a[k], b[k])
    claims = [json.loads((d / "toy" / "results.json").read_text())["claims"] for d in (killed, clean)]
    assert claims[0] == claims[1]


def test_a_read_only_output_directory_is_a_clear_error_and_nothing_is_lost(tmp_path, monkeypatch):
    # As root (CI containers) permission bits do not stop writes, so the operating system's
    # refusal is simulated where the store creates its files.
    out = tmp_path / "runs"
    (out / "bubeck2021").mkdir(parents=True)
    (out / "bubeck2021" / "L=1,d=8.npz").write_bytes(b"finished earlier")

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Read-only file system")

    monkeypatch.setattr("tempfile.mkstemp", refuse)
    with pytest.raises(PermissionError, match="not writable"):
        runner.run("bubeck2021", out=str(out), progress=False)
    assert (out / "bubeck2021" / "L=1,d=8.npz").read_bytes() == b"finished earlier"


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root ignores permission bits")
def test_a_read_only_output_directory_refused_by_the_os(tmp_path):
    out = tmp_path / "runs"
    out.mkdir()
    out.chmod(0o555)
    try:
        bad = subprocess.run([sys.executable, "-m", "jaxadv", "reproduce", "bubeck2021", "--out", str(out)],
                             capture_output=True, text=True, timeout=300)
    finally:
        out.chmod(0o755)
    assert bad.returncode == 2 and "cannot be created" in bad.stderr


def test_unknown_scale_through_the_cli(tmp_path):
    bad = subprocess.run([sys.executable, "-m", "jaxadv", "reproduce", "bubeck2021", "--scale", "huge", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "`scale` must be one of" in bad.stderr
    assert not os.listdir(tmp_path)  # refused before anything was written


def test_list_names_the_five_experiments_and_their_grids(capsys):
    from jaxadv import cli

    names = ["bubeck2021", "bartlett2021", "daniely2020", "vardi2022", "depalma2021"]  # the contract
    assert list(runner.EXPERIMENTS) == names
    assert cli.main(["list", "--grids"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines if not line.startswith(" ")] == names
    for name in names:  # both scales' grids, as JSON, under each name
        for scale in ("quick", "paper"):
            shown = next(line for line in lines[lines.index(next(x for x in lines if x.startswith(name))):] if line.strip().startswith(scale))
            assert json.loads(shown.split(None, 1)[1]) == runner.EXPERIMENTS[name].scales[scale]


def test_report_table_survives_pipes_and_lists(tmp_path):
    from jaxadv.experiments import write_json, write_report

    (tmp_path / "bubeck2021").mkdir()
    claim = {"id": "x/y", "statement": "|η| < 20 switches", "paper_value": "100%", "measured": ["a: 1", "b|c: 2"], "holds": False}
    write_json(str(tmp_path / "bubeck2021" / "results.json"), {
        "config": {"scale": "quick", "seed": 0}, "environment": {"jax": "0", "backend": "cpu"}, "claims": [claim], "figures": []})
    rows = [line for line in open(write_report(str(tmp_path))).read().splitlines() if line.startswith("| bubeck2021")]
    assert rows == ["| bubeck2021 | \\|η\\| < 20 switches | 100% | a: 1; b\\|c: 2 | **no** |"]


def _toy(prepare=None):
    from jaxadv.experiments import Claim
    from jaxadv.experiments._spec import Experiment

    def cells(config):
        return [("cell=0", lambda: {"x": np.ones(2)})]

    def claims(config, results):
        if config.get("source") is None:
            return [Claim.not_measured("toy/data", "needs data", "-", "no dataset found")]
        return [Claim("toy/data", "needs data", "-", config["source"], bool(results["cell=0"]["x"].all()))]

    return Experiment("toy", "a toy", {"quick": {"n": 1}}, cells, claims, lambda c, r, d: [], prepare)


def test_prepare_settles_the_data_once_records_it_and_not_measured_claims_are_reported(tmp_path, monkeypatch):
    seen = []

    def prepare(config, options):
        seen.append(options)
        return {**config, "source": "files" if options.data_dir else None}

    monkeypatch.setattr(runner, "EXPERIMENTS", {"toy": _toy(prepare)})
    data = tmp_path / "data"
    data.mkdir()
    claims = runner.run("toy", out=str(tmp_path / "a"), data_dir=str(data), download=False, progress=False)
    assert seen == [runner.RunOptions(data_dir=str(data), download=False)]
    assert claims["toy"][0]["holds"] is True and claims["toy"][0]["measured"] == "files"
    assert json.load(open(tmp_path / "a" / "toy" / "config.json"))["source"] == "files"
    # Without data: the claim is not measured, which the report and the JSON say (not "holds").
    claims = runner.run("toy", out=str(tmp_path / "b"), progress=False)
    assert claims["toy"][0]["holds"] is None and claims["toy"][0]["measured"] == "not measured: no dataset found"
    assert "| not measured |" in open(tmp_path / "b" / "REPORT.md").read()
    # Results from other data never mix with these: the recorded configuration differs.
    with pytest.raises(ValueError, match="differs in \\['source'\\]"):
        runner.run("toy", out=str(tmp_path / "b"), data_dir=str(data), progress=False)


def test_bad_data_options_are_refused_before_anything_runs(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "EXPERIMENTS", {"toy": _toy()})
    with pytest.raises(ValueError, match="`data_dir` .* is not a directory"):
        runner.run("toy", out=str(tmp_path / "out"), data_dir=str(tmp_path / "missing"), progress=False)
    with pytest.raises(TypeError, match="`download` must be True or False"):
        runner.run("toy", out=str(tmp_path / "out"), download="yes", progress=False)
    assert not (tmp_path / "out").exists()
    bad = subprocess.run([sys.executable, "-m", "jaxadv", "reproduce", "bubeck2021", "--data-dir", str(tmp_path / "nope"),
                          "--out", str(tmp_path / "cli")], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "is not a directory" in bad.stderr and not (tmp_path / "cli").exists()


def test_markdown_table_of_claims_and_dicts():
    from jaxadv.experiments import Claim, markdown_table

    claims = [Claim("x/a", "a | b", "½", 0.123456, True), Claim("x/b", "c\nd", 1, [1.0, "n"], False),
              Claim.not_measured("x/c", "e", "f", "no data")]
    text = markdown_table(claims)
    assert text == ("| claim | paper | measured | holds |\n|---|---|---|---|\n"
                    "| a \\| b | ½ | 0.1235 | yes |\n| c d | 1 | 1; n | **no** |\n| e | f | not measured: no data | not measured |\n")
    assert markdown_table([c.to_json() for c in claims]) == text
