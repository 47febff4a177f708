"""One exception tree for everything a user can trip.

Messages follow one rule: "<what> must be <rule>, got <value>. <what to do>." The CLI prints
``str(error)`` and exits non-zero; the dashboard shows it in ``st.error``.
"""

from __future__ import annotations


class AnomalystError(Exception):
    """Base of every error Anomalyst raises on purpose."""


class IngestError(AnomalystError):
    """Input data was rejected before anything was written."""


class SchemaError(IngestError):
    """Input columns do not fit the canonical schema (missing, unmappable)."""


class StoreError(AnomalystError):
    """The store could not be opened, read or written."""


class StoreBusyError(StoreError):
    """Another process holds the store; retrying did not help within the time limit."""


class StoreVersionError(StoreError):
    """The store was written by a newer Anomalyst than this one."""


class NotFittedError(AnomalystError):
    """A detector was asked to score before it was fitted or loaded."""


class ModelError(AnomalystError):
    """A model could not be trained, loaded or applied (wrong features, bad files)."""


class ConfigError(AnomalystError):
    """A configuration value is out of range or of the wrong kind."""


class AccessDeniedError(AnomalystError):
    """The signed-in user's role does not allow the action."""
