"""Operating thresholds: per-segment precedence, cost and capacity, daily budgets.

A model's score is at or above the threshold in force for a session when it meets the
threshold saved for the session's most specific segment (country, then tenure, then all),
else the model's own default operating point (``core.pipeline.operating_point``: the one way
a default is computed). Segments are ``all``, ``tenure:new`` / ``tenure:returning`` (first
seen less / more than 7 days before the session) and ``country:XX``. Which sessions are
*flagged* is the alert policy's decision (``core.policy``), built on these rules.

    >>> import numpy as np
    >>> cheapest_threshold(np.array([0.9, 0.8, 0.1]), np.array([True, False, False]),
    ...                    cost_miss=100.0, cost_review=1.0).threshold
    0.9
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from core.errors import ConfigError
from core.evaluate import ThresholdTable

if TYPE_CHECKING:
    from core.store import Store


def thresholds_per_session(
    tenure: pd.Series, country: pd.Series, saved: dict[str, float], fallback: float
) -> np.ndarray:
    """The threshold in force for each session, by segment precedence."""
    out = np.full(len(tenure), saved.get("all", fallback), dtype=np.float64)
    for segment, value in saved.items():
        if segment.startswith("tenure:"):
            out[(tenure == segment.split(":", 1)[1]).to_numpy()] = value
    for segment, value in saved.items():
        if segment.startswith("country:"):
            out[(country == segment.split(":", 1)[1]).to_numpy()] = value
    return out


@dataclass(frozen=True)
class InForce:
    """A model's thresholds: those saved per segment, and ``default`` (the model's operating
    point, core.pipeline.operating_point) where none is saved. The one place the precedence
    is applied: country, then tenure, then all, then the default."""

    saved: dict[str, float]
    default: float

    def at(self, *, tenure: str | None = None, country: str | None = None) -> float:
        """The threshold in force for one session of this tenure and country."""
        for segment in (f"country:{country}" if country is not None else None,
                        f"tenure:{tenure}" if tenure is not None else None, "all"):
            if segment is not None and segment in self.saved:
                return self.saved[segment]
        return self.default

    def for_segment(self, segment: str = "all") -> float:
        """The threshold in force for ``segment`` ('all', 'tenure:new', 'country:DE', ...)."""
        kind, _, value = segment.partition(":")
        if kind == "tenure":
            return self.at(tenure=value)
        if kind == "country":
            return self.at(country=value)
        return self.at()

    def per_session(self, tenure: pd.Series, country: pd.Series) -> np.ndarray:
        """The threshold in force for each session."""
        return thresholds_per_session(tenure, country, self.saved, self.default)

    def flags(self, table: pd.DataFrame, model_id: str) -> np.ndarray:
        """``flag_sessions`` at these thresholds."""
        return flag_sessions(table, model_id, self.saved, self.default)


def thresholds_in_force(store: Store, model_id: str) -> InForce:
    """``model_id``'s saved thresholds and its default, read once."""
    # Lazy: pages import this module for its arithmetic and need not load the pipeline.
    from core.pipeline.operating_point import operating_point

    return InForce(store.thresholds.saved(model_id), operating_point(store, model_id).threshold)


def threshold_in_force(store: Store, model_id: str, segment: str = "all") -> float:
    """The threshold ``model_id`` flags ``segment``'s sessions at (saved, else the default)."""
    return thresholds_in_force(store, model_id).for_segment(segment)


@dataclass(frozen=True)
class CostChoice:
    """The threshold with the lowest expected cost, and what it costs."""

    threshold: float
    cost: float
    n_alerts: int
    n_missed: int


def cheapest_threshold(
    scores: np.ndarray, labels: np.ndarray, *, cost_miss: float, cost_review: float
) -> CostChoice:
    """Minimise missed frauds × cost_miss + alerts × cost_review over all cut points."""
    if cost_miss < 0 or cost_review < 0:
        raise ConfigError(
            f"costs must be >= 0, got miss={cost_miss}, review={cost_review}. Enter amounts."
        )
    if len(scores) == 0:
        raise ConfigError("scores must not be empty, got none. Score some sessions first.")
    order = np.argsort(-scores, kind="stable")
    sorted_scores = scores[order]
    positives = labels[order].astype(np.int64)
    # Cut after position i flags the first i+1 sessions; only cut where the score changes.
    last_of_tie = np.r_[sorted_scores[1:] != sorted_scores[:-1], True]
    tp = np.cumsum(positives)[last_of_tie]
    alerts = (np.arange(len(scores)) + 1)[last_of_tie]
    cuts = sorted_scores[last_of_tie]
    total_pos = int(positives.sum())
    costs = (total_pos - tp) * cost_miss + alerts * cost_review
    flag_none = total_pos * cost_miss
    best = int(np.argmin(costs))
    if flag_none <= costs[best]:
        return CostChoice(float(np.nextafter(sorted_scores[0], np.inf)), float(flag_none), 0,
                          total_pos)
    return CostChoice(float(cuts[best]), float(costs[best]), int(alerts[best]),
                      int(total_pos - tp[best]))


def cheapest_on_table(table: ThresholdTable, *, cost_miss: float,
                      cost_review: float) -> CostChoice:
    """:func:`cheapest_threshold` on a built :class:`ThresholdTable`: the same choice, in
    one pass over its distinct scores instead of a sort of every labelled session."""
    if cost_miss < 0 or cost_review < 0:
        raise ConfigError(
            f"costs must be >= 0, got miss={cost_miss}, review={cost_review}. Enter amounts."
        )
    if len(table) == 0:
        raise ConfigError("scores must not be empty, got none. Score some sessions first.")
    alerts = table.tp + table.fp
    costs = (table.n_pos - table.tp) * cost_miss + alerts * cost_review
    flag_none = table.n_pos * cost_miss
    best = int(np.argmin(costs))
    if flag_none <= costs[best]:
        return CostChoice(float(np.nextafter(table.thresholds[0], np.inf)), float(flag_none),
                          0, table.n_pos)
    return CostChoice(float(table.thresholds[best]), float(costs[best]), int(alerts[best]),
                      int(table.n_pos - table.tp[best]))


def threshold_for_capacity(scores: np.ndarray, start_ts: pd.Series, per_day: float) -> float:
    """The lowest threshold whose alerts average at most ``per_day`` a day over the span."""
    if per_day <= 0:
        raise ConfigError(f"capacity must be > 0 sessions a day, got {per_day}.")
    if len(scores) == 0:
        return float("inf")
    days = max(int(pd.to_datetime(start_ts).dt.normalize().nunique()), 1)
    k = int(per_day * days)
    if k >= len(scores):
        return float(np.min(scores))
    ranked = np.sort(scores)[::-1]
    # Ties at the k-th score would exceed the budget: step just above it.
    return float(np.nextafter(ranked[k], np.inf)) if ranked[k] == ranked[k - 1] else float(
        ranked[k - 1])


def apply_daily_budget(scores: np.ndarray, flagged: np.ndarray, start_ts: pd.Series,
                       top_k: int | None) -> np.ndarray:
    """Keep at most ``top_k`` flagged sessions per day (the highest scores); None keeps all."""
    if top_k is None:
        return flagged
    # Ranked among the flagged only (the rest could only rank below them): same verdicts,
    # a groupby over the alerts instead of every session.
    at = np.flatnonzero(flagged)
    frame = pd.DataFrame({"day": _days(start_ts)[at], "score": np.asarray(scores)[at]})
    rank = frame.groupby("day")["score"].rank(method="first", ascending=False).to_numpy()
    out = np.zeros(len(flagged), bool)
    out[at[rank <= top_k]] = True
    return out


def _days(start_ts: pd.Series) -> np.ndarray:
    """The calendar day (UTC) of each timestamp, as datetime64[D]."""
    return pd.to_datetime(start_ts).to_numpy().astype("datetime64[D]")


def alerts_per_day(start_ts: pd.Series, flagged: np.ndarray) -> pd.DataFrame:
    """day, alerts."""
    days = _days(start_ts).astype("datetime64[ns]")
    counts = pd.Series(flagged.astype(int), index=days).groupby(level=0).sum()
    return counts.rename("alerts").rename_axis("day").reset_index()


def flag_sessions(table: pd.DataFrame, model_id: str, saved: dict[str, float],
                  default: float) -> np.ndarray:
    """Boolean flags of ``model_id`` for every row of a ``core.lookups.score_table``.

    Uses the saved thresholds by segment precedence, ``default`` (the model's default
    operating point, core.pipeline.operating_point) where none is saved. Sessions the model
    has not scored are never flagged.
    """
    scores = table[f"score:{model_id}"].to_numpy(np.float64)
    scored = np.isfinite(scores)
    per_session = thresholds_per_session(table["tenure"], table["country"], saved, default)
    return scored & (scores >= per_session)


@dataclass(frozen=True)
class SegmentOrder:
    """A segment's scored sessions in ascending score order: what labels do not change.

    Kept while the scores stay as they are (a decision or a saved threshold does not re-sort
    a million scores); labels are then laid onto it (:class:`AlignedLabels`)."""

    sorted_scores: np.ndarray
    session_ids: pd.Index  # the sessions of ``sorted_scores``, in the same order
    n_days: int

    @classmethod
    def build(cls, scores: np.ndarray, session_ids: pd.Series,
              start_ts: pd.Series) -> SegmentOrder:
        finite = np.flatnonzero(np.isfinite(scores))
        order = finite[np.argsort(scores[finite], kind="stable")]
        ids = pd.Index(np.asarray(session_ids, dtype=object)[order])
        return cls(scores[order], ids,
                   max(int(pd.to_datetime(start_ts).dt.normalize().nunique()), 1))

    def positions(self, session_ids: pd.Series) -> np.ndarray:
        """Where ``session_ids`` sit in the order (-1: not in the segment or not scored)."""
        return self.session_ids.get_indexer(np.asarray(session_ids, dtype=object))

    def no_labels(self) -> AlignedLabels:
        n = len(self.sorted_scores)
        return AlignedLabels(np.zeros(n, bool), np.zeros(n, bool), np.full(n, "", object))


@dataclass(frozen=True)
class AlignedLabels:
    """Labels laid onto a :class:`SegmentOrder`: one entry per sorted session."""

    known: np.ndarray  # bool: the session has a label
    is_anomaly: np.ndarray  # bool (False where unknown)
    scenario: np.ndarray  # object

    def overlaid(self, order: SegmentOrder, labels: pd.DataFrame) -> AlignedLabels:
        """A copy with ``labels`` (session_id, is_anomaly, scenario) written over these:
        how an analyst's decision overrides the ground truth, in O(n) without a sort."""
        if labels.empty:
            return self
        at = order.positions(labels["session_id"])
        inside = at >= 0
        at = at[inside]
        known, y, scen = self.known.copy(), self.is_anomaly.copy(), self.scenario.copy()
        known[at] = True
        y[at] = labels["is_anomaly"].to_numpy(dtype=bool)[inside]
        scen[at] = labels["scenario"].astype(str).to_numpy(dtype=object)[inside]
        return AlignedLabels(known, y, scen)


@dataclass(frozen=True)
class SegmentView:
    """Everything the Thresholds page asks at a threshold, answered in O(log n).

    Built once per (model, segment, label sources) from sorted arrays; moving the slider then
    costs a few binary searches, whatever the number of sessions.
    """

    sorted_scores: np.ndarray  # every session of the segment, ascending
    labelled_scores: np.ndarray  # labelled sessions, in the same order as ``labels``
    labels: np.ndarray
    scenario_scores: dict[str, np.ndarray]  # ascending scores of the positives per scenario
    n_days: int
    table: ThresholdTable | None

    @classmethod
    def build(cls, scores: np.ndarray, start_ts: pd.Series, labelled_scores: np.ndarray,
              labels: np.ndarray, scenarios: np.ndarray) -> SegmentView:
        labels = np.asarray(labels, bool)
        per_scenario = {
            str(name): np.sort(labelled_scores[labels & (scenarios == name)])
            for name in np.unique(scenarios[labels])
        }
        both = labels.any() and not labels.all()
        return cls(
            sorted_scores=np.sort(scores[np.isfinite(scores)]),
            labelled_scores=labelled_scores, labels=labels, scenario_scores=per_scenario,
            n_days=max(int(pd.to_datetime(start_ts).dt.normalize().nunique()), 1),
            table=ThresholdTable.from_scores(labelled_scores, labels) if both else None,
        )

    @classmethod
    def from_order(cls, order: SegmentOrder, labels: AlignedLabels) -> SegmentView:
        """From a segment's kept sort order and labels aligned with it: one pass, no sort.

        The same view as :meth:`build` up to the order of ``labelled_scores`` (ascending
        here): what a case decision costs on the Thresholds page at a million sessions."""
        known = labels.known
        scores = order.sorted_scores[known]
        y = labels.is_anomaly[known]
        positive = known & labels.is_anomaly  # few: the per-scenario split works on these
        pos_scores, pos_names = order.sorted_scores[positive], labels.scenario[positive]
        per_scenario = {str(name): pos_scores[pos_names == name]  # ascending already
                        for name in pd.unique(pos_names)}
        both = y.any() and not y.all()
        return cls(
            sorted_scores=order.sorted_scores, labelled_scores=scores, labels=y,
            scenario_scores=per_scenario, n_days=order.n_days,
            table=ThresholdTable.from_sorted(scores[::-1], y[::-1]) if both else None,
        )

    def n_alerts(self, threshold: float) -> int:
        return int(len(self.sorted_scores) - np.searchsorted(self.sorted_scores, threshold))

    def scenario_recall(self, threshold: float) -> pd.DataFrame:
        """scenario, recall, n at ``threshold``."""
        rows = [(name, (len(s) - np.searchsorted(s, threshold)) / len(s), len(s))
                for name, s in self.scenario_scores.items() if len(s)]
        return pd.DataFrame(rows, columns=["scenario", "recall", "n"])


def segment_mask(table: pd.DataFrame, segment: str) -> np.ndarray:
    """Rows of a score table in ``segment`` ('all', 'tenure:new', 'country:DE', ...)."""
    if segment == "all":
        return np.ones(len(table), bool)
    kind, _, value = segment.partition(":")
    if kind not in ("tenure", "country") or not value:
        raise ConfigError(
            f"segment must be 'all', 'tenure:new', 'tenure:returning' or 'country:XX', got "
            f"{segment!r}."
        )
    return (table[kind] == value).to_numpy()
