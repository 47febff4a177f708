"""Filling ``OnlineState`` from the store: once at start, and a stored session that goes on."""

from __future__ import annotations

import json
import logging
import math
import time

import numpy as np
import pandas as pd

from core.features.spec import FeatureSpec
from core.serve.online_features import Event, OnlineState, Summary
from core.store import Store

log = logging.getLogger(__name__)

_COLUMNS = {"device_id": "device_id", "ip": "ip", "country": "countries",
            "payment_id": "payment_id"}


def load_state(store: Store, spec: FeatureSpec) -> OnlineState:
    """Every stored session's summary, each user's first use of each device, IP and text,
    and the unit embedding of every stored text (the store's cache; any missing embedded)."""
    started = time.perf_counter()
    state = OnlineState(spec)
    summaries = store.live.session_summaries()
    lists = {col: summaries[name].to_list() for col, name in _COLUMNS.items()}
    amount = summaries["amount_max"].to_numpy(np.float64)
    for i, (user, sid, start, end, n, country) in enumerate(zip(
            summaries["user_id"], summaries["session_id"], summaries["start_us"],
            summaries["end_us"], summaries["n_events"], summaries["country"], strict=True)):
        summary = Summary(str(sid), int(start), int(end), int(n),
                          math.nan if np.isnan(amount[i]) else float(amount[i]),
                          None if country is None or country != country else str(country),
                          {col: set(lists[col][i] if lists[col][i] is not None else ())
                           for col in _COLUMNS})
        state.add_summary(str(user), summary)
    for col in ("device_id", "ip"):
        uses = store.live.first_uses(col)
        for value, user, t in zip(uses["value"], uses["user_id"], uses["t_us"], strict=True):
            state.add_first_use(col, str(value), str(user), int(t))
    if spec.text is not None:
        uses = store.live.first_uses("text")
        texts = sorted(set(uses["value"].astype(str)))
        if texts:
            from core.text.cache import embed_texts

            vectors, _ = embed_texts(store.con, texts, progress=False)
            state.add_vectors(texts, vectors)
        for value, user, t in zip(uses["value"], uses["user_id"], uses["t_us"], strict=True):
            state.add_text_use(str(value), str(user), int(t))
    log.info("online features: %d users, %d sessions loaded in %.2fs", len(state.users),
             len(summaries), time.perf_counter() - started)
    return state


def stored_events(store: Store, session_id: str) -> list[Event]:
    """A stored session's events, for a session that goes on after a restart."""
    frame = store.live.session_events(session_id)
    frame = frame.astype(object).where(frame.notna(), None)
    return [Event(int(r["t_us"]), str(r["event_id"]), str(r["event_type"]),
                  None if r["amount"] is None else float(r["amount"]),
                  None if r["quantity"] is None else int(r["quantity"]),
                  r["device_id"], r["ip"], r["country"], r["user_agent"], r["payment_id"],
                  r["item_id"], r["category"], r["text"], _json_text(r.get("extra")))
            for r in frame.to_dict(orient="records")]


def _json_text(value: object) -> str | None:
    """The ``extra`` column as JSON text (DuckDB hands JSON over as text already)."""
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value)


def frame_events(frame: pd.DataFrame) -> list[tuple[str, str, Event]]:
    """(user_id, session_id, Event) of an events frame (tests, replays)."""
    frame = frame.astype(object).where(frame.notna(), None)
    out = []
    for r in frame.to_dict(orient="records"):
        t_us = int(pd.Timestamp(r["ts"]).value // 1000)
        out.append((str(r["user_id"]), str(r["session_id"]), Event(
            t_us, str(r["event_id"]), str(r["event_type"]),
            None if r.get("amount") is None else float(r["amount"]),
            None if r.get("quantity") is None else int(r["quantity"]),
            r.get("device_id"), r.get("ip"), r.get("country"), r.get("user_agent"),
            r.get("payment_id"), r.get("item_id"), r.get("category"), r.get("text"),
            _json_text(r.get("extra")))))
    return out
