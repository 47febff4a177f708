"""The plausible-time window: event timestamps outside it are bad rows, not data.

An event dated 9999, 0001 or an epoch of 1e20 (read as year 5138) is a broken feed, not
behaviour; stored, it moves every time span (the default train end, the Overview's axis)
to nonsense. Ingest therefore rejects timestamps outside ``[min_ts, max_ts)``.

Default: 1970-01-01 to 2100-01-01, a fixed, documented window rather than one tied to the
clock, so the same file is accepted on every machine and synthetic data dated ahead stays
usable. ``--min-ts``/``--max-ts`` (or ``$ANOMALYST_MIN_TS``/``$ANOMALYST_MAX_TS``) change it;
``now`` means the current time plus one day (clock skew), for feeds that must not be ahead.

    >>> TimeWindow.parse("2020-01-01", "2021-06-30").max_ts.isoformat()
    '2021-06-30T00:00:00'
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass

from core.errors import ConfigError

DEFAULT_MIN_TS = dt.datetime(1970, 1, 1)
DEFAULT_MAX_TS = dt.datetime(2100, 1, 1)
MIN_TS_ENV, MAX_TS_ENV = "ANOMALYST_MIN_TS", "ANOMALYST_MAX_TS"
_NOW_SLACK = dt.timedelta(days=1)


@dataclass(frozen=True)
class TimeWindow:
    """Accepted event times: ``min_ts <= ts < max_ts`` (naive UTC)."""

    min_ts: dt.datetime = DEFAULT_MIN_TS
    max_ts: dt.datetime = DEFAULT_MAX_TS

    @classmethod
    def parse(cls, min_ts: str | None = None, max_ts: str | None = None) -> TimeWindow:
        """From option values, else the environment, else the defaults."""
        low = _parse(min_ts or os.environ.get(MIN_TS_ENV), "min-ts", DEFAULT_MIN_TS)
        high = _parse(max_ts or os.environ.get(MAX_TS_ENV), "max-ts", DEFAULT_MAX_TS)
        if low >= high:
            raise ConfigError(
                f"--min-ts must be before --max-ts, got {low.isoformat()} and "
                f"{high.isoformat()}. Widen the window."
            )
        return cls(low, high)

    def describe(self) -> str:
        return f"{_short(self.min_ts)} .. {_short(self.max_ts)}"


def _parse(text: str | None, name: str, default: dt.datetime) -> dt.datetime:
    if text is None or not text.strip():
        return default
    if text.strip().lower() == "now":
        return dt.datetime.now(dt.UTC).replace(tzinfo=None) + _NOW_SLACK
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise ConfigError(
            f"--{name} must be an ISO date or time (or 'now'), got {text!r}. "
            "Use e.g. 2020-01-01."
        ) from exc
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def _short(value: dt.datetime) -> str:
    return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
