"""Runs experiments into an output directory and writes their results, figures and report.

Layout of ``out/``::

    REPORT.md                  every claim of every experiment in one table, figures inline
    <name>/config.json         the configuration the cells belong to
    <name>/<cell>.npz          one per finished cell (atomic; skipped on rerun)
    <name>/results.json        config, environment, claims
    <name>/<name>.png          figures
"""

from __future__ import annotations

import json
import os
from typing import Any, Sequence

import jax

from jaxadv._env import environment
from jaxadv.experiments import (
    bartlett2021,
    bubeck2021,
    daniely2020,
    depalma2021,
    vardi2022,
)
from jaxadv.experiments._spec import Experiment, RunOptions  # noqa: F401  (RunOptions: re-exported for callers)
from jaxadv.experiments._store import CellStore, run_cells, write_json, write_text
from jaxadv.experiments.claims import markdown_row

# In the order, which `all` follows.
EXPERIMENTS: dict[str, Experiment] = {e.name: e for e in (bubeck2021.EXPERIMENT, bartlett2021.EXPERIMENT, daniely2020.EXPERIMENT, vardi2022.EXPERIMENT,
                                                          depalma2021.EXPERIMENT)}
SCALES = ("quick", "paper")


def _check(names: str | Sequence[str], scale: str) -> list[str]:
    if isinstance(names, str):
        names = list(EXPERIMENTS) if names == "all" else [names]
    unknown = [n for n in names if n not in EXPERIMENTS]
    if unknown:
        raise ValueError(f"unknown experiment(s) {unknown}; expected 'all' or one of {sorted(EXPERIMENTS)}.")
    if scale not in SCALES:
        raise ValueError(f"`scale` must be one of {list(SCALES)}, got {scale!r}.")
    return list(names)


def config_of(name: str, scale: str, *, seed: int = 0) -> dict[str, Any]:
    """The configuration ``jaxadv reproduce NAME --scale SCALE --seed SEED`` runs, as a plain dict.

    A notebook or script may edit it (fewer dimensions, networks or inputs) and hand it to
    the experiment's own functions, ``EXPERIMENTS[name].cells(config)`` (each cell a
    ``(name, compute)`` pair), ``.claims(config, results)`` and ``.figures(...)``; experiments
    that read datasets (``depalma2021``) first need ``.prepare(config, RunOptions(...))``.
    """
    if name == "all":
        raise ValueError("`name` must be one experiment, got 'all'; expected one of " f"{sorted(EXPERIMENTS)}.")
    _check(name, scale)
    return {"experiment": name, "scale": scale, "seed": int(seed), **EXPERIMENTS[name].scales[scale]}


def run(names: str | Sequence[str], *, scale: str = "quick", out: str = "runs", seed: int = 0,
        force: bool = False, progress: bool = True, data_dir: str | None = None,
        download: bool = False) -> dict[str, list[dict[str, Any]]]:
    """Runs (or resumes) experiments and writes their results and ``out/REPORT.md``.

    Args:
      names: ``"all"``, one experiment name, or a list of names.
      scale: ``"quick"`` or ``"paper"``.
      out: the output root.
      seed: the PRNG seed every cell's keys derive from.
      force: move aside results of a different configuration instead of refusing.
      progress: tqdm bars over cells.
      data_dir: where experiments that need datasets look first (see :mod:`jaxadv.data`).
      download: whether missing datasets may be downloaded (into ``data_dir``, else
        ``$JAXADV_DATA_DIR``, else the cache); a ``data_dir`` that does not exist is created.

    Returns:
      The claims of each experiment, as JSON-ready dicts.
    """
    names = _check(names, scale)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"`seed` must be an integer ≥ 0, got {seed!r}.")
    if not isinstance(download, bool):
        raise TypeError(f"`download` must be True or False, got {download!r}.")
    if data_dir is not None and not isinstance(data_dir, (str, os.PathLike)):
        raise TypeError(f"`data_dir` must be a directory path or None, got {data_dir!r}.")
    if data_dir is not None and not os.path.isdir(data_dir):
        if download and not os.path.exists(data_dir):
            os.makedirs(data_dir)  # where the download goes
        else:
            raise ValueError(f"`data_dir` {data_dir!r} is not a directory.")
    options = RunOptions(data_dir=data_dir, download=download)
    configs = {}
    for n in names:  # every check, and every dataset decision, before any cell runs
        config = config_of(n, scale, seed=seed)
        prepare = EXPERIMENTS[n].prepare
        configs[n] = config if prepare is None else prepare(config, options)
    stores = {n: CellStore(out, n, configs[n], force=force) for n in names}
    env = {**environment(), "dtype": "float64" if jax.config.jax_enable_x64 else "float32"}  # the same for every experiment
    claims = {}
    for name in names:
        exp, store = EXPERIMENTS[name], stores[name]
        results = run_cells(store, exp.cells(store.config), progress=progress, desc=name)
        claims[name] = [c.to_json() for c in exp.claims(store.config, results)]
        figures = exp.figures(store.config, results, store.dir)
        write_json(os.path.join(store.dir, "results.json"), {
            "config": store.config, "environment": env, "claims": claims[name], "figures": figures,
        })
    write_report(out)
    return claims


def write_report(out: str) -> str:
    """Rebuilds ``out/REPORT.md`` from the saved ``results.json`` files (no recompute)."""
    lines = ["# jaxadv reproduction report", "", "| experiment | claim | paper | measured | holds |", "|---|---|---|---|---|"]
    sections = []
    # Results moved aside by --force (<name>.superseded-<time>) belong to another configuration.
    found = [n for n in os.listdir(out) if ".superseded-" not in n and os.path.isfile(os.path.join(out, n, "results.json"))]
    order = {name: i for i, name in enumerate(EXPERIMENTS)}  # the papers' order, then any others
    for name in sorted(found, key=lambda n: (order.get(n, len(order)), n)):
        with open(os.path.join(out, name, "results.json")) as fh:
            res = json.load(fh)
        lines += [markdown_row(c, name) for c in res["claims"]]
        sections += ["", f"## {name}", "", f"Scale `{res['config']['scale']}`, seed {res['config']['seed']}, "
                     f"jax {res['environment']['jax']} on {res['environment']['backend']}.", ""]
        sections += [f"![{f}]({name}/{f})" for f in res.get("figures", [])]
    text = "\n".join(lines + sections) + "\n"
    path = os.path.join(out, "REPORT.md")
    write_text(path, text)
    return path
