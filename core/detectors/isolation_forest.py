"""Isolation Forest on session features, fitted by scikit-learn and scored by our own numpy code.

scikit-learn grows the trees; we copy every tree's arrays (children, split feature, threshold,
node sizes and depths) into one flat forest and compute the isolation path length ourselves,
vectorised over rows and trees. So a saved model is plain arrays in safetensors (no pickle) and
a loaded model scores exactly like the fitted one. The score is ``-score_samples`` of
scikit-learn's IsolationForest, i.e. the paper's 2 ** (-E[h(x)] / c(max_samples)): in (0, 1],
higher = more anomalous, around 0.5 and below for ordinary sessions.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any, ClassVar, Self

import numpy as np
import torch
from sklearn.ensemble import IsolationForest

from core.datasets import FeatureMatrix
from core.detectors._lanes import run_blocks
from core.detectors.base import FeatureDetector, require_arrays
from core.detectors.config import DetectorConfig, check_float, check_int
from core.detectors.registry import register
from core.errors import ConfigError, ModelError

_NODE_ARRAYS = ("children", "feature", "threshold", "n_node_samples", "node_depth")


@dataclasses.dataclass(frozen=True)
class IsolationForestConfig(DetectorConfig):
    """Isolation Forest settings.

    Attributes:
        n_estimators: number of trees. 300, not the paper's and PyOD's 100: the score is a mean
            path length over the trees, and three times the trees halved its seed-to-seed
            spread and raised the mean AP on 6 of ADBench's ten sets (5 seeds; cardio 0.615 →
            0.646, annthyroid 0.337 → 0.354; lower on two by 0.005), for 0.4 ms more a single
            session (docs/FEATURES.md, "Isolation forest").
        max_samples: rows drawn per tree: an int (capped at the number of rows) or a fraction
            in (0, 1]. 256 is the original paper's choice.
        max_features: fraction of the features drawn per tree, in (0, 1].
        bootstrap: draw rows with replacement.
        seed: random state of the forest.
        score_batch_size: rows scored at once (memory ~ rows x trees x 8 bytes).
    """

    n_estimators: int = 300
    max_samples: int | float = 256
    max_features: float = 1.0
    bootstrap: bool = False
    seed: int = 0
    score_batch_size: int = 2048

    def __post_init__(self) -> None:
        check_int("n_estimators", self.n_estimators, 1)
        if isinstance(self.max_samples, float):
            check_float("max_samples", self.max_samples, 0.0, 1.0, low_open=True)
        else:
            check_int("max_samples", self.max_samples, 2)
        check_float("max_features", self.max_features, 0.0, 1.0, low_open=True)
        if not isinstance(self.bootstrap, bool):
            raise ConfigError(
                f"bootstrap must be a bool, got {self.bootstrap!r}. Pass True or False.")
        check_int("seed", self.seed, 0, 2**32 - 1)
        check_int("score_batch_size", self.score_batch_size, 1)



def average_path_length(n: np.ndarray) -> np.ndarray:
    """Expected path length of an unsuccessful BST search among ``n`` points (c(n) in the
    Isolation Forest paper), as scikit-learn computes it."""
    n = np.asarray(n, dtype=np.float64)
    out = np.zeros_like(n)
    out[n == 2] = 1.0
    big = n > 2
    out[big] = 2.0 * (np.log(n[big] - 1.0) + np.euler_gamma) - 2.0 * (n[big] - 1.0) / n[big]
    return out


@register("isolation_forest")
class IsolationForestDetector(FeatureDetector[IsolationForestConfig]):
    """Isolation Forest (Liu et al. 2008) with a pickle-free, vectorised scorer.

    Learned: ``feature_names_``, ``max_samples_`` and the flat forest arrays ``roots_``
    (one root node per tree), ``children_`` (n_nodes, 2), ``feature_``, ``threshold_``,
    ``n_node_samples_``, ``node_depth_``.
    """

    config_class = IsolationForestConfig
    tiny_config: ClassVar[dict[str, Any]] = {"n_estimators": 20, "score_batch_size": 100}
    max_samples_: int
    roots_: np.ndarray
    children_: np.ndarray
    feature_: np.ndarray
    threshold_: np.ndarray
    n_node_samples_: np.ndarray
    node_depth_: np.ndarray

    def fit(self, data: FeatureMatrix, y: np.ndarray | None = None) -> Self:
        """Grow the forest on ``data``; ``y`` is ignored (unsupervised)."""
        cfg = self.config
        values = self._values_for_fit(data)
        n, n_features = values.shape
        if isinstance(cfg.max_samples, float):
            max_samples = max(2, int(cfg.max_samples * n))
        else:
            max_samples = cfg.max_samples
        max_samples = min(max_samples, n)
        forest = IsolationForest(
            n_estimators=cfg.n_estimators, max_samples=max_samples,
            max_features=cfg.max_features, bootstrap=cfg.bootstrap, random_state=cfg.seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            forest.fit(values)
        roots, children, features, thresholds, sizes, depths = [], [], [], [], [], []
        offset = 0
        for tree, used in zip(forest.estimators_, forest.estimators_features_, strict=True):
            t = tree.tree_
            m = t.node_count
            leaf = t.children_left < 0
            own = np.arange(offset, offset + m)
            left = np.where(leaf, own, t.children_left + offset)
            right = np.where(leaf, own, t.children_right + offset)
            # Trees grown on a feature subset index into that subset; map to global columns.
            local = np.where(leaf, 0, t.feature)
            feature = local if tree.n_features_in_ == n_features else np.asarray(used)[local]
            roots.append(offset)
            children.append(np.stack([left, right], axis=1))
            features.append(np.where(leaf, 0, feature))
            thresholds.append(np.where(leaf, np.inf, t.threshold))
            sizes.append(t.n_node_samples)
            depths.append(t.compute_node_depths())
            offset += m
        self.max_samples_ = int(forest.max_samples_)
        self._set_forest(
            np.asarray(roots, dtype=np.int64), np.concatenate(children).astype(np.int64),
            np.concatenate(features).astype(np.int64), np.concatenate(thresholds),
            np.concatenate(sizes).astype(np.int64), np.concatenate(depths).astype(np.int64))
        self.feature_names_ = tuple(data.names)
        return self

    def _set_forest(self, roots: np.ndarray, children: np.ndarray, feature: np.ndarray,
                    threshold: np.ndarray, n_node_samples: np.ndarray,
                    node_depth: np.ndarray) -> None:
        self.roots_, self.children_, self.feature_ = roots, children, feature
        self.threshold_, self.n_node_samples_, self.node_depth_ = (
            threshold, n_node_samples, node_depth)
        is_leaf = children[:, 0] == np.arange(len(children))
        # Path length credited at a leaf: its depth + c(size of the leaf) - 1 (as scikit-learn).
        self._leaf_value = np.where(
            is_leaf, (node_depth + average_path_length(n_node_samples)) - 1.0, 0.0)
        # int32 node ids and a (feature, threshold) pair per node halve the memory traffic of
        # the gathers that dominate scoring.
        self._flat_children = children.ravel().astype(np.int32)
        self._feature32 = feature.astype(np.int32)
        self._n_steps = int(node_depth.max()) if len(node_depth) else 0
        self._normaliser = len(roots) * float(average_path_length(np.array([self.max_samples_]))[0])

    def score(self, data: FeatureMatrix) -> np.ndarray:
        """float64 (n,) ``-score_samples`` of scikit-learn (in (0, 1]): higher = more
        anomalous."""
        values = self._values_for_score(data)
        n, n_features = values.shape
        depths = np.empty(n)
        n_trees = len(self.roots_)

        def score_block(start: int, stop: int) -> None:
            x = values[start:stop].ravel()  # float32, compared in float64 like sklearn
            rows = stop - start
            base = (np.arange(rows, dtype=np.int64) * n_features)[:, None]  # (b, 1)
            node = np.broadcast_to(self.roots_.astype(np.int32), (rows, n_trees)).copy()  # (b, T)
            for _ in range(self._n_steps):
                goes_right = x[base + self._feature32[node]] > self.threshold_[node]
                node = self._flat_children[2 * node + goes_right]
            per_tree = self._leaf_value[node]  # (b, T)
            total = np.zeros(rows)
            for t in range(n_trees):  # tree by tree, in scikit-learn's summation order
                total += per_tree[:, t]
            depths[start:stop] = total

        # blocks in parallel lanes (numpy's gathers release the GIL): faster on 2 cores
        run_blocks(n, self.config.score_batch_size, torch.device("cpu"), score_block)
        if self._normaliser == 0:  # one training row: scikit-learn defines the score as 1
            return np.ones(n)
        return 2.0 ** (-(depths / self._normaliser))

    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        state = {"feature_names": list(self.feature_names_), "max_samples": self.max_samples_}
        arrays = {"roots": self.roots_, "children": self.children_, "feature": self.feature_,
                  "threshold": self.threshold_, "n_node_samples": self.n_node_samples_,
                  "node_depth": self.node_depth_}
        return state, arrays

    def _set_state(self, state: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        names = tuple(str(n) for n in state["feature_names"])
        self.max_samples_ = int(state["max_samples"])
        require_arrays(arrays, {"roots": (self.config.n_estimators,), "children": (-1, 2),
                                "feature": (-1,), "threshold": (-1,),
                                "n_node_samples": (-1,), "node_depth": (-1,)})
        n_nodes = len(arrays["children"])
        for name in _NODE_ARRAYS[1:]:
            if len(arrays[name]) != n_nodes:
                raise ModelError(
                    f"array {name!r} must have one value per node ({n_nodes}), got "
                    f"{len(arrays[name])}. Save the model again or retrain it.")
        ints = {k: arrays[k].astype(np.int64) for k in
                ("roots", "children", "feature", "n_node_samples", "node_depth")}
        if (ints["children"].min(initial=0) < 0 or ints["children"].max(initial=0) >= n_nodes
                or ints["roots"].max(initial=0) >= n_nodes
                or ints["feature"].min(initial=0) < 0
                or ints["feature"].max(initial=0) >= len(names)):
            raise ModelError(
                "forest arrays in model.safetensors must index nodes and features in range, "
                "got out-of-range indices. Save the model again or retrain it.")
        self._set_forest(ints["roots"], ints["children"], ints["feature"],
                         arrays["threshold"].astype(np.float64), ints["n_node_samples"],
                         ints["node_depth"])
        self.feature_names_ = names
