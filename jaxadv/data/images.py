"""Image datasets for trained-network experiments: MNIST, CIFAR-10 and a no-download fallback.

De Palma, Kiani & Lloyd (2021; trained networks, Fig. 4, and their released code) train
on MNIST odd vs even and CIFAR-10 {airplane, bird, deer, frog, ship} vs the rest: class c
becomes the binary label c mod 2 for both. Pixels are divided by the number of grey levels (255; 16 for the digits
fallback) with no mean subtraction or other normalisation, and images keep their (H, W, C)
layout.

Where the files are looked for (the *data directory*), in this order:

1. the ``data_dir`` argument (the CLI's ``--data-dir``);
2. the environment variable ``JAXADV_DATA_DIR``;
3. the cache directory ``$XDG_CACHE_HOME/jaxadv``, or ``~/.cache/jaxadv`` when
   ``XDG_CACHE_HOME`` is unset.

Inside it, MNIST's four IDX files (gzipped or not) may sit in ``mnist/``, ``MNIST/raw/`` or
the directory itself; CIFAR-10's ``data_batch_1.bin`` … ``data_batch_5.bin`` and
``test_batch.bin`` in ``cifar-10-batches-bin/`` or the directory itself. Nothing is
downloaded unless asked (``download=True``); a download goes into the same data directory,
is checked against the SHA-256 published for the file, and is written atomically.
"""

from __future__ import annotations

import os
from typing import NamedTuple, Sequence

import numpy as np

from jaxadv import _validate
from jaxadv.data import _download, cifar10, digits, mnist
from jaxadv.data._errors import DatasetNotFoundError, DownloadError

DATASETS = ("mnist", "cifar10", "digits")
SPLITS = ("train", "test")
IMAGE_SHAPES = {"mnist": mnist.SHAPE, "cifar10": cifar10.SHAPE, "digits": digits.SHAPE}
_FILE_SOURCES = {"mnist": mnist, "cifar10": cifar10}


class ImageDataset(NamedTuple):
    """One split of an image dataset, as NumPy arrays in host memory.

    Attributes:
      images: float32 ``(N, H, W, C)`` in [0, 1]: (28, 28, 1) for MNIST, (32, 32, 3) for
        CIFAR-10, (8, 8, 1) for digits.
      labels: int32 ``(N,)`` binary labels in {0, 1}: the class mod 2 (De Palma et al. 2021).
      classes: int32 ``(N,)`` original classes in 0..9.
      name: ``"mnist"``, ``"cifar10"`` or ``"digits"``.
      split: ``"train"`` or ``"test"``.
      source: where the data came from (the files read, or scikit-learn), for reports.
    """

    images: np.ndarray
    labels: np.ndarray
    classes: np.ndarray
    name: str
    split: str
    source: str


def _bool(value: object, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"`{name}` must be True or False, got {value!r}.")
    return bool(value)


def resolve_data_dir(*, data_dir: str | os.PathLike | None = None) -> str:
    """The data directory the loaders use: ``data_dir``, else ``$JAXADV_DATA_DIR``, else the cache.

    Args:
      data_dir: an explicit directory, or None.

    Returns:
      The absolute path (it need not exist yet).

    Raises:
      NotADirectoryError: the chosen path exists and is not a directory.
    """
    return _download.resolve_root(data_dir)[0]


def available(name: str, *, split: str | None = None, data_dir: str | os.PathLike | None = None) -> bool:
    """Whether ``load(name, split)`` would find its data without downloading.

    Cheap: it checks that the expected files exist (their contents are checked when loaded).
    For ``"digits"`` it checks that scikit-learn is installed.

    Args:
      name: ``"mnist"``, ``"cifar10"`` or ``"digits"``.
      split: ``"train"``, ``"test"``, or None for both.
      data_dir: the data directory (see the module docstring for the default).
    """
    name = _validate.choice(name, "name", DATASETS)
    splits = SPLITS if split is None else (_validate.choice(split, "split", SPLITS),)
    if name == "digits":
        return digits.installed()
    root, _ = _download.resolve_root(data_dir)
    src = _FILE_SOURCES[name]
    return all(None not in src.find(root, s) for s in splits)


def _not_found(name: str, split: str, root: str, how: str, found: Sequence[str | None]) -> DatasetNotFoundError:
    src = _FILE_SOURCES[name]
    dirs = [os.path.join(root, sub) if sub else root for sub in src.SUBDIRS]
    missing = [e for e, p in zip(src.expected(split), found) if p is None]
    state = "" if os.path.isdir(root) else " (it does not exist)"
    return DatasetNotFoundError(
        f"{src.TITLE} {split} split not found in {root}{state} (the data directory, from {how}). "
        f"Expected {', '.join(src.expected(split))} in one of {', '.join(dirs)}; missing: {', '.join(missing)}. "
        + src.how_to_get(root)
        + " To use files elsewhere, pass data_dir (CLI: --data-dir) or set $JAXADV_DATA_DIR."
    )


def _fetch(name: str, root: str, split: str, *, base_urls: Sequence[str] | None, progress: bool) -> None:
    src = _FILE_SOURCES[name]
    try:
        src.fetch(root, split, base_urls=base_urls, progress=progress)
    except DownloadError as e:
        raise DownloadError(f"{e} {src.offline_hint(root)}") from e


def load(
    name: str,
    split: str,
    *,
    data_dir: str | os.PathLike | None = None,
    download: bool = False,
    progress: bool = True,
) -> ImageDataset:
    """Loads one split of an image dataset with binary labels (class mod 2).

    De Palma, Kiani & Lloyd 2021 (trained networks, Fig. 4): MNIST odd vs even (28×28×1, n = 784) and CIFAR-10
    {airplane, bird, deer, frog, ship} vs the rest (32×32×3, n = 3072), pixels / 255, no
    normalisation. ``"digits"`` is scikit-learn's 8×8 digits (pixels / 16), the fallback that
    needs no download (see :mod:`jaxadv.data.digits` for its fixed split).

    Args:
      name: ``"mnist"``, ``"cifar10"`` or ``"digits"``.
      split: ``"train"`` or ``"test"``.
      data_dir: the directory holding the files. None: ``$JAXADV_DATA_DIR`` if set, else
        ``$XDG_CACHE_HOME/jaxadv`` (or ``~/.cache/jaxadv``).
      download: when files are missing, fetch them from the datasets' official locations (or
        mirrors, for MNIST) into the data directory (never done by default).
      progress: show a progress bar while downloading.

    Returns:
      An :class:`ImageDataset`: images float32 ``(N, H, W, C)`` in [0, 1], labels and classes
      int32 ``(N,)``.

    Raises:
      ValueError: unknown ``name`` or ``split``.
      NotADirectoryError: the data directory is a file.
      DatasetNotFoundError: files missing and ``download`` is False (the message lists them,
        the directories searched and how to get them).
      CorruptDataError: a file is truncated, not gzip-valid, or not in the expected format.
      ChecksumError: a downloaded file does not have the published SHA-256.
      DownloadError: files missing, ``download`` is True and no source can be reached.
      ImportError: ``"digits"`` without scikit-learn (``pip install 'jaxadv[digits]'``).
    """
    name = _validate.choice(name, "name", DATASETS)
    split = _validate.choice(split, "split", SPLITS)
    download = _bool(download, "download")
    progress = _bool(progress, "progress")
    if name == "digits":
        pixels, classes = digits.read_split(split)
        levels = digits.LEVELS
        source = f"scikit-learn sklearn.datasets.load_digits ({split}: see jaxadv.data.digits for the split)"
    else:
        src = _FILE_SOURCES[name]
        root, how = _download.resolve_root(data_dir)
        paths = src.find(root, split)
        if None in paths and download:
            _fetch(name, root, split, base_urls=None, progress=progress)
            paths = src.find(root, split)
        if None in paths:
            raise _not_found(name, split, root, how, paths)
        pixels, classes = src.read(paths)
        levels = src.LEVELS
        source = "; ".join(paths)
    images = pixels.astype(np.float32)
    images /= np.float32(levels)
    classes = classes.astype(np.int32)
    return ImageDataset(images=images, labels=classes % 2, classes=classes, name=name, split=split, source=source)


def download(
    name: str,
    *,
    data_dir: str | os.PathLike | None = None,
    base_urls: Sequence[str] | None = None,
    progress: bool = True,
) -> str:
    """Fetches a dataset's missing files (both splits) into the data directory.

    Files already present are left alone. Each download is verified against the SHA-256 in
    :mod:`jaxadv.data.mnist` / :mod:`jaxadv.data.cifar10` and written atomically: on a
    mismatch, an interrupted transfer or a corrupt archive nothing is left behind.

    Args:
      name: ``"mnist"`` or ``"cifar10"``.
      data_dir: the data directory (see :func:`load`).
      base_urls: where to fetch from instead of the official location and mirrors, tried in
        order (each followed by the file name).
      progress: show a progress bar per file.

    Returns:
      The data directory.
    """
    name = _validate.choice(name, "name", tuple(_FILE_SOURCES))
    progress = _bool(progress, "progress")
    if base_urls is not None:
        ok = isinstance(base_urls, Sequence) and not isinstance(base_urls, str) and len(base_urls) > 0
        if not ok or not all(isinstance(u, str) for u in base_urls):
            raise TypeError(f"`base_urls` must be a non-empty sequence of URL strings, got {base_urls!r}.")
        base_urls = list(base_urls)
    root, _ = _download.resolve_root(data_dir)
    src = _FILE_SOURCES[name]
    for split in SPLITS:
        if None in src.find(root, split):
            _fetch(name, root, split, base_urls=base_urls, progress=progress)
    return root
