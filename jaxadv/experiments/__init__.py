"""Paper reproductions as resumable sweeps (in progress: the result store comes first)."""

from jaxadv.experiments._store import CellStore, run_cells, write_json

__all__ = ["CellStore", "run_cells", "write_json"]
