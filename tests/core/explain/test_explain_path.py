"""The explanation path does its work once: one session lookup and one ranking per call, and
the page's model table comes with the explanation (no second opening to rank again)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from core.explain import explain_with_models
from core.store import Store


def test_one_lookup_and_one_ranking_per_explanation(
        demo_store_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: Counter[str] = Counter()
    with Store.open(demo_store_copy) as store:
        repo = store.explanations
        for name in ("session", "session_models"):
            original = getattr(repo, name)

            def counted(*args, _name=name, _original=original, **kwargs):  # noqa: ANN002, ANN003, ANN202
                calls[_name] += 1
                return _original(*args, **kwargs)

            monkeypatch.setattr(repo, name, counted)
        listing = store.models.listing()
        model_id = str(listing.loc[listing["detector"] == "zscore", "model_id"].iloc[-1])
        scores = store.scores.of_model(model_id)
        session = str(scores.sort_values("score")["session_id"].iloc[-1])

        computed = explain_with_models(store, session, model_id=model_id, save=True)
        assert not computed.explanation.from_cache
        assert calls == {"session": 1, "session_models": 1}
        models = computed.models()
        assert list(models.columns) == ["model_id", "detector", "score", "percentile",
                                        "is_flagged"]
        mine = models.set_index("model_id").loc[model_id]
        assert mine["score"] == pytest.approx(computed.explanation.score)
        assert bool(mine["is_flagged"]) == computed.explanation.is_flagged

        cached = explain_with_models(store, session, model_id=model_id)
        assert cached.explanation.from_cache
        assert calls == {"session": 2, "session_models": 2}
        pd.testing.assert_frame_equal(cached.models(), models)
