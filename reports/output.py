"""Where a report may be written: ``check_out`` refuses, in one line, before any work, an
output folder that is a file, a folder holding something other than a report, or a place that
cannot be written."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


class ReportOutputError(ValueError):
    """The report's output folder cannot be used; the message names it and why."""


def check_out(out: Path | str) -> Path:
    """``out`` as a resolved path, once it is known to be usable for a report."""
    out = Path(out).resolve()
    if out.exists() and not out.is_dir():
        raise ReportOutputError(f"--out {str(out)!r} is a file, not a folder: choose a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / "index.html").exists():
        raise ReportOutputError(
            f"--out {str(out)!r} exists and is not a prunebench report (no index.html): choose another --out"
        )
    existing = out
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ReportOutputError(f"--out {str(out)!r}: {str(existing)!r} is a file, not a folder")
    try:  # a real probe: permission bits do not tell (root, read-only mounts)
        shutil.rmtree(tempfile.mkdtemp(prefix=".prunebench-probe-", dir=existing))
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ReportOutputError(f"--out {str(out)!r}: cannot write in {str(existing)!r} ({reason})") from None
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ReportOutputError(f"--out {str(out)!r}: {str(existing)!r} is not a writable folder")
    return out
