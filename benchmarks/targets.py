"""The issue's speed and quality targets, judged from the numbers of one suite run.

Every verdict is computed here from the run's own measurements (nothing is typed in): a
target is ``met`` (True), ``not met`` (False) or ``not measured`` (None: its cell or its
baseline was not part of this run, e.g. ``--quick`` or ``--no-baselines``).

* ``kernels.pregenerated``: forward + input gradient with pre-generated weights reaches
  ≥ 70% of the matrix-multiply rate measured in the same run at the cell's own shapes, at
  (1000, 1000, L ≥ 4) and (1000, 10000, 1). The fraction of the large-square rate is
  reported alongside.
* ``kernels.generated``: with weight generation inside the timed call, the fastest way to
  draw them (``init_many`` with a threefry or a philox key, then ``evaluate``; or both in one
  jit) reaches ≥ 1.5× the pairs/s of the best batched PyTorch that also draws its weights
  (``torch.randn`` + bmm or ``torch.func.vmap``), in every cell. The detail gives how fast
  each side draws the same weights alone (``draw_s`` of ``benchmarks/kernels.py``) and two
  ceilings that implies: the ratio jaxadv would reach if its forward and gradient cost
  nothing (torch's generated time over ``init_many``'s time alone), and if they ran at the
  same run's large-square matmul rate (``init_many``'s time plus the cell's FLOPs at that
  rate).
* ``attacks.min_norm``: for one setting of ``jaxadv.min_norm(norm=2)``, in every network
  family, the median ℓ2 distance is ≤ 1.01 × the best (smallest) median of Foolbox DDN and
  torchattacks FAB, with fewer gradient evaluations per sample than either. The median over
  pairs of the per-pair ratio (jaxadv / the best baseline on that pair) is reported too.
* ``one_step.equivalents``: ``one_step`` costs ≤ 3 forward+gradient equivalents per
  (network, input) at L = 1 and ≤ 6 for deeper networks: its wall time over that of
  ``kernels.evaluate`` on the same batch (``time_ratio`` of ``benchmarks/one_step.py``); the
  counted equivalents and the accuracy against the float64 reference are shown alongside.
"""

from __future__ import annotations

import math
from typing import Any

PREGENERATED_FRACTION = 0.70
PREGENERATED_CELLS = "(1000, 1000, L >= 4) and (1000, 10000, 1)"
GENERATED_VS_TORCH = 1.5
DISTANCE_RATIO = 1.01
MIN_NORM_BASELINES = ("foolbox_ddn", "torchattacks_fab")
ONE_STEP_MAX = {1: 3.0, "deeper": 6.0}


def _verdict(value: float | None, threshold: float, *, at_most: bool = False) -> bool | None:
    if value is None or not math.isfinite(value):
        return None
    return bool(value <= threshold) if at_most else bool(value >= threshold)


def _all(verdicts: list[bool | None]) -> bool | None:
    """Met when every part is met; not met as soon as one part is not; else not measured."""
    if any(v is False for v in verdicts):
        return False
    if not verdicts or any(v is None for v in verdicts):
        return None
    return True


# ---------------------------------------------------------------------------------------
# kernels


def _is_pregenerated_cell(d: int, k: int, depth: int) -> bool:
    return (d, k) == (1000, 1000) and depth >= 4 or (d, k, depth) == (1000, 10000, 1)


def kernels_targets(res: dict[str, Any]) -> dict[str, Any]:
    """Both kernel targets from the ``kernels`` section of a suite run."""
    from benchmarks.kernels import PREGENERATED, best_generated, best_torch_batched

    pre_rows, gen_rows = [], []
    for cell in res.get("cells", []):
        d, k, depth = cell["cell"]
        by = {r["impl"]: r for r in cell["rows"]}
        label = f"({d}, {k}, {depth}) x{cell['n_net']}"
        if _is_pregenerated_cell(d, k, depth) and PREGENERATED in by:
            r = by[PREGENERATED]
            frac = r.get("fraction_of_cell_matmul")
            pre_rows.append({"target": "kernels.pregenerated", "cell": label,
                             "measured": frac, "threshold": PREGENERATED_FRACTION, "compare": ">=",
                             "detail": (f"{r['flops_per_s']['median'] / 1e9:.1f} GFLOP/s of "
                                        f"{(cell.get('cell_matmul_flops_per_s') or float('nan')) / 1e9:.1f} at the "
                                        f"cell's shapes{_before_after(cell.get('cell_matmul_before_after_flops_per_s'))}; "
                                        f"{_pct(r.get('fraction_of_square_matmul'))} of the square"),
                             "met": _verdict(frac, PREGENERATED_FRACTION)})
        gen = best_generated(cell["rows"])
        torch_gen = best_torch_batched(cell["rows"], "generated")
        ratio = (gen["pairs_per_s"]["median"] / torch_gen["pairs_per_s"]["median"]
                 if gen is not None and torch_gen is not None else None)
        detail = "" if gen is None else gen["impl"]
        if torch_gen is not None:
            detail += f" vs {torch_gen['impl']}"
            draw = cell.get("draw_s") or {}
            impl = gen.get("key_impl") if gen is not None else None
            if impl in draw and "torch.randn" in draw:
                jax_draw, torch_draw = draw[impl]["median"], draw["torch.randn"]["median"]
                pairs = cell["n_net"] * cell["n_x"]
                torch_total = pairs / torch_gen["pairs_per_s"]["median"]
                detail += (f"; drawing alone: init_many {jax_draw:.3g} s, torch.randn {torch_draw:.3g} s; "
                           f"ceiling with free compute {torch_total / jax_draw:.2f}x")
                square = cell.get("square_matmul_flops_per_s")
                if square and cell.get("flops_per_pair"):
                    at_peak = jax_draw + pairs * cell["flops_per_pair"] / square
                    detail += f", with compute at the square matmul rate {torch_total / at_peak:.2f}x"
        else:
            detail += " (no PyTorch in this run)"
        gen_rows.append({"target": "kernels.generated", "cell": label, "measured": ratio,
                         "threshold": GENERATED_VS_TORCH, "compare": ">=", "detail": detail,
                         "met": _verdict(ratio, GENERATED_VS_TORCH)})
    # A required cell missing from the run leaves the target not measured.
    have = {tuple(c["cell"]) for c in res.get("cells", [])}
    required_present = (any(d == 1000 and k == 1000 and L >= 4 for d, k, L in have) and (1000, 10000, 1) in have)
    pre_met = _all([r["met"] for r in pre_rows])
    if pre_met is True and not required_present:
        pre_met = None
    return {
        "pregenerated": {"met": pre_met, "rows": pre_rows,
                         "statement": f"pre-generated forward+gradient >= {PREGENERATED_FRACTION:.0%} of the same-run "
                                      f"matmul rate at the cell's shapes, at {PREGENERATED_CELLS}"},
        "generated": {"met": _all([r["met"] for r in gen_rows]), "rows": gen_rows,
                      "statement": f"with weight generation: best jaxadv >= {GENERATED_VS_TORCH}x the best "
                                   "batched PyTorch drawing its weights too, every cell"},
    }


def _before_after(pair: list[float] | None) -> str:
    return "" if not pair else f" ({pair[0] / 1e9:.1f} before, {pair[1] / 1e9:.1f} after)"


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.0%}"


# ---------------------------------------------------------------------------------------
# attacks


def attacks_targets(res: dict[str, Any]) -> dict[str, Any]:
    """The min_norm target from the ``attacks`` section: judged per min_norm setting; met
    when one setting meets it in every network family."""
    settings: dict[str, list[dict[str, Any]]] = {}
    for cell in res.get("cells", []):
        by = {r["attack"]: r for r in cell["rows"]}
        base = [by[b] for b in MIN_NORM_BASELINES if b in by]
        for r in cell["rows"]:
            if not r["attack"].startswith("jaxadv.min_norm"):
                continue
            row = {"target": "attacks.min_norm", "setting": r["attack"], "cell": cell["network"].split("(")[0],
                   "threshold": DISTANCE_RATIO, "compare": "<="}
            if len(base) < len(MIN_NORM_BASELINES):
                row.update(measured=None, met=None, detail="baselines not in this run")
            else:
                best = min(base, key=lambda b: b["median_distance"])
                fewest = min(b["median_n_grad"] for b in base)
                ratio = r["median_distance"] / best["median_distance"]
                fewer = r["median_n_grad"] < fewest
                row.update(
                    measured=ratio, best_baseline=best["attack"], grads=r["median_n_grad"], baseline_grads=fewest,
                    fewer_grads=fewer, pair_ratio=r.get("pair_ratio_vs_best_baseline"),
                    met=None if _verdict(ratio, DISTANCE_RATIO, at_most=True) is None
                    else bool(_verdict(ratio, DISTANCE_RATIO, at_most=True) and fewer),
                    detail=(f"vs {best['attack']} median; {r['median_n_grad']:.0f} vs {fewest:.0f} grads/sample; "
                            f"per-pair median ratio {_num(r.get('pair_ratio_vs_best_baseline'))}"),
                )
            settings.setdefault(r["attack"], []).append(row)
    per_setting = {s: _all([r["met"] for r in rows]) for s, rows in settings.items()}
    meeting = [s for s, v in per_setting.items() if v]
    chosen = min(meeting, key=lambda s: max(r["grads"] for r in settings[s])) if meeting else None
    if meeting:
        met = True
    elif any(v is False for v in per_setting.values()):
        met = False
    else:
        met = None
    return {"min_norm": {
        "met": met, "setting": chosen, "per_setting": per_setting,
        "rows": [r for rows in settings.values() for r in rows],
        "statement": (f"min_norm l2 median distance <= {DISTANCE_RATIO} x the best of Foolbox DDN and torchattacks "
                      "FAB, with fewer gradient evaluations than either (one setting, every network)"),
    }}


def _num(v: float | None, fmt: str = ".4f") -> str:
    return "n/a" if v is None else format(v, fmt)


# ---------------------------------------------------------------------------------------
# one_step


def _one_step_points(res: dict[str, Any]) -> list[dict[str, Any]]:
    """For every cell of the one_step section (``benchmarks/one_step.py``): its depth, the
    wall-clock equivalents of ``one_step`` (its time over ``kernels.evaluate``'s on the same
    batch), the counted equivalents and the accuracy against the float64 reference."""
    out = []
    for c in res.get("cells", []):
        algo = next((a for a in c.get("algorithms", []) if a.get("algorithm") == "one_step"), None)
        if algo is None:
            continue
        d, k, depth = c["cell"]
        acc = algo.get("accuracy") or {}
        out.append({"label": f"({d}, {k}, {depth}) x{c.get('n_net')}", "depth": int(depth),
                    "equivalents": algo.get("time_ratio"),
                    "detail": (f"L = {depth}; counted {_num(algo.get('counted_median_pair'), '.2f')} (median pair), "
                               f"{_num(algo.get('counted_batch_max'), '.2f')} (batch max); success "
                               f"{_pct(algo.get('success_rate'))}; |eta| rel err vs float64 median "
                               f"{_num(acc.get('median_rel_err'), '.1e')}, max {_num(acc.get('max_rel_err'), '.1e')}")})
    return out


def one_step_targets(res: dict[str, Any]) -> dict[str, Any]:
    """``one_step`` ≤ 3 forward+gradient equivalents per pair at L = 1, ≤ 6 deeper, in wall
    time against ``kernels.evaluate`` on the same batch."""
    points = _one_step_points(res)
    rows = []
    for p in points:
        limit = ONE_STEP_MAX[1] if p["depth"] == 1 else ONE_STEP_MAX["deeper"]
        rows.append({"target": "one_step.equivalents", "cell": p["label"], "measured": p["equivalents"],
                     "threshold": limit, "compare": "<=", "detail": p["detail"],
                     "met": _verdict(p["equivalents"], limit, at_most=True)})
    depths = {p["depth"] for p in points}
    met = _all([r["met"] for r in rows])
    if met is True and not (1 in depths and any(L > 1 for L in depths)):
        met = None  # both regimes must have been measured
    return {"equivalents": {"met": met, "rows": rows,
                            "statement": "one_step <= 3 forward+gradient equivalents per pair (its time over "
                                         "kernels.evaluate's, same batch) at L = 1, <= 6 deeper"}}


# ---------------------------------------------------------------------------------------
# all


def evaluate(res: dict[str, Any]) -> dict[str, Any]:
    """Every target whose section is in the suite result ``res``: ``{"<section>.<name>":
    {"met", "statement", "rows", ...}}``."""
    out: dict[str, Any] = {}
    for section, fn in (("kernels", kernels_targets), ("attacks", attacks_targets), ("one_step", one_step_targets)):
        if isinstance(res.get(section), dict) and "skipped" not in res[section]:
            for name, verdict in fn(res[section]).items():
                out[f"{section}.{name}"] = verdict
    return out


VERDICT = {True: "met", False: "NOT MET", None: "not measured"}


def rows(targets: dict[str, Any]) -> list[dict[str, Any]]:
    """Table rows: one per (target, cell[, setting]), then one summary row per target."""
    out = []
    for name, t in targets.items():
        for r in t["rows"]:
            out.append({"target": name, "cell": r["cell"] + (f" {r['setting']}" if r.get("setting") else ""),
                        "measured": r["measured"], "rule": f"{r['compare']} {r['threshold']:g}",
                        "verdict": VERDICT[r["met"]], "detail": r.get("detail", "")})
        summary = VERDICT[t["met"]] + (f" by {t['setting']}" if t.get("setting") else "")
        out.append({"target": name, "cell": "overall", "measured": None, "rule": "", "verdict": summary, "detail": ""})
    return out


def statements(targets: dict[str, Any]) -> list[str]:
    """One line per target: its name, what it asks, and its verdict."""
    return [f"{name}: {t['statement']} -- {VERDICT[t['met']]}" + (f" by {t['setting']}" if t.get("setting") else "")
            for name, t in targets.items()]


COLUMNS = [
    ("target", "target", ""),
    ("cell", "cell", ""),
    ("measured", "measured", ".3f"),
    ("rule", "rule", ""),
    ("verdict", "verdict", ""),
    ("detail", "detail", ""),
]
