"""The result store: atomic cells, resume after kill -9, refusal of a different config."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from jaxadv.experiments import CellStore, run_cells


def test_cells_round_trip_and_are_never_overwritten(tmp_path):
    store = CellStore(str(tmp_path), "exp", {"seed": 0})
    store.save("d=10", {"a": np.arange(3.0), "n": np.int32(4)})
    got = store.load("d=10")
    np.testing.assert_array_equal(got["a"], np.arange(3.0))
    assert int(got["n"]) == 4
    assert store.finished() == ["d=10"]
    with pytest.raises(FileExistsError, match="never overwritten"):
        store.save("d=10", {"a": np.zeros(3)})
    np.testing.assert_array_equal(store.load("d=10")["a"], np.arange(3.0))
    with pytest.raises(TypeError, match="no pickle"):
        store.save("obj", {"a": np.array([{}], dtype=object)})
    with pytest.raises(ValueError, match="plain file name"):
        store.save("../escape", {"a": np.zeros(1)})


def test_a_failed_write_leaves_no_partial_file(tmp_path, monkeypatch):
    store = CellStore(str(tmp_path), "exp", {"seed": 0})

    def boom(fh, **arrays):
        fh.write(b"partial")
        raise RuntimeError("disk full")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(RuntimeError):
        store.save("c1", {"a": np.zeros(2)})
    assert not store.has("c1")
    assert [f for f in os.listdir(store.dir) if f.startswith(".tmp-")] == []


def test_resume_skips_finished_cells(tmp_path):
    calls = []

    def cell(i):
        def compute():
            calls.append(i)
            return {"x": np.full(2, float(i))}

        return compute

    store = CellStore(str(tmp_path), "exp", {"seed": 1})
    first = run_cells(store, [(f"c{i}", cell(i)) for i in range(3)], progress=False)
    assert calls == [0, 1, 2]
    again = run_cells(CellStore(str(tmp_path), "exp", {"seed": 1}), [(f"c{i}", cell(i)) for i in range(4)], progress=False)
    assert calls == [0, 1, 2, 3]  # only the new cell was computed
    for name in first:
        np.testing.assert_array_equal(first[name]["x"], again[name]["x"])


def test_a_different_config_is_refused_unless_forced_and_nothing_is_lost(tmp_path):
    store = CellStore(str(tmp_path), "exp", {"seed": 1, "scale": "quick"})
    store.save("c0", {"x": np.ones(1)})
    with pytest.raises(ValueError, match=r"different configuration \(differs in \['seed'\]\).*--force"):
        CellStore(str(tmp_path), "exp", {"seed": 2, "scale": "quick"})
    assert store.has("c0")
    CellStore(str(tmp_path), "exp", {"seed": 2, "scale": "quick"}, force=True)
    moved = [d for d in os.listdir(tmp_path) if d.startswith("exp.superseded-")]
    assert len(moved) == 1
    assert os.path.exists(tmp_path / moved[0] / "c0.npz")
    assert json.loads((tmp_path / "exp" / "config.json").read_text())["seed"] == 2


def test_an_output_directory_that_cannot_be_created_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(PermissionError, match="cannot be created"):
        CellStore(str(blocker), "exp", {"seed": 0})


def test_kill_9_mid_run_then_rerun_gives_the_same_results(tmp_path):
    # A child computes 6 slow cells; it is killed with SIGKILL after the second one is on
    # disk. A rerun must compute only the missing cells and end with the uninterrupted result.
    script = textwrap.dedent(
        f"""
        import sys, time
        import numpy as np
        from jaxadv.experiments import CellStore, run_cells
        store = CellStore({str(tmp_path)!r}, "exp", {{"seed": 3}})
        def cell(i):
            def compute():
                time.sleep(float(sys.argv[1]))
                return {{"x": np.random.default_rng(i).normal(size=5)}}
            return compute
        run_cells(store, [(f"c{{i}}", cell(i)) for i in range(6)], progress=False)
        """
    )
    path = tmp_path / "run.py"
    path.write_text(script)
    proc = subprocess.Popen([sys.executable, str(path), "0.4"])
    exp = tmp_path / "exp"
    deadline = time.time() + 120
    while time.time() < deadline and len([f for f in os.listdir(exp) if f.endswith(".npz") and not f.startswith(".tmp-")] if exp.exists() else []) < 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = sorted(f for f in os.listdir(exp) if f.endswith(".npz") and not f.startswith(".tmp-"))
    assert 2 <= len(done) < 6
    mtimes = {f: os.path.getmtime(exp / f) for f in done}
    subprocess.run([sys.executable, str(path), "0.0"], check=True, timeout=120)
    store = CellStore(str(tmp_path), "exp", {"seed": 3})
    assert store.finished() == [f"c{i}" for i in range(6)]
    assert all(os.path.getmtime(exp / f) == t for f, t in mtimes.items())  # finished cells untouched
    for i in range(6):
        np.testing.assert_array_equal(store.load(f"c{i}")["x"], np.random.default_rng(i).normal(size=5))


def test_run_time_locations_are_recorded_but_do_not_block_a_resume(tmp_path):
    from jaxadv.experiments import CellStore

    CellStore(str(tmp_path), "exp", {"scale": "quick", "_data_dir": "/data/a"})
    store = CellStore(str(tmp_path), "exp", {"scale": "quick", "_data_dir": "/data/b"})  # same data elsewhere
    assert json.load(open(store.dir + "/config.json"))["_data_dir"] == "/data/b"
    with pytest.raises(ValueError, match=r"differs in \['scale'\]"):
        CellStore(str(tmp_path), "exp", {"scale": "paper", "_data_dir": "/data/b"})
