"""CLI commands for models: train, score, scores, evaluate."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import click
import pandas as pd

from core.cases.scoring import ScoreContext
from core.cli import db_option, main, user_errors, wait_option
from core.csv_safe import write_csv
from core.errors import ConfigError
from core.files import make_private, private_umask
from core.store import Store


def _parse_ts(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
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
        frame = pd.read_parquet(file) if file.suffix.lower() != ".csv" else pd.read_csv(file)
        if "session_id" not in frame.columns:
            raise ConfigError(f"{path} must have a session_id column, got {list(frame.columns)}.")
        return frame["session_id"].astype(str).tolist()
    return [line.strip() for line in file.read_text().splitlines() if line.strip()]


@main.command()
@click.option("--detector", "detector", required=True, help="Detector name (see --help list).")
@click.option("--train-end", default=None, help="Train on sessions before this time (ISO).")
@click.option("--train-sessions", default=None, type=click.Path(),
              help="Text/Parquet/CSV file of session ids to train on instead.")
@click.option("--epochs", type=int, default=None, help="Training epochs (torch detectors).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              show_default=True)
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--members", default=None,
              help="With --detector ensemble: comma-separated model ids to combine (default: "
                   "the latest scored model of each detector).")
@click.option("--contamination", type=float, default=None,
              help="Default threshold: flag this share of training sessions (e.g. 0.01) "
                   "instead of the label-free rule.")
@click.option("--extras", "extras_allow", default=None,
              help="Comma-separated extra columns the model may use (default: all).")
@click.option("--exclude-extras", "extras_deny", default=None,
              help="Comma-separated extra columns the model must not use.")
@click.option("--map-file", default=None, type=click.Path(),
              help='The ingest mapping file; its "extra_types" ({"column": "numeric" | '
                   '"categorical" | "ignore"}) override the inferred types of extra columns.')
@db_option
@wait_option
@user_errors
def train(detector: str, train_end: str | None, train_sessions: str | None, epochs: int | None,
          device: str, quiet: bool, members: str | None, contamination: float | None,
          extras_allow: str | None, extras_deny: str | None, map_file: str | None,
          db: str | None, wait_s: float) -> None:
    """Train DETECTOR on the store's sessions and print the new model id.

    Its default threshold comes from its own training scores (median + 3 MAD, or best F1 on
    the validation window for a detector trained on labels), unless --contamination is given.
    """
    from core.features.extras import ExtraSelection
    from core.ingest.mapping import read_extra_types
    from core.pipeline import train_model

    if members is not None and detector != "ensemble":
        raise ConfigError(f"--members must come with --detector ensemble, got --detector "
                          f"{detector}. Drop --members or train an ensemble.")
    sessions = read_session_ids(train_sessions) if train_sessions else None
    with Store.open(db, wait_s=wait_s) as store:
        if detector == "ensemble":
            from core.pipeline.ensemble import train_ensemble

            ids = [m.strip() for m in members.split(",") if m.strip()] if members else None
            result = train_ensemble(store, ids)
        else:
            selection = ExtraSelection(
                allow=_names(extras_allow) if extras_allow is not None else None,
                deny=_names(extras_deny) if extras_deny else (),
                types=read_extra_types(map_file) if map_file else {})
            result = train_model(store, detector, train_end=_parse_ts(train_end),
                                 train_sessions=sessions, epochs=epochs, device=device,
                                 quiet=quiet, extras=selection, contamination=contamination)
    if not quiet and detector == "ensemble":
        click.echo(f"Trained an ensemble; its weights were set on {result.n_train:,} labelled "
                   f"sessions up to {result.train_end}, in {result.seconds:.1f} s.", err=True)
    elif not quiet:
        anomalies = (f"{result.n_anomalous:,} labelled anomalous included" if result.n_anomalous
                     else f"{result.n_excluded_anomalous:,} labelled anomalous left out")
        click.echo(
            f"Trained {detector} on {result.n_train:,} sessions ({anomalies}) in "
            f"{result.seconds:.1f} s; train end {result.train_end or 'given sessions'}.",
            err=True,
        )
    click.echo(result.model_id)


def _names(value: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in value.split(",") if n.strip())


@main.command()
@click.option("--model", "model_id", default=None, help="Model id to score with.")
@click.option("--detector", default=None, help="Score with the latest model of this detector.")
@click.option("--only-new", is_flag=True, help="Only sessions this model has not scored yet.")
@db_option
@wait_option
@user_errors
def score(model_id: str | None, detector: str | None, only_new: bool, db: str | None,
          wait_s: float) -> None:
    """Score sessions with a model (default: the latest model of every detector)."""
    from core.pipeline import score_model

    with Store.open(db, wait_s=wait_s) as store:
        if model_id:
            ids = [model_id]
        elif detector:
            found = store.scalar("latest_model_of", {"detector": detector})
            if found is None:
                raise ConfigError(f"no model of detector {detector!r} yet. Train one first.")
            ids = [found]
        else:
            models = store.frame("model_list")
            latest = models.groupby("detector")["model_id"].last()
            # Ensembles combine the other models' scores: score them after their members.
            ids = [m for d, m in latest.items() if d != "ensemble"]
            ids += [m for d, m in latest.items() if d == "ensemble"]
            if not ids:
                raise ConfigError("no models yet. Train one with `anomalyst train --detector "
                                  "autoencoder`.")
        for mid in ids:
            result = score_model(store, mid, only_new=only_new)
            click.echo(f"{mid}: scored {result.n_sessions:,} sessions "
                       f"({result.n_events:,} event scores) in {result.seconds:.1f} s")


@main.command()
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Output file: .parquet or .csv.")
@db_option
@wait_option
@user_errors
def scores(out: str, db: str | None, wait_s: float) -> None:
    """Export (model_id, session_id, user_id, score, threshold, flagged,
    percentile_vs_training) for every scored model: the threshold in force (saved for the
    session's segment, else the model's default operating point) and the score's percentile
    among the model's training scores."""
    target = Path(out)
    if target.suffix.lower() not in (".parquet", ".csv"):
        raise ConfigError(f"--out must end in .parquet or .csv, got {out!r}.")
    with Store.open(db, read_only=True, wait_s=wait_s) as store:
        frame = store.frame("export_scores")
        frame = ScoreContext.build(store).with_flags(frame, store)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.suffix.lower() == ".csv":
        write_csv(frame, target)  # cells neutralised (formula injection), owner-only
    else:
        with private_umask():
            frame.to_parquet(target, index=False)
        make_private(target)
    click.echo(f"Wrote {len(frame):,} scores to {target}")


@main.command()
@click.option("--from", "from_ts", default=None,
              help="Evaluate sessions starting at or after this time (default: each model's "
                   "train end).")
@click.option("--sessions", default=None, type=click.Path(),
              help="Evaluate only these session ids (text/Parquet/CSV).")
@click.option("--labels", type=click.Choice(["both", "ground_truth", "analyst"]), default="both",
              show_default=True, help="Which labels count.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@db_option
@wait_option
@user_errors
def evaluate(from_ts: str | None, sessions: str | None, labels: str, as_json: bool,
             db: str | None, wait_s: float) -> None:
    """ROC-AUC, AP, best F1, recall at 1% FPR, precision@k and per-scenario recall."""
    from core.pipeline import evaluate_models

    sources = ("ground_truth", "analyst") if labels == "both" else (labels,)
    ids = read_session_ids(sessions) if sessions else None
    with Store.open(db, read_only=True, wait_s=wait_s) as store:
        results = evaluate_models(store, from_ts=_parse_ts(from_ts), session_ids=ids,
                                  sources=sources)
    if as_json:
        click.echo(json.dumps(results, indent=2, default=str))
        return
    if not results:
        click.echo("No scored models. Run `anomalyst train` and `anomalyst score` first.")
        return
    click.echo(format_evaluation(results))


def format_evaluation(results: list[dict]) -> str:
    """One line per model, then per-scenario recall at 1% FPR."""
    lines = [f"{'model':<36} {'n':>8} {'anom':>6} {'ROC-AUC':>8} {'AP':>7} {'bestF1':>7} "
             f"{'R@1%FPR':>8}"]
    for r in results:
        if "roc_auc" not in r:
            lines.append(f"{r['model_id']:<36} {r['n_sessions']:>8,} {r['n_anomalous']:>6,}  "
                         f"{r.get('note', '')}")
            continue
        lines.append(
            f"{r['model_id']:<36} {r['n_sessions']:>8,} {r['n_anomalous']:>6,} "
            f"{r['roc_auc']:>8.3f} {r['average_precision']:>7.3f} {r['best_f1']:>7.3f} "
            f"{r['recall_at_fpr']:>8.3f}"
        )
    for r in results:
        per = r.get("recall_by_scenario") or {}
        if per:
            shown = ", ".join(f"{k} {v:.2f}" for k, v in sorted(per.items()))
            lines.append(f"  {r['model_id']}: recall@1%FPR by scenario: {shown}")
    return "\n".join(lines)
