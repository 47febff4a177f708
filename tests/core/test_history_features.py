"""History features (core.features.history): window arithmetic against a brute-force pandas
oracle, the leakage test (a store cut at the session's start gives the same features), the
label delay, and the integration with the feature spec."""

from __future__ import annotations

import math

import duckdb
import numpy as np
import pandas as pd
import pytest

from core.errors import ConfigError
from core.features import FeatureSpec, TrainingScope, build_session_features
from core.features.history import (
    SHORT,
    HistorySpec,
    history_feature_columns,
    learn_history,
    window_us,
)
from core.features.spec import BASE_FEATURES, event_type_features, feature_hash

H = pd.Timedelta(hours=1)
T0 = pd.Timestamp("2026-01-01")


def _events(seed: int, n_sessions: int = 70) -> pd.DataFrame:
    """Small random events: 6 users, sessions on an hourly grid (ties and sessions exactly at
    window edges), 1-4 events each, small entity pools with NULLs, some overlapping sessions."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_sessions):
        user = f"u{rng.integers(6)}"
        start = T0 + int(rng.integers(0, 24 * 40)) * H  # 40 days, hour grid
        device = f"d{rng.integers(4)}" if rng.random() < 0.9 else None
        for k in range(int(rng.integers(1, 5))):
            ts = start + pd.Timedelta(minutes=int(rng.choice([0, 0, 1, 30, 60, 90]))) * int(k > 0)
            rows.append({
                "event_id": f"e{s}_{k}", "user_id": user, "session_id": f"s{s}", "ts": ts,
                "event_type": "pay",
                "amount": float(rng.integers(1, 50)) if rng.random() < 0.7 else None,
                "device_id": device if rng.random() < 0.9 else f"d{rng.integers(4)}",
                "ip": f"ip{rng.integers(3)}" if rng.random() < 0.8 else None,
                "merchant_id": f"m{rng.integers(3)}" if rng.random() < 0.8 else None,
                "item_id": f"i{rng.integers(5)}" if rng.random() < 0.5 else None,
                "payment_id": None, "country": None,
            })
    return pd.DataFrame(rows)


def _labels(events: pd.DataFrame, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed + 1)
    sessions = sorted(events["session_id"].unique())
    chosen = [s for s in sessions if rng.random() < 0.6]
    return pd.DataFrame({"session_id": chosen, "source": "ground_truth",
                         "is_anomaly": [bool(rng.random() < 0.4) for _ in chosen],
                         "scenario": "x"})


def _con(events: pd.DataFrame, labels: pd.DataFrame | None = None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.register("ev", events)
    con.execute("""CREATE TABLE events AS SELECT event_id, user_id, session_id,
        CAST(ts AS TIMESTAMP) AS ts, event_type, item_id, CAST(amount AS DOUBLE) AS amount,
        device_id, ip, CAST(country AS VARCHAR) AS country,
        CAST(payment_id AS VARCHAR) AS payment_id, merchant_id FROM ev""")
    con.unregister("ev")
    if labels is not None:
        con.execute("""CREATE TABLE session_label_rollup (session_id VARCHAR, source VARCHAR,
                       is_anomaly BOOLEAN, scenario VARCHAR)""")
        if len(labels):
            con.register("lab", labels)
            con.execute("INSERT INTO session_label_rollup SELECT session_id, source, "
                        "is_anomaly, scenario FROM lab")
            con.unregister("lab")
    return con


def _slog(x: float) -> float:
    return math.copysign(math.log1p(abs(x)), x)


def _oracle(events: pd.DataFrame, labels: pd.DataFrame, spec: HistorySpec) -> pd.DataFrame:
    """Every feature by its definition, one session at a time."""
    ev = events.copy()
    starts = ev.groupby("session_id")["ts"].min()
    users = ev.groupby("session_id")["user_id"].first()
    first = (pd.DataFrame({"start": starts, "user": users}).reset_index()
             .sort_values(["user", "start", "session_id"]).groupby("user")["session_id"].first())
    is_first = starts.index.isin(first.values)
    is_first = pd.Series(is_first, index=starts.index)
    fraud = labels.set_index("session_id")["is_anomaly"]
    amounts = ev[ev["amount"].notna()]
    uses = {c: ev[ev[c].notna()].groupby(["session_id", c])["ts"].min().reset_index()
            for c in spec.entity_columns}
    for c in uses:
        uses[c]["user"] = uses[c]["session_id"].map(users)
        uses[c]["start"] = uses[c]["session_id"].map(starts)
    delay = pd.Timedelta(days=spec.delay_days)
    out = {}
    for sid, t in starts.items():
        row: dict[str, float] = {}
        user = users[sid]
        for w in spec.user_windows:
            lo = t - pd.Timedelta(microseconds=window_us(w))
            mine = starts[(users == user) & (starts >= lo) & (starts < t)]
            pay = amounts[(amounts.user_id == user) & (amounts.ts >= lo) & (amounts.ts < t)]
            n = len(pay)
            row[f"hu_sessions_log[{w}]"] = math.log1p(len(mine))
            row[f"hu_payments_log[{w}]"] = math.log1p(n)
            row[f"hu_amount_sum_log[{w}]"] = _slog(pay.amount.sum()) if n else 0.0
            row[f"hu_amount_mean_log[{w}]"] = _slog(pay.amount.mean()) if n else 0.0
            row[f"hu_amount_max_log[{w}]"] = _slog(pay.amount.max()) if n else 0.0
            for c in spec.user_distinct:
                u = uses[c]
                seen = u[(u.user == user) & (u.ts >= lo) & (u.ts < t)][c].nunique()
                row[f"hu_distinct_{SHORT[c]}_log[{w}]"] = math.log1p(seen)
        short, long = "1d", "30d"
        own = ev[(ev.session_id == sid) & ev.amount.notna()].amount
        lo30 = t - pd.Timedelta(days=30)
        pay30 = amounts[(amounts.user_id == user) & (amounts.ts >= lo30) & (amounts.ts < t)]
        pay1 = amounts[(amounts.user_id == user) & (amounts.ts >= t - pd.Timedelta(days=1))
                       & (amounts.ts < t)]
        mean30 = pay30.amount.mean() if len(pay30) else 0.0
        row[f"hu_amount_vs_mean_log[{long}]"] = (
            _slog(own.mean()) - _slog(mean30) if len(own) and mean30 != 0 else 0.0)
        s30 = ((users == user) & (starts >= lo30) & (starts < t)).sum()
        s1 = ((users == user) & (starts >= t - pd.Timedelta(days=1)) & (starts < t)).sum()
        row[f"hu_sessions_velocity_log[{short}/{long}]"] = (
            math.log1p(s1) - math.log1p(s30 / 30) if s30 else 0.0)
        sum30, sum1 = pay30.amount.sum(), pay1.amount.sum()
        row[f"hu_amount_velocity_log[{short}/{long}]"] = (
            _slog(sum1) - _slog(sum30 / 30) if sum30 != 0 else 0.0)
        for c in spec.entity_columns:
            values = ev[(ev.session_id == sid) & ev[c].notna()][c].unique()
            u = uses[c]
            for w in spec.entity_windows:
                lo = t - pd.Timedelta(microseconds=window_us(w))
                per_value = []
                for v in values:
                    inw = u[(u[c] == v) & (u.ts >= lo) & (u.ts < t)]
                    amt = amounts[(amounts[c] == v) & (amounts.ts >= lo) & (amounts.ts < t)]
                    n = len(inw)
                    per_value.append((
                        math.log1p(n), math.log1p(inw.user.nunique()),
                        _slog(amt.amount.sum()) if len(amt) else 0.0,
                        float(is_first[inw.session_id].mean()) if n else 0.0))
                best = np.max(per_value, axis=0) if per_value else np.zeros(4)
                name = f"{SHORT[c]},{w}"
                for i, key in enumerate(("he_sessions_log", "he_users_log", "he_amount_log",
                                         "he_new_user_share")):
                    row[f"{key}[{name}]"] = float(best[i])
            for w in spec.label_windows:
                lo = t - delay - pd.Timedelta(microseconds=window_us(w))
                risks = [0.0]
                for v in values:
                    lab = u[(u[c] == v) & u.session_id.isin(fraud.index) & (u.start >= lo)
                            & (u.start < t - delay) & (u.ts < t)]
                    n_f = float(fraud[lab.session_id].sum()) if len(lab) else 0.0
                    risks.append(n_f / (len(lab) + spec.prior))
                row[f"he_fraud_risk[{SHORT[c]},{w}]"] = max(risks)
        out[sid] = row
    return pd.DataFrame.from_dict(out, orient="index")[list(spec.names)]


@pytest.mark.parametrize(("seed", "packing"), [(0, "direct"), (1, "direct"), (2, "ranks")])
def test_windows_match_the_oracle(seed: int, packing: str,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    if packing == "ranks":  # the fallback for keys x time spans beyond 62 bits
        monkeypatch.setattr("core.features.history._DIRECT_BITS", 1)
    events = _events(seed)
    labels = _labels(events, seed)
    con = _con(events, labels)
    spec = learn_history(con, HistorySpec(delay_days=2.0))
    assert spec is not None and spec.entity_columns == ("item_id", "merchant_id", "device_id",
                                                        "ip")  # all-NULL columns skipped
    ids = sorted(events["session_id"].unique())
    got = pd.DataFrame(history_feature_columns(con, spec, ids), index=ids)
    want = _oracle(events, labels, spec).loc[ids]
    assert list(got.columns) == list(spec.names)
    assert 60 <= len(spec.names) <= 100
    for name in spec.names:
        np.testing.assert_allclose(got[name].to_numpy(), want[name].to_numpy(), rtol=1e-9,
                                   atol=1e-9, err_msg=name)
    assert (got.abs().sum() > 0).mean() > 0.9  # the data exercises nearly every column


@pytest.mark.parametrize("packing", ["direct", "ranks"])
def test_rows_in_any_order_give_the_same_features(packing: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The store returns uses and amounts sorted (by value or user, then time); shuffled, the
    builder sorts them itself and the features do not change."""
    from core.store.history import HistoryQueries

    if packing == "ranks":
        monkeypatch.setattr("core.features.history._DIRECT_BITS", 1)
    events = _events(7)
    con = _con(events, _labels(events, 7))
    spec = learn_history(con, HistorySpec(delay_days=2.0))
    assert spec is not None
    ids = sorted(events["session_id"].unique())
    want = history_feature_columns(con, spec, ids)
    rng = np.random.default_rng(7)

    def shuffled(method):  # type: ignore[no-untyped-def]
        def run(self, *args):  # type: ignore[no-untyped-def]
            out = method(self, *args)
            order = rng.permutation(len(next(iter(out.values()))))
            return {k: v[order] for k, v in out.items()}
        return run

    for name in ("first_uses", "user_amounts", "value_amounts"):
        monkeypatch.setattr(HistoryQueries, name, shuffled(getattr(HistoryQueries, name)))
    got = history_feature_columns(con, spec, ids)
    for name in spec.names:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-9, atol=1e-9, err_msg=name)


def _cut(events: pd.DataFrame, labels: pd.DataFrame, sid: str, delay_days: float,
         ) -> duckdb.DuckDBPyConnection:
    """The store as it was at ``sid``'s start: its own events, every earlier event, and the
    labels of sessions that started more than the delay before."""
    starts = events.groupby("session_id")["ts"].min()
    t = starts[sid]
    kept = events[(events.session_id == sid) | (events.ts < t)]
    known = starts[starts < t - pd.Timedelta(days=delay_days)].index
    return _con(kept, labels[labels.session_id.isin(known)])


@pytest.mark.parametrize("seed", [3, 4])
def test_leakage_cut_store_gives_the_same_features(seed: int) -> None:
    events = _events(seed)
    labels = _labels(events, seed)
    full = _con(events, labels)
    spec = learn_history(full, HistorySpec(delay_days=1.5))
    assert spec is not None
    ids = sorted(events["session_id"].unique())
    everything = pd.DataFrame(history_feature_columns(full, spec, ids), index=ids)
    rng = np.random.default_rng(seed)
    for sid in rng.choice(ids, size=12, replace=False):
        cut = history_feature_columns(_cut(events, labels, sid, 1.5), spec, [sid])
        for name in spec.names:
            assert cut[name][0] == pytest.approx(everything.loc[sid, name], rel=1e-9,
                                                 abs=1e-9), (sid, name)


def test_label_risk_ignores_labels_inside_the_delay() -> None:
    # Session q (at day 20) shares device dX with session f; f is labelled fraud.
    def frame(f_day: float) -> pd.DataFrame:
        base = {"event_type": "pay", "amount": 5.0, "ip": None, "merchant_id": None,
                "item_id": None, "payment_id": None, "country": None}
        rows = [{"event_id": "q1", "user_id": "uq", "session_id": "q",
                 "ts": T0 + pd.Timedelta(days=20), "device_id": "dX", **base},
                {"event_id": "f1", "user_id": "uf", "session_id": "f",
                 "ts": T0 + pd.Timedelta(days=f_day), "device_id": "dX", **base},
                {"event_id": "n1", "user_id": "un", "session_id": "n",
                 "ts": T0 + pd.Timedelta(days=1), "device_id": "dY", **base}]
        return pd.DataFrame(rows)

    labels = pd.DataFrame({"session_id": ["f", "n"], "source": "ground_truth",
                           "is_anomaly": [True, False], "scenario": "x"})
    spec = HistorySpec(entity_columns=("device_id",), delay_days=7.0)

    def risk(f_day: float, with_labels: bool) -> dict[str, float]:
        con = _con(frame(f_day), labels if with_labels else labels.iloc[0:0])
        cols = history_feature_columns(con, spec, ["q"])
        return {k: v[0] for k, v in cols.items() if k.startswith("he_fraud_risk")}

    # inside the delay (3 days before q): the label is not known yet
    assert risk(17.0, True) == risk(17.0, False)
    assert all(v == 0 for v in risk(17.0, True).values())
    # exactly the delay before: still not (the label's time must be strictly before)
    assert all(v == 0 for v in risk(13.0, True).values())
    # outside (10 days before): known, counted in the 7-day and 30-day windows ending 7 days
    # before q (f at day 10 is in [20-7-7, 20-7) = [6, 13)), not in the 1-day one
    got = risk(10.0, True)
    assert got["he_fraud_risk[device,1d]"] == 0
    assert got["he_fraud_risk[device,7d]"] == pytest.approx(1 / (1 + spec.prior))
    assert got["he_fraud_risk[device,30d]"] == pytest.approx(1 / (1 + spec.prior))
    assert got != risk(10.0, False)


def test_spec_integration_and_old_specs() -> None:
    events = _events(5, n_sessions=30)
    con = _con(events, _labels(events, 5))
    built = build_session_features(con, training=TrainingScope(history=HistorySpec()), text=False)
    history = built.spec.history
    assert history is not None and set(history.names) <= set(built.matrix.names)
    again = FeatureSpec.from_dict(built.spec.to_dict())
    assert again == built.spec and again.hash == built.spec.hash
    direct = history_feature_columns(con, history, built.matrix.session_ids)
    at = [built.matrix.names.index(n) for n in history.names]
    np.testing.assert_allclose(built.matrix.values[:, at],
                               np.column_stack([direct[n] for n in history.names]), rtol=1e-6)
    rescored = build_session_features(con, spec=again)
    np.testing.assert_array_equal(rescored.matrix.values, built.matrix.values)

    # A spec saved before the history block existed loads, hashes and builds as before.
    old = {"version": 1, "event_types": ["pay"],
           "hash": feature_hash((*BASE_FEATURES, *event_type_features(["pay"])))}
    spec = FeatureSpec.from_dict(old)
    assert spec.history is None and spec.to_dict() == old
    plain = build_session_features(con, spec=spec)
    assert plain.matrix.names == (*BASE_FEATURES, *event_type_features(["pay"]))
    # without a history request, no history block is learned
    assert build_session_features(con, training=TrainingScope(), text=False).spec.history is None


def test_detector_config_default_and_spec_checks() -> None:
    from core.detectors.mlp import MLPConfig

    assert MLPConfig().history_features is None  # the pipeline decides (history_default)
    assert MLPConfig.from_dict({"history_features": True}).history_features is True
    with pytest.raises(ConfigError):
        HistorySpec(user_windows=("1w",))
    with pytest.raises(ConfigError):
        HistorySpec(entity_columns=("user_agent",))
    assert HistorySpec(enabled=False).names == ()


def test_a_detector_with_history_features_trains_and_scores(tmp_path) -> None:
    import json

    from core.ingest import ingest_events
    from core.pipeline import score_model, train_model
    from core.store import Store

    events = _events(6, n_sessions=60).drop(columns=["payment_id", "country"])
    with Store.open(tmp_path / "s.duckdb") as store:
        ingest_events(store, events)
        plain = train_model(store, "zscore", quiet=True, models_dir=tmp_path / "m")
        with_history = train_model(store, "zscore", quiet=True, models_dir=tmp_path / "m",
                                   config={"history_features": True})
        specs = {r[0]: json.loads(r[1]) for r in store.con.execute(
            "SELECT model_id, feature_spec FROM models").fetchall()}
        assert "history" not in specs[plain.model_id]["features"]
        history = specs[with_history.model_id]["features"]["history"]
        assert history["delay_days"] == 7.0 and "merchant_id" in history["entity_columns"]
        assert score_model(store, with_history.model_id).n_sessions == 60
        assert score_model(store, plain.model_id).n_sessions == 60
