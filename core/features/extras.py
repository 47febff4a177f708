"""Extra source columns as session features.

Ingest keeps the source columns that are not canonical in ``events.extra`` (JSON). When a
model's feature spec is learned, each extra column seen in the training events is typed:

* **numeric** when at least 99% of its present values read as finite numbers: the session's
  mean (and its min and max when training sessions carry the column on several events);
* **datetime** when at least 99% of its present values read as dates or times (ISO 8601; an
  offset is honoured, none means UTC, like event times), or as epoch numbers in a column named
  like instants (``created_at``: ``EPOCH_RANGES``): the time from that instant to the
  event, ``extra_since_log[c]`` = ln(1 + seconds), the smallest in the session, 0 when the
  instant lies after the event. A sign-up time, an account's or a card's creation date: how
  soon after sign-up a purchase comes is among the strongest signals of payment fraud, and a
  relative time does not drift with the clock as the instant itself would;
* **categorical** when it has at most ``MAX_CATEGORIES`` distinct values: the session's
  largest *rarity* (-ln of the value's share of training events, unseen values as rare as one
  in the training count) and its events with a value never seen in training (log);
* otherwise **ignored** (ids, free text): the spec lists them with the reason. Numbers
  named like an identifier (``cc_num``, ``zip``, ``branch_no``: ``core.features.column_names``)
  are categorical when they have few values and ignored otherwise. A numeric
  column that follows the event time (a time step, a sequence number: Spearman |rho| >= 0.95
  with the event timestamps) is ignored too, unless the mapping types it: scored after its
  training window, every session would lie beyond the range it was trained on.

A model can allow or deny columns by name (``ExtraSelection``). A missing value is 0, as for
every feature. docs/FEATURES.md has the rules and why.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from core.errors import ConfigError, ModelError
from core.features._source import used_params
from core.features.column_names import looks_like_identifier, looks_like_time
from core.schema import looks_like_label
from core.store.features import frame as store_frame
from core.store.features import rows as store_rows
from core.store.ingest_sql import epoch_to_timestamp

MAX_CATEGORIES = 50
MAX_EXTRA_COLUMNS = 200
"""At most this many extra columns become features (the most frequent first)."""
NUMERIC_SHARE = 0.99
CLOCK_CORRELATION = 0.95
"""A numeric extra whose rank correlation with the event time reaches this is a counter or a
clock (a time step, a sequence number), not behaviour: it is ignored."""
CLOCK_SAMPLE = 200_000
EPOCH_RANGES = ((1e8, 4.2e9), (1e11, 4.2e12), (1e14, 4.2e15))
"""Epoch seconds, milliseconds and microseconds from 1973 to 2103: a numeric column named like
instants (``core.features.column_names.looks_like_time``) whose values lie here holds them."""
KINDS = ("numeric", "categorical", "datetime")


@dataclass(frozen=True)
class ExtraSelection:
    """Which extra columns a model may use: ``allow`` (None: all) minus ``deny``."""

    allow: tuple[str, ...] | None = None
    deny: tuple[str, ...] = ()
    types: Mapping[str, str] = field(default_factory=dict)
    """Type overrides by column: numeric, categorical, datetime or ignore."""

    def __post_init__(self) -> None:
        bad = {k: v for k, v in self.types.items() if v not in (*KINDS, "ignore")}
        if bad:
            raise ConfigError(
                f"extra column types must be numeric, categorical, datetime or ignore, got "
                f"{bad}. Fix "
                "the types in the mapping file."
            )

    def wants(self, name: str) -> bool:
        return (self.allow is None or name in self.allow) and name not in self.deny


@dataclass(frozen=True)
class ExtraColumn:
    """One extra column as features: its kind, and what was learned of it in training."""

    name: str
    kind: str
    stats: tuple[str, ...] = ("mean",)  # numeric: which session statistics
    values: tuple[str, ...] = ()  # categorical: training values ...
    rarity: tuple[float, ...] = ()  # ... and -ln(share of training events) of each
    unseen_rarity: float = 0.0  # categorical: rarity of a value never seen in training

    @property
    def names(self) -> tuple[str, ...]:
        if self.kind == "numeric":
            return tuple(f"extra_{s}[{self.name}]" for s in self.stats)
        if self.kind == "datetime":
            return (f"extra_since_log[{self.name}]",)
        return (f"extra_rarity[{self.name}]", f"extra_unseen_log[{self.name}]")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind}
        if self.kind == "numeric":
            out["stats"] = list(self.stats)
        elif self.kind == "categorical":
            out |= {"values": list(self.values), "rarity": list(self.rarity),
                    "unseen_rarity": self.unseen_rarity}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExtraColumn:
        kind = str(data["kind"])
        if kind not in KINDS:
            raise ModelError(f"extra column kind must be one of {KINDS}, got {kind!r}.")
        stats = tuple(data.get("stats", ("mean",))) if kind == "numeric" else ()
        return cls(str(data["name"]), kind, stats,
                   tuple(str(v) for v in data.get("values", ())),
                   tuple(float(v) for v in data.get("rarity", ())),
                   float(data.get("unseen_rarity", 0.0)))


@dataclass(frozen=True)
class ExtraSpec:
    """The extra columns a model uses, in column order, and those it left out (and why)."""

    columns: tuple[ExtraColumn, ...]
    ignored: tuple[tuple[str, str], ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n for c in self.columns for n in c.names)

    def to_dict(self) -> dict[str, Any]:
        return {"columns": [c.to_dict() for c in self.columns],
                "ignored": [list(p) for p in self.ignored]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExtraSpec:
        try:
            return cls(tuple(ExtraColumn.from_dict(c) for c in data["columns"]),
                       tuple((str(a), str(b)) for a, b in data.get("ignored", ())))
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"extra column spec is damaged ({exc}). Retrain the model.") from exc


def extra_path(name: str) -> str:
    """JSON path of a top-level key (quoted, so any key name works)."""
    return '$."' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _in_epoch_ranges(number: str) -> str:
    """SQL: ``number`` lies in one of ``EPOCH_RANGES``."""
    return " OR ".join(f"{number} BETWEEN {lo:.0e} AND {hi:.1e}" for lo, hi in EPOCH_RANGES)


def instant_us_sql(text: str) -> str:
    """SQL for the epoch microseconds of an extra value ``text``: an ISO 8601 instant, or an
    epoch number in ``EPOCH_RANGES`` whose unit its magnitude gives (as for event times);
    NULL otherwise."""
    number = f"TRY_CAST({text} AS DOUBLE)"
    epoch = epoch_to_timestamp(f"if({_in_epoch_ranges(number)}, {number}, NULL)")
    return f"coalesce(epoch_us(TRY_CAST({text} AS TIMESTAMPTZ)), epoch_us({epoch}))"


def extra_keys(con: duckdb.DuckDBPyConnection, relation: str, params: dict[str, Any],
               ) -> list[str]:
    """Keys of ``extra`` in ``relation``, most frequent first."""
    try:
        rows = store_rows(con, f"""
            SELECT k, count(*) AS n FROM (
              SELECT unnest(json_keys(extra)) AS k FROM {relation} e WHERE extra IS NOT NULL)
            GROUP BY k ORDER BY n DESC, k""", params)
    except duckdb.BinderException:  # a hand-made events table without ``extra``
        return []
    return [str(r[0]) for r in rows]


def learn_extras(con: duckdb.DuckDBPyConnection, relation: str, params: dict[str, Any],
                 selection: ExtraSelection | None = None) -> ExtraSpec | None:
    """Type the extra columns of the training events in ``relation``; None when there are
    none (or none is selected)."""
    selection = selection or ExtraSelection()
    keys = [k for k in extra_keys(con, relation, params) if selection.wants(k)]
    if not keys:
        return None
    columns: list[ExtraColumn] = []
    ignored: list[tuple[str, str]] = []
    for key in keys:
        if len(columns) >= MAX_EXTRA_COLUMNS:
            ignored.append((key, f"more than {MAX_EXTRA_COLUMNS} extra columns"))
            continue
        column = _type_column(con, relation, params, key, selection.types.get(key))
        if isinstance(column, str):
            ignored.append((key, column))
        else:
            columns.append(column)
    clocks = _time_rank_correlations(con, relation, params, [
        c.name for c in columns if c.kind == "numeric" and c.name not in selection.types])
    for name, rho in clocks.items():
        if abs(rho) >= CLOCK_CORRELATION:
            columns = [c for c in columns if c.name != name]
            ignored.append((name, f"follows the event time (rank correlation {rho:+.2f}): a "
                                  "counter or a clock, so every later session would look new. "
                                  "Type it numeric in the mapping to keep it"))
    return ExtraSpec(tuple(columns), tuple(ignored)) if columns or ignored else None


def _type_column(con: duckdb.DuckDBPyConnection, relation: str, params: dict[str, Any],
                 key: str, forced: str | None) -> ExtraColumn | str:
    """The column's features, or the reason it is ignored."""
    if forced == "ignore":
        return "ignored by the mapping"
    if forced is None and looks_like_label(key):
        return ("named like labels: a detector must not learn from the answer. Store it as "
                "labels (`anomalyst ingest --labels COLUMN`, or `anomalyst ingest-labels`), or "
                "type it in the mapping's extra_types to use it")
    p = {**params, "_xpath": extra_path(key)}
    value = "json_extract_string(extra, $_xpath)"
    in_epoch = _in_epoch_ranges("TRY_CAST(v AS DOUBLE)")
    n_present, n_numeric, n_dates, n_epoch, n_distinct, max_per_session = store_rows(con, f"""
        WITH v AS (SELECT session_id, {value} AS v FROM {relation} e WHERE extra IS NOT NULL),
        s AS (SELECT count(v) AS k FROM v GROUP BY session_id)
        SELECT (SELECT count(v) FROM v),
               (SELECT count(*) FROM v WHERE isfinite(TRY_CAST(v AS DOUBLE))),
               (SELECT count(*) FROM v WHERE TRY_CAST(v AS DOUBLE) IS NULL
                                         AND TRY_CAST(v AS TIMESTAMPTZ) IS NOT NULL),
               (SELECT count(*) FROM v WHERE {in_epoch}),
               (SELECT approx_count_distinct(v) FROM v),
               (SELECT coalesce(max(k), 0) FROM s)""", p)[0]
    if not n_present:
        return "no values in training"
    kind = forced or ("numeric" if n_numeric >= NUMERIC_SHARE * n_present else
                      "datetime" if n_dates >= NUMERIC_SHARE * n_present else
                      "categorical" if n_distinct <= MAX_CATEGORIES else "")
    if (kind == "numeric" and forced is None and looks_like_time(key)
            and n_epoch >= NUMERIC_SHARE * n_present):
        kind = "datetime"
    if not kind:
        return f"text with {n_distinct:,} distinct values (ids or free text)"
    if kind == "numeric" and forced is None and looks_like_identifier(key):
        if n_distinct > MAX_CATEGORIES:
            return (f"numbers named like an identifier, {n_distinct:,} distinct values: their "
                    "size means nothing, and ids handed out in order would make every newer "
                    "account look new. Map it to a canonical column (user_id, device_id, "
                    "payment_id, merchant_id) or type it numeric in the mapping's extra_types "
                    "to keep it")
        kind = "categorical"
    if kind == "numeric":
        stats = ("mean", "min", "max") if max_per_session > 1 else ("mean",)
        return ExtraColumn(key, "numeric", stats)
    if kind == "datetime":
        return ExtraColumn(key, "datetime", ())
    rows = store_rows(con, f"""
        SELECT v, count(*) FROM (SELECT {value} AS v FROM {relation} e
                                 WHERE extra IS NOT NULL)
        WHERE v IS NOT NULL GROUP BY v ORDER BY count(*) DESC, v LIMIT {MAX_CATEGORIES}""", p)
    total = float(n_present)
    return ExtraColumn(key, "categorical", (), tuple(str(v) for v, _ in rows),
                       tuple(-math.log(n / total) for _, n in rows), math.log(total + 1.0))


def _time_rank_correlations(con: duckdb.DuckDBPyConnection, relation: str,
                            params: dict[str, Any], keys: Sequence[str]) -> dict[str, float]:
    """Spearman's rank correlation of each numeric extra with the event time, over a sample
    of ``CLOCK_SAMPLE`` training events (one query for every column); a column constant in
    the sample, or a sample at one instant, has none."""
    if not keys:
        return {}
    p = dict(params)
    values, ranks, corrs = [], [], []
    for i, key in enumerate(keys):
        p[f"_c{i}"] = extra_path(key)
        values.append(f"if(isfinite(TRY_CAST(json_extract_string(extra, $_c{i}) AS DOUBLE)), "
                      f"TRY_CAST(json_extract_string(extra, $_c{i}) AS DOUBLE), NULL) AS x{i}")
        ranks.append(f"if(x{i} IS NULL, NULL, rank() OVER (ORDER BY x{i})) AS r{i}")
        corrs.append(f"corr(rt, r{i})")
    rows = store_rows(con, f"""
        WITH s AS (SELECT epoch_us(ts) AS t, {', '.join(values)} FROM {relation} e
                   WHERE extra IS NOT NULL USING SAMPLE reservoir({CLOCK_SAMPLE} ROWS)
                   REPEATABLE (7)),
        r AS (SELECT rank() OVER (ORDER BY t) AS rt, {', '.join(ranks)} FROM s)
        SELECT {', '.join(corrs)} FROM r""", p)
    out = {}
    for key, rho in zip(keys, rows[0] if rows else (), strict=False):
        if rho is not None and math.isfinite(rho):
            out[key] = float(rho)
    return out


def extra_feature_columns(con: duckdb.DuckDBPyConnection, spec: ExtraSpec, where: str,
                          params: dict[str, Any], session_ids: Sequence[Any],
                          ) -> dict[str, np.ndarray]:
    """Feature name -> float64 column aligned with ``session_ids`` (0 where missing)."""
    out: dict[str, np.ndarray] = {}
    index = pd.Index(np.asarray(session_ids, dtype=object))
    numeric = [c for c in spec.columns if c.kind == "numeric"]
    if numeric:
        paths, selects, aggs = {}, [], []
        for i, column in enumerate(numeric):
            paths[f"_x{i}"] = extra_path(column.name)
            selects.append(f"TRY_CAST(json_extract_string(extra, $_x{i}) AS DOUBLE) AS v{i}")
            value = f"if(isfinite(v{i}), v{i}, NULL)"
            aggs += [f"{'avg' if s == 'mean' else s}({value}) AS \"{n}\""
                     for s, n in zip(column.stats, column.names, strict=True)]
        frame = _per_session(con, selects, aggs, where, params, paths, index)
        out |= {n: frame[n].to_numpy(np.float64) for c in numeric for n in c.names}
    dates = [c for c in spec.columns if c.kind == "datetime"]
    if dates:
        out |= _since_columns(con, dates, where, params, index)
    for column in (c for c in spec.columns if c.kind == "categorical"):
        p = {**used_params(where, params), "_xc": extra_path(column.name)}
        frame = store_frame(con, f"""
            SELECT session_id, v, count(*) AS n FROM (
              SELECT session_id, json_extract_string(extra, $_xc) AS v FROM events {where})
            WHERE v IS NOT NULL GROUP BY ALL""", p)
        rarity_of = dict(zip(column.values, column.rarity, strict=True))
        known = frame["v"].map(rarity_of)
        frame["rarity"] = known.fillna(column.unseen_rarity).astype(np.float64)
        frame["unseen"] = np.where(known.isna(), frame["n"], 0).astype(np.float64)
        per = frame.groupby("session_id").agg(rarity=("rarity", "max"), unseen=("unseen", "sum"))
        per = per.reindex(index).fillna(0.0)
        rarity_name, unseen_name = column.names
        out[rarity_name] = per["rarity"].to_numpy(np.float64)
        out[unseen_name] = np.log1p(per["unseen"].to_numpy(np.float64))
    return {name: out[name] for name in spec.names}


def _since_columns(con: duckdb.DuckDBPyConnection, columns: Sequence[ExtraColumn], where: str,
                   params: dict[str, Any], index: pd.Index) -> dict[str, np.ndarray]:
    """``extra_since_log[c]`` of each datetime column: ln(1 + seconds from the instant to the
    event), the smallest in the session, 0 for an instant after the event or none."""
    paths, selects, aggs = {}, [], []
    for i, column in enumerate(columns):
        paths[f"_d{i}"] = extra_path(column.name)
        instant = instant_us_sql(f"json_extract_string(extra, $_d{i})")
        selects.append(f"(epoch_us(ts) - {instant}) / 1e6 AS d{i}")
        aggs.append(f'min(d{i}) AS "{column.names[0]}"')
    frame = _per_session(con, selects, aggs, where, params, paths, index)
    return {c.names[0]: np.log1p(np.maximum(frame[c.names[0]].to_numpy(np.float64), 0.0))
            for c in columns}


def _per_session(con: duckdb.DuckDBPyConnection, selects: Sequence[str], aggs: Sequence[str],
                 where: str, params: dict[str, Any], paths: dict[str, str], index: pd.Index,
                 ) -> pd.DataFrame:
    """Per-event ``selects`` aggregated per session by ``aggs``, aligned with ``index``; a
    missing or non-finite value is 0."""
    frame = store_frame(con, f"""
        SELECT session_id, {', '.join(aggs)} FROM (
          SELECT session_id, {', '.join(selects)} FROM events {where})
        GROUP BY session_id""", used_params(where, params) | paths).set_index("session_id")
    frame = frame.reindex(index).astype(np.float64)
    return frame.replace([np.inf, -np.inf], np.nan).fillna(0.0)
