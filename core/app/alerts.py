"""Alerts: the thresholds in force, the overview's flags, the tuning views (the work queue:
``core.app.queue``).

Use cases take an open ``Store`` first. The pure helpers beside them (``flag_matrix``,
``measure`` ...) take tables a front end already holds, so the dashboard can
keep its cached score table and still ask here for every rule.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core import lookups
from core.id_sets import isin
from core.schema import LABEL_SOURCES
from core.store import Store
from core.thresholds import (
    AlignedLabels,
    CostChoice,
    InForce,
    SegmentOrder,
    SegmentView,
    alerts_per_day,
    apply_daily_budget,
    cheapest_on_table,
    cheapest_threshold,
    segment_mask,
    threshold_for_capacity,
    thresholds_in_force,
)

__all__ = [
    "AlignedLabels", "CostChoice", "FlagSummary", "InForce", "OperatingMetrics", "SegmentOrder",
    "SegmentView", "align_labels", "segment_order", "segment_view_from",
    "capacity_threshold", "cheapest", "countries", "default_point", "flag_matrix", "flag_summary",
    "labelled_scores", "measure", "newest_per_detector", "save_threshold", "score_table",
    "segment_view", "segments", "thresholds_in_force",
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
    anomalous = isin(table["session_id"], labels.loc[labels["is_anomaly"], "session_id"])
    return FlagSummary(any_flag, anomalous, {m: in_force[m].for_segment("all") for m in model_ids},
                       alerts_per_day(table["start_ts"], any_flag), len(labels),
                       int(labels["is_anomaly"].sum()))


def policy_summary(risk: pd.DataFrame, labels: pd.DataFrame) -> FlagSummary:
    """The alert policy's flags over ``risk`` (``core.app.policy.risk_table``: one row per
    session its model scored, ``flagged`` its verdict), as the Overview counts them: the same
    "flagged" as the queue, the User and Cases pages and the reports."""
    flagged = risk["flagged"].to_numpy(bool)
    anomalous = isin(risk["session_id"], labels.loc[labels["is_anomaly"], "session_id"])
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
        known = labels[labels["is_anomaly"].notna().to_numpy()
                       & isin(labels["session_id"], flagged)]
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


def segment_order(table: pd.DataFrame, model_id: str, segment: str) -> SegmentOrder:
    """``segment``'s sessions scored by ``model_id`` (``table``: its score table), sorted by
    score once: kept while the scores are, whatever the labels do."""
    part = table[segment_mask(table, segment)]
    return SegmentOrder.build(part[f"score:{model_id}"].to_numpy(np.float64),
                              part["session_id"], part["start_ts"])


def align_labels(order: SegmentOrder, labels: pd.DataFrame) -> AlignedLabels:
    """``labels`` (``session_labels``: session_id, is_anomaly, scenario) laid onto ``order``;
    sessions outside the segment or unscored are left out."""
    return order.no_labels().overlaid(order, labels[labels["is_anomaly"].notna()])


def segment_view_from(order: SegmentOrder, labels: AlignedLabels) -> SegmentView:
    """The tuning view from a kept order and aligned labels (no sort: a decision's cost)."""
    return SegmentView.from_order(order, labels)


def cheapest(view: SegmentView, miss: float, review: float) -> CostChoice | None:
    """The threshold with the lowest cost on the labelled sessions; None without anomalies."""
    if not view.labels.any():
        return None
    if view.table is not None:  # the same choice without sorting the labelled sessions
        return cheapest_on_table(view.table, cost_miss=miss, cost_review=review)
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
