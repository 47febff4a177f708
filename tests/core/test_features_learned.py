"""What a spec learns from the training events: novelty and extra columns as features."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.features import FeatureSpec, TrainingScope, build_session_features
from core.features.extras import ExtraSelection
from core.ingest import ingest_events
from core.store import Store

T0 = dt.datetime(2026, 1, 1)
CUT = T0 + dt.timedelta(hours=300)


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    rows = []
    for s in range(400):
        for j in range(5):
            kind = ["view", "cart", "buy"][j % 3]
            if s == 397 and j == 2:
                kind = "weird"  # a type first seen after training
            rows.append({
                "user_id": f"u{s % 50}", "session_id": f"s{s}",
                "ts": T0 + dt.timedelta(hours=s, minutes=j), "event_type": kind,
                "age": float(rng.normal(40, 5)),
                "browser": "opera" if s == 398 else ["ff", "ch"][s % 2],
                "order_ref": f"r{s}-{j}",  # an id: ignored
                "plan": 7.0,  # constant
                "step": float(s),  # a time step: follows the clock
                "countdown": float(10_000 - 5 * s - j),  # a counter going down
            })
    path = tmp_path_factory.mktemp("learned") / "s.duckdb"
    with Store.open(path) as store:
        ingest_events(store, pd.DataFrame(rows))
    return path


def _column(out, name: str, session: str) -> float:  # type: ignore[no-untyped-def]
    row = list(out.meta["session_id"]).index(session)
    return float(out.matrix.values[row, out.matrix.names.index(name)])


def test_unseen_types_and_transitions_count_against_training(store_path: Path) -> None:
    with Store.open(store_path, read_only=True) as store:
        out = build_session_features(store.con, training=TrainingScope(until=CUT))
    assert "weird" not in out.spec.event_types  # learned from training events only
    assert _column(out, "unseen_event_types_log", "s397") == pytest.approx(np.log1p(1))
    # cart -> weird and weird -> view are both new: 2 of 4 transitions
    assert _column(out, "unseen_transitions_log", "s397") == pytest.approx(np.log1p(2))
    assert _column(out, "unseen_transition_share", "s397") == pytest.approx(0.5)
    assert _column(out, "unseen_event_types_log", "s396") == 0.0


def test_extras_are_typed_and_become_features(store_path: Path) -> None:
    with Store.open(store_path, read_only=True) as store:
        out = build_session_features(store.con, training=TrainingScope(until=CUT))
    kinds = {c.name: c.kind for c in out.spec.extras.columns}
    assert kinds == {"age": "numeric", "browser": "categorical", "plan": "numeric"}
    assert dict(out.spec.extras.ignored)["order_ref"].startswith("text with")
    ignored = dict(out.spec.extras.ignored)
    assert ignored["step"].startswith("follows the event time (rank correlation +1.00)")
    assert ignored["countdown"].startswith("follows the event time (rank correlation -1.00)")
    assert "extra_mean[age]" in out.matrix.names and "extra_max[age]" in out.matrix.names
    # a browser never seen in training: maximally rare and counted as unseen
    assert _column(out, "extra_unseen_log[browser]", "s398") == pytest.approx(np.log1p(5))
    assert _column(out, "extra_rarity[browser]", "s398") > _column(
        out, "extra_rarity[browser]", "s397")
    assert _column(out, "extra_mean[plan]", "s5") == 7.0


def test_allow_and_deny_lists_and_type_overrides(store_path: Path) -> None:
    selection = ExtraSelection(deny=("age",), types={"plan": "categorical"})
    with Store.open(store_path, read_only=True) as store:
        out = build_session_features(store.con, training=TrainingScope(until=CUT,
                                                                       extras=selection))
    kinds = {c.name: c.kind for c in out.spec.extras.columns}
    assert "age" not in kinds and kinds["plan"] == "categorical"
    kept = ExtraSelection(types={"step": "numeric"})  # typed by the mapping: kept as asked
    with Store.open(store_path, read_only=True) as store:
        out = build_session_features(store.con, training=TrainingScope(until=CUT, extras=kept))
    kinds = {c.name: c.kind for c in out.spec.extras.columns}
    assert kinds["step"] == "numeric" and "countdown" not in kinds


def test_a_saved_spec_rebuilds_the_same_columns_full_and_scoped(store_path: Path) -> None:
    with Store.open(store_path, read_only=True) as store:
        out = build_session_features(store.con, training=TrainingScope(until=CUT))
        spec = FeatureSpec.from_dict(out.spec.to_dict())
        assert spec == out.spec and spec.hash == out.spec.hash
        again = build_session_features(store.con, spec=spec)
        scoped = build_session_features(store.con, spec=spec, session_ids=["s397", "s398"])
    np.testing.assert_array_equal(again.matrix.values, out.matrix.values)
    rows = [list(out.meta["session_id"]).index(s) for s in scoped.meta["session_id"]]
    np.testing.assert_allclose(scoped.matrix.values, out.matrix.values[rows], rtol=1e-6)


def test_without_a_training_scope_nothing_changes(store_path: Path) -> None:
    with Store.open(store_path, read_only=True) as store:
        out = build_session_features(store.con)
    assert out.spec.novelty is None and out.spec.extras is None
    assert not any(n.startswith(("extra_", "unseen_")) for n in out.matrix.names)


def test_the_mapping_files_extra_types_reach_the_model(tmp_path: Path) -> None:
    import json

    from click.testing import CliRunner

    from cli.main import main
    from core.pipeline.registry import model_row

    rows = [{"customer": f"u{i % 20}", "time": (T0 + dt.timedelta(hours=i)).isoformat(),
             "event_type": "view", "tier": str(i % 3), "score_x": str(i * 0.5)}
            for i in range(200)]
    source = tmp_path / "events.csv"
    pd.DataFrame(rows).to_csv(source, index=False)
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps({"user_id": "customer", "ts": "time",
                                   "extra_types": {"tier": "categorical", "score_x": "ignore"}}))
    db = tmp_path / "m.duckdb"
    runner = CliRunner()
    ingested = runner.invoke(main, ["ingest", str(source), "--map-file", str(mapping),
                                    "--db", str(db)])
    assert ingested.exit_code == 0, ingested.output
    trained = runner.invoke(main, ["train", "--detector", "zscore", "--map-file", str(mapping),
                                   "--db", str(db), "--quiet"])
    assert trained.exit_code == 0, trained.output
    with Store.open(db, read_only=True) as store:
        spec = json.loads(model_row(store, trained.output.strip().splitlines()[-1])
                          ["feature_spec"])["features"]["extras"]
    assert [(c["name"], c["kind"]) for c in spec["columns"]] == [("tier", "categorical")]
    assert spec["ignored"] == [["score_x", "ignored by the mapping"]]
    told = runner.invoke(main, ["train", "--detector", "zscore", "--map-file", str(mapping),
                                "--db", str(db)])
    assert told.exit_code == 0, told.output
    # what the model left out is said (200 hours: the 70% window has no full week)
    assert "Note: extra column 'score_x' left out: ignored by the mapping." in told.output
    assert "Note: left out is_weekend: the training window is shorter" in told.output
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"user_id": "customer", "extra_types": {"tier": "float"}}))
    refused = runner.invoke(main, ["ingest", str(source), "--map-file", str(bad), "--db",
                                   str(db)])
    assert refused.exit_code != 0 and "extra_types" in refused.output


def test_training_sessions_count_what_no_other_training_session_holds(tmp_path: Path) -> None:
    rows = []
    for s in range(40):
        kinds = ["view", "cart", "buy"]
        if s == 5:
            kinds = ["view", "cart", "rare", "buy"]  # the one training session with "rare"
        if s in (7, 8):
            kinds = ["view", "twice", "buy"]  # two training sessions share "twice"
        if s == 35:
            kinds = ["view", "cart", "rare", "buy"]  # after the cut: "rare" was seen in training
        for j, kind in enumerate(kinds):
            rows.append({"user_id": f"u{s}", "session_id": f"s{s}",
                         "ts": T0 + dt.timedelta(hours=s, minutes=j), "event_type": kind})
    path = tmp_path / "s.duckdb"
    cut = T0 + dt.timedelta(hours=30)
    with Store.open(path) as store:
        ingest_events(store, pd.DataFrame(rows))
        out = build_session_features(store.con, training=TrainingScope(until=cut))
        scored = build_session_features(store.con, spec=out.spec)
        in_sample = build_session_features(
            store.con, training=TrainingScope(until=cut, novelty_holdout=False))
    assert "rare" in out.spec.event_types
    assert in_sample.spec.hash == out.spec.hash  # the same spec, counted in-sample
    assert _column(in_sample, "unseen_transitions_log", "s5") == 0.0
    # left out of training, s5 would meet "rare" and cart -> rare -> buy for the first time
    assert _column(out, "unseen_event_types_log", "s5") == pytest.approx(np.log1p(1))
    assert _column(out, "unseen_transitions_log", "s5") == pytest.approx(np.log1p(2))
    assert _column(out, "unseen_transition_share", "s5") == pytest.approx(2 / 3)
    for session in ("s7", "s8", "s1"):
        assert _column(out, "unseen_event_types_log", session) == 0.0
        assert _column(out, "unseen_transitions_log", session) == 0.0
    # after training, and when scoring with the saved spec, "rare" is a type training held
    assert _column(out, "unseen_event_types_log", "s35") == 0.0
    assert _column(scored, "unseen_event_types_log", "s5") == 0.0
    assert _column(scored, "unseen_transitions_log", "s5") == 0.0


def test_each_detector_says_whether_it_reads_held_out_novelty() -> None:
    from core.detectors import get_detector_class

    assert get_detector_class("autoencoder").novelty_held_out
    assert not get_detector_class("vae").novelty_held_out
