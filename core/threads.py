"""Running a job on a background thread, its result (or error) handed to whoever waits.

For work that releases the GIL (the session-feature builder runs its sessions query this way
in DuckDB while numpy reduces the events); see docs/ARCHITECTURE.md, "Concurrency model".
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def in_background(job: Callable[[], T], name: str) -> Callable[[], T]:
    """Start ``job`` on a daemon thread named ``name``; the returned function waits for it
    and returns its result, re-raising its error in the caller's thread."""
    outcome: dict[str, object] = {}

    def guarded() -> None:
        try:
            outcome["result"] = job()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the waiting thread
            outcome["error"] = exc

    thread = threading.Thread(target=guarded, name=name, daemon=True)
    thread.start()

    def wait() -> T:
        thread.join()
        if "error" in outcome:
            raise outcome["error"]  # type: ignore[misc]
        return outcome["result"]  # type: ignore[return-value]

    return wait
