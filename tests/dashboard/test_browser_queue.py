"""A real Chromium on the work queue: its filters live in the URL (Back and Forward restore
them) and a bulk decision with a note takes the sessions out of the default view.

The server runs on a private copy of the demo store, because the bulk decision writes to it.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from _browser import chromium_page, dashboard_server, no_exception, screenshot, settle

from core.store import Store

pytestmark = pytest.mark.browser
SHOWN = re.compile(r"([\d,]+) of ([\d,]+) flagged sessions shown")


@pytest.fixture(scope="module")
def served(demo_store: Path, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[str, Path]]:
    """(URL, store) of a dashboard on a private copy of the demo store."""
    db = tmp_path_factory.mktemp("browser_queue") / "demo.duckdb"
    shutil.copy(demo_store, db)
    with dashboard_server({"ANOMALYST_DB": str(db)}) as url:
        yield url, db


@pytest.fixture()
def page(served: tuple[str, Path]):
    with chromium_page(1100) as opened:
        yield opened


def choose(page, label: str, option: str) -> None:
    """Pick ``option`` in the selectbox labelled ``label``."""
    page.get_by_label(label, exact=True).click()
    page.get_by_role("option", name=option, exact=True).click()
    settle(page, rerun=True)


def url_has(page, text: str) -> None:
    """Wait until the page's URL holds ``text`` (Streamlit changes it without a load)."""
    page.wait_for_function("t => location.href.includes(t)", arg=text, timeout=30_000)


def sort_shows(page, value: str) -> None:
    """Wait (bounded) until the Sort by box shows ``value``."""
    from playwright.sync_api import expect

    expect(page.get_by_label("Sort by", exact=True)).to_have_value(value, timeout=30_000)


def shown_count(page) -> int:
    text = page.get_by_text(SHOWN).inner_text()
    match = SHOWN.search(text)
    assert match is not None, text
    return int(match.group(1).replace(",", ""))


def test_filters_in_the_url_survive_back_and_forward(page, served: tuple[str, Path]) -> None:
    page.goto(f"{served[0]}/queue")
    settle(page)
    choose(page, "Sort by", "oldest")
    url_has(page, "q_sort=oldest")
    choose(page, "Sort by", "amount")
    url_has(page, "q_sort=amount")
    page.go_back()
    url_has(page, "q_sort=oldest")
    settle(page, rerun=True)
    sort_shows(page, "oldest")
    page.go_forward()
    url_has(page, "q_sort=amount")
    settle(page, rerun=True)
    sort_shows(page, "amount")
    # A reload (or a shared link) lands on the same view.
    page.reload()
    settle(page)
    sort_shows(page, "amount")
    assert "q_sort=amount" in page.url
    no_exception(page)
    screenshot(page, "queue_sorted_from_url.png")


def test_bulk_decide_with_a_note_empties_the_default_view(page, served: tuple[str, Path]
                                                         ) -> None:
    server, store_copy = served
    page.goto(f"{server}/queue?analyst=ann")
    settle(page)
    name = page.get_by_label("Analyst name", exact=True)
    if name.input_value() != "ann":  # sign-in off: the name box (URL-bound where supported)
        name.fill("ann")
        name.press("Enter")
        settle(page)  # no rerun when the box already held "ann" for the app
    before = shown_count(page)
    assert before >= 2
    grid = page.locator('[data-testid="stDataFrame"]').first
    grid.wait_for()
    box = grid.bounding_box()
    assert box is not None
    for row in (0, 1):  # the row markers of the first two rows
        page.mouse.click(box["x"] + 18, box["y"] + 35 + 35 * row + 17)
        settle(page, rerun=True)
    page.get_by_text("Selected: 2 sessions").wait_for(timeout=30_000)
    note = page.get_by_label("Note (required: why this decision)", exact=True)
    note.fill("QA accounts, confirmed with the card team")
    note.press("Enter")
    settle(page, rerun=True)
    decide = page.get_by_role("button", name="Decide 2 sessions")
    assert decide.is_disabled()  # the confirmation is still missing
    page.get_by_text("I reviewed these 2 sessions").click()
    settle(page, rerun=True)
    page.wait_for_function("b => !b.disabled", arg=decide.element_handle(), timeout=30_000)
    screenshot(page, "queue_bulk_decide.png")
    decide.click()
    page.get_by_text(re.compile("Decided 2 sessions")).wait_for(timeout=60_000)
    settle(page)
    no_exception(page)
    assert shown_count(page) == before - 2
    screenshot(page, "queue_after_bulk_decide.png")
    with Store.open(store_copy, read_only=True) as store:
        assert len(store.labels.session_labels(["analyst"])) == 2
