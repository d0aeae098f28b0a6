"""The contract's I/O guard: an audit hook (``sys.addaudithook``, PEP 578) that records, while armed,
what a pruner should never do: open, remove or rename a file, start a process, open a socket;
apart from the import system's reads (sources, installed packages, package metadata: pruners import
lazily)."""

from __future__ import annotations

import os
import sys
import sysconfig
from collections.abc import Iterator
from contextlib import contextmanager

import torch

_ARMED = False
_IO_EVENTS: list[str] = []
_HOOK_INSTALLED = False
WATCHED = {
    "open", "os.remove", "os.rename", "os.mkdir", "os.rmdir", "os.truncate", "os.chmod", "os.chown",
    "os.link", "os.symlink", "os.utime", "shutil.copyfile", "shutil.copytree", "shutil.move",
    "shutil.rmtree", "tempfile.mkstemp", "tempfile.mkdtemp", "socket.__new__", "socket.connect",
    "socket.bind", "socket.getaddrinfo", "socket.sendto", "subprocess.Popen", "os.system", "os.exec",
    "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty", "urllib.Request", "http.client.connect",
    "sqlite3.connect",
}  # fmt: skip
IMPORT_SUFFIXES = (".py", ".pyc", ".so", ".pyd", ".pth", ".typed")


def _install_roots() -> tuple[str, ...]:
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(torch.__file__)}
    roots |= {
        p for k, p in sysconfig.get_paths().items() if k in ("stdlib", "platstdlib", "purelib", "platlib")
    }
    return tuple(os.path.realpath(r) + os.sep for r in roots if r)


INSTALL_ROOTS = _install_roots()


def _importing() -> bool:
    """Whether an import is in progress on this thread (a module's code runs under the import system)."""
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


def _is_import_io(event: str, args: tuple) -> bool:
    """The import system's I/O, which lazy imports inside a pruner cause: reads of sources and
    package metadata, reads while an import runs, and bytecode caching."""
    path = args[0] if args else None
    if not isinstance(path, (str, bytes, os.PathLike)):
        return False
    path = os.fsdecode(path)
    if "__pycache__" in path:
        return True
    if event != "open":
        return False
    mode, flags = (args[1] if len(args) > 1 else None), (args[2] if len(args) > 2 else 0)
    if (mode is not None and any(c in mode for c in "wax+")) or bool(flags & (os.O_WRONLY | os.O_RDWR)):
        return False  # writes are never the import system's
    parent = os.path.basename(os.path.dirname(path))
    return (
        path.endswith(IMPORT_SUFFIXES)
        or parent.endswith((".dist-info", ".egg-info"))  # importlib.metadata: entry points, versions
        or os.path.realpath(path).startswith(INSTALL_ROOTS)
        or _importing()
    )


def _audit(event: str, args: tuple) -> None:
    if not _ARMED or event not in WATCHED:
        return
    try:
        if not _is_import_io(event, args):
            what = os.fsdecode(args[0]) if args and isinstance(args[0], (str, bytes, os.PathLike)) else ""
            if event == "open" and len(args) > 1 and args[1]:
                what += f" (mode {args[1]})"
            _IO_EVENTS.append(f"{event} {what}".strip() if event != "socket.__new__" else "socket created")
    except Exception:  # an audit hook must never raise into the audited code
        _IO_EVENTS.append(event)


@contextmanager
def guarded() -> Iterator[list[str]]:
    """Record the watched audit events raised inside the block (the list it yields)."""
    global _ARMED, _HOOK_INSTALLED
    if not _HOOK_INSTALLED:  # audit hooks cannot be removed: install one, arm it per call
        sys.addaudithook(_audit)
        _HOOK_INSTALLED = True
    start = len(_IO_EVENTS)
    events: list[str] = []
    _ARMED = True
    try:
        yield events
    finally:
        _ARMED = False
        events.extend(_IO_EVENTS[start:])
        del _IO_EVENTS[start:]
