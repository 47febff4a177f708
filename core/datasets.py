"""In-memory inputs of the detectors: a session feature matrix and padded event sequences.

These are the contract between ``core.features`` (which builds them in DuckDB) and
``core.detectors`` (which never touches the store).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.errors import ConfigError


@dataclass(frozen=True)
class FeatureMatrix:
    """Session features, one row per session.

    Attributes:
        session_ids: (n,) object array of session ids.
        values: (n, f) float32, finite (missing values already imputed).
        names: the f feature names, in column order.
    """

    session_ids: np.ndarray
    values: np.ndarray
    names: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.values.ndim != 2:
            raise ConfigError(f"values must be 2-D (n, f), got shape {self.values.shape}.")
        if self.values.shape != (len(self.session_ids), len(self.names)):
            raise ConfigError(
                f"values must have shape (n_sessions, n_features) = "
                f"({len(self.session_ids)}, {len(self.names)}), got {self.values.shape}."
            )

    def __len__(self) -> int:
        return len(self.session_ids)

    def take(self, index: np.ndarray) -> FeatureMatrix:
        """Rows at ``index`` (integer positions or a boolean mask)."""
        return FeatureMatrix(self.session_ids[index], self.values[index], self.names)


@dataclass(frozen=True)
class EventSequences:
    """Per-session event sequences, truncated/padded to a fixed length L.

    Token 0 is padding and token 1 the unknown event type; real event types start at 2.
    Sessions longer than L keep their *last* L events (the end of a session is where a takeover
    or a cash-out happens).

    Attributes:
        session_ids: (n,) object array.
        tokens: (n, L) int64 event-type tokens, 0 where padded.
        numeric: (n, L, c) float32 per-event channels (0 where padded).
        mask: (n, L) bool, True on real events.
        event_ids: (n, L) object array of event ids ("" where padded).
        vocab: event type -> token, shared by every sequence.
        channel_names: the c channel names.
    """

    session_ids: np.ndarray
    tokens: np.ndarray
    numeric: np.ndarray
    mask: np.ndarray
    event_ids: np.ndarray
    vocab: dict[str, int]
    channel_names: tuple[str, ...]

    PAD = 0
    UNKNOWN = 1

    def __post_init__(self) -> None:
        n = len(self.session_ids)
        if self.tokens.ndim != 2 or self.tokens.shape[0] != n:
            raise ConfigError(f"tokens must have shape (n, L), got {self.tokens.shape}.")
        if self.numeric.shape[:2] != self.tokens.shape:
            raise ConfigError(
                f"numeric must have shape (n, L, c) matching tokens {self.tokens.shape}, "
                f"got {self.numeric.shape}."
            )
        if self.mask.shape != self.tokens.shape:
            raise ConfigError(f"mask must match tokens {self.tokens.shape}, got {self.mask.shape}.")

    def __len__(self) -> int:
        return len(self.session_ids)

    @property
    def max_len(self) -> int:
        return int(self.tokens.shape[1])

    def take(self, index: np.ndarray) -> EventSequences:
        """Sessions at ``index`` (integer positions or a boolean mask)."""
        return EventSequences(
            self.session_ids[index],
            self.tokens[index],
            self.numeric[index],
            self.mask[index],
            self.event_ids[index],
            self.vocab,
            self.channel_names,
        )
