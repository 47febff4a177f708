"""The partitioned plan on Ray Data (``anomalyst score --engine ray``).

1. Read the Parquet events (local paths or object-store URLs) and tag each row with its
   user's partition.
2. ``groupby(_part).map_groups``: each partition's rows become canonical events (sessions and
   ids derived, rows validated) in a throw-away in-memory store.
3. Joins find the context each partition needs (``core.scale.partition``'s rule), and the
   rows are routed: to their own partition, and as context where needed.
4. ``groupby(_target).map_groups``: each partition builds its features and scores its own
   sessions; the scores are written as Parquet.

Ray is imported here only; the extra ``anomalyst[scale]`` installs it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from core.errors import ConfigError
from core.scale.bundle import ModelBundle
from core.scale.partition import (
    FIRST,
    OWN,
    PART,
    TARGET,
    canonical_partition,
    canonical_schema,
    context_rule,
    empty_scores,
    score_partition,
    user_column,
    with_partition,
)

log = logging.getLogger(__name__)


def require_ray() -> Any:
    """The ray module; ConfigError saying how to install it when it is missing."""
    try:
        import ray
    except ImportError as exc:
        raise ConfigError(
            "engine 'ray' needs Ray, which is not installed. Install the extra with "
            "`pip install 'anomalyst[scale]'` (or use --engine local).") from exc
    return ray


def start_ray(address: str | None, num_cpus: int | None = None) -> float:
    """Connect to the cluster at ``address`` ("auto": the running one) or start a local one;
    the seconds it took."""
    ray = require_ray()
    started = time.perf_counter()
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                  "logging_level": logging.WARNING}
        if address:
            kwargs["address"] = address
        elif num_cpus:
            kwargs["num_cpus"] = num_cpus
        ray.init(**kwargs)
    import ray.data

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    # Ray's default (200 hash partitions per shuffle, each behind an aggregator) costs
    # minutes of overhead on a small cluster; one partition per CPU keeps every CPU busy.
    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    context.default_hash_shuffle_parallelism = cpus
    context.max_hash_shuffle_aggregators = cpus
    return time.perf_counter() - started


@dataclass(frozen=True)
class RayRun:
    """What a Ray scoring run did."""

    n_sessions: int
    n_partitions: int
    n_context_rows: int
    seconds: float
    stages: dict[str, float] = field(default_factory=dict)
    """Seconds of each stage: canonical rows, routing (context), scoring, writing."""
    rows_per_partition: dict[int, tuple[int, int]] = field(default_factory=dict)
    """partition -> (own rows, context rows); filled when asked for (``measure``)."""



def score_with_ray(paths: Sequence[str], bundle: ModelBundle, out_dir: str, *,
                   n_partitions: int, mapping: Any = None,
                   session_gap_minutes: float | None = None, unit: str = "session",
                   measure: bool = False) -> RayRun:
    """Score the events at ``paths`` with ``bundle`` on the connected Ray cluster and write
    the scores (``SCORE_COLUMNS``) as Parquet files under ``out_dir``. ``measure`` also
    counts each partition's own and context rows (one more pass: for benchmarks)."""
    require_ray()
    import pyarrow as pa
    import ray.data

    if n_partitions < 1:
        raise ConfigError(f"partitions must be at least 1, got {n_partitions}.")
    started = time.perf_counter()
    spec = bundle.load().spec
    rule = context_rule(spec)
    raw = ray.data.read_parquet(list(paths))
    column = user_column(raw.schema().names, mapping)
    schema = canonical_schema()

    def tag(batch: pd.DataFrame) -> pd.DataFrame:
        return with_partition(batch, n_partitions, column)

    def canonical(group: pd.DataFrame) -> pa.Table:
        frame = canonical_partition(group, mapping=mapping,
                                    session_gap_minutes=session_gap_minutes, unit=unit)
        return pa.Table.from_pandas(frame, schema=schema, preserve_index=False)

    stages: dict[str, float] = {}
    mark = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        stages[name] = now - mark
        mark = now

    canon = (raw.map_batches(tag, batch_format="pandas")
             .groupby(PART, num_partitions=n_partitions)
             .map_groups(canonical, batch_format="pandas")
             .materialize())
    lap("canonical")
    routed = _route(canon, rule, n_partitions)
    lap("route")

    def score(group: pd.DataFrame) -> pd.DataFrame:
        return score_partition(group, bundle, unit=unit)

    scores = (routed.groupby(TARGET, num_partitions=n_partitions)
              .map_groups(score, batch_format="pandas").materialize())
    lap("score")
    n_sessions = scores.count()
    if n_sessions:
        scores.write_parquet(out_dir)
    lap("write")
    n_context = routed.count() - canon.count()
    rows: dict[int, tuple[int, int]] = {}
    if measure:
        counts = routed.groupby([TARGET, OWN]).count().to_pandas()
        for (target, own), n in zip(zip(counts[TARGET], counts[OWN], strict=True),
                                    counts["count()"], strict=True):
            mine, other = rows.get(int(target), (0, 0))
            rows[int(target)] = (mine + int(n), other) if own else (mine, other + int(n))
    return RayRun(n_sessions, n_partitions, n_context, time.perf_counter() - started, stages,
                  rows)


def _route(canon: Any, rule: Any, n_partitions: int) -> Any:
    """Own rows (``_target`` = ``_part``) and the context rows each partition needs."""
    def own(batch: pd.DataFrame) -> pd.DataFrame:
        return batch.assign(**{TARGET: batch[PART], OWN: True})

    own_rows = canon.map_batches(own, batch_format="pandas")
    if rule.is_empty or n_partitions == 1:
        return own_rows
    names = canon.schema().names
    columns = [c for c in rule.columns if c in names]
    shuffle = ray_parallelism()
    pieces = []
    if columns:  # all value columns in one (key, session) table: two shuffles, not two each
        held = canon.map_batches(_holders(columns), batch_format="pandas")
        uses = held.map_batches(_uses, batch_format="pandas").groupby(["_key", TARGET]).count()
        uses = uses.map_batches(_columns(["_key", TARGET]), batch_format="pandas")
        joined = held.join(uses, "inner", shuffle, on=("_key",))
        pieces.append(joined.map_batches(_elsewhere, batch_format="pandas"))
    if rule.text_min_chars is not None and "text" in names:
        pieces.append(canon.map_batches(_broadcast_texts(rule.text_min_chars, n_partitions),
                                        batch_format="pandas"))
    if not pieces:
        return own_rows
    needed = pieces[0].union(*pieces[1:]) if len(pieces) > 1 else pieces[0]
    needed = needed.materialize()
    firsts = canon.map_batches(_firsts, batch_format="pandas")
    users = needed.groupby(["user_id", TARGET]).count().map_batches(
        _columns(["user_id", TARGET]), batch_format="pandas")
    first_needed = users.join(firsts, "inner", shuffle, on=("user_id",))
    sessions = needed.map_batches(_columns(["session_id", TARGET]), batch_format="pandas").union(
        first_needed.map_batches(_columns(["session_id", TARGET]), batch_format="pandas"))
    context = sessions.groupby(["session_id", TARGET]).count().map_batches(
        _columns(["session_id", TARGET]), batch_format="pandas")
    context_rows = canon.join(context, "inner", shuffle, on=("session_id",)).map_batches(
        _as_context, batch_format="pandas")
    return own_rows.union(context_rows).materialize()


def ray_parallelism() -> int:
    """Hash partitions of the context shuffles: one per CPU of the cluster."""
    import ray.data

    return int(ray.data.DataContext.get_current().default_hash_shuffle_parallelism)


def _holders(columns: list[str]) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """(_key, session_id, user_id, _part) per distinct value use; the key is the column's
    name and the value, so values of different columns never meet."""
    def holders(batch: pd.DataFrame) -> pd.DataFrame:
        frames = []
        for column in columns:
            kept = batch.loc[batch[column].notna(), [column, "session_id", "user_id", PART]]
            frames.append(pd.DataFrame({
                "_key": column + "\x1f" + kept[column].astype(str),
                "session_id": kept["session_id"], "user_id": kept["user_id"],
                PART: kept[PART]}))
        return pd.concat(frames, ignore_index=True).drop_duplicates()
    return holders


def _uses(batch: pd.DataFrame) -> pd.DataFrame:
    return batch[["_key", PART]].drop_duplicates().rename(columns={PART: TARGET})


def _columns(names: list[str]) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def select(batch: pd.DataFrame) -> pd.DataFrame:
        return batch[names]
    return select


def _elsewhere(batch: pd.DataFrame) -> pd.DataFrame:
    """Holders of a value another partition uses: (session_id, user_id, _target)."""
    return batch.loc[batch[PART] != batch[TARGET], ["session_id", "user_id", TARGET]]


def _broadcast_texts(min_chars: int, n_partitions: int) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def broadcast(batch: pd.DataFrame) -> pd.DataFrame:
        long = batch.loc[batch["text"].fillna("").str.len() >= max(min_chars, 1),
                         ["session_id", "user_id", PART]].drop_duplicates()
        targets = pd.DataFrame({TARGET: np.arange(n_partitions, dtype=np.int64)})
        crossed = long.merge(targets, how="cross")
        return crossed.loc[crossed[PART] != crossed[TARGET], ["session_id", "user_id", TARGET]]
    return broadcast


def _firsts(batch: pd.DataFrame) -> pd.DataFrame:
    return batch.loc[batch[FIRST].astype(bool), ["user_id", "session_id"]].drop_duplicates()


def _as_context(batch: pd.DataFrame) -> pd.DataFrame:
    return batch.assign(**{OWN: False})


__all__ = ["RayRun", "empty_scores", "require_ray", "score_with_ray", "start_ray"]
