"""Named SQL for explain (merged into ``core.store.queries.QUERIES``)."""

from __future__ import annotations

QUERIES: dict[str, str] = {}
