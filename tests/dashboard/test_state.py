"""dashboard.state names the session keys and the links between pages once: pages reach
``st.session_state``, ``st.query_params`` and ``st.switch_page`` only through it."""

from __future__ import annotations

from pathlib import Path

import pytest

from dashboard import state

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted((ROOT / "dashboard" / "views").glob("*.py"))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
@pytest.mark.parametrize("reach", ["session_state", "query_params", "switch_page", "page_link"])
def test_pages_reach_state_and_links_through_dashboard_state(page: Path, reach: str) -> None:
    assert f"st.{reach}" not in page.read_text(encoding="utf-8")


def test_user_links_carry_the_session_only_when_there_is_one() -> None:
    assert state.user_params("u1") == {"user": "u1"}
    assert state.user_params("u1", "s9") == {"user": "u1", "session": "s9"}


def test_every_shared_key_is_named_once() -> None:
    keys = [v for k, v in vars(state).items() if k.isupper() and isinstance(v, str)
            and not k.startswith("Q_")]
    assert len(keys) == len(set(keys))
