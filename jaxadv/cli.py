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
