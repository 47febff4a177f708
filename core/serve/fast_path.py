"""The service's answer path: sessions and scores from memory, ahead of the store.

One thread reads the event log after the store's checkpoint, a few milliseconds of records at
a time, and per micro-batch:

1. decodes the records; an event id already in its session (a replay after a restart, or
   the same event posted twice) is a duplicate and changes nothing;
2. sessionizes them (``OnlineSessionizer``, the user's latest session from memory);
3. applies them to the in-memory feature state (``OnlineState``), embedding new texts;
4. when the policy's model is one this path can score (feature models on one supported
   spec: ``core.serve.online_features.supports``), recomputes the touched sessions' rows,
   scores every active member, combines an ensemble, and decides the flag (threshold of the
   session's segment, the daily budget, one alert per session) from memory;
5. publishes each record's outcome (its session, and its verdict when scored) and wakes the
   requests waiting on them; hands the scores, alerts and new embeddings to the store writer
   (``StoreWriter``), which stores the events, writes those scores and alerts, and moves the
   checkpoint.

A request is answered from step 5, before its events reach the store (they are durable in
the log already). Records this path cannot score are scored by the store writer as before,
and their requests wait for it. Everything here is rebuilt from the store and the log after
a restart: the state is loaded from the store, and the log is read again from the checkpoint.
"""

from __future__ import annotations

import collections
import datetime as dt
import gc
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.datasets import FeatureMatrix
from core.features.spec import FeatureSpec
from core.serve.event_log import EventLog
from core.serve.follower import LogFollower
from core.serve.online_features import OnlineState, event_from_row, supports
from core.serve.quick_reasons import quick_reasons, scale_of
from core.serve.sessionizer import OnlineSessionizer, OpenSession
from core.serve.state_loader import load_state, stored_events
from core.store import Store

log = logging.getLogger(__name__)

_EPOCH = dt.datetime(1970, 1, 1)
_EMBEDDED: list[tuple[int, bytes]] = [(-1, b"")]  # "no records, but embeddings arrived"
_KEPT_IDS = 1_000_000  # recent event ids -> session, for duplicates of evicted sessions
RESCORE_EVERY_S = 0.0  # sessions whose texts were embedded are scored again this often
# (0.1 s was measured: more provisional answers and no better tail; docs/BENCHMARKS.md)


@dataclass(frozen=True)
class FastOutcome:
    """A record's session; ``scored``: its verdict came from memory (else the store
    writer scores it)."""

    seq: int
    session_id: str | None
    new_session: bool = False
    duplicate: bool = False
    scored: bool = False
    dead_letter: str | None = None


@dataclass
class Submission:
    """A request's records, appended to the log by this thread (one fsync for every request
    waiting), then answered: ``appended(first, last, error)`` once durable (or refused),
    ``answered(done)`` once every record has its outcome (``done`` False: stopping)."""

    records: list[bytes]
    appended: Any
    answered: Any
    last: int = -1


@dataclass
class ScoreRecord:
    """A session's latest scores, for the store writer."""

    seq: int
    session_id: str
    members: dict[str, float]
    score: float
    contributions: np.ndarray | None = None


@dataclass
class Handoff:
    """What the store writer takes up to a seq: scores, alerts, new text embeddings."""

    scores: dict[str, ScoreRecord] = field(default_factory=dict)
    alerts: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    embeddings: list[tuple[int, list[str], np.ndarray]] = field(default_factory=list)


@dataclass
class _Scoring:
    """The policy model as this path scores it."""

    model_id: str
    live: Any  # core.serve.live_models.LiveModel
    state: OnlineState
    active: list[Any]
    alerted: set[str]
    per_day: dict[dt.date, int]
    scale: tuple[np.ndarray, np.ndarray] | None = None  # for quick reasons


def us_of(ts: dt.datetime) -> int:
    """Epoch microseconds of a naive UTC datetime."""
    delta = ts - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def why_not(live: Any) -> str | None:
    """None when this path can score ``live`` (a LiveModel), else why not."""
    members = [live.single] if live.single is not None else [
        m for m, w in zip(live.members, live.combiner.weights, strict=True) if w > 0]
    if any(m.input_kind != "features" for m in members):
        return "a member reads event sequences"
    hashes = {str(m.spec.get("hash")) for m in members}
    if len(hashes) != 1:
        return "the members use different feature specs"
    return supports(FeatureSpec.from_dict(members[0].spec["features"]))


class FastScorer(LogFollower):
    """The answer thread; ``start``/``stop``; requests wait with ``wait_scored``."""

    def __init__(self, store: Store, event_log: EventLog, scorer: Any, *, gap_minutes: float,
                 unit: str = "session", batch_records: int = 2000, batch_ms: float = 2.0,
                 max_open_sessions: int = 100_000, embed_wait_s: float = 0.0) -> None:
        super().__init__(event_log.applied_seq)
        self.store = store
        self.log = event_log
        self.scorer = scorer  # core.serve.writer.LiveScorer: policy, model, calibration
        self.unit = unit
        self.batch_records = batch_records
        self.batch_ms = batch_ms
        self.sessionizer = OnlineSessionizer(gap_minutes, max_open_sessions,
                                             lookup=self._latest_session)
        self.stats = {"batches": 0, "scored": 0, "failures": 0}
        self.last_error: str | None = None
        self.unsupported: str | None = None
        self._scoring: _Scoring | None = None
        self._checked: str | None = None  # the policy model last looked at
        self._state: OnlineState | None = None
        self._store_applied = event_log.applied_seq
        self._handoff = Handoff()
        self._recent: collections.OrderedDict[str, str] = collections.OrderedDict()
        self._last_seq_of: dict[str, int] = {}
        self._closing: list[str] = []
        self._stop = threading.Event()
        self.on_published: list[Any] = []  # callables, woken after each batch
        self.embed_wait_s = embed_wait_s  # how long a batch waits for its new texts
        self._embedder: Any = None  # core.serve.embedder.Embedder, once a spec has text
        self._taken_at = -float("inf")  # when embeddings were last taken in
        self._inbox: list[Submission] = []  # waiting to be appended
        self._waiting: list[Submission] = []  # appended, waiting for their outcomes

    # -- control -----------------------------------------------------------------------
    def warm(self) -> None:
        """Load the policy's model and the feature state now (seconds), not on a request."""
        self.scorer.warm()
        self._refresh()
        # What is loaded now lives as long as the service: out of the cyclic collector's
        # way (a full collection over it took tens of milliseconds, in whichever request
        # thread happened to trigger it), and collections a little less often.
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 20, 100)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="anomalyst-fast-path",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        with self._cond:
            self._stop.set()
        self.wake()
        if self._thread is not None:
            self._thread.join(timeout)
        self._append_inbox()  # what was handed over is made durable, then answered
        self._answer_waiting(stopping=True)
        if self._embedder is not None:
            self._embedder.stop()

    def embed_backlog(self) -> int:
        """Texts waiting for their embedding (their sessions' answers are provisional)."""
        return 0 if self._embedder is None else self._embedder.backlog()

    def has_handoff(self, upto: int) -> bool:
        """Scores, alerts or embeddings of records <= ``upto`` wait for the store."""
        with self._cond:
            h = self._handoff
            return (any(r.seq <= upto for r in h.scores.values())
                    or any(a[0] <= upto for a in h.alerts)
                    or any(e[0] <= upto for e in h.embeddings))

    def enqueue(self, submission: Submission) -> None:
        """Hand a request's records to this thread (``submit_async``)."""
        with self._cond:
            if self._stop.is_set():
                raise RuntimeError("the scoring service is stopping")
            self._inbox.append(submission)
            self._kicks += 1
            self._cond.notify_all()

    def _append_inbox(self) -> None:
        """Append every waiting request's records: one write and one fsync for all of them
        (each on its own when together they would overfill the log)."""
        with self._cond:
            inbox, self._inbox = self._inbox, []
        if not inbox:
            return
        try:
            first, _ = self.log.append([r for sub in inbox for r in sub.records])
        except Exception:  # e.g. LogFull for the lot: some may still fit, one by one
            for sub in inbox:
                try:
                    f, last = self.log.append(sub.records)
                except Exception as exc:
                    sub.appended(None, None, exc)
                    continue
                sub.last = last
                sub.appended(f, last, None)
                self._waiting.append(sub)
            return
        for sub in inbox:
            sub.last = first + len(sub.records) - 1
            sub.appended(first, sub.last, None)
            first = sub.last + 1
            self._waiting.append(sub)

    def _answer_waiting(self, stopping: bool = False) -> None:
        done = self.done_seq
        ready = [s for s in self._waiting if s.last <= done or stopping]
        if ready:
            self._waiting = [s for s in self._waiting if not (s.last <= done or stopping)]
            for sub in ready:
                sub.answered(sub.last <= done)

    @property
    def done_seq(self) -> int:
        """Every record up to it has its outcome."""
        return self.mark

    def wait_done(self, seq: int, timeout: float) -> bool:
        """True once every record <= ``seq`` has its outcome."""
        return self.wait_mark(seq, timeout)

    def applied(self, seq: int) -> None:
        """The store writer stored every record <= ``seq`` (closed sessions may go)."""
        with self._cond:
            self._store_applied = max(self._store_applied, seq)

    def take(self, upto: int) -> Handoff:
        """The scores, alerts and embeddings of records <= ``upto``, for the store."""
        with self._cond:
            h = self._handoff
            scores = {s: r for s, r in h.scores.items() if r.seq <= upto}
            for s in scores:
                del h.scores[s]
            # an alert waits for its session's scores (a later event may have replaced them)
            ready = [a[0] <= upto and a[1]["session_id"] not in h.scores for a in h.alerts]
            out = Handoff(scores, [a for a, r in zip(h.alerts, ready, strict=True) if r],
                          [e for e in h.embeddings if e[0] <= upto])
            h.alerts = [a for a, r in zip(h.alerts, ready, strict=True) if not r]
            h.embeddings = [e for e in h.embeddings if e[0] > upto]
        return out

    # -- the loop ----------------------------------------------------------------------
    def _run(self) -> None:
        import torch

        # This thread's own OpenMP setting: a few rows at a time run fastest on one thread,
        # and a second would wait on cores the request threads and the store writer use.
        torch.set_num_threads(1)
        while not self._stop.is_set():
            batch = self._next_batch()
            if not batch:
                continue
            if batch is _EMBEDDED:
                self._rescore_embedded()
                continue
            try:
                self._apply(batch)
            except Exception as exc:  # a bug or a store read: the store writer scores them
                log.exception("fast path: batch of seqs %d-%d failed; the store writer "
                              "scores it", batch[0][0], batch[-1][0])
                self.stats["failures"] += 1
                self.last_error = str(exc)[:500]
                self._publish(batch[-1][0], [FastOutcome(seq, None) for seq, _ in batch],
                              {})
                self._scoring, self._state = None, None  # reloaded on the next batch
                self._checked = None

    def _rescore_embedded(self) -> None:
        """Texts were embedded while no event came: score their sessions again."""
        touched: dict[str, int] = {}
        try:
            self._take_embeddings(touched)
            policy, calibration = self.scorer.cached()
            verdicts = (self._score(self._scoring, touched, policy, calibration)
                        if self._scoring is not None and touched else {})
        except Exception as exc:
            log.exception("fast path: scoring embedded texts failed")
            self.stats["failures"] += 1
            self.last_error = str(exc)[:500]
            return
        self._publish(self.done_seq, [], verdicts)

    def _next_batch(self) -> list[tuple[int, bytes]]:
        deadline = None
        while not self._stop.is_set():
            kicks = self.kicks()
            self._append_inbox()
            self._answer_waiting()
            batch = list(self.log.read(self.done_seq, limit=self.batch_records))
            if (not batch and self._embedder is not None and self._embedder.has_ready()
                    and time.monotonic() - self._taken_at >= RESCORE_EVERY_S):
                return _EMBEDDED
            if len(batch) >= self.batch_records or (batch and deadline is not None
                                                    and time.monotonic() >= deadline):
                return batch
            if batch and deadline is None:
                deadline = time.monotonic() + self.batch_ms / 1000
            self.idle_wait(kicks, 0.2 if deadline is None
                           else max(0.0, deadline - time.monotonic()))
        return []

    def _refresh(self) -> None:
        """Follow the policy: load its model and the feature state when it changes."""
        policy, _ = self.scorer.cached()
        model_id = None if policy is None else policy.model_id
        if model_id == self._checked and (self._scoring is not None or model_id is None
                                          or self.unsupported is not None):
            return
        self._checked, self._scoring, self.unsupported = model_id, None, None
        if policy is None:
            return
        with self.store.held():
            live = self.scorer.model(policy.model_id)
        reason = why_not(live)
        if reason is not None:  # sessions still come from here, scores from the store
            log.info("fast path: %s is scored through the store: %s", model_id, reason)
            self.unsupported = reason
            return
        members = [live.single] if live.single is not None else [
            m for m, w in zip(live.members, live.combiner.weights, strict=True) if w > 0]
        spec = FeatureSpec.from_dict(members[0].spec["features"])
        if self._state is None or self._state.spec.hash != spec.hash:
            # the store must hold every record already answered before the state is read
            deadline = time.monotonic() + 60
            while self.store_applied < self.done_seq and time.monotonic() < deadline:
                time.sleep(0.01)
            with self.store.held():
                self._state = load_state(self.store, spec)
        with self.store.held():
            self._scoring = _Scoring(model_id, live, self._state, members,
                                     self.store.live.alerted_all(model_id),
                                     self.store.live.per_day_all(model_id),
                                     scale_of(members))

    @property
    def store_applied(self) -> int:
        with self._cond:
            return self._store_applied

    def _latest_session(self, user_id: str) -> OpenSession | None:
        """The sessionizer's lookup: the user's session that ended last (memory, else the
        store when this path keeps no state)."""
        if self._state is None:
            with self.store.held():
                found = self.store.live.latest_session(user_id)
            if found is None:
                return None
            return OpenSession(found["session_id"], found["start_ts"], found["end_ts"],
                               found["n_events"])
        sessions = self._state.users.get(user_id)
        if not sessions:
            return None
        last = max(sessions.values(), key=lambda s: (s.end_us, s.session_id))
        return OpenSession(last.session_id, _EPOCH + dt.timedelta(microseconds=last.start_us),
                           _EPOCH + dt.timedelta(microseconds=last.end_us), last.n_events)

    def _apply(self, batch: list[tuple[int, bytes]]) -> None:
        from core.serve.writer import PoisonRecord, _decode

        self._refresh()
        self._evict()
        outcomes: list[FastOutcome] = []
        rows: list[tuple[int, dict[str, Any]]] = []
        for seq, payload in batch:
            try:
                rows.append((seq, _decode(seq, payload)))
            except PoisonRecord:  # the store writer words it and moves it aside
                outcomes.append(FastOutcome(seq, None))
        state = self._state
        new_texts: list[str] = []
        if state is not None and state.spec.text is not None:
            new_texts = state.missing_vectors(r["text"] for _, r in rows if r.get("text"))
            if new_texts:
                self._embedding().submit(new_texts)
        touched: dict[str, int] = {}
        for seq, row in sorted(rows, key=lambda sr: (sr[1]["ts"], sr[1]["event_id"])):
            outcome = self._place(seq, row, state)
            outcomes.append(outcome)
            if outcome.session_id and not outcome.duplicate:
                touched[outcome.session_id] = seq
        closed = self.sessionizer.closed_since_last_call()
        self._closing.extend(closed)
        waited = bool(new_texts) and self.embed_wait_s > 0
        if waited:
            self._embedding().wait_for(set(new_texts), self.embed_wait_s)
        self._take_embeddings(touched, force=waited)
        verdicts: dict[str, Any] = {}
        scoring = self._scoring
        policy, calibration = self.scorer.cached()
        if scoring is not None and touched:
            verdicts = self._score(scoring, touched, policy, calibration)
        elif policy is None and touched:
            from core.serve.writer import NO_POLICY, Verdict

            verdicts = {s: Verdict(s, note=NO_POLICY) for s in touched}
        scored = scoring is not None or policy is None
        outcomes = [o if o.session_id is None or o.duplicate else FastOutcome(
            o.seq, o.session_id, o.new_session, False, scored) for o in outcomes]
        for o in outcomes:
            if o.duplicate and o.session_id:
                known = self.verdict(o.session_id)
                if known is not None:
                    verdicts.setdefault(o.session_id, known)
        self.stats["batches"] += 1
        self._publish(batch[-1][0], sorted(outcomes, key=lambda o: o.seq), verdicts)

    def _place(self, seq: int, row: dict[str, Any], state: OnlineState | None) -> FastOutcome:
        """Sessionize one event and apply it to the state."""
        event_id = str(row["event_id"])
        known = self._recent.get(event_id)
        if known is not None:
            return FastOutcome(seq, known, duplicate=True)
        ts = dt.datetime.fromisoformat(row["ts"])
        if self.unit == "event":
            session_id, new = event_id, True
        else:
            session_id, new = self.sessionizer.assign(row["user_id"], ts, row["session_id"])
        user = str(row["user_id"])
        if state is not None:
            if session_id not in state.live and session_id in state.users.get(user, {}):
                with self.store.held():  # a stored session goes on (after a restart)
                    state.open_live(user, session_id, stored_events(self.store, session_id))
            if state.has_event(session_id, event_id):
                return FastOutcome(seq, session_id, duplicate=True)
            state.apply(user, session_id, event_from_row(row, us_of(ts)))
        self._recent[event_id] = session_id
        if len(self._recent) > _KEPT_IDS:
            self._recent.popitem(last=False)
        self._last_seq_of[session_id] = seq
        return FastOutcome(seq, session_id, new)

    def _embedding(self) -> Any:
        if self._embedder is None:
            from core.serve.embedder import Embedder

            self._embedder = Embedder(self.wake)
        return self._embedder

    def _take_embeddings(self, touched: dict[str, int], *, force: bool = False) -> None:
        """Add the vectors the embedder finished; their live sessions are scored again. At
        most every ``RESCORE_EVERY_S`` (each take is another scoring pass beside the
        answers), unless ``force`` (a batch waits for its texts)."""
        if self._embedder is None or self._state is None:
            return
        now = time.monotonic()
        if not force and now - self._taken_at < RESCORE_EVERY_S:
            return
        self._taken_at = now
        ready = self._embedder.take()
        if not ready:
            return
        seq = self.done_seq
        arrived: set[str] = set()
        for texts, vectors in ready:
            self._state.add_vectors(texts, vectors)
            arrived.update(texts)
            with self._cond:
                self._handoff.embeddings.append((seq, texts, vectors))
        for sid in self._state.sessions_with(arrived):
            touched.setdefault(sid, self._last_seq_of.get(sid, seq))

    def _score(self, scoring: _Scoring, touched: dict[str, int], policy: Any,
               calibration: Any) -> dict[str, Any]:
        from core.serve.writer import Verdict

        ids = sorted(touched)
        state = scoring.state
        values = state.rows(ids)
        matrix = FeatureMatrix(np.array(ids, dtype=object), values, state.names)
        live = scoring.live
        per_member = {m.model_id: np.asarray(m.detector.score(matrix), np.float64)
                      for m in scoring.active}
        contributions = None
        if live.single is not None:
            scores = per_member[live.model_id]
        else:
            wide = np.column_stack([per_member.get(m.model_id, np.zeros(len(ids)))
                                    for m in live.members])
            scores, contributions = live.combiner.combine(wide)
        risk = calibration.risk(scores) if calibration else np.full(len(ids), np.nan)
        verdicts: dict[str, Any] = {}
        records: dict[str, ScoreRecord] = {}
        fresh: list[str] = []
        segments: dict[str, tuple[dt.datetime, str, str]] = {}
        for i, sid in enumerate(ids):
            start_us, first_us, country = state.segment(sid)
            tenure = "new" if start_us - first_us < 7 * 86_400_000_000 else "returning"
            threshold = policy.in_force.at(tenure=tenure, country=country)
            flagged = bool(scores[i] >= threshold)
            value = float(scores[i])
            reasons: tuple[str, ...] = ()
            if flagged:
                reasons = self.scorer.explained(sid) or (quick_reasons(
                    state.names, values[i], *scoring.scale) if scoring.scale else ()) or (
                    f"score {value:.4g} is at or above the policy threshold {threshold:.4g} "
                    f"for a {tenure} user in {country}",)
            verdicts[sid] = Verdict(sid, value, None if not np.isfinite(risk[i])
                                    else round(float(risk[i]), 1), flagged, reasons,
                                    provisional=state.pending(sid))
            records[sid] = ScoreRecord(touched[sid], sid, {
                m: float(v[i]) for m, v in per_member.items()}, value,
                None if contributions is None else contributions[i].copy())
            segments[sid] = (_EPOCH + dt.timedelta(microseconds=start_us), tenure, country)
            if flagged and sid not in scoring.alerted:
                fresh.append(sid)
        alerts = self._alerts(scoring, fresh, verdicts, segments, policy.daily_budget)
        self.stats["scored"] += len(ids)
        with self._cond:
            self._handoff.scores.update(records)
            self._handoff.alerts.extend((touched[a["session_id"]], a) for a in alerts)
        return verdicts

    def _alerts(self, scoring: _Scoring, fresh: list[str], verdicts: dict[str, Any],
                segments: dict[str, tuple[dt.datetime, str, str]], budget: int | None
                ) -> list[dict[str, Any]]:
        """The newly flagged sessions that become alerts (the daily budget, highest first:
        ``LiveScorer._within_budget``'s rule); the others are answered not flagged."""
        from dataclasses import replace

        out = []
        for sid in sorted(fresh, key=lambda s: -(verdicts[s].score or 0.0)):
            start = segments[sid][0]
            day = start.date()
            if budget is not None and scoring.per_day.get(day, 0) >= budget:
                v = verdicts[sid]
                verdicts[sid] = replace(v, flagged=False, reasons=(
                    f"score {v.score:.4g} is above the policy threshold, but the policy's "
                    f"daily budget of {budget} alerts for {day.isoformat()} is spent",))
                continue
            scoring.per_day[day] = scoring.per_day.get(day, 0) + 1
            scoring.alerted.add(sid)
            self.scorer.remember(sid, verdicts[sid].reasons)  # later answers keep them
            live = scoring.state.live[sid]
            end = _EPOCH + dt.timedelta(microseconds=live.summary.end_us)
            out.append({"session_id": sid, "user_id": live.user_id,
                        "model_id": scoring.model_id, "score": verdicts[sid].score,
                        "risk": verdicts[sid].risk, "event_ts": end,
                        "reasons": list(verdicts[sid].reasons)})
        return out

    def _evict(self) -> None:
        """Drop closed sessions' events once the store holds them."""
        if not self._closing:
            return
        with self._cond:
            stored = self._store_applied
        keep = []
        for sid in self._closing:
            if self._last_seq_of.get(sid, 0) <= stored:
                self._last_seq_of.pop(sid, None)
                if self._state is not None:
                    self._state.close(sid)
            else:
                keep.append(sid)
        self._closing = keep

    def _publish(self, last_seq: int, outcomes: list[FastOutcome],
                 verdicts: dict[str, Any]) -> None:
        self._record(last_seq, outcomes, verdicts)
        self._answer_waiting()
        for wake in self.on_published:
            wake()
