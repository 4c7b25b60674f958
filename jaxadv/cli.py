"""The ``jaxadv`` command."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence


def _info(args: argparse.Namespace) -> int:
    from jaxadv._env import environment

    env = environment()
    if args.json:
        print(json.dumps(env, indent=2))
    else:
        width = max(map(len, env))
        for k, v in env.items():
            print(f"{k:<{width}}  {', '.join(v) if isinstance(v, list) else v}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from jaxadv.demo import bubeck_demo

    bubeck_demo(seed=args.seed, out=sys.stdout)
    return 0


def _list(args: argparse.Namespace) -> int:
    from jaxadv.experiments import EXPERIMENTS

    for name, exp in EXPERIMENTS.items():
        print(f"{name:<12} {exp.title}")
        if args.grids:
            for scale, grid in exp.scales.items():
                print(f"  {scale:<6} {json.dumps(grid)}")
    return 0


def _reproduce(args: argparse.Namespace) -> int:
    from jaxadv.experiments import run

    try:
        claims = run(args.name, scale=args.scale, out=args.out, seed=args.seed, force=args.force,
                     data_dir=args.data_dir, download=args.download)
    except (ValueError, PermissionError, OSError) as e:
        print(f"jaxadv reproduce: {e}", file=sys.stderr)
        return 2
    for name, rows in claims.items():
        for c in rows:
            status = {True: "holds  ", False: "FAILS  ", None: "SKIPPED"}[c["holds"]]
            print(f"{status} {c['id']}: measured {c['measured']}")
    print(f"report: {args.out}/REPORT.md")
    return 0


def _report(args: argparse.Namespace) -> int:
    import os

    from jaxadv.experiments import write_report

    if not os.path.isdir(args.dir):
        print(f"jaxadv report: {args.dir!r} is not a directory of results.", file=sys.stderr)
        return 2
    print(write_report(args.dir))
    return 0


def build_parser() -> argparse.ArgumentParser:
    from jaxadv import __version__

    parser = argparse.ArgumentParser(
        prog="jaxadv", description="Adversarial examples in random and trained ReLU networks, in JAX."
    )
    parser.add_argument("--version", action="version", version=f"jaxadv {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p_info = sub.add_parser("info", help="print versions, backend and devices")
    p_info.add_argument("--json", action="store_true", help="print as JSON")
    p_info.set_defaults(func=_info)
    p_demo = sub.add_parser("demo", help="a one-minute tour: random two-layer nets and one gradient step")
    p_demo.add_argument("--seed", type=int, default=0, help="PRNG seed (default 0)")
    p_demo.set_defaults(func=_demo)
    p_list = sub.add_parser("list", help="the paper experiments, one line each")
    p_list.add_argument("--grids", action="store_true", help="also print each scale's grid")
    p_list.set_defaults(func=_list)
    p_rep = sub.add_parser("reproduce", help="run (or resume) a paper's experiment: figures and a table of claims")
    p_rep.add_argument("name", help="an experiment from `jaxadv list`, or all")
    p_rep.add_argument("--scale", default="quick", help="quick (minutes on a CPU) or paper (the papers' grids)")
    p_rep.add_argument("--out", default="runs", help="output directory (default: runs)")
    p_rep.add_argument("--seed", type=int, default=0, help="PRNG seed (default 0)")
    p_rep.add_argument("--force", action="store_true", help="move aside results of a different configuration")
    p_rep.add_argument("--data-dir", default=None,
                       help="directory with MNIST/CIFAR-10 files (default: $JAXADV_DATA_DIR, then the cache)")
    p_rep.add_argument("--download", action="store_true",
                       help="download missing datasets into the data directory (SHA-256 checked)")
    p_rep.set_defaults(func=_reproduce)
    p_report = sub.add_parser("report", help="rebuild REPORT.md from saved results, without recomputing")
    p_report.add_argument("dir", help="an output directory of `jaxadv reproduce`")
    p_report.set_defaults(func=_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
