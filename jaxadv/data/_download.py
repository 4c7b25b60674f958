"""Where datasets live on disk, and fetching a file over HTTP(S) with SHA-256 verification.

Only ``urllib`` is used. A download is streamed into a temporary file beside its
destination while its SHA-256 is computed, and renamed into place only when the digest
matches the published one (:mod:`jaxadv._atomic`): a checksum mismatch, an interrupted
transfer or a ``KeyboardInterrupt`` leave nothing in the cache, not even the temporary file.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.request
from typing import Sequence

from jaxadv._atomic import atomic_open
from jaxadv.data._errors import ChecksumError, DownloadError

ENV_VAR = "JAXADV_DATA_DIR"
CHUNK = 1 << 20
TIMEOUT_S = 60.0
# Some servers refuse urllib's default agent string (HTTP 403).
USER_AGENT = "jaxadv-data/1 (Python urllib)"


def cache_dir() -> str:
    """``$XDG_CACHE_HOME/jaxadv``, or ``~/.cache/jaxadv`` when that variable is unset or relative."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):  # the XDG spec says to ignore a relative value
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "jaxadv")


def resolve_root(data_dir: str | os.PathLike | None) -> tuple[str, str]:
    """The data directory and how it was chosen: ``data_dir``, else ``$JAXADV_DATA_DIR``, else the cache.

    Returns:
      ``(absolute path, description of its origin)``; the path need not exist yet.

    Raises:
      TypeError: ``data_dir`` is not a path.
      NotADirectoryError: the chosen path exists and is not a directory.
    """
    if data_dir is not None:
        if not isinstance(data_dir, (str, os.PathLike)) or isinstance(os.fspath(data_dir), bytes):
            raise TypeError(f"`data_dir` must be a directory path (str or os.PathLike) or None, got {data_dir!r}.")
        path, how = os.fspath(data_dir), "the `data_dir` argument"
        if not path:
            raise ValueError("`data_dir` must be a directory path, got an empty string.")
    elif os.environ.get(ENV_VAR):
        path, how = os.environ[ENV_VAR], f"${ENV_VAR}"
    else:
        path, how = cache_dir(), "the cache default, as neither `data_dir` nor $JAXADV_DATA_DIR is set"
    path = os.path.abspath(os.path.expanduser(path))
    if os.path.exists(path) and not os.path.isdir(path):
        raise NotADirectoryError(
            f"the data directory {path!r} (from {how}) exists but is not a directory; pass the directory that "
            f"holds the datasets."
        )
    return path, how


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


class _TransferError(Exception):
    """A failure of the network or the server (as opposed to the local disk, which propagates)."""


def _url(base: str, filename: str) -> str:
    return base if base.endswith(filename) else base.rstrip("/") + "/" + filename


def _fetch_one(url: str, dest: str, sha256: str, *, progress: bool, timeout: float) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        raise _TransferError(f"the server answered HTTP {e.code} {e.reason}") from e
    except urllib.error.URLError as e:
        raise _TransferError(f"unreachable ({e.reason})") from e
    except (OSError, http.client.HTTPException) as e:
        raise _TransferError(f"{type(e).__name__}: {e}") from e
    from tqdm.auto import tqdm

    with response:
        length = response.headers.get("Content-Length")
        expected = int(length) if length and length.isdigit() else None
        name = os.path.basename(dest)
        with (
            atomic_open(dest, "wb") as fh,
            tqdm(
                total=expected,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=name,
                leave=False,
                disable=not progress,
            ) as bar,
        ):
            h, n = hashlib.sha256(), 0
            while True:
                try:
                    chunk = response.read(CHUNK)
                except (OSError, http.client.HTTPException) as e:
                    raise _TransferError(f"transfer interrupted after {n} bytes ({type(e).__name__}: {e})") from e
                if not chunk:
                    break
                h.update(chunk)
                fh.write(chunk)
                n += len(chunk)
                bar.update(len(chunk))
            if expected is not None and n != expected:
                raise _TransferError(f"transfer interrupted after {n} of {expected} bytes")
            actual = h.hexdigest()
            if actual != sha256:
                raise ChecksumError(
                    f"checksum mismatch for {name} downloaded from {url}: expected sha256 {sha256}, got {actual} "
                    f"({n} bytes); the download was discarded and nothing was written to {os.path.dirname(dest)}."
                )


def fetch(
    filename: str,
    base_urls: Sequence[str],
    sha256: str,
    dest_dir: str,
    *,
    progress: bool = False,
    timeout: float = TIMEOUT_S,
) -> str:
    """Downloads ``filename`` from the first of ``base_urls`` that serves it with the right SHA-256.

    Args:
      filename: the file's name, appended to each base URL and used in ``dest_dir``.
      base_urls: the official location first, then mirrors.
      sha256: the published SHA-256 (hex).
      dest_dir: where the verified file goes (created if needed).
      progress: show a tqdm bar per transfer.
      timeout: seconds without data before a connection counts as failed.

    Returns:
      The path of the verified file.

    Raises:
      ChecksumError: every source that answered served a file with another digest.
      DownloadError: no source could be reached (offline, server down, HTTP errors).
      PermissionError: ``dest_dir`` cannot be created or written.
    """
    if not base_urls:
        raise ValueError(f"no URL to download {filename} from.")
    try:
        os.makedirs(dest_dir, exist_ok=True)
    except OSError as e:
        raise PermissionError(
            f"cannot create the data directory {dest_dir!r} to download {filename} into: {e.strerror or e}."
        ) from e
    dest = os.path.join(dest_dir, filename)
    failures: list[str] = []
    mismatch: ChecksumError | None = None
    for base in base_urls:
        url = _url(base, filename)
        try:
            _fetch_one(url, dest, sha256, progress=progress, timeout=timeout)
            return dest
        except ChecksumError as e:
            mismatch = mismatch or e
            failures.append(f"{url}: wrong checksum")
        except _TransferError as e:
            failures.append(f"{url}: {e}")
    tried = "; ".join(failures)
    if mismatch is not None:
        raise ChecksumError(f"{mismatch} Sources tried: {tried}.")
    urls = ", ".join(_url(b, filename) for b in base_urls)
    raise DownloadError(
        f"could not download {filename} (tried {tried}). If this machine is offline, download {filename} on a "
        f"machine with network access from {urls}, put it in {dest_dir}, and load again."
    )
