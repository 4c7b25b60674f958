"""MNIST (LeCun, Bottou, Bengio & Haffner 1998) from its IDX files, gzipped or not.

The four files as distributed: ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each optionally ``.gz``. Whether a
file is gzipped is read from its first two bytes, not its name (a browser may decompress a
``.gz`` and keep the name).

IDX format: a 4-byte magic number ``0x00 0x00 <type> <ndim>`` (type ``0x08`` = unsigned
byte), then ``ndim`` big-endian uint32 dimensions, then the data in row-major order. MNIST
images are ``0x00000803`` (2051) with dimensions (N, 28, 28); labels are ``0x00000801``
(2049) with dimension (N,).
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from typing import Sequence

import numpy as np

from jaxadv.data import _download
from jaxadv.data._errors import CorruptDataError

TITLE = "MNIST"
SHAPE = (28, 28, 1)
LEVELS = 255
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# Searched in this order under the data directory ("MNIST/raw" is torchvision's layout);
# downloads go to the first.
SUBDIRS = ("mnist", os.path.join("MNIST", "raw"), "")

# The official page (yann.lecun.com) often refuses automated downloads; the S3 bucket that
# torchvision uses and the Google bucket that TensorFlow Datasets uses serve the same files.
BASE_URLS: list[str] = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
]
# SHA-256 of the gzipped files as distributed. Sources, which agree on all four:
# tensorflow/datasets tensorflow_datasets/url_checksums/mnist.txt (with sizes 9912422, 28881,
# 1648877, 4542 bytes) and ankane/torchvision-ruby lib/torchvision/datasets/mnist.rb
# (the same digests for the yann.lecun.com URLs).
SHA256: dict[str, str] = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}

_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801


def _read_bytes(path: str) -> bytes:
    with open(path, "rb") as fh:
        head = fh.read(2)
        if head != b"\x1f\x8b":
            return head + fh.read()
    try:
        with gzip.open(path, "rb") as fh:
            return fh.read()
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise CorruptDataError(
            f"{path}: corrupt gzip stream ({e}); the file is truncated or damaged. Delete it and download it again "
            f"(download=True / --download)."
        ) from e


def read_idx(path: str, *, magic: int | None = None) -> np.ndarray:
    """Reads an IDX file (gzipped or not) into a NumPy array of its declared type and shape.

    Args:
      path: the file.
      magic: the 4-byte magic number the file must have (e.g. ``0x00000803`` for MNIST images);
        ``None`` accepts any valid IDX magic.

    Returns:
      An array of shape ``dims`` from the header, in native byte order.

    Raises:
      CorruptDataError: not gzip-valid, wrong magic number, or a length that does not match
        the header (truncated or with trailing bytes).
    """
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise CorruptDataError(f"{path}: {len(raw)} bytes, too short to hold an IDX magic number (4 bytes).")
    found = struct.unpack(">I", raw[:4])[0]
    if raw[0] or raw[1] or raw[2] not in _IDX_TYPES or raw[3] == 0:
        want = (
            f"0x{magic:08x}"
            if magic is not None
            else "0x0000TTNN with type TT in {08, 09, 0b, 0c, 0d, 0e} and NN ≥ 1 dimensions"
        )
        raise CorruptDataError(f"{path}: not an IDX file (magic number 0x{found:08x}, expected {want}).")
    if magic is not None and found != magic:
        raise CorruptDataError(f"{path}: IDX magic number 0x{found:08x} ({found}), expected 0x{magic:08x} ({magic}).")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise CorruptDataError(f"{path}: truncated header ({len(raw)} bytes, expected {header} for {ndim} dimensions).")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    expected = math.prod(dims) * dtype.itemsize
    have = len(raw) - header
    if have != expected:
        what = "truncated" if have < expected else f"{have - expected} bytes longer than its header says"
        raise CorruptDataError(
            f"{path}: {what}: the header declares dimensions {tuple(dims)} of {dtype.name}, i.e. {expected} bytes "
            f"after the {header}-byte header ({header + expected} in all), but the file holds {have} "
            f"({len(raw)} in all)."
        )
    return np.frombuffer(raw, dtype, offset=header).astype(dtype.newbyteorder("=")).reshape(dims)


def read(paths: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Reads one split from its ``(images, labels)`` files.

    Returns:
      ``(pixels, classes)``: uint8 ``(N, 28, 28, 1)`` and uint8 ``(N,)`` in 0..9.
    """
    images_path, labels_path = paths
    x = read_idx(images_path, magic=IMAGES_MAGIC)
    if x.shape[1:] != SHAPE[:2]:
        raise CorruptDataError(f"{images_path}: images of {x.shape[1]}×{x.shape[2]} pixels; MNIST images are 28×28.")
    y = read_idx(labels_path, magic=LABELS_MAGIC)
    if len(x) == 0:
        raise CorruptDataError(f"{images_path}: holds no images.")
    if len(x) != len(y):
        raise CorruptDataError(f"{images_path} holds {len(x)} images but {labels_path} holds {len(y)} labels.")
    bad = np.flatnonzero(y > 9)
    if bad.size:
        raise CorruptDataError(
            f"{labels_path}: label {y[bad[0]]} at index {bad[0]} ({bad.size} in all); MNIST labels are 0–9."
        )
    return x[..., None], y


def find(root: str, split: str) -> list[str | None]:
    """The path of each of the split's files under ``root`` (any of ``SUBDIRS``, raw or ``.gz``), or None."""
    out = []
    for stem in FILES[split]:
        candidates = (os.path.join(root, sub, stem + ext) for sub in SUBDIRS for ext in ("", ".gz"))
        out.append(next((p for p in candidates if os.path.isfile(p)), None))
    return out


def expected(split: str) -> list[str]:
    return [stem + "[.gz]" for stem in FILES[split]]


def fetch(root: str, split: str, *, base_urls: Sequence[str] | None = None, progress: bool = False) -> None:
    """Downloads the split's missing files (gzipped, verified) into ``root/mnist``."""
    urls = BASE_URLS if base_urls is None else base_urls
    for stem, path in zip(FILES[split], find(root, split)):
        if path is None:
            name = stem + ".gz"
            _download.fetch(name, urls, SHA256[name], os.path.join(root, SUBDIRS[0]), progress=progress)


def offline_hint(root: str) -> str:
    names = ", ".join(stem + ".gz" for split in FILES for stem in FILES[split])
    return f"MNIST needs {names} (gzipped or not) in {os.path.join(root, SUBDIRS[0])}."


def how_to_get(root: str) -> str:
    return (
        f"Pass download=True (CLI: --download) to fetch them from {BASE_URLS[0]} (or its mirrors) into "
        f"{os.path.join(root, SUBDIRS[0])}, or download them yourself and put them there."
    )
