"""Session features in memory, equal to the batch build's, for the scoring service.

The service answers a request from this state instead of the store: each open session keeps
its events (a few dozen in e-commerce), and a touched session's row is recomputed from them
in Python, with what crosses sessions kept beside them and updated as events arrive:

- per user, a summary of every session (start, end, largest amount, the devices, IPs,
  countries and payment ids used): the history features (earlier sessions in (start,
  session id) order, as the batch ranks them) and the user's first session;
- per device and IP, each user's first use: point-in-time sharing;
- per text, each user's first use, and the unit embedding of every text: duplicates, the
  embedding means and the similarity to other users' long texts by the session's end.

``OnlineState.load`` reads all of that from the store once (one grouped scan of the events
table); from then on the service is the store's only writer, so every later event passes
through ``apply`` first. Definitions follow ``core.features.session`` and
``core.text.features`` line by line (docs/FEATURES.md); ``tests/core/serve/
test_online_features.py`` checks the rows against the batch build on sample data. Specs with
entity history or whole-table sharing are not supported here (``supports``): the service
scores them through the store, as before. Extra columns are read by
``core.serve.online_extras``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.features.spec import (
    ADD_TO_CART,
    NIGHT_HOURS,
    OTHER_BUCKET,
    PAYMENT_ATTEMPT,
    PAYMENT_FAILED,
    POINT_IN_TIME,
    REMOVE_FROM_CART,
    SMALL_AMOUNT,
    FeatureSpec,
)
from core.serve.online_extras import ExtraReader

_US_PER_DAY = 86_400_000_000
_NOVEL = ("device_id", "ip", "country", "payment_id")
_SHORT = {"device_id": "device", "ip": "ip", "country": "country", "payment_id": "payment_id"}
_SHARED = ("device_id", "ip")
_NEVER = np.iinfo(np.int64).max


def supports(spec: FeatureSpec) -> str | None:
    """None when this module builds ``spec``'s rows exactly, else why not."""
    if spec.sharing != POINT_IN_TIME:
        return "the model's features count device and IP sharing over the whole table"
    if spec.history is not None and spec.history.enabled:
        return "the model uses entity history features"
    return None


@dataclass(slots=True)
class Event:
    t_us: int
    event_id: str
    event_type: str
    amount: float | None = None
    quantity: int | None = None
    device_id: str | None = None
    ip: str | None = None
    country: str | None = None
    user_agent: str | None = None
    payment_id: str | None = None
    item_id: str | None = None
    category: str | None = None
    text: str | None = None
    extra: str | None = None  # the extra fields' JSON text
    extra_values: tuple[Any, ...] | None = None  # what the spec's extra columns read of it


@dataclass(slots=True)
class Summary:
    """What later sessions of the user need of a session."""

    session_id: str
    start_us: int
    end_us: int
    n_events: int = 0
    amount_max: float = math.nan
    country: str | None = None  # the smallest, as the sessions table keeps it
    values: dict[str, set[str]] = field(default_factory=lambda: {c: set() for c in _NOVEL})

    def add(self, e: Event) -> None:
        self.start_us = min(self.start_us, e.t_us)
        self.end_us = max(self.end_us, e.t_us)
        self.n_events += 1
        if e.amount is not None and not e.amount <= self.amount_max:  # NaN-skipping max
            self.amount_max = e.amount
        for col in _NOVEL:
            v = getattr(e, col)
            if v is not None:
                self.values[col].add(v)
        if e.country is not None and (self.country is None or e.country < self.country):
            self.country = e.country


@dataclass(slots=True)
class LiveSession:
    user_id: str
    summary: Summary
    events: list[Event] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)


class OnlineState:
    """The feature state; not thread-safe (the service's scorer thread owns it)."""

    def __init__(self, spec: FeatureSpec) -> None:
        reason = supports(spec)
        if reason is not None:
            raise ValueError(f"online features must have a supported spec, got one where {reason}.")
        self.spec = spec
        self.names = spec.names
        self.users: dict[str, dict[str, Summary]] = {}
        self.live: dict[str, LiveSession] = {}
        self.first_use: dict[str, dict[str, dict[str, int]]] = {c: {} for c in _SHARED}
        self.text_users: dict[str, dict[str, int]] = {}
        self.vectors: dict[str, np.ndarray] = {}
        self._text_sessions: dict[str, set[str]] = {}  # text -> live sessions holding it
        self._extras = (ExtraReader(spec.extras)
                        if spec.extras is not None and spec.extras.columns else None)
        self._spec_types = {t: i for i, t in enumerate(spec.event_types)}
        self._novel_types = set(spec.novelty.event_types) if spec.novelty else set()
        self._transitions = (set(spec.novelty.transitions)
                             if spec.novelty and spec.novelty.transitions is not None else None)
        text = spec.text
        self._min_sim = text.min_sim_chars if text is not None else 0
        self._refs: dict[str, int] = {}  # long text -> row of the reference arrays
        self._ref_vecs = np.zeros((0, text.dim if text is not None else 0), np.float32)
        self._ref_t1 = np.zeros(0, np.int64)
        self._ref_u1 = np.zeros(0, np.int64)  # user codes of the first writers
        self._user_code: dict[str, int] = {}
        self._n_refs = 0
        self._ref_t2 = np.zeros(0, np.int64)

    # -- filling ---------------------------------------------------------------------------
    def add_summary(self, user_id: str, summary: Summary) -> None:
        self.users.setdefault(user_id, {})[summary.session_id] = summary

    def add_first_use(self, column: str, value: str, user_id: str, t_us: int) -> None:
        users = self.first_use[column].setdefault(value, {})
        if t_us < users.get(user_id, _NEVER):
            users[user_id] = t_us

    def add_text_use(self, text: str, user_id: str, t_us: int) -> None:
        users = self.text_users.setdefault(text, {})
        if t_us < users.get(user_id, _NEVER):
            users[user_id] = t_us
            if self.spec.text is not None and len(text) >= self._min_sim:
                self._update_ref(text, users)

    def add_vectors(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        """Unit embeddings of ``texts`` (the encoder's, or the store's cache)."""
        for text, vector in zip(texts, vectors, strict=True):
            self.vectors[text] = np.asarray(vector, np.float32)
            if text in self._refs:
                self._ref_vecs[self._refs[text]] = vector

    def missing_vectors(self, texts: Iterable[str]) -> list[str]:
        return sorted({t for t in texts if t not in self.vectors})

    def _update_ref(self, text: str, users: dict[str, int]) -> None:
        firsts = sorted(users.items(), key=lambda kv: kv[1])[:2]
        row = self._refs.get(text)
        if row is None:
            row = self._refs[text] = self._n_refs
            self._n_refs += 1
            grow = max(16, len(self._ref_t1)) if row >= len(self._ref_t1) else 0
            if grow:
                self._ref_t1 = np.concatenate([self._ref_t1, np.full(grow, _NEVER)])
                self._ref_t2 = np.concatenate([self._ref_t2, np.full(grow, _NEVER)])
                self._ref_u1 = np.concatenate([self._ref_u1, np.full(grow, -1)])
                self._ref_vecs = np.concatenate(
                    [self._ref_vecs, np.zeros((grow, self._ref_vecs.shape[1]), np.float32)])
            vector = self.vectors.get(text)
            if vector is not None:
                self._ref_vecs[row] = vector
        self._ref_u1[row] = self._code(firsts[0][0])
        self._ref_t1[row] = firsts[0][1]
        self._ref_t2[row] = firsts[1][1] if len(firsts) > 1 else _NEVER

    def _code(self, user_id: str) -> int:
        return self._user_code.setdefault(user_id, len(self._user_code))

    # -- events ----------------------------------------------------------------------------
    def has_event(self, session_id: str, event_id: str) -> bool:
        live = self.live.get(session_id)
        return live is not None and event_id in live.ids

    def open_live(self, user_id: str, session_id: str, events: Sequence[Event] = ()) -> None:
        """Hold ``session_id``'s events in memory (a stored session's, when it continues)."""
        if session_id in self.live:
            return
        summary = self.users.get(user_id, {}).get(session_id)
        if summary is None:
            first = events[0].t_us if events else 0
            summary = Summary(session_id, first, first)
            self.add_summary(user_id, summary)
            for e in events:
                summary.add(e)
        live = LiveSession(user_id, summary, sorted(events, key=lambda e: e.t_us),
                           {e.event_id for e in events})
        self.live[session_id] = live
        for e in events:
            if e.text is not None:
                self._text_sessions.setdefault(e.text, set()).add(session_id)

    def apply(self, user_id: str, session_id: str, e: Event) -> None:
        """One new event of ``session_id`` (opened with ``open_live`` or new)."""
        live = self.live.get(session_id)
        if live is None:
            summary = Summary(session_id, e.t_us, e.t_us)
            self.add_summary(user_id, summary)
            live = self.live[session_id] = LiveSession(user_id, summary)
        live.summary.add(e)
        events = live.events
        if events and e.t_us < events[-1].t_us:  # late: keep time order
            at = len(events)
            while at > 0 and events[at - 1].t_us > e.t_us:
                at -= 1
            events.insert(at, e)
        else:
            events.append(e)
        live.ids.add(e.event_id)
        for col in _SHARED:
            v = getattr(e, col)
            if v is not None:
                self.add_first_use(col, v, user_id, e.t_us)
        if e.text is not None:
            self.add_text_use(e.text, user_id, e.t_us)
            self._text_sessions.setdefault(e.text, set()).add(session_id)

    def close(self, session_id: str) -> None:
        """Drop a closed session's events (its summary stays for the user's later ones)."""
        live = self.live.pop(session_id, None)
        for e in live.events if live is not None else ():
            held = self._text_sessions.get(e.text) if e.text is not None else None
            if held is not None:
                held.discard(session_id)
                if not held:
                    del self._text_sessions[e.text]

    # -- features --------------------------------------------------------------------------
    def rows(self, session_ids: Sequence[str]) -> np.ndarray:
        """(n, features) float32 in ``spec.names`` order, non-finite values as 0."""
        out = np.zeros((len(session_ids), len(self.names)), np.float32)
        if self._extras is not None:
            self._read_extras(session_ids)
        for i, sid in enumerate(session_ids):
            f = self._features(self.live[sid])
            row = np.array([f.get(name, math.nan) for name in self.names], np.float64)
            row = row.astype(np.float32)
            row[~np.isfinite(row)] = 0.0
            out[i] = row
        return out

    def _read_extras(self, session_ids: Sequence[str]) -> None:
        """Read the extra columns of the sessions' events not read yet (one query)."""
        todo = [e for sid in session_ids for e in self.live[sid].events
                if e.extra_values is None]
        if todo and self._extras is not None:
            for e, values in zip(todo, self._extras.read([e.extra for e in todo]),
                                 strict=True):
                e.extra_values = values

    def pending(self, session_id: str) -> bool:
        """A text of the session is not embedded yet: its row is provisional."""
        if self.spec.text is None:
            return False
        return any(e.text is not None and e.text not in self.vectors
                   for e in self.live[session_id].events)

    def sessions_with(self, texts: set[str]) -> list[str]:
        """The live sessions that hold any of ``texts``."""
        found: set[str] = set()
        for text in texts:
            found.update(self._text_sessions.get(text, ()))
        return sorted(found)

    def segment(self, session_id: str) -> tuple[int, int, str]:
        """(start_us, the user's first start_us, country or 'unknown') of a live session."""
        live = self.live[session_id]
        first = min(s.start_us for s in self.users[live.user_id].values())
        return live.summary.start_us, first, live.summary.country or "unknown"

    def _features(self, live: LiveSession) -> dict[str, float]:
        ev = live.events
        n = len(ev)
        s = live.summary
        start, end = ev[0].t_us, ev[-1].t_us
        f: dict[str, float] = {}
        ms = [_epoch_ms(e.t_us) for e in ev]
        gaps = [(ms[i + 1] - ms[i]) / 1000.0 for i in range(n - 1)]
        if gaps:
            mean = _fsum(gaps) / len(gaps)
            std = math.sqrt(_fsum([(g - mean) ** 2 for g in gaps]) / len(gaps))
            f |= {"gap_mean_log": _log1p(mean), "gap_std_log": _log1p(std),
                  "gap_min_log": _log1p(min(gaps)), "gap_max_log": _log1p(max(gaps)),
                  "gap_cv": std / mean if mean != 0 else math.nan}
        f["n_events_log"] = _log1p(float(n))
        f["duration_log"] = _log1p((_epoch_ms(end) - _epoch_ms(start)) / 1000.0)

        amounts = [e.amount for e in ev if e.amount is not None]
        if amounts:
            total, top = _fsum(amounts), max(amounts)
            n_small = sum(0 <= a < SMALL_AMOUNT for a in amounts)
            f |= {"amount_sum_log": _slog(total), "amount_max_log": _slog(top),
                  "amount_mean_log": _slog(total / len(amounts)),
                  "small_amount_share": n_small / len(amounts)}
        amount_max = max(amounts) if amounts else math.nan
        n_failed = sum(e.event_type == PAYMENT_FAILED for e in ev)
        n_attempt = sum(e.event_type == PAYMENT_ATTEMPT for e in ev)
        f["n_payment_failed_log"] = _log1p(float(n_failed))
        den = max(n_attempt, n_failed)
        f["payment_failure_ratio"] = n_failed / den if den else math.nan

        for col, name in (("device_id", "n_devices_log"), ("ip", "n_ips_log"),
                          ("country", "n_countries_log"), ("payment_id", "n_payment_ids_log"),
                          ("user_agent", "n_user_agents_log"),
                          ("category", "n_categories_log")):
            f[name] = _log1p(float(len({getattr(e, col) for e in ev} - {None})))
        f["n_items_log"] = _log1p(float(len({(e.item_id, e.category) for e in ev
                                              if e.item_id is not None})))

        # history: the user's sessions ranked by (start, session id)
        key = (s.start_us, s.session_id)
        earlier = [o for o in self.users[live.user_id].values()
                   if (o.start_us, o.session_id) < key]
        first_us = min(start, *(o.start_us for o in earlier)) if earlier else start
        n_prev = len(earlier)
        for col in _NOVEL:
            mine = {getattr(e, col) for e in ev} - {None}
            seen: set[str] = set().union(*(o.values[col] for o in earlier)) if earlier else set()
            f[f"is_new_{_SHORT[col]}"] = float(n_prev > 0 and bool(mine - seen))
        for col in _SHARED:
            others = 0
            for v in {getattr(e, col) for e in ev} - {None}:
                users = sum(t <= end for t in self.first_use[col].get(v, {}).values())
                others = max(others, users - 1)
            f[f"{_SHORT[col]}_other_users_log"] = _log1p(float(others))
        prev = [o.amount_max for o in earlier if not math.isnan(o.amount_max)]
        prev_max = max(prev) if prev else math.nan
        f["amount_vs_user_max_log"] = _slog(amount_max) - _slog(prev_max)
        f["is_amount_above_user_max"] = (math.nan if math.isnan(amount_max)
                                         or math.isnan(prev_max)
                                         else float(amount_max > prev_max))
        f["user_age_days_log"] = _log1p((_epoch_ms(start) - _epoch_ms(first_us))
                                        / (_US_PER_DAY / 1000))
        f["n_prev_sessions_log"] = _log1p(float(n_prev))
        start_s = start // 1_000_000
        hour, minute = (start_s % 86_400) // 3600, (start_s % 3600) // 60
        angle = 2 * np.pi * (hour + minute / 60.0) / 24
        f |= {"hour_sin": float(np.sin(angle)), "hour_cos": float(np.cos(angle)),
              "is_night": float(NIGHT_HOURS[0] <= hour < NIGHT_HOURS[1]),
              "is_weekend": float((start // _US_PER_DAY + 3) % 7 + 1 >= 6)}

        texts = [e.text for e in ev if e.text is not None]
        if texts:
            f["text_share"] = len(texts) / n
            f["text_len_mean_log"] = _log1p(sum(len(t) for t in texts) / len(texts))
            f["text_dup_share"] = sum(self._other_by(t, live.user_id, end) for t in texts
                                      ) / len(texts)
        qty = [e.quantity for e in ev if e.event_type == ADD_TO_CART and e.quantity is not None]
        f["cart_qty_max_log"] = _log1p(float(max(qty))) if qty else math.nan
        f["n_removed_after_add_log"] = _log1p(float(_removed_after_add(ev)))

        k = len(self.spec.event_types)
        counts = [0] * (k + 1)
        for e in ev:
            counts[self._spec_types.get(e.event_type, k)] += 1
        for i, t in enumerate((*self.spec.event_types, OTHER_BUCKET)):
            f[f"count_log[{t}]"] = float(np.float32(math.log1p(counts[i])))
            f[f"share[{t}]"] = float(np.float32(counts[i] / n))
        if self.spec.novelty is not None:
            unseen = sum(e.event_type not in self._novel_types for e in ev)
            pairs = 0
            if self._transitions is not None:
                pairs = sum((a.event_type, b.event_type) not in self._transitions
                            for a, b in zip(ev, ev[1:], strict=False))
            f |= {"unseen_event_types_log": _log1p(float(unseen)),
                  "unseen_transitions_log": _log1p(float(pairs)),
                  "unseen_transition_share": pairs / (n - 1) if n > 1 else math.nan}
        if self.spec.text is not None:
            f |= self._text_features(texts, live.user_id, end)
        if self._extras is not None:
            empty = (None,) * len(self._extras.columns)
            f |= self._extras.features([(e.t_us, e.extra_values or empty) for e in ev])
        return f

    def _other_by(self, text: str, user_id: str, end: int) -> bool:
        """Another user had written ``text`` by ``end``."""
        return any(u != user_id and t <= end for u, t in self.text_users.get(text, {}).items())

    def _text_features(self, texts: list[str], user_id: str, end: int) -> dict[str, float]:
        spec = self.spec.text
        assert spec is not None
        out = {f"text_emb_{i}": 0.0 for i in range(spec.n_components)}
        out["text_n_texts_log"] = math.log1p(len(texts))
        out["text_max_sim_other_users"] = 0.0
        texts = [t for t in texts if t in self.vectors]  # provisional without the others
        if not texts:
            return out
        projected = spec.project(np.stack([self.vectors[t] for t in texts]))
        sums = projected.sum(axis=0, dtype=np.float32).astype(np.float64) / len(texts)
        for i in range(spec.n_components):
            out[f"text_emb_{i}"] = float(sums[i])
        best = 0.0
        n_refs = self._n_refs
        me = self._user_code.get(user_id, -2)
        for text in {t for t in texts if len(t) >= self._min_sim}:
            if self._other_by(text, user_id, end):
                best = max(best, 1.0)
                continue
            if not n_refs:
                continue
            mine = self._ref_u1[:n_refs] == me
            other = np.where(mine, self._ref_t2[:n_refs], self._ref_t1[:n_refs])
            known = other <= end
            if known.any():
                sims = self._ref_vecs[:n_refs][known] @ self.vectors[text]
                best = max(best, float(sims.max()))
        out["text_max_sim_other_users"] = best
        return out


def _removed_after_add(ev: Sequence[Event]) -> int:
    first_add: dict[str, int] = {}
    last_remove: dict[str, int] = {}
    for e in ev:
        if e.item_id is None:
            continue
        if e.event_type == ADD_TO_CART:
            first_add[e.item_id] = min(first_add.get(e.item_id, _NEVER), e.t_us)
        elif e.event_type == REMOVE_FROM_CART:
            last_remove[e.item_id] = max(last_remove.get(e.item_id, -_NEVER), e.t_us)
    return sum(1 for item, t in first_add.items() if last_remove.get(item, -_NEVER) >= t)


def _epoch_ms(us: int) -> int:
    """DuckDB's epoch_ms: truncated towards zero."""
    return -(-us // 1000) if us < 0 else us // 1000


def _fsum(values: Sequence[float]) -> float:
    total = 0.0
    for v in values:
        total += v
    return total


def _log1p(x: float) -> float:
    return math.nan if math.isnan(x) else math.log1p(max(x, 0.0))


def _slog(x: float) -> float:
    if math.isnan(x):
        return math.nan
    return math.copysign(math.log1p(abs(x)), x) if x != 0 else 0.0


def event_from_row(row: dict[str, Any], t_us: int) -> Event:
    """An ``Event`` from a parsed request row (``core.serve.events_in``)."""
    return Event(t_us, row["event_id"], row["event_type"], row.get("amount"),
                 row.get("quantity"), row.get("device_id"), row.get("ip"), row.get("country"),
                 row.get("user_agent"), row.get("payment_id"), row.get("item_id"),
                 row.get("category"), row.get("text"), row.get("extra"))
