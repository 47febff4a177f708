"""What a session feature matrix is made of: the versioned list of feature names.

A model is trained on one :class:`FeatureSpec` and must be scored on the same one. The spec
(event types + version) is saved with the model; :func:`feature_hash` lets a loader refuse a
matrix whose columns differ from the ones the model learned.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from core.datasets import FeatureMatrix
from core.errors import ConfigError, ModelError
from core.features.extras import ExtraSelection, ExtraSpec
from core.features.history import HistorySpec
from core.features.novelty import NoveltySpec
from core.text.spec import TextSpec

FEATURE_VERSION = 1
"""Bump whenever a feature's definition changes: models trained on another version are refused."""

DEFAULT_MAX_EVENT_TYPES = 24
"""Event types that get their own count/share columns; the rest share the ``<other>`` bucket.
24 covers every type of the common e-commerce vocabulary while keeping ~100 columns when a
source has hundreds of distinct types."""

OTHER_BUCKET = "<other>"

# Event types with a fixed meaning in some features. Sources are mapped onto these names at ingest.
PAYMENT_ATTEMPT = "payment_attempt"
PAYMENT_FAILED = "payment_failed"
ADD_TO_CART = "add_to_cart"
REMOVE_FROM_CART = "remove_from_cart"

SMALL_AMOUNT = 5.0
"""Amounts below this are "small": card testers probe stolen cards with tiny charges."""

NIGHT_HOURS = (0, 6)
"""[start, end) hours counted as night for ``is_night``."""

CALENDAR_CYCLE_DAYS: dict[str, float] = {
    "hour_sin": 1.0,
    "hour_cos": 1.0,
    "is_night": 1.0,
    "is_weekend": 7.0,
}
"""Features set by the clock rather than by behaviour, with the length of their cycle. A
training window shorter than the cycle shows only part of it (a few weekdays: no weekend),
so such a column says nothing a model may learn (``core.pipeline.calendar``,
``core.detectors._scaling``)."""

GROWS_WITH_TIME: frozenset[str] = frozenset({"user_age_days_log", "n_prev_sessions_log"})
"""Features that every returning user's later sessions push past the training window's range
(an account only gets older, its history only longer). Their low end is a signal (a new
account, a first session); their high end is the clock: the empirical-tail detectors read
only their left tail (``core.detectors.ecdf_tails``), or every session after the training
window would be a novelty (docs/FEATURES.md, "``ecdf_extremes``")."""

BASE_FEATURES: tuple[str, ...] = (
    "n_events_log",
    "duration_log",
    "gap_mean_log",
    "gap_std_log",
    "gap_min_log",
    "gap_max_log",
    "gap_cv",
    "amount_sum_log",
    "amount_max_log",
    "amount_mean_log",
    "small_amount_share",
    "n_payment_failed_log",
    "payment_failure_ratio",
    "n_devices_log",
    "n_ips_log",
    "n_countries_log",
    "n_items_log",
    "n_payment_ids_log",
    "n_categories_log",
    "n_user_agents_log",
    "is_new_device",
    "is_new_country",
    "is_new_payment_id",
    "is_new_ip",
    "amount_vs_user_max_log",
    "is_amount_above_user_max",
    "user_age_days_log",
    "n_prev_sessions_log",
    "device_other_users_log",
    "ip_other_users_log",
    "hour_sin",
    "hour_cos",
    "is_night",
    "is_weekend",
    "text_share",
    "text_len_mean_log",
    "text_dup_share",
    "cart_qty_max_log",
    "n_removed_after_add_log",
)
"""Features that do not depend on the event-type vocabulary, in column order."""

META_COLUMNS: tuple[str, ...] = ("session_id", "user_id", "start_ts", "end_ts", "n_events")


def event_type_features(event_types: Iterable[str]) -> tuple[str, ...]:
    """``count_log[t]`` then ``share[t]`` for each type and the ``<other>`` bucket."""
    buckets = (*event_types, OTHER_BUCKET)
    return (*(f"count_log[{t}]" for t in buckets), *(f"share[{t}]" for t in buckets))


WHOLE_TABLE = "whole_table"
POINT_IN_TIME = "point_in_time"
SHARING_MODES = (WHOLE_TABLE, POINT_IN_TIME)
"""How ``device_other_users_log`` / ``ip_other_users_log`` count the other users of a device
or IP: over the whole events table (models trained before issue #26; their specs have no
"sharing" key), or only the users who had used it by the session's last event (every new
spec: what a live service knows at that moment, so streaming and batch scores agree)."""


def feature_hash(names: Iterable[str], version: int = FEATURE_VERSION) -> str:
    """A stable 16-hex-digit fingerprint of feature names (in order) and the feature version.

    >>> feature_hash(["a", "b"]) == feature_hash(("a", "b"))
    True
    >>> feature_hash(["a", "b"]) == feature_hash(["b", "a"])
    False
    """
    payload = json.dumps({"version": version, "names": list(names)}, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class FeatureSpec:
    """The event types that get their own columns, and the feature version.

    Learn one with ``build_session_features(con)`` (the most frequent types), save
    ``spec.to_dict()`` with the model, and pass ``FeatureSpec.from_dict(...)`` back when scoring
    so the columns line up.

    >>> spec = FeatureSpec(("login", "view"))
    >>> spec.names[:2]
    ('n_events_log', 'duration_log')
    >>> FeatureSpec.from_dict(spec.to_dict()) == spec
    True
    """

    event_types: tuple[str, ...]
    version: int = FEATURE_VERSION
    text: TextSpec | None = None
    """Text features (core.text) appended after the others, or None for none."""
    novelty: NoveltySpec | None = None
    """Event types and transitions never seen in training (core.features.novelty), or None."""
    extras: ExtraSpec | None = None
    """Extra source columns as features (core.features.extras), or None."""
    history: HistorySpec | None = None
    """Point-in-time history and entity features (core.features.history), or None."""
    sharing: str = WHOLE_TABLE
    """How device and IP sharing are counted (``SHARING_MODES``); new specs learned by
    ``build_session_features`` use ``POINT_IN_TIME``."""

    def __post_init__(self) -> None:
        if self.sharing not in SHARING_MODES:
            raise ConfigError(f"sharing must be one of {SHARING_MODES}, got {self.sharing!r}.")
        types = tuple(self.event_types)
        object.__setattr__(self, "event_types", types)
        bad = [t for t in types if not isinstance(t, str) or t == "" or t == OTHER_BUCKET]
        if bad:
            raise ConfigError(
                f"event_types must be non-empty strings other than {OTHER_BUCKET!r}, got "
                f"{bad[:5]!r}. Pass the event types as they appear in the events table."
            )
        if len(set(types)) != len(types):
            raise ConfigError(f"event_types must be unique, got {list(types)!r}.")
        if self.version != FEATURE_VERSION:
            raise ModelError(
                f"feature version must be {FEATURE_VERSION}, got {self.version}. The model was "
                "trained by another Anomalyst version: retrain it."
            )

    @property
    def names(self) -> tuple[str, ...]:
        """Feature names in column order."""
        text = self.text.names if self.text is not None else ()
        novelty = self.novelty.names if self.novelty is not None else ()
        extras = self.extras.names if self.extras is not None else ()
        history = self.history.names if self.history is not None else ()
        return (*BASE_FEATURES, *event_type_features(self.event_types), *novelty, *extras,
                *history, *text)

    @property
    def hash(self) -> str:
        """:func:`feature_hash` of :attr:`names` (and of the text spec, when there is one)."""
        parts = [f"{name}:{json.dumps(part.to_dict(), sort_keys=True)}"
                 for name, part in self._parts() if part is not None]
        if self.sharing != WHOLE_TABLE:  # a whole-table spec hashes as before the field
            parts.append(f"sharing:{self.sharing}")
        return feature_hash((*self.names, *parts), self.version)

    def _parts(self) -> tuple[tuple[str, Any], ...]:
        """The optional blocks by their key in :meth:`to_dict`; a spec without history hashes
        and serialises exactly as before the block existed."""
        return (("text", self.text), ("novelty", self.novelty), ("extras", self.extras),
                ("history", self.history))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, saved next to a model."""
        out = {"version": self.version, "event_types": list(self.event_types), "hash": self.hash}
        for name, part in self._parts():
            if part is not None:
                out[name] = part.to_dict()
        if self.sharing != WHOLE_TABLE:
            out["sharing"] = self.sharing
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureSpec:
        """Inverse of :meth:`to_dict`; refuses a spec from another feature version."""
        try:
            text = TextSpec.from_dict(data["text"]) if data.get("text") else None
            novelty = NoveltySpec.from_dict(data["novelty"]) if data.get("novelty") else None
            extras = ExtraSpec.from_dict(data["extras"]) if data.get("extras") else None
            history = HistorySpec.from_dict(data["history"]) if data.get("history") else None
            spec = cls(tuple(data["event_types"]), int(data["version"]), text, novelty, extras,
                       history, str(data.get("sharing", WHOLE_TABLE)))
        except KeyError as exc:
            raise ModelError(
                f"feature spec must have 'event_types' and 'version', got keys {sorted(data)}."
            ) from exc
        if "hash" in data and data["hash"] != spec.hash:
            raise ModelError(
                f"feature spec hash must be {spec.hash}, got {data['hash']}. The saved spec was "
                "edited or corrupted: retrain the model."
            )
        return spec

    def check_matrix(self, matrix: FeatureMatrix) -> None:
        """Raise ModelError unless ``matrix`` has exactly this spec's columns."""
        if tuple(matrix.names) != self.names:
            raise ModelError(
                f"feature matrix must have the {len(self.names)} columns of spec {self.hash}, got "
                f"{len(matrix.names)} columns (hash {feature_hash(matrix.names)}). Build the "
                "features with the spec saved with the model."
            )


@dataclass(frozen=True)
class TrainingScope:
    """The training events a new spec learns its vocabularies from (event types, what is
    novel, extra columns): the events before ``until`` and/or of ``session_ids``."""

    until: Any = None
    session_ids: tuple[str, ...] | None = None
    extras: ExtraSelection | None = None
    history: HistorySpec | None = None
    """The history features asked for (core.features.history); None for none."""
    novelty_holdout: bool = True
    """Count, for each training session, the event types and transitions no other training
    session holds as novel (``core.features.novelty.NoveltyHoldout``); False counts them
    in-sample (0 for every training session)."""


@dataclass(frozen=True)
class SessionFeatures:
    """What :func:`build_session_features` returns.

    Attributes:
        matrix: the detectors' input, rows ordered by (start_ts, session_id).
        meta: DataFrame with columns session_id, user_id, start_ts, end_ts (UTC, naive),
            n_events, in the same row order as ``matrix``.
        spec: the spec the columns were built from; save it with any model trained on them.
    """

    matrix: FeatureMatrix
    meta: pd.DataFrame
    spec: FeatureSpec

    def __len__(self) -> int:
        return len(self.matrix)
