"""The one way a table leaves the dashboard: role-checked, audited, formula-safe CSV.

The tables' own toolbar download is off (``client.disableDataExport`` in
.streamlit/config.toml), so a viewer cannot take a table home. ``export_button`` draws, for an
analyst or above, "Export CSV": the click checks the role on the server (the user file's role
now, see ``dashboard.auth``), writes an ``export`` row to the audit log (who, which table, how
many rows and columns) and only then builds the file, with every text cell neutralised against
formula injection (``core.csv_safe``, OWASP's rule); a second button downloads it.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.app import cases
from dashboard import auth, services


def prepare(frame: pd.DataFrame, what: str) -> bytes:
    """The CSV of ``frame`` for the signed-in user, audited as an export of ``what``.
    AccessDeniedError (before anything is built) unless their role allows exports."""
    principal = auth.require("export")
    detail = {"table": what, "rows": int(len(frame)), "columns": int(len(frame.columns)),
              "format": "csv"}
    services.with_store(lambda s: cases.record(s, principal.name, "export", entity=what,
                                               detail=detail), write=True, action="export")
    return cases.csv_text(frame).encode("utf-8")


def _fingerprint(frame: pd.DataFrame) -> tuple[int, tuple[str, ...], int]:
    hashed = pd.util.hash_pandas_object(frame.astype(str), index=False)
    return len(frame), tuple(map(str, frame.columns)), int(hashed.sum())


def export_button(frame: pd.DataFrame, what: str, key: str) -> None:
    """'Export CSV' under a table (analysts and above; nothing for viewers)."""
    if not auth.allowed("export"):
        return
    slot = f"{key}_export"
    ready = st.session_state.get(slot)
    stamp = _fingerprint(frame)
    c1, c2 = st.columns([1, 4])
    if c1.button("Export CSV", key=f"{key}_prepare", icon=":material/download:",
                 help="Recorded in the audit log with your name and the number of rows."):
        data = services.safely(lambda: prepare(frame, what), "export the table")
        if data is not None:
            ready = st.session_state[slot] = (stamp, data)
    if ready and ready[0] == stamp:
        c2.download_button("Download the CSV", ready[1], file_name=f"{what}.csv",
                           mime="text/csv", key=f"{key}_download", on_click="ignore",
                           icon=":material/file_download:")
