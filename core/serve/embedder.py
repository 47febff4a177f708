"""Text embeddings off the answer path: a bounded queue, embedded in a low-priority process.

A sentence embedding costs ~20 ms of one CPU core per new text here (MiniLM-L6, a short
review), more than the rest of a request's work together, so the fast path does not wait for
it: a session with a text not embedded yet is answered ``provisional`` (its text similarity
and mean embedding leave that text out), and re-scored when the vector arrives. The encoder
runs in a child process at the lowest CPU priority (nice 19): it uses the cores the requests
leave idle, and never holds this process's interpreter lock. Where a child cannot start, a
thread of this process embeds instead.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

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
        self._child: tuple[Any, Any] | None = None
        self._child_failed = False
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
        self._stop_child()

    def _run(self) -> None:
        import torch

        torch.set_num_threads(1)  # when it embeds itself: leave a core to the rest
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
        if self._child is None and not self._child_failed:
            self._child = _start_child()
            self._child_failed = self._child is None
        if self._child is not None:
            conn, process = self._child
            try:
                conn.send(texts)
                kind, value = conn.recv()
            except (EOFError, OSError, BrokenPipeError):
                log.warning("embedder: the encoder process stopped (exit code %s); starting "
                            "another", process.exitcode)
                self._child = None
                raise
            if kind == "error":
                raise RuntimeError(value)
            return value
        from core.text.embeddings import load_encoder

        return load_encoder().encode(texts, progress=False)

    def _stop_child(self) -> None:
        if self._child is not None:
            conn, process = self._child
            try:
                conn.send(None)
            except OSError:
                pass
            process.join(5)
            if process.is_alive():
                process.kill()
            self._child = None


def _start_child() -> tuple[Any, Any] | None:
    """A spawned encoder process and its end of the pipe (None when it cannot start)."""
    import multiprocessing

    try:
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        process = ctx.Process(target=_child_main, args=(child,), name="anomalyst-encoder",
                              daemon=True)
        process.start()
        child.close()
        return parent, process
    except Exception:  # no processes here: embed in a thread
        log.warning("embedder: no encoder process; embedding in a thread", exc_info=True)
        return None


def _child_main(conn: Any) -> None:
    """The encoder process: texts in, unit vectors out, at the lowest CPU priority."""
    import os

    try:
        os.nice(19)
    except OSError:
        pass
    import torch

    torch.set_num_threads(1)
    from core.text.embeddings import load_encoder

    encoder = load_encoder()
    while True:
        try:
            texts = conn.recv()
        except EOFError:
            return
        if texts is None:
            return
        try:
            conn.send(("ok", encoder.encode(texts, progress=False)))
        except Exception as exc:  # the parent logs it and leaves those texts provisional
            conn.send(("error", f"{type(exc).__name__}: {exc}"[:500]))
