"""The real-time scoring service (issue #26): a durable event log, online sessionization, a
single store writer that scores with the alert policy in force, and a FastAPI app over it.

Names load on first use, so importing one building block (``core.serve.event_log``) does not
load FastAPI or the pipeline.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "ScoringService": "core.serve.service", "ServiceConfig": "core.serve.service",
    "create_app": "core.serve.api", "check_bind": "core.serve.api",
    "TokenFile": "core.serve.tokens", "tokens_path": "core.serve.tokens",
    "EventLog": "core.serve.event_log", "OnlineSessionizer": "core.serve.sessionizer",
    "parse_events": "core.serve.events_in",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
