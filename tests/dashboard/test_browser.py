"""The final proof: a real Chromium opens every page of a running dashboard.

Run by the README's test command (``-m browser`` is included there); needs Debian's
``chromium`` (scripts/test.sh installs it when missing). Screenshots land in
``artifacts/screenshots/``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from _browser import chromium_page, dashboard_server, no_exception, screenshot, settle

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(demo_store: Path) -> Iterator[str]:
    with dashboard_server({"ANOMALYST_DB": str(demo_store)}) as url:
        yield url


@pytest.fixture(scope="module")
def page(server: str):
    with chromium_page(1000) as opened:
        yield opened


@pytest.mark.parametrize("name", ["overview", "thresholds", "queue", "user", "live"])
def test_every_page_renders(page, server: str, name: str) -> None:
    page.goto(f"{server}/{'' if name == 'overview' else name}")
    settle(page)
    no_exception(page)
    assert page.get_by_text("Page not found").count() == 0
    screenshot(page, f"{name}.png")


def test_slider_moves_and_metrics_update(page, server: str) -> None:
    page.goto(f"{server}/thresholds")
    settle(page)
    before = page.locator('[data-testid="stMetricValue"]').all_inner_texts()
    before_value = page.locator('[data-testid="stSliderThumbValue"]').first.inner_text()
    page.locator('[data-testid="stSlider"] input[type="range"]').first.focus()
    for _ in range(40):
        page.keyboard.press("ArrowLeft")
    settle(page, rerun=True)
    assert page.locator('[data-testid="stSliderThumbValue"]').first.inner_text() != before_value
    # The slider sends its value after a debounce, so on a slow box the rerun may start after
    # the first settle: wait (bounded) for the metrics to follow the thumb.
    page.wait_for_function(
        """before => JSON.stringify(Array.from(
               document.querySelectorAll('[data-testid="stMetricValue"]'),
               e => e.innerText)) !== JSON.stringify(before)""",
        arg=before, timeout=30_000, polling=100)
    settle(page)
    no_exception(page)
    after = page.locator('[data-testid="stMetricValue"]').all_inner_texts()
    assert after != before
    screenshot(page, "thresholds_moved.png")


def test_the_models_page_draws_curves_and_compares(page, server: str) -> None:
    page.goto(f"{server}/models")
    settle(page)
    no_exception(page)
    charts = page.locator('[data-testid="stPlotlyChart"]')
    # the picked model's loss curves: plotly drew at least one line trace
    curves = charts.filter(has_text="Training curves").first
    curves.wait_for(timeout=30_000)
    curves.locator(".scatterlayer .trace").first.wait_for(state="attached", timeout=30_000)
    charts.filter(has_text="ROC on its own window").first.wait_for(timeout=30_000)
    # the comparison (second tab) draws both models' ROC curves on one chart
    page.get_by_role("tab", name="Compare two").click()
    panel = page.locator('[role="tabpanel"]:visible')
    compare = panel.locator('[data-testid="stPlotlyChart"]').filter(
        has_text="ROC on its own window").first
    compare.wait_for(timeout=30_000)
    compare.locator(".scatterlayer .trace").nth(1).wait_for(state="attached", timeout=30_000)
    no_exception(page)
    screenshot(page, "models.png")


def test_queue_row_opens_the_user(page, server: str) -> None:
    page.goto(f"{server}/queue")
    settle(page)
    grid = page.locator('[data-testid="stDataFrame"]').first
    grid.wait_for()
    box = grid.bounding_box()
    assert box is not None
    # The first column of a selectable grid is the row marker; click the first data row's.
    page.mouse.click(box["x"] + 18, box["y"] + 35 + 17)
    button = page.get_by_role("button", name="Open user")
    page.wait_for_function("b => !b.disabled", arg=button.element_handle(), timeout=30_000)
    button.click()
    page.wait_for_url("**/user?*", timeout=30_000)
    settle(page, rerun=True)
    no_exception(page)
    assert "user=" in page.url
    screenshot(page, "user_from_queue.png")
