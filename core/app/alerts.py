"""Alerts: the thresholds in force, the flagged queue and its filters, the tuning views.

Use cases take an open ``Store`` first. The pure helpers beside them (``flag_matrix``,
``filter_queue``, ``measure`` ...) take tables a front end already holds, so the dashboard can
keep its cached score table and still ask here for every rule.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from core import lookups
from core.schema import LABEL_SOURCES
from core.store import Store
from core.thresholds import (
    CostChoice,
    InForce,
    SegmentView,
    alerts_per_day,
    apply_daily_budget,
    cheapest_threshold,
    segment_mask,
    threshold_for_capacity,
    thresholds_in_force,
)

__all__ = [
    "AGREEMENTS", "LABEL_FILTERS", "CostChoice", "FlagSummary", "InForce", "OperatingMetrics",
    "QueueFilter", "SegmentView", "capacity_threshold", "cheapest", "countries",
    "date_span", "default_point", "filter_queue", "flag_matrix", "flag_summary", "flagged_queue",
    "label_choices", "labelled_scores", "measure", "newest_per_detector", "queue_rows",
    "ranked_sessions", "save_threshold", "score_table", "segment_view", "segments",
    "thresholds_in_force",
]


# --- thresholds in force ----------------------------------------------------------------------
def default_point(store: Store, model_id: str) -> tuple[float, str]:
    """(default threshold, where it came from) of ``model_id``: what applies unsaved."""
    from core.pipeline.operating_point import operating_point

    point = operating_point(store, model_id)
    return point.threshold, point.source


def save_threshold(store: Store, model_id: str, segment: str, threshold: float,
                   set_by: str) -> None:
    """Persist the operating threshold of ``model_id`` for ``segment`` (the store is writable)."""
    store.thresholds.save(model_id, segment, float(threshold), set_by=set_by,
                          set_at=dt.datetime.now(dt.UTC).replace(tzinfo=None))


# --- scores -----------------------------------------------------------------------------------
def newest_per_detector(scored: pd.DataFrame) -> list[str]:
    """The newest scored model of each detector, by detector name (``scored``: the scored
    models, as ``core.app.investigate.scored_models`` lists them): what pages show first."""
    if scored.empty:
        return []
    return scored.sort_values("created_at").groupby("detector")["model_id"].last().tolist()


def score_table(store: Store, model_ids: Sequence[str]) -> pd.DataFrame:
    """One row per session with each model's score and percentile (``core.lookups``)."""
    return lookups.score_table(store, model_ids)


def labelled_scores(store: Store, model_id: str,
                    sources: Sequence[str] = LABEL_SOURCES) -> pd.DataFrame:
    return lookups.labelled_scores(store, model_id, sources)


def flag_matrix(table: pd.DataFrame, model_ids: Sequence[str],
                in_force: Mapping[str, InForce]) -> np.ndarray:
    """(sessions, models) booleans: each model's flags at its thresholds in force."""
    if not model_ids:
        return np.zeros((len(table), 0), bool)
    return np.column_stack([in_force[m].flags(table, m) for m in model_ids])


# --- the flagged queue ------------------------------------------------------------------------
def flagged_queue(store: Store, model_ids: Sequence[str],
                  sources: Sequence[str] = LABEL_SOURCES, *,
                  table: pd.DataFrame | None = None,
                  detectors: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Sessions flagged by at least one model at the thresholds in force, with their labels,
    amounts, a ``flag:<model>`` column per model, ``n_flagging`` and ``flagged_by``. Sessions
    of snoozed users, devices and IPs are left out.

    ``table`` is the models' score table when the caller holds it already (read here if not);
    ``detectors`` maps model -> detector name for ``flagged_by`` (read here if not).
    """
    from core.cases.suppressions import suppressed_session_ids

    table = score_table(store, model_ids) if table is None else table
    flags = flag_matrix(table, model_ids, {m: thresholds_in_force(store, m) for m in model_ids})
    keep = flags.any(axis=1) & ~table["session_id"].isin(suppressed_session_ids(store)).to_numpy()
    table, flags = table[keep].copy(), flags[keep]
    if detectors is None:
        models = lookups.scored_models(store)
        detectors = dict(zip(models["model_id"], models["detector"], strict=True))
    for j, m in enumerate(model_ids):
        table[f"flag:{m}"] = flags[:, j]
    table["n_flagging"] = flags.sum(axis=1)
    table["flagged_by"] = [", ".join(detectors.get(m, m) for m, f in zip(model_ids, row,
                                                                          strict=True) if f)
                           for row in flags]
    details = lookups.session_details(store, table["session_id"].tolist(), sources)
    return table.merge(details, on="session_id", how="left")


def ranked_sessions(queue: pd.DataFrame, model_ids: Sequence[str]) -> pd.DataFrame:
    """session_id, user_id, flagged_by, top (the highest percentile): highest first."""
    if not model_ids:
        return pd.DataFrame(columns=["session_id", "user_id", "flagged_by", "top"])
    pct = queue[[f"pct:{m}" for m in model_ids]].max(axis=1)
    return queue.assign(top=pct).sort_values("top", ascending=False)[
        ["session_id", "user_id", "flagged_by", "top"]]


AGREEMENTS = ("any", "flagged only by sequence models", "flagged only by feature models",
              "flagged by exactly one detector", "flagged by every detector")
LABEL_FILTERS = ("any", "labelled anomalous", "labelled normal", "unlabelled")


@dataclass(frozen=True)
class QueueFilter:
    """What an analyst narrows the queue to; empty fields keep every session.

    ``label`` is one of ``LABEL_FILTERS`` or a scenario name; ``with_sessions`` (the sessions
    holding one of the chosen event types, looked up by the caller) is None for no such filter.
    """

    dates: tuple[dt.date, dt.date] | None = None
    by: Sequence[str] = ()
    agreement: str = "any"
    label: str = "any"
    countries: Sequence[str] = ()
    with_sessions: Collection[str] | None = None
    min_amount: float = 0.0
    input_kinds: Mapping[str, str] = field(default_factory=dict)


def label_choices(queue: pd.DataFrame) -> list[str]:
    """The label filter's options: ``LABEL_FILTERS``, then the anomalous scenarios present."""
    scenarios = queue.loc[queue["is_anomaly"] == True, "scenario"]  # noqa: E712  (NA-safe)
    return [*LABEL_FILTERS, *sorted(scenarios.dropna().unique().tolist())]


def filter_queue(queue: pd.DataFrame, model_ids: Sequence[str], chosen: QueueFilter
                 ) -> pd.DataFrame:
    """The rows of ``flagged_queue`` that pass ``chosen``."""
    flags = queue[[f"flag:{m}" for m in model_ids]].set_axis(list(model_ids), axis=1)
    seq = [m for m in model_ids if chosen.input_kinds.get(m) == "sequences"]
    feat = [m for m in model_ids if chosen.input_kinds.get(m) == "features"]
    keep = np.ones(len(queue), bool)
    if chosen.by:
        keep &= flags[list(chosen.by)].any(axis=1).to_numpy()
    if chosen.agreement == "flagged only by sequence models" and seq:
        keep &= flags[seq].any(axis=1).to_numpy() & ~flags[feat].any(axis=1).to_numpy()
    elif chosen.agreement == "flagged only by feature models" and feat:
        keep &= flags[feat].any(axis=1).to_numpy() & ~flags[seq].any(axis=1).to_numpy()
    elif chosen.agreement == "flagged by exactly one detector":
        keep &= queue["n_flagging"].to_numpy() == 1
    elif chosen.agreement == "flagged by every detector":
        keep &= queue["n_flagging"].to_numpy() == len(model_ids)
    if chosen.dates is not None:
        day = queue["start_ts"].dt.date
        keep &= ((day >= chosen.dates[0]) & (day <= chosen.dates[1])).to_numpy()
    label = chosen.label
    if label == "labelled anomalous":
        keep &= (queue["is_anomaly"] == True).to_numpy()  # noqa: E712  (NA-safe)
    elif label == "labelled normal":
        keep &= (queue["is_anomaly"] == False).to_numpy()  # noqa: E712
    elif label == "unlabelled":
        keep &= queue["is_anomaly"].isna().to_numpy()
    elif label != "any":
        keep &= (queue["scenario"] == label).to_numpy()
    if chosen.countries:
        keep &= queue["country"].isin(list(chosen.countries)).to_numpy()
    if chosen.with_sessions is not None:
        keep &= queue["session_id"].isin(list(chosen.with_sessions)).to_numpy()
    if chosen.min_amount:
        keep &= (queue["amount"] >= chosen.min_amount).to_numpy()
    return queue[keep]


def queue_rows(shown: pd.DataFrame, model_ids: Sequence[str], detectors: Mapping[str, str],
               view: Literal["sessions", "users"]) -> tuple[pd.DataFrame, list[str]]:
    """The queue as drawn: one row per session (highest percentile first) or per user (most
    flagged sessions first), each detector's percentile named after it. Returns the rows and
    the percentile columns' names."""
    pct_cols = {f"pct:{m}": f"{detectors[m]} %ile" for m in model_ids}
    if view == "sessions":
        out = shown[["session_id", "user_id", "start_ts", "country", "amount", "flagged_by",
                     *pct_cols, "scenario"]].rename(columns=pct_cols)
        out = out.assign(top=np.nanmax(out[list(pct_cols.values())].to_numpy(), axis=1))
        out = out.sort_values("top", ascending=False).drop(columns="top")
    else:
        out = shown.groupby("user_id").agg(
            flagged_sessions=("session_id", "size"), last_seen=("start_ts", "max"),
            amount=("amount", "sum"), **{v: (k, "max") for k, v in pct_cols.items()},
        ).reset_index().sort_values("flagged_sessions", ascending=False)
    return out, list(pct_cols.values())


# --- the overview -----------------------------------------------------------------------------
@dataclass(frozen=True)
class FlagSummary:
    """The chosen models' flags at the thresholds in force, as the overview counts them."""

    any_flag: np.ndarray  # per session of the score table
    anomalous: np.ndarray  # per session: labelled anomalous by the chosen sources
    thresholds: dict[str, float]  # model -> its threshold in force for segment 'all'
    daily: pd.DataFrame  # day, alerts (any chosen model)
    n_labelled: int  # sessions with a label from the chosen sources
    n_labelled_anomalous: int

    @property
    def n_flagged(self) -> int:
        return int(self.any_flag.sum())

    @property
    def flag_rate(self) -> float:
        return float(self.any_flag.mean()) if len(self.any_flag) else float("nan")


def flag_summary(table: pd.DataFrame, model_ids: Sequence[str], in_force: Mapping[str, InForce],
                 labels: pd.DataFrame) -> FlagSummary:
    """Flags, labelled anomalies and alerts per day over ``table`` (a score table)."""
    flags = flag_matrix(table, model_ids, in_force)
    any_flag = flags.any(axis=1)
    anomalous = table["session_id"].isin(
        labels.loc[labels["is_anomaly"], "session_id"]).to_numpy()
    return FlagSummary(any_flag, anomalous, {m: in_force[m].for_segment("all") for m in model_ids},
                       alerts_per_day(table["start_ts"], any_flag), len(labels),
                       int(labels["is_anomaly"].sum()))


def policy_summary(risk: pd.DataFrame, labels: pd.DataFrame) -> FlagSummary:
    """The alert policy's flags over ``risk`` (``core.app.policy.risk_table``: one row per
    session its model scored, ``flagged`` its verdict), as the Overview counts them: the same
    "flagged" as the queue, the User and Cases pages and the reports."""
    flagged = risk["flagged"].to_numpy(bool)
    anomalous = risk["session_id"].isin(
        labels.loc[labels["is_anomaly"], "session_id"]).to_numpy()
    return FlagSummary(flagged, anomalous, {}, alerts_per_day(risk["start_ts"], flagged),
                       len(labels), int(labels["is_anomaly"].sum()))


@dataclass(frozen=True)
class PolicyLearning:
    """What analysts' decisions changed at the policy's thresholds: labelled sessions and
    precision of the policy's flags, with ground truth only and with analysts' labels."""

    n_analyst_labels: int
    n_labelled_ground_truth: int
    n_labelled_with_analysts: int
    n_alerts_ground_truth: int  # flagged and labelled
    n_alerts_with_analysts: int
    precision_ground_truth: float
    precision_with_analysts: float

    @property
    def n_added(self) -> int:
        return self.n_labelled_with_analysts - self.n_labelled_ground_truth


def policy_learning(risk: pd.DataFrame, ground_truth: pd.DataFrame, both: pd.DataFrame,
                    analysts: pd.DataFrame) -> PolicyLearning:
    """``risk``: the policy's risk table; the others: ``session_labels`` of ground truth,
    of both sources (an analyst's decision overrides) and of analysts only."""
    flagged = risk.loc[risk["flagged"], "session_id"]

    def precision(labels: pd.DataFrame) -> tuple[int, float]:
        known = labels[labels["is_anomaly"].notna() & labels["session_id"].isin(flagged)]
        n = len(known)
        return n, float(known["is_anomaly"].astype(bool).mean()) if n else float("nan")

    n_gt, p_gt = precision(ground_truth)
    n_both, p_both = precision(both)
    return PolicyLearning(len(analysts), int(ground_truth["is_anomaly"].notna().sum()),
                          int(both["is_anomaly"].notna().sum()), n_gt, n_both, p_gt, p_both)


# --- tuning a threshold -----------------------------------------------------------------------
def countries(table: pd.DataFrame) -> list[str]:
    """Sorted countries of a score table's (or the queue's) sessions."""
    return sorted(table["country"].dropna().unique().tolist())


def date_span(queue: pd.DataFrame) -> tuple[dt.date, dt.date]:
    """(first, last) day of the sessions in ``queue`` (not empty)."""
    return queue["start_ts"].min().date(), queue["start_ts"].max().date()


def segments(country_names: Sequence[str]) -> list[str]:
    """Every segment a threshold can be saved for, most general first."""
    return ["all", "tenure:new", "tenure:returning", *(f"country:{c}" for c in country_names)]


def segment_view(table: pd.DataFrame, labelled: pd.DataFrame, model_id: str,
                 segment: str) -> SegmentView:
    """The sorted arrays behind tuning ``model_id`` on ``segment``: ``table`` is its score
    table, ``labelled`` its ``labelled_scores``."""
    part = table[segment_mask(table, segment)]
    known = labelled[labelled["is_anomaly"].notna()]
    if segment != "all":
        known = known[known["session_id"].isin(part["session_id"])]
    return SegmentView.build(
        part[f"score:{model_id}"].to_numpy(np.float64), part["start_ts"],
        known["score"].to_numpy(np.float64), known["is_anomaly"].astype(bool).to_numpy(),
        known["scenario"].astype(str).to_numpy(),
    )


def cheapest(view: SegmentView, miss: float, review: float) -> CostChoice | None:
    """The threshold with the lowest cost on the labelled sessions; None without anomalies."""
    if not view.labels.any():
        return None
    return cheapest_threshold(view.labelled_scores, view.labels, cost_miss=miss,
                              cost_review=review)


def capacity_threshold(table: pd.DataFrame, model_id: str, segment: str,
                       per_day: float) -> float:
    """The threshold that keeps ``segment``'s alerts at or under ``per_day`` on average."""
    part = table[segment_mask(table, segment)]
    return threshold_for_capacity(part[f"score:{model_id}"].to_numpy(np.float64),
                                  part["start_ts"], per_day)


@dataclass(frozen=True)
class OperatingMetrics:
    """What a threshold does on a segment: the confusion counts on labelled sessions, alerts
    on all of them, and the rates (NaN where undefined: no labels, nothing flagged)."""

    tp: int
    fp: int
    fn: int
    tn: int
    n_alerts: int
    n_days: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else float("nan")

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else float("nan")

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r > 0 else float("nan")

    @property
    def fpr(self) -> float:
        return self.fp / (self.fp + self.tn) if self.fp + self.tn else float("nan")

    @property
    def per_day(self) -> float:
        return self.n_alerts / self.n_days


def _counts(hit: np.ndarray, y: np.ndarray) -> tuple[int, int, int, int]:
    return (int((hit & y).sum()), int((hit & ~y).sum()), int((~hit & y).sum()),
            int((~hit & ~y).sum()))


def measure(view: SegmentView, threshold: float, *, budget: int = 0,
            table: pd.DataFrame | None = None, labelled: pd.DataFrame | None = None,
            model_id: str = "", segment: str = "all") -> OperatingMetrics:
    """``OperatingMetrics`` of ``threshold`` on ``view``. A daily ``budget`` keeps each day's
    top sessions: a pass over the segment's sessions (``table``, ``labelled`` and ``model_id``
    are then needed); without one, a few binary searches on ``view``."""
    if budget:
        if table is None or labelled is None:
            raise TypeError("measure(budget=...) needs the score table and labelled scores")
        part = table[segment_mask(table, segment)]
        scores = part[f"score:{model_id}"].to_numpy(np.float64)
        flagged = apply_daily_budget(scores, scores >= threshold, part["start_ts"], budget)
        known = labelled[labelled["is_anomaly"].notna()]
        hit = known["session_id"].isin(part["session_id"][flagged]).to_numpy()
        y = known["is_anomaly"].astype(bool).to_numpy()
        return OperatingMetrics(*_counts(hit, y), int(flagged.sum()), view.n_days)
    if view.table is not None:
        op = view.table.at(threshold)
        return OperatingMetrics(op.tp, op.fp, op.fn, op.tn, view.n_alerts(threshold),
                                view.n_days)
    # one class only (say, a single analyst decision): count the few labelled sessions
    counts = _counts(view.labelled_scores >= threshold, view.labels)
    return OperatingMetrics(*counts, view.n_alerts(threshold), view.n_days)
