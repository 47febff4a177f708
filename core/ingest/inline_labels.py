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
from core.ingest.sources import RawSource
from core.store import Store

MAX_LISTED = 5


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


def collect(store: Store, raws: Sequence[RawSource], column: str) -> pd.DataFrame:
    """event_id, is_anomaly (the label as written) of every labelled row this ingest derived
    an event from; call before the ingest's temp tables are dropped."""
    frames = [store.ingests.derived_labels(index, raw.table, column)
              for index, raw in enumerate(raws)]
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return frame.rename(columns={"label": "is_anomaly"}).drop_duplicates("event_id")


def store_labels(store: Store, frame: pd.DataFrame, column: str, report: IngestReport) -> None:
    """Store ``collect``'s labels as ground truth at the event level; say so in ``report``."""
    if frame.empty:
        report.notes.append(f"the labels column {column!r} holds no label: none stored.")
        return
    ingest_labels(store, frame[["event_id", "is_anomaly"]], level="event")
    n_anomalous = int(frame["is_anomaly"].str.lower().isin(TRUE_LABELS).sum())
    report.notes.append(
        f"stored {len(frame):,} ground-truth label(s) from column {column!r} "
        f"({n_anomalous:,} anomalous); the column is not kept among the events' features.")
