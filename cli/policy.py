"""``anomalyst policy show|set|history``: the alert policy, the one definition of "flagged"."""

from __future__ import annotations

import json
import math

import click

from cli.errors import user_errors
from cli.options import analyst_option, db_option, json_option, wait_option, who
from core.app import ConfigError
from core.app import policy as app_policy
from core.app.data import open_store


@click.group()
def policy() -> None:
    """Show, publish and list versions of the alert policy."""


@policy.command("show")
@json_option()
@db_option
@wait_option
@user_errors
def show_cmd(as_json: bool, db: str | None, wait_s: float) -> None:
    """The policy in force: its version, model, thresholds, budget and what risk means."""
    with open_store(db, read_only=True, wait_s=wait_s) as store:
        current = app_policy.in_force(store)
        calibration = (app_policy.risk_calibration(store, current.model_id)
                       if current is not None else None)
    if current is None:
        raise ConfigError("no policy yet: nothing is scored. Run `anomalyst train` and "
                          "`anomalyst score` first.")
    data = current.to_dict() | {"risk": app_policy.risk_kind_text(calibration)}
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
        return
    click.echo(format_policy(data))


def format_policy(data: dict) -> str:
    """A few lines a person reads."""
    version = data["version"]
    head = (f"Policy v{version}" + (" (default, never published)" if version == 0 else
            f", published by {data['published_by']} at {data['published_at']}"))
    default = data["default_threshold"]
    lines = [head, f"  model: {data['model_id']} ({data['detector']})"]
    for segment, value in data["thresholds"].items():
        lines.append(f"  threshold {segment}: {value:g}")
    lines.append("  elsewhere: the model's operating point "
                 + (f"{default:g}" if default is not None else "(none)"))
    budget = data["daily_budget"]
    lines.append(f"  daily budget: {budget} alerts" if budget else "  daily budget: none")
    if data.get("note"):
        lines.append(f"  note: {data['note']}")
    lines.append(f"  {data['risk']}")
    return "\n".join(lines)


def _parse_thresholds(values: tuple[str, ...]) -> dict[str, float]:
    """'all=0.9', 'country:DE=1.2' -> {segment: value}."""
    out: dict[str, float] = {}
    for item in values:
        segment, sep, number = item.rpartition("=")
        try:
            value = float(number)
        except ValueError:
            value = math.nan
        if not sep or not segment or not math.isfinite(value):
            raise ConfigError(f"--threshold must look like SEGMENT=NUMBER (e.g. all=0.9 or "
                              f"country:DE=1.5), got {item!r}.")
        out[segment.strip()] = value
    return out


@policy.command("set")
@click.option("--model", "model_id", default=None,
              help="The model whose score decides (default: the one in force).")
@click.option("--threshold", "thresholds", multiple=True, metavar="SEGMENT=NUMBER",
              help="A threshold for a segment (all, tenure:new, tenure:returning, "
                   "country:XX); repeat for several. Unset segments use the model's "
                   "operating point.")
@click.option("--budget", "daily_budget", type=int, default=None,
              help="At most this many alerts a day (the highest risk first).")
@click.option("--note", default="", help="Why this version (kept in the history).")
@analyst_option
@db_option
@wait_option
@user_errors
def set_cmd(model_id: str | None, thresholds: tuple[str, ...], daily_budget: int | None,
            note: str, analyst: str | None, db: str | None, wait_s: float) -> None:
    """Publish a new version of the policy (audited) and print it."""
    parsed = _parse_thresholds(thresholds)
    name = who(analyst)
    if not name:
        raise ConfigError("the analyst must be named: pass --analyst NAME or set "
                          "$ANOMALYST_ANALYST.")
    with open_store(db, wait_s=wait_s) as store:
        if model_id is None:
            current = app_policy.in_force(store)
            if current is None:
                raise ConfigError("--model is required: nothing is scored yet.")
            model_id = current.model_id
        published = app_policy.publish(store, analyst=name, model_id=model_id,
                                       thresholds=parsed, daily_budget=daily_budget,
                                       note=note)
    click.echo(f"Published policy v{published.version} on {published.model_id}.")


@policy.command("history")
@json_option()
@db_option
@wait_option
@user_errors
def history_cmd(as_json: bool, db: str | None, wait_s: float) -> None:
    """Every published version, newest first."""
    with open_store(db, read_only=True, wait_s=wait_s) as store:
        rows = app_policy.history(store)
    records = [{"version": r.version, "model_id": r.model_id, "detector": r.detector,
                "thresholds": r.thresholds, "daily_budget": r.daily_budget,
                "published_by": r.published_by, "published_at": r.published_at.isoformat(),
                "note": r.note} for r in rows]
    if as_json:
        click.echo(json.dumps(records, indent=2))
        return
    if not records:
        click.echo("No policy published yet: the default (version 0) is in force. "
                   "See `anomalyst policy show`.")
        return
    for r in records:
        shown = ", ".join(f"{k}={v:g}" for k, v in r["thresholds"].items()) or "operating point"
        budget = f", budget {r['daily_budget']}/day" if r["daily_budget"] else ""
        click.echo(f"v{r['version']}  {r['published_at']}  {r['published_by']}  "
                   f"{r['model_id']}: {shown}{budget}  {r['note']}")
