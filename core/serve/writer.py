"""The service's single store writer: event log -> sessions -> store -> scores -> alerts.

One thread reads the log after its checkpoint in micro-batches (up to ``batch_records``
records, or what arrived within ``batch_ms``), and per batch:

1. decodes the records; events already stored (a replay after a crash between the store
   commit and the checkpoint, or the same event posted twice) keep their stored session;
2. sessionizes the new ones (``OnlineSessionizer``, in (ts, event_id) order within the
   batch) and stores them with ``ingest_events`` (ids and sessions given: idempotent);
3. re-scores the touched sessions with the model of the alert policy in force
   (``LiveScorer``), replacing their older scores, and records each newly flagged session
   in ``live_alerts`` (once per session and model);
4. ``mark_applied`` (the checkpoint), then wakes the requests waiting on those seqs.

A failing store write leaves the batch in the log: the writer logs, backs off and retries. A
record that can never be stored (undecodable, or refused by ingest alone) goes to the
dead-letter file ``dead_letter.jsonl`` (seq, reason, record) so it cannot block the log. A
failing *score* does not hold events back: they are stored and answered "not scored".
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.errors import AnomalystError, IngestError
from core.files import private_umask
from core.ingest.events import ingest_events
from core.ingest.time_window import TimeWindow
from core.schema import EVENT_COLUMN_NAMES
from core.serve import codec
from core.serve.event_log import EventLog
from core.serve.follower import LogFollower
from core.serve.live_models import LiveModel, load_live_model, score_sessions
from core.serve.sessionizer import OnlineSessionizer, OpenSession
from core.store import Store

log = logging.getLogger(__name__)

NO_POLICY = "no policy in force: stored, not scored"
DEAD_LETTER_NAME = "dead_letter.jsonl"
_KEPT_VERDICTS = 100_000  # sessions' latest verdicts
N_REASONS = 3
ISOLATE_AFTER = 3
"""Failures of one batch, not the store's, after which its records are tried one by one."""


_FLUSH: list[tuple[int, bytes]] = [(-1, b"")]  # "no records, but revised scores to write"


class PoisonRecord(AnomalystError):
    """A log record that can never be stored (its reason goes to the dead-letter file)."""


@dataclass(frozen=True)
class Verdict:
    """A session's latest live score: ``note`` says why there is none."""

    session_id: str
    score: float | None = None
    risk: float | None = None
    flagged: bool | None = None
    reasons: tuple[str, ...] = ()
    note: str | None = None
    provisional: bool = False  # a text of the session is still being embedded

    def to_dict(self) -> dict[str, Any]:
        return {"score": self.score, "risk": self.risk, "flagged": self.flagged,
                "reasons": list(self.reasons), "note": self.note,
                "provisional": self.provisional}


@dataclass(frozen=True)
class Outcome:
    """What became of one log record."""

    seq: int
    session_id: str | None
    new_session: bool = False
    duplicate: bool = False
    dead_letter: str | None = None  # the reason, when it went to the dead-letter file


@dataclass
class WriterStats:
    events_stored: int = 0
    duplicates: int = 0
    alerts_raised: int = 0
    batches: int = 0
    failures: int = 0
    dead_letters: int = 0
    sessions_scored: int = 0
    last_error: str | None = None


class LiveScorer:
    """Scores sessions with the alert policy's model; the policy is re-read every
    ``policy_ttl_s`` seconds (a newly published one takes effect within that). A newly
    flagged session's reasons are its explanation's top ones (``core.explain``, ~0.3 s each,
    for at most ``explain_per_batch`` new alerts a batch; the others, and explanations that
    fail, get the threshold sentence)."""

    def __init__(self, store: Store, *, policy_ttl_s: float = 5.0,
                 explain_per_batch: int = 3) -> None:
        self._store = store
        self._explain_per_batch = explain_per_batch
        self._explained: collections.OrderedDict[str, tuple[str, ...]] = (
            collections.OrderedDict())
        self._ttl = policy_ttl_s
        self._policy: Any = None
        self._calibration: Any = None
        self._read_at = -float("inf")
        self._models: dict[str, Any] = {}

    def policy(self) -> Any:
        """The policy in force (``core.policy.AlertPolicy``), or None."""
        from core.policy import policy_in_force, risk_calibration

        if time.monotonic() - self._read_at > self._ttl:
            with self._store.held():
                policy = policy_in_force(self._store)
                calibration = (risk_calibration(self._store, policy.model_id)
                               if policy is not None else None)
            self._policy, self._calibration = policy, calibration
            self._read_at = time.monotonic()
        return self._policy

    def cached(self) -> tuple[Any, Any]:
        """(the policy last read, its model's risk calibration), without the store: the
        in-memory scorer's view (the store writer refreshes it every ``policy_ttl_s``)."""
        return self._policy, self._calibration

    def model(self, model_id: str) -> LiveModel:
        """The policy's model, loaded once (the store must be held the first time)."""
        return self._model(model_id)

    def explained(self, session_id: str) -> tuple[str, ...] | None:
        return self._explained.get(session_id)

    def remember(self, session_id: str, reasons: tuple[str, ...]) -> None:
        """An alert's reasons, kept for the session's later answers."""
        self._explained[session_id] = reasons
        _trim(self._explained, _KEPT_VERDICTS)

    def warm(self) -> None:
        """Read the policy and load its model now, so the first request is not the one
        that waits for them (seconds: torch, the model files)."""
        try:
            policy = self.policy()
            if policy is not None:
                with self._store.held():
                    self._model(policy.model_id)
        except Exception:  # scoring will say what is wrong, per batch
            log.warning("live scorer: could not load the policy's model", exc_info=True)

    def _model(self, model_id: str) -> LiveModel:
        """The policy's model (an ensemble with its members), loaded once."""
        if model_id not in self._models:
            self._models = {model_id: load_live_model(self._store, model_id)}
        return self._models[model_id]

    def score(self, session_ids: list[str]) -> tuple[dict[str, Verdict], list[dict[str, Any]]]:
        """Verdicts of ``session_ids`` (scores written) and the alerts newly raised."""
        from core.policy import risk_calibration

        policy = self.policy()
        if policy is None:
            return {s: Verdict(s, note=NO_POLICY) for s in session_ids}, []
        model_id = policy.model_id
        started = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        scores = score_sessions(self._store, self._model(model_id), session_ids, started)
        table = self._store.live.segments(list(scores["session_id"]))
        table = table.merge(scores.rename(columns={"score": f"score:{model_id}"}),
                            on="session_id")
        flagged = policy.in_force.flags(table, model_id)
        calibration = risk_calibration(self._store, model_id)
        values = table[f"score:{model_id}"].to_numpy(np.float64)
        risk = calibration.risk(values) if calibration else np.full(len(table), np.nan)
        verdicts: dict[str, Verdict] = {}
        for i, r in enumerate(table.itertuples(index=False)):
            threshold = policy.in_force.at(tenure=r.tenure, country=r.country)
            reasons = (f"score {values[i]:.4g} is at or above the policy threshold "
                       f"{threshold:.4g} for a {r.tenure} user in {r.country}",) if (
                flagged[i]) else ()
            verdicts[r.session_id] = Verdict(
                r.session_id, float(values[i]),
                None if not np.isfinite(risk[i]) else round(float(risk[i]), 1),
                bool(flagged[i]), reasons)
        return verdicts, self._raise_alerts(model_id, table, verdicts, policy.daily_budget)

    def _reasons(self, model_id: str, verdict: Verdict) -> tuple[str, ...]:
        """The explanation's top reasons (``core.explain``), else the threshold sentence."""
        from core.explain import explain_session

        try:
            found = explain_session(self._store, verdict.session_id, model_id=model_id,
                                    use_cache=False, save=False).reasons
        except Exception:  # an explanation is a nicety: the alert stands without it
            log.warning("live scorer: no explanation for %s", verdict.session_id,
                        exc_info=True)
            return verdict.reasons
        reasons = tuple(found[:N_REASONS]) or verdict.reasons
        self._explained[verdict.session_id] = reasons
        _trim(self._explained, _KEPT_VERDICTS)
        return reasons

    def _raise_alerts(self, model_id: str, table: pd.DataFrame, verdicts: dict[str, Verdict],
                      daily_budget: int | None = None) -> list[dict[str, Any]]:
        flagged = [s for s, v in verdicts.items() if v.flagged]
        if not flagged:
            return []
        alerted = self._store.live.alerted(model_id, flagged)
        for s in alerted:  # already alerted: the reasons found then
            verdicts[s] = replace(verdicts[s], reasons=self._explained.get(
                s, verdicts[s].reasons))
        fresh = [s for s in flagged if s not in alerted]
        if fresh and daily_budget is not None:
            fresh = self._within_budget(model_id, table, verdicts, fresh, daily_budget)
        if not fresh:
            return []
        for s in fresh[:self._explain_per_batch]:
            verdicts[s] = replace(verdicts[s], reasons=self._reasons(model_id, verdicts[s]))
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        rows = table.set_index("session_id").loc[fresh]
        alerts = pd.DataFrame({
            "session_id": fresh, "user_id": rows["user_id"].astype(str).to_list(),
            "model_id": model_id, "score": [verdicts[s].score for s in fresh],
            "risk": [verdicts[s].risk for s in fresh], "raised_at": now,
            "event_ts": pd.to_datetime(rows["end_ts"]).to_list(),
            "reasons": [json.dumps(list(verdicts[s].reasons)) for s in fresh]})
        with self._store.transaction():
            self._store.live.insert(alerts)
        return [{**a, "raised_at": now.isoformat(), "event_ts": str(a["event_ts"])}
                for a in alerts.to_dict(orient="records")]


    def _within_budget(self, model_id: str, table: pd.DataFrame,
                       verdicts: dict[str, Verdict], fresh: list[str], budget: int
                       ) -> list[str]:
        """The newly flagged sessions the policy's daily budget still has room for, highest
        scores first, per day of the session's start (as batch flagging counts them); the
        others are answered not flagged, with the reason."""
        start = table.set_index("session_id")["start_ts"]
        day_of = {s: pd.Timestamp(start[s]).date() for s in fresh}
        used = self._store.live.per_day(model_id, sorted(set(day_of.values())))
        kept: list[str] = []
        by_score = sorted(fresh, key=lambda s: -(verdicts[s].score or 0.0))
        for s in by_score:
            day = day_of[s]
            if used.get(day, 0) < budget:
                used[day] = used.get(day, 0) + 1
                kept.append(s)
                continue
            verdicts[s] = replace(verdicts[s], flagged=False, reasons=(
                f"score {verdicts[s].score:.4g} is above the policy threshold, but the "
                f"policy's daily budget of {budget} alerts for {day.isoformat()} is spent",))
        return kept


def store_lookup(store: Store) -> Callable[[str], OpenSession | None]:
    """The sessionizer's ``lookup``: the user's latest stored session."""
    def lookup(user_id: str) -> OpenSession | None:
        found = store.live.latest_session(user_id)
        if found is None:
            return None
        return OpenSession(found["session_id"], found["start_ts"], found["end_ts"],
                           found["n_events"])
    return lookup


class StoreWriter(LogFollower):
    """The writer thread; ``start``/``stop``; requests wait with ``wait_applied``."""

    def __init__(self, store: Store, event_log: EventLog, *, gap_minutes: float,
                 unit: str = "session", batch_records: int = 500, batch_ms: float = 50.0,
                 window: TimeWindow | None = None, scorer: LiveScorer | None = None,
                 max_open_sessions: int = 100_000, fast: Any = None) -> None:
        super().__init__(event_log.applied_seq)
        self.store = store
        self.log = event_log
        self.gap_minutes = gap_minutes
        self.unit = unit
        self.batch_records = batch_records
        self.batch_ms = batch_ms
        self.window = window or TimeWindow.parse()
        self.scorer = scorer or LiveScorer(store)
        self.fast = fast  # core.serve.fast_path.FastScorer: sessions (and scores) come from it
        self.sessionizer = OnlineSessionizer(gap_minutes, max_open_sessions,
                                             lookup=store_lookup(store))
        self.stats = WriterStats()
        self.alert_listeners: list[Callable[[list[dict[str, Any]]], None]] = []
        self.dead_letter_path = Path(event_log.directory) / DEAD_LETTER_NAME
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()

    # -- control -----------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="anomalyst-store-writer",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the batch in hand and stop (what is left stays in the log)."""
        self._stop.set()
        self._running.set()
        self.wake()
        if self._thread is not None:
            self._thread.join(timeout)

    def pause(self) -> None:
        """Hold off applying after the batch in hand (tests, maintenance)."""
        self._running.clear()

    def resume(self) -> None:
        self._running.set()
        self.wake()

    @property
    def applied_seq(self) -> int:
        """Every record up to it is in the store (the checkpoint)."""
        return self.mark

    def wait_applied(self, seq: int, timeout: float) -> bool:
        """True once every record <= ``seq`` is applied, False after ``timeout`` seconds."""
        return self.wait_mark(seq, timeout)

    # -- the loop ----------------------------------------------------------------------
    def _run(self) -> None:
        backoff, failed = 0.1, 0
        while not self._stop.is_set():
            self._running.wait()
            if self._stop.is_set():
                return
            batch = self._next_batch()
            if not batch:
                continue
            if batch is _FLUSH:
                try:
                    self._flush_handoff()
                except Exception as exc:  # those scores wait for the sessions' next event
                    self.stats.failures += 1
                    self.stats.last_error = str(exc)[:500]
                    log.exception("live writer: writing revised scores failed")
                    self._stop.wait(backoff)
                continue
            try:
                with self.store.held():  # open only while a batch is applied
                    if failed >= ISOLATE_AFTER:  # the same error every time: find its records
                        self._isolate(batch)
                    else:
                        self._apply_or_isolate(batch)
                backoff, failed = 0.1, 0
            except Exception as exc:  # the store failed: keep the batch, retry later
                self.stats.failures += 1
                self.stats.last_error = str(exc)[:500]
                failed = failed + 1 if not _is_store_failure(exc) else 0
                log.exception("live writer: batch of seqs %d-%d failed; retrying in %.1f s",
                              batch[0][0], batch[-1][0], backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)

    def _isolate(self, batch: list[tuple[int, bytes]]) -> None:
        """Apply record by record; a record that fails with anything but a store failure
        goes to the dead-letter file with its error, so one bad record cannot stop the log."""
        for record in batch:
            try:
                self._apply([record])
            except Exception as exc:
                if _is_store_failure(exc):
                    raise
                self._dead_letter(record, f"{type(exc).__name__}: {str(exc)[:300]}")

    def _next_batch(self) -> list[tuple[int, bytes]]:
        """Up to ``batch_records`` records after the checkpoint, waiting ``batch_ms`` for a
        batch to fill once its first record is there."""
        deadline = None
        while not self._stop.is_set():
            kicks = self.kicks()
            batch = list(self.log.read(self.applied_seq, limit=self.batch_records))
            if self.fast is not None:  # only what the fast path has placed in sessions
                done = self.fast.done_seq
                batch = [r for r in batch if r[0] <= done]
                if not batch and self.fast.has_handoff(self.applied_seq):
                    return _FLUSH
            if len(batch) >= self.batch_records or (batch and deadline is not None
                                                    and time.monotonic() >= deadline):
                return batch
            if batch and deadline is None:
                deadline = time.monotonic() + self.batch_ms / 1000
            self.idle_wait(kicks, 0.2 if deadline is None
                           else max(0.0, deadline - time.monotonic()))
        return []

    def _apply_or_isolate(self, batch: list[tuple[int, bytes]]) -> None:
        """Apply the batch; when data in it is refused, apply record by record and send
        the refused ones to the dead-letter file."""
        try:
            self._apply(batch)
            return
        except (PoisonRecord, IngestError) as exc:
            if len(batch) == 1:
                self._dead_letter(batch[0], str(exc))
                return
        for record in batch:
            try:
                self._apply([record])
            except (PoisonRecord, IngestError) as exc:
                self._dead_letter(record, str(exc))

    def _apply(self, batch: list[tuple[int, bytes]]) -> None:
        if self.fast is not None:
            self._apply_after_fast(batch)
            return
        rows = [_decode(seq, payload) for seq, payload in batch]
        stored = self.store.live.stored_sessions_of([r["event_id"] for r in rows])
        outcomes, new_rows = self._sessionize(rows, stored)
        if new_rows:
            frame = events_frame(new_rows)
            ingest_events(self.store, frame, session_gap_minutes=self.gap_minutes,
                          unit=self.unit, time_window=self.window)
        touched = sorted({o.session_id for o in outcomes if o.session_id})
        verdicts, alerts = self._score(touched)
        self.log.mark_applied(batch[-1][0])
        self._publish(batch[-1][0], outcomes, verdicts, len(new_rows), alerts)

    def _apply_after_fast(self, batch: list[tuple[int, bytes]]) -> None:
        """Store a batch the fast path has sessionized: its events, the scores and alerts it
        computed, the texts it embedded; score here what it could not."""
        self.scorer.policy()  # refreshed while the store is open (the fast path reads it)
        rows = [_decode(seq, payload) for seq, payload in batch]
        fast = {r["_seq"]: self.fast.outcome(r["_seq"]) for r in rows}
        lost = [r for r in rows if fast[r["_seq"]] is None or fast[r["_seq"]].session_id is None]
        if lost:  # the fast path failed on them: sessionized here, from the store
            self.sessionizer = OnlineSessionizer(self.gap_minutes, lookup=store_lookup(
                self.store))
        stored = self.store.live.stored_sessions_of([r["event_id"] for r in rows])
        outcomes: list[Outcome] = []
        new_rows: list[dict[str, Any]] = []
        for row in sorted(rows, key=lambda r: (r["ts"], r["event_id"])):
            f = fast[row["_seq"]]
            seq = row["_seq"]
            if f is None or f.session_id is None:
                session_id, new = self._assign(row)
            else:
                session_id, new = f.session_id, f.new_session
            if f is not None and f.duplicate or row["event_id"] in stored:
                outcomes.append(Outcome(seq, stored.get(row["event_id"], session_id),
                                        duplicate=True))
                continue
            stored[row["event_id"]] = session_id
            outcomes.append(Outcome(seq, session_id, new))
            new_rows.append({**row, "session_id": session_id})
        if new_rows:
            ingest_events(self.store, events_frame(new_rows),
                          session_gap_minutes=self.gap_minutes, unit=self.unit,
                          time_window=self.window)
        alerts = self._store_handoff(batch[-1][0])
        unscored = sorted({o.session_id for o in outcomes if o.session_id and not o.duplicate
                           and not (fast[o.seq] is not None and fast[o.seq].scored)})
        verdicts, more = self._score(unscored)
        self.log.mark_applied(batch[-1][0])
        self.fast.applied(batch[-1][0])
        self._publish(batch[-1][0], sorted(outcomes, key=lambda o: o.seq), verdicts,
                      len(new_rows), alerts + more)

    def _store_handoff(self, upto: int) -> list[dict[str, Any]]:
        """Write what the fast path computed for records <= ``upto`` (stored already)."""
        handoff = self.fast.take(upto)
        self._cache_embeddings(handoff.embeddings)
        self._write_fast_scores(handoff.scores)
        return self._insert_fast_alerts(handoff.alerts)

    def _flush_handoff(self) -> None:
        """Scores revised after their events were stored (a text embedded later)."""
        with self.store.held():
            alerts = self._store_handoff(self.applied_seq)
        self.stats.alerts_raised += len(alerts)
        for listener in list(self.alert_listeners) if alerts else []:
            listener(alerts)

    def _assign(self, row: dict[str, Any]) -> tuple[str, bool]:
        if self.unit == "event":
            return row["event_id"], True
        return self.sessionizer.assign(row["user_id"], dt.datetime.fromisoformat(row["ts"]),
                                       row["session_id"])

    def _cache_embeddings(self, found: list[tuple[int, list[str], np.ndarray]]) -> None:
        """Cache the texts the fast path embedded (batch scoring then reads them)."""
        if not found:
            return
        from core.text.cache import cache_embeddings

        cache_embeddings(self.store.con, [t for _, texts, _ in found for t in texts],
                         np.concatenate([v for _, _, v in found]))

    def _write_fast_scores(self, records: dict[str, Any]) -> None:
        if not records:
            return
        from core.serve.live_models import write_scores

        policy = self.scorer.policy()
        if policy is None:
            return
        live = self.scorer.model(policy.model_id)
        ids = sorted(records)
        scored_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        combined = pd.DataFrame({"session_id": ids,
                                 "score": [records[s].score for s in ids]})
        members: dict[str, pd.DataFrame] = {}
        shares = None
        if live.single is None:
            for member_id in records[ids[0]].members:
                members[member_id] = pd.DataFrame({
                    "session_id": ids, "score": [records[s].members[member_id] for s in ids]})
            shares = pd.DataFrame({
                "session_id": np.repeat(np.array(ids, dtype=object), len(live.members)),
                "member_id": np.tile(np.array(live.combiner.members, dtype=object), len(ids)),
                "contribution": np.concatenate([records[s].contributions for s in ids])})
        write_scores(self.store, live, members, combined, shares, scored_at)
        self.stats.sessions_scored += len(ids)

    def _insert_fast_alerts(self, found: list[tuple[int, dict[str, Any]]]
                            ) -> list[dict[str, Any]]:
        """Record the fast path's alerts with the reasons it answered (the session's most
        unusual features). The full explanation (SHAP over the members, 0.5-2 s of CPU, and
        it embeds texts the store has not cached yet) is left to the Explain page: run here
        it took the store writer's time from storing events."""
        if not found:
            return []
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        rows = [dict(a) for _, a in found]
        alerts = pd.DataFrame({
            "session_id": [a["session_id"] for a in rows],
            "user_id": [a["user_id"] for a in rows],
            "model_id": [a["model_id"] for a in rows],
            "score": [a["score"] for a in rows], "risk": [a["risk"] for a in rows],
            "raised_at": now, "event_ts": [a["event_ts"] for a in rows],
            "reasons": [json.dumps(a["reasons"]) for a in rows]})
        with self.store.transaction():
            self.store.live.insert(alerts)
        return [{**a, "raised_at": now.isoformat(), "event_ts": str(a["event_ts"])}
                for a in rows]

    def _sessionize(self, rows: list[dict[str, Any]], stored: dict[str, str]
                    ) -> tuple[list[Outcome], list[dict[str, Any]]]:
        outcomes: dict[int, Outcome] = {}
        new_rows: list[dict[str, Any]] = []
        seen: dict[str, str] = dict(stored)
        for row in sorted(rows, key=lambda r: (r["ts"], r["event_id"])):
            if row["event_id"] in seen:
                outcomes[row["_seq"]] = Outcome(row["_seq"], seen[row["event_id"]],
                                                duplicate=True)
                continue
            if self.unit == "event":
                session_id, new = row["event_id"], True
            else:
                session_id, new = self.sessionizer.assign(
                    row["user_id"], dt.datetime.fromisoformat(row["ts"]), row["session_id"])
            seen[row["event_id"]] = session_id
            outcomes[row["_seq"]] = Outcome(row["_seq"], session_id, new)
            new_rows.append({**row, "session_id": session_id})
        self.sessionizer.closed_since_last_call()  # v1: closing needs no action
        return [outcomes[r["_seq"]] for r in rows], new_rows

    def _score(self, session_ids: list[str]) -> tuple[dict[str, Verdict], list[dict[str, Any]]]:
        if not session_ids:
            return {}, []
        try:
            verdicts, alerts = self.scorer.score(session_ids)
        except Exception as exc:  # the events are stored: answer "not scored", go on
            log.exception("live writer: scoring %d sessions failed", len(session_ids))
            self.stats.last_error = str(exc)[:500]
            note = f"stored, not scored: {str(exc)[:300]}"
            return {s: Verdict(s, note=note) for s in session_ids}, []
        self.stats.sessions_scored += sum(v.score is not None for v in verdicts.values())
        return verdicts, alerts

    def _publish(self, last_seq: int, outcomes: list[Outcome], verdicts: dict[str, Verdict],
                 n_stored: int, alerts: list[dict[str, Any]]) -> None:
        self.stats.events_stored += n_stored
        self.stats.duplicates += sum(o.duplicate for o in outcomes)
        self.stats.alerts_raised += len(alerts)
        self.stats.batches += 1
        self._record(last_seq, outcomes, verdicts)
        for listener in list(self.alert_listeners) if alerts else []:
            listener(alerts)

    def _dead_letter(self, record: tuple[int, bytes], reason: str) -> None:
        seq, payload = record
        line = json.dumps({"seq": seq, "reason": reason,
                           "record": payload.decode("utf-8", "replace")})
        with private_umask(), open(self.dead_letter_path, "a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()
        log.error("live writer: seq %d moved to %s: %s", seq, self.dead_letter_path, reason)
        self.stats.dead_letters += 1
        self.log.mark_applied(seq)
        self._publish(seq, [Outcome(seq, None, dead_letter=reason)], {}, 0, [])


def _trim(d: collections.OrderedDict[Any, Any], size: int) -> None:
    while len(d) > size:
        d.popitem(last=False)


def _decode(seq: int, payload: bytes) -> dict[str, Any]:
    try:
        row = codec.loads(payload)
        if not isinstance(row, dict) or not row.get("event_id") or not row.get("user_id"):
            raise ValueError("not an event object with event_id and user_id")
        dt.datetime.fromisoformat(row["ts"])
    except (ValueError, TypeError, KeyError) as exc:
        raise PoisonRecord(f"log record {seq} must be a parsed event, got {exc}") from None
    return {**row, "_seq": seq}


def _is_store_failure(exc: BaseException) -> bool:
    """A failure of the store or the disk (worth retrying as is), not of the data."""
    import duckdb

    from core.errors import StoreError

    return isinstance(exc, duckdb.Error | OSError | StoreError)


def events_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Canonical columns (and the extra fields as their own columns, as a file has them)."""
    data: dict[str, list[Any]] = {c: [r.get(c) for r in rows] for c in EVENT_COLUMN_NAMES}
    extras: dict[str, list[Any]] = {}
    for i, r in enumerate(rows):
        if r.get("extra"):
            for key, value in json.loads(r["extra"]).items():
                extras.setdefault(key, [None] * len(rows))[i] = value
    columns = {**data, **{k: v for k, v in extras.items() if k not in data}}
    # a column with no value at all is left out, as a file without it would be (cheaper on
    # the lists than DataFrame.dropna on an object frame: parsed rows hold no NaN)
    frame = pd.DataFrame({k: v for k, v in columns.items()
                          if any(x is not None for x in v)})
    # ISO 8601 with or without fractions (format inference from the first row would refuse
    # the rest of a batch that mixes them)
    frame["ts"] = pd.to_datetime(frame["ts"], format="ISO8601")
    return frame
