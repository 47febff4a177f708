"""Extra-column features in memory, equal to ``core.features.extras``' batch build.

Each event keeps its ``extra`` JSON text. The values a spec's columns need are read from it by
DuckDB itself, the way the batch build reads the store (``json_extract_string``, then
``TRY_CAST`` to DOUBLE or TIMESTAMPTZ), for many events in one query: the first time a row is
built after they arrive. DuckDB's casts accept forms no Python parser matches one for one
(``1_000``, ``2015-2-4``, ``epoch``), so they are not re-implemented here. A session's
features then follow the batch definitions: numeric mean, min and max of the finite values;
categorical largest rarity and count of unseen values; datetime the smallest time from the
instant to an event (docs/FEATURES.md, "Extra columns").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from core.features.extras import ExtraSpec, extra_path, instant_us_sql


class ExtraReader:
    """Reads a spec's extra columns from events' JSON and builds their session features."""

    def __init__(self, spec: ExtraSpec) -> None:
        self.columns = spec.columns
        self._rarity = {c.name: dict(zip(c.values, c.rarity, strict=True))
                        for c in self.columns if c.kind == "categorical"}
        self._params = {f"p{i}": extra_path(c.name) for i, c in enumerate(self.columns)}
        selects = []
        for i, c in enumerate(self.columns):
            text = f"json_extract_string(x, $p{i})"
            if c.kind == "numeric":
                number = f"TRY_CAST({text} AS DOUBLE)"
                selects.append(f"if(isfinite({number}), {number}, NULL)")
            elif c.kind == "datetime":
                selects.append(instant_us_sql(text))
            else:
                selects.append(text)
        self._sql = (f"SELECT {', '.join(selects)} FROM (SELECT unnest($xs) AS x, "
                     "generate_subscripts($xs, 1) AS k) ORDER BY k")
        self._con: Any = None

    def read(self, texts: Sequence[str | None]) -> list[tuple[Any, ...]]:
        """Per JSON text (None: no extra fields), the value of each column (None: absent)."""
        empty = (None,) * len(self.columns)
        present = [t for t in texts if t is not None]
        if not present:
            return [empty for _ in texts]
        if self._con is None:
            import duckdb

            self._con = duckdb.connect()
            self._con.execute("SET TimeZone = 'UTC'")  # a time without offset is UTC
        rows = iter(self._con.execute(self._sql, {**self._params, "xs": present}).fetchall())
        return [empty if t is None else next(rows) for t in texts]

    def features(self, events: Sequence[tuple[int, tuple[Any, ...]]]) -> dict[str, float]:
        """The session's extra features from (event time in epoch us, its values)."""
        out: dict[str, float] = {}
        for j, column in enumerate(self.columns):
            values = [(t, v[j]) for t, v in events if v[j] is not None]
            if column.kind == "numeric":
                numbers = [float(v) for _, v in values]
                if numbers:
                    stats = {"mean": math.fsum(numbers) / len(numbers), "min": min(numbers),
                             "max": max(numbers)}
                    out |= {name: stats[s] for s, name in zip(column.stats, column.names,
                                                               strict=True)}
            elif column.kind == "datetime":
                gaps = [(t - int(v)) / 1e6 for t, v in values]
                if gaps:
                    out[column.names[0]] = math.log1p(max(min(gaps), 0.0))
            else:
                known = self._rarity[column.name]
                rarity = [known.get(str(v), column.unseen_rarity) for _, v in values]
                unseen = sum(str(v) not in known for _, v in values)
                rarity_name, unseen_name = column.names
                out[rarity_name] = max(rarity) if rarity else 0.0
                out[unseen_name] = math.log1p(unseen)
        return out
