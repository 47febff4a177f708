"""The application layer: the use cases both front ends call, and only these.

The CLI (`cli/`) and the dashboard (`dashboard/services*.py`) are thin adapters: they parse
input, open the store the way their front end needs (the CLI waits on a busy store, the
dashboard opens per cached read), call one function here, and draw what it returns. A front
end imports ``core.app`` and nothing else from ``core`` (``tests/test_architecture.py``).

One module per group of use cases:

- ``core.app.data``: open the store, what it holds, migrate, ingest events and labels, mappings;
- ``core.app.models``: train, score the latest models, export scores, evaluate, list models;
- ``core.app.alerts``: thresholds in force, the flagged queue and its filters, tuning views;
- ``core.app.investigate``: explain a session, a user's timeline, lookups for pages;
- ``core.app.cases``: open, claim, note, decide, reopen, snooze and report cases;
- ``core.app.entities``: one device, IP, item, payment id, country or merchant: its volume,
  risk, users and decided cases; a case opened on it;
- ``core.app.access``: the user file and roles (sign-in for the dashboard, ``anomalyst users``).

Heavy modules (torch, the detectors, shap) are imported inside the functions that need them,
so ``anomalyst --help`` and a dashboard page that only reads stay fast.
"""

from __future__ import annotations

from core.errors import (
    AccessDeniedError,
    AnomalystError,
    ConfigError,
    IngestError,
    ModelError,
    StoreBusyError,
    StoreError,
    StoreVersionError,
)

__all__ = [
    "AccessDeniedError", "AnomalystError", "ConfigError", "IngestError", "ModelError",
    "StoreBusyError", "StoreError", "StoreVersionError",
]
