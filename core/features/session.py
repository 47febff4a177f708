"""Session feature matrix: three DuckDB queries, then vectorised numpy reductions.

DuckDB does the work that needs strings: one GROUP BY session_id (ordered by session_id) with
the additive aggregates, the events' rowids in (session_id, ts) order, and one scan of the
event columns as numbers (timestamps, 64-bit hashes of event types and values); the three run
at once on their own cursors. numpy then reduces each session's contiguous run of events
(gaps, distinct values, novelty, sharing, cart) without a Python loop over rows: about half
the CPU of grouping 10M events by string keys in a dozen SQL steps. The distinct-value
reductions run on a second thread while this one does the rest (numpy's sorts and pandas'
hash tables release the GIL). Column meanings are in docs/FEATURES.md; values are bound
parameters, never formatted into SQL.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from core.datasets import FeatureMatrix
from core.errors import ConfigError, StoreError
from core.features import _arrays as A
from core.features._source import (
    check_all_found,
    event_columns,
    events_relation,
    normalize_session_ids,
    scope_filter,
    top_event_types,
    used_params,
)
from core.features.spec import (
    ADD_TO_CART,
    BASE_FEATURES,
    DEFAULT_MAX_EVENT_TYPES,
    NIGHT_HOURS,
    PAYMENT_ATTEMPT,
    PAYMENT_FAILED,
    REMOVE_FROM_CART,
    SMALL_AMOUNT,
    FeatureSpec,
    SessionFeatures,
)

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
    con: duckdb.DuckDBPyConnection, spec: FeatureSpec, where: str, params: dict[str, Any],
    scoped: bool, timings: dict[str, float],
) -> tuple[dict[str, np.ndarray], np.ndarray, dict[str, np.ndarray]]:
    """(sessions in session_id order, scan rows in (session_id, ts) order, event columns in
    scan order plus ``ms_sorted``, epoch milliseconds in (session_id, ts) order)."""
    c = event_columns(con)
    cols = ", ".join(f"{expr} AS {name}" for name, expr in c.items())
    text_scope = (f"AND {c['text']} IN (SELECT {c['text']} FROM events {where})"
                  if scoped else "")
    # Additive aggregates in the one GROUP BY session_id (multi-threaded in DuckDB); its
    # ORDER BY gives the session order of the sorted events below.
    queries = {"sessions": f"""
        WITH dup AS (
          SELECT {c['text']} AS dtext FROM events
          WHERE {c['text']} IS NOT NULL {text_scope}
          GROUP BY ALL HAVING count(DISTINCT user_id) > 1
        ), e AS (SELECT {cols} FROM events {where})
        SELECT session_id, any_value(user_id) AS user_id, count(*) AS n,
          epoch_us(min(ts)) AS start_us, epoch_us(max(ts)) AS end_us,
          sum(amount) AS amount_sum, max(amount) AS amount_max, count(amount) AS n_amounts,
          count(*) FILTER (amount >= 0 AND amount < {SMALL_AMOUNT}) AS n_small,
          count(text) AS n_texts, sum(length(text))::DOUBLE AS text_len_sum,
          count(d.dtext) AS n_dup_texts,
          max(quantity) FILTER (event_type = $add) AS cart_qty_max
        FROM e LEFT JOIN dup d ON d.dtext = e.text
        GROUP BY session_id ORDER BY session_id""",
               "order": f"""SELECT rowid AS r, epoch_ms(ts) AS ms FROM events {where}
                            ORDER BY session_id, ts"""}
    hashes = ", ".join(f"{A.hashed(col)} AS h_{col}" for col in _HASHED)
    queries["events"] = f"""
        WITH e AS (SELECT rowid AS r, {cols} FROM events {where})
        SELECT r, epoch_us(ts) AS t, hash(event_type) AS h_type, {hashes},
          if(item_id IS NULL, 0::UBIGINT, hash(item_id, category) | 1::UBIGINT) AS h_item,
          if(event_type IN ($add, $remove), {A.hashed('item_id')}, 0::UBIGINT) AS h_cart,
          coalesce(event_type = $add, false) AS is_add
        FROM e"""
    out = A.fetch_concurrently(con, queries, params, timings)
    sessions, rowids, ev = out["sessions"], out["order"]["r"], out["events"]
    ev["ms_sorted"] = out["order"]["ms"]  # epoch milliseconds, already in sorted order
    pos = A.inverse_permutation(rowids, ev.pop("r"))  # sorted position -> scan row
    return sessions, pos, ev


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


def _compute(
    con: duckdb.DuckDBPyConnection, spec: FeatureSpec, where: str, params: dict[str, Any],
    scoped: bool, timings: dict[str, float],
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(feature name -> float64 column, meta columns), both in session_id order."""
    sess, pos, ev = _queries(con, spec, where, params, scoped, timings)
    started = time.perf_counter()
    n = len(sess["session_id"])
    counts = sess["n"].astype(np.int64)
    seg_sorted = np.repeat(np.arange(n, dtype=np.int64), counts)
    seg = np.empty(len(pos), dtype=np.int64)
    seg[pos] = seg_sorted  # session of each scanned row
    start_us, end_us = sess["start_us"].astype(np.int64), sess["end_us"].astype(np.int64)
    f: dict[str, np.ndarray] = {}

    # Order and history: rank in the output order (start_ts, session_id); users' sessions.
    order = np.argsort(start_us, kind="stable")  # ties keep session_id order
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    user, _ = A.dense_codes(sess["user_id"])
    by_user = np.lexsort((rank, user))
    u_sorted = user[by_user]
    new_user = np.ones(n, dtype=bool)
    new_user[1:] = u_sorted[1:] != u_sorted[:-1]
    group_start = np.maximum.accumulate(np.where(new_user, np.arange(n), 0))
    n_prev = np.empty(n, dtype=np.int64)
    n_prev[by_user] = np.arange(n) - group_start
    # Distinct values per session on a second thread (numpy and pandas' hash tables release
    # the GIL) while this one computes the rest.
    codes = {col: ev.pop(f"h_{col}") for col in ("item", "user_agent", *_NOVEL)}
    pool = ThreadPoolExecutor(1, thread_name_prefix="features")
    distinct_job = pool.submit(_distinct_values, codes, seg, seg_sorted, pos, rank, user, n)
    pool.shutdown(wait=False)
    del codes
    first_us = np.empty(n, dtype=np.int64)
    first_us[by_user] = start_us[by_user][group_start]

    # Timing: gaps between consecutive events of a session, in seconds of whole milliseconds.
    f["n_events_log"] = _log1p(counts.astype(np.float64))
    f["duration_log"] = _log1p((_epoch_ms(end_us) - _epoch_ms(start_us)) / 1000.0)
    ms = ev.pop("ms_sorted")
    inner = seg_sorted[1:] == seg_sorted[:-1]
    gaps = (np.diff(ms) / 1000.0)[inner]
    del ms
    gap_seg = seg_sorted[1:][inner]
    n_gaps = counts - 1
    gap_mean = _ratio(A.seg_sum(gap_seg, gaps, n), n_gaps)
    gap_std = np.sqrt(_ratio(A.seg_sum(gap_seg, (gaps - gap_mean[gap_seg]) ** 2, n), n_gaps))
    with_gaps = n_gaps > 0
    gap_min, gap_max = np.full(n, np.nan), np.full(n, np.nan)
    if len(gaps):
        gap_starts = A.seg_starts(n_gaps[with_gaps])
        gap_min[with_gaps] = np.minimum.reduceat(gaps, gap_starts)
        gap_max[with_gaps] = np.maximum.reduceat(gaps, gap_starts)
    f |= {"gap_mean_log": _log1p(gap_mean), "gap_std_log": _log1p(gap_std),
          "gap_min_log": _log1p(gap_min), "gap_max_log": _log1p(gap_max),
          "gap_cv": _ratio(gap_std, gap_mean)}

    # Event types: per-event bucket (the spec's types, then <other>), counted per session.
    k = len(spec.event_types)
    type_codes, type_hashes = pd.factorize(ev.pop("h_type"), sort=False)
    names = _type_names(con, where, params, np.asarray(type_hashes, dtype=np.uint64))
    spec_index = {t: i for i, t in enumerate(spec.event_types)}
    bucket = np.array([spec_index.get(t, k) for t in names], dtype=np.int64)[type_codes]
    bucket *= n
    bucket += seg
    by_type = np.bincount(bucket, minlength=n * (k + 1)).reshape(k + 1, n)  # (types, sessions)
    del bucket

    def count_type(name: str) -> np.ndarray:
        if name in spec_index:
            return by_type[spec_index[name]]
        hit = np.array([t == name for t in names], dtype=bool)[type_codes]
        return A.seg_count(seg, hit, n)

    # Amounts (aggregated by DuckDB) and payments.
    amount_sum, amount_max = sess["amount_sum"], sess["amount_max"]
    n_amounts, n_failed = sess["n_amounts"], count_type(PAYMENT_FAILED)
    f |= {"amount_sum_log": _slog(amount_sum), "amount_max_log": _slog(amount_max),
          "amount_mean_log": _slog(_ratio(amount_sum, n_amounts)),
          "small_amount_share": _ratio(sess["n_small"], n_amounts),
          "n_payment_failed_log": _log1p(n_failed.astype(np.float64)),
          "payment_failure_ratio": _ratio(
              n_failed, np.maximum(count_type(PAYMENT_ATTEMPT), n_failed))}

    # Novelty against the user's earlier sessions, sharing between users (the distinct
    # (session, value) pairs come from the worker thread; categories are counted here, which
    # balances the two threads).
    n_categories = A.distinct_count(seg, ev.pop("h_category"), n)
    distinct, pairs = distinct_job.result()
    distinct["category"] = n_categories
    for col, short in _NOVEL.items():
        p_seg, p_id, p_hash, first = pairs[col]
        f[f"is_new_{short}"] = ((np.bincount(p_seg[first], minlength=n)[:n] > 0)
                                & (n_prev > 0)).astype(np.float64)
        if col in ("device_id", "ip"):
            if scoped:
                keys, n_other = _sharing_whole_table(con, event_columns(con)[col], where,
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
    f["n_removed_after_add_log"] = _log1p(_removed_after_add(
        seg, ev.pop("t"), ev.pop("h_cart"), ev.pop("is_add"), n).astype(np.float64))

    # Event-type counts: the spec's types, then <other> (every session has an event).
    # (k + 1, n), rows contiguous, written straight as the matrix's float32 (rounded once
    # from float64, as every column is); log1p of small integer counts is a table lookup
    log_counts = np.log1p(np.arange(int(by_type.max(initial=0)) + 1, dtype=np.float64))
    type_block = np.empty((2, k + 1, n), dtype=np.float32)
    np.take(log_counts.astype(np.float32), by_type, out=type_block[0])
    np.divide(by_type, counts, out=type_block[1], casting="unsafe")
    cols = [*type_block[0], *type_block[1]]
    f = {name: f[name] for name in BASE_FEATURES} | {f"_type{i}": c for i, c in enumerate(cols)}
    timings["numpy"] = time.perf_counter() - started
    meta = {"session_id": sess["session_id"], "user_id": sess["user_id"], "start_us": start_us,
            "end_us": end_us, "n_events": counts, "rank": rank}
    return f, meta


def _distinct_values(
    codes: dict[str, np.ndarray], seg: np.ndarray, seg_sorted: np.ndarray, pos: np.ndarray,
    rank: np.ndarray, user: np.ndarray, n: int,
) -> tuple[dict[str, np.ndarray], dict[str, tuple[np.ndarray, ...]]]:
    """(distinct values per session of items, user agents and the novelty columns, and for
    the novelty columns their (session, value id, value hash, is the user's first use)
    pairs)."""
    distinct: dict[str, np.ndarray] = {}
    distinct["item"] = A.distinct_count(seg, codes.pop("item"), n)  # no order needed
    distinct["user_agent"] = np.bincount(
        A.distinct_pairs(seg_sorted, codes.pop("user_agent")[pos])[0], minlength=n
    )[:n].astype(np.float64)
    pairs: dict[str, tuple[np.ndarray, ...]] = {}
    for col in _NOVEL:
        p_seg, p_id, p_hash = A.distinct_pairs(seg_sorted, codes.pop(col)[pos])
        distinct[col] = np.bincount(p_seg, minlength=n)[:n].astype(np.float64)
        pairs[col] = (p_seg, p_id, p_hash, A.first_uses(p_seg, p_id, rank, user, len(p_hash)))
    return distinct, pairs


def _type_names(
    con: duckdb.DuckDBPyConnection, where: str, params: dict[str, Any], hashes: np.ndarray
) -> list[str | None]:
    """Event type of each of ``hashes`` (DuckDB's hash of the type), checked collision-free."""
    rows = con.execute(
        f"SELECT event_type, hash(event_type) FROM events {where} GROUP BY event_type",
        used_params(f"{where}", params),
    ).fetchall()
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


def build_session_features(
    con: duckdb.DuckDBPyConnection,
    *,
    spec: FeatureSpec | None = None,
    event_types: Sequence[str] | None = None,
    max_event_types: int = DEFAULT_MAX_EVENT_TYPES,
    session_ids: Sequence[str] | None = None,
    text: bool | None = None,
    progress: bool | None = None,
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
    if spec is None:
        types = (
            tuple(event_types)
            if event_types is not None
            else top_event_types(con, max_event_types, relation=all_events)
        )
        from core.text.features import default_text_spec, require_text_spec

        text_spec = None if text is False else (
            require_text_spec(con) if text else default_text_spec(con))
        spec = FeatureSpec(types, text=text_spec)
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
    f, meta = _compute(con, spec, where, params, requested is not None, timings)
    if spec.text is not None:
        from core.text.features import text_feature_columns

        text_columns, text_spec = text_feature_columns(con, spec.text, meta["session_id"],
                                                       scoped=requested is not None,
                                                       progress=progress)
        f |= text_columns
        spec = FeatureSpec(spec.event_types, spec.version, text_spec)  # PCA fitted when new
    names = spec.names
    rows = np.argsort(meta["rank"])  # session_id order -> output order
    if requested is not None:
        check_all_found(requested, meta["session_id"])
        wanted = pd.Index(meta["session_id"][rows]).isin(requested)
        rows = rows[wanted]
    by_column = np.empty((len(names), len(meta["rank"])), dtype=np.float32)
    for j, column in enumerate(f.values()):
        by_column[j] = column  # contiguous writes
    del f
    values = np.ascontiguousarray(by_column.T)[rows]  # whole rows move at once
    del by_column
    np.copyto(values, 0.0, where=~np.isfinite(values))  # NaN and infinities -> 0
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
        "session features: %d sessions in %.2fs (%s)", len(rows), time.perf_counter() - started,
        ", ".join(f"{k} {v:.2f}s" for k, v in timings.items()),
    )
    return SessionFeatures(matrix=FeatureMatrix(session_col, values, names), meta=frame,
                           spec=spec)
