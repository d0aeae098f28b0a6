"""Build, cache and reuse the shift sets of a dataset.

Which sets a dataset has, with which severity table and how many examples each, is its
declared ``ShiftProfile`` (``data.shifts``, from ``benchmarks/datasets/<name>.py``).

A shift set is generated once per (dataset, shift, severity) from a fixed seed and stored
under ``<cache_dir>/shifts/<dataset>/<shift>-s<severity>-<key>.npz``, ``key`` being a hash of
everything the set depends on (the clean test data, the shift's version and parameters,
the set size and the seed), so a changed definition never reads a stale file. Files are
written to a temporary name and renamed (``os.replace``), so concurrent workers see a whole
file or none; each process also keeps the sets it has read in memory. With
``cache_dir=None`` (unit tests) sets live in memory only.

Corruptions reuse one seed per (dataset, shift) at every severity (the same noise draws,
angles and positions, scaled by the severity), which keeps the severity curve smooth.
"""

from __future__ import annotations

import functools
import hashlib
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks import array_cache
from benchmarks.shifts.base import SHIFTS, Shift, ShiftUnavailable

SHIFT_SEED = 1_000_003
GENERATOR_VERSION = "1"


@dataclass(frozen=True)
class ShiftSet:
    name: str
    kind: str  # corruption | ood
    severity: int  # 1-5 for corruptions, 0 for OOD sets
    x: np.ndarray
    y: np.ndarray  # labels; -1 for OOD sets


def applicable_shifts(data, kind: str | None = None) -> list[Shift]:
    """Registered shifts that ``data``'s profile declares (all kinds, or one), in name order."""
    out = []
    for name in SHIFTS.names():
        shift = SHIFTS.get(name)
        if data.shifts.applies(shift) and (kind is None or shift.kind == kind):
            out.append(shift)
    return out


def shift_seed(dataset: str, shift: str) -> int:
    return (zlib.crc32(f"{dataset}/{shift}".encode()) ^ SHIFT_SEED) & 0x7FFFFFFF


def stratified_subset(labels: np.ndarray, n: int, seed: int = SHIFT_SEED) -> np.ndarray:
    """Sorted indices of ``n`` examples, classes as balanced as the labels allow (fixed seed)."""
    if n >= len(labels):
        return np.arange(len(labels))
    perm = np.random.default_rng(seed).permutation(len(labels))
    rank = np.empty(len(labels), dtype=np.int64)
    for k in np.unique(labels):
        members = perm[labels[perm] == k]
        rank[members] = np.arange(len(members))
    order = perm[np.argsort(rank[perm], kind="stable")]
    return np.sort(order[:n])


def build_shift_set(data, shift: Shift, severity: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Generate one set (no caching): float32 inputs shaped like the dataset's, int64 labels."""
    rng = np.random.default_rng(shift_seed(data.name, shift.name))
    if shift.kind == "ood":
        x = np.asarray(shift.apply(data, n, rng), dtype=np.float32)
        return x, np.full(len(x), -1, dtype=np.int64)
    param = data.shifts.param(shift, severity)
    if shift.regenerates:  # examples made anew by the dataset's generator, one knob changed
        x, y = shift.apply(data, n, param, shift_seed(data.name, shift.name))
        return x.astype(np.float32), y.astype(np.int64)
    idx = stratified_subset(data.y_test.numpy(), n)
    x, y = data.x_test.numpy()[idx].astype(np.float64), data.y_test.numpy()[idx]
    if data.pixel_stats is None:  # sequences: shifts act on the standardised values
        return shift.apply(x, param, rng).astype(np.float32), y.astype(np.int64)
    mean, std = (np.asarray(v, dtype=np.float64)[None, :, None, None] for v in data.pixel_stats)
    official = _official(data, shift.name, severity)
    if official is not None:  # the official CIFAR-10-C / CIFAR-100-C images of the test set
        images, labels = official
        corrupted, y = images[idx].astype(np.float64).transpose(0, 3, 1, 2) / 255.0, labels[idx]
        return ((corrupted - mean) / std).astype(np.float32), y.astype(np.int64)
    pixels = np.clip(x * std + mean, 0.0, 1.0)
    corrupted = np.clip(shift.apply(pixels, param, rng), 0.0, 1.0)
    return ((corrupted - mean) / std).astype(np.float32), y.astype(np.int64)


def _official(data, shift_name: str, severity: int):
    from benchmarks.files import official_corruption

    return official_corruption(data, shift_name, severity)


def _official_source(data, shift: Shift) -> str:
    from benchmarks.files import OFFICIAL_C, data_dir

    if shift.kind != "corruption" or data.name not in OFFICIAL_C:
        return "generated"
    path = data_dir() / OFFICIAL_C[data.name] / f"{shift.name}.npy"
    return f"official:{path}" if path.exists() else "generated"


@functools.cache
def _fingerprint(data) -> str:
    h = hashlib.blake2b(digest_size=8)
    h.update(data.name.encode())
    h.update(np.ascontiguousarray(data.x_test.numpy()).tobytes())
    h.update(np.ascontiguousarray(data.y_test.numpy()).tobytes())
    return h.hexdigest()


def set_size(data, shift: Shift, shift_size: int = 0, ood_size: int = 0) -> int:
    """Examples in one set: ``shift_size`` / ``ood_size`` (``core.spec.EvalConfig``), 0 meaning the
    dataset's declared size (``ShiftProfile``); a corruption set has at most the test split."""
    if shift.kind == "ood":
        return ood_size or data.shifts.ood_size
    return min(shift_size or data.shifts.shift_size, len(data.y_test))


def cache_key(data, shift: Shift, severity: int, n: int) -> str:
    param = None if shift.kind == "ood" else data.shifts.param(shift, severity)
    spec = {
        "data": _fingerprint(data),
        "shift": shift.name,
        "version": shift.version,
        "generator": GENERATOR_VERSION,
        "severity": severity,
        "param": repr(param),
        "n": n,
        "seed": shift_seed(data.name, shift.name),
        "source": _official_source(data, shift),
    }
    return array_cache.cache_key(spec)


_MEMO: dict[str, tuple[np.ndarray, np.ndarray]] = {}


def load_shift_set(
    data,
    shift: Shift | str,
    severity: int,
    cache_dir: Path | str | None = None,
    shift_size: int = 0,
    ood_size: int = 0,
) -> ShiftSet:
    """The set, from this process's memory, else the cache dir, else generated (and cached)."""
    shift = SHIFTS.get(shift) if isinstance(shift, str) else shift
    n = set_size(data, shift, shift_size, ood_size)
    key = cache_key(data, shift, severity, n)
    arrays = _MEMO.get(key)
    if arrays is None:
        path = None
        if cache_dir is not None:
            path = Path(cache_dir) / "shifts" / data.name / f"{shift.name}-s{severity}-{key}.npz"
        arrays = array_cache.cached_arrays(path, lambda: build_shift_set(data, shift, severity, n))
    _MEMO[key] = arrays
    return ShiftSet(shift.name, shift.kind, severity, arrays[0], arrays[1])


def shift_sets(
    data, cache_dir: Path | str | None = None, shift_size: int = 0, ood_size: int = 0
) -> list[ShiftSet]:
    """Every corruption (at the declared severities, 1-5) and OOD set of ``data``; unavailable OOD
    sources (a real dataset missing from the data dir) are left out."""
    out = []
    for shift in applicable_shifts(data):
        for severity in data.shifts.severities if shift.kind == "corruption" else (0,):
            try:
                out.append(load_shift_set(data, shift, severity, cache_dir, shift_size, ood_size))
            except ShiftUnavailable:
                break
    return out


def clear_memory() -> None:
    """Forget the sets read in this process (tests use it to prove the disk cache is hit)."""
    _MEMO.clear()
