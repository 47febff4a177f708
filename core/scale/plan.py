"""The partitioned plan run in this process: ``--engine local``, and the reference that
``ray_engine`` must equal."""

from __future__ import annotations

import glob
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from core.errors import ConfigError
from core.scale.bundle import ModelBundle
from core.scale.partition import (
    OWN,
    PART,
    TARGET,
    canonical_partition,
    context_needs,
    context_rule,
    distinct_texts,
    embed_distinct,
    empty_scores,
    routed_rows,
    score_partition,
    user_column,
    uses_text_embeddings,
    with_partition,
)


def event_files(paths: Sequence[str]) -> list[str]:
    """The Parquet files behind ``paths`` (files, folders of files, globs), sorted;
    ConfigError naming what matched nothing."""
    found: list[str] = []
    for path in paths:
        if any(ch in path for ch in "*?["):
            matches = sorted(glob.glob(path, recursive=True))
        elif Path(path).is_dir():
            matches = sorted(str(p) for p in Path(path).rglob("*.parquet"))
        else:
            matches = [path] if Path(path).is_file() else []
        if not matches:
            raise ConfigError(f"events must name Parquet files, folders or globs that exist, got "
                              f"{path!r}, which matches no file.")
        found += [m for m in matches if m not in found]
    return found


def read_events(paths: Sequence[str]) -> pd.DataFrame:
    """Every row of the Parquet files behind ``paths``, in file order."""
    files = event_files(paths)
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


def score_in_process(raw: pd.DataFrame, bundle: ModelBundle, *, n_partitions: int = 1,
                     mapping: Any = None, session_gap_minutes: float | None = None,
                     unit: str = "session",
                     seconds: dict[str, float] | None = None) -> pd.DataFrame:
    """Score raw events with ``bundle``: split by user into ``n_partitions``, each scored in
    its own in-memory store with the context it needs. Rows sorted by session id.
    ``seconds``, when given, gains each part's time summed over the partitions
    (``partition.WORK_PARTS``)."""
    if n_partitions < 1:
        raise ConfigError(f"partitions must be at least 1, got {n_partitions}.")
    if raw.empty:
        return empty_scores()
    parted = with_partition(raw, n_partitions, user_column(raw.columns, mapping))
    canonical = pd.concat(
        [canonical_partition(group, mapping=mapping, session_gap_minutes=session_gap_minutes,
                             unit=unit) for _, group in parted.groupby(PART, sort=True)],
        ignore_index=True)
    if n_partitions == 1:
        routed = canonical.assign(**{TARGET: canonical[PART], OWN: True})
    else:
        needs = context_needs(canonical, context_rule(bundle.load().spec), n_partitions)
        routed = routed_rows(canonical, needs)
    embeddings = []
    if n_partitions > 1 and uses_text_embeddings(bundle.load().spec):  # once, not per partition
        embeddings = [embed_distinct(distinct_texts(canonical))]
    scores = [score_partition(group, bundle, unit=unit, embeddings=embeddings, seconds=seconds)
              for _, group in routed.groupby(TARGET, sort=True)]
    return sort_scores(pd.concat(scores, ignore_index=True))


def sort_scores(scores: pd.DataFrame) -> pd.DataFrame:
    return scores.sort_values(["session_id"], kind="stable").reset_index(drop=True)
