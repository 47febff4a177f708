"""Small helpers shared by pages: global choices and the empty-store guidance."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import safe_text as safe
from dashboard import services, state


def label_sources() -> tuple[str, ...]:
    return services.label_sources(state.get(state.LABEL_CHOICE, "both"))


def analyst() -> str:
    """The signed-in user's name, or (sign-in off) the name typed in the sidebar."""
    from dashboard import auth

    return auth.current().name


def analyst_name() -> str:
    """The analyst's name, or '' while nobody is named (sign-in off, empty sidebar)."""
    from dashboard import auth

    principal = auth.current()
    return principal.name if principal.authenticated else state.analyst_typed()


def may(action: str) -> tuple[bool, safe.Markdown | None]:
    """(allowed, why not): whether this user may do ``action``, by role alone, and the reason
    shown on a disabled button."""
    from dashboard import auth

    why = auth.why_not(action)
    return why is None, why


def scored_models_or_stop() -> pd.DataFrame:
    """The scored models; explains what to run and stops the page when there are none."""
    path = services.db_path()
    if not services.store_exists():
        st.info(safe.fmt(
            "No store at {path} yet. Build the demo store with `anomalyst demo`, or bring "
            "your own data: {cmd}.", path=path, cmd=f"anomalyst ingest events.csv --db {path}"))
        st.stop()
    models = services.safely(lambda: services.models(*services.key()), "read the models")
    if models is None:
        st.stop()
    if models.empty:
        st.info(safe.fmt(
            "The store has no scored models yet. Train and score one: {train}, then {score}.",
            train=f"anomalyst train --detector autoencoder --db {path}",
            score=f"anomalyst score --db {path}"))
        st.stop()
    return models


def model_label(models: pd.DataFrame):
    """Format function for model pickers: 'detector · model id'."""
    names = dict(zip(models["model_id"], models["detector"], strict=True))
    return lambda model_id: f"{names.get(model_id, '?')} · {model_id}"


def policy_caption() -> safe.Markdown:
    """'Alert policy v3 (ensemble, `m-…`): risk = …': what decides "flagged", and what the
    risk number means (a probability or a training percentile)."""
    key = services.key()
    policy = services.policy(*key)
    if policy is None:
        return safe.Markdown("No alert policy is in force: nothing is scored.")
    _, text = services.risk_kind_text(*key, policy.model_id)
    # the sentence is the program's own (core.app.policy.RISK_KIND_TEXT), not stored input
    return safe.fmt("Alert policy v{v} ({detector}, {model}): {text}.", v=policy.version,
                    detector=safe.prose(policy.detector or "?"), model=policy.model_id,
                    text=safe.Markdown(text.replace("=", "is")))


def preferred_index(models: pd.DataFrame) -> int:
    """Position of the newest model of the most preferred detector present, else the last."""
    detectors = list(models["detector"])
    for name in services.preferred_detectors():
        if name in detectors:
            return len(detectors) - 1 - detectors[::-1].index(name)
    return len(detectors) - 1


def number(value: float, digits: int) -> str:
    """A metric value, or '–' when it is undefined (no labels, nothing flagged)."""
    return "–" if value != value else f"{value:.{digits}f}"


def when(iso: str | None) -> str:
    """'2026-09-01 00:32' from an ISO timestamp; '–' for none."""
    return "–" if not iso else iso.replace("T", " ")[:16]
