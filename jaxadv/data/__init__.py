"""Inputs for experiments: random points, and image datasets with binary labels.

Random inputs (:mod:`jaxadv.data.synthetic`): ``sphere``, ``gaussian``. Image datasets
(:mod:`jaxadv.data.images`): ``load("mnist" | "cifar10" | "digits", "train" | "test")``
returns an :class:`ImageDataset`; ``available`` says whether a dataset is on disk without
downloading; ``download`` fetches it (SHA-256 verified, atomic writes).
"""

from jaxadv.data._errors import ChecksumError, CorruptDataError, DatasetNotFoundError, DownloadError
from jaxadv.data.images import (
    DATASETS,
    IMAGE_SHAPES,
    ImageDataset,
    available,
    download,
    load,
    resolve_data_dir,
)
from jaxadv.data.synthetic import gaussian, sphere

__all__ = [
    "DATASETS",
    "IMAGE_SHAPES",
    "ChecksumError",
    "CorruptDataError",
    "DatasetNotFoundError",
    "DownloadError",
    "ImageDataset",
    "available",
    "download",
    "gaussian",
    "load",
    "resolve_data_dir",
    "sphere",
]
