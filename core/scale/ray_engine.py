"""The partitioned plan on Ray (``anomalyst score --engine ray``).

1. Ray Data reads the Parquet events (local paths or object-store URLs) and tags each row
   with its user's partition.
2. Each block is split by partition and one Ray task per partition turns its rows into
   canonical events (sessions and ids derived, rows validated) in a throw-away in-memory
   store.
3. Ray Data joins find the context each partition needs (``core.scale.partition``'s rule),
   and the rows are routed: to their own partition, and as context where needed.
4. One Ray task per partition builds its features and scores its own sessions; the scores
   are written as Parquet.

Steps 2 and 4 are a Ray core shuffle rather than Ray Data's ``groupby``: a hash shuffle of a
few integer keys can put two partitions in one task, which halves the parallelism.
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
    KEY,
    OWN,
    PART,
    TARGET,
    broadcast_writers,
    canonical_partition,
    canonical_schema,
    context_rule,
    distinct_texts,
    earliest_writers,
    elsewhere,
    embed_distinct,
    empty_scores,
    first_sessions,
    score_partition,
    text_uses,
    user_column,
    uses_text_embeddings,
    value_holders,
    value_uses,
    with_partition,
    writer_holders,
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

    logging.getLogger("ray.data").setLevel(logging.WARNING)  # a line per dataset otherwise
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
    """Seconds of each stage: canonical rows, routing (context), embedding the distinct
    texts, scoring, writing."""
    rows_per_partition: dict[int, tuple[int, int]] = field(default_factory=dict)
    """partition -> (own rows, context rows); filled when asked for (``measure``)."""
    work_seconds: dict[str, float] = field(default_factory=dict)
    """Worker seconds of each part of the scoring stage (``partition.WORK_PARTS``), summed
    over the partitions; filled when asked for (``measure``)."""



def score_with_ray(paths: Sequence[str], bundle: ModelBundle, out_dir: str, *,
                   n_partitions: int, mapping: Any = None,
                   session_gap_minutes: float | None = None, unit: str = "session",
                   measure: bool = False) -> RayRun:
    """Score the events at ``paths`` with ``bundle`` on the connected Ray cluster and write
    the scores (``SCORE_COLUMNS``) as Parquet files under ``out_dir``. ``measure`` also
    counts each partition's own and context rows (one more pass: for benchmarks) and times the
    parts of the scoring stage."""
    require_ray()
    import ray.data

    if n_partitions < 1:
        raise ConfigError(f"partitions must be at least 1, got {n_partitions}.")
    started = time.perf_counter()
    spec = bundle.load().spec
    rule = context_rule(spec)
    raw = ray.data.read_parquet(list(paths))
    column = user_column(raw.schema().names, mapping)

    def tag(batch: pd.DataFrame) -> pd.DataFrame:
        return with_partition(batch, n_partitions, column)

    stages: dict[str, float] = {}
    mark = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        stages[name] = now - mark
        mark = now

    tagged = raw.map_batches(tag, batch_format="pandas").to_arrow_refs()
    canon_refs = _per_partition(tagged, PART, n_partitions, _canonical_task,
                                (mapping, session_gap_minutes, unit))
    canon = ray.data.from_arrow_refs(canon_refs)
    lap("canonical")
    routed = _route(canon, rule, n_partitions)
    lap("route")
    embeddings: list[Any] = []
    if uses_text_embeddings(spec):  # each distinct text embedded once, cluster-wide
        embeddings = (canon.map_batches(distinct_texts, batch_format="pandas")
                      .groupby("text").count()
                      .map_batches(embed_distinct, batch_format="pandas")
                      .to_arrow_refs())
    lap("embed")
    bundle_ref = ray.put(bundle)
    outputs = _per_partition(routed.to_arrow_refs(), TARGET, n_partitions, _score_task,
                             (bundle_ref, unit, embeddings, measure), returns=2 if measure else 1)
    scores = ray.data.from_arrow_refs([o[0] for o in outputs] if measure else outputs)
    n_sessions = scores.count()
    lap("score")
    work: dict[str, float] = {}
    if measure:
        for part in ray.get([o[1] for o in outputs]):
            for name, value in part.items():
                work[name] = work.get(name, 0.0) + value
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
                  rows, work)


def _per_partition(refs: list[Any], column: str, n_partitions: int, task: Callable[..., Any],
                   args: tuple[Any, ...], returns: int = 1) -> list[Any]:
    """Run ``task(*args, *pieces)`` once per partition, on the rows of ``refs`` (Arrow
    blocks) whose ``column`` is that partition. Each block is split once into its partitions'
    pieces (a Ray core shuffle): one task per partition, never two partitions in one task, as
    a hash shuffle of a few keys can do. A task with ``returns`` > 1 gives that many refs."""
    import ray

    split = ray.remote(_split).options(num_returns=n_partitions)
    pieces = [split.remote(ref, column, n_partitions) for ref in refs]
    if n_partitions == 1:
        pieces = [[p] for p in pieces]
    run = ray.remote(task) if returns == 1 else ray.remote(task).options(num_returns=returns)
    return [run.remote(*args, *[p[i] for p in pieces]) for i in range(n_partitions)]


def _split(table: Any, column: str, n_partitions: int) -> Any:
    import pyarrow.compute as pc

    values = table.column(column)
    parts = tuple(table.filter(pc.equal(values, i)) for i in range(n_partitions))
    return parts if n_partitions > 1 else parts[0]


def _frame(pieces: tuple[Any, ...]) -> pd.DataFrame:
    import pyarrow as pa

    tables = [t for t in pieces if t.num_rows]
    if not tables:
        return pd.DataFrame()
    return pa.concat_tables(tables, promote_options="permissive").to_pandas()


def _long_broadcast(writers: pd.DataFrame, min_chars: int, n_partitions: int,
                    ) -> pd.DataFrame:
    return broadcast_writers(writers.loc[writers["text"].str.len() >= min_chars],
                             n_partitions)


def _bucketed_writers(batch: pd.DataFrame, min_chars: int, buckets: int) -> pd.DataFrame:
    writers = earliest_writers(batch, min_chars)
    bucket = pd.util.hash_array(writers["text"].to_numpy(dtype=object)) % np.uint64(buckets)
    return writers.assign(_bucket=bucket.astype(np.int64))


def _earliest_task(min_chars: int, *pieces: Any) -> Any:
    import pyarrow as pa

    rows = _frame(pieces)
    if rows.empty:
        return pa.table({"text": pa.array([], pa.string()),
                         "ts": pa.array([], pa.timestamp("us")),
                         "event_id": pa.array([], pa.string()),
                         "user_id": pa.array([], pa.string()), PART: pa.array([], pa.int64())})
    return pa.Table.from_pandas(earliest_writers(rows, min_chars), preserve_index=False)


def _canonical_task(mapping: Any, session_gap_minutes: float | None, unit: str,
                    *pieces: Any) -> Any:
    import pyarrow as pa

    schema = canonical_schema()
    rows = _frame(pieces)
    if rows.empty:
        return schema.empty_table()
    frame = canonical_partition(rows, mapping=mapping, session_gap_minutes=session_gap_minutes,
                                unit=unit)
    return pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False)


def _score_task(bundle: ModelBundle, unit: str, embedding_refs: list[Any], measure: bool,
                *pieces: Any) -> Any:
    """One partition's scores as an Arrow table (with ``measure``: and its parts' seconds)."""
    import pyarrow as pa
    import ray

    rows = _frame(pieces)
    embeddings = ray.get(embedding_refs) if embedding_refs and not rows.empty else []
    seconds: dict[str, float] = {}
    scores = empty_scores() if rows.empty else score_partition(
        rows, bundle, unit=unit, embeddings=embeddings, seconds=seconds)
    table = pa.Table.from_pandas(scores, preserve_index=False, schema=pa.schema([
        ("model_id", pa.string()), ("session_id", pa.string()), ("user_id", pa.string()),
        ("score", pa.float64())]))
    return (table, seconds) if measure else table


def _route(canon: Any, rule: Any, n_partitions: int) -> Any:
    """Own rows (``_target`` = ``_part``) and the context rows each partition needs
    (``core.scale.partition``'s rule, as joins)."""
    import ray.data

    own_rows = canon.map_batches(_own, batch_format="pandas")
    if rule.is_empty or n_partitions == 1:
        return own_rows
    shuffle = ray_parallelism()
    pieces = []
    if rule.session_columns or rule.first_use_columns:  # one melted table: two shuffles
        held = canon.map_batches(_call(value_holders, rule), batch_format="pandas")
        uses = held.map_batches(value_uses, batch_format="pandas").groupby([KEY, TARGET]).count()
        uses = uses.map_batches(_columns([KEY, TARGET]), batch_format="pandas")
        pieces.append(held.join(uses, "inner", shuffle, on=(KEY,)).map_batches(
            elsewhere, batch_format="pandas"))
    if rule.text_writers or rule.text_min_chars is not None:
        # each block's earliest writers, then per text (bucketed by its hash): the earliest
        buckets = ray_parallelism()
        local = canon.map_batches(_call(_bucketed_writers, 1, buckets),
                                  batch_format="pandas").to_arrow_refs()
        writers = ray.data.from_arrow_refs(_per_partition(
            local, "_bucket", buckets, _earliest_task, (1,))).materialize()
        if rule.text_writers:
            uses = canon.map_batches(text_uses, batch_format="pandas").groupby(
                [KEY, TARGET]).count().map_batches(_columns([KEY, TARGET]),
                                                   batch_format="pandas")
            holders = writers.map_batches(writer_holders, batch_format="pandas")
            pieces.append(holders.join(uses, "inner", shuffle, on=(KEY,)).map_batches(
                elsewhere, batch_format="pandas"))
        if rule.text_min_chars is not None:
            pieces.append(writers.map_batches(
                _call(_long_broadcast, rule.text_min_chars, n_partitions),
                batch_format="pandas"))
    needed = (pieces[0].union(*pieces[1:]) if len(pieces) > 1 else pieces[0]).materialize()
    events = needed.map_batches(_of_kind("event", "event_id"), batch_format="pandas").groupby(
        ["event_id", TARGET]).count().map_batches(_columns(["event_id", TARGET]),
                                                  batch_format="pandas")  # once per event
    context = canon.join(events, "inner", shuffle, on=("event_id",))
    if rule.session_columns:  # whole sessions, and the first session of their users
        users = needed.map_batches(_sessions_users, batch_format="pandas").groupby(
            ["user_id", TARGET]).count().map_batches(_columns(["user_id", TARGET]),
                                                     batch_format="pandas")
        firsts = canon.map_batches(first_sessions, batch_format="pandas")
        first_needed = users.join(firsts, "inner", shuffle, on=("user_id",)).map_batches(
            _as_session_need, batch_format="pandas")
        sessions = needed.map_batches(_columns(["kind", "id", TARGET]), batch_format="pandas"
                                      ).union(first_needed).map_batches(
            _of_kind("session", "session_id"), batch_format="pandas")
        sessions = sessions.groupby(["session_id", TARGET]).count().map_batches(
            _columns(["session_id", TARGET]), batch_format="pandas")
        context = context.union(canon.join(sessions, "inner", shuffle, on=("session_id",)))
    context = context.map_batches(_as_context, batch_format="pandas")
    return _with_schema(own_rows.union(context))


def _with_schema(routed: Any) -> Any:
    """``routed`` with every block in the routed schema: a join can leave a block with no
    rows and no columns, which the next shuffle cannot concatenate with the others."""
    import ray
    import ray.data

    schema = _routed_schema()

    @ray.remote(num_cpus=0)
    def fix(table: Any) -> Any:
        return table if table.num_columns else schema.empty_table()

    return ray.data.from_arrow_refs([fix.remote(ref) for ref in routed.to_arrow_refs()])


def ray_parallelism() -> int:
    """Hash partitions of the context shuffles: one per CPU of the cluster."""
    import ray.data

    return int(ray.data.DataContext.get_current().default_hash_shuffle_parallelism)


def _call(fn: Callable[..., pd.DataFrame], *args: Any) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def call(batch: pd.DataFrame) -> pd.DataFrame:
        return fn(batch, *args)
    return call


def _columns(names: list[str]) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def select(batch: pd.DataFrame) -> pd.DataFrame:
        return batch[names]
    return select


def _of_kind(kind: str, id_column: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def of_kind(batch: pd.DataFrame) -> pd.DataFrame:
        rows = batch.loc[batch["kind"] == kind, ["id", TARGET]]
        return rows.rename(columns={"id": id_column})
    return of_kind


def _routed_schema() -> Any:
    import pyarrow as pa

    schema = canonical_schema()
    return schema.append(pa.field(TARGET, pa.int64())).append(pa.field(OWN, pa.bool_()))


def _routed_table(frame: pd.DataFrame) -> Any:
    """Routed rows with one Arrow schema (Ray's joins give large strings; a shuffle must not
    meet two types of one column)."""
    import pyarrow as pa

    schema = _routed_schema()
    return pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False)


def _own(batch: pd.DataFrame) -> Any:
    return _routed_table(batch.assign(**{TARGET: batch[PART], OWN: True}))


def _sessions_users(batch: pd.DataFrame) -> pd.DataFrame:
    """The users whose whole sessions a partition needs (their first session goes too)."""
    return batch.loc[batch["kind"] == "session", ["user_id", TARGET]].drop_duplicates()


def _as_session_need(batch: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"kind": "session", "id": batch["session_id"],
                         TARGET: batch[TARGET]})


def _as_context(batch: pd.DataFrame) -> Any:
    """Context rows; a row both a needed session's and a needed first use counts once."""
    return _routed_table(batch.drop_duplicates(["event_id", TARGET]).assign(**{OWN: False}))


__all__ = ["RayRun", "empty_scores", "require_ray", "score_with_ray", "start_ray"]
