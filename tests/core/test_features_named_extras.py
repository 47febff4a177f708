"""Numbers whose names say what they are: identifiers (a customer number, a zip) are not
quantities, and epoch numbers in a column named like instants are instants."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from core.features import TrainingScope, build_session_features
from core.features.column_names import looks_like_identifier, looks_like_time, name_tokens
from core.features.extras import ExtraSelection
from core.ingest import ingest_events
from core.store import Store

T0 = dt.datetime(2026, 1, 1)
CUT = T0 + dt.timedelta(hours=200)


@pytest.mark.parametrize(("name", "expected"), [
    ("cc_num", True), ("customerID", True), ("zip", True), ("zip_code", True),
    ("order-no", True), ("phone number", True), ("ip_address", True), ("IPAddress", True),
    ("id_customer", True), ("store_uuid", True), ("num_items", False), ("amount", False),
    ("paid", False), ("valid", False), ("city_pop", False), ("age", False), ("", False)])
def test_names_like_identifiers(name: str, expected: bool) -> None:
    assert looks_like_identifier(name) is expected


@pytest.mark.parametrize(("name", "expected"), [
    ("signup_time", True), ("createdAt", True), ("birth_date", True), ("dob", True),
    ("updated_on", True), ("TransactionDT", True), ("duration", False), ("timeout", False),
    ("time_spent_s", False), ("attempts", False)])
def test_names_like_instants(name: str, expected: bool) -> None:
    assert looks_like_time(name) is expected


def test_name_tokens_split_every_case() -> None:
    assert name_tokens("customer_ID") == ("customer", "id")
    assert name_tokens("HTTPStatusCode") == ("http", "status", "code")
    assert name_tokens("merch lat2") == ("merch", "lat", "2")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """One session per account; customer numbers are handed out in order, so every account
    opened after training has a larger one."""
    rng = np.random.default_rng(0)
    rows = []
    for s in range(240):
        start = T0 + dt.timedelta(hours=s)
        rows += [{"user_id": f"u{s}", "session_id": f"s{s}",
                  "ts": start + dt.timedelta(minutes=j), "event_type": "buy",
                  "customer_number": 100_000 + s, "branch_no": int(rng.integers(1, 6)),
                  "basket": float(rng.uniform(1, 50)),
                  # epoch seconds named like an instant; a count in the same range is not one
                  "joined_at": int((start - dt.timedelta(days=3)).replace(
                      tzinfo=dt.UTC).timestamp()),
                  "bytes_sent": int(rng.integers(10**8, 2 * 10**9))} for j in range(2)]
    path = tmp_path_factory.mktemp("ids") / "s.duckdb"
    with Store.open(path) as store:
        ingest_events(store, pd.DataFrame(rows))
        default = build_session_features(store.con, training=TrainingScope(until=CUT))
        forced = build_session_features(store.con, training=TrainingScope(
            until=CUT, extras=ExtraSelection(types={"customer_number": "numeric"})))
    return default, forced


def test_many_valued_identifiers_are_ignored_with_the_reason(built) -> None:  # type: ignore[no-untyped-def]
    default, _ = built
    ignored = dict(default.spec.extras.ignored)
    assert "customer_number" in ignored
    assert "identifier" in ignored["customer_number"]
    assert not any("customer_number" in n for n in default.matrix.names)


def test_few_valued_identifiers_are_categories_and_quantities_stay_numeric(
        built) -> None:  # type: ignore[no-untyped-def]
    default, _ = built
    kinds = {c.name: c.kind for c in default.spec.extras.columns}
    assert kinds == {"branch_no": "categorical", "basket": "numeric", "joined_at": "datetime",
                     "bytes_sent": "numeric"}
    assert "extra_rarity[branch_no]" in default.matrix.names


def test_the_mapping_can_keep_an_identifier_as_a_number(built) -> None:  # type: ignore[no-untyped-def]
    _, forced = built
    kinds = {c.name: c.kind for c in forced.spec.extras.columns}
    assert kinds["customer_number"] == "numeric"
    assert "extra_mean[customer_number]" in forced.matrix.names


def test_epoch_numbers_named_like_instants_are_the_time_since_them(
        built) -> None:  # type: ignore[no-untyped-def]
    default, _ = built
    row = list(default.meta["session_id"]).index("s7")
    since = default.matrix.values[row, default.matrix.names.index("extra_since_log[joined_at]")]
    assert since == pytest.approx(np.log1p(3 * 86_400), rel=1e-6)


@pytest.mark.parametrize(("text", "expected"), [
    ("1767225600", 1_767_225_600_000_000), ("1767225600000", 1_767_225_600_000_000),
    ("2026-01-01T02:00:00+02:00", 1_767_225_600_000_000),
    ("-1767225600", None), ("20240101", None), ("nan", None), ("soon", None)])
def test_an_instant_is_iso_or_an_epoch_number_in_range(text: str, expected: int | None) -> None:
    import duckdb

    from core.features.extras import instant_us_sql

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    assert con.execute(f"SELECT {instant_us_sql('$v')}", {"v": text}).fetchone()[0] == expected


def test_training_notes_say_how_identifiers_were_read(built) -> None:  # type: ignore[no-untyped-def]
    from core.pipeline.training import _notes

    default, _ = built
    notes = _notes({"features": {"extras": default.spec.extras.to_dict()}}, [])
    assert any("'customer_number' left out: numbers named like an identifier" in n
               for n in notes)
    assert any("'branch_no' is named like an identifier" in n and "category" in n
               for n in notes)
    assert any("'joined_at' holds dates or times" in n for n in notes)
    assert not any("'basket'" in n or "'bytes_sent'" in n for n in notes)
