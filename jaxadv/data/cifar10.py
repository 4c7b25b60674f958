"""CIFAR-10 (Krizhevsky 2009) from its binary distribution; nothing is ever unpickled.

``cifar-10-binary.tar.gz`` holds ``cifar-10-batches-bin/data_batch_1.bin`` … ``data_batch_5.bin``
(training, 10,000 records each) and ``test_batch.bin`` (10,000 records). A record is 3073
bytes: the class (0..9), then 3072 pixel bytes in channel-major order (1024 red, 1024
green, 1024 blue, each a 32×32 image stored row by row); the loader transposes them to
(H, W, C). Classes: 0 airplane, 1 automobile, 2 bird, 3 cat, 4 deer, 5 dog, 6 frog,
7 horse, 8 ship, 9 truck.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import posixpath
import shutil
import tarfile
import zlib
from typing import Sequence

import numpy as np

from jaxadv._atomic import atomic_open
from jaxadv.data import _download
from jaxadv.data._errors import ChecksumError, CorruptDataError

TITLE = "CIFAR-10"
SHAPE = (32, 32, 3)
LEVELS = 255
CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
RECORD_BYTES = 1 + 32 * 32 * 3
FILES = {
    "train": tuple(f"data_batch_{i}.bin" for i in range(1, 6)),
    "test": ("test_batch.bin",),
}
MEMBER_DIR = "cifar-10-batches-bin"
# Searched in this order under the data directory; downloads are extracted into the first.
SUBDIRS = (MEMBER_DIR, "")
ARCHIVE = "cifar-10-binary.tar.gz"
BASE_URLS: list[str] = ["https://www.cs.toronto.edu/~kriz/"]
# SHA-256 of the archive (170052171 bytes). Sources, which agree: tensorflow/datasets
# tensorflow_datasets/url_checksums/cifar10.txt, gomlx/gomlx examples/cifar/cifar.go and
# ankane/torchvision-ruby lib/torchvision/datasets/cifar10.rb.
SHA256: dict[str, str] = {
    ARCHIVE: "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
}


def read_batch(path: str) -> tuple[np.ndarray, np.ndarray]:
    """Reads one binary batch file.

    Returns:
      ``(pixels, classes)``: uint8 ``(n, 32, 32, 3)`` (HWC) and uint8 ``(n,)`` in 0..9.

    Raises:
      CorruptDataError: the length is not a whole, positive number of 3073-byte records, or a
        class byte is above 9.
    """
    size = os.path.getsize(path)
    if size == 0 or size % RECORD_BYTES:
        raise CorruptDataError(
            f"{path}: {size} bytes is not a whole number of {RECORD_BYTES}-byte records (1 class byte + 3×32×32 "
            f"pixel bytes); the file is truncated or not a CIFAR-10 binary batch (a full batch is 10000 records, "
            f"{10000 * RECORD_BYTES} bytes)."
        )
    records = np.fromfile(path, np.uint8).reshape(-1, RECORD_BYTES)
    classes = records[:, 0].copy()
    bad = np.flatnonzero(classes > 9)
    if bad.size:
        raise CorruptDataError(
            f"{path}: class byte {classes[bad[0]]} in record {bad[0]} ({bad.size} in all); CIFAR-10 classes are 0–9."
        )
    pixels = records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(pixels), classes


def read(paths: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Reads one split from its batch files, concatenated in the given order."""
    parts = [read_batch(p) for p in paths]
    return np.concatenate([p for p, _ in parts]), np.concatenate([c for _, c in parts])


def find(root: str, split: str) -> list[str | None]:
    """The path of each of the split's batch files under ``root`` (any of ``SUBDIRS``), or None."""
    out = []
    for name in FILES[split]:
        candidates = (os.path.join(root, sub, name) for sub in SUBDIRS)
        out.append(next((p for p in candidates if os.path.isfile(p)), None))
    return out


def expected(split: str) -> list[str]:
    return list(FILES[split])


def _escapes(name: str) -> bool:
    parts = name.replace("\\", "/").split("/")
    return name.startswith(("/", "\\")) or os.path.isabs(name) or ".." in parts or (":" in parts[0])


def extract(archive: str, dest_dir: str) -> list[str]:
    """Extracts the six batch files of ``archive`` into ``dest_dir``, all of them or none.

    Only members named ``cifar-10-batches-bin/<batch>.bin`` that are regular files are read,
    and each is written to a path built here, never from the member's name. An archive
    with any member whose name or link target is absolute or contains ``..`` is refused
    before anything is written.

    Returns:
      The extracted paths.

    Raises:
      CorruptDataError: not a gzipped tar, a traversal member, a missing or malformed batch.
    """
    wanted = {posixpath.join(MEMBER_DIR, n): n for split in FILES for n in FILES[split]}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = tar.getmembers()
            for m in members:
                if _escapes(m.name) or ((m.issym() or m.islnk()) and _escapes(m.linkname)):
                    raise CorruptDataError(
                        f"{archive}: member {m.name!r}"
                        + (f" (a link to {m.linkname!r})" if m.linkname else "")
                        + " points outside the extraction directory (an absolute path or '..'); the archive is refused "
                        "and nothing was extracted."
                    )
            found = {}
            for m in members:
                name = posixpath.normpath(m.name)
                if name not in wanted:
                    continue
                if not m.isfile():
                    raise CorruptDataError(f"{archive}: member {m.name!r} is not a regular file; refused.")
                if m.size == 0 or m.size % RECORD_BYTES:
                    raise CorruptDataError(
                        f"{archive}: member {m.name!r} has {m.size} bytes, not a whole number of "
                        f"{RECORD_BYTES}-byte records."
                    )
                found[wanted[name]] = m
            missing = sorted(set(wanted.values()) - set(found))
            if missing:
                raise CorruptDataError(
                    f"{archive}: no member {', '.join(posixpath.join(MEMBER_DIR, n) for n in missing)}."
                )
            os.makedirs(dest_dir, exist_ok=True)
            # One atomic file per member, all committed together when the stack closes: an error
            # while reading any member removes every temporary file and commits none. Archive
            # order, because seeking backwards in a gzip stream decompresses it again from the start.
            with contextlib.ExitStack() as stack:
                for name, member in sorted(found.items(), key=lambda item: item[1].offset):
                    fh = stack.enter_context(atomic_open(os.path.join(dest_dir, name), "wb"))
                    src = tar.extractfile(member)
                    shutil.copyfileobj(src, fh, _download.CHUNK)
    except (tarfile.TarError, gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise CorruptDataError(f"{archive}: not a valid gzipped tar archive ({type(e).__name__}: {e}).") from e
    return [os.path.join(dest_dir, n) for n in sorted(found)]


def fetch(root: str, split: str, *, base_urls: Sequence[str] | None = None, progress: bool = False) -> None:
    """Makes every batch file available under ``root/cifar-10-batches-bin``.

    Uses ``root/cifar-10-binary.tar.gz`` if it is there (after checking its SHA-256; it is
    kept), else downloads it (verified), extracts it and deletes it, since the extracted
    batches hold the same bytes. ``split`` is accepted for symmetry with MNIST: the archive
    holds both splits, so both are extracted.
    """
    del split
    archive = os.path.join(root, ARCHIVE)
    downloaded = not os.path.isfile(archive)
    if downloaded:
        _download.fetch(
            ARCHIVE, BASE_URLS if base_urls is None else base_urls, SHA256[ARCHIVE], root, progress=progress
        )
    else:
        actual = _download.sha256_file(archive)
        if actual != SHA256[ARCHIVE]:
            raise ChecksumError(
                f"{archive}: expected sha256 {SHA256[ARCHIVE]}, got {actual}. It is not the published archive "
                f"(truncated or altered): delete it and pass download=True again."
            )
    try:
        extract(archive, os.path.join(root, MEMBER_DIR))
    except BaseException:
        if downloaded:
            os.remove(archive)
        raise
    if downloaded:
        os.remove(archive)


def offline_hint(root: str) -> str:
    return (
        f"CIFAR-10 needs {ARCHIVE} in {root}: once it is there, download=True verifies and extracts it without "
        f"network (or extract its {MEMBER_DIR}/ there yourself)."
    )


def how_to_get(root: str) -> str:
    return (
        f"Pass download=True (CLI: --download) to fetch {ARCHIVE} from {BASE_URLS[0]} and extract it into "
        f"{os.path.join(root, MEMBER_DIR)}; or put {ARCHIVE} in {root} yourself and pass download=True to extract it "
        f"without network; or extract it there yourself."
    )
