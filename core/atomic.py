"""Atomic file writing: the one writer every stored file goes through.

``atomic_write`` writes to a hidden temporary name in the target's folder (``.tmp-*``),
flushes and fsyncs it, renames it onto the target and fsyncs the folder: a reader sees the
old file or the whole new one, never a part, and a crash (``kill -9``, power loss) leaves
at most a ``.tmp-*`` file, which readers ignore and ``remove_stale_temporaries`` deletes.

A full disk (``ENOSPC``, or a quota: ``EDQUOT``) raises ``DiskFullError``, one line naming the
file; the temporary file is removed and the previous file, if any, is kept. Parquet files are
written with page checksums (CRC-32 of every data page), so a damaged page is an error on
reading, never a silently wrong value.

Fault injection for tests: while ``PRUNEBENCH_FAULT_DISK_FULL`` holds a glob, every write whose
target path matches it fails as a full disk would (``OSError(ENOSPC)``), in every process that
inherits the variable.
"""

from __future__ import annotations

import errno
import fnmatch
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

TMP_PREFIX = ".tmp-"
STALE_TMP_SECONDS = 600  # a temporary file older than this belongs to a killed run
FAULT_DISK_FULL_ENV = "PRUNEBENCH_FAULT_DISK_FULL"
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


class DiskFullError(OSError):
    """A write failed because the disk (or the quota) is full; the message names the file."""

    def __init__(self, path: Path | str) -> None:
        super().__init__(
            errno.ENOSPC,
            f"the disk is full (writing {path}): finished cells are kept; free space and run again",
        )

    def __str__(self) -> str:
        return self.strerror

    def __reduce__(self):  # crosses process boundaries (a pool worker's exception)
        return (_disk_full, (self.strerror,))


def _disk_full(message: str) -> DiskFullError:
    error = DiskFullError("")
    error.strerror = message
    return error


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS


def _injected_fault(path: Path) -> None:
    pattern = os.environ.get(FAULT_DISK_FULL_ENV)
    if pattern and fnmatch.fnmatch(str(path), pattern):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


def atomic_write(path: Path | str, write: Callable[[BinaryIO], None]) -> None:
    """Write through ``write(handle)`` to a temporary file, fsync, rename onto ``path``."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, suffix=path.suffix, dir=path.parent)
    except OSError as exc:
        if is_disk_full(exc):
            raise DiskFullError(path) from None
        raise
    try:
        with os.fdopen(fd, "wb") as handle:
            _injected_fault(path)
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if is_disk_full(exc) and not isinstance(exc, DiskFullError):
            raise DiskFullError(path) from None
        raise
    fsync_dir(path.parent)


def atomic_write_bytes(path: Path | str, payload: bytes) -> None:
    atomic_write(path, lambda handle: handle.write(payload))


def atomic_write_text(path: Path | str, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_parquet(path: Path | str, table, metadata: dict[bytes, bytes] | None = None) -> None:
    """A ``pyarrow.Table`` (or a pandas frame, written without its index) as Parquet."""
    import pyarrow as pa

    if not isinstance(table, pa.Table):
        table = pa.Table.from_pandas(table, preserve_index=False)
    atomic_write_bytes(path, parquet_bytes(table, metadata))


def parquet_bytes(table, metadata: dict[bytes, bytes] | None = None) -> bytes:
    """A ``pyarrow.Table`` as the bytes of a Parquet file with page checksums (what
    ``atomic_write_parquet`` writes), for a caller that hashes them before writing."""
    import io

    import pyarrow.parquet as pq

    if metadata:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata})
    buffer = io.BytesIO()
    pq.write_table(table, buffer, write_page_checksum=True)
    return buffer.getvalue()


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_stale_temporaries(directories, older_than: float = STALE_TMP_SECONDS) -> None:
    """Delete ``.tmp-*`` files older than ``older_than`` seconds (left by a killed writer)."""
    now = time.time()
    for d in directories:
        d = Path(d)
        for tmp in d.glob(f"{TMP_PREFIX}*") if d.exists() else ():
            try:
                if now - tmp.stat().st_mtime > older_than:
                    tmp.unlink()
            except FileNotFoundError:
                pass
