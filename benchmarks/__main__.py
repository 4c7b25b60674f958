"""The whole suite in one run: one JSON file, one printed report, and RESULTS.md.

    python -m benchmarks [--quick] [--out FILE] [--no-baselines] [--no-report]
                         [--only roofline,kernels,one_step,attacks,train,reproduce]

Sections: ``roofline`` (matmul rate and memory bandwidth), ``kernels`` (forward + input
gradient, as fractions of the roofline and against PyTorch), ``one_step`` (forward+gradient
equivalents per pair of the one-step attack), ``attacks`` (distance, gradient evaluations and
pairs/s against Foolbox and torchattacks), ``train`` (margin-training steps/s and steps to
1e-30) and ``reproduce`` (wall time of ``jaxadv reproduce all --scale quick`` and its claims;
minutes, so only in a full run or when named in ``--only``). Every timed figure carries
min/median/max over repeats and its compile time separately; the ratios are taken within this
one run, since the machines are shared and noisy. The run then judges the issue's targets from
its own numbers (``benchmarks/targets.py``). The JSON also records versions, backend, devices
and the load average at the start and the end. When the JSON goes to ``benchmarks/results/``,
``benchmarks/RESULTS.md`` is regenerated from it (``--no-report`` skips that).
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import os
import re
import sys
import time
from typing import Any, Callable

import jax

from benchmarks import _harness, kernels, roofline, targets

SECTIONS = ("roofline", "kernels", "one_step", "attacks", "train", "reproduce")
# Sections a plain run leaves out at --quick scale (they take minutes whatever the scale).
FULL_ONLY = ("reproduce",)


def _sections(text: str) -> list[str]:
    chosen = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in SECTIONS]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"--only takes a comma-separated subset of {', '.join(SECTIONS)}, got {text!r}")
    return chosen


def default_sections(quick: bool) -> list[str]:
    return [s for s in SECTIONS if not (quick and s in FULL_ONLY)]


def _one_step_module():
    # Imported when its section runs: the module is optional for the rest of the suite.
    return importlib.import_module("benchmarks.one_step")


def _timed(out: dict[str, Any], name: str, fn: Callable[[], Any]) -> None:
    t0 = time.perf_counter()
    out[name] = fn()
    t1 = time.perf_counter()
    out["wall_s"][name] = t1 - t0
    out.setdefault("_spans", {})[name] = (t0, t1)


def run(*, quick: bool, baselines: bool, only: list[str] | None = None) -> dict[str, Any]:
    """Runs the chosen sections (default: :func:`default_sections`); returns the JSON-ready
    result, with the targets judged from it."""
    only = default_sections(quick) if only is None else only
    with _harness.LoadSampler() as load:
        out = _run(quick=quick, baselines=baselines, only=only)
    # How busy the machine was: other jobs on it slow every figure, and a ratio of two
    # figures taken minutes apart under different loads means little.
    spans = out.pop("_spans", {})
    out["loadavg"]["during"] = {name: load.summary(*span) for name, span in spans.items()}
    out["loadavg"]["during"]["all"] = load.summary(-float("inf"), float("inf"))
    out["targets"] = targets.evaluate(out)
    return out


def _run(*, quick: bool, baselines: bool, only: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"environment": _harness.environment(), "scale": "quick" if quick else "full",
                           "sections": only, "wall_s": {},
                           "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                           "loadavg": {"start": list(os.getloadavg())}}
    roof = None
    if "roofline" in only or "kernels" in only:
        _timed(out, "roofline", lambda: roofline.run(quick=quick))
        roof = out["roofline"]
    if "kernels" in only:
        # The cell-shape ceilings are measured by the kernels section and added to the roofline.
        _timed(out, "kernels", lambda: kernels.run(quick=quick, baselines=baselines, roofline_result=roof))
    if "one_step" in only:
        try:
            mod = _one_step_module()
        except ModuleNotFoundError as e:
            if e.name != "benchmarks.one_step":
                raise
            out["one_step"] = {"skipped": "benchmarks/one_step.py is not in this checkout"}
        else:
            _timed(out, "one_step", lambda: mod.run(quick=quick))
    if "attacks" in only:
        from benchmarks import attacks

        def attacks_section():
            res = attacks.run(quick=quick, baselines=baselines)
            res.pop("environment", None)
            return res

        _timed(out, "attacks", attacks_section)
    if "train" in only:
        from benchmarks import train

        _timed(out, "train", lambda: {"throughput": train.throughput(quick=quick),
                                      "steps_to_1e-30": train.steps_to_target(quick=quick)})
    if "reproduce" in only:
        from benchmarks import reproduce

        _timed(out, "reproduce", lambda: reproduce.run(quick=quick))
    out["loadavg"]["end"] = list(os.getloadavg())
    out["finished"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    return out


def render(res: dict[str, Any]) -> str:
    """The printed report of a :func:`run` result (RESULTS.md shows the same blocks)."""
    from benchmarks import report

    lines = [report.headline(res)]
    for title, body in report.blocks(res):
        lines += ["", title] + ([body] if body else [])
    return "\n".join(lines)


def default_out(quick: bool) -> str:
    """``benchmarks/results/suite-<backend>[-<device kind>][-quick].json``; the device kind is
    left out where it only repeats the backend (``cpu``)."""
    backend = jax.default_backend()
    kinds = sorted({d.device_kind for d in jax.devices()})
    kind = re.sub(r"[^a-z0-9]+", "-", "-".join(kinds).lower()).strip("-")
    name = "-".join(p for p in ("suite", backend, "" if kind == backend else kind) if p)
    return os.path.join(RESULTS_DIR, f"{name}{'-quick' if quick else ''}.json")


RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def main(argv: list[str] | None = None) -> int:
    from jaxadv.experiments import write_json

    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller sizes and fewer cells, for a smoke run")
    parser.add_argument("--out", default=None,
                        help="JSON output (default benchmarks/results/suite-<backend>[-<device kind>][-quick].json)")
    parser.add_argument("--no-baselines", action="store_true", help="skip PyTorch and the attack libraries")
    parser.add_argument("--no-report", action="store_true", help="do not regenerate benchmarks/RESULTS.md")
    parser.add_argument("--only", type=_sections, default=None, help=f"comma-separated subset of {','.join(SECTIONS)}")
    args = parser.parse_args(argv)
    res = run(quick=args.quick, baselines=not args.no_baselines, only=args.only)
    print(render(res))
    path = args.out or default_out(args.quick)
    write_json(path, res)
    print(f"wrote {path}")
    # RESULTS.md is rendered from benchmarks/results/ alone: a JSON written elsewhere leaves it as it is.
    if not args.no_report and os.path.dirname(os.path.abspath(path)) == os.path.abspath(RESULTS_DIR):
        from benchmarks import report

        report.main([])
    return 0


if __name__ == "__main__":
    sys.exit(main())
