"""The steps of a partitioned run, each a pure function of pandas frames.

A run splits events by a hash of the user, so every user's history is whole in one
partition. Some features look across users, and a partition also receives, as *context*,
what of the other partitions they read:

- the entity history windows (how busy a device, IP, card, item or merchant was, how many of
  its sessions were a user's first) read whole sessions: every other user's session that
  touches one of the partition's values, plus that user's first session;
- device and IP sharing read only each (value, user)'s first use: the other users'
  first-use events of the partition's values;
- duplicated texts read each text's two earliest writers (their first uses), which go to
  the partitions that use the text; text similarity reads those of every long text, which
  go to every partition.

Context is scored by nobody; it only makes the partition's own features what one store
would compute.
"""

from __future__ import annotations

import time
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
FIRST_USE_COLUMNS = ("device_id", "ip", "text")
"""Columns whose cross-user features read only first uses (of texts: the earliest two)."""
FIRST_USE = {c: f"_first_use_{c}" for c in FIRST_USE_COLUMNS}
"""Per first-use column: whether the row is its user's earliest use of the value."""
HELPER_COLUMNS = (PART, TARGET, OWN, FIRST, *FIRST_USE.values())
KEY = "_key"
"""A value as '<column>\x1f<value>', so values of different columns never meet."""

SCORE_COLUMNS = ("model_id", "session_id", "user_id", "score")
"""What a run writes, one row per scored session."""


@dataclass(frozen=True)
class ContextRule:
    """What ties one partition to the others for a model's features."""

    session_columns: tuple[str, ...] = ()
    """Columns whose whole sessions are context wherever another partition uses the value
    (the entity history)."""
    first_use_columns: tuple[str, ...] = ()
    """Columns whose first-use events are context wherever another partition uses the value
    (sharing, duplicated texts)."""
    text_writers: bool = False
    """Each text's two earliest writers go where the text is used (duplicated texts)."""
    text_min_chars: int | None = None
    """The two earliest writers of every text this long go to every partition (text
    similarity); None: none."""

    @property
    def is_empty(self) -> bool:
        return (not self.session_columns and not self.first_use_columns
                and not self.text_writers and self.text_min_chars is None)


_ARROW_TYPES = {"VARCHAR": "string", "TIMESTAMP": "timestamp[us]", "DOUBLE": "float64",
                "INTEGER": "int32"}


def canonical_schema() -> Any:
    """The Arrow schema of ``canonical_partition``'s rows: fixed, so partitions whose columns
    are all empty still line up."""
    import pyarrow as pa

    from core.schema import EVENT_COLUMNS

    fields = [pa.field(c.name, pa.type_for_alias(_ARROW_TYPES[c.sql_type]))
              for c in EVENT_COLUMNS]
    flags = [pa.field(FIRST, pa.bool_()), *(pa.field(f, pa.bool_()) for f in FIRST_USE.values())]
    return pa.schema([*fields, pa.field("extra", pa.string()), *flags,
                      pa.field(PART, pa.int64())])


def context_rule(input_spec: dict[str, Any]) -> ContextRule:
    """The cross-user parts of a model's input spec (``inputs.json``): sharing, duplicated
    texts, entity history and text similarity. Sequences look at one session only."""
    if input_spec.get("kind") != "features":
        return ContextRule()
    features = input_spec.get("features") or {}
    history = features.get("history") or {}
    whole = tuple(history.get("entity_columns", ())) if history.get("enabled", False) else ()
    # sharing (device, IP) counts every user's first use; duplicated texts (text_dup_share)
    # and text similarity read only each text's two earliest writers
    first = tuple(c for c in ("device_id", "ip") if c not in whole)
    text = features.get("text")
    min_chars = None if not text else max(1, int(text.get("min_sim_chars", 0)))
    return ContextRule(tuple(whole), first, True, min_chars)


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
        canonical = store.ingests.canonical_events()  # by user, time, event id
    flags = {flag: (canonical[c].notna() & ~canonical.duplicated(["user_id", c])).to_numpy()
             for c, flag in FIRST_USE.items()}
    return canonical.assign(**flags, **{PART: np.int64(part)})


def value_holders(batch: pd.DataFrame, rule: ContextRule) -> pd.DataFrame:
    """(_key, kind, id, user_id, _part) per distinct use the rule follows: kind 'session'
    (id a session id) for the session columns, 'event' (id an event id) for the first uses
    of the first-use columns."""
    frames = []
    for kind, columns in (("session", rule.session_columns), ("event", rule.first_use_columns)):
        for column in columns:
            if column not in batch.columns:
                continue
            held = batch[column].notna()
            if kind == "event":
                held &= batch[FIRST_USE[column]].astype(bool)
            rows = batch.loc[held]
            frames.append(pd.DataFrame({
                KEY: column + "\x1f" + rows[column].astype(str), "kind": kind,
                "id": rows["session_id" if kind == "session" else "event_id"],
                "user_id": rows["user_id"], PART: rows[PART]}))
    if not frames:
        return pd.DataFrame({KEY: [], "kind": [], "id": [], "user_id": [], PART: []})
    return pd.concat(frames, ignore_index=True).drop_duplicates()


def value_uses(holders: pd.DataFrame) -> pd.DataFrame:
    """(_key, _target): the partitions that use each value."""
    return holders[[KEY, PART]].drop_duplicates().rename(columns={PART: TARGET})


def elsewhere(joined: pd.DataFrame) -> pd.DataFrame:
    """Holders joined with the uses: those another partition needs (kind, id, user_id,
    _target)."""
    return joined.loc[joined[PART] != joined[TARGET], ["kind", "id", "user_id", TARGET]]


def earliest_writers(batch: pd.DataFrame, min_chars: int) -> pd.DataFrame:
    """(text, ts, event_id, user_id, _part): each long text's first uses by its two earliest
    writers (all writers tied with the second), which is all text similarity reads of other
    users. The earliest of a union of batches' earliest is the earliest of all."""
    columns = ["text", "ts", "event_id", "user_id", PART]
    flag = FIRST_USE["text"]
    if flag in batch.columns:
        long = batch.loc[batch[flag].astype(bool)
                         & (batch["text"].fillna("").str.len() >= max(min_chars, 1)), columns]
    else:  # a union of earlier results
        long = batch[columns]
    rank = long.groupby("text")["ts"].rank(method="min")
    return long.loc[rank <= 2].reset_index(drop=True)


def writer_holders(writers: pd.DataFrame) -> pd.DataFrame:
    """``earliest_writers`` rows as holders of their text (``value_holders``' columns)."""
    return pd.DataFrame({KEY: "text\x1f" + writers["text"].astype(str), "kind": "event",
                         "id": writers["event_id"], "user_id": writers["user_id"],
                         PART: writers[PART]})


def text_uses(batch: pd.DataFrame) -> pd.DataFrame:
    """(_key, _target): the partitions that use each text."""
    rows = batch.loc[batch[FIRST_USE["text"]].astype(bool), ["text", PART]]
    return pd.DataFrame({KEY: "text\x1f" + rows["text"].astype(str),
                         TARGET: rows[PART]}).drop_duplicates()


def broadcast_writers(writers: pd.DataFrame, n_partitions: int) -> pd.DataFrame:
    """(kind 'event', id, user_id, _target): the earliest writers' first uses, to every other
    partition."""
    crossed = writers[["event_id", "user_id", PART]].merge(
        pd.DataFrame({TARGET: np.arange(n_partitions, dtype=np.int64)}), how="cross")
    crossed = crossed.loc[crossed[PART] != crossed[TARGET]]
    return pd.DataFrame({"kind": "event", "id": crossed["event_id"],
                         "user_id": crossed["user_id"], TARGET: crossed[TARGET]})


def context_needs(canonical: pd.DataFrame, rule: ContextRule, n_partitions: int,
                  ) -> pd.DataFrame:
    """(kind, id, _target): the sessions and events each partition needs from the others,
    with the first session of every user whose sessions it needs (in-process reference of
    what ``ray_engine`` computes with joins)."""
    pieces: list[pd.DataFrame] = []
    holders = value_holders(canonical, rule)
    if len(holders):
        pieces.append(elsewhere(holders.merge(value_uses(holders), on=KEY)))
    if (rule.text_writers or rule.text_min_chars is not None) and "text" in canonical.columns:
        writers = earliest_writers(canonical, 1)
        if rule.text_writers:
            holders = writer_holders(writers)
            pieces.append(elsewhere(holders.merge(text_uses(canonical), on=KEY)))
        if rule.text_min_chars is not None:
            long = writers["text"].str.len() >= rule.text_min_chars
            pieces.append(broadcast_writers(writers.loc[long], n_partitions))
    if not pieces:
        return pd.DataFrame({"kind": pd.Series(dtype=object), "id": pd.Series(dtype=object),
                             TARGET: pd.Series(dtype=np.int64)})
    needed = pd.concat(pieces, ignore_index=True)
    users = needed.loc[needed["kind"] == "session", ["user_id", TARGET]].drop_duplicates()
    firsts = first_sessions(canonical)
    first_needed = users.merge(firsts, on="user_id")
    out = pd.concat([needed[["kind", "id", TARGET]],
                     first_needed.assign(kind="session").rename(columns={"session_id": "id"})[
                         ["kind", "id", TARGET]]])
    return out.drop_duplicates().reset_index(drop=True)


def first_sessions(batch: pd.DataFrame) -> pd.DataFrame:
    """(user_id, session_id) of each user's sessions at its first start."""
    return batch.loc[batch[FIRST].astype(bool), ["user_id", "session_id"]].drop_duplicates()


def routed_rows(canonical: pd.DataFrame, needs: pd.DataFrame) -> pd.DataFrame:
    """Every row sent where it is needed: to its own partition (``_own`` true) and as
    context to the partitions of ``needs`` (``_own`` false)."""
    own = canonical.assign(**{TARGET: canonical[PART], OWN: True})
    sessions = needs.loc[needs["kind"] == "session", ["id", TARGET]].rename(
        columns={"id": "session_id"})
    events = needs.loc[needs["kind"] == "event", ["id", TARGET]].rename(
        columns={"id": "event_id"})
    extra = pd.concat([canonical.merge(sessions, on="session_id"),
                       canonical.merge(events, on="event_id")], ignore_index=True)
    extra = extra.drop_duplicates(["event_id", TARGET]).assign(**{OWN: False})
    return pd.concat([own, extra], ignore_index=True)


def uses_text_embeddings(input_spec: dict[str, Any]) -> bool:
    """Whether a model's features embed texts (then a run embeds each distinct text once)."""
    return bool(input_spec.get("kind") == "features"
                and (input_spec.get("features") or {}).get("text"))


def distinct_texts(batch: pd.DataFrame) -> pd.DataFrame:
    """The distinct non-empty texts of a batch (``text``)."""
    texts = batch["text"].dropna()
    return pd.DataFrame({"text": texts[texts.str.len() > 0].unique()})


def embed_distinct(batch: pd.DataFrame) -> Any:
    """(text_hash, embedding) of a batch of distinct texts: what the store's embedding cache
    holds, so a partition's store reads them instead of embedding again."""
    import pyarrow as pa

    from core.text.cache import text_hashes
    from core.text.embeddings import load_encoder

    texts = batch["text"].astype(str).tolist()
    vectors = load_encoder().encode(texts, progress=False) if texts else np.zeros((0, 1))
    dim = int(vectors.shape[1])
    return pa.table({
        "text_hash": pa.array(text_hashes(texts).tolist(), type=pa.string()),
        "embedding": pa.FixedSizeListArray.from_arrays(
            pa.array(np.ascontiguousarray(vectors, dtype=np.float32).ravel()), dim)})


def score_partition(rows: pd.DataFrame, bundle: Any, *, unit: str = "session",
                    embeddings: Sequence[Any] = (),
                    seconds: dict[str, float] | None = None) -> pd.DataFrame:
    """Score the own sessions of one partition's routed rows with ``bundle``'s model
    (``embeddings``: Arrow tables of ``embed_distinct``, put in the store's cache first).
    ``seconds``, when given, gains the time spent in each part (``WORK_PARTS``)."""
    from core.pipeline.inputs import build_input
    from core.store import Store
    from core.text.embeddings import encoder_name

    clock = _PartClock(seconds)
    model = bundle.load()
    own = rows.loc[rows[OWN].astype(bool)]
    session_ids = sorted(own["session_id"].astype(str).unique())
    if not session_ids:
        return empty_scores()
    canonical = rows.drop(columns=[c for c in HELPER_COLUMNS if c in rows.columns])
    with Store.open(":memory:") as store:
        for table in _used_embeddings(embeddings, rows):
            store.text.insert_embeddings(encoder_name(), table)
        store.ingests.add_canonical(canonical, unit=unit)
        clock.lap("store")
        built = build_input(store, model.input_kind, model.spec, session_ids=session_ids,
                            progress=False)
        clock.lap("features")
        scores = np.asarray(model.detector.score(built.data), dtype=np.float64)
        clock.lap("model")
    return pd.DataFrame({"model_id": bundle.model_id,
                         "session_id": built.meta["session_id"].astype(str).to_numpy(),
                         "user_id": built.meta["user_id"].astype(str).to_numpy(),
                         "score": scores})


def _used_embeddings(embeddings: Sequence[Any], rows: pd.DataFrame) -> list[Any]:
    """The rows of ``embeddings`` (Arrow tables of ``embed_distinct``) whose texts ``rows``
    hold: a partition's store caches its own texts, not the whole run's."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from core.text.cache import text_hashes

    tables = [t for t in embeddings if t.num_rows]
    if not tables or "text" not in rows.columns:
        return []
    used = pa.array(text_hashes(distinct_texts(rows)["text"].astype(str).tolist()).tolist(),
                    type=pa.string())
    kept = [t.filter(pc.is_in(t.column("text_hash"), value_set=used)) for t in tables]
    return [t for t in kept if t.num_rows]


WORK_PARTS = ("store", "features", "model")
"""The parts of scoring a partition that ``score_partition`` times: loading the rows into the
in-memory store (with the model), building the features, running the model."""


class _PartClock:
    """Adds the seconds since the last lap to ``seconds[name]`` (nothing when it is None)."""

    def __init__(self, seconds: dict[str, float] | None) -> None:
        self.seconds = seconds
        self.mark = time.perf_counter()

    def lap(self, name: str) -> None:
        if self.seconds is not None:
            now = time.perf_counter()
            self.seconds[name] = self.seconds.get(name, 0.0) + now - self.mark
            self.mark = now


def empty_scores() -> pd.DataFrame:
    return pd.DataFrame({"model_id": pd.Series(dtype=object),
                         "session_id": pd.Series(dtype=object),
                         "user_id": pd.Series(dtype=object),
                         "score": pd.Series(dtype=np.float64)})
