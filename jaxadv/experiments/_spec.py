"""What an experiment is: its grids per scale, its cells, its claims and its figures."""

from __future__ import annotations

import dataclasses
import zlib
from typing import Any, Callable, Mapping, NamedTuple

import jax
import numpy as np

from jaxadv.experiments.claims import Claim

Cells = list[tuple[str, Callable[[], Mapping[str, Any]]]]


@dataclasses.dataclass(frozen=True)
class Experiment:
    """A paper's experiment as a resumable sweep.

    Attributes:
      name: the command-line name (``bubeck2021``).
      title: one line for ``jaxadv list``.
      scales: ``{"quick": grid, "paper": grid}``, JSON-ready dicts written to results.
      cells: ``cells(config) -> [(cell_name, compute)]``; ``config`` is the scale's grid plus
        ``seed``. Each ``compute()`` returns a dict of arrays and is deterministic in config.
      claims: ``claims(config, results) -> [Claim]`` computed from the cells' arrays.
      figures: ``figures(config, results, directory) -> [file names]`` (PNG).
      prepare: optional ``prepare(config, options) -> config``, called once before any cell,
        for what a run must settle from outside its grid (which dataset files exist, for
        instance). What it adds to the configuration is recorded with the results, so results
        obtained from different data never mix. ``options`` is a :class:`RunOptions`.
    """

    name: str
    title: str
    scales: Mapping[str, Mapping[str, Any]]
    cells: Callable[[Mapping[str, Any]], Cells]
    claims: Callable[[Mapping[str, Any], Mapping[str, Mapping[str, np.ndarray]]], list[Claim]]
    figures: Callable[[Mapping[str, Any], Mapping[str, Mapping[str, np.ndarray]], str], list[str]]
    prepare: Callable[[dict[str, Any], "RunOptions"], dict[str, Any]] | None = None


class RunOptions(NamedTuple):
    """What a run is told from outside its grid.

    Attributes:
      data_dir: where datasets are looked for first (``--data-dir``); ``None``: the
        ``JAXADV_DATA_DIR`` environment variable, then the cache (see :mod:`jaxadv.data`).
      download: whether missing datasets may be downloaded into the cache (``--download``).
    """

    data_dir: str | None = None
    download: bool = False


def cell_key(seed: int, cell: str) -> jax.Array:
    """The PRNG key of one cell: from the seed and the cell's name only, so a cell draws the
    same networks and inputs whatever grid it belongs to and whatever order cells run in."""
    return jax.random.fold_in(jax.random.key(seed), zlib.crc32(cell.encode()) & 0x7FFFFFFF)
