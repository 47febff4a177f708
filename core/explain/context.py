"""The numbers behind the reasons: a feature's value in the session, for the user and for all.

Features are stored transformed (``ln(1 + x)``, signed logs, sin/cos of the hour; see
docs/FEATURES.md); ``decode`` turns them back into counts, seconds, amounts and shares, and
``format_value`` writes them for people. The user's typical value is over the user's *other*
sessions (earlier and later); the population's is the median over a fixed sample of sessions.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.features.spec import OTHER_BUCKET

# kind, meaning. Kinds: count (additive per session), distinct (a count that does not add up
# across sessions), seconds, amount, share, flag, days, ratio (of amounts), number, hour.
BASE_TEXT: dict[str, tuple[str, str]] = {
    "n_events_log": ("count", "events"),
    "duration_log": ("seconds", "session length"),
    "gap_mean_log": ("seconds", "mean time between events"),
    "gap_std_log": ("seconds", "spread of the time between events"),
    "gap_min_log": ("seconds", "shortest time between events"),
    "gap_max_log": ("seconds", "longest time between events"),
    "gap_cv": ("number", "irregularity of the time between events (std / mean; ~0 = "
                         "machine-like)"),
    "amount_sum_log": ("amount", "total amount"),
    "amount_max_log": ("amount", "largest amount"),
    "amount_mean_log": ("amount", "mean amount"),
    "small_amount_share": ("share", "of amounts under 5"),
    "n_payment_failed_log": ("count", "failed payments"),
    "payment_failure_ratio": ("share", "of payment attempts failed"),
    "n_devices_log": ("distinct", "devices"),
    "n_ips_log": ("distinct", "IP addresses"),
    "n_countries_log": ("distinct", "countries"),
    "n_items_log": ("distinct", "distinct items"),
    "n_payment_ids_log": ("distinct", "payment methods"),
    "n_categories_log": ("distinct", "categories"),
    "n_user_agents_log": ("distinct", "browsers or apps"),
    "is_new_device": ("flag", "a device this user never used before"),
    "is_new_country": ("flag", "a country this user never came from before"),
    "is_new_payment_id": ("flag", "a payment method this user never used before"),
    "is_new_ip": ("flag", "an IP address this user never used before"),
    "amount_vs_user_max_log": ("ratio", "largest amount vs the user's earlier maximum"),
    "is_amount_above_user_max": ("flag", "an amount above every earlier one of this user"),
    "user_age_days_log": ("days", "account age"),
    "n_prev_sessions_log": ("distinct", "earlier sessions of the user"),
    "device_other_users_log": ("distinct", "other users on the same device"),
    "ip_other_users_log": ("distinct", "other users on the same IP address"),
    "hour_sin": ("hour", "start hour (UTC)"),
    "hour_cos": ("hour", "start hour (UTC)"),
    "is_night": ("flag", "a start between 00:00 and 06:00 UTC"),
    "is_weekend": ("flag", "a start on a weekend"),
    "text_share": ("share", "of events carry a text"),
    "text_len_mean_log": ("distinct", "characters per text (mean)"),
    "text_dup_share": ("share", "of texts also posted by other users"),
    "cart_qty_max_log": ("distinct", "units in the largest cart line"),
    "n_removed_after_add_log": ("count", "items added to the cart and removed again"),
    # text features (core.text), when the sentence model is installed
    "text_max_sim_other_users": ("number", "closest similarity of a text to another user's "
                                           "(cosine, 1 = the same text)"),
    "text_n_texts_log": ("count", "texts"),
}

CONTEXT_COLUMNS = ["feature", "meaning", "kind", "session_value", "user_value", "user_total",
                   "user_sessions", "population_value", "shap"]


_ENTITY_WORDS = {"device": "device", "ip": "IP address", "payment": "payment method",
                 "merchant": "merchant", "item": "item", "country": "country"}
_ENTITY_PLURAL = {"device": "devices", "ip": "IP addresses", "payment": "payment methods",
                  "merchant": "merchants", "item": "items", "country": "countries"}
_UNITS = {"m": "min", "h": "h", "d": "days"}
_HISTORY = re.compile(r"^(h[ue])_([a-z_]+?)(?:_log)?\[([^\]]+)\]$")


def _window(text: str) -> str:
    """'1d' -> 'the last day', '7d' -> 'the last 7 days', '30m' -> 'the last 30 min'."""
    found = re.fullmatch(r"(\d+)([mhd])", text.strip())
    if not found:
        return text
    n, unit = int(found.group(1)), found.group(2)
    if n == 1:
        return {"m": "the last minute", "h": "the last hour", "d": "the last day"}[unit]
    return f"the last {n} {_UNITS[unit]}"


def _history_text(name: str) -> tuple[str, str] | None:
    """(kind, meaning) of a history or entity feature (core/features/history.py)."""
    found = _HISTORY.match(name)
    if not found:
        return None
    scope, what, arg = found.groups()
    if scope == "hu":
        if "/" in arg:
            short, long = arg.split("/", 1)
            thing = "sessions" if what.startswith("sessions") else "amount"
            return "number", (f"{thing} in {_window(short)} against this user's usual rate over "
                              f"{_window(long)} (log ratio; 0 = as usual)")
        window = _window(arg)
        if what.startswith("distinct_"):
            entity = what[len("distinct_"):]
            return "distinct", f"{_ENTITY_PLURAL.get(entity, entity)} this user used in {window}"
        text = {"sessions": ("distinct", f"sessions of this user in {window}"),
                "payments": ("distinct", f"payments of this user in {window}"),
                "amount_sum": ("amount", f"total amount of this user in {window}"),
                "amount_mean": ("amount", f"mean amount of this user in {window}"),
                "amount_max": ("amount", f"largest amount of this user in {window}"),
                "amount_vs_mean": ("ratio", f"the session's mean amount vs this user's over "
                                            f"{window}")}
        return text.get(what)
    entity, _, window = arg.partition(",")
    on = f"the same {_ENTITY_WORDS.get(entity, entity)} in {_window(window)}"
    text = {"sessions": ("distinct", f"other sessions on {on}"),
            "users": ("distinct", f"users on {on}"),
            "amount": ("amount", f"amount on {on}"),
            "new_user_share": ("share", f"of sessions on {on} were new accounts"),
            "fraud_risk": ("share", f"of labelled sessions on {on} were fraud")}
    return text.get(what)


def describe(name: str) -> tuple[str, str]:
    """(kind, meaning) of a feature name, including ``count_log[t]``, ``share[t]`` and the
    history features (``hu_…``, ``he_…``)."""
    if name in BASE_TEXT:
        return BASE_TEXT[name]
    history = _history_text(name)
    if history is not None:
        return history
    if name.startswith("count_log[") and name.endswith("]"):
        kind = name[len("count_log["):-1]
        label = "events of other types" if kind == OTHER_BUCKET else f"{kind} events"
        return "count", label
    extra = _extra_text(name)
    if extra is not None:
        return extra
    if name.startswith("text_emb_"):
        return "number", f"text topic coordinate {name[len('text_emb_'):]} (sentence embedding)"
    if name.startswith("share[") and name.endswith("]"):
        kind = name[len("share["):-1]
        label = "other event types" if kind == OTHER_BUCKET else kind
        return "share", f"of events are {label}"
    return "number", name


def _extra_text(name: str) -> tuple[str, str] | None:
    """(kind, meaning) of an extra column's feature (core.features.extras), else None.

        >>> _extra_text("extra_rarity[browser]")
        ('rarity', 'share of training events with its rarest browser')
        >>> _extra_text("count_log[view]") is None
        True
    """
    head, sep, rest = name.partition("[")
    if not sep or not rest.endswith("]") or not head.startswith("extra_"):
        return None
    column = rest[:-1]
    text = {"extra_since_log": ("seconds", f"time from {column} to the event"),
            "extra_mean": ("number", column),
            "extra_min": ("number", f"lowest {column}"),
            "extra_max": ("number", f"highest {column}"),
            "extra_rarity": ("rarity", f"share of training events with its rarest {column}"),
            "extra_unseen_log": ("count", f"{column} values never seen in training")}
    return text.get(head)


def topic(name: str) -> str:
    """Features that say the same thing share a topic (one reason per topic).

        >>> topic("share[search]"), topic("amount_max_log") == topic("amount_mean_log")
        ('type:search', True)
    """
    for prefix in ("count_log[", "share["):
        if name.startswith(prefix):
            return "type:" + name[len(prefix):-1]
    return _SAME_TOPIC.get(name, name)


_SAME_TOPIC = {"n_payment_failed_log": "type:payment_failed", "hour_cos": "hour_sin",
               # the session's spend: one purchase makes its total, largest and mean equal
               "amount_max_log": "amount_sum_log", "amount_mean_log": "amount_sum_log"}


def decode(kind: str, values: np.ndarray) -> np.ndarray:
    """Transformed feature values back to plain units (hour handled by ``decode_hour``)."""
    values = np.asarray(values, dtype=np.float64)
    if kind in ("count", "distinct", "seconds", "days"):
        return np.expm1(np.maximum(values, 0.0))
    if kind == "amount":
        return np.sign(values) * np.expm1(np.abs(values))
    if kind == "ratio":
        return np.exp(values)  # slog(a) - slog(b) = ln((1 + a) / (1 + b)) for a, b >= 0
    if kind == "rarity":
        return np.exp(-values)  # -ln(share) -> the share
    return values


def decode_hour(sin: np.ndarray, cos: np.ndarray) -> float:
    """The circular mean hour (0-24) of (sin, cos) pairs; NaN for none."""
    sin, cos = np.asarray(sin, float), np.asarray(cos, float)
    if sin.size == 0:
        return float("nan")
    angle = math.atan2(float(sin.mean()), float(cos.mean()))
    return (angle / (2 * math.pi) * 24) % 24


def _duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds:.1f} s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} days"


def format_value(kind: str, value: float) -> str:
    """A decoded value for people: '7', '3 min', '1,250.00', '83%', 'yes', '03:40 UTC'."""
    if value is None or not math.isfinite(value):
        return "–"
    if kind in ("count", "distinct"):
        return f"{value:,.0f}" if abs(value - round(value)) < 0.05 else f"{value:,.1f}"
    if kind == "seconds":
        return _duration(value)
    if kind == "days":
        return f"{value:,.0f} days" if value >= 1.5 else f"{value * 24:.0f} h"
    if kind == "amount":
        return f"{value:,.2f}"
    if kind == "share":
        return f"{value * 100:.0f}%"
    if kind == "rarity":
        return f"{value * 100:.2g}%"
    if kind == "flag":
        return "yes" if value >= 0.5 else "no"
    if kind == "ratio":
        return f"{value:.1f}×"
    if kind == "hour":
        hours = int(value) % 24
        return f"{hours:02d}:{int(round((value - int(value)) * 60)) % 60:02d} UTC"
    return f"{value:.2f}"


@dataclass(frozen=True)
class Reference:
    """Feature rows of the session, the user's other sessions and a population sample.

    Attributes:
        names: feature names (columns).
        session: (f,) the session's row.
        user: (m, f) the user's other sessions; ``user_span_days`` their time span.
        population: (p, f) the population sample.
        duration_s: the session's length in seconds.
    """

    names: tuple[str, ...]
    session: np.ndarray
    user: np.ndarray
    population: np.ndarray
    user_span_days: float
    duration_s: float

    def column(self, name: str) -> int:
        return self.names.index(name)

    def row(self, name: str, shap: float = float("nan")) -> dict[str, object]:
        """One context row: decoded session, user (median and, for counts, total) and
        population (median; for flags the share of sessions) values."""
        kind, meaning = describe(name)
        if kind == "hour":
            i, j = self.column("hour_sin"), self.column("hour_cos")
            session = decode_hour(self.session[[i]], self.session[[j]])
            user = decode_hour(self.user[:, i], self.user[:, j])
            population = decode_hour(self.population[:, i], self.population[:, j])
            total = float("nan")
        else:
            i = self.column(name)
            session = float(decode(kind, self.session[[i]])[0])
            user_values = decode(kind, self.user[:, i])
            pop_values = decode(kind, self.population[:, i])
            summary = np.mean if kind == "flag" else np.median
            user = float(summary(user_values)) if len(user_values) else float("nan")
            population = float(summary(pop_values)) if len(pop_values) else float("nan")
            total = float(user_values.sum()) if kind == "count" and len(user_values) else (
                float("nan"))
        return {"feature": name, "meaning": meaning, "kind": kind, "session_value": session,
                "user_value": user, "user_total": total, "user_sessions": len(self.user),
                "population_value": population, "shap": shap}

    def table(self, names: list[str], shap: dict[str, float] | None = None) -> pd.DataFrame:
        """Context rows for ``names`` (in the given order; hour_sin/hour_cos give one row)."""
        rows, seen = [], set()
        for name in names:
            key = "hour" if describe(name)[0] == "hour" else name
            if name not in self.names or key in seen:
                continue
            seen.add(key)
            rows.append(self.row(name, (shap or {}).get(name, float("nan"))))
        return pd.DataFrame(rows, columns=CONTEXT_COLUMNS)


def display_table(context: pd.DataFrame) -> pd.DataFrame:
    """The context as strings for a page or report: feature, meaning, session, this user
    (typical), all sessions (typical), SHAP."""
    if context.empty:
        return pd.DataFrame(columns=["feature", "meaning", "session", "this user (typical)",
                                     "all sessions (typical)", "SHAP"])
    out = pd.DataFrame({
        "feature": context["feature"], "meaning": context["meaning"],
        "session": [format_value(k, v) for k, v in zip(context["kind"],
                                                       context["session_value"], strict=True)],
        "this user (typical)": [
            "no other sessions" if n == 0 else
            (f"{v * 100:.0f}% of sessions" if k == "flag" else format_value(k, v))
            for k, v, n in zip(context["kind"], context["user_value"],
                               context["user_sessions"], strict=True)],
        "all sessions (typical)": [
            f"{v * 100:.0f}% of sessions" if k == "flag" else format_value(k, v)
            for k, v in zip(context["kind"], context["population_value"], strict=True)],
        "SHAP": [None if v is None or not math.isfinite(float(v)) else round(float(v), 4)
                 for v in context["shap"]],
    })
    return out if out["SHAP"].notna().any() else out.drop(columns="SHAP")
