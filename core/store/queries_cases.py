"""Named SQL for cases (merged into ``core.store.queries.QUERIES``). Values are bound, never formatted in."""

from __future__ import annotations

QUERIES: dict[str, str] = {}
