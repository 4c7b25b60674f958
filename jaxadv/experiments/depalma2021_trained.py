"""De Palma, Kiani & Lloyd 2021, Figs 3–4 on image datasets: random against trained networks.

Part of the ``depalma2021`` experiment (its configuration's ``"images"`` entry). For each
dataset (MNIST odd vs even, CIFAR-10 {airplane, bird, deer, frog, ship} vs the rest; §1.6 of
PROTOCOLS.md) and each block of networks, one cell:

* draws ``count`` random residual networks and trains ``count`` others
  (:func:`jaxadv.train.train_classifier`: Adam, rate 1e−4, batch 32, 15 epochs for MNIST and
  25 for CIFAR-10, re-initialised while the first epoch leaves the accuracy on the first 1000
  training images below 0.53, as the authors' code; without their L2 penalty of 1e−4 on the
  convolution kernels, which ``weight_decay`` would apply to the dense readout too, and with
  one output instead of two softmax logits: the same loss, not the same Adam path);
* gives every network ``n_images`` random images (U[0,1] pixels), ``n_images`` training
  images and ``n_images`` test images (drawn with replacement, per network, as the code's
  ``np.random.choice``);
* measures the ℓ1 distance to the decision boundary of each (network, image) with
  :func:`jaxadv.attacks.min_norm`, inside the [0, 1] box (the paper's setup: Foolbox's bounds)
  and without it (the theory has no box);
* records training and test accuracy, restarts and losses.

From these: Fig 3 (sorted ℓ1 distances against the percentile for random, training and test
images, with the linear fit over percentiles 0–0.25) and Fig 4 (median ℓ1 distance, random
against trained networks, on the three kinds of image), and the paper's statements about them.

Data. ``prepare`` settles, before any cell runs, which data each dataset uses: its files
when they are in the data directory (``--data-dir``, ``$JAXADV_DATA_DIR`` or the cache; see
:mod:`jaxadv.data`), or after ``--download``. When the MNIST files are missing,
scikit-learn's 8×8 handwritten digits (odd vs even, installed with ``jaxadv[digits]``) stand in
for MNIST: Fig 3's linear profile (Corollary 1, for any data) is judged on them, while the
paper's statements about MNIST itself (training accuracy, Fig 4's effect of training) are
shown with the digits' numbers and no verdict. Nothing stands in for CIFAR-10: its claims are
reported as not measured. The choice is part of the recorded configuration, so results
from different data never mix.

Grids (``images["arch"]`` is the network; trained networks have trainable biases
initialised at zero, as Keras' layers; random ones are fresh draws of the same network):

* quick: the residual network with one block per stage and filters 8/16/32 (depth 8), 8
  networks of each kind per dataset, 10 images of each kind per network, the first 2000
  training images (all 1437 of the digits) for 15 / 25 epochs, min_norm with 8 gradient
  steps.
* paper: the paper's residual network (depth 20, filters 32/64/128), 50 networks of each
  kind per dataset in cells of 10, 20 images of each kind per network (the code's
  ``n_test = 20``), the full training sets, min_norm with 20 steps. The authors trained 250
  networks per norm; one set serves here (only ℓ1 is plotted).

Where the paper is silent, and what we chose:

* Only ℓ1 (Figs 3 and 4 show ℓ1); one attack, ``min_norm``, instead of the minimum over
  12 Foolbox attacks (see ``depalma2021``).
* Fig 3 shows both random networks (the authors' ``plot_profile.py`` reads untrained
  networks) and trained ones (the paper's caption). Its claim pools every curve, each divided
  by its median, as the random-input profile claim does.
* "Does not significantly change" (MNIST, training and test images) is read as: the median
  changes by less than a quarter decade (a factor 10^¼ ≈ 1.8); "roughly half an order of
  magnitude" (CIFAR-10) as: a decrease between 10^¼ and 10^¾. A quarter decade is the
  midpoint between no change and the CIFAR-10 effect, so the two statements are told apart
  by the same margin. Each ratio is also required to be 3 bootstrap standard errors (over
  networks) from the other side of its bound.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxadv import attacks, data, kernels, nets, train
from jaxadv.experiments._blocks import ranges
from jaxadv.experiments._spec import RunOptions, cell_key
from jaxadv.experiments.claims import Claim

KINDS = ("random", "trained")  # networks
IMAGE_TYPES = ("random", "train", "test")  # images
BOXES = ("box", "nobox")
DATASET_LABEL = {"mnist": "MNIST", "cifar10": "CIFAR-10", "digits": "digits"}
# What may stand in for a dataset whose files are missing (see the module docstring).
FALLBACK = {"mnist": "digits", "cifar10": None}

# Fig 3: as the random-input profile claim of depalma2021 (same derivation).
PROFILE_FIT_TO = 0.25
PROFILE_INTERCEPT_TOL = 0.10

# Fig 4 (see the module docstring): bounds on log10(median untrained / median trained).
NO_CHANGE_DECADES = 0.25
HALF_DECADE = (0.25, 0.75)
SE_MULT = 3.0
N_BOOT = 400
# Medians are over the pairs where min_norm found a boundary point (failed attacks drop out,
# as in the paper's code). If at most a fraction q = 10% of a group drops out, the median of
# the rest lies between the full group's 45th and 55th percentiles — inside the ±5-percentile
# band the paper plots — whatever the dropped distances were; below that, a group's median
# says too little and its claims fail.
MIN_SUCCESS = 0.9
# ">98% training set accuracy in all cases" (the paper, of its trained networks).
TRAIN_ACCURACY = 0.98


def network(spec: Mapping[str, Any], input_shape: tuple[int, ...], *, trainable: bool = False) -> nets.Network:
    """The network of an ``archs`` entry on inputs of ``input_shape``.

    ``trainable`` gives the residual network zero-initialised biases (Keras' defaults, what the
    authors train); the random networks of Figs 1–2 have none, the same function at init.
    """
    kind = spec["kind"]
    if kind == "mlp" and len(input_shape) == 1:
        return nets.mlp(input_shape[0], spec["widths"], bias=True, weight_std=spec["weight_std"], bias_std=spec["bias_std"])
    if kind == "mlp":  # on images: the same fully connected net after a flatten
        L = nets.layers
        stack = [L.Flatten()] + [layer for w in spec["widths"] for layer in (L.Dense(w), L.Activation("relu"))]
        return nets.sequential([*stack, L.Dense(1)], input_shape, bias=True, weight_std=spec["weight_std"],
                               bias_std=0.0 if trainable else spec["bias_std"])
    if kind == "resnet":
        bias = dict(bias=True, bias_std=0.0) if trainable else dict(bias=spec.get("bias", False),
                                                                    bias_std=spec.get("bias_std", 1.0))
        return nets.resnet(input_shape, depth=spec["depth"], filters=spec["filters"], **bias)
    raise ValueError(f"unknown architecture kind {kind!r}; expected 'mlp' or 'resnet'.")


def profile_fit(d: np.ndarray) -> dict[str, Any]:
    """Fig 3: sorted distances against percentiles linspace(0, 1, N), linear fit over 0–0.25.

    As the paper's ``plot_profile.py``: ``np.polyfit(x[:N//4], y[:N//4], 1)``.

    Args:
      d: distances, any shape (non-finite values are dropped).

    Returns:
      dict with ``q``, ``y`` (sorted finite distances), ``slope``, ``intercept`` and
      ``intercept_ratio`` = intercept / (fit at 0.25).
    """
    y = np.sort(d[np.isfinite(d)].ravel())
    q = np.linspace(0, 1, y.size)
    m = max(int(y.size * PROFILE_FIT_TO), 3)
    if y.size < m:  # too few points to fit a line: nan, which fails the claim
        return {"q": q, "y": y, "slope": float("nan"), "intercept": float("nan"), "intercept_ratio": float("nan")}
    a, b = np.polyfit(q[:m], y[:m], 1)
    return {"q": q, "y": y, "slope": float(a), "intercept": float(b), "intercept_ratio": float(b / (a * PROFILE_FIT_TO + b))}


# ---------------------------------------------------------------------------------------
# preparing the data


def prepare(config: dict[str, Any], options: RunOptions) -> dict[str, Any]:
    """Settles which data each dataset uses (files, download, stand-in or none), before any cell.

    Records the choice and a SHA-256 of the data actually loaded (``images["digests"]``), so a
    resume with other files under the same names is refused as a different configuration;
    the data directory itself goes in ``_data_dir`` (where, not what: not compared).
    """
    if not config.get("images"):
        return config
    images = dict(config["images"])
    where = data.resolve_data_dir(data_dir=options.data_dir)
    sources, notes = {}, {}
    for name in images["datasets"]:
        if options.download and not data.available(name, data_dir=options.data_dir):
            data.download(name, data_dir=options.data_dir)
        if data.available(name, data_dir=options.data_dir):
            sources[name], notes[name] = name, f"{DATASET_LABEL[name]} files"
            continue
        fallback = FALLBACK[name]
        missing = f"{DATASET_LABEL[name]} files not found in the data directory (pass --data-dir, or --download)"
        if fallback is not None and data.available(fallback):
            sources[name], notes[name] = fallback, f"{missing}; scikit-learn's 8×8 digits stand in"
        elif fallback is not None:
            sources[name], notes[name] = None, f"{missing}, and scikit-learn is not installed for the digits " \
                                                "stand-in (pip install 'jaxadv[digits]')"
        else:
            sources[name], notes[name] = None, f"{missing}; nothing stands in for it"
    images.update(sources=sources, notes=notes)
    config = {**config, "images": images, "_data_dir": where}
    images["digests"] = {src: _load(config, src)[4] for src in _used_sources(config)}
    return config


def _used_sources(config: Mapping[str, Any]) -> list[str]:
    out = []
    for name in config["images"]["datasets"] if config.get("images") else ():
        source = config["images"]["sources"][name]
        if source is not None and source not in out:
            out.append(source)
    return out


def _blocks(images: Mapping[str, Any]) -> list[tuple[int, int]]:
    size = images["nets_per_cell"]
    return ranges(images["n_nets"], size)


def _cell_name(source: str, block: tuple[int, int]) -> str:
    return f"images,data={source},nets={block[0]}-{block[1] - 1}"


# ---------------------------------------------------------------------------------------
# cells


def _load(config: Mapping[str, Any], source: str):
    """(train images, train labels, test images, test labels, SHA-256 of all four) of ``source``."""
    tr = data.load(source, "train", data_dir=config.get("_data_dir"), progress=False)
    te = data.load(source, "test", data_dir=config.get("_data_dir"), progress=False)
    digest = hashlib.sha256()
    for a in (tr.images, tr.labels, te.images, te.labels):
        digest.update(np.ascontiguousarray(a).tobytes())
    n_train = config["images"]["n_train"]
    keep = len(tr.images) if n_train is None else min(n_train, len(tr.images))
    return tr.images[:keep], tr.labels[:keep], te.images, te.labels, digest.hexdigest()


def _compute(config: Mapping[str, Any], source: str, block: tuple[int, int]) -> dict[str, np.ndarray]:
    images_cfg = config["images"]
    spec = images_cfg["arch"]
    x_tr, y_tr, x_te, y_te, digest = _load(config, source)
    recorded = images_cfg.get("digests", {}).get(source)
    if recorded is not None and digest != recorded:
        raise ValueError(f"the {DATASET_LABEL[source]} data in {config.get('_data_dir')!r} changed since this run's "
                         f"configuration was recorded (SHA-256 {digest[:12]}… ≠ {recorded[:12]}…); use another --out.")
    shape = x_tr.shape[1:]
    k_random, k_train, k_pick, k_pixels = jax.random.split(cell_key(config["seed"], _cell_name(source, block)), 4)
    count, m = block[1] - block[0], images_cfg["n_images"]
    epochs = images_cfg["epochs"].get(source, images_cfg["epochs"]["mnist"])  # the digits train as MNIST

    net = network(spec, shape, trainable=True)
    trained = train.train_classifier(net, k_train, x_tr, y_tr, epochs=epochs, n_nets=count)
    random_params = kernels.init_many(net, k_random, count)

    # Per network: m random, m training and m test images (with replacement, as np.random.choice).
    k_tr, k_te = jax.random.split(k_pick)
    i_tr = np.asarray(jax.random.randint(k_tr, (count, m), 0, len(x_tr)))
    i_te = np.asarray(jax.random.randint(k_te, (count, m), 0, len(x_te)))
    pixels = np.asarray(jax.random.uniform(k_pixels, (count, m, *shape)), np.float32)
    xs = jnp.asarray(np.concatenate([pixels, x_tr[i_tr], x_te[i_te]], axis=1))  # (count, 3m, H, W, C)

    out: dict[str, np.ndarray] = {
        "train_accuracy": np.asarray(train.accuracy(net, trained.params, x_tr, y_tr)),
        "test_accuracy": np.asarray(train.accuracy(net, trained.params, x_te, y_te)),
        "random_train_accuracy": np.asarray(train.accuracy(net, random_params, x_tr, y_tr)),
        "check_accuracy": np.asarray(trained.check_accuracy),
        "restarts": np.asarray(trained.restarts),
        "passed": np.asarray(trained.passed),
        "loss": np.asarray(trained.loss),
        "n_train": np.full(count, len(x_tr)),
    }
    for kind, params in zip(KINDS, (random_params, trained.params)):
        for box in BOXES:
            res = attacks.min_norm(net, params, xs, norm=1, n_steps=images_cfg["n_steps"],
                                   bounds=(0.0, 1.0) if box == "box" else None)
            d = np.where(np.asarray(res.success), np.asarray(res.distance, np.float64), np.inf)
            out[f"l1_{kind}_{box}"] = d.reshape(count, len(IMAGE_TYPES), m)
    return out


def cells(config: Mapping[str, Any]):
    out = []
    for source in _used_sources(config):
        for block in _blocks(config["images"]):
            out.append((_cell_name(source, block), lambda source=source, block=block: _compute(config, source, block)))
    return out


# ---------------------------------------------------------------------------------------
# analysis (from the cells' arrays only)


def _gather(config, results, source: str) -> dict[str, np.ndarray]:
    parts = [results[_cell_name(source, b)] for b in _blocks(config["images"])]
    return {k: np.concatenate([p[k] for p in parts], axis=0) for k in parts[0]}


def _finite_median(values: np.ndarray, axis: Any = None) -> np.ndarray:
    """Median over the finite values (failed attacks, inf, drop out); nan where there are none."""
    v = np.where(np.isfinite(values), values, np.nan)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-nan slices: nan, which fails the claim
        return np.nanmedian(v, axis=axis)


def median_ratio(untrained: np.ndarray, trained: np.ndarray, seed: int) -> tuple[float, float]:
    """log10(median untrained / median trained) and its bootstrap SE over networks.

    Medians are over the pairs where the attack succeeded (see ``MIN_SUCCESS``).

    Args:
      untrained, trained: ``(n_nets, m)`` distances of one image type (inf: attack failed).
      seed: seeds the bootstrap.

    Returns:
      ``(value, se)``; nan where a median is undefined (no success at all, in the data or in
      a resample), so that the claim fails rather than rests on the resamples that worked.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        value = float(np.log10(_finite_median(untrained) / _finite_median(trained)))
        rng = np.random.default_rng(seed)
        iu = rng.integers(0, untrained.shape[0], size=(N_BOOT, untrained.shape[0]))
        it = rng.integers(0, trained.shape[0], size=(N_BOOT, trained.shape[0]))
        boot = np.log10(_finite_median(untrained[iu].reshape(N_BOOT, -1), axis=1)
                        / _finite_median(trained[it].reshape(N_BOOT, -1), axis=1))
    se = float(np.std(boot, ddof=1)) if np.all(np.isfinite(boot)) else float("nan")
    return value, se


def _summary(config, results, source: str) -> dict[str, Any]:
    g = _gather(config, results, source)
    seed = config["seed"]
    out: dict[str, Any] = {"cells": g, "ratios": {}, "bands": {}, "success": {}}
    for box in BOXES:
        for j, image in enumerate(IMAGE_TYPES):
            out["ratios"][box, image] = median_ratio(g[f"l1_random_{box}"][:, j], g[f"l1_trained_{box}"][:, j],
                                                     seed + j + 10 * BOXES.index(box))
            for kind in KINDS:
                v = g[f"l1_{kind}_{box}"][:, j].ravel()
                out["success"][box, kind, image] = float(np.mean(np.isfinite(v)))
                fin = v[np.isfinite(v)]
                out["bands"][box, kind, image] = tuple(float(np.percentile(fin, q)) if fin.size else float("nan")
                                                       for q in (50, 45, 55))
    # Fig 3's claim: every curve (network kind × image type, in the box), each over its median.
    pooled = []
    for kind in KINDS:
        for j in range(len(IMAGE_TYPES)):
            v = g[f"l1_{kind}_box"][:, j].ravel()
            v = v[np.isfinite(v)]
            if v.size:
                pooled.append(v / np.median(v))
    out["profile_pooled"] = profile_fit(np.concatenate(pooled) if pooled else np.empty(0))
    return out


def _min_success(s: Mapping[str, Any], box: str) -> float:
    return min(v for (b, _, _), v in s["success"].items() if b == box)


def _fig4_claims(name: str, label: str, s: Mapping[str, Any], box: str) -> list[Claim]:
    where = "in the [0,1] box" if box == "box" else "without the box"
    ratios = {image: s["ratios"][box, image] for image in IMAGE_TYPES}
    success = _min_success(s, box)
    shown = [f"{image}: {v:+.2f} ± {se:.2f}" for image, (v, se) in ratios.items()] + [f"attack success ≥ {success:.3f}"]
    enough = success >= MIN_SUCCESS
    ok = {image: bool(enough and np.isfinite(v) and np.isfinite(se)) for image, (v, se) in ratios.items()}
    need = f"; medians over successful attacks, each group ≥ {MIN_SUCCESS:.0%} successful"
    if name == "mnist":
        v, se = ratios["random"]
        decreases = ok["random"] and v - SE_MULT * se > 0
        unchanged = all(ok[i] and abs(ratios[i][0]) + SE_MULT * ratios[i][1] <= NO_CHANGE_DECADES for i in ("train", "test"))
        return [Claim(
            f"depalma2021/{name}-training-effect-{box}",
            f"{label}, ℓ1 {where} (Fig 4): training decreases the median distance on random images "
            f"(log10 untrained/trained > 0 by {SE_MULT:g} bootstrap SE) and changes it by less than a quarter decade "
            f"on training and test images (|log10 ratio| + {SE_MULT:g} SE ≤ {NO_CHANGE_DECADES}){need}.",
            "decrease on random images; no significant change on train/test", shown, bool(decreases and unchanged))]
    lo, hi = HALF_DECADE
    half = all(ok[i] and ratios[i][0] - SE_MULT * ratios[i][1] >= lo and ratios[i][0] + SE_MULT * ratios[i][1] <= hi
               for i in IMAGE_TYPES)
    return [Claim(
        f"depalma2021/{name}-training-effect-{box}",
        f"{label}, ℓ1 {where} (Fig 4): training decreases the median distance by roughly half an order of magnitude "
        f"on random, training and test images: log10 untrained/trained in [{lo}, {hi}] by {SE_MULT:g} bootstrap SE{need}.",
        "≈ 0.5 decade decrease, every image type", shown, half)]


def _standing_in(claim: Claim, source: str, name: str) -> Claim:
    """A dataset-specific statement measured on a stand-in: the numbers, without a verdict."""
    return Claim(claim.id, claim.statement, claim.paper_value,
                 [f"{DATASET_LABEL[source]} in place of {DATASET_LABEL[name]}, not tested"]
                 + list(claim.measured if isinstance(claim.measured, list) else [claim.measured]), None)


def claims(config, results) -> list[Claim]:
    out = []
    images = config.get("images") or {"datasets": ()}
    for name in images["datasets"]:
        source, note = images["sources"][name], images["notes"][name]
        label = DATASET_LABEL[name] if source in (name, None) else f"{DATASET_LABEL[source]} standing in for " \
                                                                  f"{DATASET_LABEL[name]}"
        ids = [f"depalma2021/{name}-trained-accuracy", f"depalma2021/{name}-profile-linear"] + \
              [f"depalma2021/{name}-training-effect-{box}" for box in BOXES]
        if source is None:
            reason = f"{note} (data directory {config.get('_data_dir')})"
            out += [Claim.not_measured(i, f"{label}: {i.split('/')[1]} (Figs 3–4)", "see the paper", reason) for i in ids]
            continue
        s = _summary(config, results, source)
        g = s["cells"]
        acc = g["train_accuracy"]
        # The paper's statements about its datasets (accuracy, Fig 4) get a verdict on those
        # datasets only; Fig 3's linear profile is Corollary 1's, for any data.
        n_train = g["n_train"].min() if "n_train" in g else images["n_train"]
        specific = [Claim(
            ids[0],
            f"{label}: every trained network passes the first-epoch check and reaches > {TRAIN_ACCURACY:.0%} training "
            f"accuracy ({g['loss'].shape[1]} epochs, Adam 1e−4, batch 32, on {n_train} training images).",
            f"> {TRAIN_ACCURACY:.0%} in all cases",
            [f"min {acc.min():.4f}", f"median {np.median(acc):.4f}", f"test median {np.median(g['test_accuracy']):.4f}",
             f"restarts {int(g['restarts'].sum())}"],
            bool(g["passed"].all() and acc.min() > TRAIN_ACCURACY))]
        for box in BOXES:
            specific += _fig4_claims(name, label, s, box)
        if source != name:
            specific = [_standing_in(c, source, name) for c in specific]
        prof = s["profile_pooled"]
        out += specific[:1]
        success = _min_success(s, "box")
        out.append(Claim(
            ids[1],
            f"{label} (Fig 3): sorted ℓ1 distances grow linearly with the percentile from 0 for random, training and test "
            f"images, random and trained networks (each curve over its median, pooled; pairs where min_norm found no "
            f"boundary point drop out, as failed attacks do in the paper's code, each curve ≥ {MIN_SUCCESS:.0%} "
            f"successful): the fit over percentiles 0–{PROFILE_FIT_TO} has |intercept| ≤ {PROFILE_INTERCEPT_TOL:g} × its "
            "value at 0.25.",
            "linear from 0 (Corollary 1 for random networks; the paper's Fig 3 for trained ones)",
            [round(prof["intercept_ratio"], 4), f"attack success ≥ {success:.3f}"],
            bool(success >= MIN_SUCCESS and np.isfinite(prof["intercept_ratio"])
                 and abs(prof["intercept_ratio"]) <= PROFILE_INTERCEPT_TOL)))
        out += specific[1:]
    return out


# ---------------------------------------------------------------------------------------
# figures


def figures(config, results, directory) -> list[str]:
    from matplotlib.figure import Figure  # no pyplot: no global backend or figure state

    sources = _used_sources(config)
    if not sources:
        return []
    summaries = {src: _summary(config, results, src) for src in sources}
    names = []

    fig = Figure(figsize=(5.2 * len(sources), 8))
    axes = np.atleast_2d(fig.subplots(2, len(sources), squeeze=False))
    for col, src in enumerate(sources):
        g = summaries[src]["cells"]
        for row, kind in enumerate(KINDS):
            ax = axes[row, col]
            for j, image in enumerate(IMAGE_TYPES):
                p = profile_fit(g[f"l1_{kind}_box"][:, j])
                line, = ax.plot(p["q"], p["y"], label=f"{image} images")
                ax.plot(p["q"], p["slope"] * p["q"] + p["intercept"], ":", color=line.get_color(), lw=1)
            ax.set_xlabel("percentile")
            ax.set_ylabel("ℓ1 adversarial distance")
            ax.set_title(f"Fig 3: {DATASET_LABEL[src]}, {kind} networks (dotted: fit over 0–{PROFILE_FIT_TO})", fontsize=9)
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(directory, "depalma2021_fig3_images.png"), dpi=90)
    names.append("depalma2021_fig3_images.png")

    fig = Figure(figsize=(11, 1.2 + 1.1 * len(sources) * len(KINDS)))
    axes = fig.subplots(1, len(BOXES), squeeze=False)[0]
    for ax, box in zip(axes, BOXES):
        labels, y = [], 0
        for src in sources:
            for kind in KINDS:
                for j, image in enumerate(IMAGE_TYPES):
                    med, lo, hi = summaries[src]["bands"][box, kind, image]
                    ax.errorbar([med], [y + 0.25 * j], xerr=[[hi - med], [hi - med]], fmt="o", capsize=3,
                                color=f"C{j}", label=f"{image} images" if y == 0 else None)
                labels.append((y + 0.25, f"{DATASET_LABEL[src]} {'untrained' if kind == 'random' else 'trained'}"))
                y += 1
        ax.set_yticks([t for t, _ in labels], [s for _, s in labels])
        ax.set_xscale("log")
        ax.set_xlabel("median ℓ1 distance (bars: 55th − 50th percentile)")
        ax.set_title(f"Fig 4: random vs trained networks, {'[0,1] box' if box == 'box' else 'no box'}")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(directory, "depalma2021_fig4.png"), dpi=90)
    names.append("depalma2021_fig4.png")
    return names
