"""Detection quality: every Anomalyst detector next to PyOD peers, over seeds, on generated
stress sets and on outside data (ADBench).

    python -m benchmarks.detection [--quick] [--seeds 5] [--datasets sample,adbench] [--json]
                                   [--adbench-sets cardio,thyroid] [--threads 1]
                                   [--methods a,b] [--supervised-on labelled] [--dump-scores DIR]

Run time: ``--quick`` (1 seed, small sizes) ~1 minute of CPU; the full run (5 seeds, every
set) ~23 minutes of CPU with one torch thread (one seed measured: generated sets 3.1 min,
ADBench 2.3 min, of which ~0.5 min is built once), so about that on two idle cores. On a
machine shared with other jobs give ``--threads 1``: two torch threads fighting for busy
cores were 4-8x slower in the small networks.

Data sets (``benchmarks.detection_data``; each in a fresh temporary store, built through
``core.ingest.ingest_events``): ``sample``, ``markov300`` (``markov``, the 50-type set, on
request), ``unseen_types``, ``constant_shift`` and ``adbench`` (ten sets); on request also
``sample_unlabelled``, ``first_purchase`` and ``first_purchase_ids``
(``benchmarks.detection_purchases``), ``payments`` and ``payments_unlabelled``
(``benchmarks.detection_payments``).

Methods, in the same run on the same split:
- our unsupervised detectors (every registered detector with ``requires_labels`` False; the
  sequence ones not on ADBench, whose sessions are one event of one type) and, on ``sample``
  (``--supervised-on``: other sets, or ``labelled`` for every set whose labels are in the
  store), the supervised ones, through ``core.pipeline.train_model`` / ``score_model`` with
  their default config and ``{"seed": s}``. Generated sets train on the sessions before the 70%
  time point (unsupervised detectors leave the labelled anomalies out, as in use); ADBench
  trains on its training part, passed as ``train_sessions`` (labels are not in the store, so
  the training part keeps its anomalies: ADBench's unsupervised protocol);
- ``ensemble``: ``train_model(store, "ensemble")`` after the members of that seed are scored;
- PyOD IForest, ECOD and AutoEncoder (VAE too, and DeepSVDD on the generated sets), default
  settings but for the epochs and batch size set below, ``random_state`` = seed. On the
  generated sets they get our session-feature matrix as it is, with PyOD's own preprocessing
  (its default: standardised on the training rows), fitted on the same training rows: the
  "default PyOD on our own features" the issues measure against. ``--peer-input robust``
  gives them our robust-standardised matrix clipped to +-10 instead, as before 2026-12-07
  (it weakened PyOD's VAE on the sample data from AP 0.485 to 0.308). On ADBench they get the
  set's own features with PyOD's preprocessing, so the comparison is with the published
  protocol;
- a bigram-surprisal reference on the sequence sets (not a peer).

Every method is judged on the test part: ROC-AUC, AP, recall at 1% FPR; our models also by F1
at their label-free default threshold (``core.pipeline.operating_point``, when it exists)
beside the oracle best F1. Mean and std over seeds; per-seed values in ``--json``. Detectors
without a seed (zscore, ECOD, the reference) run once. Training inputs are built once per data
set (timed apart) and reused across detectors and seeds: fit seconds are the detector's
training and registration, score seconds the scoring run with its writes.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import statistics
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks._util import machine, peak_rss_mb
from benchmarks.detection_data import (  # noqa: F401  (re-exported for other benchmarks)
    ADBENCH_CAP,
    ADBENCH_DIR,
    BuiltSet,
    adbench_files,
    adbench_name,
    build_adbench,
    build_constant_shift,
    build_markov,
    build_sample,
    build_sample_store,
    build_sample_unlabelled,
    build_unseen_types,
    markov_frames,
)
from benchmarks.detection_report import fmt_num as fmt

JSON_PREFIX = "BENCH_JSON "
DATASETS = ("sample", "markov300", "unseen_types", "constant_shift", "adbench")
OPTIONAL_DATASETS = ("markov", "sample_unlabelled", "first_purchase", "first_purchase_ids",
                     "payments", "payments_unlabelled")
PEER_INPUTS = ("pyod", "robust")
PEER_INPUT = "pyod"  # --peer-input
PEER_EPOCHS, PEER_BATCH = 10, 256  # as the benchmark always set them (PyOD AE default: 10)


# ------------------------------------------------------------------ helpers shared by benchmarks
def clock(func: Callable[[], Any], repeat: int = 1) -> tuple[float, float, Any]:
    """Median wall seconds, median CPU seconds (``time.process_time``: every thread of this
    process) of ``repeat`` runs, and the last result."""
    walls, cpus, result = [], [], None
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        result = func()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus), result


def clock_median(func: Callable[[], Any], under_s: float = 10.0) -> tuple[float, float, Any]:
    """``clock`` once; when that took under ``under_s`` s, twice more, and the medians of 3."""
    wall, cpu, result = clock(func)
    if wall >= under_s:
        return wall, cpu, result
    walls, cpus = [wall], [cpu]
    for _ in range(2):
        w, c, result = clock(func)
        walls.append(w)
        cpus.append(c)
    return statistics.median(walls), statistics.median(cpus), result


def device_info() -> dict[str, Any]:
    """The torch device the benchmarks run on (CUDA when available) and thread count."""
    import torch

    cuda = torch.cuda.is_available()
    return {
        "device": "cuda" if cuda else "cpu",
        "device_name": torch.cuda.get_device_name(0) if cuda else "cpu",
        "torch_threads": torch.get_num_threads(),
    }


def describe_machine() -> str:
    info = device_info()
    return f"{machine()}; torch device {info['device']} ({info['device_name']}), " \
           f"{info['torch_threads']} torch threads"


def emit_json(results: dict[str, Any]) -> None:
    print(JSON_PREFIX + json.dumps(results, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path | pd.Timestamp):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value)}")


def print_table(rows: list[dict[str, Any]], columns: list[tuple[str, str]]) -> None:
    """Rows as a fixed-width text table; ``columns`` are (key, header)."""
    cells = [[h for _, h in columns]] + [[fmt(r.get(k)) for k, _ in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    for n, row in enumerate(cells):
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                        for i, (c, w) in enumerate(zip(row, widths, strict=True))))
        if n == 0:
            print("  ".join("-" * w for w in widths))


# ------------------------------------------------------------------------------- evaluation
def test_metrics(scores: np.ndarray, y: np.ndarray, scenarios: np.ndarray) -> dict[str, Any]:
    """ROC-AUC, AP, recall at 1% FPR (and per scenario) and the oracle best F1."""
    from sklearn.metrics import precision_recall_curve

    from core.evaluate import evaluate_scores

    scores = np.asarray(scores, np.float64)
    finite = np.isfinite(scores)
    low = scores[finite].min() if finite.any() else 0.0
    scores = np.where(finite, scores, np.where(np.isposinf(scores), 1e300, low))
    out = evaluate_scores(scores, y, scenarios=scenarios)
    best_f1 = float("nan")
    if 0 < y.sum() < len(y):
        precision, recall, _ = precision_recall_curve(y, scores)
        f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
        best_f1 = float(f1.max())
    return {"roc_auc": out["roc_auc"], "ap": out["average_precision"],
            "recall_at_1pct_fpr": out["recall_at_fpr"],
            "recall_by_scenario": out.get("recall_by_scenario", {}), "best_f1": best_f1}


def f1_at(scores: np.ndarray, y: np.ndarray, threshold: float) -> float:
    """F1 of flagging ``scores >= threshold``."""
    flagged = np.asarray(scores, np.float64) >= threshold
    tp = int((flagged & y).sum())
    denominator = int(flagged.sum()) + int(y.sum())
    return 2 * tp / denominator if denominator else 0.0


DUMP_DIR: Path | None = None
"""Where ``--dump-scores`` writes each model's training reference and test scores (one .npz
per data set, method and seed), for label-free threshold experiments
(``python -m benchmarks.operating_point --from-dump DIR``)."""
ONLY_METHODS: set[str] | None = None
"""``--methods``: our detectors to run (peers always run); None runs them all."""
OVERRIDES: dict[str, Any] = {}
SUPERVISED_SETS: set[str] = {"sample"}
"""``--supervised-on``: the data sets our supervised detectors run on (they need the store's
labels; "labelled" means every set whose labels are in the store)."""
"""``--set FIELD=VALUE``: config fields given to every detector that has them (a variant)."""


def dump_scores(dataset: str, method: str, seed: int, store: Any, model_id: str,
                scores: np.ndarray, labels: np.ndarray) -> None:
    """Save a model's training-score quantiles (pooled, training, validation) and its test
    scores and labels."""
    if DUMP_DIR is None:
        return
    from core.pipeline.operating_point import operating_point

    point = operating_point(store, model_id)
    if point.reference is None:
        return
    DUMP_DIR.mkdir(parents=True, exist_ok=True)
    ref = point.reference
    np.savez(DUMP_DIR / f"{dataset}__{method}__{seed}.npz", reference=ref.pooled,
             n_reference=ref.n_train + ref.n_validation, train=ref.train,
             validation=ref.validation, n_train=ref.n_train, n_validation=ref.n_validation,
             scores=np.asarray(scores, np.float64), labels=np.asarray(labels, bool),
             threshold=point.threshold)


def dump_ensemble_inputs(dataset: str, seed: int, store: Any,
                         by_model: dict[str, tuple[str, int]], test_ids: np.ndarray,
                         test_y: np.ndarray) -> None:
    """Save what a label-free combiner sees: this seed's members' scores on every session
    they all scored, each session's start, the members' latest train end, and which
    sessions are the test part (with their labels), for combiner experiments."""
    if DUMP_DIR is None:
        return
    from core.pipeline.ensemble import _train_end, default_members
    from core.pipeline.registry import default_train_end, model_row

    members = [m for m in default_members(store) if m in by_model]
    if len(members) < 2:
        return
    wide = store.ensembles.member_scores(members)
    ends = [_train_end(model_row(store, m), default_train_end(store)) for m in members]
    position = pd.Series(np.arange(len(test_ids)), index=test_ids)
    test_index = position.reindex(wide["session_id"].to_numpy()).to_numpy()
    DUMP_DIR.mkdir(parents=True, exist_ok=True)
    np.savez(DUMP_DIR / f"{dataset}__ensemble_inputs__{seed}.npz",
             members=np.array([by_model[m][0] for m in members]),
             scores=np.vstack(wide["scores"].to_numpy()).astype(np.float64),
             start=wide["start_ts"].to_numpy().astype("datetime64[us]"),
             train_end=pd.Timestamp(max(ends)).to_datetime64().astype("datetime64[us]"),
             test_index=np.nan_to_num(test_index, nan=-1).astype(np.int64),
             test_y=np.asarray(test_y, bool))


def operating_point_of(store: Any, model_id: str) -> dict[str, Any] | None:
    """threshold, source (and rule, when the point names one) of a model's label-free
    default; None while the pipeline has no ``core.pipeline.operating_point`` ("–")."""
    try:
        from core.pipeline.operating_point import operating_point
    except ImportError:
        return None
    point = operating_point(store, model_id)
    out = {"threshold": float(point.threshold), "threshold_source": str(point.source)}
    if getattr(point, "rule", None):
        out["threshold_rule"] = str(point.rule)
    return out


def operating_point_available() -> bool:
    try:
        import core.pipeline.operating_point  # noqa: F401
    except ImportError:
        return False
    return True


def _bigram_scores(tokens: np.ndarray, mask: np.ndarray, train: np.ndarray) -> np.ndarray:
    """Max surprisal -log p(b | a) over a session's transitions, p from train counts (+0.5)."""
    vocab = int(tokens.max()) + 1
    prev, nxt = tokens[:, :-1], tokens[:, 1:]
    both = mask[:, :-1] & mask[:, 1:]
    counts = np.full((vocab, vocab), 0.5)
    np.add.at(counts, (prev[train][both[train]], nxt[train][both[train]]), 1.0)
    logp = np.log(counts / counts.sum(axis=1, keepdims=True))
    surprise = np.where(both, -logp[prev, nxt], 0.0)
    return surprise.max(axis=1)


def peers(n_features: int, epochs: int, device: str, extra: bool, *, preprocessing: bool
          ) -> dict[str, Callable[[int], Any]]:
    """PyOD detectors by name, each built for a seed; built lazily so a failing import is
    reported per peer. ``preprocessing``: PyOD's own standardisation (its default; off when
    the matrix is already standardised)."""
    common = {"verbose": 0, "preprocessing": preprocessing}

    def iforest(seed: int):
        from pyod.models.iforest import IForest
        return IForest(random_state=seed, n_jobs=1)

    def ecod(seed: int):
        from pyod.models.ecod import ECOD
        return ECOD()

    def autoencoder(seed: int):
        from pyod.models.auto_encoder import AutoEncoder
        return AutoEncoder(epoch_num=epochs, batch_size=PEER_BATCH, device=device,
                           random_state=seed, **common)

    def deep_svdd(seed: int):
        from pyod.models.deep_svdd import DeepSVDD
        return DeepSVDD(n_features=n_features, epochs=epochs, batch_size=PEER_BATCH,
                        random_state=seed, **common)

    def vae(seed: int):
        from pyod.models.vae import VAE
        return VAE(epoch_num=epochs, batch_size=PEER_BATCH, device=device, random_state=seed,
                   **common)

    out: dict[str, Callable[[int], Any]] = {"pyod IForest": iforest, "pyod ECOD": ecod,
                                            "pyod AutoEncoder": autoencoder}
    if extra:
        out |= {"pyod VAE": vae, "pyod DeepSVDD": deep_svdd}
    return out


SEEDLESS_PEERS = ("pyod ECOD",)


@contextlib.contextmanager
def reuse_training_inputs() -> Iterator[dict[Any, Any]]:
    """While active, ``train_model`` builds each (store, input kind, options) input once and
    reuses it: the events do not change within a data set, so every build would be identical.
    Scoring keeps its own path (the feature cache). Yields the memo (cleared on exit)."""
    import core.pipeline.training as training

    original = getattr(training, "build_input", None)
    memo: dict[Any, Any] = {}
    if original is None:  # the pipeline changed shape: build as it does
        yield memo
        return

    def memoised(store: Any, input_kind: str, spec: Any = None, **kwargs: Any) -> Any:
        if spec is not None or kwargs.get("session_ids") is not None:
            return original(store, input_kind, spec, **kwargs)
        pairs = tuple(sorted((k, v) for k, v in kwargs.items() if k != "progress"))
        options: Any = pairs
        try:
            hash(pairs)
        except TypeError:  # an unhashable option: its JSON text stands for it
            options = json.dumps(dict(pairs), sort_keys=True, default=repr)
        key = (str(store.path), input_kind, options)
        if key not in memo:
            memo[key] = original(store, input_kind, spec, **kwargs)
        return memo[key]

    training.build_input = memoised
    try:
        yield memo
    finally:
        training.build_input = original
        memo.clear()


def training_scope(store: Any, train_ids: list[str] | None) -> dict[str, Any]:
    """The ``training=`` argument ``train_model`` gives a feature detector's ``build_input``
    (the window or the sessions the feature spec learns from, and the history block where the
    pipeline's default turns it on), so a build here is the one the detectors train on and the
    peers get the same matrix; {} while the pipeline has no such argument."""
    import inspect

    from core.pipeline import default_train_end
    from core.pipeline.inputs import build_input

    if "training" not in inspect.signature(build_input).parameters:
        return {}
    from core.features.spec import TrainingScope

    history = None
    with contextlib.suppress(ImportError):  # the pipeline decides history by the data
        from core.features.history import HistorySpec
        from core.pipeline.history_default import history_by_default

        wanted = OVERRIDES.get("history_features")
        if wanted is None:
            wanted = history_by_default(store.summary.session_shape())
        history = HistorySpec() if wanted else None
    if train_ids is not None:
        return {"training": TrainingScope(session_ids=tuple(str(s) for s in train_ids),
                                          history=history)}
    return {"training": TrainingScope(until=default_train_end(store), history=history)}


def _config_for(name: str, seed: int, quick: bool) -> dict[str, Any]:
    """The detector's default config with its seed (and, with --quick, fewer epochs)."""
    from core.detectors import get_detector_class

    cls = get_detector_class(name)
    fields = {f.name for f in dataclasses.fields(cls.config_class)}
    config: dict[str, Any] = {}
    if "seed" in fields:
        config["seed"] = seed
    if quick and "epochs" in fields:
        config["epochs"] = 2 if cls.input_kind == "sequences" else 3
    config.update({k: v for k, v in OVERRIDES.items() if k in fields})
    return config


def _has_seed(name: str) -> bool:
    from core.detectors import get_detector_class

    cls = get_detector_class(name)
    return "seed" in {f.name for f in dataclasses.fields(cls.config_class)}


class Collector:
    """Per-method results of one data set: one dict per seed, in call order."""

    def __init__(self) -> None:
        self.methods: dict[str, dict[str, Any]] = {}

    def add(self, method: str, kind: str, entry: dict[str, Any], **attrs: Any) -> None:
        slot = self.methods.setdefault(method, {"method": method, "kind": kind, "per_seed": [],
                                                "errors": []})
        slot.update(attrs)
        if "error" in entry:
            slot["errors"].append(f"seed {entry.get('seed')}: {entry['error']}")
        else:
            slot["per_seed"].append(entry)


def evaluate_dataset(ds: BuiltSet, models_dir: Path, *, seeds: list[int], quick: bool,
                     extra_peers: bool) -> dict[str, Any]:
    """Every method on one built data set, for every seed."""
    from core.detectors import available_detectors, get_detector_class
    from core.detectors._scaling import fit_scaler
    from core.pipeline import default_train_end, labelled_scores, score_model, train_model
    from core.store import Store

    device = device_info()["device"]
    out: dict[str, Any] = {**ds.info, "notes": list(ds.notes), "inputs": {}}
    col = Collector()
    names = [n for n in available_detectors() if n != "ensemble"]
    unsupervised = [n for n in names if not get_detector_class(n).requires_labels]
    supervised = [n for n in names if get_detector_class(n).requires_labels]
    wants_supervised = ds.info["name"] in SUPERVISED_SETS or (
        "labelled" in SUPERVISED_SETS and ds.labels_in_store)
    ours = unsupervised + (supervised if wants_supervised else [])
    if not ds.sequence_models:
        ours = [n for n in ours if get_detector_class(n).input_kind != "sequences"]
    if ONLY_METHODS is not None:
        ours = [n for n in ours if n in ONLY_METHODS]
    with Store.open(ds.db) as store, reuse_training_inputs():
        import core.pipeline.training as training

        scope = training_scope(store, ds.train_ids)
        wall, cpu, feats = clock(lambda: training.build_input(store, "features", progress=False,
                                                              **scope))
        out["inputs"]["features"] = {"wall_s": wall, "cpu_s": cpu,
                                     "n_features": int(feats.data.values.shape[1])}
        seqs = None
        if any(get_detector_class(n).input_kind == "sequences" for n in ours):
            seq_scope = {k: dataclasses.replace(v, history=None) for k, v in scope.items()}
            wall, cpu, seqs = clock(lambda: training.build_input(store, "sequences",
                                                                 progress=False, **seq_scope))
            out["inputs"]["sequences"] = {"wall_s": wall, "cpu_s": cpu}
        meta = feats.meta[["session_id", "start_ts"]].reset_index(drop=True)
        order = meta["session_id"].to_numpy()
        truth = ds.truth.set_index("session_id")
        labelled = meta["session_id"].isin(truth.index).to_numpy()
        is_anom = truth["is_anomaly"].reindex(order).fillna(False).astype(bool).to_numpy()
        if ds.test_ids is not None:
            test_rows = meta["session_id"].isin(set(ds.test_ids)).to_numpy()
            train_rows = meta["session_id"].isin(set(ds.train_ids or [])).to_numpy()
        else:
            train_end = default_train_end(store)
            before = (meta["start_ts"] < train_end).to_numpy()
            test_rows = ~before & labelled
            # the unsupervised detectors' training rows: the store's labelled anomalies left
            # out; with no labels in the store (``*_unlabelled``) nothing is, for the peers too
            train_rows = before & ~is_anom if ds.labels_in_store else before
        test_ids = order[test_rows]
        test_y = is_anom[test_rows]
        scen = truth["scenario"].reindex(test_ids).fillna("normal").astype(str).to_numpy()
        test_scen = np.where(test_y, scen, "normal")
        test_start = meta["start_ts"].to_numpy()[test_rows]
        out.update(n_train=int(train_rows.sum()), n_test=int(test_rows.sum()),
                   n_test_anomalous=int(test_y.sum()))
        by_model: dict[str, tuple[str, int]] = {}  # model id -> (method, seed)
        test_scores: dict[tuple[str, int], np.ndarray] = {}

        def judge(method: str, seed: int, scores: np.ndarray) -> dict[str, Any]:
            test_scores[(method, seed)] = scores
            return {"seed": seed, **test_metrics(scores, test_y, test_scen)}

        def model_scores(model_id: str) -> np.ndarray:
            frame = labelled_scores(store, model_id)
            return frame.set_index("session_id")["score"].reindex(test_ids).to_numpy(np.float64)

        def with_operating_point(entry: dict[str, Any], model_id: str,
                                 scores: np.ndarray) -> None:
            try:
                point = operating_point_of(store, model_id)
            except Exception as exc:  # reported, not fatal
                entry["operating_point_error"] = f"{type(exc).__name__}: {exc}"
                return
            if point is not None:
                entry.update(point)
                entry["f1_default"] = f1_at(scores, test_y, point["threshold"])
                entry["flagged_share"] = float((scores >= point["threshold"]).mean())

        train_ids = list(ds.train_ids) if ds.train_ids is not None else None
        for seed in seeds:
            for name in ours:
                if seed != seeds[0] and not _has_seed(name):
                    continue  # deterministic: one run stands for every seed
                kind = "supervised" if get_detector_class(name).requires_labels else "anomalyst"
                entry: dict[str, Any] = {"seed": seed}
                try:
                    fit_wall, fit_cpu, trained = clock(lambda n=name, s=seed: train_model(
                        store, n, quiet=True, config=_config_for(n, s, quick),
                        models_dir=models_dir, train_sessions=train_ids))
                    score_wall, score_cpu, _ = clock(lambda t=trained: score_model(store,
                                                                                   t.model_id))
                    scores = model_scores(trained.model_id)
                    by_model[trained.model_id] = (name, seed)
                    entry = judge(name, seed, scores)
                    entry.update(fit_s=fit_wall, fit_cpu_s=fit_cpu, score_s=score_wall,
                                 score_cpu_s=score_cpu, n_train=trained.n_train,
                                 model_id=trained.model_id)
                    with_operating_point(entry, trained.model_id, scores)
                    dump_scores(ds.info["name"], name, seed, store, trained.model_id, scores,
                                test_y)
                except Exception as exc:  # a failing detector is a result, not a crash
                    entry["error"] = f"{type(exc).__name__}: {exc}"
                    traceback.print_exc()
                col.add(name, kind, entry, seeded=_has_seed(name))
            if len(ours) >= 2:  # an ensemble needs two members (not with --methods X)
                _ensemble(store, col, seed, by_model, judge, model_scores,
                          with_operating_point, test_start, test_y, test_scores, models_dir,
                          train_model, score_model)
                dump_ensemble_inputs(ds.info["name"], seed, store, by_model, test_ids, test_y)
        _peers(ds, col, seeds, feats, train_rows, test_rows, order, device, quick, extra_peers,
               judge, fit_scaler)
        if seqs is not None:
            seq_ids = seqs.meta["session_id"].to_numpy()
            seq_train = pd.Series(train_rows, index=order).reindex(seq_ids).to_numpy(bool)
            data = seqs.data
            wall, cpu, bigram = clock(lambda: _bigram_scores(data.tokens, data.mask, seq_train))
            entry = judge("bigram surprisal", seeds[0], pd.Series(bigram, index=seq_ids)
                          .reindex(test_ids).to_numpy(np.float64))
            entry.update(fit_s=wall, fit_cpu_s=cpu)
            col.add("bigram surprisal", "reference", entry, seeded=False)
    from benchmarks.detection_report import summarise

    out["methods"] = [summarise(m) for m in col.methods.values()]
    return out


def _ensemble(store: Any, col: Collector, seed: int, by_model: dict[str, tuple[str, int]],
              judge: Callable[..., dict[str, Any]], model_scores: Callable[[str], np.ndarray],
              with_operating_point: Callable[..., None], test_start: np.ndarray,
              test_y: np.ndarray, test_scores: dict[tuple[str, int], np.ndarray],
              models_dir: Path, train_model: Callable[..., Any],
              score_model: Callable[..., Any]) -> None:
    """The ensemble of this seed's members (the newest scored model of each kind), judged on
    the test part and, with its members, on the part after its own train end (its weights
    may have seen labels between the members' train end and that point)."""
    from core.detectors import get_detector_class
    from core.pipeline.registry import model_row

    entry: dict[str, Any] = {"seed": seed}
    try:
        fit_wall, fit_cpu, trained = clock(lambda: train_model(store, "ensemble",
                                                               models_dir=models_dir))
        score_wall, score_cpu, _ = clock(lambda: score_model(store, trained.model_id))
        row = model_row(store, trained.model_id)
        config = json.loads(row["config"])
        members = [by_model.get(m, (m, seed)) for m in config.get("members", [])]
        scores = model_scores(trained.model_id)
        entry = judge("ensemble", seed, scores)
        entry.update(fit_s=fit_wall, fit_cpu_s=fit_cpu, score_s=score_wall,
                     score_cpu_s=score_cpu, model_id=trained.model_id,
                     members=[m for m, _ in members],
                     weight_source=config.get("weight_source"))
        with_operating_point(entry, trained.model_id, scores)
        end = trained.train_end
        window = np.ones(len(test_y), bool) if end is None else (
            test_start >= np.datetime64(pd.Timestamp(end)))
        held: dict[str, Any] = {"n": int(window.sum()), "n_anomalous": int(test_y[window].sum()),
                "window_start": None if end is None else str(end)}
        if 0 < test_y[window].sum() < window.sum():
            from core.evaluate import evaluate_scores

            def ap(values: np.ndarray) -> float:
                return float(evaluate_scores(np.nan_to_num(values[window]), test_y[window])[
                    "average_precision"])

            held["ap"] = ap(scores)
            held["members_ap"] = {m: ap(test_scores[(m, s)]) for m, s in members
                                  if (m, s) in test_scores}
        entry["holdout"] = held
        label_free = all(not get_detector_class(m).requires_labels for m, _ in members
                         if m != "ensemble")
    except Exception as exc:
        entry["error"] = f"{type(exc).__name__}: {exc}"
        traceback.print_exc()
        label_free = True
    col.add("ensemble", "ensemble", entry, seeded=True, label_free=label_free)


def peer_matrices(values: np.ndarray, train_rows: np.ndarray, test_rows: np.ndarray,
                  mode: str, fit_scaler: Callable[..., Any]
                  ) -> tuple[np.ndarray, np.ndarray, bool]:
    """(training rows, test rows, PyOD's own preprocessing on?) of our feature matrix for the
    peers: as it is with PyOD standardising it (``pyod``), or robust-standardised on the
    training rows and clipped to +-10 (``robust``)."""
    if mode == "pyod":
        x_all = np.asarray(values, np.float32)
        return x_all[train_rows], x_all[test_rows], True
    centre, scale = fit_scaler(values[train_rows], "robust")
    x_all = np.clip((values - centre) / scale, -10, 10).astype(np.float32)
    return x_all[train_rows], x_all[test_rows], False


def _peers(ds: BuiltSet, col: Collector, seeds: list[int], feats: Any, train_rows: np.ndarray,
           test_rows: np.ndarray, order: np.ndarray, device: str, quick: bool,
           extra_peers: bool, judge: Callable[..., dict[str, Any]],
           fit_scaler: Callable[..., Any]) -> None:
    if ds.raw is not None:  # the set's own features (ADBench), scaled as ADBench does
        ids, x = ds.raw
        position = pd.Series(np.arange(len(ids)), index=ids)
        x_train = x[position.reindex(order[train_rows]).to_numpy()]
        x_test = x[position.reindex(order[test_rows]).to_numpy()]
        preprocessing = True
    else:
        x_train, x_test, preprocessing = peer_matrices(feats.data.values, train_rows,
                                                       test_rows, PEER_INPUT, fit_scaler)
    epochs = 3 if quick else PEER_EPOCHS
    makers = peers(x_train.shape[1], epochs, device, extra_peers, preprocessing=preprocessing)
    if ds.raw is not None:  # ADBench: PyOD's VAE (the vae's peer, issue #25), not DeepSVDD
        makers.pop("pyod DeepSVDD", None)
    for name, make in makers.items():
        for seed in seeds:
            if seed != seeds[0] and name in SEEDLESS_PEERS:
                continue
            entry: dict[str, Any] = {"seed": seed}
            try:
                if seed == seeds[0]:
                    make(seed).fit(x_train[:512])  # warm-up: numba JIT, torch kernels
                fit_wall, fit_cpu, model = clock(lambda mk=make, s=seed: mk(s).fit(x_train))
                score_wall, score_cpu, scores = clock(lambda m=model: m.decision_function(x_test))
                entry = judge(name, seed, np.asarray(scores, np.float64))
                entry.update(fit_s=fit_wall, fit_cpu_s=fit_cpu, score_s=score_wall,
                             score_cpu_s=score_cpu, n_train=len(x_train))
            except Exception as exc:
                entry["error"] = f"{type(exc).__name__}: {exc}"
                traceback.print_exc()
            col.add(name, "peer", entry, seeded=name not in SEEDLESS_PEERS)


# -------------------------------------------------------------------------------------- run
@dataclasses.dataclass
class Sizes:
    users: int = 4000
    days: int = 20
    markov_sessions: int = 10_000
    stress_sessions: int = 6_000
    adbench_cap: int = ADBENCH_CAP
    data_seed: int = 7

    @classmethod
    def quick(cls) -> Sizes:
        return cls(users=1000, days=14, markov_sessions=2000, stress_sessions=3000,
                   adbench_cap=5000)


def _builders(sizes: Sizes, datasets: list[str], adbench_dir: Path,
              adbench_sets: list[str] | None) -> list[tuple[str, str, Callable[[Path], BuiltSet]]]:
    """(group, name, build(db)) for every selected set, in order."""
    out: list[tuple[str, str, Callable[[Path], BuiltSet]]] = []
    for name in datasets:
        if name == "sample":
            out.append(("", name, lambda db: build_sample(db, sizes.users, sizes.days,
                                                          sizes.data_seed)))
        elif name == "sample_unlabelled":
            out.append(("", name, lambda db: build_sample_unlabelled(
                db, sizes.users, sizes.days, sizes.data_seed)))
        elif name in ("markov", "markov300"):
            n_types = 50 if name == "markov" else 300
            out.append(("", name, lambda db, t=n_types: build_markov(
                db, sizes.markov_sessions, t, sizes.data_seed)))
        elif name == "unseen_types":
            out.append(("", name, lambda db: build_unseen_types(db, sizes.stress_sessions,
                                                                sizes.data_seed)))
        elif name == "constant_shift":
            out.append(("", name, lambda db: build_constant_shift(db, sizes.stress_sessions,
                                                                  sizes.data_seed)))
        elif name in ("first_purchase", "first_purchase_ids"):
            from benchmarks.detection_purchases import build_first_purchase

            numbers = name.endswith("_ids")
            out.append(("", name, lambda db, ids=numbers: build_first_purchase(
                db, sizes.stress_sessions, sizes.data_seed, numbers=ids)))
        elif name in ("payments", "payments_unlabelled"):
            from benchmarks.detection_payments import build_payments, build_payments_unlabelled

            build = build_payments if name == "payments" else build_payments_unlabelled
            out.append(("", name, lambda db, b=build: b(db, sizes.data_seed)))
        elif name == "adbench":
            files = adbench_files(adbench_dir)
            if adbench_sets:
                files = [f for f in files if adbench_name(f) in adbench_sets]
            if not files:
                raise SystemExit(f"adbench: no .npz files in {adbench_dir}"
                                 + (f" named {adbench_sets}" if adbench_sets else ""))
            for path in files:
                out.append(("adbench", adbench_name(path), lambda db, p=path: build_adbench(
                    db, p, cap=sizes.adbench_cap)))
        else:
            raise SystemExit(f"--datasets must name sets of {DATASETS + OPTIONAL_DATASETS}, "
                             f"got {name!r}")
    return out


def run(*, quick: bool = False, seeds: int | None = None, datasets: list[str] | None = None,
        sizes: Sizes | None = None, adbench_dir: Path = ADBENCH_DIR,
        adbench_sets: list[str] | None = None, extra_peers: bool = True) -> dict[str, Any]:
    """Every selected data set; returns {"machine", ..., "datasets": [...], "targets": [...]}."""
    from benchmarks.detection_report import check_targets

    sizes = sizes or (Sizes.quick() if quick else Sizes())
    n_seeds = seeds if seeds is not None else (1 if quick else 5)
    seed_list = list(range(n_seeds))
    chosen = datasets or list(DATASETS)
    started = time.perf_counter()
    out: dict[str, Any] = {"machine": describe_machine(), **device_info(), "quick": quick,
                           "seeds": seed_list, "sizes": dataclasses.asdict(sizes),
                           "operating_point": operating_point_available(),
                           "peer_epochs": 3 if quick else PEER_EPOCHS, "peer_batch": PEER_BATCH,
                           "datasets": []}
    with tempfile.TemporaryDirectory(prefix="anomalyst-detection-") as tmp:
        for group, name, build in _builders(sizes, chosen, Path(adbench_dir), adbench_sets):
            db = Path(tmp) / f"{name}.duckdb"
            print(f"[{time.perf_counter() - started:6.0f} s] {name}: building", flush=True)
            wall, cpu, built = clock(lambda b=build, d=db: b(d))
            info = evaluate_dataset(built, Path(tmp) / f"models-{name}", seeds=seed_list,
                                    quick=quick, extra_peers=extra_peers)
            info.update(group=group, build_wall_s=wall, build_cpu_s=cpu)
            info["leader_ap"] = leader(info["methods"])
            out["datasets"].append(info)
            _remove_store(db)
    out["targets"] = check_targets(out)
    out["wall_s"] = time.perf_counter() - started
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def _remove_store(db: Path) -> None:
    for path in db.parent.glob(db.name + "*"):
        with contextlib.suppress(OSError):
            path.unlink()


def leader(methods: list[dict[str, Any]]) -> str:
    scored = [m for m in methods if m["kind"] != "reference" and m.get("ap_mean") is not None
              and not np.isnan(m["ap_mean"])]
    if not scored:
        return "–"
    best = max(scored, key=lambda m: m["ap_mean"])
    return f"{best['method']} (AP {best['ap_mean']:.3f})"


def report(results: dict[str, Any]) -> None:
    from benchmarks.detection_report import print_report

    print_report(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="1 seed, small sizes, fewer epochs: ~2 minutes, checks it runs")
    parser.add_argument("--seeds", type=int, help="seeds 0..N-1 (default 5; 1 with --quick)")
    parser.add_argument("--datasets", help=f"comma-separated subset of {','.join(DATASETS)} "
                        f"(also: {','.join(OPTIONAL_DATASETS)})")
    parser.add_argument("--adbench-sets", help="only these ADBench sets, e.g. cardio,thyroid")
    parser.add_argument("--adbench-dir", default=str(ADBENCH_DIR))
    parser.add_argument("--adbench-cap", type=int, help=f"row cap (default {ADBENCH_CAP:,})")
    parser.add_argument("--users", type=int, help="sample users (default 4000)")
    parser.add_argument("--days", type=int, help="sample days (default 20)")
    parser.add_argument("--markov-sessions", type=int, help="Markov sessions (default 10,000)")
    parser.add_argument("--stress-sessions", type=int,
                        help="unseen_types / constant_shift sessions (default 6,000)")
    parser.add_argument("--no-extra-peers", action="store_true",
                        help="leave out PyOD VAE and DeepSVDD")
    parser.add_argument("--threads", type=int,
                        help="torch compute threads (default: torch's own; 1 helps a lot on "
                             "a machine shared with other jobs)")
    parser.add_argument("--json", action="store_true", help="also print one JSON line")
    parser.add_argument("--methods", help="only these of our detectors (peers always run)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="a config field for every detector that has it, e.g. "
                             "trim_fraction=0 (a JSON value; repeatable)")
    parser.add_argument("--supervised-on", default="sample", metavar="SETS",
                        help="data sets our supervised detectors run on (default sample; "
                             "'labelled': every set whose labels are in the store)")
    parser.add_argument("--peer-input", choices=PEER_INPUTS, default="pyod",
                        help="what the PyOD peers see on our sets: our feature matrix with "
                             "PyOD's own standardisation (default), or robust-standardised "
                             "and clipped to +-10 by our scaler (the comparison before "
                             "2026-12-07)")
    parser.add_argument("--dump-scores", metavar="DIR",
                        help="save each model's training reference and test scores here")
    args = parser.parse_args()
    global DUMP_DIR, ONLY_METHODS, SUPERVISED_SETS, PEER_INPUT
    PEER_INPUT = args.peer_input
    SUPERVISED_SETS = set(args.supervised_on.split(","))
    for item in args.set:
        field, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--set must be FIELD=VALUE, got {item!r}")
        OVERRIDES[field] = json.loads(value)
    DUMP_DIR = Path(args.dump_scores) if args.dump_scores else None
    ONLY_METHODS = set(args.methods.split(",")) if args.methods else None
    import logging

    if args.threads is not None:
        import torch

        torch.set_num_threads(max(args.threads, 1))

    logging.basicConfig(level=logging.WARNING)
    sizes = Sizes.quick() if args.quick else Sizes()
    for field in ("users", "days", "markov_sessions", "stress_sessions", "adbench_cap"):
        if getattr(args, field) is not None:
            setattr(sizes, field, getattr(args, field))
    if args.seeds is not None and args.seeds < 1:
        parser.error(f"--seeds must be >= 1, got {args.seeds}")
    results = run(quick=args.quick, seeds=args.seeds,
                  datasets=args.datasets.split(",") if args.datasets else None, sizes=sizes,
                  adbench_dir=Path(args.adbench_dir),
                  adbench_sets=args.adbench_sets.split(",") if args.adbench_sets else None,
                  extra_peers=not args.no_extra_peers)
    report(results)
    if args.json:
        emit_json(results)


if __name__ == "__main__":
    main()
