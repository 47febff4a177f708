"""The steps of a partitioned run, each a pure function of pandas frames.

A run splits events by a hash of the user, so every user's history is whole in one
partition. Some features look across users: device and IP sharing, duplicated texts, the
entity history windows (how busy a device, IP, card or merchant was), text similarity. For
those a partition also receives, as *context*, every session of another user that touches
one of its values, plus that user's first session (which makes the user "new" or not), and
every session with a text long enough for similarity. Context is scored by nobody; it only
makes the partition's own features what a single store would compute.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core.errors import ConfigError
from core.schema import DEFAULT_SESSION_GAP_MINUTES

PART = "_part"
"""The user partition of a row."""
TARGET = "_target"
"""The partition a row is sent to (its own, or another that needs it as context)."""
OWN = "_own"
"""Whether the row belongs to the partition it is sent to (only those sessions are scored)."""
FIRST = "_first"
"""Whether the row's session starts at its user's first session start."""
HELPER_COLUMNS = (PART, TARGET, OWN, FIRST)

SCORE_COLUMNS = ("model_id", "session_id", "user_id", "score")
"""What a run writes, one row per scored session."""

_SHARING_COLUMNS = ("device_id", "ip")


@dataclass(frozen=True)
class ContextRule:
    """What ties one partition to the others for a model's features."""

    columns: tuple[str, ...] = ()
    """Value columns whose sessions are context wherever another partition uses the value."""
    text_min_chars: int | None = None
    """Sessions with a text this long go to every partition (text similarity); None: none."""

    @property
    def is_empty(self) -> bool:
        return not self.columns and self.text_min_chars is None


_ARROW_TYPES = {"VARCHAR": "string", "TIMESTAMP": "timestamp[us]", "DOUBLE": "float64",
                "INTEGER": "int32"}


def canonical_schema() -> Any:
    """The Arrow schema of ``canonical_partition``'s rows: fixed, so partitions whose columns
    are all empty still line up."""
    import pyarrow as pa

    from core.schema import EVENT_COLUMNS

    fields = [pa.field(c.name, pa.type_for_alias(_ARROW_TYPES[c.sql_type]))
              for c in EVENT_COLUMNS]
    return pa.schema([*fields, pa.field("extra", pa.string()), pa.field(FIRST, pa.bool_()),
                      pa.field(PART, pa.int64())])


def context_rule(input_spec: dict[str, Any]) -> ContextRule:
    """The cross-user parts of a model's input spec (``inputs.json``): sharing, duplicated
    texts, entity history and text similarity. Sequences look at one session only."""
    if input_spec.get("kind") != "features":
        return ContextRule()
    features = input_spec.get("features") or {}
    columns: list[str] = list(_SHARING_COLUMNS)
    history = features.get("history") or {}
    if history.get("enabled", False):
        columns += [c for c in history.get("entity_columns", ()) if c not in columns]
    text = features.get("text")
    columns.append("text")  # duplicated texts (text_dup_share) count other users' texts
    min_chars = None if not text else int(text.get("min_sim_chars", 0))
    return ContextRule(tuple(columns), min_chars)


def user_partition(user_ids: Sequence[Any] | np.ndarray, n_partitions: int) -> np.ndarray:
    """Each user's partition in [0, n): a fixed hash of the id, the same in every process."""
    if n_partitions < 1:
        raise ConfigError(f"partitions must be at least 1, got {n_partitions}.")
    values = np.asarray(user_ids, dtype=object)
    return (pd.util.hash_array(values, categorize=True) % np.uint64(n_partitions)).astype(
        np.int64)


def user_column(columns: Sequence[str], mapping: Any = None) -> str:
    """The source column that holds the user id (the mapping's, an alias, or ``user_id``)."""
    from core.ingest import ColumnMapping

    return (mapping or ColumnMapping()).resolve(list(columns), "events")["user_id"]


def with_partition(frame: pd.DataFrame, n_partitions: int, column: str = "user_id",
                   ) -> pd.DataFrame:
    """``frame`` with the partition of its user (``column``) in ``_part``."""
    return frame.assign(**{PART: user_partition(frame[column].astype(str).to_numpy(),
                                                n_partitions)})


def canonical_partition(raw: pd.DataFrame, *, mapping: Any = None,
                        session_gap_minutes: float | None = None,
                        unit: str = "session") -> pd.DataFrame:
    """One partition's raw rows as canonical events (sessions and event ids derived, rows
    validated as ``anomalyst ingest`` does), with ``_first`` and the partition kept."""
    from core.ingest import ingest_events
    from core.store import Store

    part = raw[PART].iloc[0] if len(raw) else 0
    source = raw.drop(columns=[c for c in HELPER_COLUMNS if c in raw.columns])
    gap = DEFAULT_SESSION_GAP_MINUTES if session_gap_minutes is None else session_gap_minutes
    with Store.open(":memory:") as store:
        ingest_events(store, source, mapping=mapping, session_gap_minutes=gap, unit=unit)
        canonical = store.ingests.canonical_events()
    return canonical.assign(**{PART: np.int64(part)})


def context_sessions(canonical: pd.DataFrame, rule: ContextRule, n_partitions: int,
                     ) -> pd.DataFrame:
    """(session_id, _target): the sessions each partition needs from the others (in-process
    reference of what ``ray_engine`` computes with joins)."""
    pieces: list[pd.DataFrame] = []
    for column in rule.columns:
        if column not in canonical.columns:
            continue
        held = canonical.loc[canonical[column].notna(), [column, "session_id", "user_id", PART]]
        uses = held[[column, PART]].drop_duplicates().rename(columns={PART: TARGET})
        pieces.append(held.merge(uses, on=column)[["session_id", "user_id", PART, TARGET]])
    if rule.text_min_chars is not None and "text" in canonical.columns:
        long = canonical.loc[canonical["text"].fillna("").str.len() >= max(rule.text_min_chars, 1),
                             ["session_id", "user_id", PART]].drop_duplicates()
        targets = pd.DataFrame({TARGET: np.arange(n_partitions, dtype=np.int64)})
        pieces.append(long.merge(targets, how="cross"))
    if not pieces:
        return pd.DataFrame({"session_id": pd.Series(dtype=object),
                             TARGET: pd.Series(dtype=np.int64)})
    needed = pd.concat(pieces, ignore_index=True)
    needed = needed[needed[PART] != needed[TARGET]]
    firsts = canonical.loc[canonical[FIRST].astype(bool), ["session_id", "user_id"]]
    first_needed = needed[["user_id", TARGET]].drop_duplicates().merge(firsts, on="user_id")
    out = pd.concat([needed[["session_id", TARGET]], first_needed[["session_id", TARGET]]])
    return out.drop_duplicates().reset_index(drop=True)


def routed_rows(canonical: pd.DataFrame, context: pd.DataFrame) -> pd.DataFrame:
    """Every row sent where it is needed: to its own partition (``_own`` true) and as
    context to the partitions of ``context`` (``_own`` false)."""
    own = canonical.assign(**{TARGET: canonical[PART], OWN: True})
    extra = canonical.merge(context, on="session_id").assign(**{OWN: False})
    return pd.concat([own, extra], ignore_index=True)


def score_partition(rows: pd.DataFrame, bundle: Any, *, unit: str = "session") -> pd.DataFrame:
    """Score the own sessions of one partition's routed rows with ``bundle``'s model."""
    from core.pipeline.inputs import build_input
    from core.store import Store

    model = bundle.load()
    own = rows.loc[rows[OWN].astype(bool)]
    session_ids = sorted(own["session_id"].astype(str).unique())
    if not session_ids:
        return empty_scores()
    canonical = rows.drop(columns=[c for c in HELPER_COLUMNS if c in rows.columns])
    with Store.open(":memory:") as store:
        store.ingests.add_canonical(canonical, unit=unit)
        built = build_input(store, model.input_kind, model.spec, session_ids=session_ids,
                            progress=False)
        scores = np.asarray(model.detector.score(built.data), dtype=np.float64)
    return pd.DataFrame({"model_id": bundle.model_id,
                         "session_id": built.meta["session_id"].astype(str).to_numpy(),
                         "user_id": built.meta["user_id"].astype(str).to_numpy(),
                         "score": scores})


def empty_scores() -> pd.DataFrame:
    return pd.DataFrame({"model_id": pd.Series(dtype=object),
                         "session_id": pd.Series(dtype=object),
                         "user_id": pd.Series(dtype=object),
                         "score": pd.Series(dtype=np.float64)})
