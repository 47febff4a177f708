"""The Models page's figures: pure, drawn with data and without."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from core.app.model_catalog import loss_curves
from dashboard import figures_models as figs


def _curves() -> pd.DataFrame:
    return loss_curves({"train_loss": [3.0, 2.0, 1.5], "val_loss": [3.2, 2.4, 2.0],
                        "steps": [10, 20, 30],
                        "components": {"recon": [2.0, 1.5, 1.2], "kl": [1.0, 0.5, 0.3]}})


def test_loss_curves_draw_each_series_and_their_table() -> None:
    fig = figs.loss_curves(_curves())
    assert isinstance(fig, go.Figure)
    assert [t.name for t in fig.data] == ["train", "validation", "recon (train)", "kl (train)"]
    assert fig.data[1].line.dash == "dot"
    colour = {t.name: t.line.color for t in fig.data}
    assert colour["train"] == colour["validation"]  # one quantity, two splits
    assert len({colour["train"], colour["recon (train)"], colour["kl (train)"]}) == 3
    table = figs.loss_table(_curves())
    assert list(table["step"]) == [10, 20, 30] and "kl (train)" in table.columns


def test_empty_inputs_draw_a_note_not_an_error() -> None:
    assert figs.loss_curves(pd.DataFrame(columns=["step", "series", "value"])).layout.annotations
    empty = {"m": pd.DataFrame(columns=["fpr", "tpr"])}
    assert figs.roc(empty).layout.annotations
    assert figs.pr({"m": pd.DataFrame(columns=["recall", "precision"])}).layout.annotations
    assert figs.calibration({"m": pd.DataFrame(columns=["mean_risk", "observed",
                                                        "count"])}).layout.annotations
    assert list(figs.curve_table(empty).columns) == ["model"]


def test_two_models_share_a_roc_pr_and_calibration_chart() -> None:
    grid = np.linspace(0, 1, 11)
    frames = {"a<b>": pd.DataFrame({"fpr": grid, "tpr": grid ** 0.5}),
              "b": pd.DataFrame({"fpr": grid, "tpr": grid ** 0.3})}
    fig = figs.roc(frames)
    assert [t.name for t in fig.data] == ["a&lt;b&gt;", "b", "chance"]
    pr = figs.pr({"a": pd.DataFrame({"recall": grid, "precision": 1 - grid / 2})})
    assert len(pr.data) == 1
    cal = figs.calibration({"a": pd.DataFrame({"mean_risk": [0.1, 0.5], "observed": [0.05, 0.6],
                                               "count": [90, 10]})})
    assert [t.name for t in cal.data] == ["a", "perfectly calibrated"]
    table = figs.curve_table(frames)
    assert list(table.columns) == ["model", "fpr", "tpr"] and len(table) == 22


def test_figures_set_no_text_colour_and_use_the_theme_palette() -> None:
    from dashboard.figure_theme import NEUTRAL, PALETTE

    grid = np.linspace(0, 1, 5)
    built = [figs.loss_curves(_curves()),
             figs.roc({"a": pd.DataFrame({"fpr": grid, "tpr": grid})}),
             figs.pr({"a": pd.DataFrame({"recall": grid, "precision": grid})}),
             figs.calibration({"a": pd.DataFrame({"mean_risk": grid, "observed": grid,
                                                  "count": [1] * 5})})]
    for fig in built:
        layout = {k: v for k, v in fig.to_plotly_json()["layout"].items() if k != "template"}
        assert "'font': {'color'" not in str(layout)
        for trace in fig.data:
            assert trace.line.color in (*PALETTE, NEUTRAL)


def test_a_component_keeps_its_colour_on_both_splits() -> None:
    curves = loss_curves({"train_loss": [3.0, 2.0], "val_loss": [3.5, 2.5], "steps": [10, 20],
                          "components": {"recon": [2.0, 1.5], "kl": [1.0, 0.5]},
                          "val_components": {"recon": [2.2, 1.8], "kl": [1.3, 0.7]}})
    lines = {t.name: t.line for t in figs.loss_curves(curves).data}
    assert lines["kl (train)"].color == lines["kl (validation)"].color
    assert lines["kl (validation)"].dash == "dot" and lines["kl (train)"].dash == "solid"
    assert lines["kl (train)"].color != lines["recon (train)"].color != lines["train"].color
