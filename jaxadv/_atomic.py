"""Atomic file writes: a reader sees the whole file or no file, never a partial one.

The file is written under a temporary name (``.tmp-…``) in the destination's directory,
flushed to disk, and renamed into place with ``os.replace`` (atomic on POSIX and Windows
within one file system, which is why the temporary file lives beside the destination and
not in ``/tmp``). If anything fails or is interrupted inside the ``with`` block, the
temporary file is removed and the destination is untouched.

Permissions: ``tempfile.mkstemp`` creates its file with mode 0600 (owner only), which would
make downloaded data sets and results unreadable by the other users of a shared directory.
Before the rename the file gets the mode a plain ``open(path, "w")`` gives a new file,
0o666 & ~umask. The umask is read from ``/proc/self/status`` where the kernel reports it
(Linux ≥ 4.7), which changes nothing. Elsewhere the only way to read it is to set it and
restore it at once (``os.umask``), which for that instant changes a process-wide setting: a
file created by another thread in that window gets the umask 0o022 (mode 0644 for a plain
file) instead of the process's own. It is read again for every file, so a umask the program
changes later is followed.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import IO, Iterator

TMP_PREFIX = ".tmp-"


def _umask_from_proc() -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return None


def _umask_by_setting() -> int:
    # Set and restored at once; see the module docstring for why this is the fallback only.
    # 0o022 in the window: a file another thread creates meanwhile is at worst not group- or
    # world-writable.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def current_umask() -> int:
    """The process's umask, read without changing it where the OS allows (see the module docstring)."""
    mask = _umask_from_proc()
    return _umask_by_setting() if mask is None else mask


def new_file_mode() -> int:
    """The permission bits ``open(path, "w")`` gives a new file: 0o666 & ~umask."""
    return 0o666 & ~current_umask()


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Opens a temporary file that replaces ``path`` when the block exits normally.

    Args:
      path: the destination; its directory must exist.
      mode: ``"wb"`` or ``"w"`` (any write mode of ``open``).

    Yields:
      The open temporary file. Raising inside the block (a checksum mismatch, an interrupted
      transfer, ``KeyboardInterrupt``) removes it and re-raises; ``path`` is left as it was.
      On success ``path`` has the permissions of a new file made by ``open(path, "w")``
      (0o666 & ~umask), also when it replaces an existing file.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=TMP_PREFIX, suffix=os.path.splitext(path)[1])
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        # mkstemp's 0600 would hide the file from the other users of a shared directory.
        os.chmod(tmp, new_file_mode())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
