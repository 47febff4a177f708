"""Per-session event sequences: tokens, numeric channels, masks, event ids.

Events are ordered and truncated in DuckDB (one window pass: the last ``max_len`` events of each
session by (ts, event_id)); numpy then scatters them into fixed-size arrays without a Python
loop over sessions. Sessions come in the same order as the feature matrix: (start_ts, session_id).
Within a row, events are chronological from position 0; padding follows the last event.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from core.datasets import EventSequences
from core.errors import ConfigError, ModelError
from core.features._source import (
    TempTables,
    check_all_found,
    events_relation,
    learning_relation,
    normalize_session_ids,
    scoped_relation,
)
from core.store.features import rows as store_rows

log = logging.getLogger(__name__)

SEQUENCE_VERSION = 1
CHANNEL_NAMES: tuple[str, ...] = (
    "log_gap_s",
    "log_amount",
    "is_new_device",
    "is_new_country",
    "is_new_payment_id",
    "has_text",
)
"""Per-event numeric channels, before scaling. ``log_gap_s``: log1p seconds since the previous
event of the session (0 for the first); ``log_amount``: signed log1p of the amount (0 when
absent); ``is_new_*``: the event's device / country / payment id was never used in the user's
earlier sessions (0 in a user's first session and when the column is absent); ``has_text``."""

DEFAULT_MAX_LEN = 64
_MIN_STD = 1e-6  # a constant channel is centred but not divided by ~0


@dataclass(frozen=True)
class ChannelScaling:
    """Per-channel mean and standard deviation, learned on real (unpadded) events.

    >>> s = ChannelScaling(("a",), (1.0,), (2.0,))
    >>> ChannelScaling.from_dict(s.to_dict()) == s
    True
    """

    names: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", tuple(self.names))
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))
        if not len(self.names) == len(self.mean) == len(self.std):
            raise ConfigError(
                f"scaling names, mean and std must have equal lengths, got {len(self.names)}, "
                f"{len(self.mean)}, {len(self.std)}."
            )
        bad = [s for s in self.std if not (math.isfinite(s) and s > 0)]
        if bad or not all(math.isfinite(m) for m in self.mean):
            raise ConfigError(
                f"scaling mean must be finite and std finite and > 0, got std {self.std}."
            )

    @classmethod
    def fit(cls, names: Sequence[str], numeric: np.ndarray, mask: np.ndarray) -> ChannelScaling:
        """Mean/std of each channel over the positions where ``mask`` is True."""
        real = numeric[mask]  # (n_real_events, c)
        if len(real) == 0:
            return cls(tuple(names), (0.0,) * len(names), (1.0,) * len(names))
        mean = real.mean(axis=0, dtype=np.float64)
        squares = real.astype(np.float64)  # squared in place: one float64 copy, not two
        np.square(squares, out=squares)
        std = np.sqrt(np.maximum(squares.mean(axis=0) - mean**2, 0.0))
        std = np.where(std < _MIN_STD, 1.0, std)
        return cls(tuple(names), tuple(mean), tuple(std))

    def apply(self, numeric: np.ndarray, mask: np.ndarray, *, inplace: bool = False) -> np.ndarray:
        """Standardised ``numeric`` (n, L, c) float32; padded positions stay 0.

        ``inplace=True`` overwrites ``numeric`` (float32) instead of copying: at 1M sessions
        x 64 events x 6 channels a copy is 1.5 GB.
        """
        out = numeric if inplace else numeric.astype(np.float32, copy=True)
        out -= np.asarray(self.mean, dtype=np.float32)
        out /= np.asarray(self.std, dtype=np.float32)
        out[~mask] = 0.0
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"names": list(self.names), "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ChannelScaling:
        return cls(tuple(data["names"]), tuple(data["mean"]), tuple(data["std"]))


@dataclass(frozen=True)
class SequenceSpec:
    """Everything a sequence model must be scored with: vocabulary, scaling, length.

    Save ``spec.to_dict()`` with the model; pass ``SequenceSpec.from_dict(...)`` back as
    ``spec=`` when scoring, so tokens and channel scales match training.
    """

    vocab: Mapping[str, int]
    scaling: ChannelScaling
    max_len: int = DEFAULT_MAX_LEN
    version: int = SEQUENCE_VERSION
    channel_names: tuple[str, ...] = field(default=CHANNEL_NAMES)

    def __post_init__(self) -> None:
        object.__setattr__(self, "vocab", dict(self.vocab))
        check_vocab(self.vocab)
        _check_max_len(self.max_len)
        if self.version != SEQUENCE_VERSION or tuple(self.channel_names) != CHANNEL_NAMES:
            raise ModelError(
                f"sequence spec version must be {SEQUENCE_VERSION} with channels "
                f"{CHANNEL_NAMES}, got {self.version} with {tuple(self.channel_names)}. "
                "The model was trained by another Anomalyst version: retrain it."
            )
        if tuple(self.scaling.names) != CHANNEL_NAMES:
            raise ModelError(
                f"scaling channels must be {CHANNEL_NAMES}, got {self.scaling.names}."
            )

    @property
    def vocab_size(self) -> int:
        """Embedding rows needed: PAD, UNKNOWN and every real token."""
        return max(self.vocab.values(), default=EventSequences.UNKNOWN) + 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "max_len": self.max_len,
            "vocab": dict(self.vocab),
            "scaling": self.scaling.to_dict(),
            "channel_names": list(self.channel_names),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SequenceSpec:
        try:
            return cls(
                vocab={str(k): int(v) for k, v in data["vocab"].items()},
                scaling=ChannelScaling.from_dict(data["scaling"]),
                max_len=int(data["max_len"]),
                version=int(data["version"]),
                channel_names=tuple(data.get("channel_names", CHANNEL_NAMES)),
            )
        except KeyError as exc:
            raise ModelError(
                f"sequence spec must have vocab, scaling, max_len and version, got keys "
                f"{sorted(data)}."
            ) from exc


@dataclass(frozen=True)
class SessionSequences:
    """What :func:`build_event_sequences` returns.

    Attributes:
        sequences: the detectors' input; ``numeric`` is already scaled with ``spec.scaling``.
        spec: vocabulary, scaling and length used; save it with any model trained on them.
        meta: DataFrame session_id, user_id, start_ts, n_events (before truncation), in the
            same row order.
    """

    sequences: EventSequences
    spec: SequenceSpec
    meta: pd.DataFrame

    def __len__(self) -> int:
        return len(self.sequences)


def check_vocab(vocab: Mapping[str, int]) -> None:
    """Tokens must be unique integers >= 2 (0 is padding, 1 unknown)."""
    tokens = list(vocab.values())
    if any(int(t) < 2 for t in tokens) or len(set(tokens)) != len(tokens):
        raise ConfigError(
            "vocab tokens must be unique integers >= 2 (0 is padding, 1 unknown), got "
            f"{sorted(tokens)[:10]}. Build one with build_vocab()."
        )


def _check_max_len(max_len: int) -> None:
    if not isinstance(max_len, int) or max_len < 1:
        raise ConfigError(f"max_len must be an integer >= 1, got {max_len!r}.")


def build_vocab(con: duckdb.DuckDBPyConnection, *, max_size: int | None = None,
                until: Any = None, session_ids: Sequence[str] | None = None) -> dict[str, int]:
    """Event type -> token by descending frequency (ties by name), tokens from 2.

    With ``max_size``, only that many types get a token; rarer ones map to UNKNOWN (1). With
    ``until`` and/or ``session_ids``, only the training events (before ``until``, of those
    sessions) count, so a type first seen after training is UNKNOWN to the model.
    """
    if max_size is not None and max_size < 0:
        raise ConfigError(f"max_vocab must be >= 0 or None, got {max_size}.")
    relation, params = learning_relation(events_relation(con), until, session_ids)
    rows = store_rows(
        con, f"SELECT event_type FROM {relation} GROUP BY event_type "
        "ORDER BY count(*) DESC, event_type", params
    )
    types = [str(r[0]) for r in rows][: max_size if max_size is not None else None]
    return {t: i + 2 for i, t in enumerate(types)}


def build_event_sequences(
    con: duckdb.DuckDBPyConnection,
    *,
    max_len: int = DEFAULT_MAX_LEN,
    vocab: Mapping[str, int] | None = None,
    max_vocab: int | None = None,
    scaling: ChannelScaling | None = None,
    spec: SequenceSpec | None = None,
    session_ids: Sequence[str] | None = None,
) -> SessionSequences:
    """Padded event sequences of every session (or of ``session_ids``).

    Args:
        con: a DuckDB connection (or cursor) with an ``events`` table.
        max_len: events kept per session (the last ones).
        vocab: event type -> token; learned by frequency when None (see ``max_vocab``).
            Types missing from it become UNKNOWN (1).
        max_vocab: cap on learned vocabulary size (ignored when ``vocab`` is given).
        scaling: channel mean/std; learned from these sequences when None.
        spec: a saved SequenceSpec; gives vocab, scaling and max_len at once.
        session_ids: only these sessions; their users' earlier sessions still count for
            the novelty channels. Unknown ids raise ConfigError.
    """
    if spec is not None:
        if vocab is not None or scaling is not None:
            raise ConfigError(
                "spec must come alone, got spec with vocab or scaling. Pass the saved spec only."
            )
        vocab, scaling, max_len = spec.vocab, spec.scaling, spec.max_len
    _check_max_len(max_len)
    vocab = dict(vocab) if vocab is not None else build_vocab(con, max_size=max_vocab)
    check_vocab(vocab)
    all_events = events_relation(con)
    requested = None if session_ids is None else normalize_session_ids(session_ids)
    src, params = scoped_relation(all_events, requested)
    params = {
        **params,
        "types": list(vocab),
        "tokens": [int(v) for v in vocab.values()],
        "max_len": max_len,
    }
    started = time.perf_counter()
    with TempTables(con, "seq") as tt:
        meta_cols, batches = _query(tt, src, scoped=requested is not None, params=params)
        n = len(meta_cols["session_id"])
        session_col = np.asarray(meta_cols["session_id"], dtype=object)
        if requested is not None:
            check_all_found(requested, session_col)
        # Filled batch by batch as DuckDB streams the events: no full per-event copy is held.
        tokens = np.zeros((n, max_len), dtype=np.int64)
        mask = np.zeros((n, max_len), dtype=bool)
        event_ids = np.full((n, max_len), "", dtype=object)
        raw = np.zeros((n, max_len, len(CHANNEL_NAMES)), dtype=np.float32)
        for ev in batches:
            row = np.asarray(ev["idx"], dtype=np.int64)
            pos = np.asarray(ev["pos"], dtype=np.int64)
            tokens[row, pos] = np.asarray(ev["token"], dtype=np.int64)
            mask[row, pos] = True
            event_ids[row, pos] = np.asarray(ev["event_id"], dtype=object)
            for c, name in enumerate(CHANNEL_NAMES):
                raw[row, pos, c] = np.nan_to_num(np.asarray(ev[name], dtype=np.float32))
            del ev, row, pos
    if scaling is None:
        scaling = ChannelScaling.fit(CHANNEL_NAMES, raw, mask)
    numeric = scaling.apply(raw, mask, inplace=True)
    sequences = EventSequences(
        session_ids=session_col,
        tokens=tokens,
        numeric=numeric,
        mask=mask,
        event_ids=event_ids,
        vocab=dict(vocab),
        channel_names=CHANNEL_NAMES,
    )
    meta = pd.DataFrame(
        {
            "session_id": session_col,
            "user_id": np.asarray(meta_cols["user_id"], dtype=object),
            "start_ts": pd.to_datetime(np.asarray(meta_cols["start_ts"])),
            "n_events": np.asarray(meta_cols["n_events"], dtype=np.int64),
        }
    )
    log.info(
        "event sequences: %d sessions x %d in %.2fs (%s)", n, max_len,
        time.perf_counter() - started, ", ".join(f"{k} {v:.2f}s" for k, v in tt.timings.items()),
    )
    spec = SequenceSpec(vocab=dict(vocab), scaling=scaling, max_len=max_len)
    return SessionSequences(sequences=sequences, spec=spec, meta=meta)


def _query(
    tt: TempTables, src: str, *, scoped: bool, params: dict[str, Any]
) -> tuple[dict[str, np.ndarray], Iterator[dict[str, np.ndarray]]]:
    """(per-session meta in result order, batches of per-event rows with their (idx, pos)
    cell); the batches must be consumed before ``tt`` closes."""
    if scoped:
        src = tt.create("scope", f"SELECT * FROM {src}", params)
    # The session's device/country/payment values, then each user's sessions in order: a value
    # is new in a session when no earlier session of that user used it (as in the features).
    pairs = tt.create("pairs", f"""
        SELECT session_id, device_id, country, payment_id,
          any_value(user_id) AS user_id, min(ts) AS start_ts, count(*) AS n_events
        FROM {src} GROUP BY ALL""")
    hist = tt.create("hist", f"""
        SELECT session_id, user_id, start_ts, n_events,
          row_number() OVER (PARTITION BY user_id ORDER BY start_ts, session_id) - 1 AS n_prev
        FROM (SELECT session_id, any_value(user_id) AS user_id, min(start_ts) AS start_ts,
                sum(n_events)::BIGINT AS n_events
              FROM {pairs} GROUP BY session_id)""")
    where = "WHERE session_id IN (SELECT unnest($session_ids))" if scoped else ""
    order = tt.create("order", f"""
        SELECT session_id, user_id, start_ts, n_events,
          (row_number() OVER (ORDER BY start_ts, session_id) - 1)::BIGINT AS idx
        FROM {hist} {where}""", params)
    kinds = (("device_id", 0), ("country", 1), ("payment_id", 2))
    distinct_vals = " UNION ALL ".join(
        f"SELECT DISTINCT session_id, {k} AS kind, {col} AS v FROM {pairs} "
        f"WHERE {col} IS NOT NULL"
        for col, k in kinds
    )
    new_vals = tt.create("newvals", f"""
        WITH vals AS (
          SELECT x.session_id, h.user_id, h.n_prev, x.kind, x.v
          FROM ({distinct_vals}) x JOIN {hist} h ON h.session_id = x.session_id
        )
        SELECT session_id, kind, v FROM (
          SELECT *, min(n_prev) OVER (PARTITION BY user_id, kind, v) AS first_prev FROM vals
        ) WHERE n_prev = first_prev AND n_prev > 0""")
    meta = tt.query("meta", f"SELECT session_id, user_id, start_ts, n_events FROM {order} "
                    "ORDER BY idx")
    new_joins = "\n".join(
        f"LEFT JOIN (SELECT session_id, v FROM {new_vals} WHERE kind = {k}) n{k} "
        f"ON n{k}.session_id = e.session_id AND n{k}.v = e.{col}"
        for col, k in kinds
    )
    # Descending order numbers events from the end, so rn <= max_len keeps the last ones, and
    # lead() in that order is the previous event in time.
    events = tt.stream("events", f"""
        WITH ranked AS (
          SELECT session_id, event_id, event_type, amount, device_id, country, payment_id,
            text IS NOT NULL AS has_text,
            (epoch_ms(ts) - lead(epoch_ms(ts)) OVER w) / 1000.0 AS gap,
            row_number() OVER w AS rn
          FROM {src}
          WINDOW w AS (PARTITION BY session_id ORDER BY ts DESC, event_id DESC)
          QUALIFY rn <= $max_len
        ), vocab AS (
          SELECT unnest($types) AS event_type, unnest($tokens) AS token
        )
        SELECT o.idx, (least(o.n_events, $max_len) - e.rn)::BIGINT AS pos,
          coalesce(v.token, 1)::BIGINT AS token, coalesce(e.event_id, '') AS event_id,
          ln(1 + coalesce(greatest(e.gap, 0), 0))::FLOAT AS log_gap_s,
          coalesce(sign(e.amount) * ln(1 + abs(e.amount)), 0)::FLOAT AS log_amount,
          (n0.v IS NOT NULL)::FLOAT AS is_new_device,
          (n1.v IS NOT NULL)::FLOAT AS is_new_country,
          (n2.v IS NOT NULL)::FLOAT AS is_new_payment_id,
          e.has_text::FLOAT AS has_text
        FROM ranked e
        JOIN {order} o ON o.session_id = e.session_id
        LEFT JOIN vocab v ON v.event_type = e.event_type
        {new_joins}""", params)
    return meta, events
