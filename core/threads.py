"""Running a few jobs at once on threads, each error re-raised in the caller's thread.

For work that releases the GIL (the session-feature queries run this way in DuckDB); see
docs/ARCHITECTURE.md, "Concurrency model".
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence


def run_at_once(jobs: Sequence[Callable[[], None]], name: str) -> None:
    """Start one thread per job (named ``name-<i>``), wait for all, raise the first error."""
    errors: list[BaseException] = []

    def guarded(job: Callable[[], None]) -> None:
        try:
            job()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(job,), name=f"{name}-{i}", daemon=True)
               for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
