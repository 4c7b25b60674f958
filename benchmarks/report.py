"""Regenerates benchmarks/RESULTS.md from the JSON files in benchmarks/results/.

    python -m benchmarks.report

One section per machine (backend, device kinds and core count, as the run recorded them):
the latest full-scale suite run (``suite-*.json`` from ``python -m benchmarks``) of that
machine, or its latest quick run when it has no full one, with every table the suite prints
and the targets judged from that run. Results of the standalone scripts (``attacks-*.json``,
``train-*.json``) follow. Every number in RESULTS.md comes from a results file written by a
benchmark run; nothing is typed in by hand. ``python -m benchmarks`` calls this after writing
its JSON into benchmarks/results/.
"""

from __future__ import annotations

import glob
import importlib
import json
import os
import sys
from typing import Any

from benchmarks import _harness, kernels, roofline, targets
from jaxadv.experiments import write_text

HERE = os.path.dirname(os.path.abspath(__file__))


def _machine(env: dict) -> str:
    kinds = ", ".join(env.get("device_kinds", []))
    torch = f", torch {env['torch']}" if env.get("torch") else ""
    return f"{env.get('backend')} ({kinds}; {env.get('cpu_count')} CPU cores), jax {env.get('jax')}{torch}"


def _machine_key(env: dict) -> tuple:
    return (env.get("backend"), tuple(env.get("device_kinds", [])), env.get("cpu_count"))


def headline(res: dict[str, Any]) -> str:
    """One line: machine, versions, scale, when, and the load the run shared the machine with."""
    load = res.get("loadavg", {})
    line = f"{_machine(res['environment'])}; scale {res['scale']}"
    if res.get("started"):
        line += f"; run {res['started']}"
    if load.get("start") and load.get("end"):
        line += f"; 1-min load average {load['start'][0]:.2f} at the start, {load['end'][0]:.2f} at the end"
    during = load.get("during", {}).get("all", {})
    if during.get("mean") is not None:
        line += f", mean {during['mean']:.2f} (max {during['max']:.2f}) during the run, on {res['environment'].get('cpu_count')} cores"
    return line


def blocks(res: dict[str, Any]) -> list[tuple[str, str]]:
    """(title, table) for every section of a suite result, then its targets and wall times."""
    out = []
    if "roofline" in res:
        out.append(("Roofline (measured in this run)", _harness.table(roofline.rows(res["roofline"]), roofline.COLUMNS)))
    if "kernels" in res:
        k = res["kernels"]
        out.append((f"Forward + input gradient, {k['n_x']} inputs per network, median of {k['repeats']} "
                    "('x best torch batched': jaxadv pairs/s over the faster of torch bmm and torch.func.vmap in the "
                    "same weights regime; 'init_many;evaluate' is two jitted calls, 'jit(init_many+evaluate)' one, see "
                    "benchmarks/kernels.py)",
                    _harness.table(kernels.rows(k), kernels.COLUMNS)))
    if "one_step" in res:
        if "skipped" in res["one_step"]:
            out.append((f"one_step: skipped ({res['one_step']['skipped']})", ""))
        else:
            one_step = importlib.import_module("benchmarks.one_step")
            out.append(("one_step", _harness.table(one_step.rows(res["one_step"]), one_step.COLUMNS)))
    if "attacks" in res:
        from benchmarks import attacks

        for cell in res["attacks"]["cells"]:
            out.append((f"Attacks: {cell['network']}, {cell['n_net']} networks x {cell['n_x']} inputs "
                        "(ratios: baseline / jaxadv.min_norm(l2) default)",
                         _harness.table(cell["rows"], attacks.COLUMNS)))
    if "train" in res:
        from benchmarks import train

        t = res["train"]["throughput"]
        out.append((f"train_margin at {t['cell']}: {t['steps_per_s']:.2f} steps/s ({t['gflops_per_s']:.1f} GFLOP/s), "
                    f"first call {t['first_call_s']:.1f} s; steps to a loss below 1e-30 (d = m = 20, k = 50):",
                    _harness.table(res["train"]["steps_to_1e-30"], train.STEPS_COLUMNS)))
    if "reproduce" in res:
        from benchmarks import reproduce

        r = res["reproduce"]
        out.append((f"`{r['command']}` with JAXADV_DATA_DIR empty: {r['wall_s']:.0f} s wall, exit {r['returncode']}",
                    _harness.table(reproduce.rows(r), reproduce.COLUMNS)))
    if res.get("targets"):
        out.append(("Targets, judged from this run's numbers",
                    "\n".join([_harness.table(targets.rows(res["targets"]), targets.COLUMNS), ""]
                              + targets.statements(res["targets"]))))
    if res.get("wall_s"):
        during = res.get("loadavg", {}).get("during", {})

        def load(k: str) -> str:
            m = during.get(k, {}).get("mean")
            return "" if m is None else f" (load {m:.1f})"

        out.append(("Wall time per section (mean 1-min load average during it): "
                    + ", ".join(f"{k} {v:.0f} s{load(k)}" for k, v in res["wall_s"].items()), ""))
    return out


def _suite_section(name: str, res: dict[str, Any]) -> list[str]:
    lines = [f"## {_machine(res['environment'])}", "", f"From `results/{name}`: {headline(res)}.", ""]
    for title, body in blocks(res):
        lines += [title, ""]
        if body:
            lines += ["```", body, "```", ""]
    return lines


def _attacks(res: dict) -> list[str]:
    from benchmarks.attacks import COLUMNS

    lines = [f"Machine: {_machine(res['environment'])}. Scale: {res['scale']}.", ""]
    for cell in res["cells"]:
        lines += [f"**{cell['network']}**, {cell['n_net']} networks × {cell['n_x']} inputs", "", "```"]
        lines += [_harness.table(cell["rows"], COLUMNS), "```", ""]
    lines.append(
        "Ratios are baseline / `jaxadv.min_norm(l2)` (default 20 gradients): the median over pairs of the "
        "per-pair distance ratio (above 1: the baseline's perturbation is larger), gradient "
        "evaluations per sample, and time per pair. Baselines run one network at a time, as they are used."
    )
    return lines


def _train(res: dict) -> list[str]:
    from benchmarks.train import STEPS_COLUMNS

    t = res["throughput"]
    return [
        f"Machine: {_machine(res['environment'])}. Scale: {res['scale']}.",
        "",
        f"`train_margin` at {t['cell']}: **{t['steps_per_s']:.2f} steps/s** "
        f"({t['gflops_per_s']:.1f} GFLOP/s; first call {t['first_call_s']:.1f} s).",
        "",
        "Steps to a loss below 1e-30 (d = m = 20, k = 50):",
        "",
        "```",
        _harness.table(res["steps_to_1e-30"], STEPS_COLUMNS),
        "```",
    ]


def latest_per_machine(found: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    """For each machine, its latest full-scale suite result, or its latest quick one when it
    has no full one; machines in the order of their first file name."""
    best: dict[tuple, tuple[str, dict[str, Any]]] = {}
    order = []
    for name, res in found:
        key = _machine_key(res["environment"])
        if key not in best:
            order.append(key)
            best[key] = (name, res)
            continue
        _, cur = best[key]
        rank = (res.get("scale") == "full", res.get("finished") or res.get("started") or "")
        if rank > (cur.get("scale") == "full", cur.get("finished") or cur.get("started") or ""):
            best[key] = (name, res)
    return [best[k] for k in order]


def render() -> str:
    out = [
        "# Benchmark results",
        "",
        "Generated by `python -m benchmarks.report` from `benchmarks/results/*.json` (the suite,",
        "`python -m benchmarks`, regenerates it after each run). Timings on shared machines are noisy:",
        "compare the ratios, each measured within one run.",
        "",
    ]
    suites, others = [], []
    for path in sorted(glob.glob(os.path.join(HERE, "results", "*.json"))):
        with open(path) as fh:
            res = json.load(fh)
        name = os.path.basename(path)
        (suites if name.startswith("suite") else others).append((name, res))
    for name, res in latest_per_machine(suites):
        out += _suite_section(name, res)
    for name, res in others:
        if name.startswith("attacks"):
            out += [f"## Attacks alone — `{name}`", ""] + _attacks(res) + [""]
        elif name.startswith("train"):
            out += [f"## Margin training alone — `{name}`", ""] + _train(res) + [""]
    return "\n".join(out).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    del argv  # no options; the signature matches the other entry points
    path = os.path.join(HERE, "RESULTS.md")
    write_text(path, render())
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
