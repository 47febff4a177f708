"""Point-in-time history features: the user's rolling windows, the entities a session touches,
and the delayed fraud-label risk of those entities.

Rule (checked by tests/core/test_history_features.py): a session's history features use its
own events, the events of *other* sessions with a timestamp strictly before the session's
start, and the labels of sessions that started more than ``delay_days`` before it; never
anything later. A window ``w`` is the half-open interval ``[start - w, start)``.

How. DuckDB returns numbers (core.store.history): sessions, events with an amount (sorted
by user and time, and per entity column by value and time), and for each entity column the
*first use* of each value in each session (the session's first event with that value; a value
counts in a window when such a first use falls in it), sorted by (value, session start).
DuckDB runs these queries on a thread of its own, in the order numpy needs them, while numpy
answers every window as a difference of prefix sums over rows sorted by (key, time), found
with ``searchsorted`` of the sorted queries: rows are times, queries are session starts, and
"row time < query time" is exact in integer microseconds (packed with the key into one int64;
ranks among the session starts when keys x time span would not fit). The rows come sorted, so
numpy sorts only keys that carry no values (or rows a caller hands over unsorted).
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

import contextlib
import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
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

_AHEAD = 2  # entity columns whose amounts are fetched ahead
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
        out = k.astype(np.int64)  # in place from here: these arrays are large
        out *= self.span
        if self.direct:
            out += x
            out -= self.t0
        else:
            out += np.searchsorted(self.times, x, side="right")
        out *= 2
        return out




class _Queries:
    """Query keys (key, start), searched in sorted order (``searchsorted`` of sorted keys runs
    in cache); answers come back in query order, or stay in sorted order when the queries
    came sorted (``presorted``)."""

    def __init__(self, keys: np.ndarray, presorted: bool = False) -> None:
        self.order = None if presorted else np.argsort(keys)
        self.sorted = keys if self.order is None else keys[self.order]

    def find(self, rows: np.ndarray) -> np.ndarray:
        """Per query: the rows (sorted keys) of smaller key, or of the same key and an earlier
        time."""
        at = np.searchsorted(rows, self.sorted)
        if self.order is None:
            return at
        out = np.empty_like(at)
        out[self.order] = at
        return out


def _is_sorted(k: np.ndarray, s: np.ndarray) -> bool:
    """Whether the rows are sorted by (k, s)."""
    if len(k) < 2:
        return True
    dk = np.diff(k)
    return bool(((dk > 0) | ((dk == 0) & (s[1:] >= s[:-1]))).all())


def _prefix(values: np.ndarray) -> np.ndarray:
    out = np.zeros(len(values) + 1, dtype=values.dtype if values.dtype.kind == "i"
                   else np.float64)
    np.cumsum(values, out=out[1:])
    return out


class _Rows:
    """Rows (key, time) sorted once; ``below(q, w)`` counts, per query, the rows of a smaller
    key or of its key with ``s + w < t``, as a position in sorted order, so that prefix sums
    over that order (``flags``, ``sums``) give the window sums as differences.

    A 0/1 ``flag`` rides in the keys' lowest bit (the rows then sort without an argsort);
    rows with ``values`` come sorted by (key, exact time) from the store (else they are
    lexsorted here) so that values follow (``sums`` their prefix sums, ``values`` in sorted
    order). Shifting by ``w`` adds ``2 w`` to sorted
    direct keys; ranks cannot be shifted, so the rows keep their keys and times (sorted by
    exact time) and shifted keys are rebuilt (and, with a flag, sorted again with their own
    flag prefix)."""

    def __init__(self, clock: _Clock, k: np.ndarray, s: np.ndarray,
                 flag: np.ndarray | None = None, values: np.ndarray | None = None) -> None:
        self.clock = clock
        self.sums = self.values = None
        if values is None:
            keys = clock.keys(k, s)
            if flag is not None:
                keys += flag
            keys.sort()
            self.keys = keys
            self.flags = _prefix(keys & 1) if flag is not None else None
            if not clock.direct:
                self.k, self.s, self.flag = k, s, flag
        else:
            if _is_sorted(k, s):  # the store sorts them
                self.k, self.s, self.values = k, s, values
            else:  # by exact time (shifted ranks then stay sorted)
                order = np.lexsort((s, k))
                self.k, self.s, self.values = k[order], s[order], values[order]
            self.keys = clock.keys(self.k, self.s)
            self.sums = _prefix(self.values)
            self.flags = None

    def shifted(self, w: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Sorted keys of the rows at ``s + w`` and the prefix of their flags."""
        if w == 0:
            return self.keys, self.flags
        if self.clock.direct:
            return self.keys + 2 * w, self.flags
        keys = self.clock.keys(self.k, self.s + w)
        if self.values is not None:
            return keys, None
        if self.flag is None:
            keys.sort()
            return keys, None
        keys += self.flag
        keys.sort()
        return keys, _prefix(keys & 1)

    def below(self, q: _Queries, w: int = 0) -> np.ndarray:
        """Per query: rows of smaller key, or of its key with ``s + w < t``."""
        return q.find(self.shifted(w)[0])

    def below_flagged(self, q: _Queries, w: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """``below`` and, of those rows, how many have the flag."""
        keys, flags = self.shifted(w)
        at = q.find(keys)
        assert flags is not None
        return at, flags[at]


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
    has = np.zeros(n, dtype=bool)
    has[session] = True
    out = {}
    for name, values in columns.items():
        full = np.full(n, -np.inf)
        np.maximum.at(full, session, values)
        full[~has] = 0.0
        out[name] = full
    return out


@contextlib.contextmanager
def _no_hugepages() -> Iterator[None]:
    """numpy off ``madvise(MADV_HUGEPAGE)`` for new arrays while the build runs: the build
    makes hundreds of short-lived arrays of tens of MB, and with transparent huge pages on
    ``madvise`` (the common default) each first touch may compact memory in the kernel; on
    the 2-core VM this halved the system time (6 -> 3 CPU-s at 10M events). The previous
    setting comes back afterwards (it is process-wide; it only changes speed)."""
    setter = getattr(getattr(np, "_core", None), "multiarray", None)
    setter = getattr(setter, "_set_madvise_hugepage", None)
    if setter is None:  # pragma: no cover - another numpy
        yield
        return
    previous = setter(False)
    try:
        yield
    finally:
        setter(previous)


# ----------------------------------------------------------------------------- the features


def history_feature_columns(con: duckdb.DuckDBPyConnection, spec: HistorySpec,
                            session_ids: Sequence[Any] | np.ndarray,
                            ) -> dict[str, np.ndarray]:
    """Feature name -> float64 column aligned with ``session_ids`` (every session of the
    events table counts as history, whichever sessions are asked for)."""
    if not spec.enabled:
        return {}
    started = time.perf_counter()
    with _no_hugepages(), sql.HistoryQueries(con) as queries:
        f = _build(queries, spec, started)
        sess_ids = f.pop("_session_id")
        timings = queries.timings
    at = pd.Index(sess_ids).get_indexer(pd.Index(np.asarray(session_ids, dtype=object)))
    if (at < 0).any():  # pragma: no cover - the caller's sessions come from the same table
        raise StoreError("history features: a session has no events.")
    log.info("history features: %d sessions in %.2fs (%s)", len(at),
             time.perf_counter() - started,
             ", ".join(f"{k} {v:.2f}s" for k, v in timings.items()))
    return {name: np.nan_to_num(f.pop(name)[at], copy=False, nan=0.0, posinf=0.0, neginf=0.0)
            for name in spec.names}


def _user_features(spec: HistorySpec, clock: _Clock, sess: dict[str, np.ndarray],
                   user: np.ndarray, start: np.ndarray,
                   uses: Mapping[str, Callable[[], dict[str, np.ndarray]]],
                   amounts: Callable[[], dict[str, np.ndarray]], f: dict[str, np.ndarray],
                   ) -> None:
    """The user's windows and velocity (into ``f``). ``uses`` and ``amounts`` wait for their
    query: what needs neither comes first, then each in the order the store answers."""
    n = len(start)
    per_user = _Queries(clock.keys(user, start))
    by_user = _Rows(clock, user, start)
    n_below = by_user.below(per_user)
    n_sessions = {w: (n_below - by_user.below(per_user, window_us(w))).astype(np.float64)
                  for w in spec.user_windows}
    del by_user, n_below
    for w in spec.user_windows:
        f[f"hu_sessions_log[{w}]"] = _log1p(n_sessions[w])
    for c in spec.user_distinct:
        u = uses[c]()
        k = user[u["sidx"]]
        rows = _Rows(clock, k, u["t"])
        for w in spec.user_windows:
            us = window_us(w)
            # a use counts for max(s, prev + w) < t <= s + w (an interval, as prev <= s): one
            # in-window use per value, its previous use before t - w
            first_in = _Rows(clock, k, np.maximum(u["t"], u["prev"] + us))
            f[f"hu_distinct_{SHORT[c]}_log[{w}]"] = _log1p(
                (first_in.below(per_user) - rows.below(per_user, us)).astype(np.float64))
            del first_in
        del u, k, rows
    paid = amounts()
    pay = _Rows(clock, paid["key"], paid["t"], values=paid["amount"])
    del paid
    pay_below = pay.below(per_user)
    assert pay.sums is not None and pay.values is not None
    pay_sorted = np.r_[pay.values, 0.0]
    per_window: dict[str, dict[str, np.ndarray]] = {}
    for w in spec.user_windows:
        us = window_us(w)
        lo, hi = pay.below(per_user, us), pay_below
        count = (hi - lo).astype(np.float64)
        total = pay.sums[hi] - pay.sums[lo]
        has = hi > lo
        biggest = np.zeros(n)
        if has.any():  # queries in window order, so the skipped stretches add up to <= N
            which = np.flatnonzero(has)
            which = which[np.argsort(lo[which], kind="stable")]
            idx = np.empty(2 * len(which), dtype=np.int64)
            idx[0::2], idx[1::2] = lo[which], hi[which]
            biggest[which] = np.maximum.reduceat(pay_sorted, idx)[0::2]
        mean = _share(total, count)
        per_window[w] = {"sessions": n_sessions[w], "sum": total, "mean": mean}
        f[f"hu_payments_log[{w}]"] = _log1p(count)
        f[f"hu_amount_sum_log[{w}]"] = _slog(total)
        f[f"hu_amount_mean_log[{w}]"] = _slog(mean)
        f[f"hu_amount_max_log[{w}]"] = np.where(has, _slog(biggest), 0.0)
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


def _entity_features(spec: HistorySpec, clock: _Clock, c: str, u: dict[str, np.ndarray],
                     start: np.ndarray, is_first: np.ndarray, labelled: np.ndarray,
                     fraud: np.ndarray, amount_rows: _Rows, delay: int,
                     ) -> dict[str, np.ndarray]:
    """Per use of a value of column ``c`` (the query: the value at its session's start), the
    entity's windows and label risk; the caller takes the largest per session."""
    u_sess, v, u_t, prev = u["sidx"], u["code"], u["t"], u["prev"]
    st = start[u_sess]
    if not _is_sorted(v, st):  # the store sorts them by (value, exact start), as ranks need
        order = np.lexsort((st, v))
        u_sess, v, u_t, prev, st = (x[order] for x in (u_sess, v, u_t, prev, st))
        del order
    q_keys = clock.keys(v, st)
    per_use = _Queries(q_keys, presorted=True)  # answers in use order
    out: dict[str, np.ndarray] = {"_sidx": u_sess}
    rows = _Rows(clock, v, u_t, flag=is_first[u_sess])
    hi, new_hi = rows.below_flagged(per_use)
    a_hi = amount_rows.below(per_use)
    assert amount_rows.sums is not None
    for w in spec.entity_windows:
        us = window_us(w)
        lo, new_lo = rows.below_flagged(per_use, us)
        n_sess = (hi - lo).astype(np.float64)
        n_new = (new_hi - new_lo).astype(np.float64)
        # distinct users: a use counts for max(s, prev + w) < t <= s + w (see the module)
        first_in = _Rows(clock, v, np.maximum(u_t, prev + us))
        n_users = (first_in.below(per_use) - lo).astype(np.float64)
        del first_in
        a_lo = amount_rows.below(per_use, us)
        name = f"{SHORT[c]},{w}"
        out[f"he_sessions_log[{name}]"] = _log1p(n_sess)
        out[f"he_users_log[{name}]"] = _log1p(n_users)
        out[f"he_amount_log[{name}]"] = _slog(amount_rows.sums[a_hi] - amount_rows.sums[a_lo])
        out[f"he_new_user_share[{name}]"] = _share(n_new, n_sess)
        del lo, new_lo, n_sess, n_new, n_users, a_lo
    del rows, hi, new_hi, a_hi
    out |= _label_risk(spec, clock, c, v, st, u_t, u_sess, labelled, fraud, per_use, delay)
    return out


def _label_risk(spec: HistorySpec, clock: _Clock, c: str, v: np.ndarray, st: np.ndarray,
                u_t: np.ndarray, u_sess: np.ndarray, labelled: np.ndarray, fraud: np.ndarray,
                per_use: _Queries, delay: int) -> dict[str, np.ndarray]:
    """Per use (sorted by value and start): the value's delayed label risk. A labelled use
    counts for max(start + delay, its time) < t <= start + delay + w (rows with an empty
    interval never count)."""
    out: dict[str, np.ndarray] = {}
    lab = labelled[u_sess]
    everyone = bool(lab.all())
    l_v, l_st, l_t = (v, st, u_t) if everyone else (v[lab], st[lab], u_t[lab])
    l_fraud = fraud[u_sess] if everyone else fraud[u_sess][lab]
    a = np.maximum(l_st + delay, l_t)
    del l_t
    shared_a: _Rows | None = None
    for w in spec.label_windows:
        if not len(l_v):
            out[f"he_fraud_risk[{SHORT[c]},{w}]"] = np.zeros(len(v))
            continue
        b = l_st + delay + window_us(w)
        keep = a < b
        if bool(keep.all()):  # the usual case: every interval is open
            if shared_a is None:
                shared_a = _Rows(clock, l_v, a, flag=l_fraud)
            a_rows = shared_a
            kv, kst, kf = l_v, l_st, l_fraud
        else:
            kv, kst, kf = l_v[keep], l_st[keep], l_fraud[keep]
            a_rows = _Rows(clock, kv, a[keep], flag=kf)
        n_a, f_a = a_rows.below_flagged(per_use)
        # b rows follow the uses' sorted (value, start) order: their prefix needs no sort
        b_keys = clock.keys(kv, kst + delay + window_us(w))
        n_b = per_use.find(b_keys)
        f_b = _prefix(kf)[n_b]
        out[f"he_fraud_risk[{SHORT[c]},{w}]"] = (f_a - f_b) / ((n_a - n_b) + spec.prior)
        del b, keep, n_a, f_a, b_keys, n_b, f_b
    return out


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
    del first_order, u_sorted

    # DuckDB fetches on a thread of its own (in the order they are needed) while numpy works.
    counts = queries.value_counts(spec.entity_columns)
    n_keys = max([int(user.max(initial=0)) + 1, *counts.values()])
    windows = [window_us(w) for w in (*spec.user_windows, *spec.entity_windows)]
    longest_label = max((window_us(w) for w in spec.label_windows), default=0)
    delay = int(round(spec.delay_days * _UNITS_US["d"]))
    clock = _Clock(start, int(sess["last_us"].max(initial=0)),
                   max([*windows, delay + longest_label]), n_keys)
    columns = [*spec.user_distinct, *(c for c in spec.entity_columns
                                      if c not in spec.user_distinct)]
    pool = ThreadPoolExecutor(1, thread_name_prefix="history-sql")
    try:
        pending = {c: pool.submit(queries.first_uses, c) for c in spec.user_distinct}
        pending_amounts = pool.submit(queries.user_amounts, spec.entity_columns)
        pending_labels = pool.submit(queries.session_labels)
        # the amounts of a few entity columns ahead (each sorted by DuckDB, up to ~150 MB):
        # those whose uses are here already come before the other columns' uses
        ahead = max(_AHEAD, len(spec.user_distinct))
        value_amounts = [pool.submit(queries.value_amounts, c) for c in columns[:ahead]]
        pending |= {c: pool.submit(queries.first_uses, c) for c in columns
                    if c not in pending}

        # Per user: sessions, amounts and distinct entities in each window.
        _user_features(spec, clock, sess, user, start,
                       {c: pending[c].result for c in spec.user_distinct},
                       pending_amounts.result, f)
        del pending_amounts
        timings["user"] = time.perf_counter() - started

        # Per entity: sessions, users, amount and new users in windows; delayed label risk.
        labels = pending_labels.result()
        labelled = np.zeros(n, dtype=bool)
        fraud = np.zeros(n, dtype=np.int64)
        labelled[labels["sidx"].astype(np.int64)] = True
        fraud[labels["sidx"].astype(np.int64)] = labels["is_anomaly"].astype(np.int64)
        for i, c in enumerate(columns):
            amounts = value_amounts[i].result()
            value_amounts[i] = None  # type: ignore[call-overload]
            if i + ahead < len(columns):
                value_amounts.append(pool.submit(queries.value_amounts, columns[i + ahead]))
            amount_rows = _Rows(clock, amounts["key"], amounts["t"], values=amounts["amount"])
            del amounts
            u = pending.pop(c).result()
            out = _entity_features(spec, clock, c, u, start, is_first, labelled, fraud,
                                   amount_rows, delay)
            del amount_rows, u
            f |= _per_session_max(out.pop("_sidx"), n, out)
            del out
            timings[f"entity_{c}"] = time.perf_counter() - started
    finally:  # the queries' temp tables must outlive the thread
        pool.shutdown(wait=True, cancel_futures=True)
    return f
