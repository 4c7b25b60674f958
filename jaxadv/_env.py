"""A description of the software and hardware a result was computed on."""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import jax


def _version(pkg: str) -> str:
    try:
        return version(pkg)
    except PackageNotFoundError:
        return "not installed"


def environment() -> dict[str, Any]:
    """Versions, backend and devices, as a JSON-ready dict."""
    from jaxadv import __version__

    devices = jax.devices()
    return {
        "jaxadv": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "jax": jax.__version__,
        "jaxlib": _version("jaxlib"),
        "optax": _version("optax"),
        "chex": _version("chex"),
        "numpy": _version("numpy"),
        "backend": jax.default_backend(),
        "devices": [str(d) for d in devices],
        "device_kinds": sorted({d.device_kind for d in devices}),
        "x64": bool(jax.config.jax_enable_x64),
    }
