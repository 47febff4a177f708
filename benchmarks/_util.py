"""Small helpers shared by the benchmarks: peak memory, machine description, medians."""

from __future__ import annotations

import platform
import resource
import statistics
import time
from collections.abc import Callable
from typing import Any


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> str:
    import os

    return f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}"


def timed(func: Callable[[], Any], repeat: int = 1) -> tuple[float, Any]:
    """Median wall seconds of ``repeat`` runs and the last result."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result
