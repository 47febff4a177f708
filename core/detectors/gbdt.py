"""Gradient-boosted trees (LightGBM) on the session features, trained on labels; score =
calibrated probability that the session is anomalous.

Why LightGBM rather than XGBoost: both are well kept and both give exact TreeSHAP, but
LightGBM's wheel is a small CPU build (10 MB installed; the plain ``xgboost`` wheel on Linux
bundles its CUDA build, hundreds of MB, and the CPU-only one is a separate package name), its
histogram training is fast on the two shared cores this project is sized for, it
weights the rare class and stops early on a validation set natively, its text model format
(``model_to_string``) lets us save a model without pickle, and ``shap.TreeExplainer`` reads a
LightGBM booster directly for exact SHAP values.

Training follows the other supervised detectors (``core.detectors._supervised``): labels are
checked, the latest ``validation_fraction`` of the (time-ordered) sessions is held out, and
positives are weighted by ``pos_weight`` (default n_negative / n_positive of the training
part, "balanced", capped at 1000) in the loss. Boosting stops once the validation log-loss has
not improved for ``early_stopping_rounds`` rounds, and the best round's trees are kept. That
log-loss is of the prior-corrected probability sigmoid(margin - log(pos_weight)), unweighted:
a proper score of the probability the model reports (before Platt's fine-tuning) on the real
class mix. The loss weighted like training lets a handful of validation positives, each
weighted ~40x, decide: it stopped after ~30 rounds at learning rate 0.05 on the sample data
(2,000 users x 30 days: test ROC-AUC 0.931-0.934); ROC-AUC did well there (0.951-0.964) but
stopped after ~30 rounds when the window held 3 positives (0.82-0.88); the prior-corrected
log-loss was the steadiest over both (0.938-0.959 and 0.891-0.900; ``early_stopping_metric``
picks "auc" or "average_precision" instead).

Calibration is Platt scaling on the validation window (the shared ``fit_calibration``: the
log(pos_weight) prior shift of the weighted loss is removed, then a slope and intercept are fit
with Platt's smoothed targets). Platt rather than isotonic: the validation window holds few
positives (tens in the sample data), where isotonic regression overfits into a step function
whose flat steps tie sessions the trees had ranked apart (the queue loses its order and the
ROC-AUC drops); Platt's map is strictly increasing, so the ranking and the ROC-AUC are those of
the trees. With fewer than ``min_calibration_positives`` anomalous sessions in the validation
window (or no validation window), only the prior shift is removed; ``history_`` records which
calibration was used and why (the training pipeline stores it in the model's metrics).

Training is deterministic: ``seed`` seeds bagging and feature sampling, and LightGBM's
``deterministic`` mode gives the same trees for any ``num_threads`` (0 = every core this
process may use).

>>> import numpy as np
>>> from core.datasets import FeatureMatrix
>>> rng = np.random.default_rng(0)
>>> x = rng.normal(size=(400, 4)).astype(np.float32)
>>> y = (x[:, 0] > 1.2).astype(float)
>>> data = FeatureMatrix(np.arange(400).astype(object), x, ("a", "b", "c", "d"))
>>> detector = GBDTDetector(GBDTConfig(n_estimators=20, min_child_samples=5)).fit(data, y)
>>> p = detector.score(data)
>>> p.shape, bool(((p >= 0) & (p <= 1)).all())
((400,), True)
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import os
import warnings
from typing import Any, ClassVar, Self

import numpy as np

from core.datasets import FeatureMatrix
from core.detectors._supervised import (
    Calibration,
    average_precision,
    check_labels,
    fit_calibration,
    resolve_pos_weight,
    split_supervised,
)
from core.detectors.base import FeatureDetector, require_arrays
from core.detectors.config import DetectorConfig, check_choice, check_float, check_int
from core.detectors.registry import register
from core.errors import ConfigError, ModelError

logger = logging.getLogger(__name__)

GBDT_CALIBRATIONS = ("platt", "none")
STOPPING_METRICS = ("logloss", "auc", "average_precision")
BOOSTER_ARRAY = "booster"
"""The booster's LightGBM text model, as UTF-8 bytes (uint8) in model.safetensors: covered by
the model's checksum like any weights, and never pickled."""


@dataclasses.dataclass(frozen=True)
class GBDTConfig(DetectorConfig):
    """LightGBM settings.

    Attributes:
        n_estimators: boosting rounds at most (early stopping usually ends sooner).
        learning_rate: shrinkage of each tree.
        num_leaves: leaves per tree at most (LightGBM grows trees leaf-wise).
        max_depth: depth limit of each tree; -1 = none (``num_leaves`` bounds the size).
        min_child_samples: sessions per leaf at least.
        subsample: share of the training sessions each tree sees (bagging); 1 = all.
        colsample_bytree: share of the features each tree sees; 1 = all.
        reg_lambda: L2 penalty on leaf values.
        early_stopping_rounds: rounds without improvement of the validation metric before
            boosting stops (the best round is kept).
        early_stopping_metric: what early stopping watches on the validation window:
            "logloss" (of the prior-corrected probability, unweighted), "auc" (ROC-AUC) or
            "average_precision"; the last two need both classes in the window, else
            "logloss" is used.
        pos_weight: weight of a positive in the loss; None = n_negative / n_positive of the
            training part (capped at 1000); 1.0 = no class weighting.
        validation_fraction: share of the latest sessions held out for early stopping,
            calibration and the validation AP; 0 = none (all rounds run, prior-shift
            calibration only).
        calibration: "platt" (on the validation window) or "none" (raw sigmoid of the
            weighted model).
        min_calibration_positives: anomalous validation sessions needed to fit Platt
            scaling; with fewer, only the class weight's prior shift is removed.
        refit: after early stopping picks the number of rounds on the held-out latest
            window, train again on every session, that window included, for as many rounds
            (scaled by the share of sessions added), and calibrate its margins with the
            Platt fit of the held-out model. The latest sessions are the most like the ones
            scored next (a merchant compromised last week, a device farm still opening
            accounts); holding them out of the final model left their incidents unlearnt.
        num_threads: LightGBM threads; 0 = every core this process may use.
        seed: seeds bagging and feature sampling; same seed, same data -> same scores.
        history_features: train on the point-in-time history and entity features too (see
            ``DetectorConfig``); on by default here: trees split on them as they are, and
            the signal of compromised entities and off-pattern spending lies only there.
    """

    history_features: bool = True

    n_estimators: int = 500
    learning_rate: float = 0.05
    num_leaves: int = 31
    max_depth: int = -1
    min_child_samples: int = 20
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    reg_lambda: float = 1.0
    early_stopping_rounds: int = 50
    early_stopping_metric: str = "logloss"
    pos_weight: float | None = None
    validation_fraction: float = 0.2
    calibration: str = "platt"
    min_calibration_positives: int = 10
    refit: bool = True
    num_threads: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("history_features", "refit"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be a bool, got {getattr(self, name)!r}. "
                                  "Pass True or False.")
        check_int("n_estimators", self.n_estimators, 1, 100_000)
        check_float("learning_rate", self.learning_rate, 0.0, 1.0, low_open=True)
        check_int("num_leaves", self.num_leaves, 2, 131_072)
        if self.max_depth != -1:
            check_int("max_depth (-1 = no limit)", self.max_depth, 1, 64)
        check_int("min_child_samples", self.min_child_samples, 1)
        check_float("subsample", self.subsample, 0.0, 1.0, low_open=True)
        check_float("colsample_bytree", self.colsample_bytree, 0.0, 1.0, low_open=True)
        check_float("reg_lambda", self.reg_lambda, 0.0, 1e6)
        check_int("early_stopping_rounds", self.early_stopping_rounds, 1)
        check_choice("early_stopping_metric", self.early_stopping_metric, STOPPING_METRICS)
        if self.pos_weight is not None:
            check_float("pos_weight", self.pos_weight, 0.0, 1e6, low_open=True)
        check_float("validation_fraction", self.validation_fraction, 0.0, 0.5)
        check_choice("calibration", self.calibration, GBDT_CALIBRATIONS)
        check_int("min_calibration_positives", self.min_calibration_positives, 1)
        check_int("num_threads (0 = every core)", self.num_threads, 0, 1024)
        check_int("seed", self.seed, 0, 2**31 - 1)


@dataclasses.dataclass(frozen=True)
class GBDTHistory:
    """What boosting did: the losses per round, where it stopped and how it was calibrated.

    Attributes:
        metric: what early stopping watched ("" without a validation window).
        val_metric: that metric on the validation window after each round.
        best_iteration: rounds kept (the best validation round, or all without validation).
        stopped_early: boosting ended before ``step_budget`` rounds.
        n_steps: rounds run; step_budget: ``n_estimators``.
        calibration: "platt", "prior_shift" or "none"; calibration_note: why, when it is not
            what the config asked for.
        n_validation, n_validation_anomalous: sessions in the validation window.
        refit_rounds: rounds of the model refitted on every session (0: not refitted).
    """

    metric: str = ""
    val_metric: tuple[float, ...] = ()
    best_iteration: int = 0
    stopped_early: bool = False
    n_steps: int = 0
    step_budget: int = 0
    calibration: str = "none"
    calibration_note: str | None = None
    n_validation: int = 0
    n_validation_anomalous: int = 0
    refit_rounds: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {"val_metric": list(self.val_metric)}

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> GBDTHistory:
        values = values or {}
        note = values.get("calibration_note")
        return cls(str(values.get("metric", "")),
                   tuple(float(v) for v in values.get("val_metric", ())),
                   int(values.get("best_iteration", 0)), bool(values.get("stopped_early", False)),
                   int(values.get("n_steps", 0)), int(values.get("step_budget", 0)),
                   str(values.get("calibration", "none")), None if note is None else str(note),
                   int(values.get("n_validation", 0)),
                   int(values.get("n_validation_anomalous", 0)),
                   int(values.get("refit_rounds", 0)))


@dataclasses.dataclass(frozen=True)
class TreeShap:
    """Exact TreeSHAP of the booster's raw margin (log-odds before calibration).

    ``values.sum(axis=1) + expected_value == margin`` up to floating point.
    """

    values: np.ndarray  # (n, f)
    expected_value: float
    margin: np.ndarray  # (n,)


def _prior_logloss(pos_weight: float) -> Any:
    """LightGBM eval function: mean log-loss of sigmoid(margin - log(pos_weight)), unweighted.

    With the built-in binary objective LightGBM hands it probabilities, so the margin is
    recovered as their logit (clipped away from 0 and 1).
    """
    shift = math.log(pos_weight)

    def evaluate(preds: np.ndarray, dataset: Any) -> tuple[str, float, bool]:
        y = np.asarray(dataset.get_label(), dtype=np.float64)
        p = np.clip(np.asarray(preds, dtype=np.float64), 1e-15, 1.0 - 1e-15)
        z = np.log(p) - np.log1p(-p) - shift
        return "logloss", float(np.mean(np.logaddexp(0.0, z) - y * z)), False

    return evaluate


def resolve_threads(configured: int) -> int:
    """``configured``, or every core this process may use when it is 0."""
    if configured:
        return configured
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@register("gbdt")
class GBDTDetector(FeatureDetector[GBDTConfig]):
    """Supervised gradient-boosted trees (LightGBM) on the session feature matrix.

    Learned: ``feature_names_``, ``booster_``, ``pos_weight_``, ``calibration_``,
    ``validation_ap_`` and ``history_``.
    """

    config_class = GBDTConfig
    requires_labels = True
    outputs_probability = True
    tiny_config: ClassVar[dict[str, Any]] = {
        "n_estimators": 20, "min_child_samples": 5, "num_threads": 1}
    booster_: Any
    pos_weight_: float
    calibration_: Calibration
    validation_ap_: float | None
    history_: GBDTHistory

    # -------------------------------------------------------------------------------- fit
    def fit(self, data: FeatureMatrix, y: np.ndarray | None = None,
            event_labels: np.ndarray | None = None) -> Self:
        """Train on ``data`` (sorted by time) and 0/1 labels ``y``; ``event_labels`` is ignored
        (features have no events). The latest ``validation_fraction`` of sessions is held out
        for early stopping, calibration and the validation AP."""
        import lightgbm as lgb

        cfg = self.config
        values = self._values_for_fit(data)
        labels = check_labels(y, len(values), self.kind).astype(np.float64)
        train_idx, val_idx = split_supervised(len(values), labels, cfg.validation_fraction)
        pos_weight = resolve_pos_weight(labels[train_idx], cfg.pos_weight)

        def weights(idx: np.ndarray) -> np.ndarray:
            return np.where(labels[idx] > 0.5, pos_weight, 1.0)

        train_set = lgb.Dataset(values[train_idx], labels[train_idx],
                                weight=weights(train_idx), free_raw_data=True)
        evals: dict[str, dict[str, list[float]]] = {}
        params, metric, feval = self._params(), "", None
        valid_sets: list[Any] = []
        callbacks: list[Any] = [lgb.record_evaluation(evals)]
        if len(val_idx):
            both = 0 < labels[val_idx].sum() < len(val_idx)
            metric = cfg.early_stopping_metric if both else "logloss"
            if metric != cfg.early_stopping_metric:
                logger.warning("gbdt: the validation window lacks a class; early stopping "
                               "watches the log-loss instead of %s", cfg.early_stopping_metric)
            if metric == "logloss":
                feval = _prior_logloss(pos_weight)
            else:
                params["metric"] = metric
            # Unweighted: the ranking metrics and the prior-corrected log-loss are judged on
            # the real class mix.
            valid_sets.append(lgb.Dataset(values[val_idx], labels[val_idx], reference=train_set))
            callbacks.append(lgb.early_stopping(cfg.early_stopping_rounds,
                                                first_metric_only=True, verbose=False))
        booster = lgb.train(params, train_set, num_boost_round=cfg.n_estimators,
                            valid_sets=valid_sets, valid_names=["validation"][:len(valid_sets)],
                            feval=feval, callbacks=callbacks)
        # With a validation set lgb.train hands back the best round's trees only; the rounds
        # run are in the evaluation log.
        watched = tuple(float(v) for v in evals.get("validation", {}).get(metric, []))
        n_steps = len(watched) if watched else booster.current_iteration()
        best = int(booster.best_iteration) if watched and booster.best_iteration else n_steps
        # Keep the best round's trees only: the fitted and the loaded model are the same text.
        self.booster_ = lgb.Booster(model_str=booster.model_to_string(num_iteration=best))
        self.feature_names_ = tuple(data.names)
        self.pos_weight_ = pos_weight
        val_margin = self._margin(values[val_idx]) if len(val_idx) else np.empty(0)
        val_y = labels[val_idx]
        self.calibration_, note = self._calibrate(val_margin, val_y, pos_weight)
        self.validation_ap_ = average_precision(val_margin, val_y) if len(val_idx) else None
        refit_rounds = 0
        if cfg.refit and len(val_idx) and 0 < labels.sum() < len(labels):
            # Judged and calibrated on the held-out window above; then every session.
            refit_rounds = max(1, round(best * len(labels) / max(len(train_idx), 1)))
            every = np.arange(len(labels))
            full = lgb.Dataset(values, labels, weight=weights(every), free_raw_data=True)
            refitted = lgb.train(self._params(), full, num_boost_round=refit_rounds)
            self.booster_ = lgb.Booster(model_str=refitted.model_to_string())
        self.history_ = GBDTHistory(
            metric=metric, val_metric=watched,
            best_iteration=best, stopped_early=n_steps < cfg.n_estimators, n_steps=n_steps,
            step_budget=cfg.n_estimators, calibration=self.calibration_.method,
            calibration_note=note, n_validation=len(val_idx),
            n_validation_anomalous=int(val_y.sum()), refit_rounds=refit_rounds)
        logger.info("gbdt: %d of %d rounds kept (%d run), calibration %s, validation AP %s, "
                    "refitted on every session for %d rounds", best, cfg.n_estimators, n_steps,
                    self.calibration_.method,
                    "n/a" if self.validation_ap_ is None else f"{self.validation_ap_:.3f}",
                    refit_rounds)
        return self

    def _params(self) -> dict[str, Any]:
        cfg = self.config
        return {
            "objective": "binary", "metric": "none", "boosting_type": "gbdt",
            "learning_rate": cfg.learning_rate, "num_leaves": cfg.num_leaves,
            "max_depth": cfg.max_depth, "min_child_samples": cfg.min_child_samples,
            "bagging_fraction": cfg.subsample, "bagging_freq": 1 if cfg.subsample < 1 else 0,
            "feature_fraction": cfg.colsample_bytree, "lambda_l2": cfg.reg_lambda,
            "num_threads": resolve_threads(cfg.num_threads), "seed": cfg.seed,
            "deterministic": True, "force_col_wise": True, "verbosity": -1,
        }

    def _calibrate(self, margin: np.ndarray, y: np.ndarray,
                   pos_weight: float) -> tuple[Calibration, str | None]:
        """The calibration and, when it falls back to the prior shift, why."""
        cfg = self.config
        if cfg.calibration == "none":
            return Calibration(1.0, 0.0, "none"), None
        n_pos = int(y.sum())
        if len(y) == 0:
            note = ("no validation window (validation_fraction 0, too few sessions, or the "
                    "training part lacked a class): only the class weight's prior shift is "
                    "removed")
        elif n_pos < cfg.min_calibration_positives or n_pos == len(y):
            note = (f"the validation window holds {n_pos} anomalous of {len(y)} sessions, "
                    f"fewer than min_calibration_positives ({cfg.min_calibration_positives}) "
                    "or no normal ones: Platt scaling was not fitted; only the class weight's "
                    "prior shift is removed")
        else:
            return fit_calibration(margin, y, "platt", pos_weight), None
        logger.warning("gbdt calibration: %s", note)
        return Calibration(1.0, -math.log(pos_weight), "prior_shift"), note

    # ------------------------------------------------------------------------------ score
    def _margin(self, values: np.ndarray) -> np.ndarray:
        """float64 (n,) raw margin (log-odds of the weighted model) of float32 (n, f) rows."""
        out = self.booster_.predict(values, raw_score=True,
                                    num_threads=resolve_threads(self.config.num_threads))
        return np.asarray(out, dtype=np.float64).reshape(len(values))

    def score(self, data: FeatureMatrix) -> np.ndarray:
        """float64 (n,) calibrated probability that each session is anomalous."""
        margin = self._margin(self._values_for_score(data))
        return self.calibration_.apply(margin)

    def raw_margin(self, data: FeatureMatrix) -> np.ndarray:
        """float64 (n,) the booster's raw output (before calibration)."""
        return self._margin(self._values_for_score(data))

    # ------------------------------------------------------------------------------- SHAP
    def tree_shap(self, data: FeatureMatrix, background: FeatureMatrix | None = None,
                  ) -> TreeShap:
        """Exact SHAP values of the raw margin by ``shap.TreeExplainer``.

        Without ``background``: path-dependent TreeSHAP (the expected value is the trees'
        cover-weighted mean over the training data). With it: interventional TreeSHAP, exact
        for the background as the reference distribution (the expected value is the mean
        margin over the background rows), as the other feature detectors' explanations are.
        """
        values = self._values_for_score(data)
        explainer = self._tree_explainer(
            None if background is None else self._values_for_score(background))
        with warnings.catch_warnings():  # shap notes a change of its LightGBM output type
            warnings.simplefilter("ignore", UserWarning)
            raw = explainer.shap_values(values.astype(np.float64))
        if isinstance(raw, list):  # one array per class: the positive class is the last
            raw = raw[-1]
        contributions = np.asarray(raw, dtype=np.float64)
        expected = np.asarray(explainer.expected_value, dtype=np.float64).ravel()[-1]
        return TreeShap(contributions.reshape(len(values), -1), float(expected),
                        self._margin(values))

    def _tree_explainer(self, reference: np.ndarray | None) -> Any:
        """A ``shap.TreeExplainer`` of the booster (interventional against ``reference``
        rows, when given). The last one is kept: building it reads every tree (~0.1 s), while
        explaining a session against 100 background rows takes milliseconds, and the
        dashboard's global view explains up to 100 sessions against one background."""
        import shap

        key = None if reference is None else hashlib.blake2b(
            np.ascontiguousarray(reference, dtype=np.float64).tobytes(), digest_size=16,
        ).hexdigest()
        cached = getattr(self, "_explainer_cache", None)
        if cached is not None and cached[0] == key and cached[1] is self.booster_:
            return cached[2]
        if reference is None:
            explainer = shap.TreeExplainer(self.booster_)
        else:
            explainer = shap.TreeExplainer(self.booster_, data=reference.astype(np.float64),
                                           feature_perturbation="interventional")
        self._explainer_cache = (key, self.booster_, explainer)
        return explainer

    def score_shap(self, data: FeatureMatrix, background: FeatureMatrix, *,
                   log_odds: bool = False) -> tuple[float, np.ndarray, np.ndarray]:
        """(base value, (n, f) contributions, (n,) scores) in score units, or with
        ``log_odds`` in calibrated log-odds (exact, no rescaling), for the explanations
        (``core.explain.shap_features`` uses it in place of permutation SHAP).

        Exact interventional TreeSHAP on the calibrated log-odds (Platt's map is affine on
        the margin, so the margin's SHAP values scale exactly), then each row's log-odds
        contributions are scaled by one factor, (score - base) / (log-odds - base log-odds),
        so they add up to the probability score: signs and order are TreeSHAP's, and
        ``base + contributions.sum(axis=1) == score``. The base is the probability at the
        background's mean calibrated log-odds.
        """
        explained = self.tree_shap(data, background)
        slope, intercept = self.calibration_.slope, self.calibration_.intercept
        base_logit = slope * explained.expected_value + intercept
        logits = slope * explained.margin + intercept
        if log_odds:
            return float(base_logit), slope * explained.values, logits
        base = float(self.calibration_.apply(np.array([explained.expected_value]))[0])
        scores = self.calibration_.apply(explained.margin)
        gap = logits - base_logit
        close = np.abs(gap) < 1e-9
        factor = np.where(close, scores * (1.0 - scores),
                          (scores - base) / np.where(close, 1.0, gap))
        contributions = slope * explained.values * factor[:, None]
        return base, contributions, scores

    # ------------------------------------------------------------------------------ state
    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        import lightgbm as lgb

        text = self.booster_.model_to_string()
        state = {"feature_names": list(self.feature_names_), "pos_weight": self.pos_weight_,
                 "calibration": self.calibration_.to_dict(),
                 "validation_ap": self.validation_ap_, "history": self.history_.to_dict(),
                 "lightgbm_version": lgb.__version__}
        return state, {BOOSTER_ARRAY: np.frombuffer(text.encode("utf-8"), dtype=np.uint8)}

    def _set_state(self, state: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        import lightgbm as lgb

        require_arrays(arrays, {BOOSTER_ARRAY: (-1,)})
        raw = arrays[BOOSTER_ARRAY]
        if raw.dtype != np.uint8:
            raise ModelError(
                f"array {BOOSTER_ARRAY!r} in model.safetensors must be uint8 text, got "
                f"{raw.dtype}. Save the model again or retrain it.")
        names = tuple(str(n) for n in state["feature_names"])
        try:
            booster = lgb.Booster(model_str=raw.tobytes().decode("utf-8"))
        except (lgb.basic.LightGBMError, UnicodeDecodeError) as exc:
            raise ModelError(
                f"the LightGBM model in model.safetensors must be readable, got: {exc}. "
                "Save the model again or retrain it.") from exc
        if booster.num_feature() != len(names):
            raise ModelError(
                f"the LightGBM model must use the {len(names)} features in config.json, got "
                f"{booster.num_feature()}. Save the model again or retrain it.")
        self.booster_ = booster
        self.pos_weight_ = float(state.get("pos_weight", 1.0))
        self.calibration_ = Calibration.from_dict(state.get("calibration"))
        ap = state.get("validation_ap")
        self.validation_ap_ = None if ap is None else float(ap)
        self.history_ = GBDTHistory.from_dict(state.get("history"))
        self.feature_names_ = names
