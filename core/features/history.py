"""Point-in-time history features: the user's rolling windows, the entities a session touches,
and the delayed fraud-label risk of those entities.

Rule (checked by tests/core/test_history_features.py): a session's history features use its
own events, the events of *other* sessions with a timestamp strictly before the session's
start, and the labels of sessions that started more than ``delay_days`` before it; never
anything later. A window ``w`` is the half-open interval ``[start - w, start)``.

How. DuckDB returns numbers (core.store.history): sessions, events with an amount, and for
each entity column the *first use* of each value in each session (the session's first event
with that value; a value counts in a window when such a first use falls in it). numpy then
answers every window as a difference of prefix sums over rows sorted by (key, time), found
with ``searchsorted``: rows are times, queries are session starts, and "row time < query
time" is exact in integer microseconds (packed with the key into one int64; ranks among the
session starts when keys x time span would not fit).
Two kinds of row:

* additive (counts, amounts, fraud labels): a row at time ``s`` is in the window of a
  query at ``t`` when ``s < t <= s + w``; the sum is ``C(s < t) - C(s + w < t)``;
* distinct values (a user's devices, an entity's users): a value is in the window when one
  of its occurrences is; exactly one in-window occurrence has its previous occurrence (of the
  same user and value) ``p`` before ``t - w``, so each occurrence counts for
  ``max(s, p + w) < t <= s + w``, again two prefix counts.

The window maximum (the user's largest amount) is a ``maximum.reduceat`` over the rows in
the window. An entity session that touches several values of a column (several items) takes
the largest value of each feature. Values: counts and amounts are log-scaled (``log1p``, or
signed for amounts), shares lie in [0, 1], and missing is 0 as for every feature.

Label risk of an entity in window ``w``: labelled sessions touching it with start in
``[t - delay - w, t - delay)`` (and their use of the value before ``t``); the share of fraud
among them is smoothed as the mean of a Beta(0, ``prior``) posterior,
``fraud / (labelled + prior)``: with no labels it is 0, one fraud of one labelled is 0.5
(prior 1), 9 of 9 is 0.9. docs/FEATURES.md lists the columns.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pandas as pd

import core.store.history as sql
from core.errors import ConfigError, ModelError, StoreError

log = logging.getLogger(__name__)

ENTITY_COLUMNS: tuple[str, ...] = ("item_id", "merchant_id", "device_id", "ip", "payment_id",
                                   "country")
"""Entity columns, in column order; a spec keeps those with values in training."""
USER_DISTINCT_COLUMNS: tuple[str, ...] = ("device_id", "ip", "payment_id", "merchant_id")
"""Columns whose distinct values per user and window are counted."""
SHORT = {"item_id": "item", "merchant_id": "merchant", "device_id": "device", "ip": "ip",
         "payment_id": "payment", "country": "country"}

DEFAULT_USER_WINDOWS = ("1h", "1d", "7d", "30d")
DEFAULT_ENTITY_WINDOWS = ("1d", "7d")
DEFAULT_LABEL_WINDOWS = ("1d", "7d", "30d")
DEFAULT_DELAY_DAYS = 7.0
DEFAULT_PRIOR = 1.0

_DIRECT_BITS = 62  # keys pack (key, microseconds) below 2**this, else (key, rank of time)
_UNITS_US = {"m": 60_000_000, "h": 3_600_000_000, "d": 86_400_000_000}
_WINDOW = re.compile(r"([1-9][0-9]{0,4})([mhd])")


def window_us(window: str) -> int:
    """Microseconds of a window written as ``<n>m``, ``<n>h`` or ``<n>d``.

    >>> window_us("1h")
    3600000000
    """
    match = _WINDOW.fullmatch(str(window))
    if match is None:
        raise ConfigError(
            f"history window must look like 30m, 1h or 7d, got {window!r}. Write a whole "
            "number followed by m, h or d.")
    return int(match.group(1)) * _UNITS_US[match.group(2)]


@dataclass(frozen=True)
class HistorySpec:
    """Which history features a model uses (saved with its feature spec).

    ``entity_columns`` are learned from the training events (the columns of
    :data:`ENTITY_COLUMNS` that hold values); the windows and the label delay are settings.
    """

    enabled: bool = True
    entity_columns: tuple[str, ...] = ()
    user_windows: tuple[str, ...] = DEFAULT_USER_WINDOWS
    entity_windows: tuple[str, ...] = DEFAULT_ENTITY_WINDOWS
    label_windows: tuple[str, ...] = DEFAULT_LABEL_WINDOWS
    delay_days: float = DEFAULT_DELAY_DAYS
    prior: float = DEFAULT_PRIOR

    def __post_init__(self) -> None:
        for name in ("entity_columns", "user_windows", "entity_windows", "label_windows"):
            object.__setattr__(self, name, tuple(str(v) for v in getattr(self, name)))
        bad = [c for c in self.entity_columns if c not in ENTITY_COLUMNS]
        if bad:
            raise ConfigError(f"history entity columns must be among {ENTITY_COLUMNS}, got "
                              f"{bad}. Leave them to be learned from the training events.")
        windows = (*self.user_windows, *self.entity_windows, *self.label_windows)
        for w in windows:
            window_us(w)
        for name in ("user_windows", "entity_windows", "label_windows"):
            values = getattr(self, name)
            if len(set(values)) != len(values):
                raise ConfigError(f"history {name} must be distinct, got {list(values)}.")
        if not self.user_windows:
            raise ConfigError("history user_windows must name at least one window, got none.")
        delay, prior = self.delay_days, self.prior
        if not (isinstance(delay, int | float) and 0 <= delay <= 3650):
            raise ConfigError(f"history delay_days must be a number of days in [0, 3650], got "
                              f"{delay!r}. Use the days a fraud label takes to arrive.")
        if not (isinstance(prior, int | float) and 0 < prior <= 1000):
            raise ConfigError(f"history prior must be a number in (0, 1000], got {prior!r}.")

    @property
    def user_distinct(self) -> tuple[str, ...]:
        return tuple(c for c in USER_DISTINCT_COLUMNS if c in self.entity_columns)

    @property
    def _velocity(self) -> tuple[str, str] | None:
        """(short, long) windows of the velocity features: the first of at least a day and
        the longest; None when they coincide."""
        by_len = sorted(self.user_windows, key=window_us)
        days = [w for w in by_len if window_us(w) >= _UNITS_US["d"]]
        if not days or days[0] == by_len[-1]:
            return None
        return days[0], by_len[-1]

    @property
    def names(self) -> tuple[str, ...]:
        if not self.enabled:
            return ()
        out: list[str] = []
        for w in self.user_windows:
            out += [f"hu_sessions_log[{w}]", f"hu_payments_log[{w}]",
                    f"hu_amount_sum_log[{w}]", f"hu_amount_mean_log[{w}]",
                    f"hu_amount_max_log[{w}]"]
            out += [f"hu_distinct_{SHORT[c]}_log[{w}]" for c in self.user_distinct]
        velocity = self._velocity
        if velocity is not None:
            short, long = velocity
            out += [f"hu_amount_vs_mean_log[{long}]", f"hu_sessions_velocity_log[{short}/{long}]",
                    f"hu_amount_velocity_log[{short}/{long}]"]
        for c in self.entity_columns:
            for w in self.entity_windows:
                out += [f"he_sessions_log[{SHORT[c]},{w}]", f"he_users_log[{SHORT[c]},{w}]",
                        f"he_amount_log[{SHORT[c]},{w}]", f"he_new_user_share[{SHORT[c]},{w}]"]
            out += [f"he_fraud_risk[{SHORT[c]},{w}]" for w in self.label_windows]
        return tuple(out)

    def to_dict(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "entity_columns": list(self.entity_columns),
                "user_windows": list(self.user_windows),
                "entity_windows": list(self.entity_windows),
                "label_windows": list(self.label_windows), "delay_days": self.delay_days,
                "prior": self.prior}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HistorySpec:
        try:
            return cls(bool(data.get("enabled", True)), tuple(data.get("entity_columns", ())),
                       tuple(data.get("user_windows", DEFAULT_USER_WINDOWS)),
                       tuple(data.get("entity_windows", DEFAULT_ENTITY_WINDOWS)),
                       tuple(data.get("label_windows", DEFAULT_LABEL_WINDOWS)),
                       float(data.get("delay_days", DEFAULT_DELAY_DAYS)),
                       float(data.get("prior", DEFAULT_PRIOR)))
        except (TypeError, ValueError, ConfigError) as exc:
            raise ModelError(f"history feature spec is damaged ({exc}). Retrain the model.") \
                from exc


def learn_history(con: duckdb.DuckDBPyConnection, request: HistorySpec,
                  relation: str = "events", params: dict[str, Any] | None = None,
                  ) -> HistorySpec | None:
    """``request`` with the entity columns that hold values in the training events
    (``relation``, with its bound ``params``); None when not enabled."""
    if not request.enabled:
        return None
    columns = sql.present_columns(con, ENTITY_COLUMNS, relation, params)
    return HistorySpec(True, tuple(columns), request.user_windows, request.entity_windows,
                       request.label_windows, request.delay_days, request.prior)


# ----------------------------------------------------------------------------- window arithmetic


class _Clock:
    """Exact "row time < query time" as integer keys sorted by (key, time).

    Queries are session starts. When (keys x time span) fits 62 bits, a key is
    ``k * span + (x - first start)`` in microseconds, the span long enough for every row time
    plus the longest shift (window and delay), so shifting a sorted row's time by ``w`` adds
    ``w`` to its key. Otherwise times become ranks among the starts (a row time maps to the
    number of starts ``<= x``, a start ``t`` to the number of starts ``<= t``, and ``x < t``
    exactly when the first is smaller)."""

    def __init__(self, starts: np.ndarray, last_us: int, max_shift: int, n_keys: int) -> None:
        self.t0 = int(starts.min()) if len(starts) else 0
        self.span = max(last_us - self.t0, 0) + max_shift + 2
        self.direct = (n_keys + 1) * self.span < 2**_DIRECT_BITS
        if not self.direct:
            self.times = np.unique(starts)
            self.span = len(self.times) + 2
            if (n_keys + 1) * self.span >= 2**62:  # pragma: no cover - > 2^62 (key, start)
                raise StoreError("history features: too many distinct keys and times to pack.")

    def keys(self, k: np.ndarray, x: np.ndarray) -> np.ndarray:
        """(k * span + time) * 2: the lowest bit is left for a flag."""
        if self.direct:
            offset = x - self.t0
        else:
            offset = np.searchsorted(self.times, x, side="right")
        return (k.astype(np.int64) * self.span + offset) * 2


class _Queries:
    """Query keys (key, start) sorted once: ``searchsorted`` of sorted keys runs in cache."""

    def __init__(self, clock: _Clock, kq: np.ndarray, tq: np.ndarray) -> None:
        keys = clock.keys(kq, tq)
        self.order = np.argsort(keys)
        self.sorted = keys[self.order]

    def find(self, rows: np.ndarray) -> np.ndarray:
        """Per query (in query order): the rows (sorted keys) of smaller key, or of the same
        key and an earlier time."""
        out = np.empty(len(self.order), dtype=np.int64)
        out[self.order] = np.searchsorted(rows, self.sorted)
        return out


def _prefix(values: np.ndarray) -> np.ndarray:
    out = np.zeros(len(values) + 1, dtype=values.dtype if values.dtype.kind == "i"
                   else np.float64)
    np.cumsum(values, out=out[1:])
    return out


class _Windows:
    """Rows (key, time) sorted once; per query, the rows in ``[t - w, t)`` as positions
    [lo, hi) in sorted order. A 0/1 ``flag`` rides in the keys' lowest bit (the rows then sort
    without an argsort); with ``values`` the rows are sorted by an argsort, kept in
    ``order``, so that values can follow."""

    def __init__(self, clock: _Clock, k: np.ndarray, s: np.ndarray,
                 flag: np.ndarray | None = None, values: bool = False) -> None:
        self.clock = clock
        keys = clock.keys(k, s)
        if not values:
            self.keys = np.sort(keys + (0 if flag is None else flag))
            self.flags = _prefix(self.keys & 1) if flag is not None else None
        else:
            self.order = np.argsort(keys, kind="stable")
            self.keys = keys[self.order]
            self.flags = None if flag is None else _prefix(flag[self.order])
        if not clock.direct:  # ranks cannot be shifted: keep the rows' keys and times
            order = self.order if values else np.argsort(keys, kind="stable")
            self.k, self.s = k[order], s[order]

    def below(self, q: _Queries, w: int = 0) -> np.ndarray:
        """Per query: rows of smaller key, or of its key with ``s + w < t``."""
        if w == 0:
            return q.find(self.keys)
        if self.clock.direct:  # the keys shifted by w stay sorted
            return q.find(self.keys + 2 * w)
        return q.find(self.clock.keys(self.k, self.s + w))

    def bounds(self, q: _Queries, w: int) -> tuple[np.ndarray, np.ndarray]:
        """Positions [lo, hi) in sorted order of each query's rows with t - w <= s < t."""
        return self.below(q, w), self.below(q)

    def prefix(self, values: np.ndarray) -> np.ndarray:
        return _prefix(values[self.order])


def _interval_counts(clock: _Clock, k: np.ndarray, a: np.ndarray, b: np.ndarray,
                     flag: np.ndarray, q: _Queries) -> tuple[np.ndarray, np.ndarray]:
    """Per query (key, t): the rows of that key with ``a < t <= b`` (rows with a >= b never
    count), and how many of them have ``flag`` 1."""
    keep = a < b
    k, a, b, bit = k[keep], a[keep], b[keep], flag[keep]
    rows, flagged = [], []
    for x in (a, b):  # both sides hold the same rows: the other keys' rows cancel
        keys = np.sort(clock.keys(k, x) + bit)
        at = q.find(keys)
        rows.append(at)
        flagged.append(_prefix(keys & 1)[at])
    return rows[0] - rows[1], flagged[0] - flagged[1]


def _distinct_counts(clock: _Clock, k: np.ndarray, s: np.ndarray, prev: np.ndarray,
                     q: _Queries, lo: np.ndarray, w: int) -> np.ndarray:
    """Per query: distinct values of key ``k`` used in [t - w, t). The uses are (k, s),
    ``lo`` their ``_Windows.below(q, w)``, ``prev`` each use's previous use of the same
    (k, value): a use counts for ``max(s, prev + w) < t <= s + w`` (an interval, as
    prev <= s)."""
    a = np.maximum(s, prev + w)
    return q.find(np.sort(clock.keys(k, a))) - lo


def _log1p(x: np.ndarray) -> np.ndarray:
    return np.log1p(np.maximum(x, 0))


def _slog(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.log1p(np.abs(x))


def _share(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.maximum(den, 1), 0.0)


def _per_session_max(session: np.ndarray, n: int, columns: dict[str, np.ndarray],
                     ) -> dict[str, np.ndarray]:
    """The largest value per session of each column (0 for sessions without rows)."""
    in_order = len(session) < 2 or bool((session[1:] >= session[:-1]).all())
    order = slice(None) if in_order else np.argsort(session, kind="stable")
    seg = session[order]
    if len(seg) == 0:
        return {name: np.zeros(n) for name in columns}
    starts = np.flatnonzero(np.r_[True, seg[1:] != seg[:-1]])
    out = {}
    for name, values in columns.items():
        full = np.zeros(n)
        full[seg[starts]] = np.maximum.reduceat(values[order].astype(np.float64), starts)
        out[name] = full
    return out


# ----------------------------------------------------------------------------- the features


def history_feature_columns(con: duckdb.DuckDBPyConnection, spec: HistorySpec,
                            session_ids: Sequence[Any] | np.ndarray,
                            ) -> dict[str, np.ndarray]:
    """Feature name -> float64 column aligned with ``session_ids`` (every session of the
    events table counts as history, whichever sessions are asked for)."""
    if not spec.enabled:
        return {}
    started = time.perf_counter()
    with sql.HistoryQueries(con) as queries:
        f = _build(queries, spec, started)
        sess_ids = f.pop("_session_id")
        timings = queries.timings
    at = pd.Index(sess_ids).get_indexer(pd.Index(np.asarray(session_ids, dtype=object)))
    if (at < 0).any():  # pragma: no cover - the caller's sessions come from the same table
        raise StoreError("history features: a session has no events.")
    log.info("history features: %d sessions in %.2fs (%s)", len(at),
             time.perf_counter() - started,
             ", ".join(f"{k} {v:.2f}s" for k, v in timings.items()))
    return {name: np.nan_to_num(f[name][at], nan=0.0, posinf=0.0, neginf=0.0)
            for name in spec.names}


def _build(queries: sql.HistoryQueries, spec: HistorySpec, started: float,
           ) -> dict[str, np.ndarray]:
    timings = queries.timings
    sess = queries.sessions()
    n = len(sess["start_us"])
    start = sess["start_us"].astype(np.int64)
    user = sess["user_code"].astype(np.int64)
    f: dict[str, np.ndarray] = {"_session_id": sess["session_id"]}

    # The user's first session (earliest start, ties by row) makes its user "new".
    first_order = np.lexsort((start, user))
    is_first = np.zeros(n, dtype=np.int64)
    u_sorted = user[first_order]
    is_first[first_order[np.r_[True, u_sorted[1:] != u_sorted[:-1]]]] = 1

    # Per user: sessions, amounts and distinct entities in each window.
    uses = {c: queries.first_uses(c) for c in spec.entity_columns}
    n_keys = max([int(user.max(initial=0)) + 1,
                  *(int(u["code"].max(initial=0)) + 1 for u in uses.values())])
    windows = [window_us(w) for w in (*spec.user_windows, *spec.entity_windows)]
    longest_label = max((window_us(w) for w in spec.label_windows), default=0)
    delay = int(round(spec.delay_days * _UNITS_US["d"]))
    clock = _Clock(start, int(sess["last_us"].max(initial=0)),
                   max([*windows, delay + longest_label]), n_keys)
    per_user = _Queries(clock, user, start)
    by_user = _Windows(clock, user, start)
    amounts = queries.amount_events(spec.entity_columns)
    a_sess = amounts["sidx"].astype(np.int64)
    a_t = amounts["t"].astype(np.int64)
    a_amount = amounts["amount"].astype(np.float64)
    pay = _Windows(clock, user[a_sess], a_t, values=True)
    pay_sum = pay.prefix(a_amount)
    pay_sorted = np.r_[a_amount[pay.order], 0.0]
    per_window: dict[str, dict[str, np.ndarray]] = {}
    user_uses: dict[str, _Windows] = {}
    for w in spec.user_windows:
        us = window_us(w)
        lo, hi = by_user.bounds(per_user, us)
        n_sessions = (hi - lo).astype(np.float64)
        lo, hi = pay.bounds(per_user, us)
        count = (hi - lo).astype(np.float64)
        total = pay_sum[hi] - pay_sum[lo]
        has = hi > lo
        biggest = np.zeros(n)
        if has.any():  # queries in window order, so the skipped stretches add up to <= N
            which = np.flatnonzero(has)
            which = which[np.argsort(lo[which], kind="stable")]
            idx = np.empty(2 * len(which), dtype=np.int64)
            idx[0::2], idx[1::2] = lo[which], hi[which]
            biggest[which] = np.maximum.reduceat(pay_sorted, idx)[0::2]
        mean = _share(total, count)
        per_window[w] = {"sessions": n_sessions, "sum": total, "mean": mean}
        f[f"hu_sessions_log[{w}]"] = _log1p(n_sessions)
        f[f"hu_payments_log[{w}]"] = _log1p(count)
        f[f"hu_amount_sum_log[{w}]"] = _slog(total)
        f[f"hu_amount_mean_log[{w}]"] = _slog(mean)
        f[f"hu_amount_max_log[{w}]"] = np.where(has, _slog(biggest), 0.0)
        for c in spec.user_distinct:
            u = uses[c]
            k = user[u["sidx"]]
            if c not in user_uses:
                user_uses[c] = _Windows(clock, k, u["t"])
            f[f"hu_distinct_{SHORT[c]}_log[{w}]"] = _log1p(_distinct_counts(
                clock, k, u["t"], u["prev"], per_user,
                user_uses[c].below(per_user, us), us).astype(np.float64))
    velocity = spec._velocity
    if velocity is not None:
        short, long = velocity
        scale = window_us(short) / window_us(long)
        s_mean = _share(sess["amount_sum"], sess["n_amounts"].astype(np.float64))
        longer, shorter = per_window[long], per_window[short]
        has_both = (sess["n_amounts"] > 0) & (longer["mean"] != 0)
        f[f"hu_amount_vs_mean_log[{long}]"] = np.where(
            has_both, _slog(s_mean) - _slog(longer["mean"]), 0.0)
        f[f"hu_sessions_velocity_log[{short}/{long}]"] = np.where(
            longer["sessions"] > 0,
            _log1p(shorter["sessions"]) - _log1p(longer["sessions"] * scale), 0.0)
        f[f"hu_amount_velocity_log[{short}/{long}]"] = np.where(
            longer["sum"] != 0, _slog(shorter["sum"]) - _slog(longer["sum"] * scale), 0.0)
    timings["user"] = time.perf_counter() - started

    # Per entity: sessions, users, amount and new users in windows; delayed label risk.
    labels = queries.session_labels()
    labelled = np.zeros(n, dtype=bool)
    fraud = np.zeros(n, dtype=np.int64)
    labelled[labels["sidx"].astype(np.int64)] = True
    fraud[labels["sidx"].astype(np.int64)] = labels["is_anomaly"].astype(np.int64)
    for c in spec.entity_columns:
        u = uses[c]
        u_sess, v, u_t = u["sidx"].astype(np.int64), u["code"].astype(np.int64), u["t"]
        out: dict[str, np.ndarray] = {}
        rows = _Windows(clock, v, u_t, flag=is_first[u_sess])
        per_use = _Queries(clock, v, start[u_sess])
        code = amounts[f"code_{c}"].astype(np.int64)
        known = code >= 0
        amount_rows = _Windows(clock, code[known], a_t[known], values=True)
        amount_sum = amount_rows.prefix(a_amount[known])
        for w in spec.entity_windows:
            us = window_us(w)
            lo, hi = rows.bounds(per_use, us)
            lo_use = lo
            n_sess = (hi - lo).astype(np.float64)
            assert rows.flags is not None
            n_new = (rows.flags[hi] - rows.flags[lo]).astype(np.float64)
            lo, hi = amount_rows.bounds(per_use, us)
            name = f"{SHORT[c]},{w}"
            out[f"he_sessions_log[{name}]"] = _log1p(n_sess)
            out[f"he_users_log[{name}]"] = _log1p(_distinct_counts(
                clock, v, u_t, u["prev"], per_use, lo_use, us).astype(np.float64))
            out[f"he_amount_log[{name}]"] = _slog(amount_sum[hi] - amount_sum[lo])
            out[f"he_new_user_share[{name}]"] = _share(n_new, n_sess)
        lab = labelled[u_sess]
        l_start = start[u_sess][lab]
        a = np.maximum(l_start + delay, u_t[lab])
        for w in spec.label_windows:
            if lab.any():
                n_lab, n_fraud = _interval_counts(clock, v[lab], a,
                                                  l_start + delay + window_us(w),
                                                  fraud[u_sess][lab], per_use)
                risk = n_fraud / (n_lab + spec.prior)
            else:
                risk = np.zeros(len(v))
            out[f"he_fraud_risk[{SHORT[c]},{w}]"] = risk
        f |= _per_session_max(u_sess, n, out)
        del out, rows, per_use, amount_rows, amount_sum, u, uses[c], amounts[f"code_{c}"]
        user_uses.pop(c, None)
        timings[f"entity_{c}"] = time.perf_counter() - started
    return f
