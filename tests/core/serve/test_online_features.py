"""The service's in-memory session features equal the batch build's (core.features).

The demo store's events are cut at a time T: the state is loaded from the events before T,
the rest are applied one by one in event-time order, and every session they touched must get
the row ``build_session_features`` gives on the whole store: returning users' history,
device and IP sharing between users, duplicated and similar texts, novelty, all of it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.features import FeatureSpec, build_session_features
from core.pipeline.registry import load_model
from core.serve.online_features import OnlineState, supports
from core.serve.state_loader import frame_events, load_state, stored_events
from core.store import Store


@pytest.fixture(scope="module")
def cut(demo_store: Path, tmp_path_factory: pytest.TempPathFactory
        ) -> tuple[FeatureSpec, OnlineState, Store, pd.DataFrame]:
    """(spec, state after the replay, the whole store, the events applied)."""
    root = tmp_path_factory.mktemp("online")
    whole = Store.open(demo_store, read_only=True)
    model = load_model(whole, whole.models.latest_of("zscore"))
    spec = FeatureSpec.from_dict(model.spec["features"])
    events = whole.con.execute("SELECT * FROM events ORDER BY ts, event_id").df()
    t_cut = events["ts"].quantile(0.8)
    before = root / "before.duckdb"
    shutil.copy(demo_store, before)
    with Store.open(before) as store:
        store.con.execute("DELETE FROM events WHERE ts >= $t", {"t": t_cut})
        state = load_state(store, spec)
        after = events[events["ts"] >= t_cut].reset_index(drop=True)
        for sid in set(after["session_id"]) & set(
                store.con.execute("SELECT DISTINCT session_id FROM events").df()["session_id"]):
            user = str(after.loc[after["session_id"] == sid, "user_id"].iloc[0])
            state.open_live(user, sid, stored_events(store, sid))
    if spec.text is not None:
        from core.text.cache import embed_texts

        missing = state.missing_vectors(after["text"].dropna().astype(str))
        if missing:
            state.add_vectors(missing, embed_texts(whole.con, missing, progress=False)[0])
    for user, sid, event in frame_events(after):
        state.apply(user, sid, event)
    return spec, state, whole, after


def test_the_demo_models_spec_is_supported(cut: tuple) -> None:
    spec = cut[0]
    assert supports(spec) is None


def test_rows_equal_the_batch_build(cut: tuple) -> None:
    spec, state, whole, after = cut
    sessions = sorted(set(after["session_id"]))
    assert len(sessions) > 50
    batch = build_session_features(whole.con, spec=spec, session_ids=sessions)
    order = list(batch.matrix.session_ids)
    online = state.rows(order)
    expected = batch.matrix.values
    worst = np.abs(online - expected).max(axis=0)
    bad = {name: float(w) for name, w in zip(spec.names, worst, strict=True) if w > 1e-5}
    assert not bad, f"columns that differ from the batch build: {bad}"
    # the comparison saw what it is about: returning users, sharing, texts
    col = {n: i for i, n in enumerate(spec.names)}
    assert (expected[:, col["n_prev_sessions_log"]] > 0).any()
    assert (expected[:, col["device_other_users_log"]] > 0).any() or (
        expected[:, col["ip_other_users_log"]] > 0).any()
    assert (expected[:, col["text_share"]] > 0).any()
    assert (expected[:, col["is_new_device"]] > 0).any()
    if spec.text is not None:
        assert (expected[:, col["text_max_sim_other_users"]] > 0).any()
