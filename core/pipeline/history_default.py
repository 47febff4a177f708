"""Whether a feature model gets the history features when its config leaves it open.

A session of one event (a card payment, an account's first purchase, a row of a table
ingested with ``--unit event``) carries no behaviour of its own: the amount and the hour are
all it says. Its context is its user's and its entities' past, which is what the
point-in-time history features hold (core.features.history: the customer's usual amount
and pace, a terminal's recent traffic and fraud, a device's other accounts). Where sessions
are many events, the session already carries behaviour, and the history block adds ~90
columns that grow with the store's age (a user's 30-day count is lower in the first month),
which an unsupervised model reads as novelty.

So where a config's ``history_features`` is None, the training pipeline turns history on for
a feature detector when

* at least ``SINGLE_EVENT_SHARE`` of the store's sessions are one event (the median session
  is one event), and
* there is a past to read: users come back (at least ``REPEAT_SHARE`` of the sessions follow
  an earlier one of the same user) or an entity column (device, IP, merchant, ...) holds
  values. A table of independent rows (every user once, no entities) has none, and its
  history columns would all be 0: on ADBench they cost the autoencoder 0.10 of median AP.

The choice is saved in the model's config. Measured in docs/BENCHMARKS.md ("History features
where sessions are one event"); docs/FEATURES.md gives the table.

    >>> from core.store.summary import SessionShape
    >>> payments = SessionShape(1.0, 0.99, ("merchant_id",))
    >>> history_by_default(payments), history_by_default(SessionShape(1.0, 0.0, ()))
    (True, False)
    >>> history_by_default(SessionShape(0.2, 0.9, ("device_id",)))
    False
    >>> from types import SimpleNamespace as Config
    >>> history_choice(Config(history_features=None), "features", given={},
    ...                shape=lambda: payments)
    {'history_features': True}
    >>> history_choice(Config(history_features=False), "features", given={},
    ...                shape=lambda: payments)
    {}
    >>> history_choice(Config(history_features=None), "sequences", given={},
    ...                shape=lambda: payments)
    {'history_features': False}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from core.store.summary import SessionShape

SINGLE_EVENT_SHARE = 0.5
"""At or above this share of one-event sessions, feature models get history by default."""
REPEAT_SHARE = 0.1
"""Users count as coming back when this share of sessions follow one of the same user."""


def history_by_default(shape: SessionShape) -> bool:
    """The default for a store of this shape (module docstring)."""
    has_past = shape.repeat_share >= REPEAT_SHARE or bool(shape.entity_columns)
    return shape.single_event_share >= SINGLE_EVENT_SHARE and has_past


def history_choice(config: Any, input_kind: str, *, given: Mapping[str, Any],
                   shape: Callable[[], SessionShape]) -> dict[str, Any]:
    """``{"history_features": bool}`` where the config leaves it open (None) and the caller did
    not name it; ``{}`` otherwise. Only feature detectors read history."""
    if (given.get("history_features") is not None
            or getattr(config, "history_features", False) is not None):
        return {}
    if input_kind != "features":
        return {"history_features": False}
    return {"history_features": history_by_default(shape())}
