"""Session features: values checked by hand on a tiny events table, and the contracts."""

from __future__ import annotations

import dataclasses
import math

import duckdb
import numpy as np
import pytest
from _feature_fixtures import at, events_con, session_rows

from core.errors import ConfigError, ModelError, StoreError
from core.features import (
    BASE_FEATURES,
    FEATURE_VERSION,
    FeatureSpec,
    SessionFeatures,
    build_session_features,
    feature_hash,
)
from core.features.spec import POINT_IN_TIME, WHOLE_TABLE

REQUIRED_ONLY = ["user_id", "session_id", "ts", "event_type"]


def _rows() -> list[dict]:
    # u1, first session: card testing on payment p1 (3 of 4 attempts fail, tiny amounts).
    s1 = session_rows(
        "s1", "u1",
        ["login", "view", *["payment_attempt"] * 4, *["payment_failed"] * 3, "purchase"],
        start=at(0), device_id="d1", ip="ip1", country="DE", user_agent="ua1",
    )
    s1[1].update(amount=20.0, item_id="i1", category="c1")
    for r in s1[2:6]:
        r.update(amount=1.0, payment_id="p1")
    s1[9].update(amount=50.0, item_id="i1", category="c1", payment_id="p1")
    # u1 two days later: a device and a country never seen before, a bigger purchase.
    s2 = session_rows("s2", "u1", ["login", "view", "purchase"], start=at(days=2),
                      device_id="d2", ip="ip1", country="FR")
    s2[1].update(amount=100.0, text="hello")
    s2[2].update(amount=100.0, payment_id="p1")
    # u2 and u3 use the same device d2 and post the same review text.
    s3 = session_rows("s3", "u2", ["add_to_cart", "remove_from_cart", "remove_from_cart",
                                   "review"], start=at(days=1), device_id="d2", ip="ip2")
    s3[0].update(item_id="i1", quantity=3)
    s3[1].update(item_id="i1")
    s3[2].update(item_id="i2")  # removed without being added: not counted
    s3[3].update(text="great product")
    s4 = session_rows("s4", "u3", ["review", "logout"], start=at(3600, days=1), device_id="d2")
    s4[0].update(text="great product")
    return s1 + s2 + s3 + s4


@pytest.fixture(scope="module")
def feats() -> SessionFeatures:
    return build_session_features(events_con(_rows()))


def _row(feats: SessionFeatures, session_id: str) -> dict[str, float]:
    i = list(feats.matrix.session_ids).index(session_id)
    return dict(zip(feats.matrix.names, feats.matrix.values[i].tolist(), strict=True))


def test_rows_are_ordered_by_start_time_then_id(feats: SessionFeatures) -> None:
    assert list(feats.matrix.session_ids) == ["s1", "s3", "s4", "s2"]
    assert list(feats.meta["session_id"]) == ["s1", "s3", "s4", "s2"]
    assert feats.meta["start_ts"].is_monotonic_increasing
    assert list(feats.meta["n_events"]) == [10, 4, 2, 3]
    assert list(feats.meta["user_id"]) == ["u1", "u2", "u3", "u1"]


def test_matrix_is_finite_float32_with_spec_names(feats: SessionFeatures) -> None:
    m = feats.matrix
    assert m.values.dtype == np.float32 and np.isfinite(m.values).all()
    assert m.names == feats.spec.names and m.names[: len(BASE_FEATURES)] == BASE_FEATURES


def test_payment_and_timing_features_by_hand(feats: SessionFeatures) -> None:
    r = _row(feats, "s1")
    assert r["payment_failure_ratio"] == pytest.approx(0.75)
    assert r["n_payment_failed_log"] == pytest.approx(math.log1p(3))
    assert r["n_events_log"] == pytest.approx(math.log1p(10))
    assert r["duration_log"] == pytest.approx(math.log1p(90))
    assert r["gap_mean_log"] == pytest.approx(math.log1p(10))
    assert r["gap_min_log"] == pytest.approx(math.log1p(10))
    assert r["gap_std_log"] == 0 and r["gap_cv"] == 0  # perfectly regular: bot-like
    assert r["small_amount_share"] == pytest.approx(4 / 6)
    assert r["amount_max_log"] == pytest.approx(math.log1p(50))
    assert r["amount_sum_log"] == pytest.approx(math.log1p(74))
    assert r["count_log[payment_attempt]"] == pytest.approx(math.log1p(4))
    assert r["share[payment_attempt]"] == pytest.approx(0.4)
    assert r["n_items_log"] == pytest.approx(math.log1p(1))
    assert r["n_payment_ids_log"] == pytest.approx(math.log1p(1))
    assert r["is_weekend"] == 0 and r["is_night"] == 0
    assert r["hour_sin"] == pytest.approx(math.sin(2 * math.pi * 10 / 24), abs=1e-6)


def test_first_session_is_not_novel(feats: SessionFeatures) -> None:
    r = _row(feats, "s1")
    for name in ("is_new_device", "is_new_country", "is_new_ip", "is_new_payment_id",
                 "n_prev_sessions_log", "user_age_days_log", "is_amount_above_user_max"):
        assert r[name] == 0, name


def test_novelty_against_the_users_history(feats: SessionFeatures) -> None:
    r = _row(feats, "s2")
    assert r["is_new_device"] == 1 and r["is_new_country"] == 1
    assert r["is_new_ip"] == 0 and r["is_new_payment_id"] == 0
    assert r["is_amount_above_user_max"] == 1
    assert r["amount_vs_user_max_log"] == pytest.approx(math.log1p(100) - math.log1p(50))
    assert r["n_prev_sessions_log"] == pytest.approx(math.log1p(1))
    assert r["user_age_days_log"] == pytest.approx(math.log1p(2))


def test_a_shared_device_counts_the_users_who_had_used_it_by_the_session_end(
        feats: SessionFeatures) -> None:
    # d2: u2 (s3, day 1), then u3 (s4, an hour later), then u1 (s2, day 2)
    assert feats.spec.sharing == POINT_IN_TIME
    others = {sid: _row(feats, sid)["device_other_users_log"] for sid in ("s3", "s4", "s2")}
    assert others == pytest.approx({"s3": 0.0, "s4": math.log1p(1), "s2": math.log1p(2)})
    assert _row(feats, "s1")["device_other_users_log"] == 0
    assert _row(feats, "s2")["ip_other_users_log"] == 0  # ip1 is u1's alone


def test_a_spec_from_before_point_in_time_sharing_counts_the_whole_table(
        feats: SessionFeatures) -> None:
    old = dataclasses.replace(feats.spec, sharing=WHOLE_TABLE)
    assert "sharing" not in old.to_dict() and FeatureSpec.from_dict(old.to_dict()) == old
    assert old.hash != feats.spec.hash
    con = events_con(_rows())
    for scope in (None, ["s3", "s4"]):
        got = build_session_features(con, spec=old, session_ids=scope)
        for sid in ("s3", "s4"):
            assert _row(got, sid)["device_other_users_log"] == pytest.approx(math.log1p(2))
            assert _row(got, sid)["text_dup_share"] == 1


def test_text_and_cart_features(feats: SessionFeatures) -> None:
    s2, s3 = _row(feats, "s2"), _row(feats, "s3")
    assert s2["text_share"] == pytest.approx(1 / 3) and s2["text_dup_share"] == 0
    assert s2["text_len_mean_log"] == pytest.approx(math.log1p(5))
    # "great product": u2 (s3) first, u3 (s4) an hour later: a duplicate from s4 on
    assert s3["text_dup_share"] == 0 and _row(feats, "s4")["text_dup_share"] == 1
    assert s3["n_removed_after_add_log"] == pytest.approx(math.log1p(1))
    assert s3["cart_qty_max_log"] == pytest.approx(math.log1p(3))


def test_subset_of_sessions_keeps_history_and_sharing(feats: SessionFeatures) -> None:
    con = events_con(_rows())
    part = build_session_features(con, spec=feats.spec, session_ids=["s2", "s3"])
    assert list(part.matrix.session_ids) == ["s3", "s2"]
    for sid in ("s2", "s3"):
        np.testing.assert_allclose(list(_row(part, sid).values()),
                                   list(_row(feats, sid).values()), rtol=1e-6)


def test_unknown_session_ids_are_refused() -> None:
    with pytest.raises(ConfigError, match="unknown"):
        build_session_features(events_con(_rows()), session_ids=["s1", "nope"])
    with pytest.raises(ConfigError, match="sequence of ids"):
        build_session_features(events_con(_rows()), session_ids="s1")


def test_only_required_columns_give_zero_optional_features() -> None:
    rows = [{k: r[k] for k in REQUIRED_ONLY} for r in _rows()]
    out = build_session_features(events_con(rows, columns=REQUIRED_ONLY))
    assert np.isfinite(out.matrix.values).all()
    r = _row(out, "s1")
    for name in ("amount_max_log", "n_devices_log", "is_new_device", "text_share",
                 "device_other_users_log", "n_items_log"):
        assert r[name] == 0, name
    assert r["payment_failure_ratio"] == pytest.approx(0.75)  # needs event types only
    assert r["gap_mean_log"] == pytest.approx(math.log1p(10))


def test_all_null_optional_columns_give_zero_features() -> None:
    rows = [{k: r[k] for k in ["event_id", *REQUIRED_ONLY]} for r in _rows()]
    out = build_session_features(events_con(rows))
    base = out.matrix.values[:, : BASE_FEATURES.index("hour_sin")]
    names = BASE_FEATURES[: BASE_FEATURES.index("hour_sin")]
    nonzero = {n for n, col in zip(names, base.T, strict=True) if np.any(col != 0)}
    assert nonzero <= {"n_events_log", "duration_log", "gap_mean_log", "gap_std_log",
                       "gap_min_log", "gap_max_log", "gap_cv", "n_payment_failed_log",
                       "payment_failure_ratio", "user_age_days_log", "n_prev_sessions_log"}


def test_hundreds_of_event_types_give_bounded_columns() -> None:
    rng = np.random.default_rng(0)
    types = [f"t{i:03d}" for i in range(300)]
    weights = 1.0 / np.arange(1, 301)
    picks = rng.choice(300, size=3000, p=weights / weights.sum())
    rows = [{"user_id": f"u{i % 7}", "session_id": f"s{i % 50}", "ts": at(i),
             "event_type": types[k]} for i, k in enumerate(picks)]
    out = build_session_features(events_con(rows), max_event_types=24)
    assert len(out.spec.event_types) == 24
    assert len(out.matrix.names) == len(BASE_FEATURES) + 2 * 25
    assert out.spec.event_types[0] == "t000"  # most frequent first
    shares = out.matrix.values[:, [i for i, n in enumerate(out.matrix.names)
                                   if n.startswith("share[")]]
    np.testing.assert_allclose(shares.sum(axis=1), 1.0, rtol=1e-5)
    # scoring with the saved spec on data lacking some of its types still lines up
    few = build_session_features(events_con(rows[:10]), spec=out.spec)
    assert few.matrix.names == out.matrix.names


def test_spec_round_trip_hash_and_refusals() -> None:
    spec = FeatureSpec(("login", "view"))
    assert FeatureSpec.from_dict(spec.to_dict()) == spec
    assert spec.hash == feature_hash(spec.names) != FeatureSpec(("view", "login")).hash
    with pytest.raises(ModelError, match="version"):
        FeatureSpec.from_dict({"event_types": ["login"], "version": FEATURE_VERSION + 1})
    with pytest.raises(ModelError, match="hash"):
        FeatureSpec.from_dict({**spec.to_dict(), "hash": "0" * 16})
    with pytest.raises(ConfigError, match="unique"):
        FeatureSpec(("login", "login"))
    with pytest.raises(ConfigError, match="other"):
        FeatureSpec(("<other>",))
    out = build_session_features(events_con(_rows()), event_types=["login", "view"])
    assert out.spec == dataclasses.replace(spec, sharing=POINT_IN_TIME)
    spec.check_matrix(out.matrix)
    with pytest.raises(ModelError, match="columns"):
        FeatureSpec(("login",)).check_matrix(out.matrix)
    with pytest.raises(ConfigError, match="both"):
        build_session_features(events_con(_rows()), spec=spec, event_types=["login"])


def test_empty_and_missing_tables() -> None:
    out = build_session_features(events_con([]), event_types=["login"])
    assert out.matrix.values.shape == (0, len(FeatureSpec(("login",)).names))
    with pytest.raises(StoreError, match="events"):
        build_session_features(duckdb.connect())


def test_no_temp_tables_left_behind() -> None:
    con = events_con(_rows())
    build_session_features(con)
    left = con.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchall()
    assert left == [(0,)]


def test_rows_deleted_from_the_table_are_ignored() -> None:
    """rowids have gaps after a DELETE: features must match a table built without the rows."""
    rows = _rows()
    con = events_con(rows)
    con.execute("DELETE FROM events WHERE session_id = 's3' OR event_type = 'view'")
    kept = [r for r in rows if r["session_id"] != "s3" and r["event_type"] != "view"]
    spec = FeatureSpec(("login", "purchase"))
    got = build_session_features(con, spec=spec)
    want = build_session_features(events_con(kept), spec=spec)
    assert list(got.matrix.session_ids) == list(want.matrix.session_ids) == ["s1", "s4", "s2"]
    np.testing.assert_array_equal(got.matrix.values, want.matrix.values)


def test_events_only_this_connection_sees_give_the_same_features(feats: SessionFeatures) -> None:
    """A temporary events table is invisible to other cursors: the three queries then run
    one after another on the caller's connection, with the same result."""
    table = events_con(_rows()).execute("SELECT * FROM events").df()
    con = duckdb.connect()
    con.register("frame", table)
    con.execute("CREATE TEMP TABLE events AS SELECT * FROM frame")
    again = build_session_features(con)
    np.testing.assert_array_equal(again.matrix.values, feats.matrix.values)
    assert list(again.matrix.session_ids) == list(feats.matrix.session_ids)
