"""Messages name the real cause: the line limit, the encoding, a number out of range."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from cli.main import main
from core.errors import IngestError
from core.ingest import ingest_events
from core.store import Store

HEADER = "user_id,ts,event_type,text\n"


@pytest.mark.parametrize("skip", [False, True])
def test_a_ten_megabyte_field_names_the_line_limit(tmp_path: Path, skip: bool) -> None:
    path = tmp_path / "big.csv"
    path.write_text(HEADER + "u1,2026-01-01,view,ok\nu2,2026-01-01,view," + "x" * 10_000_000
                    + "\n")
    with Store.open(":memory:") as store, pytest.raises(IngestError) as caught:
        ingest_events(store, path, skip_bad_rows=skip)
    message = str(caught.value)
    assert "line 3 (a row) is 10,000,019 bytes long" in message
    assert "limit of 2,000,000 bytes per line" in message
    assert "--skip-bad-rows cannot skip it" in message
    assert "as many fields as the header" not in message


def test_a_million_column_header_names_the_line_limit(tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    path.write_text(",".join(f"c{i}" for i in range(1_000_000)) + "\n1\n")
    with Store.open(":memory:") as store, pytest.raises(IngestError,
                                                        match=r"line 1 \(the header\) is"):
        ingest_events(store, path)


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_is_named_and_readable_with_its_encoding(tmp_path: Path, codec: str) -> None:
    path = tmp_path / "u16.csv"
    path.write_bytes((HEADER + "u1,2026-01-01,view,hé\n").encode(codec))
    db = tmp_path / "s.duckdb"
    result = CliRunner().invoke(main, ["ingest", str(path), "--db", str(db)])
    assert result.exit_code == 2
    assert "is UTF-16 text" in result.output and "--encoding utf-16" in result.output
    assert "as many fields as the header" not in result.output
    if codec == "utf-16":  # with its byte-order mark DuckDB reads it as told
        again = CliRunner().invoke(main, ["ingest", str(path), "--db", str(db),
                                          "--encoding", "utf-16"])
        assert again.exit_code == 0, again.output


def refusal(path: Path, text: str) -> str:
    """The IngestError message for a CSV file holding ``text``."""
    path.write_text(text)
    with Store.open(":memory:") as store, pytest.raises(IngestError) as caught:
        ingest_events(store, path)
    return str(caught.value)


def test_a_huge_quantity_is_out_of_range_not_fractional(tmp_path: Path) -> None:
    message = refusal(tmp_path / "q.csv", "user_id,ts,event_type,quantity\n"
                      "u1,2026-01-01,view,1099511627776\nu2,2026-01-01,view,2.5\n")
    assert "quantity 1099511627776 is out of range" in message
    assert "quantity 2.5 is not a whole number" in message
    frame = pd.DataFrame({"user_id": ["u"], "ts": ["2026-01-01"], "event_type": ["view"],
                          "quantity": [2**40]})
    with Store.open(":memory:") as store, pytest.raises(IngestError, match="out of range"):
        ingest_events(store, frame)


def test_nan_in_a_csv_number_is_a_missing_value(tmp_path: Path) -> None:
    path = tmp_path / "n.csv"
    path.write_text("user_id,ts,event_type,amount,quantity\nu1,2026-01-01,view,NaN,nan\n"
                    "u2,2026-01-01,view, NAN ,3\n")
    with Store.open(":memory:") as store:
        assert ingest_events(store, path).n_added == 2
        rows = store.con.execute("SELECT amount, quantity FROM events ORDER BY user_id")
        assert rows.fetchall() == [(None, None), (None, 3)]


def test_an_epoch_no_unit_can_hold_is_out_of_range(tmp_path: Path) -> None:
    message = refusal(tmp_path / "e.csv", "user_id,ts,event_type\n"
                      "u1,1000000000000000000000000000000,view\nu2,soon,view\n")
    assert "ts 1000000000000000000000000000000 is out of range as an epoch time" in message
    assert "ts soon is not a timestamp" in message
