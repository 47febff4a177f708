"""Scoring event files beyond the store (issue #27): ``anomalyst score --events``, in this
process or on a Ray cluster, and ``anomalyst ingest-scores`` to bring the results back.

The front ends call these; core.scale does the work. The store is opened only to read the
model (and later to write the scores back); the events never enter it.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import ConfigError, IngestError

if TYPE_CHECKING:
    from core.scale.bundle import ModelBundle
    from core.store import Store

ENGINES = ("local", "ray")
SCORES_FILE = "part-00000.parquet"
MAX_BAD_SESSIONS_LISTED = 5


@dataclass(frozen=True)
class FileScoreRequest:
    """What to score and where to write it, checked before any work starts."""

    events: tuple[str, ...]
    out: Path
    engine: str = "local"
    partitions: int | None = None
    address: str | None = None
    mapping: Any = None


@dataclass(frozen=True)
class FileScoreResult:
    model_id: str
    engine: str
    n_sessions: int
    n_partitions: int
    n_context_rows: int
    seconds: float
    startup_seconds: float
    out: Path


def file_score_request(events: Sequence[str], out: str | None, *, engine: str = "local",
                       partitions: int | None = None, address: str | None = None,
                       mapping: Any = None, only_new: bool = False) -> FileScoreRequest:
    """A checked request: an engine we know, events that exist (object-store URLs only for
    Ray), an output folder that is new or empty (runs never mix)."""
    if not events or not out:
        raise ConfigError("scoring files needs both --events (what to score) and --out (a new "
                          "folder for the scores).")
    if only_new:
        raise ConfigError("--only-new applies to the store's sessions, not to --events.")
    if engine not in ENGINES:
        raise ConfigError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}.")
    if partitions is not None and partitions < 1:
        raise ConfigError(f"partitions must be at least 1, got {partitions}.")
    if address and engine != "ray":
        raise ConfigError("--address names a Ray cluster: use it with --engine ray.")
    urls = [e for e in events if "://" in e]
    if urls and engine != "ray":
        raise ConfigError(f"events at URLs ({urls[0]}) are read by Ray Data: use --engine ray, "
                          "or copy the files here.")
    if not urls:
        from core.scale.plan import event_files

        event_files(list(events))  # ConfigError naming a path that matches nothing
    target = Path(out)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ConfigError(f"out must be a new or empty folder, got {out!r}, which "
                          f"{'is a file' if not target.is_dir() else 'holds files'}. Scores of "
                          "two runs must not mix: choose another folder.")
    return FileScoreRequest(tuple(events), target, engine, partitions, address, mapping)


def model_bundle(store: Store, model_id: str | None, detector: str | None) -> ModelBundle:
    """The model to score files with: ``model_id``, else the latest of ``detector``."""
    from core.app.models import models_to_score
    from core.scale.bundle import ModelBundle

    if not model_id and not detector:
        raise ConfigError("scoring files needs one model: give --model ID or --detector NAME.")
    return ModelBundle.from_store(store, models_to_score(store, model_id=model_id,
                                                         detector=detector)[0])


def score_files(bundle: ModelBundle, request: FileScoreRequest, *, unit: str = "session",
                ) -> FileScoreResult:
    """Score the request's events with ``bundle`` and write Parquet scores to its folder."""
    started = time.perf_counter()
    if request.engine == "ray":
        from core.scale.ray_engine import score_with_ray, start_ray

        startup = start_ray(request.address)
        paths = [e for e in request.events if "://" in e]
        if len(paths) < len(request.events):
            from core.scale.plan import event_files

            paths += event_files([e for e in request.events if "://" not in e])
        import ray

        cpus = int(ray.cluster_resources().get("CPU", 1))
        run = score_with_ray(paths, bundle, str(request.out),
                             n_partitions=request.partitions or max(1, cpus),
                             mapping=request.mapping, unit=unit)
        return FileScoreResult(bundle.model_id, "ray", run.n_sessions, run.n_partitions,
                               run.n_context_rows, time.perf_counter() - started, startup,
                               request.out)
    from core.files import make_private, private_umask
    from core.scale.plan import read_events, score_in_process

    raw = read_events(list(request.events))
    n_parts = request.partitions or 1
    scores = score_in_process(raw, bundle, n_partitions=n_parts, mapping=request.mapping,
                              unit=unit)
    request.out.mkdir(parents=True, exist_ok=True)
    target = request.out / SCORES_FILE
    with private_umask():
        scores.to_parquet(target, index=False)
    make_private(target)
    return FileScoreResult(bundle.model_id, "local", len(scores), n_parts, 0,
                           time.perf_counter() - started, 0.0, request.out)


@dataclass(frozen=True)
class IngestScoresResult:
    n_scores: int
    models: tuple[str, ...]
    n_unknown_sessions: int
    unknown_examples: tuple[str, ...]


def read_score_files(folder: str) -> Any:
    """The scores under ``folder`` (Parquet, as ``score_files`` writes them), checked."""
    import numpy as np
    import pandas as pd

    from core.scale.partition import SCORE_COLUMNS

    root = Path(folder)
    files = sorted(root.rglob("*.parquet")) if root.is_dir() else (
        [root] if root.is_file() else [])
    if not files:
        raise ConfigError(f"scores must be a folder of Parquet files written by `anomalyst "
                          f"score --events`, got {folder!r}, which holds none.")
    frames = []
    for file in files:
        try:
            frame = pd.read_parquet(file)
        except Exception as exc:  # noqa: BLE001  (pyarrow raises many kinds on a bad file)
            raise IngestError(f"{file} must be a readable Parquet file, got: "
                              f"{str(exc).splitlines()[0][:200]}. Nothing was written.") from exc
        missing = [c for c in SCORE_COLUMNS if c not in frame.columns]
        if missing:
            raise IngestError(f"{file} must have the columns {', '.join(SCORE_COLUMNS)}, "
                              f"missing {', '.join(missing)}. Nothing was written.")
        frames.append(frame[list(SCORE_COLUMNS)])
    scores = pd.concat(frames, ignore_index=True)
    values = pd.to_numeric(scores["score"], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        first = scores.loc[bad, "session_id"].astype(str).iloc[0]
        raise IngestError(f"every score must be a finite number, got {int(bad.sum()):,} that "
                          f"are not (first: session {first!r}). Nothing was written.")
    scores = scores.assign(score=values, session_id=scores["session_id"].astype(str),
                           model_id=scores["model_id"].astype(str))
    dup = scores.duplicated(["model_id", "session_id"])
    if dup.any():
        row = scores.loc[dup].iloc[0]
        raise IngestError(f"each session must be scored once per model, got session "
                          f"{row['session_id']!r} twice for {row['model_id']}: the folder mixes "
                          "runs. Nothing was written.")
    return scores


def ingest_scores(store: Store, folder: str) -> IngestScoresResult:
    """Write the scores under ``folder`` into the store, one transaction per run: each
    model's rows replace its scores of those sessions. Sessions the store does not hold are
    counted and left out (ingest their events first)."""
    from core.pipeline.registry import model_row

    scores = read_score_files(folder)
    models = tuple(sorted(scores["model_id"].unique()))
    for model_id in models:
        model_row(store, model_id)  # ModelError listing the registered models
    known = store.sessions.existing(scores["session_id"].unique().tolist())
    held = scores["session_id"].isin(known)
    unknown = scores.loc[~held, "session_id"].drop_duplicates()
    kept = scores.loc[held]
    scored_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with store.transaction():
        for model_id in models:
            frame = kept.loc[kept["model_id"] == model_id, ["session_id", "score"]]
            if frame.empty:
                continue
            with store.scores.staged(frame.reset_index(drop=True)):
                store.scores.replace(model_id, scored_at=scored_at, only_new=True)
    return IngestScoresResult(len(kept), models, len(unknown),
                              tuple(unknown.head(MAX_BAD_SESSIONS_LISTED).tolist()))
