"""What a thread that follows the event log shares: a watermark others wait on, and
wake-ups that are never lost."""

from __future__ import annotations

import threading
import time


class LogFollower:
    """A thread's progress through the log (``mark``: every record up to it is done) and
    its wake-up signal. A wake-up counts a "kick", so one sent while the thread is between
    reading the log and waiting is seen (a lost one had cost a request up to the poll)."""

    def __init__(self, start_seq: int) -> None:
        self._cond = threading.Condition()
        self._kicks = 0
        self._mark = start_seq
        self._thread: threading.Thread | None = None

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
