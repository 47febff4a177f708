"""The User 360 view: one user's sessions with risk (0-100), the policy's verdict and the
analysts' decisions; their linked accounts' highest risk and decisions; the cases of both;
amounts with a currency.

    policy = core.app.policy.in_force(store)
    view = user360(store, "u42", policy, linked_ids=["u7", "u9"])
    points, buckets = thin_points(view.sessions, focus="s-17")    # bounded for a chart

Risk is read only for the sessions of the users asked for (the policy's model's scores of
those sessions, with the segment columns its thresholds read), not from the store-wide risk
table: a first render at a million sessions reads a few hundred rows, not a million. The
verdict is the policy's (``AlertPolicy.flags``); with a daily budget, the other sessions of
the same days that score at or above the policy's lowest threshold are read too, so the
budget ranks a user's session among the same alerts as the queue does.

Decisions:

- *Decision of a session*: the analysts' label (the rollup of decided cases, and of analyst
  labels ingested as such) first: ``fraud`` or ``not fraud``; else the latest decided case
  holding the session (``inconclusive`` included). A user's decision (linked accounts): the
  latest decided case naming the user or holding one of their sessions, else their analyst
  labels (any fraud label: ``fraud``; else ``not fraud``).
- *Risk of a linked user*: the highest risk of their sessions (the risk of their highest
  score: risk is monotone in the score), as ``core.risk.user_risk`` defines a user's risk.
- *Focus*: the session asked for in the URL; without one, the user's highest-risk flagged
  session; without a flagged session, the whole span (no zoom).
- *Currency*: the canonical schema has no currency column. An event's own currency is the
  ``currency`` (or ``Currency``, ``currency_code``) column of its source file, kept in the
  event's ``extra``; events without one are in the store's display currency, the
  ``schema_meta`` key ``display_currency`` (an ISO 4217 code, set with
  :func:`set_display_currency`); without either, amounts are shown as
  "(currency not set)": no currency is ever assumed.
- *Bounds*: at most ``MAX_SESSIONS`` of a user's newest sessions are read (the page says
  when it cut); charts draw at most ``MAX_POINTS`` session points, the rest as the highest
  risk per time bucket, flagged, decided and focus sessions kept as points
  (:func:`thin_points`); at most ``MAX_CASES`` cases and the amounts of ``MAX_AMOUNT_ROWS``
  sessions (else days).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from core.policy import AlertPolicy
    from core.store import Store

__all__ = ["CURRENCY_NOT_SET", "MAX_AMOUNT_ROWS", "MAX_CASES", "MAX_POINTS", "MAX_SESSIONS",
           "User360", "currency_label", "decision_of_session", "decision_of_user",
           "display_currency", "focus_window", "set_display_currency", "thin_points",
           "user360"]

MAX_SESSIONS = 100_000
"""A user's newest sessions read for risk; beyond this the page says it cut."""
MAX_POINTS = 2_000
"""Session points a chart draws one by one; beyond, the highest risk per time bucket."""
MAX_KEPT = 1_000
"""Flagged, decided and focus sessions drawn as points even when the rest is bucketed."""
MAX_CASES = 200
MAX_AMOUNT_ROWS = 5_000
CURRENCY_NOT_SET = "(currency not set)"
MIN_PAD = pd.Timedelta("30min")
"""The least padding each side of the focus session in the timeline's first range."""
BUCKETS = (("hour", "1h"), ("day", "1D"), ("week", "7D"), ("30 days", "30D"),
           ("year", "365D"))
FRAUD, NOT_FRAUD, INCONCLUSIVE = "fraud", "not fraud", "inconclusive"
_CASE_DECISIONS = {"fraud_confirmed": FRAUD, "false_positive": NOT_FRAUD,
                   "inconclusive": INCONCLUSIVE}
SESSION_COLUMNS = ["session_id", "start_ts", "end_ts", "n_events", "risk", "flagged",
                   "decision", "decided_case", "open_case", "country", "tenure", "score"]


@dataclass(frozen=True)
class User360:
    """What the User 360 view draws of one user, each table bounded."""

    user_id: str
    sessions: pd.DataFrame
    """SESSION_COLUMNS of the user's newest sessions (at most MAX_SESSIONS), in time order:
    risk 0-100 (NaN unscored or without a calibration), flagged (the policy's verdict),
    decision ('fraud', 'not fraud', 'inconclusive' or None)."""
    n_sessions: int
    linked: pd.DataFrame
    """user_id, n_sessions, max_risk, decision, decided_case, fraud_labels, normal_labels of
    the user (first row) and each linked user asked for (without any, the user's row is
    taken from the sessions read)."""
    cases: pd.DataFrame
    """case_id, user, relation ('this user' / 'linked'), status, decision, scenario,
    updated, n_sessions, title: newest change first, at most MAX_CASES."""
    amounts: pd.DataFrame
    """session_id or day, ts, currency (resolved: the event's, else the store's, else
    CURRENCY_NOT_SET), amount: newest first, at most MAX_AMOUNT_ROWS."""
    amounts_per: str  # 'session' or 'day'
    totals: pd.DataFrame
    """currency (resolved), amount, n_amounts of all the user's amounts."""
    store_currency: str | None
    risk_model: str | None
    policy_version: int | None = None
    daily_budget: int | None = None
    sessions_cut: bool = False
    cases_cut: bool = False


# --- decisions ----------------------------------------------------------------------------------
def decision_of_session(analyst_is_anomaly: pd.Series, case_decision: pd.Series) -> pd.Series:
    """'fraud' / 'not fraud' from the analyst label, else the decided case's decision, else
    None (see the module's decisions)."""
    label = analyst_is_anomaly.map(lambda v: None if v is None or v is pd.NA or v != v
                                   else (FRAUD if bool(v) else NOT_FRAUD))
    case = case_decision.map(lambda v: _CASE_DECISIONS.get(v) if isinstance(v, str) else None)
    out = label.where(label.notna(), case)
    return out.astype(object).where(out.notna(), None)


def decision_of_user(latest_decision: object, fraud_labels: int, normal_labels: int,
                     user_label: object = None) -> str | None:
    """A user's decision: the latest decided case's, else analyst labels', else None."""
    if isinstance(latest_decision, str) and latest_decision in _CASE_DECISIONS:
        return _CASE_DECISIONS[latest_decision]
    if fraud_labels or user_label is True:
        return FRAUD
    if normal_labels or user_label is False:
        return NOT_FRAUD
    return None


# --- the view -----------------------------------------------------------------------------------
def user360(store: Store, user_id: str, policy: AlertPolicy | None, *,
            linked_ids: Sequence[str] = (), max_sessions: int = MAX_SESSIONS,
            max_cases: int = MAX_CASES, max_amount_rows: int = MAX_AMOUNT_ROWS) -> User360:
    """The User 360 view of ``user_id`` under ``policy`` (None: nothing is scored)."""
    from core.policy import risk_calibration

    user_id = str(user_id)
    model_id = None if policy is None else policy.model_id
    history = store.user_history
    raw = history.sessions(user_id, model_id, limit=max_sessions)
    n_sessions = store.users.counts(user_id)[1] if len(raw) >= max_sessions else len(raw)
    calibration = None if model_id is None else risk_calibration(store, model_id)
    sessions = _with_risk(store, raw, policy, calibration)

    ids = [user_id, *(str(u) for u in linked_ids if str(u) != user_id)]
    # without linked accounts the user's own row comes from the sessions read (no query)
    linked = (_linked(history.users_summary(ids, model_id), ids, calibration) if len(ids) > 1
              else _own_row(user_id, sessions, n_sessions))
    cases = history.cases(ids, limit=max_cases)
    cases = _cases(cases, user_id)

    currency = history.display_currency()
    n_amount_rows = max_amount_rows + 1
    per = "session" if n_sessions <= max_amount_rows else "day"
    amounts = history.amounts(user_id, per=per, limit=n_amount_rows)
    if per == "session" and len(amounts) > max_amount_rows:  # a session in two currencies
        per = "day"
        amounts = history.amounts(user_id, per=per, limit=n_amount_rows)
    cut = len(amounts) > max_amount_rows
    amounts = amounts.head(max_amount_rows)
    amounts["currency"] = _resolved(amounts["currency"], currency)
    # every amount is in the rows read unless they were cut: no second scan of the events
    totals = history.amount_totals(user_id) if cut else amounts[
        ["currency", "amount", "n_amounts"]].copy()
    totals["currency"] = _resolved(totals["currency"], currency)
    totals = (totals.groupby("currency", as_index=False, sort=False)
              [["amount", "n_amounts"]].sum())
    return User360(
        user_id=user_id, sessions=sessions, n_sessions=int(n_sessions), linked=linked,
        cases=cases, amounts=amounts, amounts_per=per, totals=totals, store_currency=currency,
        risk_model=model_id, policy_version=None if policy is None else policy.version,
        daily_budget=None if policy is None else policy.daily_budget,
        sessions_cut=n_sessions > len(sessions), cases_cut=len(cases) >= max_cases)


def _with_risk(store: Store, raw: pd.DataFrame, policy: AlertPolicy | None,
               calibration: object) -> pd.DataFrame:
    out = raw.copy()
    scores = pd.to_numeric(out["score"], errors="coerce").to_numpy(np.float64)
    out["score"] = scores
    out["risk"] = (calibration.risk(scores) if calibration is not None  # type: ignore[attr-defined]
                   else np.full(len(out), np.nan))
    out["flagged"] = _flags(store, out, policy) if policy is not None else False
    out["decision"] = decision_of_session(out["analyst_is_anomaly"], out["case_decision"])
    for column in ("decided_case", "open_case"):
        out[column] = out[column].astype(object).where(out[column].notna(), None)
    return out[SESSION_COLUMNS].reset_index(drop=True)


def _flags(store: Store, sessions: pd.DataFrame, policy: AlertPolicy) -> np.ndarray:
    """The policy's verdict on ``sessions`` (score, tenure, country, start_ts): as on the
    store-wide risk table, the daily budget ranking each day's alerts of every user."""
    column = f"score:{policy.model_id}"
    table = sessions.rename(columns={"score": column})
    if policy.daily_budget is None:
        return policy.flags(table)
    over = policy.with_budget(None).flags(table)
    if not over.any():
        return over
    days = days_of(sessions[over])
    day = store.user_history.day_candidates(policy.model_id, policy.lowest_threshold(), days)
    day = day.rename(columns={"score": column})
    kept = set(day.loc[policy.flags(day), "session_id"])
    return over & sessions["session_id"].isin(kept).to_numpy()


def _linked(summary: pd.DataFrame, ids: list[str], calibration: object) -> pd.DataFrame:
    scores = pd.to_numeric(summary["max_score"], errors="coerce").to_numpy(np.float64)
    risk = (calibration.risk(scores) if calibration is not None  # type: ignore[attr-defined]
            else np.full(len(summary), np.nan))
    out = pd.DataFrame({
        "user_id": summary["user_id"].astype(str), "n_sessions": summary["n_sessions"],
        "max_risk": risk,
        "decision": pd.Series([decision_of_user(d if isinstance(d, str) else None, int(f), int(n),
                                      None if u is None or u != u else bool(u))
                     for d, f, n, u in zip(summary["latest_decision"], summary["fraud_labels"],
                                           summary["normal_labels"], summary["user_label"],
                                           strict=True)], dtype=object),
        "decided_case": summary["decided_case"].astype(object).where(
            summary["decided_case"].notna(), None),
        "fraud_labels": summary["fraud_labels"].astype(int),
        "normal_labels": summary["normal_labels"].astype(int)})
    order = {u: i for i, u in enumerate(ids)}
    return out.sort_values("user_id", key=lambda s: s.map(order)).reset_index(drop=True)


def _own_row(user_id: str, sessions: pd.DataFrame, n_sessions: int) -> pd.DataFrame:
    """The user's row of ``User360.linked`` from their sessions read (no linked accounts)."""
    decisions = sessions["decision"]
    fraud, normal = int((decisions == FRAUD).sum()), int((decisions == NOT_FRAUD).sum())
    top = pd.to_numeric(sessions["risk"], errors="coerce").max()
    return pd.DataFrame({
        "user_id": [user_id], "n_sessions": [int(n_sessions)], "max_risk": [top],
        "decision": pd.Series([decision_of_user(None, fraud, normal)], dtype=object),
        "decided_case": pd.Series([None], dtype=object), "fraud_labels": [fraud],
        "normal_labels": [normal]})


def _cases(cases: pd.DataFrame, user_id: str) -> pd.DataFrame:
    out = pd.DataFrame({
        "case_id": cases["case_id"].astype(str), "user": cases["user_id"].astype(str),
        "relation": np.where(cases["user_id"].astype(str) == user_id, "this user", "linked"),
        "status": cases["status"], "decision": cases["decision"],
        "scenario": cases["scenario"], "updated": cases["updated_at"],
        "n_sessions": cases["n_sessions"], "title": cases["title"]})
    return out.reset_index(drop=True)


def _resolved(currency: pd.Series, store_currency: str | None) -> pd.Series:
    fallback = store_currency or CURRENCY_NOT_SET
    return currency.astype(object).where(currency.notna(), fallback).astype(str)


def currency_label(totals: pd.DataFrame, store_currency: str | None) -> str:
    """How the page names the currency of the user's amounts: one code, several joined
    with ' / ', or ``CURRENCY_NOT_SET``."""
    found = [str(c) for c in totals.get("currency", pd.Series(dtype=object))]
    if not found:
        return store_currency or CURRENCY_NOT_SET
    return " / ".join(dict.fromkeys(found))


# --- the store's display currency -----------------------------------------------------------------
def display_currency(store: Store) -> str | None:
    """The store's display currency (None: not set)."""
    return store.user_history.display_currency()


def set_display_currency(store: Store, code: str | None) -> str | None:
    """Set (ISO 4217, e.g. 'EUR') or clear (None) the display currency; returns it."""
    with store.transaction():
        store.user_history.set_display_currency(code)
    return store.user_history.display_currency()


# --- bounded drawing ----------------------------------------------------------------------------
def focus_window(sessions: pd.DataFrame, focus: str | None, *,
                 min_pad: pd.Timedelta = MIN_PAD
                 ) -> tuple[str | None, str, tuple[pd.Timestamp, pd.Timestamp] | None]:
    """(the focus session, why it is the focus, the initial x-range around it).

    The asked ``focus`` when it is one of ``sessions``; else the highest-risk flagged
    session; else (None, 'all', None): the whole span. The range pads the session by half
    its length, at least ``min_pad`` each side, to show the sessions around it; a user with
    no other session gets the session alone (a log trace's events lie milliseconds apart,
    and half an hour each side drew them as one dot)."""
    ids = sessions["session_id"].astype(str)
    why = "asked"
    row = sessions[ids == str(focus)] if focus else sessions.iloc[0:0]
    if row.empty:
        flagged = sessions[sessions["flagged"].astype(bool)]
        if flagged.empty:
            return None, "all", None
        ranked = flagged.assign(_r=pd.to_numeric(flagged["risk"], errors="coerce")
                                .fillna(-1.0).to_numpy()
                                + pd.to_numeric(flagged["score"], errors="coerce")
                                .rank(pct=True).fillna(0).to_numpy() * 1e-6)
        row = ranked.sort_values(["_r", "start_ts"], ascending=[False, False]).head(1)
        why = "highest risk"
    start = pd.Timestamp(row["start_ts"].iloc[0])
    end = pd.Timestamp(row["end_ts"].iloc[0]) if pd.notna(row["end_ts"].iloc[0]) else start
    end = max(end, start)
    alone = len(sessions) == 1 and end > start
    pad = (end - start) / 2 if alone else max((end - start) / 2, min_pad)
    return str(row["session_id"].iloc[0]), why, (start - pad, end + pad)


def thin_points(sessions: pd.DataFrame, *, focus: str | None = None,
                max_points: int = MAX_POINTS, max_kept: int = MAX_KEPT
                ) -> tuple[pd.DataFrame, pd.DataFrame, str | None]:
    """(points, buckets, bucket name) a chart of ``sessions`` draws, bounded.

    Up to ``max_points`` sessions: every session a point, no buckets. Beyond: the focus,
    decided and flagged sessions stay points (at most ``max_kept``: the focus, then decided,
    then flagged ones, the riskiest first), and every
    session counts in ``buckets`` (start, n_sessions, max_risk, n_flagged, n_decided) of the
    finest of ``BUCKETS`` giving at most ``max_points`` buckets."""
    empty = pd.DataFrame(columns=["start", "n_sessions", "max_risk", "n_flagged",
                                  "n_decided"])
    if len(sessions) <= max_points:
        return sessions.reset_index(drop=True), empty, None
    flagged = sessions["flagged"].astype(bool)
    decided = sessions["decision"].notna()
    is_focus = sessions["session_id"].astype(str) == str(focus) if focus else flagged & False
    keep = sessions[flagged | decided | is_focus]
    if len(keep) > max_kept:  # the focus, then decided, then flagged; the riskiest first
        rank = (~is_focus[keep.index]).astype(int) * 2 + (~decided[keep.index]).astype(int)
        keep = (keep.assign(_p=rank.to_numpy(),
                            _r=pd.to_numeric(keep["risk"], errors="coerce").fillna(-1.0))
                .sort_values(["_p", "_r"], ascending=[True, False]).head(max_kept)
                .drop(columns=["_p", "_r"]).sort_values("start_ts"))
    times = pd.to_datetime(sessions["start_ts"])
    frame = pd.DataFrame({"start_ts": times.to_numpy(),
                          "risk": pd.to_numeric(sessions["risk"], errors="coerce").to_numpy(),
                          "flagged": flagged.to_numpy(), "decided": decided.to_numpy()})
    for name, freq in BUCKETS:
        starts = frame["start_ts"].dt.floor(freq)
        if starts.nunique() <= max_points or name == BUCKETS[-1][0]:
            grouped = frame.groupby(starts)
            buckets = pd.DataFrame({
                "n_sessions": grouped.size(), "max_risk": grouped["risk"].max(),
                "n_flagged": grouped["flagged"].sum(), "n_decided": grouped["decided"].sum(),
            }).rename_axis("start").reset_index().head(max_points)
            return keep.reset_index(drop=True), buckets, name
    raise AssertionError("unreachable: the last bucket always returns")


def days_of(sessions: pd.DataFrame) -> list[dt.date]:
    """The UTC days the sessions start on."""
    return sorted({pd.Timestamp(t).date() for t in sessions["start_ts"]})
