"""Online sessionization: session ids for events arriving one by one, as batch ingest gives.

The rule and the id format are batch ingest's (``core.store.ingest_sql.derive_ids_sql``): per
user, a new session starts when an event comes more than ``gap_minutes`` after the previous
one, and its id is ``user_id@<first ts, %Y-%m-%dT%H:%M:%S>``. Events that carry a session_id
keep it (and do not touch the user's open session). Replaying a file's events in event-time
order (ties by event id) therefore yields the ids ``anomalyst ingest`` of the whole file gives.

Late events (a ts before the open session's last ts) follow one rule: one that falls within
``[first ts - gap, last ts]`` of the user's open session joins it (the id keeps its first ts,
where a batch ingest of the same events would name the session by the late, earlier ts); one
earlier than that gets a session of its own, ``user_id@<its ts>``, which is not kept open.
So batch equality holds for in-order streams only.

State is bounded: a session whose last ts + gap is before the watermark (the largest ts seen)
can take no in-order event any more; it is closed and evicted. Beyond ``max_open`` users, the
least recently used is evicted. ``lookup(user_id)`` (optional; the service asks the store for
the user's latest session) brings an evicted user's session back.

    >>> s = OnlineSessionizer(30)
    >>> t = dt.datetime(2026, 1, 1, 10)
    >>> s.assign("u1", t)
    ('u1@2026-01-01T10:00:00', True)
    >>> s.assign("u1", t + dt.timedelta(minutes=20))
    ('u1@2026-01-01T10:00:00', False)
    >>> s.assign("u1", t + dt.timedelta(minutes=60))
    ('u1@2026-01-01T11:00:00', True)
"""

from __future__ import annotations

import collections
import datetime as dt
import heapq
from collections.abc import Callable
from dataclasses import dataclass

from core.errors import ConfigError


@dataclass
class OpenSession:
    """A user's current session."""

    session_id: str
    first_ts: dt.datetime
    last_ts: dt.datetime
    n_events: int


Lookup = Callable[[str], OpenSession | None]


def session_id_for(user_id: str, first_ts: dt.datetime) -> str:
    """Batch ingest's id: the user and the session's first ts to the second."""
    return f"{user_id}@{first_ts.strftime('%Y-%m-%dT%H:%M:%S')}"


class OnlineSessionizer:
    """Per-user open sessions; not thread-safe (the service's single writer owns it)."""

    def __init__(self, gap_minutes: float, max_open: int = 100_000,
                 lookup: Lookup | None = None) -> None:
        if not gap_minutes > 0:
            raise ConfigError(f"session gap must be > 0 minutes, got {gap_minutes}. Use e.g. "
                              "30m.")
        if max_open < 1:
            raise ConfigError(f"max_open must be >= 1 open session, got {max_open}.")
        self.gap = dt.timedelta(minutes=gap_minutes)
        self.max_open = max_open
        self._lookup = lookup
        self._open: collections.OrderedDict[str, OpenSession] = collections.OrderedDict()
        self._watermark: dt.datetime | None = None
        self._closed: list[str] = []
        self._expiry: list[tuple[dt.datetime, str]] = []  # (last ts + gap, user): lazy heap

    @property
    def n_open(self) -> int:
        return len(self._open)

    @property
    def watermark(self) -> dt.datetime | None:
        """The largest event ts seen."""
        return self._watermark

    def open_session(self, user_id: str) -> OpenSession | None:
        """The user's open session held in memory (None when evicted or never seen)."""
        return self._open.get(user_id)

    def assign(self, user_id: str, ts: dt.datetime,
               session_id: str | None = None) -> tuple[str, bool]:
        """(session_id, is_new_session) of one event; ``session_id``: the event's own."""
        if session_id is not None:
            self._advance(ts)
            return session_id, False
        current = self._current(user_id)
        if current is not None and current.last_ts <= ts <= current.last_ts + self.gap:
            current.last_ts, current.n_events = ts, current.n_events + 1
            result = current.session_id, False
        elif current is not None and current.first_ts - self.gap <= ts < current.last_ts:
            current.n_events += 1  # late, but within the open session's reach: joins it
            result = current.session_id, False
        elif current is not None and ts < current.first_ts - self.gap:
            result = session_id_for(user_id, ts), True  # much too late: a session of its own
        else:
            if current is not None:
                self._closed.append(current.session_id)
            current = OpenSession(session_id_for(user_id, ts), ts, ts, 1)
            result = current.session_id, True
        self._open[user_id] = current
        self._open.move_to_end(user_id)
        heapq.heappush(self._expiry, (current.last_ts + self.gap, user_id))
        self._advance(ts)
        self._evict_lru()
        return result

    def closed_since_last_call(self) -> list[str]:
        """Session ids closed (by the watermark or by a new session) since the last call."""
        closed, self._closed = self._closed, []
        return closed

    def _current(self, user_id: str) -> OpenSession | None:
        held = self._open.get(user_id)
        if held is None and self._lookup is not None:
            held = self._lookup(user_id)
        return held

    def _advance(self, ts: dt.datetime) -> None:
        """Move the watermark and close the sessions no in-order event can join any more."""
        if self._watermark is not None and ts <= self._watermark:
            return
        self._watermark = ts
        while self._expiry and self._expiry[0][0] < ts:
            _, user_id = heapq.heappop(self._expiry)
            held = self._open.get(user_id)
            if held is not None and held.last_ts + self.gap < ts:
                self._closed.append(self._open.pop(user_id).session_id)
        if len(self._expiry) > 2 * len(self._open) + 1024:  # drop stale entries
            self._expiry = [(s.last_ts + self.gap, u) for u, s in self._open.items()]
            heapq.heapify(self._expiry)

    def _evict_lru(self) -> None:
        while len(self._open) > self.max_open:
            self._open.popitem(last=False)  # still open: ``lookup`` can bring it back
