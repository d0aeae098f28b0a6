"""Children die with their parent: ``PR_SET_PDEATHSIG`` on Linux.

Imported by the forkserver (``harness.executors.WORKER_PRELOAD``) it ties the server to the
harness process; ``tie_to_parent`` in every pool worker ties the worker to the server. So a
``kill -9`` of the harness (the OOM killer, a user) takes the server and every worker with it,
and the resource tracker exits when the last of them closes its pipe. Elsewhere a no-op.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def tie_to_parent(sig: int = signal.SIGKILL) -> None:
    """Ask the kernel to send ``sig`` to this process when its parent dies (Linux only)."""
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


tie_to_parent()  # on import: the forkserver preloads this module
