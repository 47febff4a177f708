"""The service's extra-column features equal the batch build's (core.features.extras)."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.features import TrainingScope, build_session_features
from core.ingest import ingest_events
from core.serve.online_features import supports
from core.serve.state_loader import frame_events, load_state, stored_events
from core.store import Store

T0 = dt.datetime(2026, 3, 2)


def _events() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    rows = []
    for s in range(300):
        start = T0 + dt.timedelta(minutes=20 * s)
        for j in range(int(rng.integers(1, 5))):
            row = {"user_id": f"u{s % 40}", "session_id": f"s{s:03d}",
                   "ts": start + dt.timedelta(seconds=37 * j), "event_type": "buy",
                   "age": float(rng.normal(40, 9)) if rng.random() > 0.1 else None,
                   "browser": str(rng.choice(["ff", "ch", "sa"])) if s < 280 or j else "edge",
                   "signed_up": (start - dt.timedelta(hours=float(rng.uniform(0, 900))))
                   .isoformat(timespec="seconds") + ("+02:00" if s % 7 == 0 else ""),
                   # an instant as epoch milliseconds, in a column named like instants
                   "joined_at": int((start - dt.timedelta(days=1 + s % 30)).replace(
                       tzinfo=dt.UTC).timestamp() * 1000)}
            if s % 11 == 0:
                row["signed_up"] = None  # missing on every event of the session
            rows.append(row)
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """(spec, state after the replay, the whole store, the events applied)."""
    root = tmp_path_factory.mktemp("online_extras")
    events = _events()
    whole_path = root / "whole.duckdb"
    with Store.open(whole_path) as store:
        ingest_events(store, events)
        stored = store.con.execute("SELECT * FROM events ORDER BY ts, event_id").df()
        cut = stored["ts"].quantile(0.7)
        spec = build_session_features(store.con, training=TrainingScope(until=cut)).spec
    before = root / "before.duckdb"
    shutil.copy(whole_path, before)
    after = stored[stored["ts"] >= cut].reset_index(drop=True)
    with Store.open(before) as store:
        store.con.execute("DELETE FROM events WHERE ts >= $t", {"t": cut})
        state = load_state(store, spec)
        kept = set(store.con.execute("SELECT DISTINCT session_id FROM events").df()["session_id"])
        for sid in set(after["session_id"]) & kept:  # sessions that go on after the cut
            user = str(after.loc[after["session_id"] == sid, "user_id"].iloc[0])
            state.open_live(user, sid, stored_events(store, sid))
    for user, sid, event in frame_events(after):
        state.apply(user, sid, event)
    return spec, state, Store.open(whole_path, read_only=True), after


def test_specs_with_extra_columns_are_supported(replayed) -> None:  # type: ignore[no-untyped-def]
    spec = replayed[0]
    assert {c.kind for c in spec.extras.columns} == {"numeric", "categorical", "datetime"}
    assert {c.name: c.kind for c in spec.extras.columns}["joined_at"] == "datetime"
    assert supports(spec) is None


def test_extra_features_equal_the_batch_build(replayed) -> None:  # type: ignore[no-untyped-def]
    spec, state, whole, after = replayed
    sessions = sorted(set(after["session_id"]))
    batch = build_session_features(whole.con, spec=spec, session_ids=sessions)
    online = state.rows(list(batch.matrix.session_ids))
    worst = np.abs(online - batch.matrix.values).max(axis=0)
    bad = {n: float(w) for n, w in zip(spec.names, worst, strict=True) if w > 1e-5}
    assert not bad, f"columns that differ from the batch build: {bad}"
    col = {n: i for i, n in enumerate(spec.names)}
    values = batch.matrix.values
    assert (values[:, col["extra_since_log[signed_up]"]] == 0).any()  # missing sign-ups
    assert (values[:, col["extra_since_log[signed_up]"]] > 0).any()
    assert (values[:, col["extra_unseen_log[browser]"]] > 0).any()  # 'edge', never in training
    assert (values[:, col["extra_mean[age]"]] != 0).any()


def test_values_are_read_as_duckdb_reads_them() -> None:
    from core.features.extras import ExtraColumn, ExtraSpec
    from core.serve.online_extras import ExtraReader

    reader = ExtraReader(ExtraSpec((ExtraColumn("n", "numeric", ("mean", "min", "max")),
                                    ExtraColumn("c", "categorical", (), ("a",), (0.1,), 5.0),
                                    ExtraColumn("d", "datetime", ()))))
    rows = reader.read(['{"n": "1_000", "c": "a", "d": "2026-01-01T02:00:00+02:00"}',
                        None, '{"n": "inf", "c": "b"}', '{"other": 1}'])
    assert rows[0] == (1000.0, "a", 1_767_225_600_000_000)  # 00:00 UTC
    assert rows[1] == rows[3] == (None, None, None)
    assert rows[2] == (None, "b", None)  # not finite: no number
    t = 1_767_225_600_000_000 + 4_000_000  # 4 s after the instant
    f = reader.features([(t, rows[0]), (t, rows[2]), (t, rows[1])])
    assert f["extra_mean[n]"] == f["extra_min[n]"] == 1000.0
    assert f["extra_rarity[c]"] == 5.0 and f["extra_unseen_log[c]"] == pytest.approx(np.log(2))
    assert f["extra_since_log[d]"] == pytest.approx(np.log1p(4.0))
    assert reader.features([(t, rows[1])]) == {"extra_rarity[c]": 0.0,
                                               "extra_unseen_log[c]": 0.0}


def test_a_model_with_extra_columns_is_answered_from_memory_as_batch_scores_it(
        tmp_path: Path) -> None:
    import json

    from core.app import models as app_models
    from core.app.data import open_store
    from core.policy import publish_policy
    from core.serve.events_in import parse_events
    from core.serve.service import ScoringService, ServiceConfig

    events = _events().assign(event_id=lambda f: [f"e{i:05d}" for i in range(len(f))])
    cut = events["ts"].quantile(0.7)
    first, rest = events[events["ts"] < cut], events[events["ts"] >= cut]
    live, batch = tmp_path / "live.duckdb", tmp_path / "batch.duckdb"
    with open_store(live) as store:
        ingest_events(store, first)
        model_id = app_models.train(store, app_models.TrainRequest("zscore", quiet=True)
                                    ).model_id
        app_models.score(store, model_id)
        publish_policy(store, analyst="test", model_id=model_id, thresholds={"all": 1e12})
    shutil.copy(live, batch)
    last: dict[str, float] = {}
    config = ServiceConfig(fsync=False, wait_s=60.0, batch_ms=1.0)
    with ScoringService.open(live, config) as service:
        assert service.health()["scoring"] == "memory"
        frame = rest.assign(ts=rest["ts"].dt.strftime("%Y-%m-%dT%H:%M:%S"))
        for start in range(0, len(frame), 25):
            rows = [{k: v for k, v in r.items() if v is not None and v == v}
                    for r in frame.iloc[start:start + 25].to_dict(orient="records")]
            result = service.submit(parse_events(json.dumps(rows).encode()))
            for answer in result.events:
                last[answer["session_id"]] = answer["score"]
    with open_store(batch) as store:
        ingest_events(store, rest)
        app_models.score(store, model_id)
        scored = store.scores.of_model(model_id).set_index("session_id")["score"]
    ids = sorted(last)
    assert len(ids) > 50
    np.testing.assert_allclose([last[s] for s in ids], scored.loc[ids].to_numpy(), rtol=1e-5,
                               atol=1e-6)
