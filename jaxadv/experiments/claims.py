"""A paper's claim next to the number the data gave, and whether it holds."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Iterable, Mapping


@dataclasses.dataclass(frozen=True)
class Claim:
    """One row of a reproduction's table of claims.

    Attributes:
      id: a short stable identifier, e.g. ``"bubeck2021/L1-all-switched"``.
      statement: the claim in words, with the tolerance used to judge it.
      paper_value: what the paper reports or predicts (text or number).
      measured: what this run measured (a number, or a short text for a list).
      holds: whether the measurement supports the claim within the stated tolerance, or
        ``None`` when it could not be measured in this run (``measured`` then says why, e.g.
        no dataset was available); a claim is never reported as holding without data.
    """

    id: str
    statement: str
    paper_value: Any
    measured: Any
    holds: bool | None

    @classmethod
    def not_measured(cls, id: str, statement: str, paper_value: Any, reason: str) -> "Claim":
        """A claim this run could not test (``holds=None``), with the reason as its measurement."""
        return cls(id, statement, paper_value, f"not measured: {reason}", None)

    def to_json(self) -> dict[str, Any]:
        def clean(v: Any) -> Any:
            if isinstance(v, float) and not math.isfinite(v):
                return str(v)
            if hasattr(v, "item"):
                return clean(v.item())
            if isinstance(v, (list, tuple)):
                return [clean(x) for x in v]
            return v

        return {"id": self.id, "statement": self.statement, "paper_value": clean(self.paper_value),
                "measured": clean(self.measured), "holds": None if self.holds is None else bool(self.holds)}


HOLDS_TEXT = {True: "yes", False: "**no**", None: "not measured"}


def _text(value: Any) -> str:
    if isinstance(value, list):
        return "; ".join(_text(v) for v in value)
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def markdown_cell(value: Any) -> str:
    """A value as one Markdown table cell: lists joined, floats to 4 digits, pipes escaped."""
    return _text(value).replace("|", "\\|").replace("\n", " ")


def markdown_row(claim: Claim | Mapping[str, Any], *lead: str) -> str:
    """One claim (or its ``to_json`` dict) as a Markdown table row: the ``lead`` cells, then
    statement, paper, measured and holds."""
    c = claim.to_json() if isinstance(claim, Claim) else claim
    cells = [*lead, markdown_cell(c["statement"]), markdown_cell(c["paper_value"]), markdown_cell(c["measured"]),
             HOLDS_TEXT[c["holds"]]]
    return "| " + " | ".join(cells) + " |"


def markdown_table(claims: Iterable[Claim | Mapping[str, Any]]) -> str:
    """Claims (or their ``to_json`` dicts) as a Markdown table: statement, paper, measured, holds.

    For notebooks (``IPython.display.Markdown(markdown_table(cs))``) and reports.
    """
    lines = ["| claim | paper | measured | holds |", "|---|---|---|---|"]
    lines += [markdown_row(c) for c in claims]
    return "\n".join(lines) + "\n"
