"""Which label-free threshold rule? An experiment over outside data (ADBench's ten sets).

    python -m benchmarks.operating_point [--max-rows 30000] [--seeds 3]

For each set: a stratified 70/30 split (seed 42, ADBench's unsupervised protocol: the training
part keeps its anomalies, labels unused), our autoencoder, isolation forest and z-score fitted
on the training part; every candidate rule of ``core.operating_point.RULES`` picks a threshold
from the training scores alone; F1 on the test part at that threshold is printed as a share
of the oracle best F1 (the best any threshold reaches on the test part). The rule with the
best median share over every (set, detector, seed) is the default; docs/FEATURES.md records
the table.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np

ADBENCH = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "adbench"


def load_adbench(path: Path, max_rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(X float32, y bool) of one set, stratified-subsampled to ``max_rows``."""
    with np.load(path, allow_pickle=False) as data:
        x, y = np.asarray(data["X"], np.float32), np.asarray(data["y"]).astype(bool)
    if len(x) > max_rows:
        from sklearn.model_selection import train_test_split

        keep, _ = train_test_split(np.arange(len(x)), train_size=max_rows, stratify=y,
                                   random_state=seed)
        x, y = x[np.sort(keep)], y[np.sort(keep)]
    return x, y


def best_f1(scores: np.ndarray, labels: np.ndarray) -> float:
    from sklearn.metrics import precision_recall_curve

    p, r, _ = precision_recall_curve(labels, scores)
    f = 2 * p * r / np.maximum(p + r, 1e-12)
    return float(f.max())


def f1_at(scores: np.ndarray, labels: np.ndarray, threshold: float) -> float:
    flagged = scores >= threshold
    tp = int((flagged & labels).sum())
    if tp == 0:
        return 0.0
    precision, recall = tp / int(flagged.sum()), tp / int(labels.sum())
    return 2 * precision * recall / (precision + recall)


def main() -> None:
    from sklearn.model_selection import train_test_split

    from core.datasets import FeatureMatrix
    from core.detectors import build_detector
    from core.operating_point import RULES, threshold_by_rule

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-rows", type=int, default=30_000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    shares: dict[str, list[float]] = {rule: [] for rule in RULES}
    print(f"{'set':<18}{'detector':<18}" + "".join(f"{r:>14}" for r in RULES) + "   best F1")
    for path in sorted(ADBENCH.glob("*.npz"), key=lambda p: int(p.stem.split("_")[0])):
        x, y = load_adbench(path, args.max_rows)
        train, test = train_test_split(np.arange(len(x)), test_size=0.3, stratify=y,
                                       random_state=42)
        names = tuple(f"f{i}" for i in range(x.shape[1]))
        fm = FeatureMatrix(np.arange(len(x)).astype(object), x, names)
        for detector in ("autoencoder", "isolation_forest", "zscore"):
            per_rule: dict[str, list[float]] = {rule: [] for rule in RULES}
            bests = []
            for seed in range(args.seeds if detector != "zscore" else 1):
                extra = {"seed": seed, "quiet": True} if detector == "autoencoder" else (
                    {"seed": seed} if detector == "isolation_forest" else {})
                model = build_detector(detector, **extra).fit(fm.take(train))
                train_scores = model.score(fm.take(train))
                test_scores = model.score(fm.take(test))
                best = best_f1(test_scores, y[test])
                bests.append(best)
                for rule in RULES:
                    t = threshold_by_rule(np.sort(train_scores), rule)
                    share = f1_at(test_scores, y[test], t) / max(best, 1e-12)
                    per_rule[rule].append(share)
                    shares[rule].append(share)
            print(f"{path.stem:<18}{detector:<18}" + "".join(
                f"{statistics.mean(per_rule[r]):>14.2f}" for r in RULES)
                  + f"   {statistics.mean(bests):.3f}", flush=True)
    print(f"{'median share':<36}" + "".join(
        f"{statistics.median(shares[r]):>14.2f}" for r in RULES))
    print(f"{'mean share':<36}" + "".join(f"{statistics.mean(shares[r]):>14.2f}" for r in RULES))
    print(f"{'share >= 0.8':<36}" + "".join(
        f"{np.mean(np.array(shares[r]) >= 0.8):>14.2f}" for r in RULES))


if __name__ == "__main__":
    main()
