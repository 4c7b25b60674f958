"""depalma2021's image part (Figs 3–4): data decisions, a tiny run on MNIST-format files, claims from data."""

import gzip
import json
import math
import os

import numpy as np
import pytest

from jaxadv import data
from jaxadv.experiments import depalma2021 as D
from jaxadv.experiments import depalma2021_trained as T
from jaxadv.experiments import run, runner
from jaxadv.experiments._spec import RunOptions

FC = {"kind": "mlp", "widths": [8], "weight_std": math.sqrt(2.0), "bias_std": 0.5}
IMAGES = {"datasets": ["mnist", "cifar10"], "arch": FC, "n_nets": 2, "nets_per_cell": 1, "n_images": 3,
          "n_train": 40, "epochs": {"mnist": 2, "cifar10": 2}, "n_steps": 2}
TINY = {"archs": {"fc": FC}, "sides": [2, 3], "n_net": 2, "n_x": 2, "nets_per_cell": 2, "bounds": [0.0, 1.0],
        "nobox_archs": [], "n_steps": 2, "t_max": 8.0, "shared_compile": True, "images": IMAGES}


def _idx(path, array, magic):
    header = magic.to_bytes(4, "big") + b"".join(int(s).to_bytes(4, "big") for s in array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def mnist_dir(tmp_path):
    """MNIST-format files with 48 training and 16 test images whose labels a linear model can learn."""
    rng = np.random.default_rng(0)
    root = tmp_path / "data"
    (root / "mnist").mkdir(parents=True)
    for split, count in (("train", 48), ("t10k", 16)):
        classes = rng.integers(0, 10, count)
        images = rng.integers(0, 60, (count, 28, 28))
        images[:, :14] += 150 * (classes % 2)[:, None, None]  # odd digits are bright on top
        _idx(root / "mnist" / f"{split}-images-idx3-ubyte.gz", images, 2051)
        _idx(root / "mnist" / f"{split}-labels-idx1-ubyte.gz", classes, 2049)
    return root


def _config(scale="quick"):
    return runner.config_of("depalma2021", scale, seed=0)


def test_prepare_uses_files_then_the_digits_stand_in_then_nothing(mnist_dir, tmp_path, monkeypatch):
    cfg = T.prepare(_config(), RunOptions(data_dir=str(mnist_dir)))
    assert cfg["images"]["sources"] == {"mnist": "mnist", "cifar10": None}
    assert "nothing stands in" in cfg["images"]["notes"]["cifar10"] and cfg["_data_dir"] == str(mnist_dir)
    assert str(mnist_dir) not in json.dumps(cfg["images"])  # where the data is is not what the results depend on
    # What they depend on: the data loaded, by digest. Other files under the same names differ.
    digest = cfg["images"]["digests"]["mnist"]
    assert len(digest) == 64
    _idx(mnist_dir / "mnist" / "t10k-labels-idx1-ubyte.gz", np.zeros(16, int), 2049)
    assert T.prepare(_config(), RunOptions(data_dir=str(mnist_dir)))["images"]["digests"]["mnist"] != digest
    empty = tmp_path / "empty"
    empty.mkdir()
    if data.available("digits"):
        cfg = T.prepare(_config(), RunOptions(data_dir=str(empty)))
        assert cfg["images"]["sources"]["mnist"] == "digits" and "digits stand in" in cfg["images"]["notes"]["mnist"]
    real = data.available
    monkeypatch.setattr(data, "available", lambda name, **kw: False if name == "digits" else real(name, **kw))
    cfg = T.prepare(_config(), RunOptions(data_dir=str(empty)))
    assert cfg["images"]["sources"]["mnist"] is None and "jaxadv[digits]" in cfg["images"]["notes"]["mnist"]


def test_download_is_asked_for_before_any_cell_and_its_failure_stops_the_run(tmp_path, monkeypatch):
    asked = []

    def refuse(name, **kw):
        asked.append(name)
        raise data.DownloadError(f"cannot reach the {name} server")

    monkeypatch.setattr(data, "download", refuse)
    monkeypatch.setitem(runner.EXPERIMENTS, "depalma2021", D.EXPERIMENT)
    monkeypatch.setitem(D.SCALES, "quick", TINY)
    (tmp_path / "d").mkdir()
    with pytest.raises(data.DownloadError, match="cannot reach the mnist server"):
        run("depalma2021", out=str(tmp_path / "out"), data_dir=str(tmp_path / "d"), download=True, progress=False)
    assert asked == ["mnist"] and not (tmp_path / "out").exists()


@pytest.mark.slow  # ~60 s: XLA compiles training, two attacks and the FC part's cells
def test_tiny_run_on_mnist_files(mnist_dir, tmp_path, monkeypatch):
    monkeypatch.setitem(runner.EXPERIMENTS, "depalma2021", D.EXPERIMENT)
    monkeypatch.setitem(D.SCALES, "quick", TINY)
    claims = run("depalma2021", out=str(tmp_path / "out"), data_dir=str(mnist_dir), progress=False)["depalma2021"]
    exp_dir = tmp_path / "out" / "depalma2021"
    cells = sorted(f for f in os.listdir(exp_dir) if f.startswith("images"))
    assert cells == ["images,data=mnist,nets=0-0.npz", "images,data=mnist,nets=1-1.npz"]
    cell = np.load(exp_dir / cells[0])
    assert cell["l1_trained_box"].shape == (1, 3, 3) and cell["loss"].shape == (1, 2)
    assert 0 <= float(cell["test_accuracy"][0]) <= 1
    # Both attacks found boundary points (the unboxed one may leave [0, 1]).
    assert np.isfinite(cell["l1_trained_box"]).any() and np.isfinite(cell["l1_trained_nobox"]).any()
    by_id = {c["id"]: c for c in claims}
    for i in ("trained-accuracy", "profile-linear", "training-effect-box", "training-effect-nobox"):
        assert by_id[f"depalma2021/cifar10-{i}"]["holds"] is None  # no CIFAR-10 files: not measured
        assert by_id[f"depalma2021/cifar10-{i}"]["measured"].startswith("not measured: CIFAR-10 files not found")
        assert isinstance(by_id[f"depalma2021/mnist-{i}"]["holds"], bool)  # measured on MNIST files
    res = json.loads((exp_dir / "results.json").read_text())
    assert {"depalma2021_fig3_images.png", "depalma2021_fig4.png"} <= set(res["figures"])
    assert res["config"]["images"]["sources"] == {"mnist": "mnist", "cifar10": None}
    assert "| not measured |" in (tmp_path / "out" / "REPORT.md").read_text()


# ---------------------------------------------------------------------------------------
# claims from synthetic data


def _synthetic(cfg, source, *, decades=(0.5, 0.0, 0.0), profile="gauss", accuracy=0.99, seed=0):
    """Cells where log10(untrained/trained median) is ``decades`` per image type (random, train, test)."""
    rng = np.random.default_rng(seed)
    res = {}
    m = cfg["images"]["n_images"]
    for block in T._blocks(cfg["images"]):
        count = block[1] - block[0]
        cell = {"train_accuracy": np.full(count, accuracy), "test_accuracy": np.full(count, 0.9),
                "passed": np.ones(count, bool), "restarts": np.zeros(count), "loss": np.ones((count, 2))}
        for box in T.BOXES:
            for kind in T.KINDS:
                z = np.abs(rng.standard_normal((count, 3, m))) if profile == "gauss" else np.sqrt(rng.uniform(size=(count, 3, m)))
                scale = 10.0 ** (-np.asarray(decades)) if kind == "trained" else np.ones(3)
                cell[f"l1_{kind}_{box}"] = z * scale[None, :, None]
        res[T._cell_name(source, block)] = cell
    return res


def _cfg(sources, n_nets=60):
    images = {**IMAGES, "n_nets": n_nets, "nets_per_cell": 20, "n_images": 10, "sources": sources,
              "notes": {k: "files" for k in sources}}
    return {"seed": 0, "images": images}


def _holds(cfg, results):
    return {c.id.split("/")[1]: c.holds for c in T.claims(cfg, results)}


def test_mnist_and_cifar_claims_follow_the_data():
    cfg = _cfg({"mnist": "mnist", "cifar10": "cifar10"})
    # MNIST: random images' distance falls half a decade, training and test images' does not.
    res = {**_synthetic(cfg, "mnist"), **_synthetic(cfg, "cifar10", decades=(0.5, 0.5, 0.5), seed=1)}
    assert all(_holds(cfg, res).values()), _holds(cfg, res)
    # Swap the patterns: both datasets' Fig 4 claims fail, the rest still hold.
    res = {**_synthetic(cfg, "mnist", decades=(0.5, 0.5, 0.5)), **_synthetic(cfg, "cifar10", seed=1)}
    assert {k for k, v in _holds(cfg, res).items() if not v} == {
        "mnist-training-effect-box", "mnist-training-effect-nobox", "cifar10-training-effect-box", "cifar10-training-effect-nobox"}
    # A profile growing like √q (a fraction within r ∝ r²) is not linear from 0; low accuracy fails.
    res = {**_synthetic(cfg, "mnist", profile="sqrt", accuracy=0.9), **_synthetic(cfg, "cifar10", decades=(0.5,) * 3, seed=1)}
    assert {k for k, v in _holds(cfg, res).items() if not v} == {"mnist-profile-linear", "mnist-trained-accuracy"}


def test_failed_attacks_fail_the_claims_they_would_bias():
    cfg = _cfg({"mnist": "mnist", "cifar10": None}, n_nets=60)
    cfg["images"]["notes"]["cifar10"] = "CIFAR-10 files not found"
    res = _synthetic(cfg, "mnist")
    assert _holds(cfg, res)["mnist-training-effect-box"] is True
    # 30% failures on the untrained networks' random images (the long distances, as when a
    # net keeps one sign over most of the box): below MIN_SUCCESS, so the claims fail.
    for cell in res.values():
        d = cell["l1_random_box"]
        d[:, 0][d[:, 0] > np.quantile(d[:, 0], 0.7)] = np.inf
    holds = _holds(cfg, res)
    assert holds["mnist-training-effect-box"] is False and holds["mnist-profile-linear"] is False
    assert holds["mnist-training-effect-nobox"] is True  # the other box's attacks all succeeded
    # Every attack failed: the claims fail, nothing raises.
    for cell in res.values():
        for k in [k for k in cell if k.startswith("l1_")]:
            cell[k][:] = np.inf
    assert not any(_holds(cfg, res)[k] for k in ("mnist-profile-linear", "mnist-training-effect-box"))


def test_a_stand_in_gets_no_verdict_on_the_papers_dataset_specific_statements():
    cfg = _cfg({"mnist": "digits", "cifar10": None}, n_nets=40)
    cfg["images"]["notes"]["cifar10"] = "CIFAR-10 files not found"
    holds = _holds(cfg, _synthetic(cfg, "digits", decades=(0.5, 0.5, 0.5)))
    assert holds["mnist-profile-linear"] is True  # Corollary 1's linear profile: any data
    assert holds["mnist-trained-accuracy"] is None and holds["mnist-training-effect-box"] is None
    assert all(holds[f"cifar10-{i}"] is None for i in ("trained-accuracy", "profile-linear", "training-effect-box"))
    by_id = {c.id: c for c in T.claims(cfg, _synthetic(cfg, "digits"))}
    assert by_id["depalma2021/mnist-training-effect-box"].measured[0] == "digits in place of MNIST, not tested"


def test_median_ratio_and_its_bootstrap_error():
    rng = np.random.default_rng(3)
    a = np.abs(rng.standard_normal((200, 10))) * 10
    b = np.abs(rng.standard_normal((200, 10)))
    v, se = T.median_ratio(a, b, seed=0)
    assert v == pytest.approx(1.0, abs=0.05)  # medians of |N(0,1)|·10 and |N(0,1)|: ratio 10
    # The SE of a log10 median of 2000 |Gaussian| samples: 1/(2f(m)√N)/(m ln 10) ≈ 0.012 each, √2 for two.
    assert 0.008 < se < 0.035
    v, se = T.median_ratio(np.full((5, 3), np.inf), b[:5, :3], seed=0)
    assert not np.isfinite(v) and not np.isfinite(se)
