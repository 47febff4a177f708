"""Session feature matrix: two DuckDB queries, then vectorised numpy reductions.

DuckDB does the work that needs strings: one GROUP BY session_id (ordered by session_id) with
the additive aggregates, and one scan of the event columns as numbers (timestamps, 64-bit
hashes of session ids, event types and values). The sessions query runs on its own cursor in
the background while numpy reduces the events as soon as they arrive: it ties each event to
its session by the id hash, sorts the events by (session, time) on one packed key, and
reduces each session's contiguous run (gaps, type counts, distinct values, cart) without a
Python loop over rows; the distinct-value reductions run on a worker thread (numpy's sorts
and pandas' hash tables release the GIL). The per-session results are then mapped to
session_id order for novelty, sharing and history. About a third of the CPU of grouping 10M
events by string keys in a dozen SQL steps. Column meanings are in docs/FEATURES.md; values
are bound parameters, never formatted into SQL."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pandas as pd

import core.features._arrays as A
from core.datasets import FeatureMatrix
from core.errors import ConfigError, StoreError
from core.features._source import (
    check_all_found,
    event_columns,
    events_relation,
    learning_relation,
    normalize_session_ids,
    scope_filter,
    top_event_types,
    used_params,
)
from core.features.extras import extra_feature_columns, learn_extras
from core.features.history import history_feature_columns, learn_history
from core.features.novelty import (
    NoveltyHoldout,
    learn_novelty_and_holdout,
    novelty_counts,
)
from core.features.spec import (
    ADD_TO_CART,
    BASE_FEATURES,
    DEFAULT_MAX_EVENT_TYPES,
    NIGHT_HOURS,
    PAYMENT_ATTEMPT,
    PAYMENT_FAILED,
    POINT_IN_TIME,
    REMOVE_FROM_CART,
    SMALL_AMOUNT,
    FeatureSpec,
    SessionFeatures,
    TrainingScope,
)
from core.store.features import rows as store_rows

log = logging.getLogger(__name__)

_US_PER_DAY = 86_400_000_000
# Novelty looks at these value columns (in this order); sharing at the first two.
_NOVEL = {"device_id": "device", "ip": "ip", "country": "country", "payment_id": "payment_id"}
_HASHED = ("device_id", "ip", "country", "payment_id", "user_agent", "category")


def _log1p(x: np.ndarray) -> np.ndarray:
    return np.log1p(np.maximum(x, 0))


def _slog(x: np.ndarray) -> np.ndarray:
    """Signed log1p: amounts may be negative (refunds)."""
    return np.sign(x) * np.log1p(np.abs(x))


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, NaN (later 0) where den is 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.true_divide(num, den, dtype=np.float64)
    out[den == 0] = np.nan
    return out


def _epoch_ms(us: np.ndarray) -> np.ndarray:
    """DuckDB's epoch_ms: microseconds / 1000, truncated towards zero."""
    ms = us // 1000
    negative = us < 0
    if negative.any():  # floor division rounds the other way before 1970
        ms[negative] = -(-us[negative] // 1000)
    return ms


def _queries(
    con: duckdb.DuckDBPyConnection, where: str, params: dict[str, Any], scoped: bool,
    point_in_time: bool = False,
) -> dict[str, str]:
    """SQL of the two feature queries: ``sessions`` (one row per session, in session_id
    order) and ``events`` (one row per event as numbers, in scan order); both carry
    ``h_session``, the hash of the session id that ties an event to its session.
    ``point_in_time``: a text is a duplicate once another user had written it by the
    session's last event (else: when any other user wrote it, ever)."""
    c = event_columns(con)
    cols = ", ".join(f"{expr} AS {name}" for name, expr in c.items())
    text_scope = (f"AND {c['text']} IN (SELECT {c['text']} FROM events {where})"
                  if scoped else "")
    hashes = ", ".join(f"{A.hashed(col)} AS h_{col}" for col in _HASHED)
    return {
        # The additive aggregates that need strings or NULL handling, in the one GROUP BY
        # session_id (multi-threaded in DuckDB); its ORDER BY is the output's tie-break.
        "sessions": f"""
        WITH dup AS (
          SELECT {c['text']} AS dtext FROM events
          WHERE {c['text']} IS NOT NULL {text_scope}
          GROUP BY ALL HAVING count(DISTINCT user_id) > 1
        ), e AS (SELECT {cols} FROM events {where})
        SELECT session_id, hash(session_id) AS h_session, any_value(user_id) AS user_id,
          sum(amount) AS amount_sum, max(amount) AS amount_max, count(amount) AS n_amounts,
          count(*) FILTER (amount >= 0 AND amount < {SMALL_AMOUNT}) AS n_small,
          count(text) AS n_texts, sum(length(text))::DOUBLE AS text_len_sum,
          count(d.dtext) AS n_dup_texts,
          max(quantity) FILTER (event_type = $add) AS cart_qty_max
        FROM e LEFT JOIN dup d ON d.dtext = e.text
        GROUP BY session_id ORDER BY session_id""" if not point_in_time else f"""
        WITH firsts AS (
          SELECT text AS dtext, min_by(user_id, t0, 2) AS users, min_by(t0, t0, 2) AS times
          FROM (SELECT {c['text']} AS text, user_id, min(ts) AS t0 FROM events
                WHERE {c['text']} IS NOT NULL {text_scope} GROUP BY ALL)
          GROUP BY text
        ), e AS (SELECT {cols}, max(ts) OVER (PARTITION BY session_id) AS end_ts
                 FROM events {where})
        SELECT session_id, hash(session_id) AS h_session, any_value(user_id) AS user_id,
          sum(amount) AS amount_sum, max(amount) AS amount_max, count(amount) AS n_amounts,
          count(*) FILTER (amount >= 0 AND amount < {SMALL_AMOUNT}) AS n_small,
          count(text) AS n_texts, sum(length(text))::DOUBLE AS text_len_sum,
          -- another user had written the text by the session's last event
          count(*) FILTER (coalesce(if(d.users[1] = e.user_id, d.times[2], d.times[1])
                                    <= e.end_ts, false)) AS n_dup_texts,
          max(quantity) FILTER (event_type = $add) AS cart_qty_max
        FROM e LEFT JOIN firsts d ON d.dtext = e.text
        GROUP BY session_id ORDER BY session_id""",
        "events": f"""
        WITH e AS (SELECT {cols} FROM events {where})
        SELECT hash(session_id) AS h_session, epoch_us(ts) AS t, hash(event_type) AS h_type,
          {hashes},
          if(item_id IS NULL, 0::UBIGINT, hash(item_id, category) | 1::UBIGINT) AS h_item,
          if(event_type IN ($add, $remove), {A.hashed('item_id')}, 0::UBIGINT) AS h_cart,
          coalesce(event_type = $add, false) AS is_add
        FROM e""",
    }


def _time_order(seg: np.ndarray, t: np.ndarray, start_us: np.ndarray) -> np.ndarray:
    """Scan rows in (session, time) order.

    One quicksort of a packed int64 key (session << b | microseconds since the session's
    start) costs less CPU than DuckDB's ORDER BY session_id, ts (docs/BENCHMARKS.md,
    'Measurements behind design choices'). The order of a session's events at the same
    instant is arbitrary; no feature depends on it.
    """
    offset = t - start_us[seg]  # >= 0
    time_bits = int(offset.max(initial=0)).bit_length()
    if time_bits + max(len(start_us), 1).bit_length() > 63:  # pragma: no cover - sessions
        return np.lexsort((t, seg))  # longer than ~100 days at a million sessions
    offset |= seg << time_bits
    return np.argsort(offset)


def _gap_features(ms: np.ndarray, counts: np.ndarray) -> dict[str, np.ndarray]:
    """Gaps between consecutive events of a session, in seconds of whole milliseconds
    (``ms`` in (session, time) order, sessions of ``counts`` events each).

    Each session's gaps are one run of ``diff(ms)``; the entry after its last gap (the step
    into the next session) is masked (0, or ±inf for min/max), so every reduction is one
    ``reduceat`` over the runs in place: same sums in the same order as a per-gap bincount.
    """
    if not len(ms):
        return {name: np.zeros(0) for name in
                ("gap_mean_log", "gap_std_log", "gap_min_log", "gap_max_log", "gap_cv")}
    starts = A.seg_starts(counts)
    last = starts + counts - 1  # the masked entry of each run
    gaps = np.empty(len(ms))
    np.subtract(ms[1:], ms[:-1], out=gaps[:-1], casting="unsafe")
    gaps[-1] = 0.0  # masked below; set so the division never meets uninitialised memory
    gaps /= 1000.0
    n_gaps = counts - 1
    gaps[last] = np.inf
    gap_min = np.minimum.reduceat(gaps, starts)
    gaps[last] = -np.inf
    gap_max = np.maximum.reduceat(gaps, starts)
    gap_min[n_gaps == 0] = gap_max[n_gaps == 0] = np.nan
    gaps[last] = 0.0
    gap_mean = _ratio(np.add.reduceat(gaps, starts), n_gaps)
    gaps -= np.repeat(gap_mean, counts)
    np.square(gaps, out=gaps)
    gaps[last] = 0.0
    gap_std = np.sqrt(_ratio(np.add.reduceat(gaps, starts), n_gaps))
    return {"gap_mean_log": _log1p(gap_mean), "gap_std_log": _log1p(gap_std),
            "gap_min_log": _log1p(gap_min), "gap_max_log": _log1p(gap_max),
            "gap_cv": _ratio(gap_std, gap_mean)}


@dataclass
class _EventReductions:
    """Per-session reductions of the events query, indexed by the events' own session order
    (first appearance in the scan); ``hashes`` holds each one's session id hash.

    Computed while DuckDB still runs the sessions query; ``_session_features`` maps them to
    the output order. The distinct values come from a worker thread (futures).
    """

    hashes: np.ndarray
    columns: dict[str, np.ndarray]  # counts, start/end, type counts of payments, gap features
    by_type: np.ndarray  # (spec types + <other>, sessions) event counts
    unordered: Future[dict[str, np.ndarray]]
    pairs: Future[tuple[dict[str, np.ndarray], dict[str, tuple[np.ndarray, ...]]]]


def _reduce_events(
    con: duckdb.DuckDBPyConnection, spec: FeatureSpec, where: str, params: dict[str, Any],
    ev: dict[str, np.ndarray], pool: ThreadPoolExecutor, holdout: NoveltyHoldout | None,
) -> _EventReductions:
    """Everything the events query gives without the sessions query (see _EventReductions);
    ``holdout``: the training sessions' own novelty (core.features.novelty), while the
    training matrix is built."""
    seg, hashes = pd.factorize(ev.pop("h_session"), sort=False)
    m = len(hashes)
    seg = seg.astype(np.int64, copy=False)
    unordered = pool.submit(_unordered_distinct, seg, ev.pop("h_item"), ev.pop("h_category"), m)
    t = ev.pop("t")
    start_us = np.full(m, np.iinfo(np.int64).max)
    np.minimum.at(start_us, seg, t)
    pos = _time_order(seg, t, start_us)  # sorted position -> scan row
    counts = np.bincount(seg, minlength=m)
    seg_sorted = np.repeat(np.arange(m, dtype=np.int64), counts)
    codes = {col: ev.pop(f"h_{col}") for col in ("user_agent", *_NOVEL)}
    pairs = pool.submit(_distinct_pairs, codes, seg_sorted, pos, m)
    del codes
    t_sorted = t[pos]
    if spec.novelty is None:
        del pos
    columns = {"counts": counts, "start_us": start_us,
               "end_us": t_sorted[A.seg_starts(counts) + counts - 1] if m else start_us}
    columns |= _gap_features(_epoch_ms(t_sorted), counts)
    del t_sorted, seg_sorted

    # Event types: per-event bucket (the spec's types, then <other>), counted per session.
    k = len(spec.event_types)
    type_codes, type_hashes = pd.factorize(ev.pop("h_type"), sort=False)
    names = _type_names(con, where, params, np.asarray(type_hashes, dtype=np.uint64))
    spec_index = {name: i for i, name in enumerate(spec.event_types)}
    bucket = np.array([spec_index.get(name, k) for name in names], dtype=np.int64)[type_codes]
    bucket *= m
    bucket += seg
    by_type = np.bincount(bucket, minlength=m * (k + 1)).reshape(k + 1, m)
    del bucket
    if spec.novelty is not None:
        columns |= novelty_counts(spec.novelty, names, type_codes, seg, pos, counts, holdout,
                                  np.asarray(hashes, dtype=np.uint64))
        del pos
    for name in (PAYMENT_FAILED, PAYMENT_ATTEMPT):
        if name in spec_index:
            columns[name] = by_type[spec_index[name]]
        else:
            hit = np.array([other == name for other in names], dtype=bool)[type_codes]
            columns[name] = A.seg_count(seg, hit, m)
    columns["removed_after_add"] = _removed_after_add(
        seg, t, ev.pop("h_cart"), ev.pop("is_add"), m).astype(np.float64)
    return _EventReductions(hashes, columns, by_type, unordered, pairs)


def _sharing_whole_table(
    con: duckdb.DuckDBPyConnection, col: str, where: str, params: dict[str, Any],
    timings: dict[str, float],
) -> tuple[np.ndarray, np.ndarray]:
    """(sorted value hashes, other users) over the whole table for the scoped values of col."""
    out = A.fetch(con, f"""
        SELECT {A.hashed(col)} AS h, count(DISTINCT user_id) - 1 AS n FROM events
        WHERE {col} IN (SELECT {col} FROM events {where}) GROUP BY {col} ORDER BY h""",
        params, timings, f"sharing_{col}")
    return out["h"], out["n"].astype(np.float64)


def _sharing_point_in_time(
    con: duckdb.DuckDBPyConnection, col: str, where: str, params: dict[str, Any],
    scoped: bool, timings: dict[str, float], value_hash: np.ndarray, end_us: np.ndarray,
) -> np.ndarray:
    """Per (value, session end) pair: how many *other* users had used the value at or before
    the session's end (each user's first event with it, over the whole table).

    What a live service knows when the session's last event arrives, so streaming and batch
    agree (issue #26); the whole-table count also saw users who came later.
    """
    source = (f"WHERE {col} IN (SELECT {col} FROM events {where})" if scoped
              else f"WHERE {col} IS NOT NULL")
    out = A.fetch(con, f"""
        SELECT {A.hashed(col)} AS h, epoch_us(min(ts)) AS t FROM events {source}
        GROUP BY {col}, user_id ORDER BY h, t""", params, timings, f"sharing_{col}")
    hashes, first = out["h"], out["t"].astype(np.int64)
    if len(hashes) == 0:
        return np.zeros(len(value_hash))
    # one sorted int64 key per (value, first use): value code, then the time's rank
    values, code = np.unique(hashes, return_inverse=True)
    times = np.unique(first)
    width = len(times) + 1
    keys = code.astype(np.int64) * width + np.searchsorted(times, first)
    at = np.minimum(np.searchsorted(values, value_hash), len(values) - 1)
    known = values[at] == value_hash
    group = at.astype(np.int64) * width
    upto = group + np.searchsorted(times, end_us, side="right") - 1
    users = np.searchsorted(keys, upto, side="right") - np.searchsorted(keys, group)
    return np.where(known, np.maximum(users - 1, 0), 0).astype(np.float64)


def _compute(
    con: duckdb.DuckDBPyConnection, spec: FeatureSpec, where: str, params: dict[str, Any],
    scoped: bool, timings: dict[str, float], holdout: NoveltyHoldout | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(feature name -> float64 column, meta columns), both in the output order (start
    time, then session id)."""
    queries = _queries(con, where, params, scoped, spec.sharing == POINT_IN_TIME)
    sessions_result = A.fetch_in_background(con, queries["sessions"], params, timings,
                                            "sessions")
    # Distinct values per session on a worker thread (numpy's sorts and pandas' hash tables
    # release the GIL) while this one sorts the events and computes the rest, all while
    # DuckDB still runs the sessions query.
    with ThreadPoolExecutor(1, thread_name_prefix="features") as pool:
        ev = A.fetch(con, queries["events"], params, timings, "events")
        started = time.perf_counter()
        red = _reduce_events(con, spec, where, params, ev, pool, holdout)
        del ev
        timings["event_numpy"] = time.perf_counter() - started
        sess = sessions_result()
        started = time.perf_counter()
        out = _session_features(con, spec, where, params, scoped, timings, sess, red,
                                pool)
    timings["numpy"] = time.perf_counter() - started
    return out


def _session_features(
    con: duckdb.DuckDBPyConnection, spec: FeatureSpec, where: str, params: dict[str, Any],
    scoped: bool, timings: dict[str, float], sess: dict[str, np.ndarray],
    red: _EventReductions, pool: ThreadPoolExecutor,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """_compute's second half: the sessions query's columns and the event reductions, in
    the output order."""
    n = len(sess["session_id"])
    # local[i]: the events' index of the i-th session in session_id order
    local = pd.Index(red.hashes).get_indexer(sess["h_session"])
    if len(red.hashes) != n or (local < 0).any():
        raise StoreError(
            "the events changed while features were being built (or two session ids share a "
            "64-bit hash). Build the features again; if this repeats, rename the sessions."
        )
    # Everything from here on in the output order: start time, ties in session_id order.
    order = np.argsort(red.columns["start_us"][local], kind="stable")
    local = local[order]
    sess = {name: values[order] for name, values in sess.items()}
    col = {name: values[local] for name, values in red.columns.items()}
    counts, start_us, end_us = col.pop("counts"), col.pop("start_us"), col.pop("end_us")
    types_job = pool.submit(_type_columns, red.by_type, local, counts)
    f: dict[str, np.ndarray] = {}

    # History: each user's sessions in time order.
    rank = np.arange(n)
    user, _ = A.dense_codes(sess["user_id"])
    by_user = np.argsort(user, kind="stable")
    u_sorted = user[by_user]
    new_user = np.ones(n, dtype=bool)
    new_user[1:] = u_sorted[1:] != u_sorted[:-1]
    group_start = np.maximum.accumulate(np.where(new_user, np.arange(n), 0))
    n_prev = np.empty(n, dtype=np.int64)
    n_prev[by_user] = np.arange(n) - group_start
    first_us = np.empty(n, dtype=np.int64)
    first_us[by_user] = start_us[by_user][group_start]

    f["n_events_log"] = _log1p(counts.astype(np.float64))
    f["duration_log"] = _log1p((_epoch_ms(end_us) - _epoch_ms(start_us)) / 1000.0)
    f |= {name: col.pop(name) for name in
          ("gap_mean_log", "gap_std_log", "gap_min_log", "gap_max_log", "gap_cv")}

    # Amounts (aggregated by DuckDB) and payments.
    amount_sum, amount_max = sess["amount_sum"], sess["amount_max"]
    n_amounts, n_failed = sess["n_amounts"], col.pop(PAYMENT_FAILED)
    f |= {"amount_sum_log": _slog(amount_sum), "amount_max_log": _slog(amount_max),
          "amount_mean_log": _slog(_ratio(amount_sum, n_amounts)),
          "small_amount_share": _ratio(sess["n_small"], n_amounts),
          "n_payment_failed_log": _log1p(n_failed.astype(np.float64)),
          "payment_failure_ratio": _ratio(
              n_failed, np.maximum(col.pop(PAYMENT_ATTEMPT), n_failed))}

    # Novelty against the user's earlier sessions, sharing between users, from the distinct
    # (session, value) pairs of the worker thread.
    distinct, pairs = red.pairs.result()
    distinct |= red.unordered.result()
    distinct = {name: values[local] for name, values in distinct.items()}
    session_of = np.empty(n, dtype=np.int64)
    session_of[local] = np.arange(n)  # events' session index -> output row
    for name, short in _NOVEL.items():
        p_local, p_id, p_hash = pairs[name]
        p_seg = session_of[p_local]
        first = A.first_uses(p_seg, p_id, rank, user, len(p_hash))
        f[f"is_new_{short}"] = ((np.bincount(p_seg[first], minlength=n)[:n] > 0)
                                & (n_prev > 0)).astype(np.float64)
        if name in ("device_id", "ip") and spec.sharing == POINT_IN_TIME:
            per_pair = _sharing_point_in_time(con, event_columns(con)[name], where, params,
                                              scoped, timings, p_hash[p_id], end_us[p_seg])
            others = np.zeros(n)
            np.maximum.at(others, p_seg, per_pair)
            f[f"{short}_other_users_log"] = _log1p(others)
        elif name in ("device_id", "ip"):
            if scoped:
                keys, n_other = _sharing_whole_table(con, event_columns(con)[name], where,
                                                     params, timings)
                at = np.minimum(np.searchsorted(keys, p_hash), max(len(keys) - 1, 0))
                per_id = n_other[at] if len(keys) else np.zeros(len(p_hash))
            else:
                per_id = np.bincount(p_id[first], minlength=len(p_hash)) - 1.0
            others = np.zeros(n)
            np.maximum.at(others, p_seg, per_id[p_id])
            f[f"{short}_other_users_log"] = _log1p(others)
    f |= {"n_devices_log": _log1p(distinct["device_id"]), "n_ips_log": _log1p(distinct["ip"]),
          "n_countries_log": _log1p(distinct["country"]),
          "n_items_log": _log1p(distinct["item"]),
          "n_payment_ids_log": _log1p(distinct["payment_id"]),
          "n_categories_log": _log1p(distinct["category"]),
          "n_user_agents_log": _log1p(distinct["user_agent"])}
    prev_max = np.empty(n)
    prev_max[by_user] = A.segmented_prev_max(u_sorted, amount_max[by_user])
    with np.errstate(invalid="ignore"):
        above = np.where(np.isnan(amount_max) | np.isnan(prev_max), np.nan,
                         (amount_max > prev_max).astype(np.float64))
    start_s = start_us // 1_000_000
    hour = (start_s % 86_400) // 3600
    minute = (start_s % 3600) // 60
    angle = 2 * np.pi * (hour + minute / 60.0) / 24
    isodow = (start_us // _US_PER_DAY + 3) % 7 + 1  # 1970-01-01 was a Thursday (4)
    f |= {"amount_vs_user_max_log": _slog(amount_max) - _slog(prev_max),
          "is_amount_above_user_max": above,
          "user_age_days_log": _log1p(
              (_epoch_ms(start_us) - _epoch_ms(first_us)) / (_US_PER_DAY / 1000)),
          "n_prev_sessions_log": _log1p(n_prev.astype(np.float64)),
          "hour_sin": np.sin(angle), "hour_cos": np.cos(angle),
          "is_night": ((hour >= NIGHT_HOURS[0]) & (hour < NIGHT_HOURS[1])).astype(np.float64),
          "is_weekend": (isodow >= 6).astype(np.float64)}

    # Texts and cart.
    n_texts = sess["n_texts"]
    f["text_share"] = _ratio(n_texts, counts)
    f["text_len_mean_log"] = _log1p(_ratio(sess["text_len_sum"], n_texts))
    f["text_dup_share"] = _ratio(sess["n_dup_texts"], n_texts)
    f["cart_qty_max_log"] = _log1p(sess["cart_qty_max"].astype(np.float64))
    f["n_removed_after_add_log"] = _log1p(col.pop("removed_after_add"))

    # Event-type counts (log) and shares: the spec's types, then <other>.
    type_block = types_job.result()
    cols = [*type_block[0], *type_block[1]]
    f = {name: f[name] for name in BASE_FEATURES} | {f"_type{i}": c for i, c in enumerate(cols)}
    if "unseen_event_types" in col:  # the spec has a novelty part (core.features.novelty)
        unseen, transitions = col.pop("unseen_event_types"), col.pop("unseen_transitions")
        f |= {"unseen_event_types_log": _log1p(unseen),
              "unseen_transitions_log": _log1p(transitions),
              "unseen_transition_share": _ratio(transitions, np.maximum(counts - 1, 0))}
    meta = {"session_id": sess["session_id"], "user_id": sess["user_id"], "start_us": start_us,
            "end_us": end_us, "n_events": counts}
    return f, meta


def _type_columns(by_type: np.ndarray, local: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """(log1p of counts, shares) x (types, sessions) as float32, sessions taken at ``local``.

    Rounded once from float64, as every column is; log1p of small integer counts is a table
    lookup; one type at a time keeps the temporaries small. Every session has an event.
    """
    log_counts = np.log1p(np.arange(int(by_type.max(initial=0)) + 1.0)).astype(np.float32)
    block = np.empty((2, len(by_type), len(local)), dtype=np.float32)
    for i, type_counts in enumerate(by_type):
        in_order = type_counts[local]
        np.take(log_counts, in_order, out=block[0, i])
        np.divide(in_order, counts, out=block[1, i], casting="unsafe")
    return block


def _unordered_distinct(
    seg: np.ndarray, item: np.ndarray, category: np.ndarray, n: int
) -> dict[str, np.ndarray]:
    """Distinct items and categories per session (no event order needed)."""
    return {"item": A.distinct_count(seg, item, n),
            "category": A.distinct_count(seg, category, n)}


def _distinct_pairs(
    codes: dict[str, np.ndarray], seg_sorted: np.ndarray, pos: np.ndarray, n: int
) -> tuple[dict[str, np.ndarray], dict[str, tuple[np.ndarray, ...]]]:
    """(distinct values per session of user agents and the novelty columns, and for the
    novelty columns their (session, value id, value hash) pairs)."""
    distinct: dict[str, np.ndarray] = {}
    distinct["user_agent"] = np.bincount(
        A.distinct_pairs(seg_sorted, codes.pop("user_agent")[pos])[0], minlength=n
    )[:n].astype(np.float64)
    pairs: dict[str, tuple[np.ndarray, ...]] = {}
    for col in _NOVEL:
        pairs[col] = A.distinct_pairs(seg_sorted, codes.pop(col)[pos])
        distinct[col] = np.bincount(pairs[col][0], minlength=n)[:n].astype(np.float64)
    return distinct, pairs


def _type_names(
    con: duckdb.DuckDBPyConnection, where: str, params: dict[str, Any], hashes: np.ndarray
) -> list[str | None]:
    """Event type of each of ``hashes`` (DuckDB's hash of the type), checked collision-free."""
    rows = store_rows(
        con, f"SELECT event_type, hash(event_type) FROM events {where} GROUP BY event_type",
        used_params(f"{where}", params),
    )
    by_hash = {int(h): t for t, h in rows}
    if len(by_hash) != len(rows):  # pragma: no cover - a 64-bit collision between type names
        raise StoreError("two event types have the same hash; rename one at ingest.")
    return [by_hash[int(h)] for h in hashes]


def _removed_after_add(
    seg: np.ndarray, ts: np.ndarray, item: np.ndarray, is_add: np.ndarray, n: int
) -> np.ndarray:
    """Per session: items whose last removal is not before their first add.

    ``item`` is 0 except on add-to-cart / remove-from-cart events with an item.
    """
    rows = item != 0
    if not rows.any():
        return np.zeros(n, dtype=np.int64)
    ids, k = A.dense_codes(item[rows])
    pair, inv = np.unique(seg[rows] * k + ids, return_inverse=True)
    big = np.iinfo(np.int64).max
    first_add = np.full(len(pair), big)
    last_remove = np.full(len(pair), -big)
    t, add = ts[rows], is_add[rows]
    np.minimum.at(first_add, inv[add], t[add])
    np.maximum.at(last_remove, inv[~add], t[~add])
    hit = (first_add != big) & (last_remove >= first_add)
    return np.bincount(pair[hit] // k, minlength=n)[:n]


def holds_singletons(con: duckdb.DuckDBPyConnection, training: TrainingScope) -> bool:
    """Whether the training events hold an event type or transition that only one session
    holds: then counting novelty in-sample or held out (``TrainingScope.novelty_holdout``)
    gives different matrices."""
    learn, learn_params = learning_relation(events_relation(con), training.until,
                                            training.session_ids)
    _, holdout = learn_novelty_and_holdout(con, learn, learn_params)
    return holdout is not None and bool(holdout.types or holdout.transitions)


def build_session_features(
    con: duckdb.DuckDBPyConnection,
    *,
    spec: FeatureSpec | None = None,
    event_types: Sequence[str] | None = None,
    max_event_types: int = DEFAULT_MAX_EVENT_TYPES,
    session_ids: Sequence[str] | None = None,
    text: bool | None = None,
    progress: bool | None = None,
    training: TrainingScope | None = None,
) -> SessionFeatures:
    """One row of float32 features per session, ordered by (start time, session id).

    Args:
        con: a DuckDB connection (or cursor) with an ``events`` table.
        spec: the spec saved with a model; its event types give the count/share columns.
        event_types: alternatively, the event types that get their own columns.
        max_event_types: with neither, the this-many most frequent types are used.
        session_ids: only these sessions (their users' earlier sessions still count as
            history, and device/IP/text sharing is counted over the whole table); all
            sessions when None. Unknown ids raise ConfigError.
        text: without a spec, whether to append the text features (core.text); None adds
            them when the sentence model is installed and ``con`` is a store with texts. With
            a spec, its own choice holds.
        progress: the text-embedding progress bar: False hides it, None shows it for many
            texts.
        training: without a spec, learn it from these training events only, with what is
            novel against them (core.features.novelty: each training session counts what no
            other training session holds as novel, as if left out) and the extra columns
            (core.features.extras); the whole table, without those, when None.

    Returns:
        SessionFeatures with the matrix, the per-session meta and the spec used.

    >>> import duckdb
    >>> con = duckdb.connect()
    >>> _ = con.execute("CREATE TABLE events AS SELECT 'e1' AS event_id, 'u1' AS user_id, "
    ...                 "'s1' AS session_id, TIMESTAMP '2026-01-01 10:00' AS ts, "
    ...                 "'login' AS event_type")
    >>> out = build_session_features(con)
    >>> out.matrix.values.shape, out.spec.event_types
    ((1, 43), ('login',))
    """
    if spec is not None and event_types is not None:
        raise ConfigError(
            "spec and event_types must not both be given, got both. Pass the saved spec alone."
        )
    all_events = events_relation(con)
    requested = None if session_ids is None else normalize_session_ids(session_ids)
    where, params = scope_filter(requested)
    holdout = None
    if spec is None:
        learn, learn_params = learning_relation(
            all_events, *((training.until, training.session_ids) if training else (None, None)))
        types = (
            tuple(event_types)
            if event_types is not None
            else top_event_types(con, max_event_types, relation=learn, params=learn_params)
        )
        from core.text.features import default_text_spec, require_text_spec

        text_spec = None if text is False else (
            require_text_spec(con) if text else default_text_spec(con))
        novelty = extras = history = None
        if training is not None:
            novelty, holdout = learn_novelty_and_holdout(
                con, learn, learn_params, holdout=training.novelty_holdout)
            extras = learn_extras(con, learn, learn_params, training.extras)
            if training.history is not None:
                history = learn_history(con, training.history, learn, learn_params)
        spec = FeatureSpec(types, text=text_spec, novelty=novelty, extras=extras,
                           history=history, sharing=POINT_IN_TIME)
    params = {
        **params,
        **{f"t{i}": t for i, t in enumerate(spec.event_types)},
        "pay_attempt": PAYMENT_ATTEMPT,
        "pay_failed": PAYMENT_FAILED,
        "add": ADD_TO_CART,
        "remove": REMOVE_FROM_CART,
    }
    started = time.perf_counter()
    timings: dict[str, float] = {}
    f, meta = _compute(con, spec, where, params, requested is not None, timings, holdout)
    if spec.extras is not None and spec.extras.columns:
        started_extras = time.perf_counter()
        f |= extra_feature_columns(con, spec.extras, where, params, meta["session_id"])
        timings["extras"] = time.perf_counter() - started_extras
    if spec.history is not None and spec.history.enabled:
        started_history = time.perf_counter()
        f |= history_feature_columns(con, spec.history, meta["session_id"])
        timings["history"] = time.perf_counter() - started_history
    if spec.text is not None:
        from core.text.features import text_feature_columns

        text_columns, text_spec = text_feature_columns(
            con, spec.text, meta["session_id"], scoped=requested is not None,
            progress=progress,
            session_end_us=meta["end_us"] if spec.sharing == POINT_IN_TIME else None)
        f |= text_columns
        spec = dataclasses.replace(spec, text=text_spec)  # PCA fitted when new
    names = spec.names
    rows = slice(None)
    if requested is not None:
        check_all_found(requested, meta["session_id"])
        rows = np.flatnonzero(pd.Index(meta["session_id"]).isin(requested))
    values = A.row_major(list(f.values()), None if requested is None else rows)  # 0 for NaN
    del f
    session_col = np.asarray(meta["session_id"][rows], dtype=object)
    frame = pd.DataFrame(
        {
            "session_id": session_col,
            "user_id": np.asarray(meta["user_id"][rows], dtype=object),
            "start_ts": pd.to_datetime(meta["start_us"][rows].astype("datetime64[us]")),
            "end_ts": pd.to_datetime(meta["end_us"][rows].astype("datetime64[us]")),
            "n_events": meta["n_events"][rows].astype(np.int64),
        }
    )
    log.info(
        "session features: %d sessions in %.2fs (%s)", len(session_col),
        time.perf_counter() - started,
        ", ".join(f"{k} {v:.2f}s" for k, v in timings.items()),
    )
    return SessionFeatures(matrix=FeatureMatrix(session_col, values, names), meta=frame,
                           spec=spec)
