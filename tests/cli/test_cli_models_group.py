"""`anomalyst models list|show|compare|retire` through click's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from cli.main import main
from core.app import policy as app_policy
from core.app.data import open_store


def invoke(db: Path, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(main, ["models", *args, "--db", str(db)],
                                env={"ANOMALYST_ANALYST": "ana"}, catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


def test_list_and_show(demo_store: Path) -> None:
    listed = json.loads(invoke(demo_store, "list", "--json"))
    assert {r["detector"] for r in listed} == {"zscore", "autoencoder", "sequence_autoencoder"}
    assert sum(r["in_force"] for r in listed) == 1
    text = invoke(demo_store, "list")
    assert "in force (v0)" in text and all(r["model_id"] in text for r in listed)
    model_id = next(r["model_id"] for r in listed if r["detector"] == "autoencoder")
    card = json.loads(invoke(demo_store, "show", model_id, "--json"))
    assert card["model_id"] == model_id and card["curves"]
    assert card["evaluation"]["roc"] and "average_precision" in card["evaluation"]
    shown = invoke(demo_store, "show", model_id)
    assert "train: " in shown and "validation: " in shown and "ROC-AUC" in shown
    assert "registered models" in invoke(demo_store, "show", "nope", code=2)


def test_compare(demo_store: Path) -> None:
    listed = json.loads(invoke(demo_store, "list", "--json"))
    a, b = listed[0]["model_id"], listed[1]["model_id"]
    text = invoke(demo_store, "compare", a, b)
    assert a in text and b in text and "average_precision" in text
    data = json.loads(invoke(demo_store, "compare", a, b, "--json"))
    assert set(data) == {a, b} and data[a]["detector"] == listed[0]["detector"]


def test_retire_hides_and_undo_brings_back(demo_store_copy: Path) -> None:
    db = demo_store_copy
    with open_store(db, read_only=True) as store:
        in_force = app_policy.in_force(store).model_id
        other = next(m for m in store.models.ids() if m != in_force)
    refused = invoke(db, "retire", in_force, code=2)
    assert "alert policy in force" in refused
    assert "Retired" in invoke(db, "retire", other)
    assert other not in invoke(db, "list")
    listed = json.loads(invoke(db, "list", "--all", "--json"))
    row = next(r for r in listed if r["model_id"] == other)
    assert row["retired"] and row["retired_by"] == "ana"
    assert "back" in invoke(db, "retire", other, "--undo")
    assert other in invoke(db, "list")


def test_the_group_is_registered() -> None:
    out = CliRunner().invoke(main, ["models", "--help"]).output
    assert all(cmd in out for cmd in ("list", "show", "compare", "retire"))
    assert "models" in CliRunner().invoke(main, ["--help"]).output


def test_evaluation_columns_line_up_with_long_model_ids() -> None:
    from cli.models import format_evaluation

    row = {"n_sessions": 5975, "n_anomalous": 196, "roc_auc": 0.931, "average_precision": 0.855,
           "best_f1": 0.914, "recall_at_fpr": 0.842}
    text = format_evaluation([{**row, "model_id": "sequence_autoencoder-20261207-232310-159f"},
                              {**row, "model_id": "vae-20261207-232231-8dab"}])
    header, first, second = text.splitlines()[:3]
    assert header.index("ROC-AUC") + len("ROC-AUC") == first.index("0.931") + 5
    assert first.index("0.931") == second.index("0.931")
