"""Charts people can read, in the light and the dark theme (issue #24, item 6).

- ``.streamlit/config.toml`` states a light and a dark palette (no pinned ``base``: the app
  follows the browser), each with text at 4.5:1 or more on its backgrounds (WCAG 2 relative
  luminance);
- figures set no text colour over the chart background (the theme colours it, and
  ``dashboard.charts`` draws axis text in the theme's text colour); text they colour
  themselves (heatmap cells) reaches 4.5:1 on every cell colour;
- marks (bars, lines, markers and their outlines) reach 3:1 on both backgrounds.
"""

from __future__ import annotations

import inspect
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.colors as pc
import plotly.graph_objects as go
import pytest

from dashboard import (
    charts,
    figure_theme,
    figures,
    figures_entity,
    figures_explain,
    figures_user,
)
from dashboard.figure_theme import contrast

ROOT = Path(__file__).resolve().parents[2]
THEME = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text("utf-8"))["theme"]
SCHEMES = ("light", "dark")
TEXT_MIN, MARK_MIN = 4.5, 3.0


def backgrounds() -> list[str]:
    return [THEME[s][key] for s in SCHEMES
            for key in ("backgroundColor", "secondaryBackgroundColor")]


# -- the configured palettes -----------------------------------------------------------------

def test_the_theme_follows_the_browser_with_a_light_and_a_dark_palette() -> None:
    assert "base" not in THEME, "a pinned base stops the app following the browser's setting"
    for scheme in SCHEMES:
        assert {"backgroundColor", "secondaryBackgroundColor", "textColor",
                "primaryColor"} <= set(THEME[scheme]), scheme
    assert THEME["light"]["backgroundColor"] != THEME["dark"]["backgroundColor"]


@pytest.mark.parametrize("scheme", SCHEMES)
def test_text_reads_on_both_backgrounds_of_each_theme(scheme: str) -> None:
    palette = THEME[scheme]
    for background in ("backgroundColor", "secondaryBackgroundColor"):
        for text in ("textColor", "linkColor"):
            if text in palette:
                ratio = contrast(palette[text], palette[background])
                assert ratio >= TEXT_MIN, f"{scheme} {text} on {background}: {ratio:.2f}:1"
        ratio = contrast(palette["primaryColor"], palette[background])
        assert ratio >= MARK_MIN, f"{scheme} primaryColor on {background}: {ratio:.2f}:1"


def test_the_contrast_formula_is_wcag() -> None:
    assert contrast("#000000", "#FFFFFF") == pytest.approx(21.0)
    assert contrast("#777777", "#FFFFFF") == pytest.approx(4.48, abs=0.01)
    assert contrast("#808495", "#FFFFFF") < TEXT_MIN  # Streamlit's chart grey: why charts.CSS
    assert contrast("rgb(31, 36, 48)", "#1F2430") == pytest.approx(1.0)


def test_chart_text_takes_the_themes_text_colour() -> None:
    """Streamlit's plotly theme greys tick labels and axis titles (3.8:1 on white); the
    charts module restyles them, legends, titles, annotations and hover text in the page's
    text colour (``currentColor``), checked above against the backgrounds."""
    css = charts.CSS
    assert "currentColor !important" in css
    for selector in (".xtick text", ".ytick text", ".xtitle", ".ytitle", ".gtitle",
                     ".legendtext", ".annotation-text", ".hovertext text"):
        assert selector in css, selector


@pytest.mark.parametrize("colour", [figure_theme.NORMAL, figure_theme.ANOMALY,
                                    figure_theme.NEUTRAL, *figure_theme.PALETTE])
def test_series_colours_are_marks_that_read_on_both_themes(colour: str) -> None:
    for background in backgrounds():
        ratio = contrast(colour, background)
        assert ratio >= MARK_MIN, f"{colour} on {background}: {ratio:.2f}:1"


def test_streamlit_draws_categories_in_the_figure_palette_without_red() -> None:
    assert [c.upper() for c in THEME["chartCategoricalColors"]] == [
        c.upper() for c in figure_theme.PALETTE]
    assert figure_theme.ANOMALY not in figure_theme.PALETTE  # red is for anomalies


def test_text_on_picks_the_better_ink() -> None:
    for cell in ("#FFFFFF", "#6BAED6", "#A50F15", "#08306B", "#777777", "#E45756"):
        assert contrast(figure_theme.text_on(cell), cell) >= TEXT_MIN


# -- every figure ----------------------------------------------------------------------------

def _events(n: int = 6) -> pd.DataFrame:
    ts = pd.date_range("2026-01-01 10:00", periods=n, freq="2min")
    return pd.DataFrame({
        "position": range(n), "ts": ts, "session_id": ["s1"] * (n // 2) + ["s2"] * (n - n // 2),
        "event_type": ["login", "payment_method_add", "checkout"] * (n // 3) + ["x"] * (n % 3),
        "amount": [None, None, 20.0] * (n // 3) + [None] * (n % 3),
        "device_id": ["d1"] * n, "ip": ["1.1.1.1"] * n, "country": ["DE"] * n,
        "payment_id": [None] * n, "event_score": np.linspace(0.1, 0.9, n)})


def _samples() -> Iterator[tuple[str, Callable[[], go.Figure]]]:
    rng = np.random.default_rng(0)
    scores = rng.random(200)
    days = pd.date_range("2026-01-01", periods=5, freq="D")
    curve = np.linspace(0, 1, 20)
    events = _events()
    ts = events["ts"].to_numpy()
    yield "figures.score_histogram", lambda: figures.score_histogram(
        scores, anomalous=scores > 0.9, threshold=0.8, log_y=True)
    yield "figures.alerts_over_time", lambda: figures.alerts_over_time(
        pd.DataFrame({"day": days, "alerts": [1, 2, 3, 4, 5]}))
    yield "figures.pr_curve", lambda: figures.pr_curve(curve, 1 - curve, (0.5, 0.5))
    yield "figures.roc_curve", lambda: figures.roc_curve(curve, curve ** 0.5, (0.1, 0.3))
    yield "figures.confusion_matrix", lambda: figures.confusion_matrix(412, 603, 3, 19_622)
    yield "figures.scenario_recall", lambda: figures.scenario_recall(pd.DataFrame(
        {"scenario": ["card_testing", "account_takeover"], "recall": [0.5, 1.0], "n": [4, 2]}))
    # the User page: every risk from 0 to 100 (the scale's colours), flagged and not, each
    # decision and none, the focus banded, buckets beyond the drawn sessions
    risks = [0.0, 25.0, 50.0, 75.0, 100.0, None]
    points = pd.DataFrame({
        "session_id": [f"s{i}" for i in range(len(risks))],
        "start_ts": pd.date_range("2026-01-01 10:00", periods=len(risks), freq="h"),
        "end_ts": pd.date_range("2026-01-01 10:05", periods=len(risks), freq="h"),
        "risk": risks, "flagged": [False, False, True, False, True, False],
        "decision": [None, "not fraud", "fraud", "inconclusive", None, None]})
    buckets = pd.DataFrame({"start": days[:2], "max_risk": [10.0, 90.0], "n_sessions": [900, 800],
                            "n_flagged": [0, 3], "n_decided": [0, 1]})
    yield "figures_user.timeline", lambda: figures_user.timeline(
        events, points, focus="s2", window=(days[0], days[1]), buckets=buckets, bucket="day",
        event_size=pd.Series(np.linspace(0, 100, len(events))))
    yield "figures_user.risk_over_time", lambda: figures_user.risk_over_time(
        points, focus="s2", buckets=buckets, bucket="day")
    users = pd.DataFrame({"user_id": ["a", "b", "c", "d", "e"],
                          "max_risk": [90.0, 10.0, 50.0, None, 100.0],
                          "decision": [None, "fraud", "not fraud", "inconclusive", None],
                          "shared": [None, "device:d1", "ip:1.1.1.1", "device:d1", "ip:2.2.2.2"]})
    yield "figures_user.linked_graph", lambda: figures_user.linked_graph(users, user_id="a")
    yield "figures_user.entities_over_time", lambda: figures_user.entities_over_time(events)
    yield "figures_user.amounts_over_time", lambda: figures_user.amounts_over_time(
        pd.DataFrame({"ts": ts[:3], "currency": ["EUR", "USD", "EUR"],
                      "amount": [1.0, 2.0, 3.0]}))
    volume = pd.DataFrame({"day": days, "sessions": [3, 4, 5, 6, 7], "users": [1, 2, 2, 3, 3],
                           "new_users": [1, 0, 1, 0, 1]})
    risk = pd.DataFrame({"day": days, "n_scored": [3] * 5, "max_score": [0.5] * 5,
                         "mean_score": [0.2] * 5, "max_risk": [10.0, 20, 90, 40, 50]})
    yield "figures_entity.volume_over_time", lambda: figures_entity.volume_over_time(volume)
    yield "figures_entity.risk_over_time", lambda: figures_entity.risk_over_time(risk)
    names = ["payment_method_add events in the session", "n_events", "amount_sum"]
    shap = np.array([0.4, -0.2, 0.05])
    yield "figures_explain.shap_waterfall", lambda: figures_explain.shap_waterfall(
        names, shap, 0.1, 0.35, top_n=2)
    yield "figures_explain.shap_bars", lambda: figures_explain.shap_bars(
        pd.DataFrame({"feature": names, "shap": shap}))
    values = np.linspace(-1, 1, len(events))
    yield "figures_explain.event_strip", lambda: figures_explain.event_strip(events, values)
    yield "figures_explain.event_strip(diverging)", lambda: figures_explain.event_strip(
        events, values, diverging=True)
    yield "figures_explain.event_bars", lambda: figures_explain.event_bars(events, values)
    weights = rng.random((len(events) + 1, len(events) + 1))
    yield "figures_explain.attention_heatmap", lambda: figures_explain.attention_heatmap(
        weights, events)
    yield "figures_explain.member_bars", lambda: figures_explain.member_bars(pd.DataFrame(
        {"detector": ["zscore", "autoencoder"], "contribution": [0.2, 0.5],
         "member_id": ["m1", "m2"]}))


SAMPLES = dict(_samples())
MODULES = {"figures": figures, "figures_entity": figures_entity,
           "figures_explain": figures_explain, "figures_user": figures_user}


def _existing() -> list[str]:
    return [n for n in SAMPLES
            if hasattr(MODULES[n.split(".")[0]], n.split(".")[1].split("(")[0])]


def test_every_figure_function_is_sampled() -> None:
    for module_name, module in MODULES.items():
        for name, func in inspect.getmembers(module, inspect.isfunction):
            if func.__module__ != module.__name__ or name.startswith("_"):
                continue
            if "Figure" in str(inspect.signature(func).return_annotation):
                assert f"{module_name}.{name}" in SAMPLES, f"sample {module_name}.{name} here"


def _font_colours(node: object, path: str = "") -> Iterator[tuple[str, str]]:
    """(path, colour) of every explicit text colour: a ``color`` under a ``*font`` key."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "template":
                continue
            here = f"{path}.{key}" if path else key
            if key == "color" and "font" in path.rsplit(".", 1)[-1] and value is not None:
                for colour in ([value] if isinstance(value, str) else value):
                    yield here, colour
            else:
                yield from _font_colours(value, here)
    elif isinstance(node, list | tuple):
        for i, value in enumerate(node):
            yield from _font_colours(value, f"{path}[{i}]")


def _scale_colours(trace: dict) -> list[str]:
    scale = trace.get("colorscale")
    if scale is None:
        return []
    return pc.sample_colorscale(scale if not isinstance(scale, str) else scale,
                                list(np.linspace(0, 1, 41)))


@pytest.mark.parametrize("name", _existing())
def test_figure_text_reads_in_both_themes(name: str) -> None:
    spec = SAMPLES[name]().to_plotly_json()
    # layout text: no fixed colour reaches 4.5:1 on both a white and a near-black page, so
    # any set here fails; the theme colours it
    for path, colour in _font_colours(spec["layout"], "layout"):
        for background in backgrounds():
            ratio = contrast(colour, background)
            assert ratio >= TEXT_MIN, f"{name}: {path}={colour} on {background}: {ratio:.2f}:1"
    for i, trace in enumerate(spec["data"]):
        cells = _scale_colours(trace) if trace.get("type") == "heatmap" else []
        for path, colour in _font_colours(trace, f"data[{i}]"):
            for background in cells or backgrounds():
                ratio = contrast(colour, background)
                assert ratio >= TEXT_MIN, f"{name}: {path}={colour} on {background}: {ratio:.2f}:1"
    assert "paper_bgcolor" not in spec["layout"] and "plot_bgcolor" not in spec["layout"], (
        "the theme paints the chart background")


def _mark_colours(trace: dict) -> Iterator[tuple[str, str]]:
    outline = ((trace.get("marker") or {}).get("line") or {}).get("color")
    for part, colour in (("marker", (trace.get("marker") or {}).get("color")),
                         ("line", (trace.get("line") or {}).get("color")),
                         ("marker outline", outline)):
        colours = [colour] if isinstance(colour, str) else (
            list(colour) if isinstance(colour, list | tuple | np.ndarray) else [])
        for c in colours:
            if isinstance(c, str):
                yield part, c
    for part in ("increasing", "decreasing", "totals"):
        colour = ((trace.get(part) or {}).get("marker") or {}).get("color")
        if isinstance(colour, str):
            yield part, colour


@pytest.mark.parametrize("name", _existing())
def test_figure_marks_read_in_both_themes(name: str) -> None:
    spec = SAMPLES[name]().to_plotly_json()
    for trace in spec["data"]:
        if trace.get("type") == "heatmap":
            continue  # cells: their text is checked against them above
        for part, colour in _mark_colours(trace):
            for background in (THEME[s]["backgroundColor"] for s in SCHEMES):
                ratio = contrast(colour, background)
                assert ratio >= MARK_MIN, f"{name}: {part} {colour} on {background}: {ratio:.2f}:1"
    for shape in spec["layout"].get("shapes", []):
        colour = (shape.get("line") or {}).get("color")
        if colour:
            for background in (THEME[s]["backgroundColor"] for s in SCHEMES):
                assert contrast(colour, background) >= MARK_MIN, f"{name}: line {colour}"
