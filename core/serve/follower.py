"""What a thread that follows the event log shares: a watermark others wait on, each
record's outcome and each session's latest verdict, and wake-ups that are never lost."""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

KEPT_OUTCOMES = 200_000  # per-seq answers kept for waiters that have not read them yet
KEPT_VERDICTS = 100_000  # sessions' latest verdicts


class LogFollower:
    """A thread's progress through the log (``mark``: every record up to it is done) and
    its wake-up signal. A wake-up counts a "kick", so one sent while the thread is between
    reading the log and waiting is seen (a lost one had cost a request up to the poll)."""

    def __init__(self, start_seq: int) -> None:
        self._cond = threading.Condition()
        self._kicks = 0
        self._mark = start_seq
        self._thread: threading.Thread | None = None
        self._outcomes: collections.OrderedDict[int, Any] = collections.OrderedDict()
        self._verdicts: collections.OrderedDict[str, Any] = collections.OrderedDict()

    def outcome(self, seq: int) -> Any:
        """What became of record ``seq`` (None when not done, or long forgotten)."""
        with self._cond:
            return self._outcomes.get(seq)

    def verdict(self, session_id: str) -> Any:
        """The session's latest verdict, or None."""
        with self._cond:
            return self._verdicts.get(session_id)

    def _record(self, last_seq: int, outcomes: Iterable[Any],
                verdicts: Mapping[str, Any]) -> None:
        """Keep the outcomes (each has ``seq``) and verdicts, move the mark to ``last_seq``
        and wake every waiter."""
        with self._cond:
            for o in outcomes:
                self._outcomes[o.seq] = o
            for session_id, v in verdicts.items():
                self._verdicts[session_id] = v
                self._verdicts.move_to_end(session_id)
            while len(self._outcomes) > KEPT_OUTCOMES:
                self._outcomes.popitem(last=False)
            while len(self._verdicts) > KEPT_VERDICTS:
                self._verdicts.popitem(last=False)
            self._mark = last_seq
            self._cond.notify_all()

    def wake(self) -> None:
        with self._cond:
            self._kicks += 1
            self._cond.notify_all()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def mark(self) -> int:
        with self._cond:
            return self._mark

    def wait_mark(self, seq: int, timeout: float) -> bool:
        """True once every record <= ``seq`` is done, False after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._mark < seq:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def kicks(self) -> int:
        with self._cond:
            return self._kicks

    def idle_wait(self, kicks: int, timeout: float) -> None:
        """Wait up to ``timeout`` unless a wake-up came after ``kicks`` was read."""
        with self._cond:
            if self._kicks == kicks:
                self._cond.wait(timeout)
