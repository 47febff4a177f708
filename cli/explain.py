"""CLI command ``anomalyst explain SESSION_ID``: why the session was flagged.

Without ``--model`` it prints the combined Why (the reasons across the models that flag the
session, by their share of the risk) and then the view of the model weighing most in it; with
``--model`` only that model's view."""

from __future__ import annotations

import json

import click

from cli.errors import user_errors
from cli.options import db_option, json_option, wait_option
from core.app.data import open_store

N_FEATURES = 10
N_EVENTS = 5


@click.command()
@click.argument("session_id")
@click.option("--model", "model_id", default=None,
              help="Explain under this model only (default: the combined Why across the models "
                   "that flag the session, then the model weighing most in it).")
@json_option("Print the whole explanation as JSON.")
@click.option("--no-cache", is_flag=True, help="Recompute even when a cached explanation exists.")
@db_option
@wait_option
@user_errors
def explain(session_id: str, model_id: str | None, as_json: bool, no_cache: bool,
            db: str | None, wait_s: float) -> None:
    """Explain SESSION_ID: the combined Why, then top features (SHAP) and events per method."""
    from core.app.investigate import explain_session, why_saved

    why = None
    with open_store(db, wait_s=wait_s) as store:
        if model_id is None:
            found = why_saved(store, session_id, use_cache=not no_cache)
            why = found.why
            model_id = why.models[0].model_id if why.models else None
            explanation = found.explanations.get(model_id) if model_id else None
        if why is None or explanation is None:
            explanation = explain_session(store, session_id, model_id=model_id,
                                          use_cache=not no_cache)
    if as_json:
        whole = explanation.to_dict()
        if why is not None:
            whole["why"] = why.to_dict()
        click.echo(json.dumps(whole, indent=1, allow_nan=False))
        return
    if why is not None:
        click.echo(format_why(why))
    click.echo(format_explanation(explanation))


def format_why(why) -> str:  # noqa: ANN001  (a core.explain.Why)
    """The combined reasons, with the models they come from."""
    models = ", ".join(f"{m.detector} {m.model_id} ({m.weight * 100:.0f}%)" for m in why.models)
    lines = [f"Why session {why.session_id} (user {why.user_id}) stands out, across {models}:"]
    lines += [f"  - {line}" for line in why.lines()] or ["  (no reason above 3% of the risk)"]
    lines += [f"  ({note})" for note in why.notes]
    return "\n".join(lines) + "\n"


def format_explanation(explanation) -> str:  # noqa: ANN001  (a SessionExplanation)
    """The human-readable page: header, reasons, top features, top events per method."""
    from core.app.investigate import METHOD_TEXT, display_table

    e = explanation
    lines = [f"Session {e.session_id} (user {e.user_id}) under {e.detector} model {e.model_id}"]
    head = f"  score {e.score:.4g}"
    if e.percentile is not None:
        head += f" · percentile {e.percentile:.1f}"
    if e.threshold is not None:
        head += f" · {'FLAGGED' if e.is_flagged else 'not flagged'} at threshold {e.threshold:.4g}"
    lines.append(head)
    if e.members is not None and not e.members.empty:
        lines.append("\nEnsemble members (contributions sum to the score):")
        for r in e.members.to_dict(orient="records"):
            lines.append(f"  {r['detector']:<24} {r['contribution']:>10.4g}  ({r['member_id']})")
    lines.append("\nWhy:")
    lines += [f"  - {reason}" for reason in e.reasons] or ["  (no reason stands out)"]
    if e.features is not None:
        f = e.features
        lines.append(
            f"\nTop features by |SHAP| ({f.model_id}): base {f.base_value:.4g} + contributions "
            f"= {f.score:.4g} (additivity error {f.additivity_error:.1e}; {f.n_background} "
            "background sessions)")
        context = display_table(e.context).set_index("feature")
        for r in f.top(N_FEATURES).to_dict(orient="records"):
            extra = ""
            if r["feature"] in context.index:
                c = context.loc[r["feature"]]
                extra = (f"  session {c['session']}, user {c['this user (typical)']}, "
                         f"all {c['all sessions (typical)']}")
            lines.append(f"  {r['feature']:<32} {r['shap']:>+10.4f}{extra}")
    for method in [m for m in METHOD_TEXT if m in e.event_contributions]:
        lines.append(f"\nTop events by {method} ({METHOD_TEXT[method]}):")
        for r in e.top_events(method, N_EVENTS).to_dict(orient="records"):
            when = "" if r.get("ts") is None else f" {str(r['ts'])[:19]}"
            lines.append(f"  #{int(r['position']) + 1:<4} {str(r['event_type']):<20}"
                         f"{when}  {r['contribution']:+.4g}")
    for note in e.notes:
        lines.append(f"\nNote: {note}")
    origin = "cached" if e.from_cache else "computed"
    lines.append(f"\n({origin} {e.computed_at:%Y-%m-%d %H:%M:%S} UTC)")
    return "\n".join(lines)
