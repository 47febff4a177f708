"""Plain-language reasons: the top contributions as sentences with the numbers, the user's own
baseline and the population's typical value.

    >>> row = {"feature": "n_payment_failed_log", "meaning": "failed payments", "kind": "count",
    ...        "session_value": 7.0, "user_value": 0.0, "user_total": 0.0, "user_sessions": 12,
    ...        "population_value": 0.0}
    >>> feature_sentence(row, duration_s=180.0, user_span_days=9.0)
    '7 failed payments in 3 min (this user: 0 in 12 other sessions over 9 days; typical session: 0)'
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd

from core.explain.context import _duration, format_value, topic

N_REASONS = 3

FLAG_PHRASES: dict[str, str] = {
    "is_new_device": "on a device this user never used before",
    "is_new_country": "from a country this user never came from before",
    "is_new_payment_id": "with a payment method this user never used before",
    "is_new_ip": "from an IP address this user never used before",
    "is_amount_above_user_max": "with an amount above every earlier one of this user",
    "is_night": "started between 00:00 and 06:00 UTC",
    "is_weekend": "started on a weekend",
}


_SINGULAR = {"events": "event", "payments": "payment", "devices": "device",
             "addresses": "address", "countries": "country", "items": "item",
             "methods": "method", "categories": "category", "browsers": "browser",
             "apps": "app", "sessions": "session", "users": "user", "units": "unit",
             "characters": "character"}


def _number_agrees(meaning: str, value: float) -> str:
    """'1 other users on the same device' -> '1 other user on the same device'."""
    if format_value("count", value) != "1":
        return meaning
    return " ".join(_SINGULAR.get(word, word) for word in meaning.split(" "))


def _span(days: float) -> str:
    if not math.isfinite(days):
        return ""
    return f" over {days:.0f} days" if days >= 1.5 else f" over {days * 24:.0f} h"


def _subject(row: dict[str, Any], duration_s: float) -> str:
    kind, meaning, value = row["kind"], row["meaning"], float(row["session_value"])
    text = format_value(kind, value)
    if kind == "count":
        within = f" in {_duration(duration_s)}" if duration_s > 0 else ""
        return f"{text} {_number_agrees(meaning, value)}{within}"
    if kind == "distinct":
        return f"{text} {_number_agrees(meaning, value)}"
    if kind == "share":
        return f"{text} {meaning}"
    if kind == "flag":
        phrase = FLAG_PHRASES.get(str(row["feature"]), meaning)
        return f"Session {phrase}" if value >= 0.5 else f"Session not {phrase}"
    if kind == "hour":
        return f"Started at {text}"
    if kind == "ratio":
        return f"{meaning[0].upper()}{meaning[1:]}: {text}"
    return f"{meaning[0].upper()}{meaning[1:]} {text}"


def _user_part(row: dict[str, Any], user_span_days: float) -> str:
    n = int(row["user_sessions"])
    if n == 0:
        return "this user has no other sessions"
    sessions = "other session" if n == 1 else "other sessions"
    kind = row["kind"]
    if kind == "count":
        return (f"this user: {format_value(kind, float(row['user_total']))} in {n} {sessions}"
                f"{_span(user_span_days)}")
    if kind == "flag":
        return f"this user: {round(float(row['user_value']) * n)} of {n} {sessions}"
    return f"this user usually: {format_value(kind, float(row['user_value']))}, over {n} {sessions}"


def _population_part(row: dict[str, Any]) -> str:
    value = float(row["population_value"])
    if row["kind"] == "flag":
        return f"{value * 100:.0f}% of all sessions" if math.isfinite(value) else "no population"
    return f"typical session: {format_value(row['kind'], value)}"


def feature_sentence(row: dict[str, Any], *, duration_s: float, user_span_days: float) -> str:
    """One context row as a sentence: value, the user's baseline, the population's."""
    return (f"{_subject(row, duration_s)} ({_user_part(row, user_span_days)}; "
            f"{_population_part(row)})")


def feature_reasons(context: pd.DataFrame, *, duration_s: float, user_span_days: float,
                    k: int = N_REASONS) -> list[str]:
    """Sentences for the ``k`` context rows with the largest positive SHAP value."""
    if context.empty:
        return []
    rows = context[context["shap"].fillna(0) > 0].sort_values("shap", ascending=False,
                                                               kind="stable")
    # count_log[t], share[t] and n_payment_failed_log say one thing: one sentence per topic,
    # topics ordered by their largest SHAP, told as a count when the topic has one.
    by_topic: dict[str, list[dict[str, Any]]] = {}
    for r in rows.to_dict(orient="records"):
        by_topic.setdefault(topic(str(r["feature"])), []).append(r)
    out = []
    for group in list(by_topic.values())[:k]:
        counts = [r for r in group if r["kind"] == "count"]
        chosen = counts[0] if counts else group[0]
        out.append(feature_sentence(chosen, duration_s=duration_s,
                                    user_span_days=user_span_days))
    return out


def _event_label(event: dict[str, Any], k: int) -> str:
    parts = [str(event["event_type"])]
    ts = event.get("ts")
    if ts is not None and not pd.isna(ts):
        parts.append(f"at {pd.Timestamp(ts):%H:%M:%S}")
    text = " ".join(parts)
    amount = event.get("amount")
    if amount is not None and not pd.isna(amount):
        text += f", amount {float(amount):,.2f}"
    return f"event {int(event['position']) + 1} of {k} ({text})"


def event_reasons(events: pd.DataFrame, contributions: dict[str, np.ndarray], score: float,
                  *, k: int = N_REASONS, units: str = "score") -> list[str]:
    """Sentences about the events that raise the score most (occlusion first, in ``units``,
    with ``score`` in them: the score or its log-odds), then the worst-reconstructed event
    when the model reports per-event errors."""
    what = "the log-odds" if units == "log-odds" else "the score"
    out: list[str] = []
    n = len(events)
    if n == 0:
        return out
    drop = contributions.get("occlusion")
    if drop is not None and len(drop) == n:
        best = int(np.nanargmax(drop))
        order = np.argsort(-np.nan_to_num(drop, nan=-np.inf), kind="stable")[:k]
        top = [int(i) for i in order if drop[i] > 0]
        if drop[best] > 0:
            event = events.iloc[best].to_dict()
            if n == 1:
                out.append(f"The session's only event, {_event_label(event, n)}, carries "
                           f"{what} {score:.3g}.")
            else:
                share = drop[best] / score * 100 if score > 0 else float("nan")
                share_text = "" if not math.isfinite(share) else (
                    f" ({share:.0f}% of it)" if share >= 1 else f" ({share:.2g}% of it)")
                # Enough digits that the two scores differ when printed.
                digits = max(3, 1 + int(np.ceil(np.log10(max(abs(score), 1e-12)
                                                         / max(drop[best], 1e-12)))))
                label = _event_label(event, n)
                out.append(f"{label[0].upper()}{label[1:]} raises {what} most: without it "
                           f"{what} falls from {score:.{digits}g} to "
                           f"{score - drop[best]:.{digits}g}{share_text}.")
            if len(top) > 1:
                types = Counter(str(events.iloc[i]["event_type"]) for i in top)
                listed = ", ".join(f"{c}× {t}" for t, c in types.most_common())
                out.append(f"The {len(top)} events that raise {what} most: {listed}.")
        else:
            out.append(f"No single event raises {what}: removing any one of the {n} events "
                       f"changes it by at most {np.nanmax(np.abs(drop)):.3g}.")
    for method in ("reconstruction_error", "surprise", "event_head"):
        values = contributions.get(method)
        if values is None or len(values) != n or not np.isfinite(values).any():
            continue
        worst = int(np.nanargmax(values))
        median = float(np.nanmedian(values))
        label = _event_label(events.iloc[worst].to_dict(), n)
        ratio = f", {values[worst] / median:.1f}× the session's median event" if (
            median > 0) else ""
        if method == "reconstruction_error":
            out.append(f"The model reconstructs {label} worst: error {values[worst]:.3g}"
                       f"{ratio}.")
        elif method == "surprise":
            out.append(f"The model is most surprised by {label}: -log p = "
                       f"{values[worst]:.3g}{ratio}.")
        else:
            out.append(f"The event head rates {label} most likely anomalous: "
                       f"p = {values[worst]:.2f}.")
    return out


def member_reason(members: pd.DataFrame, score: float, k: int = N_REASONS) -> str | None:
    """'Ensemble score 0.93: autoencoder 0.51 (55%), transformer 0.30 (32%), ...'."""
    if members is None or members.empty:
        return None
    top = members.sort_values("contribution", ascending=False, kind="stable").head(k)
    parts = []
    for row in top.to_dict(orient="records"):
        share = row["contribution"] / score * 100 if score else float("nan")
        pct = f" ({share:.0f}%)" if math.isfinite(share) else ""
        parts.append(f"{row['detector']} {row['contribution']:.3g}{pct}")
    return f"Ensemble score {score:.3g}, by member: " + ", ".join(parts) + "."
