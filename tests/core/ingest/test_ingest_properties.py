"""Property-based: whatever malformed input arrives, a rejected ingest changes nothing."""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import AnomalystError
from core.ingest import ingest_events
from core.store import Store

COLUMNS = ["user_id", "ts", "event_type", "amount", "quantity", "text", "session_id", "event_id"]

cell = st.one_of(
    st.none(),
    st.text(max_size=12),
    st.sampled_from(["2026-01-01T10:00:00", "1767261600", "1767261600000", "nope", "", " ",
                     "NaN", "inf", "-1", "1.5", "1e400", "2026-13-45", "0x10", "\x00", "é"]),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
)
rows = st.lists(st.fixed_dictionaries({c: cell for c in COLUMNS}), min_size=0, max_size=8)
columns = st.lists(st.sampled_from(COLUMNS), min_size=1, max_size=len(COLUMNS), unique=True)


def state(store: Store) -> tuple:
    con = store.con
    return (
        con.execute("SELECT count(*), coalesce(sum(hash(event_id || session_id)), 0) FROM events")
        .fetchall(),
        con.execute("SELECT count(*), coalesce(sum(n_events), 0) FROM sessions").fetchall(),
        con.execute("SELECT count(*) FROM ingests").fetchall(),
    )


def to_csv(records: list[dict], cols: list[str]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(cols)
    for record in records:
        writer.writerow(["" if record[c] is None else record[c] for c in cols])
    return buffer.getvalue().encode("utf-8", errors="surrogatepass")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=rows, cols=columns, as_frame=st.booleans())
def test_rejected_ingest_changes_nothing(records: list[dict], cols: list[str],
                                         as_frame: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp, Store.open(Path(tmp) / "p.duckdb") as store:
        seed = pd.DataFrame({"user_id": ["seed"], "ts": ["2026-01-01"], "event_type": ["view"]})
        ingest_events(store, seed)
        before = state(store)
        if as_frame:
            source: object = pd.DataFrame([{c: r[c] for c in cols} for r in records], columns=cols)
        else:
            path = Path(tmp) / "in.csv"
            try:
                path.write_bytes(to_csv(records, cols))
            except UnicodeEncodeError:
                return
            source = path
        try:
            report = ingest_events(store, source)  # type: ignore[arg-type]
        except AnomalystError:
            assert state(store) == before
            return
        # Accepted: exactly the reported rows arrived, and every stored row is complete.
        after = state(store)
        assert after[0][0][0] == before[0][0][0] + report.n_added
        incomplete = store.con.execute(
            "SELECT count(*) FROM events WHERE event_id IS NULL OR user_id IS NULL "
            "OR session_id IS NULL OR ts IS NULL OR event_type IS NULL"
        ).fetchall()[0][0]
        assert incomplete == 0
