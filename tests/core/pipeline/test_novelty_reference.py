"""A detector trained on novelty counted in-sample reads its default threshold off the
count held out (core.pipeline.training._reference_window)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.detectors import get_detector_class
from core.features import TrainingScope
from core.ingest import ingest_events
from core.pipeline.inputs import build_input
from core.pipeline.training import _reference_window
from core.store import Store

T0 = dt.datetime(2026, 1, 1)
CUT = T0 + dt.timedelta(hours=30)


def _store(path: Path, *, singleton: bool) -> Path:
    rows = []
    for s in range(40):
        kinds = ["view", "cart", "rare", "buy"] if singleton and s == 5 else ["view", "cart", "buy"]
        for j, kind in enumerate(kinds):
            rows.append({"user_id": f"u{s}", "session_id": f"s{s}",
                         "ts": T0 + dt.timedelta(hours=s, minutes=j), "event_type": kind})
    with Store.open(path) as store:
        ingest_events(store, pd.DataFrame(rows))
    return path


def _unseen(data, meta: pd.DataFrame, session: str) -> float:  # type: ignore[no-untyped-def]
    row = list(meta["session_id"]).index(session)
    return float(data.values[row, list(data.names).index("unseen_transitions_log")])


@pytest.mark.parametrize("singleton", [True, False])
def test_the_vae_reads_its_reference_on_the_held_out_count(tmp_path: Path,
                                                           singleton: bool) -> None:
    path = _store(tmp_path / "s.duckdb", singleton=singleton)
    vae = get_detector_class("vae")
    scope = TrainingScope(until=CUT, novelty_holdout=vae.novelty_held_out)
    with Store.open(path, read_only=True) as store:
        built = build_input(store, "features", progress=False, training=scope)
        in_train = (built.meta["start_ts"] < CUT).to_numpy()
        window = _reference_window(store, built, scope, vae, in_train)
        meta = built.meta[in_train].reset_index(drop=True)
        assert _unseen(built.data, built.meta, "s5") == 0.0  # trained in-sample
        expected = np.log1p(2) if singleton else 0.0  # cart -> rare -> buy, held out
        assert _unseen(window, meta, "s5") == pytest.approx(expected)
        ae = get_detector_class("autoencoder")
        held = dataclasses.replace(scope, novelty_holdout=True)
        built_ae = build_input(store, "features", progress=False, training=held)
        same = _reference_window(store, built_ae, held, ae, in_train)
        assert np.array_equal(same.values, built_ae.data.take(np.flatnonzero(in_train)).values)
