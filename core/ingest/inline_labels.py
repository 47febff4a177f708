"""Labels that come in the events file itself (``anomalyst ingest FILE --labels COLUMN``).

Public fraud data sets ship the answer beside the features, in one file and often without an
id column (card payments: ``Time, V1..V28, Amount, Class``; mobile money: ``..., isFraud``).
``ingest-labels`` needs a key to join on, so such a column is read here instead, during the
events' ingest: its values are checked before anything is written (the vocabulary of
``core.ingest.labels``; an empty cell leaves its row unlabelled), the column is kept out of
the events' ``extra`` (a detector must not learn from the answer, whatever the column is
called), and once the events are stored, each labelled row's event gets a ground-truth label
under the id the ingest derived for it.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from core.errors import IngestError
from core.ingest.labels import FALSE_LABELS, TRUE_LABELS, ingest_labels
from core.ingest.report import IngestReport
from core.ingest.sequences import SequenceSource
from core.ingest.sources import RawSource
from core.store import Store

MAX_LISTED = 5
MIN_PER_CLASS = 5
"""Labelled rows of each class a column must cover before it is said to separate them."""


def check_column(store: Store, raw: RawSource, column: str) -> None:
    """Raise IngestError (nothing written) when ``raw`` lacks ``column`` or holds a value in
    it that is not a label."""
    if column not in raw.column_names:
        raise IngestError(
            f"{raw.label}: --labels names column {column!r}, which the file does not have. Its "
            f"columns are: {', '.join(raw.column_names)}. Nothing was written.")
    bad, n_bad = store.ingests.unreadable_labels(raw.table, column, (*TRUE_LABELS, *FALSE_LABELS),
                                                 MAX_LISTED)
    if bad:
        listed = "; ".join(f"{raw.row_label(row)}: {value!r}" for row, value in bad)
        raise IngestError(
            f"{raw.label}: {n_bad:,} value(s) of the labels column {column!r} are not labels, "
            f"e.g. {listed}. Nothing was written. Labels must be one of "
            f"{', '.join(TRUE_LABELS + FALSE_LABELS)} (an empty cell leaves its row unlabelled).")


def answer_columns(store: Store, raw: RawSource, column: str, extras: Sequence[str],
                   report: IngestReport) -> list[str]:
    """Extra columns that are the labels in another form: present on exactly the rows of one
    class (an anomaly type or fraud reason filled in for anomalies only, as HDFS traces'
    ``Type``). They are not kept (a detector would learn the answer, and the evaluation would
    flatter it); a note names each. A numeric column whose values alone split the classes
    (every anomalous value above every normal one) is kept, with a note: it may be the rule
    that defined the labels, or a strong signal in few labels."""
    # a sequence file's rows, not its events, are the sessions that carry the labels
    table = raw.inner.table if isinstance(raw, SequenceSource) and raw.inner else raw.table
    stats = store.ingests.separating_columns(table, column, extras, TRUE_LABELS, FALSE_LABELS)
    dropped = []
    for name, pos_has, neg_has, pos_not, neg_not, pos_lo, pos_hi, neg_lo, neg_hi in stats:
        n_pos, n_neg = pos_has + pos_not, neg_has + neg_not
        if n_pos < MIN_PER_CLASS or n_neg < MIN_PER_CLASS:
            continue
        if (pos_not == 0 and neg_has == 0) or (pos_has == 0 and neg_not == 0):
            which = "anomalous" if neg_has == 0 else "normal"
            dropped.append(name)
            report.notes.append(
                f"{raw.label}: column {name!r} is filled in on exactly the rows labelled "
                f"{which} by {column!r}: it is the answer in another form, so it is not kept "
                "(a detector would learn it, and the evaluation would flatter it). Ingest "
                "without --labels to keep it.")
            continue
        if min(pos_has, neg_has) < MIN_PER_CLASS or None in (pos_lo, pos_hi, neg_lo, neg_hi):
            continue
        assert pos_lo is not None and pos_hi is not None
        assert neg_lo is not None and neg_hi is not None
        if pos_lo > neg_hi or pos_hi < neg_lo:
            side = "above" if pos_lo > neg_hi else "below"
            report.notes.append(
                f"{raw.label}: column {name!r} alone splits the labels of {column!r}: every "
                f"anomalous row's value is {side} every normal row's. It is kept; if it is the "
                "rule that made the labels, an evaluation that reads it says little.")
    return dropped


def label_level(raws: Sequence[RawSource]) -> str:
    """Where the labels of ``raws`` belong: a file of sequences labels its rows, which are
    sessions (one label each, not one per event); any other file labels its events."""
    return "session" if raws and all(isinstance(r, SequenceSource) for r in raws) else "event"


def collect(store: Store, raws: Sequence[RawSource], column: str) -> pd.DataFrame:
    """<level>_id, is_anomaly (the label as written) of every labelled event (or session,
    ``label_level``) this ingest derived; call before the ingest's temp tables are dropped."""
    level = label_level(raws)
    if level == "session":
        frames = [store.ingests.derived_session_labels(index, raw.table, column, TRUE_LABELS)
                  for index, raw in enumerate(raws)]
    else:
        frames = [store.ingests.derived_labels(index, raw.table, column)
                  for index, raw in enumerate(raws)]
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return frame.rename(columns={"label": "is_anomaly"}).drop_duplicates(f"{level}_id")


def store_labels(store: Store, frame: pd.DataFrame, column: str, report: IngestReport) -> None:
    """Store ``collect``'s labels as ground truth (per event, or per session for a file of
    sequences); say so in ``report``."""
    if frame.empty:
        report.notes.append(f"the labels column {column!r} holds no label: none stored.")
        return
    level = "session" if "session_id" in frame.columns else "event"
    ingest_labels(store, frame[[f"{level}_id", "is_anomaly"]], level=level)
    n_anomalous = int(frame["is_anomaly"].str.lower().isin(TRUE_LABELS).sum())
    report.notes.append(
        f"stored {len(frame):,} ground-truth {level} label(s) from column {column!r} "
        f"({n_anomalous:,} anomalous); the column is not kept among the events' features.")
