"""Models: train, score the latest models, export scores, evaluate.

Option values are checked and read (session files, the mapping's extra types) by
``train_request`` before the front end opens the store; torch and the detectors load inside
the functions that train or score.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

    from core.features.extras import ExtraSelection
    from core.pipeline import ScoreResult, TrainResult
    from core.store import Store

EXPORT_SUFFIXES = (".parquet", ".csv")


def parse_time(value: str | None) -> dt.datetime | None:
    """An ISO 8601 time as naive UTC (None stays None)."""
    if value is None:
        return None
    import pandas as pd

    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"a time must be ISO 8601 like 2026-09-20, got {value!r}.") from exc
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return stamp.to_pydatetime()


def read_session_ids(path: str) -> list[str]:
    """Session ids from a text file (one per line) or a Parquet/CSV file with session_id."""
    file = Path(path)
    if not file.exists():
        raise ConfigError(f"sessions file must exist, got {path!r}. Check the path.")
    if file.suffix.lower() in (".parquet", ".pq", ".csv"):
        import pandas as pd

        frame = pd.read_parquet(file) if file.suffix.lower() != ".csv" else pd.read_csv(file)
        if "session_id" not in frame.columns:
            raise ConfigError(f"{path} must have a session_id column, got {list(frame.columns)}.")
        return frame["session_id"].astype(str).tolist()
    return [line.strip() for line in file.read_text().splitlines() if line.strip()]


def combines_members(detector: str) -> bool:
    """True when models of ``detector`` combine other models' scores (the ensemble)."""
    from core.detectors.registry import combines_members as combines

    return combines(detector)


def preferred_detectors() -> tuple[str, ...]:
    """Detectors whose models a page shows first, most preferred first (``explain_preference``:
    the strongest family present, see docs/BENCHMARKS.md)."""
    from core.detectors.registry import preferred_detectors as preferred

    return preferred()


def _names(value: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in value.split(",") if n.strip())


@dataclass(frozen=True)
class TrainRequest:
    """What to train, checked and read before the store opens."""

    detector: str
    train_end: dt.datetime | None = None
    train_sessions: list[str] | None = None
    epochs: int | None = None
    device: str = "auto"
    quiet: bool = False
    members: list[str] | None = None
    """Ensemble members (None: the latest scored model of each detector)."""
    contamination: float | None = None
    extras: ExtraSelection | None = None
    config: dict[str, Any] | None = field(default=None)
    engine: str = "local"
    """Where the torch detectors train: this process, or Ray Train ("ray")."""
    workers: int | None = None
    address: str | None = None

    @property
    def is_ensemble(self) -> bool:
        return combines_members(self.detector)


def train_request(detector: str, *, train_end: str | None = None,
                  train_sessions: str | None = None, members: str | None = None,
                  extras_allow: str | None = None, extras_deny: str | None = None,
                  map_file: str | None = None, **options: Any) -> TrainRequest:
    """A ``TrainRequest`` from option text: comma lists, an ISO time, a sessions file and the
    mapping file's extra types; ``options`` (epochs, device, quiet, contamination, config)
    pass through."""
    engine = options.get("engine", "local")
    if engine == "ray" and combines_members(detector):
        raise ConfigError("--engine ray trains torch detectors; an ensemble combines scores in "
                          "the store: drop --engine.")
    if (options.get("workers") or options.get("address")) and engine != "ray":
        raise ConfigError("--workers and --address are for --engine ray.")
    if members is not None and not combines_members(detector):
        raise ConfigError(f"--members must come with --detector ensemble, got --detector "
                          f"{detector}. Drop --members or train an ensemble.")
    sessions = read_session_ids(train_sessions) if train_sessions else None
    if combines_members(detector):
        return TrainRequest(detector, members=list(_names(members)) if members else None,
                            **options)
    from core.features.extras import ExtraSelection
    from core.ingest.mapping import read_extra_types

    selection = ExtraSelection(
        allow=_names(extras_allow) if extras_allow is not None else None,
        deny=_names(extras_deny) if extras_deny else (),
        types=read_extra_types(map_file) if map_file else {})
    return TrainRequest(detector, train_end=parse_time(train_end), train_sessions=sessions,
                        extras=selection, **options)


def train(store: Store, request: TrainRequest) -> TrainResult:
    """Train what ``request`` names; an ensemble combines already-scored members."""
    if request.is_ensemble:
        from core.pipeline.ensemble import train_ensemble

        return train_ensemble(store, request.members)
    from core.pipeline import train_model

    fit = None
    if request.engine == "ray":
        from core.scale.ray_train import ray_fitter

        fit = ray_fitter(request.workers, request.address, use_gpu=request.device == "cuda")
    elif request.engine != "local":
        raise ConfigError(f"engine must be local or ray, got {request.engine!r}.")
    return train_model(store, request.detector, train_end=request.train_end,
                       train_sessions=request.train_sessions, epochs=request.epochs,
                       device=request.device, quiet=request.quiet, extras=request.extras,
                       contamination=request.contamination, config=request.config, fit=fit)


def latest_models(store: Store) -> list[str]:
    """The latest model of every detector, ensembles after their members (whose scores they
    combine)."""
    from core.pipeline.registry import latest_models as latest

    return latest(store)


def models_to_score(store: Store, *, model_id: str | None = None,
                    detector: str | None = None) -> list[str]:
    """``model_id``; else the latest model of ``detector``; else ``latest_models``."""
    if model_id:
        return [model_id]
    if detector:
        found = store.models.latest_of(detector)
        if found is None:
            raise ConfigError(f"no model of detector {detector!r} yet. Train one first.")
        return [found]
    ids = latest_models(store)
    if not ids:
        raise ConfigError("no models yet. Train one with `anomalyst train --detector "
                          "autoencoder`.")
    return ids


def score(store: Store, model_id: str, *, only_new: bool = False) -> ScoreResult:
    """Score sessions with ``model_id`` (only those it has not scored, with ``only_new``)."""
    from core.pipeline import score_model

    return score_model(store, model_id, only_new=only_new)


def score_new(store: Store) -> list[str]:
    """Score what each detector's latest model has not scored yet; one line per model."""
    lines = []
    for model_id in latest_models(store):
        result = score(store, model_id, only_new=True)
        lines.append(f"{model_id}: {result.n_sessions:,} new sessions scored")
    return lines


def export_path(out: str) -> Path:
    """``out`` as the path of a score export, which must be Parquet or CSV."""
    target = Path(out)
    if target.suffix.lower() not in EXPORT_SUFFIXES:
        raise ConfigError(f"--out must end in .parquet or .csv, got {out!r}.")
    return target


def scores_with_flags(store: Store) -> pd.DataFrame:
    """model_id, session_id, user_id, score, threshold, above_threshold,
    percentile_vs_training for every scored model (its threshold in force for the session's
    segment; the score's percentile among its training scores), then per session the alert
    policy's risk, verdict (``flagged``) and version."""
    from core.cases.scoring import ScoreContext

    frame = store.scores.export()
    return ScoreContext.build(store).with_flags(frame, store)


def write_scores(frame: pd.DataFrame, target: Path) -> None:
    """Write ``frame`` to ``target`` (.csv cells neutralised against formula injection),
    readable by its owner only."""
    from core.csv_safe import write_csv
    from core.files import make_private, private_umask

    target.parent.mkdir(parents=True, exist_ok=True)
    if target.suffix.lower() == ".csv":
        write_csv(frame, target)
    else:
        with private_umask():
            frame.to_parquet(target, index=False)
        make_private(target)


def evaluate(store: Store, *, from_ts: str | None = None,
             session_ids: Sequence[str] | None = None,
             labels: str = "both") -> list[dict[str, Any]]:
    """ROC-AUC, AP, best F1, recall at 1% FPR, precision@k and per-scenario recall of every
    scored model; ``labels``: both, ground_truth or analyst."""
    from core.pipeline import evaluate_models

    sources = ("ground_truth", "analyst") if labels == "both" else (labels,)
    return evaluate_models(store, from_ts=parse_time(from_ts), session_ids=session_ids,
                           sources=sources)
