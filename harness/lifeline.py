"""Children die with their parent: ``PR_SET_PDEATHSIG`` on Linux.

Imported by the forkserver (``harness.executors.WORKER_PRELOAD``) it ties the server to the
harness process; ``tie_to_parent`` in every pool worker ties the worker to the server (the
pid the server imported this module in: a worker whose server died before the worker's tie
took effect exits at once, instead of idling forever on the pool's queue). So a
``kill -9`` of the harness (the OOM killer, a user) takes the server and every worker with it,
and the resource tracker exits when the last of them closes its pipe. Elsewhere a no-op.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1
LOADED_IN = os.getpid()  # the process that imported this module (forked children inherit it)


def tie_to_parent(sig: int = signal.SIGKILL, parent: int | None = None) -> None:
    """Ask the kernel to send ``sig`` to this process when its parent dies (Linux only).

    ``parent``: the pid the parent must have (default: the parent now). A process whose parent
    is not (or no longer) ``parent`` was orphaned before the request could take effect, and exits.
    """
    if not sys.platform.startswith("linux"):
        return
    if parent is None:
        parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def server_pid() -> int | None:
    """The forkserver that forked this process, when it preloaded this module; else None."""
    return LOADED_IN if os.getpid() != LOADED_IN else None


tie_to_parent()  # on import: the forkserver preloads this module
