"""The Live page's door to ``core.app.live``: reads keyed on the store's stamp.

A new event, score or alert changes the stamp, so each self-refresh of the page reads again
only when something happened; the drift view is also keyed on the minute, as its window moves
with the clock.
"""

from __future__ import annotations

import datetime as dt
import urllib.parse

import pandas as pd
import streamlit as st

from core.app import live
from dashboard import services

__all__ = ["drift", "feed", "minute", "pulse", "with_links"]


def minute() -> str:
    """The current minute (a cache key for windows that move with the clock)."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M")


@st.cache_data(show_spinner=False, max_entries=4, ttl=5)
def pulse(stamp: str, path: str) -> live.Pulse:
    """Events per second and alerts per minute (a window that moves: cached 5 s at most)."""
    return services.with_store(live.pulse)


@st.cache_data(show_spinner=False, max_entries=4)
def feed(stamp: str, path: str, limit: int = live.FEED_LIMIT) -> pd.DataFrame:
    """The newest live alerts."""
    return services.with_store(lambda s: live.feed(s, limit=limit))


@st.cache_data(show_spinner=False, max_entries=4)
def drift(stamp: str, path: str, at_minute: str) -> live.DriftView:
    """The policy model's recent risks against training (``core.app.live.drift``)."""
    return services.with_store(live.drift)


def with_links(frame: pd.DataFrame) -> pd.DataFrame:
    """The feed with its Explain and User links (relative: they stay on this dashboard)."""
    def url(page: str, params: dict[str, str]) -> str:
        return f"./{page}?{urllib.parse.urlencode(params)}"

    return frame.assign(
        explain=[url("explain", {"session": s}) for s in frame["session_id"]],
        user=[url("user", {"user": u, "session": s})
              for u, s in zip(frame["user_id"], frame["session_id"], strict=True)])
