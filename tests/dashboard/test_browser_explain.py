"""A real Chromium opens the Explain page (feature and sequence models) of a running dashboard.

Runs on a copy of the demo store: the page stores the explanations it computes. Screenshots
land in ``artifacts/screenshots/explain.png`` and ``explain_sequence.png``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from _browser import SHOTS, chromium_page, dashboard_server, no_exception, settle

from core.store import Store

pytestmark = pytest.mark.browser

CHART_INSIDE_EXPANDER = """() => {
  const box = [...document.querySelectorAll('[data-testid="stExpander"]')]
    .find(e => e.innerText.includes("Advanced: each model's own view"));
  const svg = box && box.querySelector('[data-testid="stPlotlyChart"] .main-svg');
  if (!svg) return false;
  const outer = box.getBoundingClientRect(), chart = svg.getBoundingClientRect();
  return chart.height > 0 && chart.bottom <= outer.bottom + 1;
}"""


@pytest.fixture(scope="module")
def store_copy(demo_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("explain-browser") / "demo.duckdb"
    shutil.copy(demo_store, target)
    return target


@pytest.fixture(scope="module")
def server(store_copy: Path) -> Iterator[str]:
    with dashboard_server({"ANOMALYST_DB": str(store_copy)}) as url:
        yield url


@pytest.fixture(scope="module")
def page(server: str):
    with chromium_page(2600) as opened:
        yield opened


@pytest.fixture(scope="module")
def target(store_copy: Path) -> dict[str, str]:
    with Store.open(store_copy, read_only=True) as store:
        frame = store.models.listing()
        models = dict(zip(frame["detector"], frame["model_id"], strict=True))
        scores = store.scores.of_model(models["autoencoder"])
    return {**models, "session": str(scores.sort_values("score")["session_id"].iloc[-1])}


@pytest.mark.parametrize(("detector", "shot", "expected"), [
    ("autoencoder", "explain.png", "How much each input pushed the score"),
    ("sequence_autoencoder", "explain_sequence.png", "coloured by how much each one matters"),
])
def test_explain_page_renders(page, server: str, target: dict[str, str], detector: str,
                              shot: str, expected: str) -> None:
    page.goto(f"{server}/explain?session={target['session']}&model={target[detector]}")
    settle(page)
    no_exception(page)
    assert page.get_by_text("Page not found").count() == 0
    page.get_by_text("Why", exact=True).wait_for(timeout=30_000)
    # the first screen: the combined reasons, in words, with their share of the risk
    page.get_by_text("% of the risk", exact=False).first.wait_for(timeout=30_000)
    assert page.get_by_text("typical session", exact=False).count() >= 1
    assert page.get_by_text("count_log[", exact=False).count() == 0
    page.get_by_text("Advanced: each model's own view", exact=False).first.click()
    page.get_by_text(expected, exact=False).first.wait_for(timeout=30_000)
    # the model's own chart (SHAP waterfall or coloured events) drawn by plotly, not the
    # grey placeholder Streamlit shows while the chart library loads
    advanced = page.locator('[data-testid="stExpander"]').filter(
        has_text="Advanced: each model's own view").first
    advanced.locator('[data-testid="stPlotlyChart"] .main-svg').first.wait_for(
        state="visible", timeout=60_000)
    # and the expander opened far enough to show it (it grows in an animation; an earlier
    # screenshot caught it half open, the chart clipped)
    page.wait_for_function(CHART_INSIDE_EXPANDER, timeout=60_000, polling=100)
    page.screenshot(path=str(SHOTS / shot), full_page=True)
