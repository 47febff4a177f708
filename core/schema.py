"""The canonical event schema every source is mapped onto, and the label vocabulary.

See docs/ARCHITECTURE.md for the whole data flow. Types are DuckDB type names.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    """One column of the canonical event table."""

    name: str
    sql_type: str
    required: bool
    description: str


EVENT_COLUMNS: tuple[Column, ...] = (
    Column("event_id", "VARCHAR", False, "unique id; a hash of the row when absent"),
    Column("user_id", "VARCHAR", True, "account"),
    Column("session_id", "VARCHAR", False, "visit; sessionized by an inactivity gap when absent"),
    Column("ts", "TIMESTAMP", True, "event time, UTC (ISO string, epoch seconds or ms)"),
    Column("event_type", "VARCHAR", True, "open vocabulary: login, view, purchase, ..."),
    Column("item_id", "VARCHAR", False, "item"),
    Column("category", "VARCHAR", False, "item category"),
    Column("amount", "DOUBLE", False, "price or order value"),
    Column("quantity", "INTEGER", False, "units"),
    Column("device_id", "VARCHAR", False, "device fingerprint"),
    Column("ip", "VARCHAR", False, "IP address"),
    Column("country", "VARCHAR", False, "ISO country code"),
    Column("user_agent", "VARCHAR", False, "browser user agent"),
    Column("payment_id", "VARCHAR", False, "payment instrument fingerprint (card, wallet)"),
    Column("text", "VARCHAR", False, "review or search text"),
    Column("merchant_id", "VARCHAR", False, "merchant, shop or terminal"),
)
"""Canonical columns in storage order. ``payment_id`` extends DESIGN.md's table so that card
testing and shared payment methods can be seen; it is optional like every other extra.
``merchant_id`` (store migration 12) comes last: stores created before it gain it by ALTER
TABLE, which appends the column after ``extra`` and ``ingest_id``, so inserts name their
columns."""

EVENT_COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in EVENT_COLUMNS)
REQUIRED_EVENT_COLUMNS: tuple[str, ...] = tuple(c.name for c in EVENT_COLUMNS if c.required)
STRING_EVENT_COLUMNS: tuple[str, ...] = tuple(
    c.name for c in EVENT_COLUMNS if c.sql_type == "VARCHAR" and c.name != "text"
)

# Longest accepted values. Longer cells are rejected row by row (see ingest), because silently
# cutting a review could hide what an analyst needs to read.
MAX_TEXT_CHARS = 20_000
MAX_FIELD_CHARS = 1_000

DEFAULT_EVENT_TYPE = "event"
"""The event type of every row of a source that has no event-type column (payments, logs with
an order only): ``event_type`` is required in the table, optional in a file."""
OPTIONAL_IN_SOURCE: dict[str, str] = {"event_type": DEFAULT_EVENT_TYPE}
"""Required columns a source may lack, with the value each of its rows then gets."""

LABEL_LEVELS: tuple[str, ...] = ("event", "session", "user")
LABEL_SOURCES: tuple[str, ...] = ("ground_truth", "analyst")
LABEL_LIKE_NAMES = frozenset({
    "is_anomaly", "anomaly", "is_anomalous", "label", "labels", "is_fraud", "fraud",
    "is_fraudulent", "fraudulent", "fraud_label", "class", "target", "is_attack", "attack",
    "ground_truth"})
"""Source column names that usually hold the answer: a detector must not learn from them."""
LABEL_LIKE_WORDS = frozenset({"fraud", "fraudulent", "anomaly", "anomalous", "label",
                              "attack", "chargeback"})
"""Words that make any column named with them answer-like (``TX_FRAUD``,
``TX_FRAUD_SCENARIO``, ``isFlaggedFraud``, ``chargeback_flag``): a simulator's own verdict or
a later outcome, which a detector must not read either. ``class`` and ``target`` count only
as the whole name (``target_url`` is not an answer)."""


def _name_words(column: str) -> list[str]:
    """The words of a column name: split at non-alphanumerics and camelCase humps."""
    import re

    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", column.strip())
    return [w for w in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if w]


def looks_like_label(column: str) -> bool:
    """True for a column named like ground truth (``is_fraud``, ``isFraud``, ``Class``), or
    with a word of ``LABEL_LIKE_WORDS`` in its name (``TX_FRAUD_SCENARIO``).

        >>> looks_like_label("isFraud"), looks_like_label("Class"), looks_like_label("amount")
        (True, True, False)
        >>> looks_like_label("TX_FRAUD"), looks_like_label("isFlaggedFraud")
        (True, True)
        >>> looks_like_label("target_url"), looks_like_label("classification_code")
        (False, False)
    """
    words = _name_words(column)
    return "_".join(words) in LABEL_LIKE_NAMES or any(w in LABEL_LIKE_WORDS for w in words)


NORMAL_SCENARIO = "normal"

DEFAULT_SESSION_GAP_MINUTES = 30
