"""Extra columns that hold instants (a sign-up time): the time from them to the event."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.explain.context import describe
from core.features import TrainingScope, build_session_features
from core.features.extras import ExtraColumn, ExtraSelection, ExtraSpec
from core.ingest import ingest_events
from core.store import Store

T0 = dt.datetime(2026, 1, 1)
CUT = T0 + dt.timedelta(hours=200)


def _iso(t: dt.datetime) -> str:
    return t.isoformat()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    rows = []
    for s in range(240):
        start = T0 + dt.timedelta(hours=s)
        signup = start - dt.timedelta(days=1 + s % 30)
        for j in range(2):
            rows.append({"user_id": f"u{s}", "session_id": f"s{s}",
                         "ts": start + dt.timedelta(minutes=j), "event_type": "buy",
                         "signed_up": _iso(signup), "birth": "1990-05-01"})
    # after training: a purchase 4 s after sign-up, written with an offset (+02:00)
    quick = T0 + dt.timedelta(hours=230)
    local = (quick - dt.timedelta(seconds=4)).replace(tzinfo=dt.UTC).astimezone(
        dt.timezone(dt.timedelta(hours=2)))
    rows[-2]["signed_up"] = rows[-1]["signed_up"] = local.isoformat()
    rows[-2]["ts"], rows[-1]["ts"] = quick, quick + dt.timedelta(seconds=30)
    # a sign-up time after the event (a clock error): 0, not negative
    rows[-4]["signed_up"] = rows[-3]["signed_up"] = _iso(T0 + dt.timedelta(days=400))
    # a session without the column
    for r in rows[-6:-4]:
        del r["signed_up"]
    path = tmp_path_factory.mktemp("dates") / "s.duckdb"
    with Store.open(path) as store:
        ingest_events(store, pd.DataFrame(rows))
        out = build_session_features(store.con, training=TrainingScope(until=CUT))
    return out


def _value(out, name: str, session: str) -> float:  # type: ignore[no-untyped-def]
    row = list(out.meta["session_id"]).index(session)
    return float(out.matrix.values[row, out.matrix.names.index(name)])


def test_instants_are_typed_datetime(built) -> None:  # type: ignore[no-untyped-def]
    kinds = {c.name: c.kind for c in built.spec.extras.columns}
    assert kinds == {"signed_up": "datetime", "birth": "datetime"}
    assert "extra_since_log[signed_up]" in built.matrix.names


def test_the_feature_is_the_log_seconds_from_the_instant_at_the_sessions_first_event(
        built) -> None:  # type: ignore[no-untyped-def]
    # s5: signed up 6 days before its first event
    assert _value(built, "extra_since_log[signed_up]", "s5") == pytest.approx(
        math.log1p(6 * 86_400), rel=1e-6)
    # the offset is honoured: 4 s, not 2 h 4 s
    assert _value(built, "extra_since_log[signed_up]", "s239") == pytest.approx(
        math.log1p(4), rel=1e-6)
    assert _value(built, "extra_since_log[signed_up]", "s238") == 0.0  # after the event
    assert _value(built, "extra_since_log[signed_up]", "s237") == 0.0  # missing
    assert _value(built, "extra_since_log[birth]", "s5") > math.log1p(35 * 365 * 86_400)


def test_a_spec_round_trips_and_a_mapping_can_force_or_drop_the_type(tmp_path: Path) -> None:
    spec = ExtraSpec((ExtraColumn("signed_up", "datetime", ()),))
    assert ExtraSpec.from_dict(spec.to_dict()) == spec
    assert spec.names == ("extra_since_log[signed_up]",)
    ExtraSelection(types={"x": "datetime"})  # accepted
    with pytest.raises(Exception, match="datetime or ignore"):
        ExtraSelection(types={"x": "date"})


def test_explanations_read_it_as_a_time(built) -> None:  # type: ignore[no-untyped-def]
    assert describe("extra_since_log[signed_up]") == (
        "seconds", "time from signed_up to the event")
    assert np.isfinite(built.matrix.values).all()


def test_train_says_a_column_was_read_as_instants(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from cli.main import main

    rows = [{"user_id": f"u{i}", "ts": (T0 + dt.timedelta(hours=i)).isoformat(),
             "event_type": "buy", "signed_up": (T0 - dt.timedelta(days=i % 9)).isoformat()}
            for i in range(120)]
    source = tmp_path / "events.csv"
    pd.DataFrame(rows).to_csv(source, index=False)
    db = tmp_path / "d.duckdb"
    runner = CliRunner()
    assert runner.invoke(main, ["ingest", str(source), "--db", str(db)]).exit_code == 0
    told = runner.invoke(main, ["train", "--detector", "zscore", "--db", str(db)])
    assert told.exit_code == 0, told.output
    assert "Note: extra column 'signed_up' holds dates or times" in told.output


def test_a_column_named_like_labels_is_not_a_feature_unless_the_mapping_says_so(
        tmp_path: Path) -> None:
    from click.testing import CliRunner

    from cli.main import main

    rows = [{"user_id": f"u{i}", "ts": (T0 + dt.timedelta(hours=i)).isoformat(),
             "event_type": "buy", "amount": float(i % 7), "isFraud": int(i % 50 == 0)}
            for i in range(150)]
    source = tmp_path / "events.csv"
    pd.DataFrame(rows).to_csv(source, index=False)
    db = tmp_path / "d.duckdb"
    runner = CliRunner()
    ingested = runner.invoke(main, ["ingest", str(source), "--db", str(db)])
    assert ingested.exit_code == 0, ingested.output
    assert "column 'isFraud' looks like labels" in ingested.output
    told = runner.invoke(main, ["train", "--detector", "zscore", "--db", str(db)])
    assert told.exit_code == 0, told.output
    assert "extra column 'isFraud' left out: named like labels" in told.output
    with Store.open(db, read_only=True) as store:
        kept = build_session_features(store.con, training=TrainingScope(
            until=CUT, extras=ExtraSelection(types={"isFraud": "numeric"})))
        left = build_session_features(store.con, training=TrainingScope(until=CUT))
    assert "extra_mean[isFraud]" in kept.matrix.names
    assert not any("isFraud" in n for n in left.matrix.names)
