"""Mapping a source's column names onto the canonical schema."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import ConfigError, SchemaError
from core.schema import EVENT_COLUMN_NAMES, OPTIONAL_IN_SOURCE, REQUIRED_EVENT_COLUMNS

# Common spellings recognised without a --map. An explicit mapping always wins.
ALIASES: dict[str, tuple[str, ...]] = {
    "user_id": ("user", "userid", "customer_id", "customer", "account_id", "account",
                "nameorig", "cc_num", "card_number", "card_id"),
    "session_id": ("session", "sessionid", "visit_id", "blockid", "block_id"),
    "ts": ("timestamp", "time", "event_time", "event_timestamp", "datetime", "created_at",
           "tx_datetime", "trans_date_trans_time", "transaction_time", "transactiondt",
           "purchase_time"),
    "event_type": ("event", "type", "action", "event_name"),
    "event_id": ("id", "eventid", "transaction_id", "transactionid", "trans_num", "tx_id"),
    "amount": ("price", "value", "order_value", "amt", "tx_amount", "transaction_amount",
               "transactionamt", "purchase_value"),
    "device_id": ("device",),
    "ip": ("ip_address", "ipaddress"),
    "merchant_id": ("merchant", "merchantid", "terminal_id", "terminal", "shop_id", "shop",
                    "store_id", "seller_id", "seller", "vendor_id", "tx_terminal_id",
                    "namedest"),
}
"""Also the column names of the public fraud sets (the fraud-detection handbook's simulator,
card transactions, mobile money, e-commerce first purchases) and log sets (HDFS traces'
``BlockId``), so they ingest without a map: a card number is the user whose history counts,
a payee the merchant, a block the session."""


@dataclass(frozen=True)
class ColumnMapping:
    """canonical name -> source column name, as given by the user (``--map ts=purchase_time``)."""

    explicit: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.explicit) - set(EVENT_COLUMN_NAMES))
        if unknown:
            raise ConfigError(
                f"Mapping targets must be canonical columns, got {unknown}. "
                f"Valid targets: {', '.join(EVENT_COLUMN_NAMES)}."
            )

    @classmethod
    def parse(cls, pairs: Iterable[str] = (), map_file: str | Path | None = None) -> ColumnMapping:
        """From ``canonical=source`` strings and/or a JSON file ``{"canonical": "source"}``."""
        explicit: dict[str, str] = {}
        if map_file is not None:
            try:
                loaded = json.loads(Path(map_file).read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise ConfigError(
                    f"Mapping file {map_file} must be a readable JSON object, got an error: "
                    f"{exc}. Write it as {{\"user_id\": \"customer\", \"ts\": \"time\"}}."
                ) from exc
            if isinstance(loaded, dict):
                extra_types(loaded, map_file)  # checked here; used by `anomalyst train`
                loaded = {k: v for k, v in loaded.items() if k != EXTRA_TYPES_KEY}
            if not isinstance(loaded, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in loaded.items()
            ):
                raise ConfigError(
                    f"Mapping file {map_file} must map canonical names to source column names "
                    'as strings, e.g. {"user_id": "customer"}.'
                )
            explicit.update(loaded)
        for pair in pairs:
            target, sep, source = pair.partition("=")
            if not sep or not target.strip() or not source.strip():
                raise ConfigError(
                    f"--map must look like canonical=source (e.g. user_id=customer), got {pair!r}."
                )
            explicit[target.strip()] = source.strip()
        return cls(explicit)

    def source_of(self, canonical: str, source_columns: Sequence[str]) -> str | None:
        """The source column ``resolve`` would take for ``canonical`` on its own: the explicit
        mapping, else the canonical name or an alias (None: the file has none).

        >>> ColumnMapping().source_of("session_id", ["BlockId", "Features"])
        'BlockId'
        """
        if canonical in self.explicit:
            return self.explicit[canonical]
        by_lower = {c.lower(): c for c in source_columns}
        used = set(self.explicit.values())
        for candidate in (canonical, *ALIASES.get(canonical, ())):
            found = by_lower.get(candidate)
            if found is not None and found not in used:
                return found
        return None

    def resolve(self, source_columns: Sequence[str], file_label: str, *,
                optional: Iterable[str] = ()) -> dict[str, str]:
        """canonical -> source column for this file; raises when a required column is missing
        (``optional``: required columns this ingest can do without)."""
        by_lower = {c.lower(): c for c in source_columns}
        resolved: dict[str, str] = {}
        for canonical, source in self.explicit.items():
            if source not in source_columns:
                raise SchemaError(
                    f"{file_label}: the mapping {canonical}={source} names column {source!r}, "
                    f"which the file does not have. Its columns are: "
                    f"{', '.join(source_columns)}."
                )
            resolved[canonical] = source
        used = set(resolved.values())
        for canonical in EVENT_COLUMN_NAMES:
            if canonical in resolved:
                continue
            for candidate in (canonical, *ALIASES.get(canonical, ())):
                found = by_lower.get(candidate)
                if found is not None and found not in used:
                    resolved[canonical] = found
                    used.add(found)
                    break
        skip = {*OPTIONAL_IN_SOURCE, *optional}
        if "step" in by_lower:  # a simulation's clock: name its unit rather than guess
            skip.discard("ts")
        missing = [c for c in REQUIRED_EVENT_COLUMNS if c not in resolved and c not in skip]
        if missing:
            hint = (" If every row is an independent payment with no user column, pass "
                    "--unit event: each row is then its own user." if "user_id" in missing
                    else "")
            step = by_lower.get("step")
            if "ts" in missing and step is not None:
                hint += (f" If {step!r} counts a simulation's hours, pass --map ts={step} "
                         "--ts-unit h.")
            elif "ts" in missing:
                hint += (" A file with no time at all: by event (--unit event) the rows' "
                         "order stands for time; one row per session with its events in one "
                         "column: --sequence <column>.")
            raise SchemaError(
                f"{file_label}: required column(s) {', '.join(missing)} not found. The file has "
                f"columns: {', '.join(source_columns) or '(none)'}. Map them with "
                f"--map {missing[0]}=<your column> (repeatable) or --map-file mapping.json."
                + hint
            )
        return resolved


def suggest_mapping(source_columns: Sequence[str]) -> dict[str, str]:
    """canonical -> source column guessed by name and the common aliases (never raises).

    >>> suggest_mapping(["customer", "Timestamp", "action", "price"])["ts"]
    'Timestamp'
    """
    by_lower = {c.lower(): c for c in source_columns}
    found: dict[str, str] = {}
    used: set[str] = set()
    for canonical in EVENT_COLUMN_NAMES:
        for candidate in (canonical, *ALIASES.get(canonical, ())):
            column = by_lower.get(candidate)
            if column is not None and column not in used:
                found[canonical] = column
                used.add(column)
                break
    return found


EXTRA_TYPES_KEY = "extra_types"
EXTRA_TYPES = ("numeric", "categorical", "datetime", "ignore")


def extra_types(document: dict[str, object], source: str | Path) -> dict[str, str]:
    """The mapping file's optional ``"extra_types": {"column": "numeric" | "categorical" |
    "datetime" | "ignore"}``: how extra columns become features (core.features.extras), checked."""
    types = document.get(EXTRA_TYPES_KEY, {})
    if not isinstance(types, dict) or not all(
            isinstance(k, str) and v in EXTRA_TYPES for k, v in types.items()):
        raise ConfigError(
            f"Mapping file {source} must give \"{EXTRA_TYPES_KEY}\" as an object of column -> "
            f"one of {', '.join(EXTRA_TYPES)}, got {types!r}. Write it as "
            '{"extra_types": {"browser": "categorical"}}.'
        )
    return dict(types)


def read_extra_types(map_file: str | Path) -> dict[str, str]:
    """``extra_types`` of a mapping file (empty when it has none)."""
    try:
        loaded = json.loads(Path(map_file).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(
            f"Mapping file {map_file} must be a readable JSON object, got an error: {exc}."
        ) from exc
    if not isinstance(loaded, dict):
        raise ConfigError(f"Mapping file {map_file} must be a JSON object.")
    return extra_types(loaded, map_file)
