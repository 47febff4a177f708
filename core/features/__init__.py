"""Session features and event sequences, built in DuckDB from the store's ``events`` table.

    >>> from core.features import build_session_features, build_event_sequences
    >>> # feats = build_session_features(con)            # learn the spec
    >>> # feats = build_session_features(con, spec=spec) # score with a saved one

Feature meanings: docs/FEATURES.md.
"""

from __future__ import annotations

from core.features._source import top_event_types
from core.features.sequences import (
    CHANNEL_NAMES,
    DEFAULT_MAX_LEN,
    SEQUENCE_VERSION,
    ChannelScaling,
    SequenceSpec,
    SessionSequences,
    build_event_sequences,
    build_vocab,
)
from core.features.session import build_session_features
from core.features.spec import (
    BASE_FEATURES,
    DEFAULT_MAX_EVENT_TYPES,
    FEATURE_VERSION,
    FeatureSpec,
    SessionFeatures,
    TrainingScope,
    event_type_features,
    feature_hash,
)

__all__ = [
    "BASE_FEATURES",
    "CHANNEL_NAMES",
    "DEFAULT_MAX_EVENT_TYPES",
    "DEFAULT_MAX_LEN",
    "FEATURE_VERSION",
    "SEQUENCE_VERSION",
    "ChannelScaling",
    "FeatureSpec",
    "SequenceSpec",
    "SessionFeatures",
    "TrainingScope",
    "SessionSequences",
    "build_event_sequences",
    "build_session_features",
    "build_vocab",
    "event_type_features",
    "feature_hash",
    "top_event_types",
]
