"""scikit-learn's 8×8 handwritten digits: a real image dataset that needs no download.

1797 greyscale images of 8×8 pixels with 17 intensity levels (0..16), classes 0..9 (the
UCI "Optical Recognition of Handwritten Digits" test set, shipped inside scikit-learn).
The fallback when neither MNIST nor CIFAR-10 is available locally.

Split (fixed, no randomness): the first ``N_TRAIN = 1437`` images (⌊0.8 × 1797⌋) in the
order ``sklearn.datasets.load_digits`` returns them are the training split, the remaining
360 the test split. The same on every machine and in every version that ships the same file.
"""

from __future__ import annotations

import numpy as np

TITLE = "scikit-learn digits"
SHAPE = (8, 8, 1)
LEVELS = 16
N_TOTAL = 1797
N_TRAIN = 1437
INSTALL_HINT = "pip install 'jaxadv[digits]' (or pip install scikit-learn)"


def installed() -> bool:
    """Whether scikit-learn can be imported (without importing it)."""
    import importlib.util

    return importlib.util.find_spec("sklearn") is not None


def read_split(split: str) -> tuple[np.ndarray, np.ndarray]:
    """``(pixels, classes)`` of one split: uint8 ``(N, 8, 8, 1)`` in 0..16 and uint8 ``(N,)`` in 0..9."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:
        raise ImportError(
            f"the 'digits' dataset comes from scikit-learn, which is not installed: {INSTALL_HINT}."
        ) from e
    bunch = load_digits()
    images, target = np.asarray(bunch.images), np.asarray(bunch.target)
    if images.shape != (N_TOTAL, 8, 8) or target.shape != (N_TOTAL,):
        raise RuntimeError(
            f"scikit-learn's load_digits returned images {images.shape} and targets {target.shape}; expected "
            f"({N_TOTAL}, 8, 8) and ({N_TOTAL},), so the documented split would not be reproducible."
        )
    pixels = images.astype(np.uint8)[..., None]
    classes = target.astype(np.uint8)
    part = slice(0, N_TRAIN) if split == "train" else slice(N_TRAIN, N_TOTAL)
    return pixels[part], classes[part]
