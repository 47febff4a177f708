"""Fuzz ingest with whole generated files (CSV, Parquet, damaged bytes): no crash, no partial
write. The slow run (1,000 files) gives the reliability figure:

    .venv/bin/python -m pytest -m slow -s tests/core/ingest/test_ingest_fuzz.py

which prints the tally (accepted / rejected with a clear error / crashes / partial writes);
``ANOMALYST_FUZZ_EXAMPLES`` changes its size. The default suite runs a small sample.
"""

from __future__ import annotations

import collections
import csv
import io
import os
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import AnomalystError
from core.ingest import ingest_events
from core.store import Store

N_EXAMPLES = int(os.environ.get("ANOMALYST_FUZZ_EXAMPLES", "1000"))
N_QUICK_EXAMPLES = 15
COLUMNS = ["user_id", "ts", "event_type", "amount", "quantity", "text", "session_id",
           "event_id", "device_id", "ip", "customer", "when"]
TALLY: collections.Counter[str] = collections.Counter()

cell = st.one_of(
    st.none(),
    st.text(max_size=20),
    st.sampled_from(["2026-01-01T10:00:00", "2026-01-01 10:00:00+02:00", "1767261600",
                     "1767261600000", "1767261600000000", "nope", "", " ", "NaN", "inf", "-1",
                     "1.5", "1e400", "2026-13-45", "0x10", "\x00", "é", "'; DROP TABLE events;--",
                     "=cmd|' /C calc'!A0", '"quoted, comma"', "line\nbreak",
                     "9999-12-31T23:59:59", "0001-01-01", "294247-01-01", "-1000-01-01",
                     "100000000000000000000", "1e20", "1099511627776"]),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
)
records = st.lists(st.fixed_dictionaries({c: cell for c in COLUMNS}), min_size=0, max_size=12)
columns = st.lists(st.sampled_from(COLUMNS), min_size=0, max_size=len(COLUMNS), unique=True)


def csv_bytes(rows: list[dict], cols: list[str], delimiter: str) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter)
    writer.writerow(cols)
    for row in rows:
        writer.writerow(["" if row[c] is None else row[c] for c in cols])
    return buffer.getvalue().encode("utf-8", errors="replace")


good_cell = {
    "user_id": st.sampled_from(["u1", "u2", "ü3", "u 4"]),
    "ts": st.sampled_from(["2026-01-01T10:00:00", "2026-01-01T10:05:00Z", "1767261600",
                           "1767261600000"]),
    "event_type": st.sampled_from(["view", "login", "purchase", "payment_failed"]),
}
plausible = st.lists(
    st.fixed_dictionaries({c: (st.one_of(good_cell[c], cell) if c in good_cell else cell)
                           for c in COLUMNS}),
    min_size=1, max_size=12,
)


@st.composite
def files(draw: st.DrawFn) -> tuple[str, bytes | pd.DataFrame]:
    """(suffix, content): a CSV, a Parquet frame, or bytes damaged in one of several ways.

    Half the files carry the required columns with mostly valid values, so that accepted and
    partly rejected (--skip-bad-rows) ingests are exercised, not only outright rejections."""
    if draw(st.booleans()):
        rows = draw(plausible)
        cols = ["user_id", "ts", "event_type", *draw(columns.map(
            lambda cs: [c for c in cs if c not in good_cell]))]
    else:
        rows, cols = draw(records), draw(columns)
    kind = draw(st.sampled_from(["csv", "csv", "parquet", "truncated", "noise", "bom",
                                 "semicolon", "latin1", "empty", "parquet_as_csv",
                                 "parquet_damaged", "utf16"]))
    if kind in ("parquet", "parquet_damaged"):
        frame = pd.DataFrame([{c: r[c] for c in cols} for r in rows], columns=cols)
        if cols and draw(st.booleans()):  # numbers where text is expected, and the reverse
            frame[cols[0]] = pd.to_numeric(frame[cols[0]], errors="coerce")
        if kind == "parquet":
            return ".parquet", frame
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False, compression="snappy")
        body = bytearray(buffer.getvalue())
        for position in draw(st.lists(st.integers(4, max(4, len(body) - 9)), min_size=1,
                                      max_size=8)):  # page data, headers or the footer
            body[position] ^= draw(st.integers(1, 255))
        return ".parquet", bytes(body)
    body = csv_bytes(rows, cols, ";" if kind == "semicolon" else ",")
    if kind == "truncated":
        body = body[: draw(st.integers(0, max(0, len(body))))]
    elif kind == "noise":
        body = draw(st.binary(max_size=400))
    elif kind == "bom":
        body = b"\xef\xbb\xbf" + body
    elif kind == "latin1":
        body = body.decode("utf-8").encode("latin-1", errors="replace") + b"\xe9\xff"
    elif kind == "utf16":
        body = body.decode("utf-8").encode("utf-16")
    elif kind == "empty":
        body = b""
    elif kind == "parquet_as_csv":
        return ".csv", b"PAR1" + draw(st.binary(max_size=200))
    return ".csv", body


def state(store: Store) -> tuple:
    con = store.con
    return (
        con.execute("SELECT count(*), coalesce(sum(hash(event_id || session_id)), 0) FROM events")
        .fetchall(),
        con.execute("SELECT count(*), coalesce(sum(n_events), 0) FROM sessions").fetchall(),
        con.execute("SELECT count(*) FROM ingests").fetchall(),
    )


_SETTINGS = {"deadline": None, "database": None,
             "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}


@pytest.mark.slow
@settings(max_examples=N_EXAMPLES, **_SETTINGS)
@given(file=files(), skip_bad=st.booleans())
def test_fuzzed_files_never_crash_or_half_land(file: tuple[str, object], skip_bad: bool) -> None:
    check_one_file(file, skip_bad)


@settings(max_examples=N_QUICK_EXAMPLES, **_SETTINGS)
@given(file=files(), skip_bad=st.booleans())
def test_a_few_fuzzed_files_never_crash_or_half_land(file: tuple[str, object],
                                                     skip_bad: bool) -> None:
    """The default suite's sample of the slow run above."""
    check_one_file(file, skip_bad)


def check_one_file(file: tuple[str, object], skip_bad: bool) -> None:
    suffix, content = file
    with tempfile.TemporaryDirectory() as tmp, Store.open(Path(tmp) / "f.duckdb") as store:
        ingest_events(store, pd.DataFrame({"user_id": ["seed"], "ts": ["2026-01-01"],
                                           "event_type": ["view"]}))
        before = state(store)
        path = Path(tmp) / f"in{suffix}"
        if isinstance(content, pd.DataFrame):
            content.to_parquet(path, index=False)
        else:
            path.write_bytes(content)  # type: ignore[arg-type]
        TALLY["files"] += 1
        try:
            report = ingest_events(store, path, skip_bad_rows=skip_bad)
        except AnomalystError as exc:
            assert str(exc).strip(), "an error must say what went wrong"
            if state(store) != before:
                TALLY["partial writes"] += 1
            assert state(store) == before
            TALLY["rejected with a message"] += 1
            return
        except Exception:
            TALLY["crashes"] += 1
            raise
        after = state(store)
        if after[0][0][0] != before[0][0][0] + report.n_added:
            TALLY["partial writes"] += 1
        assert after[0][0][0] == before[0][0][0] + report.n_added
        incomplete = store.con.execute(
            "SELECT count(*) FROM events WHERE event_id IS NULL OR user_id IS NULL "
            "OR session_id IS NULL OR ts IS NULL OR event_type IS NULL").fetchall()[0][0]
        assert incomplete == 0
        TALLY["accepted"] += 1


@pytest.mark.slow
def test_print_tally() -> None:
    """Runs after the fuzz test in file order; prints what the README's figures quote."""
    print(f"\ningest fuzz tally: {dict(TALLY)}")
    assert TALLY["crashes"] == 0 and TALLY["partial writes"] == 0
