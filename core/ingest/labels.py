"""Label ingest: ground truth per event, session or user, with an optional scenario.

Accepted layouts:
- long: columns ``level`` (event|session|user) and ``entity_id``;
- wide: one key column — ``event_id``, ``session_id`` or ``user_id`` (the most specific one
  present decides the level, or pass ``level``).
The label column is the first of ``is_anomaly``, ``label``, ``is_fraud``, ``anomaly``. A file
without one is refused unless ``all_anomalous`` (``--all-anomalous``) says that it lists
anomalies only: a label column under another name (``class``, ``target``) must not silently
turn every row into an anomaly. ``scenario`` and ``note`` are optional.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pandas as pd

from core.errors import IngestError
from core.ingest.report import IngestReport
from core.ingest.sources import (
    RawSource,
    load_source,
    source_label,
    unreadable_source_message,
)
from core.schema import LABEL_LEVELS, LABEL_SOURCES
from core.store import Store
from core.store.ingest_sql import quote_ident, quote_literal

LABEL_COLUMNS = ("is_anomaly", "label", "is_fraud", "anomaly")
TRUE_LABELS = ("1", "1.0", "true", "t", "yes", "y", "anomaly", "anomalous", "fraud", "fail",
               "failed", "failure")
FALSE_LABELS = ("0", "0.0", "false", "f", "no", "n", "normal", "legit", "legitimate", "benign",
                "success", "succeeded")


def ingest_labels(
    store: Store,
    source: str | Path | pd.DataFrame,
    *,
    level: str | None = None,
    label_source: str = "ground_truth",
    encoding: str = "utf-8",
    all_anomalous: bool = False,
) -> IngestReport:
    """Store labels from ``source``; re-ingesting replaces a label of the same level, id and
    source, so the operation is idempotent. ``all_anomalous``: the file has no label column
    and every id it lists is anomalous (without it such a file is refused)."""
    if label_source not in LABEL_SOURCES:
        raise IngestError(f"label source must be one of {LABEL_SOURCES}, got {label_source!r}.")
    if level is not None and level not in LABEL_LEVELS:
        raise IngestError(f"level must be one of {', '.join(LABEL_LEVELS)}, got {level!r}.")
    report = IngestReport("labels", [source_label(source)])
    raw = load_source(store, source, 0, encoding=encoding)
    try:
        _stage_labels(store, raw, level, all_anomalous)
        if all_anomalous:
            report.notes.append(f"no label column: all {raw.n_rows:,} listed ids were taken "
                                "as anomalous (--all-anomalous).")
        report.n_rows = raw.n_rows
        bad, n_bad = store.ingests.bad_labels(5)
        if bad:
            listed = "; ".join(f"{raw.row_label(r)}: {why}" for r, why in bad)
            raise IngestError(
                f"{raw.label}: {n_bad:,} label row(s) are invalid, e.g. {listed}. Nothing was "
                f"written. Labels must be one of {', '.join(TRUE_LABELS + FALSE_LABELS)}; ids "
                "must not be empty."
            )
        clash = store.ingests.label_clash()
        if clash:
            raise IngestError(
                f"{raw.label}: {clash[0]} {clash[1]!r} is labelled both anomalous and "
                "normal. Nothing was written. Keep one label per id."
            )
        n_unique = store.ingests.dedupe_staged_labels()
        unknown = store.labels.unknown_staged_ids()
        if unknown:
            report.notes.append(
                f"{unknown:,} label(s) name ids not in the store yet; they apply once those "
                "events are ingested."
            )
        started = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        with store.transaction():
            ingest_id = store.ingests.next_id()
            store.labels.upsert_staged(source=label_source, created_at=started,
                                       ingest_id=ingest_id)
            report.ingest_id = ingest_id
            report.n_added = n_unique
            report.n_duplicates = raw.n_rows - n_unique
            store.ingests.record(ingest_id, kind="labels", source=report.sources[0],
                                 started_at=started, n_rows=raw.n_rows, n_added=n_unique,
                                 n_duplicates=report.n_duplicates, n_rejected=0,
                                 notes=" ".join(report.notes))
    finally:
        store.ingests.drop_temp("_label_stage", raw.table)
    return report


def _stage_labels(store: Store, raw: RawSource, level: str | None, all_anomalous: bool
                  ) -> None:
    """Copy the typed labels into ``_label_stage``; a Parquet page that turns out damaged
    while read is the house message naming the file."""
    try:
        store.ingests.stage_labels(_stage_sql(raw, level, all_anomalous))
    except duckdb.Error as exc:
        raise IngestError(unreadable_source_message(store, [raw], exc)) from exc


def _stage_sql(raw, level: str | None, all_anomalous: bool = False) -> str:
    names = {c.lower(): c for c in raw.column_names}
    if "level" in names and "entity_id" in names and level is None:
        level_expr = f"lower(trim(CAST({quote_ident(names['level'])} AS VARCHAR)))"
        id_col = names["entity_id"]
    else:
        key_for = {"event": "event_id", "session": "session_id", "user": "user_id"}
        if level is None:
            level = next((lv for lv in LABEL_LEVELS if key_for[lv] in names), None)
        if level is None or key_for[level] not in names:
            wanted = key_for[level] if level else "event_id, session_id or user_id"
            raise IngestError(
                f"{raw.label}: a labels file needs a {wanted} column (or level + entity_id), "
                f"got columns {', '.join(raw.column_names)}. Rename the key column."
            )
        level_expr = quote_literal(level)
        id_col = names[key_for[level]]
    label_col = next((names[c] for c in LABEL_COLUMNS if c in names), None)
    if label_col is None and not all_anomalous:
        raise IngestError(
            f"{raw.label}: a labels file must have a label column ({', '.join(LABEL_COLUMNS)}), "
            f"got columns {', '.join(raw.column_names)}. Nothing was written. Rename the label "
            "column, or pass --all-anomalous if the file lists anomalies only."
        )
    if label_col is not None and all_anomalous:
        raise IngestError(
            f"{raw.label}: --all-anomalous must not be used with a label column, got "
            f"{label_col!r}. Leave the option out to use the column's labels."
        )
    text = f"lower(trim(CAST({quote_ident(label_col)} AS VARCHAR)))" if label_col else "'1'"
    true_list = ", ".join(quote_literal(v) for v in TRUE_LABELS)
    false_list = ", ".join(quote_literal(v) for v in FALSE_LABELS)
    scenario = (
        f"NULLIF(trim(CAST({quote_ident(names['scenario'])} AS VARCHAR)), '')"
        if "scenario" in names else "CAST(NULL AS VARCHAR)"
    )
    note = (
        f"CAST({quote_ident(names['note'])} AS VARCHAR)" if "note" in names
        else "CAST(NULL AS VARCHAR)"
    )
    entity = f"NULLIF(trim(CAST({quote_ident(id_col)} AS VARCHAR)), '')"
    levels = ", ".join(quote_literal(v) for v in LABEL_LEVELS)
    return f"""
        SELECT rowid AS _row, {level_expr} AS level, {entity} AS entity_id,
               CASE WHEN {text} IN ({true_list}) THEN true
                    WHEN {text} IN ({false_list}) THEN false END AS is_anomaly,
               {scenario} AS scenario, {note} AS note,
               NULLIF(concat_ws('; ',
                   CASE WHEN {entity} IS NULL THEN 'id is empty' END,
                   CASE WHEN {level_expr} NOT IN ({levels}) OR {level_expr} IS NULL
                        THEN 'level must be event, session or user' END,
                   CASE WHEN {text} IS NULL OR {text} NOT IN ({true_list}, {false_list})
                        THEN 'label ' || coalesce({text}, '(empty)') || ' is not a label' END
               ), '') AS _reason
        FROM {quote_ident(raw.table)}
    """
