"""``ScoringService``: the store, its event log and the single writer, behind one object.

``submit`` appends the events to the durable log (``<store dir>/event_log/``), which is the
acknowledgement, then waits (at most ``wait_s``) for the writer to store and score them. An
event answered "accepted" (HTTP 202) is durable and will be applied, after a crash too: on
start the writer replays everything after the log's checkpoint.

The service is the store's only writer for its lifetime (one process, one writer thread), so
it holds the store open for writing; a second service on the same store is refused.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import ConfigError
from core.ingest.time_window import TimeWindow
from core.schema import DEFAULT_SESSION_GAP_MINUTES
from core.serve import codec
from core.serve.event_log import DEFAULT_MAX_PENDING, EventLog
from core.serve.events_in import BodyError, ParsedEvents
from core.serve.fast_path import FastScorer, Submission
from core.serve.metrics import Metrics
from core.serve.sessionizer import session_id_for
from core.serve.writer import NO_POLICY, LiveScorer, StoreWriter, events_frame
from core.store import Store

log = logging.getLogger(__name__)

EVENT_LOG_DIR = "event_log"


@dataclass(frozen=True)
class ServiceConfig:
    """How the service runs (the CLI's options)."""

    gap_minutes: float = DEFAULT_SESSION_GAP_MINUTES
    wait_s: float = 5.0  # how long a request waits for its events to be applied
    max_pending: int = DEFAULT_MAX_PENDING
    batch_records: int = 5000  # the store writer: large batches amortise ingest
    batch_ms: float = 50.0
    fsync: bool = True
    store_wait_s: float = 0.0  # how long to wait for another process to let go of the store
    window: TimeWindow | None = None
    share_store: bool = True  # open the store only while a batch or a read needs it
    share_wait_s: float = 30.0  # then: how long a batch waits for a reader to let go
    fast_path: bool = True  # answer from memory (core.serve.fast_path) where it can score
    fast_batch_ms: float = 2.0  # how long the fast path waits for a micro-batch to fill
    text_wait_s: float = 0.0  # how long an answer waits for its new texts' embeddings (0:
    # answer at once, "provisional", and revise the score when they are embedded)


@dataclass(frozen=True)
class SubmitResult:
    """Per-event answers; ``applied`` False: durable but not applied within the wait."""

    applied: bool
    first_seq: int
    last_seq: int
    events: list[dict[str, Any]]


class ScoringService:
    """Open with ``ScoringService.open``; close (or use as a context manager) to stop."""

    def __init__(self, store: Store, event_log: EventLog, writer: StoreWriter,
                 config: ServiceConfig, fast: FastScorer | None = None) -> None:
        self.store = store
        self.log = event_log
        self.writer = writer
        self.fast = fast
        self.config = config
        self.metrics = Metrics()
        self.window = config.window or TimeWindow.parse()
        self._closed = False

    @classmethod
    def open(cls, db: str | os.PathLike[str] | None = None, config: ServiceConfig | None = None,
             *, start: bool = True) -> ScoringService:
        """Open the store for writing and its event log, then start the writer (which first
        replays the log after its checkpoint). ``start=False``: the caller starts it."""
        config = config or ServiceConfig()
        if not config.gap_minutes > 0:
            raise ConfigError(f"session gap must be > 0 minutes, got {config.gap_minutes}. "
                              "Use e.g. 30m.")
        store = Store.open(db, wait_s=config.store_wait_s)
        try:
            if str(store.path) == ":memory:":
                raise ConfigError("the scoring service needs a store file, got :memory:. "
                                  "Pass --db with a file.")
            event_log = EventLog.open(Path(store.path).parent / EVENT_LOG_DIR,
                                      max_pending_records=config.max_pending,
                                      fsync=config.fsync)
        except BaseException:
            store.close()
            raise
        unit = store.ingests.unit() or "session"
        scorer = LiveScorer(store)
        fast = FastScorer(store, event_log, scorer, gap_minutes=config.gap_minutes,
                          unit=unit, batch_ms=config.fast_batch_ms,
                          embed_wait_s=config.text_wait_s) if config.fast_path else None
        writer = StoreWriter(store, event_log, gap_minutes=config.gap_minutes, unit=unit,
                             batch_records=config.batch_records, batch_ms=config.batch_ms,
                             window=config.window, scorer=scorer, fast=fast)
        service = cls(store, event_log, writer, config, fast)
        try:
            if fast is not None:
                fast.on_published.append(writer.wake)
                fast.warm()
            else:
                scorer.warm()
        except BaseException:
            event_log.close()
            store.close()
            raise
        if config.share_store:  # readers (the dashboard, the CLI) open it between batches
            store.share_when_idle(config.share_wait_s)
        if start:
            service.start()
        return service

    def start(self) -> None:
        """Start the threads (``open(start=False)``)."""
        if self.fast is not None:
            self.fast.start()
        self.writer.start()

    # -- events ------------------------------------------------------------------------
    def submit(self, parsed: ParsedEvents, *, wait_s: float | None = None,
               wait_store: bool = False) -> SubmitResult:
        """Append the good events of ``parsed`` (acknowledged once fsynced), then wait for
        their answers: from memory (the fast path) where it scores them, else from the store
        writer. ``wait_store``: also wait until they are in the store (read-your-writes for
        alerts and the dashboard). Raises ``LogFull`` (nothing written) under back-pressure."""
        records = self._records(parsed)
        first, last = self.log.append(records)
        wait = self.config.wait_s if wait_s is None else wait_s
        if self.fast is not None:
            started = time.monotonic()
            answered = self._answers_from_memory(parsed, first, last, wait)
            if answered is not None:
                if wait_store and answered.applied:
                    self.writer.wake()
                    stored = self.writer.wait_applied(
                        last, max(0.0, wait - (time.monotonic() - started)))
                    answered = replace(answered, applied=stored)
                return answered
        return self._store_answers(parsed, first, last, wait)

    def _store_answers(self, parsed: ParsedEvents, first: int, last: int,
                       wait: float) -> SubmitResult:
        """The answers once the store writer has applied the records (its verdicts)."""
        self.writer.wake()
        applied = self.writer.wait_applied(last, wait)
        events = []
        for i, row in enumerate(parsed.rows):
            seq = first + i
            answer: dict[str, Any] = {"index": row["index"], "event_id": row["event_id"],
                                      "seq": seq}
            outcome = self.writer.outcome(seq) if applied else None
            if outcome is not None:
                answer.update(session_id=outcome.session_id, new_session=outcome.new_session,
                              duplicate=outcome.duplicate)
                if outcome.dead_letter:
                    answer["dead_letter"] = outcome.dead_letter
                verdict = (self.writer.verdict(outcome.session_id) if outcome.session_id
                           else None)
                if verdict is not None:
                    answer.update(verdict.to_dict())
            events.append(answer)
        return SubmitResult(applied, first, last, events)

    async def submit_async(self, parsed: ParsedEvents, *,
                           wait_store: bool = False) -> SubmitResult:
        """``submit`` for the event loop: the records go to the fast path's thread, which
        appends them with every other waiting request's (one fsync) and answers; no worker
        thread waits per request. Falls back to ``submit`` in a thread where the fast path
        does not answer."""
        import asyncio

        from starlette.concurrency import run_in_threadpool

        if self.fast is None or not self.fast.alive:
            return await run_in_threadpool(functools.partial(self.submit, parsed,
                                                             wait_store=wait_store))
        records = self._records(parsed)
        loop = asyncio.get_running_loop()
        appended: asyncio.Future[tuple[int, int]] = loop.create_future()
        answered: asyncio.Future[bool] = loop.create_future()

        def on_appended(first: int | None, last: int | None, error: BaseException | None
                        ) -> None:
            loop.call_soon_threadsafe(_settle, appended, (first, last), error)

        def on_answered(done: bool) -> None:
            loop.call_soon_threadsafe(_settle, answered, done, None)

        started = time.monotonic()
        self.fast.enqueue(Submission(records, on_appended, on_answered))
        first, last = await appended  # durable (or LogFull / RecordTooLarge raised)
        wait = self.config.wait_s
        try:
            done = await asyncio.wait_for(asyncio.shield(answered), wait)
        except TimeoutError:
            done = False
        if not done:
            return SubmitResult(False, first, last, [
                {"index": r["index"], "event_id": r["event_id"], "seq": first + i}
                for i, r in enumerate(parsed.rows)])
        answers = self._answers_from_memory(parsed, first, last, 0.0)
        left = max(0.0, wait - (time.monotonic() - started))
        if answers is None:  # scored by the store writer
            return await run_in_threadpool(self._store_answers, parsed, first, last, left)
        if wait_store:
            stored = await run_in_threadpool(self.writer.wait_applied, last, left)
            answers = replace(answers, applied=stored)
        return answers

    def _records(self, parsed: ParsedEvents) -> list[bytes]:
        records = [codec.dumps({k: v for k, v in r.items() if k != "index"})
                   for r in parsed.rows]
        if len(records) > self.config.max_pending:
            raise BodyError(f"a request must hold at most {self.config.max_pending:,} events "
                            f"(the service's queue bound), got {len(records):,}. Send smaller "
                            "batches.", 413)
        return records

    def _answers_from_memory(self, parsed: ParsedEvents, first: int, last: int,
                             wait: float) -> SubmitResult | None:
        """The answers of the fast path, or None when some record needs the store writer
        (scored there, or moved to the dead-letter file)."""
        assert self.fast is not None
        self.fast.wake()
        if not self.fast.wait_done(last, wait):
            return SubmitResult(False, first, last, [
                {"index": r["index"], "event_id": r["event_id"], "seq": first + i}
                for i, r in enumerate(parsed.rows)])
        events = []
        for i, row in enumerate(parsed.rows):
            seq = first + i
            outcome = self.fast.outcome(seq)
            if outcome is None or outcome.session_id is None or not (
                    outcome.scored or outcome.duplicate):
                return None
            answer: dict[str, Any] = {"index": row["index"], "event_id": row["event_id"],
                                      "seq": seq, "session_id": outcome.session_id,
                                      "new_session": outcome.new_session,
                                      "duplicate": outcome.duplicate}
            verdict = self.fast.verdict(outcome.session_id)
            if verdict is not None:
                answer.update(verdict.to_dict())
            events.append(answer)
        return SubmitResult(True, first, last, events)

    # -- inline scoring ----------------------------------------------------------------
    def score_inline(self, parsed: ParsedEvents) -> dict[str, Any]:
        """Score one session given inline, storing nothing.

        The events become one session (their own session_id, else ``user@first ts``) in a
        throw-away in-memory store that holds only them: features that look at history
        (the user's earlier sessions, tenure, how often a device or IP was seen, novelty)
        therefore see a user with no past. Risk and flag use the policy in force, segment
        'all' tenure 'new' (no history)."""
        from core.ingest.events import ingest_events
        from core.pipeline.inputs import build_input
        from core.policy import risk_calibration

        if not parsed.rows:
            raise ConfigError("an inline session must hold at least one valid event, got "
                              "none. Send the session's events.")
        users = {r["user_id"] for r in parsed.rows}
        if len(users) != 1:
            raise ConfigError(f"an inline session must belong to one user, got {len(users)} "
                              "users. Send one session's events.")
        policy = self.writer.scorer.policy()
        if policy is None:
            return {"score": None, "risk": None, "flagged": None, "note": NO_POLICY}
        first = min(r["ts"] for r in parsed.rows)
        given = {r["session_id"] for r in parsed.rows if r["session_id"]}
        session_id = given.pop() if len(given) == 1 else session_id_for(
            users.pop(), dt.datetime.fromisoformat(first))
        rows = [{**r, "session_id": session_id} for r in parsed.rows]
        from core.pipeline.registry import load_model

        with self.store.held():
            model = load_model(self.store, policy.model_id)
            calibration = risk_calibration(self.store, policy.model_id)
        model.require_same_features()
        with Store.open(":memory:") as scratch:
            ingest_events(scratch, events_frame(rows), time_window=self.window)
            built = build_input(scratch, model.input_kind, model.spec,
                                session_ids=[session_id], progress=False)
        score = float(np.asarray(model.detector.score(built.data), dtype=np.float64)[0])
        risk = float(calibration.risk(np.array([score]))[0]) if calibration else None
        country = next((r["country"] for r in rows if r.get("country")), "unknown")
        threshold = policy.in_force.at(tenure="new", country=country)
        return {"session_id": session_id, "model_id": policy.model_id, "score": score,
                "risk": None if risk is None or not np.isfinite(risk) else round(risk, 1),
                "flagged": bool(score >= threshold), "threshold": threshold,
                "note": "scored inline, not stored; history features see no past"}

    # -- reads -------------------------------------------------------------------------
    def alerts(self, since: dt.datetime | None = None, *, after_id: int = 0,
               limit: int = 100) -> list[dict[str, Any]]:
        """Live alerts raised at or after ``since`` with an id above ``after_id``."""
        with self.store.held():
            frame = self.store.live.since(since or dt.datetime(1970, 1, 1), after_id=after_id,
                                          limit=limit)
        out = []
        for row in frame.astype(object).where(frame.notna(), None).to_dict(orient="records"):
            row["reasons"] = json.loads(row["reasons"] or "[]")
            for key in ("raised_at", "event_ts"):
                if row[key] is not None:
                    row[key] = row[key].isoformat()
            out.append(row)
        return out

    def health(self) -> dict[str, Any]:
        stats = self.writer.stats
        policy = self.writer.scorer.cached()[0]
        fast_ok = self.fast is None or self.fast.alive
        scoring = ("store" if self.fast is None or self.fast.unsupported else "memory")
        return {"status": "ok" if self.writer.alive and fast_ok else "writer stopped",
                "scoring": scoring, "scoring_note": None if self.fast is None
                else self.fast.unsupported,
                "store": str(self.store.path), "applied_seq": self.log.applied_seq,
                "last_seq": self.log.last_seq, "pending": self.log.pending(),
                "policy_model": None if policy is None else policy.model_id,
                "last_error": stats.last_error}

    # -- lifecycle ---------------------------------------------------------------------
    def close(self) -> None:
        """Stop the writer (what it has not applied stays in the log), close everything."""
        if self._closed:
            return
        self._closed = True
        if self.fast is not None:
            self.fast.stop()
        self.writer.stop()
        self.log.close()
        self.store.close()

    def __enter__(self) -> ScoringService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _settle(future: Any, value: Any, error: BaseException | None) -> None:
    """Resolve an asyncio future from the loop (a cancelled one is left alone)."""
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)
