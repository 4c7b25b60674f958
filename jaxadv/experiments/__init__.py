"""Paper reproductions as resumable sweeps: ``jaxadv reproduce NAME --scale quick``.

Experiments: ``bubeck2021``, ``bartlett2021``, ``daniely2020``, ``vardi2022``, ``depalma2021``
(one module each, with both scales' grids in its docstring). Each experiment writes one ``.npz`` per finished cell
(atomic; a rerun skips finished cells), ``results.json`` with its claims as measured, and
figures; ``REPORT.md`` gathers every claim.
"""

from jaxadv.experiments._spec import RunOptions
from jaxadv.experiments._store import CellStore, run_cells, write_json, write_text
from jaxadv.experiments.claims import Claim, markdown_table
from jaxadv.experiments.runner import EXPERIMENTS, config_of, run, write_report

__all__ = ["EXPERIMENTS", "CellStore", "Claim", "RunOptions", "config_of", "markdown_table", "run", "run_cells", "write_json",
           "write_report", "write_text"]
