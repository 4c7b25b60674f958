"""Where an experiment's results live on disk, so that a long run never loses finished work.

One directory per experiment: ``config.json`` (the configuration the results belong to),
one ``<cell>.npz`` per finished cell of the sweep, and ``log.txt`` with a line per finished
cell. Every file is written to a temporary name in the same directory and renamed into
place, so a run killed at any moment (even ``kill -9``) leaves either the whole file or
none of it, and a rerun with the same configuration skips every finished cell. Arrays are
stored with ``np.savez`` and read with ``allow_pickle=False``: nothing is pickled.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import time
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from jaxadv._atomic import TMP_PREFIX, atomic_open

_CELL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.=,+-]*$")


def _atomic_write(path: str, write: Callable[[Any], None], mode: str) -> None:
    with atomic_open(path, mode) as fh:
        write(fh)


def _jsonable(obj: Any) -> Any:
    # NumPy scalars and arrays, as measurements often are; anything else is a bug in the payload.
    if isinstance(obj, (np.floating, np.integer, np.bool_)):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")


def write_json(path: str, payload: Any) -> None:
    """Writes JSON atomically (whole file or nothing); NumPy values become plain numbers."""
    _atomic_write(path, lambda fh: (json.dump(payload, fh, indent=2, sort_keys=True, default=_jsonable), fh.write("\n")), "w")


def write_text(path: str, text: str) -> None:
    """Writes a text file atomically (whole file or nothing)."""
    _atomic_write(path, lambda fh: fh.write(text), "w")


def _canonical(config: Mapping[str, Any]) -> str:
    # Keys starting with "_" say where this run found things (a data directory), not what the
    # results depend on: recorded in config.json, never a reason to refuse a resume.
    return json.dumps({k: v for k, v in config.items() if not k.startswith("_")}, sort_keys=True, default=str)


class CellStore:
    """The output directory of one experiment.

    Args:
      root: the output root (``--out``).
      name: the experiment's name; its directory is ``root/name``.
      config: the JSON-ready configuration (scale, grids, seed, …) the results depend on.
        Top-level keys starting with ``_`` are run-time locations (e.g. ``_data_dir``):
        written to ``config.json`` but not compared when resuming.
      force: when the directory holds results of a *different* configuration, move them
        aside to ``root/name.superseded-<time>`` instead of refusing. Nothing is deleted.

    Raises:
      ValueError: the directory holds results of a different configuration and ``force`` is
        False.
      PermissionError: the directory cannot be created or written.
    """

    def __init__(self, root: str, name: str, config: Mapping[str, Any], *, force: bool = False) -> None:
        if not isinstance(name, str) or not _CELL_NAME.match(name):
            raise ValueError(f"`name` must be a plain file name (letters, digits, _.=,+-), got {name!r}.")
        self.root = os.path.abspath(root)
        self.dir = os.path.join(self.root, name)
        self.config = dict(config)
        try:
            os.makedirs(self.dir, exist_ok=True)
        except (PermissionError, FileExistsError, NotADirectoryError, OSError) as e:
            raise PermissionError(f"output directory {self.dir!r} cannot be created: {e.strerror or e}.") from e
        if not os.access(self.dir, os.W_OK):
            raise PermissionError(f"output directory {self.dir!r} is not writable.")
        cfg_path = os.path.join(self.dir, "config.json")
        if os.path.exists(cfg_path):
            with open(cfg_path) as fh:
                old = json.load(fh)
            if _canonical(old) != _canonical(self.config):
                if not force:
                    diff = sorted(k for k in set(old) | set(self.config)
                                  if not k.startswith("_") and old.get(k) != self.config.get(k))
                    raise ValueError(
                        f"{self.dir!r} holds results of a different configuration (differs in {diff}); "
                        f"use another output directory, or --force to move them aside (nothing is deleted)."
                    )
                stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
                os.replace(self.dir, f"{self.dir}.superseded-{stamp}")
                os.makedirs(self.dir)
        try:
            write_json(cfg_path, self.config)
        except OSError as e:
            raise PermissionError(f"output directory {self.dir!r} is not writable: {e.strerror or e}.") from e

    def _path(self, cell: str) -> str:
        if not isinstance(cell, str) or not _CELL_NAME.match(cell):
            raise ValueError(f"`cell` must be a plain file name (letters, digits, _.=,+-), got {cell!r}.")
        return os.path.join(self.dir, f"{cell}.npz")

    def has(self, cell: str) -> bool:
        """Whether ``cell`` finished (its file exists; partial files never do)."""
        return os.path.exists(self._path(cell))

    def save(self, cell: str, arrays: Mapping[str, Any], *, seconds: float | None = None) -> None:
        """Writes a finished cell atomically; a finished cell is never overwritten.

        ``seconds``, the time the cell took, goes into the log line.
        """
        path = self._path(cell)
        if os.path.exists(path):
            raise FileExistsError(f"cell {cell!r} is already finished in {self.dir!r}; finished results are never overwritten.")
        clean = {}
        for k, v in arrays.items():
            a = np.asarray(v)
            if a.dtype == object:
                raise TypeError(f"cell {cell!r}: array {k!r} has dtype object; only numeric arrays are stored (no pickle).")
            clean[k] = a
        _atomic_write(path, lambda fh: np.savez(fh, **clean), "wb")
        with open(os.path.join(self.dir, "log.txt"), "a") as fh:
            took = "" if seconds is None else f" in {seconds:.1f} s"
            fh.write(f"{datetime.datetime.now().isoformat(timespec='seconds')} finished {cell}{took}\n")

    def load(self, cell: str) -> dict[str, np.ndarray]:
        with np.load(self._path(cell), allow_pickle=False) as data:
            return {k: data[k] for k in data.files}

    def finished(self) -> list[str]:
        return sorted(f[:-4] for f in os.listdir(self.dir) if f.endswith(".npz") and not f.startswith(TMP_PREFIX))


def run_cells(
    store: CellStore,
    cells: Iterable[tuple[str, Callable[[], Mapping[str, Any]]]],
    *,
    progress: bool = True,
    desc: str | None = None,
) -> dict[str, dict[str, np.ndarray]]:
    """Computes every cell that is not finished yet, saving each as soon as it is done.

    Args:
      store: where results go.
      cells: ``(name, compute)`` pairs; ``compute()`` returns the cell's arrays. Cells are
        deterministic in the configuration (keys derived from the seed and the cell), so a
        resumed run ends with the same numbers as an uninterrupted one.
      progress: show a tqdm bar over cells (with an ETA).
      desc: the bar's label.

    Returns:
      Every cell's arrays, finished earlier or now, by name.
    """
    cells = list(cells)
    out: dict[str, dict[str, np.ndarray]] = {}
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(cells), desc=desc or os.path.basename(store.dir), unit="cell")
    try:
        for name, compute in cells:
            if not store.has(name):
                start = time.perf_counter()
                arrays = compute()
                store.save(name, arrays, seconds=time.perf_counter() - start)
            out[name] = store.load(name)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return out
