"""Crash points: named places where a test can kill this process with SIGKILL.

Crash-safety tests run a real CLI command in a subprocess with ``ANOMALYST_CRASH_AT=<name>``;
the process dies at that point exactly as ``kill -9`` would kill it (no cleanup, no atexit),
and the test checks the store afterwards. Unset (always, in use), a crash point costs one
dictionary lookup.
"""

from __future__ import annotations

import os
import signal

ENV = "ANOMALYST_CRASH_AT"


def crash_point(name: str) -> None:
    """SIGKILL this process here when ``$ANOMALYST_CRASH_AT`` is ``name``."""
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
