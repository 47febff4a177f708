"""Text embeddings off the answer path: a worker thread with a bounded queue.

A sentence embedding costs ~20 ms of one CPU core per new text here (MiniLM-L6, a short
review), more than the rest of a request's work together, so the fast path does not wait for
it: a session with a text not embedded yet is answered ``provisional`` (its text similarity
and mean embedding leave that text out), and re-scored when the vector arrives.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable, Sequence

import numpy as np

log = logging.getLogger(__name__)

DEFAULT_MAX_QUEUE = 50_000
BATCH = 16


class Embedder:
    """Embeds submitted texts in the background; ``take`` returns what is done."""

    def __init__(self, on_ready: Callable[[], None], *, max_queue: int = DEFAULT_MAX_QUEUE,
                 encode: Callable[[list[str]], np.ndarray] | None = None) -> None:
        self._on_ready = on_ready
        self._max_queue = max_queue
        self._encode = encode
        self._queue: collections.deque[str] = collections.deque()
        self._queued: set[str] = set()  # submitted and not taken yet (no resubmits)
        self._pending: set[str] = set()  # waiting or being embedded
        self._ready: list[tuple[list[str], np.ndarray]] = []
        self._busy = 0
        self._cond = threading.Condition()
        self._stop = False
        self.dropped = 0
        self.failures = 0
        self._thread = threading.Thread(target=self._run, name="anomalyst-embedder",
                                        daemon=True)
        self._thread.start()

    def submit(self, texts: Sequence[str]) -> None:
        """Queue texts not queued yet; beyond the bound they wait for a later event."""
        with self._cond:
            for text in texts:
                if text in self._queued:
                    continue
                if len(self._queue) >= self._max_queue:
                    self.dropped += 1
                    continue
                self._queue.append(text)
                self._queued.add(text)
                self._pending.add(text)
            self._cond.notify_all()

    def take(self) -> list[tuple[list[str], np.ndarray]]:
        with self._cond:
            ready, self._ready = self._ready, []
            for texts, _ in ready:
                self._queued.difference_update(texts)
        return ready

    def has_ready(self) -> bool:
        with self._cond:
            return bool(self._ready)

    def backlog(self) -> int:
        with self._cond:
            return len(self._queue) + self._busy

    def wait_for(self, texts: set[str], timeout: float) -> bool:
        """Wait until none of ``texts`` is queued or being embedded."""
        import time

        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._pending.isdisjoint(texts):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        self._thread.join(10)

    def _run(self) -> None:
        import torch

        torch.set_num_threads(1)  # this thread's own setting: leave a core to the rest
        while True:
            with self._cond:
                while not self._queue and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                batch = [self._queue.popleft() for _ in range(min(BATCH, len(self._queue)))]
                self._busy = len(batch)
            try:
                vectors = self._vectors(batch)
            except Exception:  # the texts stay unembedded: their sessions stay provisional
                log.exception("embedder: %d texts could not be embedded", len(batch))
                self.failures += 1
                with self._cond:
                    self._busy = 0
                    self._queued.difference_update(batch)
                    self._pending.difference_update(batch)
                    self._cond.notify_all()
                continue
            with self._cond:
                self._ready.append((batch, vectors))
                self._pending.difference_update(batch)
                self._busy = 0
                self._cond.notify_all()
            self._on_ready()

    def _vectors(self, texts: list[str]) -> np.ndarray:
        if self._encode is not None:
            return self._encode(texts)
        from core.text.embeddings import load_encoder

        return load_encoder().encode(texts, progress=False)
