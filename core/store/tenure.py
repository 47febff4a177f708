"""The tenure segment of a session ('new' or 'returning'), defined once for every query."""

from __future__ import annotations

NEW_USER_DAYS = 7
"""A session is the user's 'new' tenure segment when it starts within this many days of the
user's first session in the store, else 'returning'."""


def tenure_sql(start: str, first: str) -> str:
    """SQL of the tenure segment of a session starting at ``start`` whose user's first session
    starts at ``first`` (column expressions): the one definition every query uses."""
    return (f"CASE WHEN {start} - {first} < INTERVAL {NEW_USER_DAYS} DAY "
            "THEN 'new' ELSE 'returning' END")
