"""Atomic file writing: the one writer every stored file goes through.

``atomic_write`` writes to a hidden temporary name in the target's folder (``.tmp-*``),
flushes and fsyncs it, renames it onto the target and fsyncs the folder: a reader sees the
old file or the whole new one, never a part, and a crash (``kill -9``, power loss) leaves
at most a ``.tmp-*`` file, which readers ignore and ``remove_stale_temporaries`` deletes.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

TMP_PREFIX = ".tmp-"
STALE_TMP_SECONDS = 600  # a temporary file older than this belongs to a killed run


def atomic_write(path: Path | str, write: Callable[[BinaryIO], None]) -> None:
    """Write through ``write(handle)`` to a temporary file, fsync, rename onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, suffix=path.suffix, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write_bytes(path: Path | str, payload: bytes) -> None:
    atomic_write(path, lambda handle: handle.write(payload))


def atomic_write_text(path: Path | str, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_parquet(path: Path | str, table, metadata: dict[bytes, bytes] | None = None) -> None:
    """A ``pyarrow.Table`` (or a pandas frame, written without its index) as Parquet."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not isinstance(table, pa.Table):
        table = pa.Table.from_pandas(table, preserve_index=False)
    if metadata:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata})
    atomic_write(path, lambda handle: pq.write_table(table, handle))


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
