"""The work queue: the sessions the alert policy in force flags, riskiest first, with their
status, the alert's age against the SLA, and which detectors agree.

    policy = core.app.policy.in_force(store)
    queue = work_queue(store, policy, model_ids=detector_models)   # every flagged session
    shown = sort_queue(filter_queue(queue, QueueView()), "risk")    # what the analyst sees

The policy is the only source of "flagged"; the detectors' own thresholds only say who agrees.
``filter_queue``, ``sort_queue`` and the status/SLA helpers are pure (tables in, tables out).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from core.errors import ConfigError
from core.policy import AlertPolicy
from core.store import Store

__all__ = ["DEFAULT_STATUSES", "PAGE", "SLA_DUE_HOURS", "SLA_LEVELS", "SLA_OK_HOURS", "SORTS",
           "STATUSES", "QueueView", "age_text", "agreement", "bulk_decide", "delete_view",
           "filter_queue", "has_ground_truth", "open_cases", "ranked",
           "save_view", "saved_views", "sla_of", "sort_queue", "status_of", "work_queue"]

STATUSES = ("new", "in case", "decided", "snoozed")
DEFAULT_STATUSES = ("new", "in case")  # decided and snoozed need nothing from the analyst
# SLA of an alert, counted from when the policy's model scored the session (the alert's
# birth): answered within half a working shift is on time; by the next day's shift it is due;
# later it is overdue, and the fraud it points at has had a day to repeat.
SLA_OK_HOURS = 4.0
SLA_DUE_HOURS = 24.0
SLA_LEVELS = ("ok", "due", "overdue")
SORTS = {  # name -> (column, ascending)
    "risk": ("risk", False),
    "oldest": ("age_h", False),
    "amount": ("amount", False),
    "agreement": ("n_agree", False),
}
PAGE = "queue"  # the saved views' page
FACT_COLUMNS = ("scored_at", "analyst_labelled", "in_decided_case", "open_case_id", "amount",
                "truth_is_anomaly", "truth_scenario")
"""What ``store.work_queue.facts`` (and ``candidates``) know about each flagged session."""
MAX_VIEW_NAME = 80


# --- the queue --------------------------------------------------------------------------------
def work_queue(store: Store, policy: AlertPolicy, *, model_ids: Sequence[str] = (),
               detectors: Mapping[str, str] | None = None, table: pd.DataFrame | None = None,
               now: dt.datetime | None = None,
               references: Mapping[str, np.ndarray] | None = None) -> pd.DataFrame:
    """One row per session ``policy`` flags, riskiest first.

    Columns: session_id, user_id, start_ts, country, tenure, risk (0-100, NaN without a
    calibration), score, status, case_id (of an open case), scored_at, age_h, age, sla,
    n_agree / n_detectors and agreeing (which of ``model_ids`` flag it at their own
    thresholds in force, by ``detectors`` name), ``pct:<model>`` per model, amount,
    truth_is_anomaly and truth_scenario (ground truth, NA without one).

    ``table`` is a score table with the policy's model when the caller holds one; without
    it only the sessions at or above the policy's lowest threshold are read
    (``store.work_queue.candidates``). ``model_ids`` missing from it are read for the flagged
    sessions only, ranked against ``references`` (model -> its sorted scores, when the
    caller keeps them; read here if not). ``now`` (naive UTC) dates the ages and snoozes.
    """
    from core.app.policy import risk_calibration
    from core.thresholds import thresholds_in_force

    others = [m for m in dict.fromkeys(model_ids) if m != policy.model_id]
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    if table is None:  # only the sessions at or above the policy's lowest threshold are read
        candidates = store.work_queue.candidates(policy.model_id, policy.lowest_threshold())
        candidates = candidates.rename(columns={"score": f"score:{policy.model_id}"})
        flagged = candidates[policy.flags(candidates)]
        facts = flagged[["session_id", *FACT_COLUMNS]]
    else:
        flagged = table[policy.flags(table)]
        facts = None
    missing = [m for m in others if f"score:{m}" not in flagged.columns]
    if missing:  # the detectors' scores and percentiles of the flagged sessions only
        flagged = _with_detector_scores(store, flagged, missing, references or {})
    out = flagged[["session_id", "user_id", "start_ts", "country", "tenure"]].reset_index(
        drop=True)
    scores = flagged[f"score:{policy.model_id}"].to_numpy(np.float64)
    calibration = risk_calibration(store, policy.model_id)
    out["risk"] = calibration.risk(scores) if calibration else np.nan
    out["score"] = scores
    names = detectors or {}
    count, agreeing = agreement(flagged, others, {m: thresholds_in_force(store, m).flags
                                                  for m in others},
                                [names.get(m, m) for m in others])
    out["n_agree"], out["n_detectors"], out["agreeing"] = count, len(others), agreeing
    for m in others:
        out[f"pct:{m}"] = flagged[f"pct:{m}"].to_numpy()
    if facts is None:
        facts = store.work_queue.facts(out["session_id"].tolist(), policy.model_id)
    out = out.merge(facts, on="session_id", how="left")
    snoozed = out["session_id"].isin(store.suppressions.suppressed_session_ids(now)).to_numpy()
    out["status"] = status_of(out["analyst_labelled"].fillna(False).to_numpy(bool),
                              out["in_decided_case"].fillna(False).to_numpy(bool),
                              out["open_case_id"].notna().to_numpy(), snoozed)
    out = out.rename(columns={"open_case_id": "case_id"}).drop(
        columns=["analyst_labelled", "in_decided_case"])
    age_h = (pd.Timestamp(now) - pd.to_datetime(out["scored_at"])).dt.total_seconds() / 3600
    out["age_h"] = age_h.to_numpy(np.float64)
    out["age"] = age_text(out["age_h"].to_numpy())
    out["sla"] = sla_of(out["age_h"].to_numpy())
    return sort_queue(out, "risk")


def _with_detector_scores(store: Store, flagged: pd.DataFrame, model_ids: Sequence[str],
                          references: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """``flagged`` with ``score:<m>`` and ``pct:<m>`` of ``model_ids`` (NaN where unscored):
    the percentile is the share of the model's scored sessions that score lower, as in
    ``core.lookups.score_table``, from one sorted column instead of a full score table."""
    found = store.work_queue.detector_scores(flagged["session_id"].tolist(), model_ids)
    out = flagged.copy()
    for m in model_ids:
        mine = found[found["model_id"] == m].set_index("session_id")["score"]
        scores = out["session_id"].map(mine).astype(np.float64).to_numpy()
        out[f"score:{m}"] = scores
        reference = references.get(m)
        if reference is None:
            reference = store.work_queue.all_scores(m)
        out[f"pct:{m}"] = percentile_among(scores, reference)
    return out


def percentile_among(scores: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """The share (0-100) of a model's scored sessions (``reference``, sorted) scoring lower
    than each of ``scores``, as ``core.lookups.score_table`` ranks them; NaN stays NaN."""
    scores = np.asarray(scores, np.float64)
    pct = np.searchsorted(reference, scores, side="left") / max(len(reference) - 1, 1) * 100
    return np.where(np.isfinite(scores), np.minimum(pct, 100.0), np.nan)


def sorted_scores(store: Store, model_id: str) -> np.ndarray:
    """Every finite score of ``model_id``, sorted: the reference for its percentiles."""
    return store.work_queue.all_scores(model_id)


def agreement(table: pd.DataFrame, model_ids: Sequence[str], flags: Mapping[str, Any],
              names: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """(how many of ``model_ids`` flag each row, their ``names`` joined): ``flags[m]`` maps
    (table, model) to that model's booleans at its own threshold."""
    if not model_ids:
        return np.zeros(len(table), int), [""] * len(table)
    matrix = np.column_stack([np.asarray(flags[m](table, m), bool) for m in model_ids])
    labels = np.asarray(names, dtype=object)
    return matrix.sum(axis=1), [", ".join(labels[row]) for row in matrix]


def status_of(analyst_labelled: np.ndarray, in_decided_case: np.ndarray,
              in_open_case: np.ndarray, snoozed: np.ndarray) -> np.ndarray:
    """Each session's status, the first that holds: decided (an analyst label, or a decided
    case holds it), snoozed (suppressed now), in case (an open case holds it), else new."""
    return np.select([analyst_labelled | in_decided_case, snoozed, in_open_case],
                     ["decided", "snoozed", "in case"], "new").astype(object)


def sla_of(age_h: np.ndarray) -> np.ndarray:
    """'ok' under ``SLA_OK_HOURS``, 'due' under ``SLA_DUE_HOURS``, else 'overdue' ('' when
    the age is unknown)."""
    age = np.asarray(age_h, np.float64)
    return np.select([np.isnan(age), age < SLA_OK_HOURS, age < SLA_DUE_HOURS],
                     ["", "ok", "due"], "overdue").astype(object)


def age_text(age_h: np.ndarray) -> list[str]:
    """'35 min', '5 h', '3 d': the unit an analyst reads at a glance."""
    out = []
    for h in np.asarray(age_h, np.float64):
        if np.isnan(h):
            out.append("")
        elif h < 1:
            out.append(f"{max(h * 60, 0):.0f} min")
        elif h < 48:
            out.append(f"{h:.0f} h")
        else:
            out.append(f"{h / 24:.0f} d")
    return out


# --- what the analyst narrows it to -----------------------------------------------------------
@dataclass(frozen=True)
class QueueView:
    """A filter set and a sort: what a URL and a saved view hold."""

    statuses: tuple[str, ...] = DEFAULT_STATUSES
    sla: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    min_risk: float = 0.0
    min_agree: int = 0
    min_amount: float = 0.0
    sort: str = "risk"

    def to_params(self) -> dict[str, Any]:
        """JSON-safe: lists for tuples."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> QueueView:
        """The view ``params`` (from ``to_params``) describe; unknown keys are ignored and
        bad values fall back to the default, so an old saved view still opens."""
        base = cls()

        def tup(name: str, allowed: Sequence[str] | None = None) -> tuple[str, ...]:
            value = params.get(name, getattr(base, name))
            items = [value] if isinstance(value, str) else list(value or [])
            return tuple(str(v) for v in items if allowed is None or v in allowed)

        def num(name: str, kind: type) -> Any:
            try:
                return kind(params.get(name, getattr(base, name)))
            except (TypeError, ValueError):
                return getattr(base, name)

        sort = str(params.get("sort", base.sort))
        return cls(tup("statuses", STATUSES), tup("sla", SLA_LEVELS), tup("countries"),
                   num("min_risk", float), num("min_agree", int), num("min_amount", float),
                   sort if sort in SORTS else base.sort)


def filter_queue(queue: pd.DataFrame, view: QueueView) -> pd.DataFrame:
    """The rows of ``work_queue`` that pass ``view`` (an empty choice keeps everything)."""
    keep = np.ones(len(queue), bool)
    if view.statuses:
        keep &= queue["status"].isin(view.statuses).to_numpy()
    if view.sla:
        keep &= queue["sla"].isin(view.sla).to_numpy()
    if view.countries:
        keep &= queue["country"].isin(view.countries).to_numpy()
    if view.min_risk:
        keep &= (queue["risk"] >= view.min_risk).to_numpy()
    if view.min_agree:
        keep &= (queue["n_agree"] >= view.min_agree).to_numpy()
    if view.min_amount:
        keep &= (queue["amount"] >= view.min_amount).to_numpy()
    return queue[keep]


def sort_queue(queue: pd.DataFrame, sort: str) -> pd.DataFrame:
    """``queue`` by one of ``SORTS`` (ties: the higher risk, then the session id)."""
    column, ascending = SORTS[sort]
    keys, order = [column], [ascending]
    if column != "risk":
        keys, order = [*keys, "risk"], [*order, False]
    return queue.sort_values([*keys, "session_id"], ascending=[*order, True],
                             na_position="last", kind="stable")


# --- saved views, per analyst -----------------------------------------------------------------
def saved_views(store: Store, analyst: str) -> dict[str, QueueView]:
    """``analyst``'s saved queue views by name."""
    frame = store.saved_views.of(analyst, PAGE)
    return {str(n): QueueView.from_params(p) for n, p in zip(frame["name"], frame["params"],
                                                             strict=True)}


def save_view(store: Store, analyst: str, name: str, view: QueueView,
              now: dt.datetime | None = None) -> None:
    """Save ``view`` as ``name`` for ``analyst`` (replacing one of that name)."""
    who, title = (analyst or "").strip(), (name or "").strip()
    if not who or who == "anonymous":
        raise ConfigError("saved views belong to an analyst, got no name. Set your name first.")
    if not title or len(title) > MAX_VIEW_NAME:
        raise ConfigError(f"a view's name must have 1 to {MAX_VIEW_NAME} characters, got "
                          f"{len(title)}. Name it.")
    store.saved_views.save(who, PAGE, title, view.to_params(),
                           now or dt.datetime.now(dt.UTC).replace(tzinfo=None))


def delete_view(store: Store, analyst: str, name: str) -> None:
    store.saved_views.delete(analyst, PAGE, name)


# --- acting on several rows -------------------------------------------------------------------
def open_cases(store: Store, rows: pd.DataFrame, *, analyst: str) -> list[str]:
    """One case per user of ``rows`` (session_id, user_id) covering its chosen sessions (a
    user's open case gets them added: ``core.cases.open_case``); returns the case ids."""
    from core.cases import open_case

    if rows.empty:
        raise ConfigError("open cases needs at least one session, got none. Select rows first.")
    return list(dict.fromkeys(
        open_case(store, analyst=analyst, user_id=str(user),
                  session_ids=group["session_id"].astype(str).tolist()).case_id
        for user, group in rows.groupby("user_id", sort=True)))


def bulk_decide(store: Store, rows: pd.DataFrame, decision: str, *, analyst: str,
                note: str, scenario: str | None = None) -> list[str]:
    """Decide ``rows`` (session_id, user_id) alike: their users' cases are opened (or reused),
    then decided together through ``core.cases.decide_cases`` (audited, all or nothing). A
    note is required: a bulk decision must say why. Returns the decided case ids."""
    from core.cases import decide_cases

    if not (note or "").strip():
        raise ConfigError("a bulk decision needs a note saying why, got none. Write one.")
    case_ids = open_cases(store, rows, analyst=analyst)
    decided = decide_cases(store, case_ids, decision, analyst=analyst, scenario=scenario,
                           note=note)
    return [c.case_id for c in decided]


def has_ground_truth(store: Store) -> bool:
    """Whether the store holds ground-truth labels (the queue then shows them, marked)."""
    return store.work_queue.has_ground_truth()


def ranked(queue: pd.DataFrame) -> pd.DataFrame:
    """session_id, user_id, flagged_by (its risk and the detectors that agree), top (the
    risk): the queue's open sessions (new or in case), riskiest first, for pickers."""
    if len(queue):
        open_ = sort_queue(queue[queue["status"].isin(DEFAULT_STATUSES)], "risk")
    else:
        open_ = queue
    text = [f"risk {r:.0f}" + (f"; {a}" if a else "")
            for r, a in zip(open_.get("risk", []), open_.get("agreeing", []), strict=True)]
    return pd.DataFrame({"session_id": open_.get("session_id", []),
                         "user_id": open_.get("user_id", []), "flagged_by": text,
                         "top": open_.get("risk", [])})
