"""Session feature matrix, computed in one DuckDB query (no Python loop over rows).

The query is composed from fixed fragments: event types and session ids are bound parameters,
never formatted into the text. Column meanings are in docs/FEATURES.md.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from core.datasets import FeatureMatrix
from core.errors import ConfigError
from core.features._source import (
    TempTables,
    check_all_found,
    events_relation,
    normalize_session_ids,
    scoped_relation,
    top_event_types,
)
from core.features.spec import (
    ADD_TO_CART,
    BASE_FEATURES,
    DEFAULT_MAX_EVENT_TYPES,
    META_COLUMNS,
    NIGHT_HOURS,
    PAYMENT_ATTEMPT,
    PAYMENT_FAILED,
    REMOVE_FROM_CART,
    SMALL_AMOUNT,
    FeatureSpec,
    SessionFeatures,
)

log = logging.getLogger(__name__)


def _log1p(expr: str) -> str:
    return f"ln(1 + greatest({expr}, 0))"


def _slog(expr: str) -> str:
    """Signed log1p: amounts may be negative (refunds)."""
    return f"(sign({expr}) * ln(1 + abs({expr})))"


def _ratio(num: str, den: str) -> str:
    return f"({num}) / nullif({den}, 0)"


_DAY_MS = 86_400_000
_HOUR = "(hour(s.start_ts) + minute(s.start_ts) / 60.0)"

# name -> SQL over the joined CTEs (s: sess, h: hist, g: gaps, n: nov, td: text_dup, c: cart).
# NULL (no data, absent column) becomes 0 in the final projection.
_BASE_SQL: dict[str, str] = {
    "n_events_log": _log1p("s.n_events"),
    "duration_log": _log1p("(epoch_ms(s.end_ts) - epoch_ms(s.start_ts)) / 1000.0"),
    "gap_mean_log": _log1p("g.gap_mean"),
    "gap_std_log": _log1p("g.gap_std"),
    "gap_min_log": _log1p("g.gap_min"),
    "gap_max_log": _log1p("g.gap_max"),
    "gap_cv": _ratio("g.gap_std", "g.gap_mean"),
    "amount_sum_log": _slog("s.amount_sum"),
    "amount_max_log": _slog("s.amount_max"),
    "amount_mean_log": _slog("s.amount_mean"),
    "small_amount_share": _ratio("s.n_small_amounts", "s.n_amounts"),
    "n_payment_failed_log": _log1p("s.n_pay_failed"),
    "payment_failure_ratio": _ratio("s.n_pay_failed", "greatest(s.n_pay_attempts, s.n_pay_failed)"),
    "n_devices_log": _log1p("n.n_devices"),
    "n_ips_log": _log1p("n.n_ips"),
    "n_countries_log": _log1p("n.n_countries"),
    "n_items_log": _log1p("i.n_items"),
    "n_payment_ids_log": _log1p("n.n_payments"),
    "n_categories_log": _log1p("i.n_categories"),
    "n_user_agents_log": _log1p("n.n_user_agents"),
    # A user's first session is all "new"; that is signup, not takeover, so the flags need history.
    "is_new_device": "CASE WHEN h.n_prev > 0 THEN n.new_device END",
    "is_new_country": "CASE WHEN h.n_prev > 0 THEN n.new_country END",
    "is_new_payment_id": "CASE WHEN h.n_prev > 0 THEN n.new_payment END",
    "is_new_ip": "CASE WHEN h.n_prev > 0 THEN n.new_ip END",
    "amount_vs_user_max_log": f"{_slog('s.amount_max')} - {_slog('h.prev_amount_max')}",
    "is_amount_above_user_max": "(s.amount_max > h.prev_amount_max)::INTEGER",
    "user_age_days_log": _log1p(f"(epoch_ms(s.start_ts) - epoch_ms(h.user_first_ts)) / {_DAY_MS}"),
    "n_prev_sessions_log": _log1p("h.n_prev"),
    "device_other_users_log": _log1p("n.device_others"),
    "ip_other_users_log": _log1p("n.ip_others"),
    "hour_sin": f"sin(2 * pi() * {_HOUR} / 24)",
    "hour_cos": f"cos(2 * pi() * {_HOUR} / 24)",
    "is_night": f"(hour(s.start_ts) >= {NIGHT_HOURS[0]} AND hour(s.start_ts) < {NIGHT_HOURS[1]})"
    "::INTEGER",
    "is_weekend": "(isodow(s.start_ts) >= 6)::INTEGER",
    "text_share": _ratio("s.n_texts", "s.n_events"),
    "text_len_mean_log": _log1p("s.text_len_mean"),
    "text_dup_share": _ratio("c.n_dup_texts", "s.n_texts"),
    "cart_qty_max_log": _log1p("s.cart_qty_max"),
    "n_removed_after_add_log": _log1p("c.n_removed_after_add"),
}
if tuple(_BASE_SQL) != BASE_FEATURES:  # pragma: no cover - guards edits of the two lists
    raise RuntimeError("_BASE_SQL must define BASE_FEATURES in the same order.")

# Novelty and sharing work on the (session, kind, value) triples of these columns.
_KINDS: tuple[tuple[str, str], ...] = (
    ("devices", "device_id"),
    ("ips", "ip"),
    ("countries", "country"),
    ("payments", "payment_id"),
    ("user_agents", "user_agent"),
)


def _compute(
    tt: TempTables, n_types: int, *, all_events: str, src: str, scoped: bool,
    params: dict[str, Any], projection: str,
) -> dict[str, np.ndarray]:
    """Run the steps; return the final projection as numpy columns."""
    if scoped:  # the requested sessions' users, materialized once
        src = tt.create("scope", f"SELECT * FROM {src}", params)
    type_counts = "".join(
        f"count(*) FILTER (event_type = $t{i}) AS c{i},\n" for i in range(n_types)
    )
    type_sums = "".join(f"sum(c{i}) AS c{i},\n" for i in range(n_types))
    attrs = ", ".join(col for _, col in _KINDS)
    # Level 1 groups by session and its usually-constant attributes (device, IP, ...), so one
    # pass over the events yields both the additive aggregates and the distinct attribute values;
    # DuckDB's DISTINCT aggregates and string min/max are several times slower at 10M rows.
    combos = tt.create("combos", f"""
        SELECT session_id, {attrs},
          any_value(user_id) AS user_id, min(ts) AS start_ts, max(ts) AS end_ts,
          count(*) AS n_events,
          {type_counts}
          sum(amount) AS amount_sum, max(amount) AS amount_max, count(amount) AS n_amounts,
          count(*) FILTER (amount >= 0 AND amount < {SMALL_AMOUNT}) AS n_small_amounts,
          count(*) FILTER (event_type = $pay_attempt) AS n_pay_attempts,
          count(*) FILTER (event_type = $pay_failed) AS n_pay_failed,
          count(text) AS n_texts, sum(length(text)) AS text_len_sum,
          max(quantity) FILTER (event_type = $add) AS cart_qty_max
        FROM {src} GROUP BY ALL""", params)
    sess = tt.create("sess", f"""
        SELECT session_id, min(user_id) AS user_id, min(start_ts) AS start_ts,
          max(end_ts) AS end_ts, sum(n_events)::BIGINT AS n_events,
          {type_sums}
          sum(amount_sum) AS amount_sum, max(amount_max) AS amount_max,
          sum(amount_sum) / nullif(sum(n_amounts), 0) AS amount_mean,
          sum(n_amounts) AS n_amounts, sum(n_small_amounts) AS n_small_amounts,
          sum(n_pay_attempts) AS n_pay_attempts, sum(n_pay_failed) AS n_pay_failed,
          sum(n_texts) AS n_texts, sum(text_len_sum) / nullif(sum(n_texts), 0) AS text_len_mean,
          max(cart_qty_max) AS cart_qty_max
        FROM {combos} GROUP BY session_id""")
    distinct_vals = " UNION ALL ".join(
        f"SELECT DISTINCT session_id, {k} AS kind, {col} AS v FROM {combos} "
        f"WHERE {col} IS NOT NULL"
        for k, (_, col) in enumerate(_KINDS)
    )
    hist = tt.create("hist", f"""
        SELECT session_id, user_id, row_number() OVER w - 1 AS n_prev,
          min(start_ts) OVER (PARTITION BY user_id) AS user_first_ts,
          max(amount_max) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
            AS prev_amount_max
        FROM {sess} WINDOW w AS (PARTITION BY user_id ORDER BY start_ts, session_id)""")
    vals = tt.create("vals", f"""
        SELECT x.session_id, h.user_id, h.n_prev, x.kind, x.v
        FROM ({distinct_vals}) x JOIN {hist} h ON h.session_id = x.session_id""")
    items = tt.create("items", f"""
        SELECT session_id, count(item_id) AS n_items, count(DISTINCT category) AS n_categories
        FROM (SELECT session_id, item_id, category FROM {src}
              WHERE item_id IS NOT NULL OR category IS NOT NULL GROUP BY ALL)
        GROUP BY session_id""")
    gaps = tt.create("gaps", f"""
        SELECT session_id, avg(gap) AS gap_mean, stddev_pop(gap) AS gap_std,
          min(gap) AS gap_min, max(gap) AS gap_max
        FROM (SELECT session_id,
                (epoch_ms(ts) - lag(epoch_ms(ts)) OVER (PARTITION BY session_id ORDER BY ts))
                  / 1000.0 AS gap
              FROM {src})
        GROUP BY session_id""")
    # n_prev orders a user's sessions without ties, so the first session that used a value is
    # the one with the smallest n_prev; one row per (user, kind, value) also counts sharing.
    firsts = tt.create("firsts", f"""
        SELECT user_id, kind, v, min(n_prev) AS first_prev FROM {vals}
        WHERE kind < 4 GROUP BY ALL""")
    if scoped:  # sharing counts users over the whole table, not only the scoped users
        sharing = " UNION ALL ".join(
            f"SELECT {k} AS kind, {col} AS v, count(DISTINCT user_id) - 1 AS n_other "
            f"FROM {all_events} WHERE {col} IN (SELECT v FROM {vals} WHERE kind = {k}) "
            "GROUP BY ALL"
            for k, (_, col) in enumerate(_KINDS[:2])
        )
        text_scope = f"AND text IN (SELECT text FROM {src} WHERE text IS NOT NULL)"
    else:
        sharing = (
            f"SELECT kind, v, count(*) - 1 AS n_other FROM {firsts} "
            "WHERE kind IN (0, 1) GROUP BY ALL"
        )
        text_scope = ""
    nov = tt.create("nov", f"""
        WITH sharing AS ({sharing})
        SELECT x.session_id,
          count(*) FILTER (x.kind = 0) AS n_devices,
          count(*) FILTER (x.kind = 1) AS n_ips,
          count(*) FILTER (x.kind = 2) AS n_countries,
          count(*) FILTER (x.kind = 3) AS n_payments,
          count(*) FILTER (x.kind = 4) AS n_user_agents,
          max((x.kind = 0 AND f.first_prev = x.n_prev)::INTEGER) AS new_device,
          max((x.kind = 1 AND f.first_prev = x.n_prev)::INTEGER) AS new_ip,
          max((x.kind = 2 AND f.first_prev = x.n_prev)::INTEGER) AS new_country,
          max((x.kind = 3 AND f.first_prev = x.n_prev)::INTEGER) AS new_payment,
          max(CASE WHEN x.kind = 0 THEN sh.n_other END) AS device_others,
          max(CASE WHEN x.kind = 1 THEN sh.n_other END) AS ip_others
        FROM {vals} x
        LEFT JOIN {firsts} f ON f.user_id = x.user_id AND f.kind = x.kind AND f.v = x.v
        LEFT JOIN sharing sh ON sh.kind = x.kind AND sh.v = x.v
        GROUP BY x.session_id""")
    extras = tt.create("extras", f"""
        WITH text_users AS (
          SELECT text, count(DISTINCT user_id) AS n_users
          FROM {all_events} WHERE text IS NOT NULL {text_scope} GROUP BY text
        ), text_dup AS (
          SELECT e.session_id, count(*) FILTER (t.n_users > 1) AS n_dup_texts, 0 AS n_removed
          FROM {src} e JOIN text_users t ON e.text = t.text GROUP BY e.session_id
        ), cart AS (
          SELECT session_id, 0 AS n_dup_texts, count(*) AS n_removed
          FROM (SELECT session_id, item_id,
                  min(ts) FILTER (event_type = $add) AS first_add,
                  max(ts) FILTER (event_type = $remove) AS last_remove
                FROM {src} WHERE event_type IN ($add, $remove) AND item_id IS NOT NULL
                GROUP BY ALL)
          WHERE last_remove >= first_add GROUP BY session_id
        )
        SELECT session_id, sum(n_dup_texts) AS n_dup_texts, sum(n_removed) AS n_removed_after_add
        FROM (SELECT * FROM text_dup UNION ALL SELECT * FROM cart) GROUP BY session_id""",
        params)
    where = "WHERE s.session_id IN (SELECT unnest($session_ids))" if scoped else ""
    order = tt.create("order", f"""
        SELECT session_id, (row_number() OVER (ORDER BY start_ts, session_id) - 1)::BIGINT AS idx
        FROM {sess} s {where}""", params)
    # Sorting the narrow (session, idx) table and scattering rows in numpy is much cheaper than
    # ORDER BY over ~100 wide columns.
    return tt.query("features", f"""
        SELECT o.idx, {projection}
        FROM {order} o
        JOIN {sess} s ON s.session_id = o.session_id
        JOIN {hist} h ON h.session_id = s.session_id
        LEFT JOIN {items} i ON i.session_id = s.session_id
        LEFT JOIN {gaps} g ON g.session_id = s.session_id
        LEFT JOIN {nov} n ON n.session_id = s.session_id
        LEFT JOIN {extras} c ON c.session_id = s.session_id""")


def _type_sql(n_types: int) -> list[str]:
    counts = [f"s.c{i}" for i in range(n_types)]
    other = "s.n_events" + "".join(f" - {c}" for c in counts)
    buckets = [*counts, f"({other})"]
    return [_log1p(b) for b in buckets] + [_ratio(b, "s.n_events") for b in buckets]


def build_session_features(
    con: duckdb.DuckDBPyConnection,
    *,
    spec: FeatureSpec | None = None,
    event_types: Sequence[str] | None = None,
    max_event_types: int = DEFAULT_MAX_EVENT_TYPES,
    session_ids: Sequence[str] | None = None,
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
    src, params = scoped_relation(all_events, requested)
    if spec is None:
        types = (
            tuple(event_types)
            if event_types is not None
            else top_event_types(con, max_event_types, relation=all_events)
        )
        spec = FeatureSpec(types)
    n_types = len(spec.event_types)
    exprs = [_BASE_SQL[name] for name in BASE_FEATURES] + _type_sql(n_types)
    projection = ", ".join(
        ["s.session_id", "s.user_id", "s.start_ts", "s.end_ts", "s.n_events"]
        + [f"coalesce(({e})::FLOAT, 0) AS f{j}" for j, e in enumerate(exprs)]
    )
    params = {
        **params,
        **{f"t{i}": t for i, t in enumerate(spec.event_types)},
        "pay_attempt": PAYMENT_ATTEMPT,
        "pay_failed": PAYMENT_FAILED,
        "add": ADD_TO_CART,
        "remove": REMOVE_FROM_CART,
    }
    started = time.perf_counter()
    with TempTables(con, "feat") as tt:
        cols = _compute(
            tt, n_types, all_events=all_events, src=src, scoped=requested is not None,
            params=params, projection=projection,
        )
        timings = tt.timings
    n = len(cols["session_id"])
    pos = np.asarray(cols["idx"], dtype=np.int64)
    order = np.empty(n, dtype=np.int64)
    order[pos] = np.arange(n)  # row r of the result goes to position pos[r]
    values = np.empty((n, len(exprs)), dtype=np.float32)
    for j in range(len(exprs)):
        values[:, j] = np.asarray(cols[f"f{j}"], dtype=np.float32)[order]
    np.nan_to_num(values, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    cols = {k: np.asarray(cols[k])[order] for k in META_COLUMNS}
    session_col = np.asarray(cols["session_id"], dtype=object)
    if requested is not None:
        check_all_found(requested, session_col)
    meta = pd.DataFrame(
        {
            "session_id": session_col,
            "user_id": np.asarray(cols["user_id"], dtype=object),
            "start_ts": pd.to_datetime(np.asarray(cols["start_ts"])),
            "end_ts": pd.to_datetime(np.asarray(cols["end_ts"])),
            "n_events": np.asarray(cols["n_events"], dtype=np.int64),
        }
    )
    log.info(
        "session features: %d sessions in %.2fs (%s)", n, time.perf_counter() - started,
        ", ".join(f"{k} {v:.2f}s" for k, v in timings.items()),
    )
    matrix = FeatureMatrix(session_col, values, spec.names)
    return SessionFeatures(matrix=matrix, meta=meta, spec=spec)
