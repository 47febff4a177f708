"""Replay a recorded data set to a running scoring service, in event-time order.

``anomalyst replay FILE --rate 2000/s [--speedup 60] --to URL`` reads the events (CSV or
Parquet in the canonical columns), sorts them by (ts, user), and posts them as NDJSON batches
to ``URL/v1/events``. When each batch leaves is ``schedule``'s answer:

* ``--rate R``: at most R events a second (batch i leaves at ``first_event_index / R``);
* ``--speedup S``: event time runs S times faster than the wall clock (an event that happened
  an hour after the first leaves 60 s after it with S = 60); with both, the later of the two.

A 429 is retried after its Retry-After; a connection error or a 5xx after a growing back-off,
a bounded number of times; a 4xx other than 429 is reported and the replay goes on with the
next batch (the service has said why the events were refused). The clock and the sleep are
injected, so tests drive time without sleeping.
"""

from __future__ import annotations

import http.client
import json
import math
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from core.errors import ConfigError, IngestError

MAX_BATCH = 10_000
RETRIES = 8
BACKOFF_S = (0.2, 0.5, 1.0, 2.0, 5.0)


def parse_rate(text: str | None) -> float | None:
    """'2000/s', '2000', '120/min' -> events per second; None or '' -> no limit."""
    if text is None or not str(text).strip():
        return None
    value, _, unit = str(text).strip().partition("/")
    per = {"": 1.0, "s": 1.0, "sec": 1.0, "min": 60.0, "m": 60.0, "h": 3600.0}.get(
        unit.strip().lower())
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if per is None or not math.isfinite(number) or number <= 0:
        raise ConfigError(f"rate must be a positive number of events per second, minute or "
                          f"hour such as 2000/s or 120/min, got {text!r}.")
    return number / per


def read_events(path: str | Path) -> pd.DataFrame:
    """The file's events sorted by event time (then user, for a stable order)."""
    source = Path(path)
    if not source.is_file():
        raise IngestError(f"{source}: no such file. Give a CSV or Parquet file of events.")
    try:
        if source.suffix.lower() in (".parquet", ".pq"):
            frame = pd.read_parquet(source)
        else:
            frame = pd.read_csv(source, dtype=str, keep_default_na=False)
    except Exception as exc:  # pandas raises many types for a bad file
        raise IngestError(f"{source}: could not read it as {source.suffix or 'CSV'} "
                          f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]}).") from exc
    missing = [c for c in ("user_id", "ts", "event_type") if c not in frame.columns]
    if missing:
        raise IngestError(f"{source}: the columns {', '.join(missing)} are missing; replay "
                          "sends the canonical columns (see `anomalyst ingest --help`).")
    order = pd.to_datetime(frame["ts"], errors="coerce", utc=True, format="mixed")
    if order.isna().any():
        row = int(order.isna().to_numpy().argmax())
        raise IngestError(f"{source}: row {row + 1} has a timestamp that cannot be read "
                          f"({str(frame['ts'].iloc[row])[:40]!r}).")
    frame = frame.assign(_order=order).sort_values(["_order", "user_id"], kind="stable")
    return frame.reset_index(drop=True)


def schedule(times: pd.Series, *, rate: float | None, speedup: float | None,
             batch: int) -> Iterator[tuple[float, slice]]:
    """(seconds after the start, rows) of each batch; ``times`` sorted, tz-aware."""
    if batch < 1 or batch > MAX_BATCH:
        raise ConfigError(f"batch must be between 1 and {MAX_BATCH:,} events, got {batch}.")
    if speedup is not None and (not math.isfinite(speedup) or speedup <= 0):
        raise ConfigError(f"speedup must be a positive number, got {speedup}.")
    seconds = ((times - times.iloc[0]).dt.total_seconds().to_numpy()
               if len(times) else [])
    for start in range(0, len(times), batch):
        due = 0.0
        if rate is not None:
            due = start / rate
        if speedup is not None:
            due = max(due, float(seconds[start]) / speedup)
        yield due, slice(start, min(start + batch, len(times)))


def to_ndjson(frame: pd.DataFrame) -> bytes:
    """The rows as NDJSON (empty strings dropped: a missing optional field)."""
    lines = []
    for row in frame.drop(columns=["_order"], errors="ignore").to_dict("records"):
        clean = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()
                 if v is not None and v != "" and not (isinstance(v, float) and math.isnan(v))}
        lines.append(json.dumps(clean, default=str))
    return ("\n".join(lines) + "\n").encode()


@dataclass
class ReplayReport:
    """What a replay did."""

    sent: int = 0
    accepted: int = 0
    refused: int = 0
    retries: int = 0
    batches: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        rate = self.sent / self.seconds if self.seconds > 0 else 0.0
        text = (f"Replayed {self.sent:,} events in {self.batches:,} batches over "
                f"{self.seconds:,.1f} s ({rate:,.0f} events/s): {self.accepted:,} accepted, "
                f"{self.refused:,} refused, {self.retries:,} retries.")
        return text + "".join(f"\n  {p}" for p in self.problems[:5])


Post = Callable[[bytes], tuple[int, dict[str, str], bytes]]


class HttpPoster:
    """POSTs NDJSON to ``URL/v1/events`` over one kept-alive connection."""

    def __init__(self, url: str, token: str | None, timeout_s: float = 30.0) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"--to must be the service's URL such as http://127.0.0.1:8765, "
                              f"got {url!r}.")
        self.parts, self.token, self.timeout_s = parts, token, timeout_s
        self.path = parts.path.rstrip("/") + "/v1/events"
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            kind = (http.client.HTTPSConnection if self.parts.scheme == "https"
                    else http.client.HTTPConnection)
            self._conn = kind(self.parts.hostname or "", self.parts.port, timeout=self.timeout_s)
        return self._conn

    def __call__(self, body: bytes) -> tuple[int, dict[str, str], bytes]:
        headers = {"Content-Type": "application/x-ndjson"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        conn = self._connection()
        try:
            conn.request("POST", self.path, body=body, headers=headers)
            reply = conn.getresponse()
            return reply.status, {k.lower(): v for k, v in reply.getheaders()}, reply.read()
        except (OSError, http.client.HTTPException):
            conn.close()
            self._conn = None
            raise

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


def replay(frame: pd.DataFrame, post: Post, *, rate: float | None, speedup: float | None,
           batch: int = 500, now: Callable[[], float] = time.monotonic,
           sleep: Callable[[float], None] = time.sleep,
           progress: Callable[[ReplayReport], None] | None = None) -> ReplayReport:
    """Send ``frame`` (sorted, from ``read_events``) through ``post`` on ``schedule``."""
    report = ReplayReport()
    started = now()
    for due, rows in schedule(frame["_order"], rate=rate, speedup=speedup, batch=batch):
        wait = started + due - now()
        if wait > 0:
            sleep(wait)
        part = frame.iloc[rows]
        _send(to_ndjson(part), len(part), post, report, sleep)
        report.batches += 1
        report.seconds = now() - started
        if progress is not None:
            progress(report)
    report.seconds = now() - started
    return report


def _send(body: bytes, n: int, post: Post, report: ReplayReport,
          sleep: Callable[[float], None]) -> None:
    """One batch, retried on 429, 5xx and connection errors."""
    for attempt in range(RETRIES + 1):
        try:
            status, headers, payload = post(body)
        except (OSError, http.client.HTTPException) as exc:
            status, headers, payload = 0, {}, str(exc).encode()
        if status in (200, 201, 202):
            report.sent += n
            report.accepted += n
            return
        if status == 422:  # the service refused some or all events and said why
            report.sent += n
            refused = _count_refused(payload, n)
            report.refused += refused
            report.accepted += n - refused
            report.problems.append(f"batch {report.batches + 1}: {refused} refused: "
                                   f"{_first_reason(payload)}")
            return
        if status == 429 or status == 0 or status >= 500:
            if attempt == RETRIES:
                break
            report.retries += 1
            sleep(_retry_after(headers) if status == 429 else BACKOFF_S[min(attempt,
                                                                              len(BACKOFF_S) - 1)])
            continue
        raise ConfigError(f"the service answered {status} to a batch: "
                          f"{payload[:300].decode(errors='replace')}. Check --to and the token.")
    raise ConfigError(f"the service did not take a batch after {RETRIES} retries (last answer: "
                      f"{status or 'no connection'}). Is `anomalyst serve` running at --to?")


def _retry_after(headers: dict[str, str]) -> float:
    try:
        return min(60.0, max(0.05, float(headers.get("retry-after", "1"))))
    except ValueError:
        return 1.0


def _count_refused(payload: bytes, n: int) -> int:
    try:
        body = json.loads(payload)
    except ValueError:
        return n
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, Sequence) and not isinstance(errors, str | bytes):
        return min(n, len(errors))
    return n


def _first_reason(payload: bytes) -> str:
    try:
        body = json.loads(payload)
        errors = body.get("errors") or [body.get("detail")]
        first = errors[0]
        return str(first.get("reason", first) if isinstance(first, dict) else first)[:200]
    except (ValueError, AttributeError, IndexError, TypeError):
        return payload[:200].decode(errors="replace")
