"""Wall time of ``jaxadv reproduce all --scale quick``, hermetic, and its claims.

    python -m benchmarks.reproduce [--out FILE]

Runs the command line in a fresh process, as a user would, into a new temporary results
directory (so nothing is resumed from an earlier run) with ``JAXADV_DATA_DIR`` pointed at an
empty temporary directory (so no dataset found elsewhere on the machine is used, and the
experiments that need MNIST/CIFAR-10 files take their no-data path). Reports the wall time
of the whole command (interpreter start and compilation included), its exit status, and the
claims it wrote: how many hold, fail or were not measured, per experiment, read from each
experiment's ``results.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any, Sequence

from benchmarks import _harness

COMMAND = ("-m", "jaxadv", "reproduce", "all", "--scale", "quick")


def claim_counts(out_dir: str) -> dict[str, Any]:
    """Claims per experiment in a ``jaxadv reproduce`` output directory: holds / fails /
    not measured, and their totals."""
    per = {}
    for name in sorted(os.listdir(out_dir)):
        path = os.path.join(out_dir, name, "results.json")
        if ".superseded-" in name or not os.path.isfile(path):
            continue
        with open(path) as fh:
            claims = json.load(fh)["claims"]
        per[name] = {"holds": sum(c["holds"] is True for c in claims),
                     "fails": sum(c["holds"] is False for c in claims),
                     "not_measured": sum(c["holds"] is None for c in claims)}
    total = {k: sum(v[k] for v in per.values()) for k in ("holds", "fails", "not_measured")}
    return {"per_experiment": per, "total": total}


def run(*, quick: bool = False, command: Sequence[str] | None = None, timeout_s: float = 3600.0) -> dict[str, Any]:
    """Times one run of ``python <command> --out <fresh dir>`` (default :data:`COMMAND`);
    ``quick`` is accepted for the suite's interface and changes nothing (the command is
    already the quick scale)."""
    del quick
    command = COMMAND if command is None else tuple(command)
    with tempfile.TemporaryDirectory(prefix="jaxadv-bench-reproduce-") as tmp:
        out_dir, data_dir = os.path.join(tmp, "runs"), os.path.join(tmp, "data")
        os.makedirs(data_dir)
        env = dict(os.environ, JAXADV_DATA_DIR=data_dir)
        # The child imports this checkout's jaxadv, whatever the current directory.
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env["PYTHONPATH"] = os.pathsep.join([root] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
        argv = [sys.executable, *command, "--out", out_dir]
        load_start = os.getloadavg()
        t0 = time.perf_counter()
        proc = subprocess.run(argv, env=env, cwd=tmp, capture_output=True, text=True, timeout=timeout_s)
        wall = time.perf_counter() - t0
        claims = claim_counts(out_dir) if os.path.isdir(out_dir) else {"per_experiment": {}, "total": {}}
    return {
        "command": " ".join(["python", *command, "--out", "<fresh temporary directory>"]),
        "data_dir": "<empty temporary directory> (JAXADV_DATA_DIR)",
        "wall_s": wall,
        "returncode": proc.returncode,
        "claims": claims,
        "loadavg_start": list(load_start),
        "loadavg_end": list(os.getloadavg()),
        # What the command printed, for a failed run's diagnosis.
        "output_tail": (proc.stdout[-2000:] + proc.stderr[-2000:]) if proc.returncode else proc.stdout[-2000:],
    }


def rows(res: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per experiment, then the total."""
    out = [{"experiment": name, **counts} for name, counts in res["claims"]["per_experiment"].items()]
    out.append({"experiment": "all", **res["claims"]["total"], "wall_s": res["wall_s"], "returncode": res["returncode"]})
    return out


COLUMNS = [
    ("experiment", "experiment", ""),
    ("holds", "claims hold", "d"),
    ("fails", "fail", "d"),
    ("not_measured", "not measured", "d"),
    ("wall_s", "wall s", ".0f"),
    ("returncode", "exit", "d"),
]


def main(argv: list[str] | None = None) -> int:
    from jaxadv.experiments import write_json

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=None, help="JSON output (default: print only)")
    args = parser.parse_args(argv)
    res = {"environment": _harness.environment(), "reproduce": run()}
    print(_harness.table(rows(res["reproduce"]), COLUMNS))
    if args.out:
        write_json(args.out, res)
        print(f"wrote {args.out}")
    return 0 if res["reproduce"]["returncode"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
