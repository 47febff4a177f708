"""Commands for models: train, score, scores, evaluate, and the `models` group (list, show,
compare, retire)."""

from __future__ import annotations

import json

import click

from cli.errors import user_errors
from cli.options import analyst_option, db_option, json_option, wait_option, who
from core.app import model_catalog
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
                   '"categorical" | "datetime" | "ignore"}) override the inferred types of '
                   'extra columns.')
@click.option("--history/--no-history", "history", default=None,
              help="Add (or leave out) the point-in-time history and entity features: the "
                   "user's rolling windows, each entity's activity and delayed fraud share "
                   "(default: on for gbdt; for the other feature detectors, on where most "
                   "sessions are one event).")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local",
              show_default=True,
              help="Train a torch detector in this process, or data-parallel on a Ray cluster "
                   "(pip install 'anomalyst[scale]').")
@click.option("--workers", type=int, default=None,
              help="With --engine ray: training workers (default: 2, or the cluster's CPUs "
                   "if fewer).")
@click.option("--address", default=None,
              help="With --engine ray: the cluster ('auto': the running one; default: start "
                   "a local one).")
@db_option
@wait_option
@user_errors
def train(detector: str, train_end: str | None, train_sessions: str | None, epochs: int | None,
          device: str, quiet: bool, members: str | None, contamination: float | None,
          extras_allow: str | None, extras_deny: str | None, map_file: str | None,
          history: bool | None, engine: str, workers: int | None, address: str | None,
          db: str | None, wait_s: float) -> None:
    """Train DETECTOR on the store's sessions and print the new model id.

    Its default threshold comes from its own training scores (best F1 on the validation
    window for a detector trained on labels; the 99.5th percentile where the training
    sessions are labelled normal; else median + 4 MAD, flagging at most 5% of them), unless
    --contamination is given.
    """
    request = app_models.train_request(
        detector, train_end=train_end, train_sessions=train_sessions, members=members,
        extras_allow=extras_allow, extras_deny=extras_deny, map_file=map_file, epochs=epochs,
        device=device, quiet=quiet, contamination=contamination,
        config=None if history is None else {"history_features": history}, engine=engine,
        workers=workers, address=address)
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
        for note in result.notes:
            click.echo(f"Note: {note}.", err=True)
    click.echo(result.model_id)


@click.command()
@click.option("--model", "model_id", default=None, help="Model id to score with.")
@click.option("--detector", default=None, help="Score with the latest model of this detector.")
@click.option("--only-new", is_flag=True, help="Only sessions this model has not scored yet.")
@click.option("--events", "events", multiple=True, metavar="PATH_OR_GLOB",
              help="Score these Parquet event files (folders, globs; s3:// and other URLs "
                   "with --engine ray) instead of the store's sessions; needs --out and one "
                   "model. Repeatable.")
@click.option("--out", "out", default=None, type=click.Path(file_okay=False),
              help="With --events: a new folder for the Parquet scores (bring them into a "
                   "store with `anomalyst ingest-scores`).")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local",
              show_default=True,
              help="With --events: this process, or a Ray cluster (pip install "
                   "'anomalyst[scale]').")
@click.option("--address", default=None,
              help="With --engine ray: the cluster ('auto': the running one; default: start "
                   "a local one).")
@click.option("--partitions", type=int, default=None,
              help="With --events: user partitions (default: 1 locally, one per CPU of the "
                   "Ray cluster).")
@click.option("--map", "maps", multiple=True, metavar="CANONICAL=SOURCE",
              help="With --events: map a source column onto a canonical one (as ingest).")
@db_option
@wait_option
@user_errors
def score(model_id: str | None, detector: str | None, only_new: bool, events: tuple[str, ...],
          out: str | None, engine: str, address: str | None, partitions: int | None,
          maps: tuple[str, ...], db: str | None, wait_s: float) -> None:
    """Score sessions with a model (default: the latest model of every detector).

    With --events, score event files instead, partitioned by user (each user's history
    whole, each partition given the other users' sessions its cross-user features need),
    here or on a Ray cluster, and write Parquet scores to --out.
    """
    if events or out:
        from cli.scale import score_event_files

        score_event_files(model_id=model_id, detector=detector, only_new=only_new,
                          events=events, out=out, engine=engine, address=address,
                          partitions=partitions, maps=maps, db=db, wait_s=wait_s)
        return
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
    width = max([36, *(len(str(r["model_id"])) for r in results)])  # long detector names
    lines = [f"{'model':<{width}} {'n':>8} {'anom':>6} {'ROC-AUC':>8} {'AP':>7} {'bestF1':>7} "
             f"{'R@1%FPR':>8}"]
    for r in results:
        if "roc_auc" not in r:
            lines.append(f"{r['model_id']:<{width}} {r['n_sessions']:>8,} "
                         f"{r['n_anomalous']:>6,}  {r.get('note', '')}")
            continue
        lines.append(
            f"{r['model_id']:<{width}} {r['n_sessions']:>8,} {r['n_anomalous']:>6,} "
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


# --- anomalyst models list|show|compare|retire (issue #25) -----------------------------------
def _size(value: object) -> str:
    if not isinstance(value, int | float) or value != value:
        return "-"
    size = float(value)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024
    return "-"


def _short(value: object) -> str:
    return "-" if value is None or value != value else str(value)[:16].replace("T", " ")


@click.group()
def models() -> None:
    """The registered models: list, show, compare, retire."""


@models.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include retired models.")
@json_option()
@db_option
@wait_option
@user_errors
def list_models(show_all: bool, as_json: bool, db: str | None, wait_s: float) -> None:
    """Every model (retired ones with --all): detector, created, train end, scores, device,
    training time, size on disk, the policy using it."""
    with open_store(db, read_only=True, wait_s=wait_s) as store:
        frame = model_catalog.catalog(store, include_retired=show_all)
    if as_json:
        click.echo(json.dumps(model_catalog.json_ready(frame.to_dict(orient="records")),
                              indent=1, allow_nan=False))
        return
    if frame.empty:
        click.echo("No models." + ("" if show_all else " (Retired ones: --all.)"))
        return
    click.echo(f"{'model':<44} {'detector':<20} {'created':<16} {'train end':<16} "
               f"{'scores':>8} {'device':<6} {'train s':>8} {'size':>9}  policy")
    for r in frame.to_dict(orient="records"):
        seconds = "-" if r["train_seconds"] is None else f"{r['train_seconds']:.1f}"
        policy = r["policy"] + (" [retired]" if r["retired"] else "")
        click.echo(f"{r['model_id']:<44} {r['detector']:<20} {_short(r['created']):<16} "
                   f"{_short(r['train_end']):<16} {r['n_scores']:>8,} {r['device'] or '-':<6} "
                   f"{seconds:>8} {_size(r['size_bytes']):>9}  {policy}")


@models.command("show")
@click.argument("model_id")
@click.option("--labels", type=click.Choice(["both", "ground_truth", "analyst"]), default="both",
              show_default=True, help="Which labels the evaluation counts.")
@json_option()
@db_option
@wait_option
@user_errors
def show_model(model_id: str, labels: str, as_json: bool, db: str | None, wait_s: float) -> None:
    """MODEL_ID: its card (training, input, policy, retirement) and its evaluation on its own
    window (sessions after its train end)."""
    sources = ("ground_truth", "analyst") if labels == "both" else (labels,)
    with open_store(db, read_only=True, wait_s=wait_s) as store:
        card = model_catalog.describe(store, model_id)
        found = model_catalog.evaluation(store, model_id, sources)
    scalar = {k: v for k, v in found.items() if not hasattr(v, "to_dict")}
    if as_json:
        card["evaluation"] = {**scalar, **{k: v.to_dict(orient="records") for k, v in
                                           found.items() if hasattr(v, "to_dict")}}
        click.echo(json.dumps(model_catalog.json_ready(card), indent=1, allow_nan=False))
        return
    for key in ("model_id", "detector", "created", "train_start", "train_end", "n_train",
                "n_scores", "device", "train_seconds", "spec", "feature_hash", "digest",
                "policy", "risk_kind"):
        click.echo(f"{key:<14} {card.get(key) if card.get(key) not in (None, '') else '-'}")
    click.echo(f"{'size':<14} {_size(card.get('size_bytes'))}")
    if card.get("retired"):
        click.echo(f"{'retired':<14} {card.get('retired_at')} by {card.get('retired_by')}")
    history = card.get("history") or {}
    if history:
        click.echo("training      " + ", ".join(f"{k} {v}" for k, v in history.items()))
    curves = card.get("curves") or []
    for series in dict.fromkeys(c["series"] for c in curves):
        values = [c["value"] for c in curves if c["series"] == series]
        finite = [v for v in values if v is not None]
        if finite:
            click.echo(f"  {series}: {len(values)} checks, first {finite[0]:.4f}, last "
                       f"{finite[-1]:.4f}, best {min(finite):.4f}")
    click.echo(f"evaluation    {scalar['window']}: {scalar['n_sessions']:,} labelled sessions, "
               f"{scalar['n_anomalous']:,} anomalous")
    if "note" in scalar:
        click.echo(f"  {scalar['note']}")
        return
    click.echo(f"  ROC-AUC {scalar['roc_auc']:.3f}  AP {scalar['average_precision']:.3f}  "
               f"recall@1%FPR {scalar['recall_at_fpr']:.3f}" + (
                   f"  calibration error {scalar['ece']:.3f}" if scalar.get("ece") is not None
                   else ""))
    for name, value in sorted((scalar.get("recall_by_scenario") or {}).items()):
        click.echo(f"  recall {name}: {value:.2f}")


@models.command("compare")
@click.argument("model_a")
@click.argument("model_b")
@click.option("--labels", type=click.Choice(["both", "ground_truth", "analyst"]), default="both",
              show_default=True, help="Which labels the evaluation counts.")
@json_option()
@db_option
@wait_option
@user_errors
def compare_models(model_a: str, model_b: str, labels: str, as_json: bool, db: str | None,
                   wait_s: float) -> None:
    """MODEL_A and MODEL_B side by side, each evaluated on its own window."""
    sources = ("ground_truth", "analyst") if labels == "both" else (labels,)
    with open_store(db, read_only=True, wait_s=wait_s) as store:
        frame = model_catalog.compare(store, model_a, model_b, sources)
    if as_json:
        click.echo(json.dumps(model_catalog.json_ready(frame.to_dict()), indent=1,
                              allow_nan=False))
        return

    def cell(value: object) -> str:
        if isinstance(value, float):
            return "-" if value != value else f"{value:.4g}"
        return "-" if value is None or value == "" else str(value)

    click.echo(f"{'':<28} {model_a:<44} {model_b}")
    for prop, row in frame.iterrows():
        click.echo(f"{prop:<28} {cell(row[model_a]):<44} {cell(row[model_b])}")


@models.command("retire")
@click.argument("model_id")
@click.option("--undo", is_flag=True, help="Bring a retired model back.")
@analyst_option
@db_option
@wait_option
@user_errors
def retire_model(model_id: str, undo: bool, analyst: str | None, db: str | None,
                 wait_s: float) -> None:
    """Hide MODEL_ID from the default listings and pickers (never deleted); refused for the
    model the alert policy in force uses."""
    with open_store(db, wait_s=wait_s) as store:
        click.echo(model_catalog.retire(store, model_id, by=who(analyst), undo=undo))
