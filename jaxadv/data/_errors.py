"""The errors of the dataset loaders, each a subclass of the built-in error it refines."""


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are not in the data directory (the message lists them and where to get them)."""


class CorruptDataError(ValueError):
    """A dataset file is truncated or not in the expected format (the message names the file)."""


class ChecksumError(ValueError):
    """A file's SHA-256 differs from the published one (the message names the file and both digests)."""


class DownloadError(ConnectionError):
    """No source could be reached (the message says what to download, from where, and where to put it)."""
