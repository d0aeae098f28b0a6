"""A disk cache of generated ``(x, y)`` arrays, keyed by what generated them.

Generated data (the MNIST-1D datasets, the shift sets) is a pure function of its generator's
version and arguments, so it is made once and read back from an ``.npz`` afterwards: a fresh
worker process reads MNIST-1D in milliseconds instead of regenerating it (about 2.5 s).
Files are written atomically (``core.atomic``: temporary file, fsync, rename), so two processes filling the
same entry never leave a torn file; an unreadable entry is regenerated and overwritten.

``user_cache_dir()`` is where data that belongs to no results store is cached:
``$PRUNEBENCH_CACHE`` if set (an empty value turns the cache off), else
``$XDG_CACHE_HOME/prunebench`` or ``~/.cache/prunebench``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from core.atomic import atomic_write

Arrays = tuple[np.ndarray, np.ndarray]


def cache_key(spec: dict) -> str:
    """16 hex digits of a hash of the generator's description (sorted JSON)."""
    return hashlib.blake2b(json.dumps(spec, sort_keys=True).encode(), digest_size=8).hexdigest()


def user_cache_dir() -> Path | None:
    configured = os.environ.get("PRUNEBENCH_CACHE")
    if configured is not None:
        return Path(configured) if configured else None
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "prunebench"


def read_arrays(path: Path) -> Arrays | None:
    """The cached arrays, or None when the entry is missing or unreadable."""
    try:
        with np.load(path) as f:
            return f["x"], f["y"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None


def write_arrays(path: Path, x: np.ndarray, y: np.ndarray) -> None:
    atomic_write(path, lambda handle: np.savez(handle, x=x, y=y))


def cached_arrays(path: Path | None, generate: Callable[[], Arrays]) -> Arrays:
    """Read ``path``, else generate and store there; ``path=None`` always generates.

    A cache that cannot be written (read-only or full disk) costs only the regeneration.
    """
    if path is not None:
        arrays = read_arrays(path)
        if arrays is not None:
            return arrays
    arrays = generate()
    if path is not None:
        with contextlib.suppress(OSError):
            write_arrays(path, *arrays)
    return arrays
