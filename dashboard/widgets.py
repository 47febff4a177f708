"""Widgets more than one page draws the same way."""

from __future__ import annotations

from typing import Any, Literal

import streamlit as st

from dashboard import common, services, state
from dashboard import safe_text as safe


def open_case_button(label: str, *, key: str, user_id: str | None = None,
                     session_id: str | None = None, where: Any = st, disabled: bool = False,
                     icon: str | None = ":material/folder_open:",
                     then: Literal["show", "stay"] = "show") -> None:
    """An "open case" button for a user or a session, the same on every page.

    ``label`` is a literal or built by ``safe_text``. The button is enabled by role alone
    (``common.may``, the rule of every case action) and whatever else ``disabled`` says. A
    click opens the case (role-checked on the server), then switches to it on the Cases page
    (``then="show"``) or, on the Cases page itself, selects it (``"stay"``).
    """
    ok, why = common.may("case")
    if not where.button(safe.join([label]), key=key, icon=icon, disabled=disabled or not ok,
                        help=safe.join([why]) if why else None):
        return
    name = common.analyst_name()
    from dashboard import services_cases

    opened = services.safely(lambda: services_cases.open_case(
        name, user_id=user_id, session_id=session_id), "open a case")
    if opened is None:
        return
    if then == "show":
        state.to_case(opened.case_id)
    else:
        state.put(state.CASE, opened.case_id)
        st.toast(safe.fmt("Case {case} is open.", case=opened.case_id))
        st.rerun()  # the page read the cases before this write: read them again
