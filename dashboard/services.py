"""The dashboard's only door to ``core``: cached reads, short-lived store connections.

Every page calls these functions and draws what they return; the rules (thresholds in force,
the queue's filters, a threshold's metrics ...) live in the application layer (``core.app``),
and this module only opens the store, caches and adapts. The store is opened for each read
(read-only) or write (read-write) and closed right after, so a CLI command can take the file
between two reruns; one process-wide lock keeps this process's own threads from opening it in
two modes at once (DuckDB refuses that). Cached results are keyed on the store file's
stamp (``store_stamp``: the file's and its write-ahead log's modification time and size),
an argument Streamlit hashes, so any write, from any process, reaches every session on its
next rerun.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import pandas as pd
import streamlit as st

from core.app import AnomalystError, alerts, investigate, queue
from core.app import models as app_models
from core.app import policy as policies
from core.app.alerts import (  # re-exported for the pages, which import only dashboard.*
    AlignedLabels,
    CostChoice,
    FlagSummary,
    InForce,
    OperatingMetrics,
    SegmentOrder,
    SegmentView,
)
from core.app.data import Store, resolve_db_path
from core.app.policy import AlertPolicy, PolicyRow
from dashboard import safe_text as safe

__all__ = ["AlertPolicy", "CostChoice", "FlagSummary", "OperatingMetrics", "PolicyRow"]

T = TypeVar("T")
_LOCK = threading.RLock()
_WRITES = [0]  # writes this process made through with_store
READ_WAIT_S = 10.0


@functools.cache
def preferred_detectors() -> tuple[str, ...]:
    """Detectors whose models a page shows first, most preferred first (read once: it loads
    the detector classes)."""
    return app_models.preferred_detectors()


def db_path() -> Path:
    """The store the dashboard shows: ``$ANOMALYST_DB`` or ``data/anomalyst.duckdb``."""
    return resolve_db_path(os.environ.get("ANOMALYST_DB"))


def store_stamp() -> str:
    """Changes whenever the store does, in this process or another; part of every cache key.

    DuckDB appends a write to ``<db>.wal`` first and folds it into the file at a checkpoint
    (which deletes the .wal), so both files count, by nanosecond modification time and size
    (a size change catches two writes within the file system's timestamp granularity)."""
    path = db_path()
    parts = []
    for item in (path, Path(str(path) + ".wal")):
        try:
            info = item.stat()
        except OSError:
            parts.append("-")
            continue
        parts.append(f"{info.st_mtime_ns}:{info.st_size}")
    # this process's own writes count too, in case the file system's clock is coarse
    return "|".join(parts) + f"|{_WRITES[0]}"


def with_store(func: Callable[[Store], T], *, write: bool = False,
               action: str | None = None) -> T:
    """Run ``func`` on a freshly opened store and close it.

    A write names the ``action`` it performs (see ``core.access.ACTIONS``) and is refused with
    AccessDeniedError unless the signed-in user's role allows it: the check runs here, on the
    server, whatever a page showed or hid.
    """
    if write:
        if action is None:
            raise TypeError("with_store(write=True) needs the action it performs")
        from dashboard import auth

        auth.require(action)
    try:
        with _LOCK, Store.open(db_path(), read_only=not write, wait_s=READ_WAIT_S) as store:
            return func(store)
    finally:
        if write:
            with _LOCK:
                _WRITES[0] += 1


def store_exists() -> bool:
    return db_path().exists()


def summary(stamp: str, path: str) -> dict[str, Any]:
    """The headline counts (events, sessions, users, span, unit): re-read after an ingest
    only (counting users over a million sessions and the span took ~0.5 s a write)."""
    return _headline(path, _fresh(stamp, path).events)


@st.cache_data(show_spinner=False, max_entries=4)
def _headline(path: str, events: tuple) -> dict[str, Any]:
    return with_store(investigate.headline)


class _Fresh(NamedTuple):
    models: pd.DataFrame
    label_versions: dict[str, tuple[int, int]]
    events: tuple  # the events' fingerprint (changes with an ingest)


@st.cache_resource(show_spinner=False, max_entries=8)
def _fresh(stamp: str, path: str) -> _Fresh:
    """What a rerun asks first after any write, read in one store opening: the scored models
    (their scores' versions key the big tables), the labels' and the events' fingerprints."""
    return with_store(lambda s: _Fresh(investigate.scored_models(s),
                                       investigate.label_versions(s),
                                       investigate.events_fingerprint(s)))


def models(stamp: str, path: str) -> pd.DataFrame:
    return _fresh(stamp, path).models.copy()


def score_table(stamp: str, path: str, model_ids: tuple[str, ...]) -> pd.DataFrame:
    """Shared, not copied, between reruns and sessions (a copy of a million-row table costs
    time on every rerun; docs/BENCHMARKS.md, 'Measurements behind design choices'): callers
    must treat it as read-only (filter or copy, never assign).

    Keyed on the models' score counts, not on the store's stamp: a case decision or a saved
    threshold leaves the scores as they were, so it must not reload a million rows."""
    return _score_table(path, tuple(model_ids), scores_version(stamp, path, tuple(model_ids)))


def scores_version(stamp: str, path: str, model_ids: tuple[str, ...]) -> tuple:
    """(model, created, number of scores) of ``model_ids``: changes when they are rescored."""
    frame = _fresh(stamp, path).models  # read-only here: no copy
    rows = frame[frame["model_id"].isin(model_ids)]
    return tuple(zip(rows["model_id"], rows["created_at"].astype(str), rows["n_scores"],
                     strict=True))


@st.cache_resource(show_spinner="Loading scores…", max_entries=4)
def _score_table(path: str, model_ids: tuple[str, ...], version: tuple) -> pd.DataFrame:
    return with_store(lambda s: alerts.score_table(s, model_ids))


def countries(stamp: str, path: str, model_id: str) -> list[str]:
    """Sorted countries of the sessions ``model_id`` scored (one pass while its scores stay
    as they are: a decision does not recount them)."""
    return _countries(path, model_id, scores_version(stamp, path, (model_id,)))


@st.cache_data(show_spinner=False, max_entries=8)
def _countries(path: str, model_id: str, version: tuple) -> list[str]:
    return alerts.countries(_score_table(path, (model_id,), version))


def segments(stamp: str, path: str, model_id: str) -> list[str]:
    """Every segment a threshold of ``model_id`` can be saved for."""
    return alerts.segments(countries(stamp, path, model_id))


def label_versions(stamp: str, path: str) -> dict[str, tuple[int, int]]:
    """source -> a fingerprint of its session labels (one cheap query a store change)."""
    return dict(_fresh(stamp, path).label_versions)


def labels(stamp: str, path: str, sources: tuple[str, ...]) -> pd.DataFrame:
    """session_id, is_anomaly, scenario, source: one label per session from ``sources``, an
    analyst's winning. Shared between reruns and sessions: treat as read-only.

    Each source is read and kept on its own labels' fingerprint, so a case decision re-reads
    the analysts' few labels and not the ground truth's million (docs/BENCHMARKS.md)."""
    versions = label_versions(stamp, path)
    return _labels(path, tuple(sources), tuple(versions.get(s) for s in sources))


@st.cache_resource(show_spinner=False, max_entries=8)
def _source_labels(path: str, source: str, version: tuple | None) -> pd.DataFrame:
    return with_store(lambda s: investigate.session_labels(s, (source,)))


@st.cache_resource(show_spinner=False, max_entries=8)
def _labels(path: str, sources: tuple[str, ...], versions: tuple) -> pd.DataFrame:
    frames = {src: _source_labels(path, src, v) for src, v in zip(sources, versions, strict=True)}
    if len(frames) == 1:
        return next(iter(frames.values()))
    analysts = frames.pop("analyst", None)
    rest = list(frames.values())
    if analysts is not None and not analysts.empty:  # an analyst's decision wins
        rest = [f[~f["session_id"].isin(analysts["session_id"])] for f in rest]
    parts = [f for f in (*rest, analysts) if f is not None and not f.empty]
    if not parts:
        return next(f for f in (*rest, analysts) if f is not None)
    return pd.concat(parts, ignore_index=True)


@st.cache_data(show_spinner=False, max_entries=32)
def in_force(stamp: str, path: str, model_id: str) -> InForce:
    """``model_id``'s saved thresholds and its default: the thresholds in force."""
    return with_store(lambda s: alerts.thresholds_in_force(s, model_id))


def segment_view(stamp: str, path: str, model_id: str, segment: str,
                 sources: tuple[str, ...]) -> SegmentView:
    """The sorted arrays behind the Thresholds page for one model, segment and label set.

    Three layers, each kept on what it depends on: the sessions sorted by score (the scores'
    version), the ground truth laid onto that order (its labels' fingerprint), and the
    analysts' labels over it (theirs). A decision redoes only the last: a copy and a
    count over the sorted arrays, no sort and no million-row read."""
    version = scores_version(stamp, path, (model_id,))
    found = label_versions(stamp, path)
    return _segment_view(path, model_id, segment, tuple(sources), version,
                         tuple(found.get(s) for s in sources))


@st.cache_resource(show_spinner="Sorting scores…", max_entries=16)
def _segment_order(path: str, model_id: str, segment: str, version: tuple) -> SegmentOrder:
    return alerts.segment_order(_score_table(path, (model_id,), version), model_id, segment)


@st.cache_resource(show_spinner="Preparing thresholds…", max_entries=16)
def _aligned_labels(path: str, model_id: str, segment: str, version: tuple,
                    sources: tuple[str, ...], label_versions: tuple) -> AlignedLabels:
    order = _segment_order(path, model_id, segment, version)
    if not sources:
        return order.no_labels()
    return alerts.align_labels(order, _labels(path, sources, label_versions))


@st.cache_resource(show_spinner=False, max_entries=32)
def _segment_view(path: str, model_id: str, segment: str, sources: tuple[str, ...],
                  version: tuple, label_versions: tuple) -> SegmentView:
    order = _segment_order(path, model_id, segment, version)
    versions = dict(zip(sources, label_versions, strict=True))
    base = tuple(s for s in sources if s != "analyst")
    aligned = _aligned_labels(path, model_id, segment, version, base,
                              tuple(versions[s] for s in base))
    if "analyst" in sources:
        analysts = _source_labels(path, "analyst", versions["analyst"])
        aligned = aligned.overlaid(order, analysts[analysts["is_anomaly"].notna()])
    return alerts.segment_view_from(order, aligned)


@st.cache_data(show_spinner="Building the work queue…", max_entries=4, ttl=60)
def work_queue(stamp: str, path: str) -> pd.DataFrame:
    """Every session the policy in force flags, riskiest first, with its status, age, SLA and
    the detectors that agree (``core.app.queue.work_queue``); empty without a policy. Re-read
    each minute too: alerts age and snoozes expire without any write."""
    found = policy(stamp, path)
    if found is None:
        return pd.DataFrame(columns=["session_id", "user_id", "risk", "status", "agreeing"])
    model_ids = tuple(default_model_ids(models(stamp, path)))
    # Only the sessions at or above the policy's lowest threshold are read, with their facts,
    # in one query (no million-row score table: the queue's first render at 1M sessions);
    # the detectors' scores are read for the flagged sessions only and ranked against their
    # sorted scores, kept on the scores' version.
    others = tuple(m for m in model_ids if m != found.model_id)
    references = sorted_scores(path, others, scores_version(stamp, path, others))
    names = detectors(stamp, path)
    return with_store(lambda s: queue.work_queue(s, found, model_ids=model_ids,
                                                 detectors=names, references=references))


def ranked_queue(stamp: str, path: str, sources: tuple[str, ...] = ()) -> pd.DataFrame:
    """session_id, user_id, flagged_by, top (risk): the work queue's open sessions, riskiest
    first (``sources`` is unused: the policy, not the labels, decides what is flagged)."""
    return queue.ranked(work_queue(stamp, path))


def flag_summary(stamp: str, path: str, model_ids: Sequence[str],
                 sources: tuple[str, ...]) -> FlagSummary:
    """The chosen models' flags at the thresholds in force, for the Overview."""
    table = score_table(stamp, path, tuple(model_ids))
    return alerts.flag_summary(table, model_ids,
                               {m: in_force(stamp, path, m) for m in model_ids},
                               labels(stamp, path, sources))


@st.cache_data(show_spinner=False, max_entries=64)
def cheapest(stamp: str, path: str, model_id: str, segment: str, sources: tuple[str, ...],
             miss: float, review: float) -> CostChoice | None:
    return alerts.cheapest(segment_view(stamp, path, model_id, segment, sources), miss, review)


def capacity_threshold(stamp: str, path: str, model_id: str, segment: str,
                       per_day: float) -> float:
    return _capacity_threshold(path, model_id, segment, per_day,
                               scores_version(stamp, path, (model_id,)))


@st.cache_data(show_spinner=False, max_entries=64)
def _capacity_threshold(path: str, model_id: str, segment: str, per_day: float,
                        version: tuple) -> float:
    """Scores only: kept across decisions and saved thresholds."""
    return alerts.capacity_threshold(_score_table(path, (model_id,), version), model_id,
                                     segment, per_day)


def threshold_metrics(stamp: str, path: str, model_id: str, segment: str,
                      sources: tuple[str, ...], threshold: float,
                      budget: int = 0) -> OperatingMetrics:
    """What ``threshold`` does on ``segment``: instant without a daily ``budget`` (binary
    searches on the prepared view), a pass over the segment's sessions with one."""
    view = segment_view(stamp, path, model_id, segment, sources)
    if not budget:
        return alerts.measure(view, threshold)
    return alerts.measure(view, threshold, budget=budget,
                          table=score_table(stamp, path, (model_id,)),
                          labelled=labelled_scores(stamp, path, model_id, sources),
                          model_id=model_id, segment=segment)


class SliderRange(NamedTuple):
    """The threshold slider's bounds over a segment's scores (a thousand steps)."""

    lo: float
    hi: float
    step: float

    def clamp(self, value: float) -> float:
        return float(min(max(value, self.lo), self.hi + self.step))


def slider_range(view: SegmentView) -> SliderRange:
    lo, hi = float(view.sorted_scores[0]), float(view.sorted_scores[-1])
    return SliderRange(lo, hi, max((hi - lo) / 1000, 1e-9))


class Start(NamedTuple):
    """Where the threshold slider starts for a segment: the threshold in force, whether it
    was saved, and the model's default with where it came from."""

    value: float
    saved: bool
    default: float
    source: str


def start_threshold(stamp: str, path: str, model_id: str, segment: str) -> Start:
    thresholds = in_force(stamp, path, model_id)
    default, source = operating_point(stamp, path, model_id)
    saved = segment in thresholds.saved or "all" in thresholds.saved
    return Start(thresholds.for_segment(segment), saved, default, source)


@st.cache_data(show_spinner=False, max_entries=16)
def labelled_scores(stamp: str, path: str, model_id: str,
                    sources: tuple[str, ...]) -> pd.DataFrame:
    return with_store(lambda s: alerts.labelled_scores(s, model_id, sources))


MAX_USER_EVENTS = 20_000  # beyond this the User page draws events aggregated per time bucket
SESSIONS_PER_PAGE = 500  # the User page lists a user's sessions a page at a time


@st.cache_data(show_spinner=False, max_entries=4)
def event_type_names(stamp: str, path: str) -> list[str]:
    return with_store(investigate.event_type_names)


@st.cache_data(show_spinner=False, max_entries=16)
def sessions_with_event_types(stamp: str, path: str, types: tuple[str, ...]) -> list[str]:
    return with_store(lambda s: investigate.sessions_with_event_types(s, types))


def input_kinds(models: pd.DataFrame) -> dict[str, str]:
    """model_id -> 'features' or 'sequences' (from ``models``, the scored-models table)."""
    return dict(zip(models["model_id"], models["input_kind"], strict=True))


def detectors(stamp: str, path: str) -> dict[str, str]:
    """model_id -> its detector's name, for every scored model."""
    frame = models(stamp, path)
    return dict(zip(frame["model_id"], frame["detector"], strict=True))


def models_of_kind(frame: pd.DataFrame, kind: str) -> list[str]:
    """The scored models reading ``kind`` ('features' or 'sequences')."""
    return [m for m, k in input_kinds(frame).items() if k == kind]


def find_users(text: str) -> list[str]:
    return with_store(lambda s: investigate.find_users(s, text))


def save_threshold(model_id: str, segment: str, threshold: float, set_by: str) -> bool:
    """Persist an operating threshold (used by every page) and drop cached reads."""
    with_store(lambda s: alerts.save_threshold(s, model_id, segment, threshold, set_by),
               write=True, action="threshold")
    forget_reads()
    return True


def forget_reads() -> None:
    """After a write. Nothing to drop: every cached read is keyed on the store's stamp (or,
    for scores, on their version), which the write changed; entries of older stamps age out
    by ``max_entries``. Kept so writers say where a write ends."""


def key() -> tuple[str, str]:
    """(stamp, path): the first two arguments of every cached call."""
    return store_stamp(), str(db_path())


def safely(func: Callable[[], T], what: str) -> T | None:
    """Call ``func``; show a user's problem as an error that says what to do."""
    try:
        return func()
    except AnomalystError as exc:
        st.error(safe.fmt("Could not {what}: {exc}", what=safe.Markdown(what), exc=str(exc)))
        return None


def label_sources(choice: str) -> tuple[str, ...]:
    return {"both": ("ground_truth", "analyst"), "ground truth": ("ground_truth",),
            "analysts": ("analyst",)}[choice]


def saved_thresholds(model_id: str) -> dict[str, float]:
    """segment -> threshold saved for ``model_id``."""
    return dict(in_force(*key(), model_id).saved)


def default_model_ids(frame: pd.DataFrame) -> Sequence[str]:
    """The newest model of each detector (``frame``: the scored models)."""
    return alerts.newest_per_detector(frame)


@st.cache_data(show_spinner=False, max_entries=32)
def operating_point(stamp: str, path: str, model_id: str) -> tuple[float, str]:
    """(default threshold, where it came from) of ``model_id``."""
    return with_store(lambda s: alerts.default_point(s, model_id))


# --- the alert policy and the risk score --------------------------------------------------------
@st.cache_data(show_spinner=False, max_entries=8)
def policy(stamp: str, path: str) -> AlertPolicy | None:
    """The alert policy in force (None while nothing is scored): the one "flagged"."""
    return with_store(policies.in_force)


@st.cache_data(show_spinner=False, max_entries=8)
def policy_history(stamp: str, path: str) -> list[PolicyRow]:
    return with_store(policies.history)


def risk_kind_text(stamp: str, path: str, model_id: str) -> tuple[str | None, str]:
    """(kind: 'probability' | 'percentile' | None, one sentence on what risk means)."""
    return _risk_kind_text(path, model_id)


@st.cache_data(show_spinner=False, max_entries=16)
def _risk_kind_text(path: str, model_id: str) -> tuple[str | None, str]:
    """Fixed when the model is trained (a model id is never reused), so keyed without the
    stamp: a decision or a publish does not reopen the store for it."""
    calibration = with_store(lambda s: policies.risk_calibration(s, model_id))
    return (None if calibration is None else calibration.kind,
            policies.risk_kind_text(calibration))


def risk_table(stamp: str, path: str) -> pd.DataFrame:
    """session_id, user_id, start_ts, score, risk (0-100), flagged under the policy in force,
    for every session its model scored. Shared between sessions: treat as read-only. Keyed
    on the policy's version and the scores' version, so a case decision reuses it."""
    found = policy(stamp, path)
    if found is None:
        return pd.DataFrame(columns=["session_id", "user_id", "start_ts", "score", "risk",
                                     "flagged"])
    ids = (found.model_id,)
    return _risk_table(path, found, scores_version(stamp, path, ids))


@st.cache_resource(show_spinner=False, max_entries=4,
                   hash_funcs={AlertPolicy: lambda p: repr(p.to_dict())})
def _risk_table(path: str, found: AlertPolicy, version: tuple) -> pd.DataFrame:
    """The verdicts of one policy version over its model's kept risk: publishing a version
    of the same model recomputes the flags only (ms), not the risk of every session."""
    table = _score_table(path, (found.model_id,), version)
    return policies.with_verdicts(_risk_scores(path, found.model_id, version), found, table)


@st.cache_resource(show_spinner="Scoring risk…", max_entries=4)
def _risk_scores(path: str, model_id: str, version: tuple) -> pd.DataFrame:
    table = _score_table(path, (model_id,), version)
    return with_store(lambda s: policies.risk_scores(s, model_id, table))


def next_policy_version(current: AlertPolicy) -> int:
    """The number publishing would give (the store numbers it; this is for the button)."""
    return current.version + 1


def policy_summary(stamp: str, path: str, sources: tuple[str, ...]) -> FlagSummary:
    """The policy's flags, labelled anomalies and alerts a day, for the Overview."""
    return alerts.policy_summary(risk_table(stamp, path), labels(stamp, path, sources))


@st.cache_resource(show_spinner=False, max_entries=8)
def sorted_scores(path: str, model_ids: tuple[str, ...], version: tuple) -> dict[str, Any]:
    """model -> its scores, sorted (its percentiles' reference), read on one connection;
    keyed on the scores' version, shared between sessions: read-only."""
    return with_store(lambda s: {m: queue.sorted_scores(s, m) for m in model_ids})


def policy_rows(policy: AlertPolicy) -> pd.DataFrame:
    """segment, threshold: the policy's thresholds, then what any other segment gets."""
    return pd.DataFrame(
        [{"segment": k, "threshold": v} for k, v in sorted(policy.thresholds.items())]
        + [{"segment": "(any other)", "threshold": policy.default}])


def history_rows(stamp: str, path: str) -> pd.DataFrame:
    """Every published version, newest first, one row each (thresholds as text)."""
    rows = policy_history(stamp, path)
    return pd.DataFrame([{"version": r.version, "detector": r.detector, "model": r.model_id,
                          "thresholds": ", ".join(f"{k} {v:.4g}"
                                                  for k, v in sorted(r.thresholds.items())),
                          "daily budget": r.daily_budget, "published by": r.published_by,
                          "published at": r.published_at, "note": r.note} for r in rows],
                        columns=["version", "detector", "model", "thresholds", "daily budget",
                                 "published by", "published at", "note"])


def draft_rows(policy: AlertPolicy, draft: dict[str, float], *, same_model: bool) -> pd.DataFrame:
    """segment, in force, new: a draft version beside the policy in force."""
    return pd.DataFrame([{"segment": seg, "in force": policy.threshold_for(seg) if same_model
                          else None, "new": value} for seg, value in sorted(draft.items())])


def compare_detectors(stamp: str, path: str, model_ids: Sequence[str],
                      sources: tuple[str, ...], label: Callable[[str], str]) -> pd.DataFrame:
    """Each detector at its own threshold in force: what it flags and which labelled
    anomalies it catches (counts, not scores: each detector has its own scale)."""
    found = policy(stamp, path)
    rows = []
    for model_id in model_ids:
        own = flag_summary(stamp, path, [model_id], sources)
        rows.append({"detector": label(model_id), "flagged": own.n_flagged,
                     "flag rate %": 100 * own.flag_rate,
                     "labelled anomalies caught": int((own.any_flag & own.anomalous).sum()),
                     "policy's model": found is not None and model_id == found.model_id})
    return pd.DataFrame(rows)


def policy_learning(stamp: str, path: str) -> alerts.PolicyLearning:
    """What the decisions taught, at the policy's thresholds (re-read on every write)."""
    return alerts.policy_learning(risk_table(stamp, path),
                                  labels(stamp, path, ("ground_truth",)),
                                  labels(stamp, path, ("ground_truth", "analyst")),
                                  labels(stamp, path, ("analyst",)))


def publish_policy(model_id: str, thresholds: dict[str, float], daily_budget: int | None,
                   note: str, analyst: str) -> AlertPolicy:
    """Publish the next version of the alert policy (admins only, audited in core)."""
    return with_store(lambda s: policies.publish(
        s, analyst=analyst, model_id=model_id, thresholds=thresholds,
        daily_budget=daily_budget, note=note), write=True, action="policy")
