"""The whole suite in one run: one JSON file and one printed report.

    python -m benchmarks [--quick] [--out FILE] [--no-baselines] [--only roofline,kernels,...]

Sections (all by default): ``roofline`` (matmul rate and memory bandwidth), ``kernels``
(forward + input gradient, as fractions of the roofline and against PyTorch), ``attacks``
(distance, gradient evaluations and pairs/s against Foolbox and torchattacks) and ``train``
(margin-training steps/s and steps to 1e-30). Every timed figure carries min/median/max over
repeats and its compile time separately; the ratios are taken within this one run, since
the machines are shared and noisy. The JSON also records versions, backend and devices.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import jax

from benchmarks import _harness, kernels, roofline

SECTIONS = ("roofline", "kernels", "attacks", "train")


def _sections(text: str) -> list[str]:
    chosen = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in SECTIONS]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"--only takes a comma-separated subset of {', '.join(SECTIONS)}, got {text!r}")
    return chosen


def run(*, quick: bool, baselines: bool, only: list[str] | None = None) -> dict[str, Any]:
    """Runs the chosen sections; returns the JSON-ready result."""
    only = list(SECTIONS) if only is None else only
    out: dict[str, Any] = {"environment": _harness.environment(), "scale": "quick" if quick else "full",
                           "sections": only, "wall_s": {}}
    roof = None
    if "roofline" in only or "kernels" in only:
        t0 = time.perf_counter()
        roof = roofline.run(quick=quick)
        out["roofline"] = roof
        out["wall_s"]["roofline"] = time.perf_counter() - t0
    if "kernels" in only:
        t0 = time.perf_counter()
        # The cell-shape ceilings are measured by the kernels section and added to the roofline.
        out["kernels"] = kernels.run(quick=quick, baselines=baselines, roofline_result=roof)
        out["wall_s"]["kernels"] = time.perf_counter() - t0
    if "attacks" in only:
        from benchmarks import attacks

        t0 = time.perf_counter()
        res = attacks.run(quick=quick, baselines=baselines)
        res.pop("environment", None)
        out["attacks"] = res
        out["wall_s"]["attacks"] = time.perf_counter() - t0
    if "train" in only:
        from benchmarks import train

        t0 = time.perf_counter()
        out["train"] = {"throughput": train.throughput(quick=quick), "steps_to_1e-30": train.steps_to_target(quick=quick)}
        out["wall_s"]["train"] = time.perf_counter() - t0
    return out


def render(res: dict[str, Any]) -> str:
    """The printed report of a :func:`run` result."""
    env = res["environment"]
    lines = [f"{env.get('backend')} ({', '.join(env.get('device_kinds', []))}), jax {env.get('jax')}, "
             f"torch {env.get('torch')}, scale {res['scale']}"]
    if "roofline" in res:
        lines += ["", "Roofline (measured in this run)", _harness.table(roofline.rows(res["roofline"]), roofline.COLUMNS)]
    if "kernels" in res:
        k = res["kernels"]
        lines += ["", f"Forward + input gradient, {k['n_x']} inputs per network (median of {k['repeats']}; "
                      "'x torch bmm': jaxadv pairs/s over batched PyTorch pairs/s, same weighting regime)",
                  _harness.table(kernels.rows(k), kernels.COLUMNS)]
    if "attacks" in res:
        from benchmarks import attacks

        for cell in res["attacks"]["cells"]:
            lines += ["", f"Attacks: {cell['network']} ({cell['n_net']} networks x {cell['n_x']} inputs)",
                      _harness.table(cell["rows"], attacks.COLUMNS)]
    if "train" in res:
        from benchmarks import train

        t = res["train"]["throughput"]
        lines += ["", f"train_margin at {t['cell']}: {t['steps_per_s']:.2f} steps/s ({t['gflops_per_s']:.1f} GFLOP/s), "
                      f"first call {t['first_call_s']:.1f} s",
                  _harness.table(res["train"]["steps_to_1e-30"], train.STEPS_COLUMNS)]
    lines += ["", "wall time per section: " + ", ".join(f"{k} {v:.0f} s" for k, v in res["wall_s"].items())]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from jaxadv.experiments import write_json

    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller sizes and fewer cells, for a smoke run")
    parser.add_argument("--out", default=None, help="JSON output (default benchmarks/results/suite-<backend>[-quick].json)")
    parser.add_argument("--no-baselines", action="store_true", help="skip PyTorch and the attack libraries")
    parser.add_argument("--only", type=_sections, default=None, help=f"comma-separated subset of {','.join(SECTIONS)}")
    args = parser.parse_args(argv)
    res = run(quick=args.quick, baselines=not args.no_baselines, only=args.only)
    print(render(res))
    path = args.out or f"benchmarks/results/suite-{jax.default_backend()}{'-quick' if args.quick else ''}.json"
    write_json(path, res)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
