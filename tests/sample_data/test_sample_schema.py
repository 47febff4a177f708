from __future__ import annotations

import pandas as pd
import pytest

from core.schema import EVENT_COLUMN_NAMES, EVENT_COLUMNS, LABEL_LEVELS
from sample_data import GeneratedData
from sample_data.frame import CATEGORICAL_COLUMNS, OUTPUT_COLUMNS
from sample_data.world import EVENT_TYPES

DTYPE_KIND = {"VARCHAR": "string", "TIMESTAMP": "datetime", "DOUBLE": "float", "INTEGER": "int"}


def test_columns_are_the_canonical_schema(small: GeneratedData) -> None:
    # The canonical columns in order, then merchant_id while core.schema does not name it.
    columns = tuple(small.events.columns)
    assert columns[: len(EVENT_COLUMN_NAMES)] == EVENT_COLUMN_NAMES
    assert columns == OUTPUT_COLUMNS
    assert set(columns) - set(EVENT_COLUMN_NAMES) <= {"merchant_id"}
    assert "merchant_id" in columns


@pytest.mark.parametrize("column", EVENT_COLUMNS, ids=lambda c: c.name)
def test_dtypes_match_the_schema(small: GeneratedData, column) -> None:  # noqa: ANN001
    series = small.events[column.name]
    kind = DTYPE_KIND[column.sql_type]
    if kind == "string" and column.name in CATEGORICAL_COLUMNS:
        assert isinstance(series.dtype, pd.CategoricalDtype)
        assert pd.api.types.is_string_dtype(series.dtype.categories.dtype)
    elif kind == "string":
        assert pd.api.types.is_string_dtype(series.dtype) and series.dtype != object
    elif kind == "datetime":
        assert series.dtype == "datetime64[us]"  # UTC, naive
    elif kind == "float":
        assert series.dtype == "float64"
    else:
        assert series.dtype == "Int32"


def test_required_and_id_columns_are_filled(small: GeneratedData) -> None:
    events = small.events
    for name in ("event_id", "user_id", "session_id", "ts", "event_type"):
        assert events[name].notna().all(), name
    assert set(events["event_type"]) <= set(EVENT_TYPES)


def test_every_event_type_occurs(rated: GeneratedData) -> None:
    assert set(rated.events["event_type"]) == set(EVENT_TYPES)


def test_event_ids_unique_except_exact_duplicates(small: GeneratedData) -> None:
    events = small.events
    repeated = events[events["event_id"].duplicated(keep=False)]
    assert len(repeated) > 0, "some rows should arrive twice"
    assert len(repeated.drop_duplicates()) == repeated["event_id"].nunique()


def test_rows_arrive_partly_out_of_time_order(small: GeneratedData) -> None:
    backwards = (small.events["ts"].diff().dt.total_seconds() < 0).mean()
    assert 0.001 < backwards < 0.05


def test_optional_fields_are_sometimes_missing(small: GeneratedData) -> None:
    events = small.events
    for name in ("device_id", "ip", "country", "user_agent"):
        share = events[name].isna().mean()
        assert 0.002 < share < 0.05, (name, share)
    views = events[events["event_type"] == "view"]
    assert views["item_id"].notna().all() and views["amount"].notna().all()
    assert events.loc[events["event_type"] == "login", "item_id"].isna().all()


def test_values_are_plausible(small: GeneratedData) -> None:
    events = small.events
    assert (events["amount"].dropna() >= 0).all()
    assert events["ts"].min() >= pd.Timestamp("2026-09-01")
    assert events["ts"].max() < pd.Timestamp("2026-09-08")
    reviews = events[events["event_type"] == "review"]
    assert reviews["quantity"].between(1, 5).all()  # star rating
    assert reviews["text"].str.len().gt(10).all()
    assert events["ip"].dropna().str.fullmatch(r"\d+\.\d+\.\d+\.\d+").all()


def test_labels_format(small: GeneratedData) -> None:
    labels = small.labels
    assert list(labels.columns) == ["level", "entity_id", "is_anomaly", "scenario"]
    assert labels["is_anomaly"].dtype == bool
    assert set(labels["level"]) == set(LABEL_LEVELS)
    assert (labels["is_anomaly"] == (labels["scenario"] != "normal")).all()
