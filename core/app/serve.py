"""Real-time scoring (issue #26) as the front ends see it: the service, its tokens, replay.

``anomalyst serve`` and ``anomalyst replay`` reach ``core.serve`` only through these names
(loaded on first use: FastAPI and the pipeline load when a command needs them).
"""

from __future__ import annotations

from core.app._lazy import lazy_exports

_NAMES = {
    "ScoringService": "core.serve.service", "ServiceConfig": "core.serve.service",
    "create_app": "core.serve.api", "check_bind": "core.serve.api",
    "TokenFile": "core.serve.tokens", "tokens_path": "core.serve.tokens",
    "HttpPoster": "core.serve.replay", "parse_rate": "core.serve.replay",
    "read_events": "core.serve.replay", "replay": "core.serve.replay",
}
__all__ = sorted(_NAMES)
__getattr__ = lazy_exports(__name__, _NAMES)
