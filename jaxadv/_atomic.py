"""Atomic file writes: a reader sees the whole file or no file, never a partial one.

The file is written under a temporary name (``.tmp-…``) in the destination's directory,
flushed to disk, and renamed into place with ``os.replace`` (atomic on POSIX and Windows
within one file system, which is why the temporary file lives beside the destination and
not in ``/tmp``). If anything fails or is interrupted inside the ``with`` block, the
temporary file is removed and the destination is untouched.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import IO, Iterator

TMP_PREFIX = ".tmp-"


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Opens a temporary file that replaces ``path`` when the block exits normally.

    Args:
      path: the destination; its directory must exist.
      mode: ``"wb"`` or ``"w"`` (any write mode of ``open``).

    Yields:
      The open temporary file. Raising inside the block (a checksum mismatch, an interrupted
      transfer, ``KeyboardInterrupt``) removes it and re-raises; ``path`` is left as it was.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=TMP_PREFIX, suffix=os.path.splitext(path)[1])
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
