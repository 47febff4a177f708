"""Commands for models: train, score, scores, evaluate."""

from __future__ import annotations

import json

import click

from cli.errors import user_errors
from cli.options import db_option, json_option, wait_option
from core.app import models as app_models
from core.app.data import open_store


@click.command()
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
@click.option("--history/--no-history", "history", default=None,
              help="Add (or leave out) the point-in-time history and entity features: the "
                   "user's rolling windows, each entity's activity and delayed fraud share "
                   "(default: the detector's own; on for gbdt).")
@db_option
@wait_option
@user_errors
def train(detector: str, train_end: str | None, train_sessions: str | None, epochs: int | None,
          device: str, quiet: bool, members: str | None, contamination: float | None,
          extras_allow: str | None, extras_deny: str | None, map_file: str | None,
          history: bool | None, db: str | None, wait_s: float) -> None:
    """Train DETECTOR on the store's sessions and print the new model id.

    Its default threshold comes from its own training scores (median + 3 MAD, or best F1 on
    the validation window for a detector trained on labels), unless --contamination is given.
    """
    request = app_models.train_request(
        detector, train_end=train_end, train_sessions=train_sessions, members=members,
        extras_allow=extras_allow, extras_deny=extras_deny, map_file=map_file, epochs=epochs,
        device=device, quiet=quiet, contamination=contamination,
        config=None if history is None else {"history_features": history})
    with open_store(db, wait_s=wait_s) as store:
        result = app_models.train(store, request)
    if not quiet and request.is_ensemble:
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


@click.command()
@click.option("--model", "model_id", default=None, help="Model id to score with.")
@click.option("--detector", default=None, help="Score with the latest model of this detector.")
@click.option("--only-new", is_flag=True, help="Only sessions this model has not scored yet.")
@db_option
@wait_option
@user_errors
def score(model_id: str | None, detector: str | None, only_new: bool, db: str | None,
          wait_s: float) -> None:
    """Score sessions with a model (default: the latest model of every detector)."""
    with open_store(db, wait_s=wait_s) as store:
        for mid in app_models.models_to_score(store, model_id=model_id, detector=detector):
            result = app_models.score(store, mid, only_new=only_new)
            click.echo(f"{mid}: scored {result.n_sessions:,} sessions "
                       f"({result.n_events:,} event scores) in {result.seconds:.1f} s")


@click.command()
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Output file: .parquet or .csv.")
@db_option
@wait_option
@user_errors
def scores(out: str, db: str | None, wait_s: float) -> None:
    """Export every scored model's scores: model_id, session_id, user_id, score, threshold
    (that model's, for the session's segment), above_threshold, percentile_vs_training; and
    per session the alert policy's risk (0-100), its verdict `flagged` and policy_version
    (see `anomalyst policy show`)."""
    target = app_models.export_path(out)
    with open_store(db, read_only=True, wait_s=wait_s) as store:
        frame = app_models.scores_with_flags(store)
    app_models.write_scores(frame, target)
    click.echo(f"Wrote {len(frame):,} scores to {target}")


@click.command()
@click.option("--from", "from_ts", default=None,
              help="Evaluate sessions starting at or after this time (default: each model's "
                   "train end).")
@click.option("--sessions", default=None, type=click.Path(),
              help="Evaluate only these session ids (text/Parquet/CSV).")
@click.option("--labels", type=click.Choice(["both", "ground_truth", "analyst"]), default="both",
              show_default=True, help="Which labels count.")
@json_option()
@db_option
@wait_option
@user_errors
def evaluate(from_ts: str | None, sessions: str | None, labels: str, as_json: bool,
             db: str | None, wait_s: float) -> None:
    """ROC-AUC, AP, best F1, recall at 1% FPR, precision@k and per-scenario recall."""
    ids = app_models.read_session_ids(sessions) if sessions else None
    with open_store(db, read_only=True, wait_s=wait_s) as store:
        results = app_models.evaluate(store, from_ts=from_ts, session_ids=ids, labels=labels)
    if as_json:
        click.echo(json.dumps(results, indent=2, default=str))
        return
    if not results:
        click.echo("No scored models. Run `anomalyst train` and `anomalyst score` first.")
        return
    click.echo(format_evaluation(results))


def format_evaluation(results: list[dict]) -> str:
    """One line per model, the alert policy's precision and recall, then per-scenario recall
    at 1% FPR."""
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
        if "policy" in r:
            p = r["policy"]
            lines.append(f"  alert policy v{p['version']} on {r['model_id']}: flags "
                         f"{p['n_flagged']:,}, precision {p['precision']:.3f}, recall "
                         f"{p['recall']:.3f}, F1 {p['f1']:.3f}")
    for r in results:
        per = r.get("recall_by_scenario") or {}
        if per:
            shown = ", ".join(f"{k} {v:.2f}" for k, v in sorted(per.items()))
            lines.append(f"  {r['model_id']}: recall@1%FPR by scenario: {shown}")
    return "\n".join(lines)
