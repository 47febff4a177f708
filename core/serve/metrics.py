"""Prometheus text exposition (format 0.0.4), by hand: counters, one histogram, gauges.

    >>> m = Metrics()
    >>> m.observe("/v1/events", 200, 0.012)
    >>> text = m.render({"anomalyst_queue_depth": ("gauge", "Records not yet applied.", 3)})
    >>> 'anomalyst_requests_total{route="/v1/events",status="200"} 1' in text
    True
    >>> 'anomalyst_request_seconds_bucket{route="/v1/events",le="0.025"} 1' in text
    True
"""

from __future__ import annotations

import threading
from collections import defaultdict

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
Gauge = tuple[str, str, float]  # (type: gauge or counter, help, value)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Metrics:
    """Request counts by route and status, and a latency histogram by route."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, int], int] = defaultdict(int)
        self._buckets: dict[str, list[int]] = {}
        self._sums: dict[str, float] = defaultdict(float)
        self._counts: dict[str, int] = defaultdict(int)

    def observe(self, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self._requests[(route, status)] += 1
            counts = self._buckets.setdefault(route, [0] * len(BUCKETS))
            for i, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    counts[i] += 1
            self._sums[route] += seconds
            self._counts[route] += 1

    def render(self, extra: dict[str, Gauge] | None = None) -> str:
        """The exposition text; ``extra``: name -> (type, help, value) of other series."""
        lines = ["# HELP anomalyst_requests_total HTTP requests by route and status.",
                 "# TYPE anomalyst_requests_total counter"]
        with self._lock:
            for (route, status), n in sorted(self._requests.items()):
                lines.append(f'anomalyst_requests_total{{route="{_label(route)}",'
                             f'status="{status}"}} {n}')
            lines += ["# HELP anomalyst_request_seconds Request latency by route.",
                      "# TYPE anomalyst_request_seconds histogram"]
            for route, counts in sorted(self._buckets.items()):
                r = _label(route)
                for bound, n in zip(BUCKETS, counts, strict=True):
                    lines.append(f'anomalyst_request_seconds_bucket{{route="{r}",le="{bound}"}} '
                                 f"{n}")
                lines.append(f'anomalyst_request_seconds_bucket{{route="{r}",le="+Inf"}} '
                             f"{self._counts[route]}")
                lines.append(f'anomalyst_request_seconds_sum{{route="{r}"}} '
                             f"{self._sums[route]:.6f}")
                lines.append(f'anomalyst_request_seconds_count{{route="{r}"}} '
                             f"{self._counts[route]}")
        for name, (kind, text, value) in sorted((extra or {}).items()):
            lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}", f"{name} {value:g}"]
        return "\n".join(lines) + "\n"
