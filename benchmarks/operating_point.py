"""Which label-free threshold rule? An experiment over outside data (ADBench's ten sets).

    python -m benchmarks.operating_point [--max-rows 30000] [--seeds 3]
    python -m benchmarks.operating_point --from-dump DIR [DIR ...]

The second form reads what ``benchmarks.detection --dump-scores DIR`` saved (each model's
training-score reference from the real pipeline, its test scores and labels, on every data
set, contaminated or clean) and prints, for the fence ``median + k MAD`` raised to flag at
most a share ``c`` of training sessions, F1 at that threshold as a share of the oracle F1:
per group of data sets (ADBench's contaminated training parts; the generated sets, whose
training windows are clean) and balanced over the two (the mean of the groups' medians).

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


GENERATED = frozenset({"sample", "markov", "markov300", "unseen_types", "constant_shift"})
FENCES = (3.0, 4.0, 5.0, 6.0)
CAPS = (0.02, 0.05, 0.10, None)
QUANTILES = (0.99, 0.995, 0.998)


def fence_threshold(reference: np.ndarray, k: float, cap: float | None) -> float:
    """median + k MAD (as a standard deviation) of the reference, raised to flag at most
    ``cap`` of it; a negative k -q stands for the q quantile."""
    if k < 0:
        return float(np.quantile(reference, -k))
    median = float(np.median(reference))
    value = median + k * 1.4826 * float(np.median(np.abs(reference - median)))
    return value if cap is None else max(value, float(np.quantile(reference, 1.0 - cap)))


def from_dump(dirs: list[Path]) -> None:
    """The fence-and-cap grid over dumped scores (see the module docstring)."""
    from core.operating_point import DEFAULT_RULE
    from core.pipeline.operating_point import MAX_DEFAULT_SHARE, VETTED_RULE

    cells: list[tuple[float, float | None]] = [(k, c) for k in FENCES for c in CAPS]
    cells += [(-q, None) for q in QUANTILES]  # (-q, None): the q quantile
    shares: dict[str, dict[tuple[float, float | None], list[float]]] = {
        "adbench": {cell: [] for cell in cells}, "generated": {cell: [] for cell in cells}}
    flagged: dict[str, dict[tuple[float, float | None], list[float]]] = {
        group: {cell: [] for cell in cells} for group in shares}
    files = sorted(f for d in dirs for f in d.glob("*.npz"))
    for path in files:
        dataset = path.stem.split("__")[0]
        group = "generated" if dataset in GENERATED else "adbench"
        with np.load(path) as data:
            reference = np.sort(data["reference"])
            scores, labels = data["scores"], data["labels"].astype(bool)
        ok = np.isfinite(scores)
        scores, labels = scores[ok], labels[ok]
        if not labels.any() or labels.all() or len(reference) == 0:
            continue
        oracle = best_f1(scores, labels)
        for cell in cells:
            t = fence_threshold(reference, *cell)
            shares[group][cell].append(f1_at(scores, labels, t) / max(oracle, 1e-12))
            flagged[group][cell].append(float((scores[~labels] >= t).mean()))
    if not files:
        raise SystemExit(f"no .npz files in {', '.join(map(str, dirs))}: run "
                         "`python -m benchmarks.detection --dump-scores DIR` first")
    print(f"{len(files)} models; the default is {DEFAULT_RULE} capped at "
          f"{MAX_DEFAULT_SHARE:.0%}, and {VETTED_RULE} where the training window is labelled")
    print(f"{'fence':>6} {'cap':>5} | {'ADBench median':>14} {'>=0.8':>6} {'normals flagged':>15} "
          f"| {'generated median':>16} {'>=0.8':>6} {'normals flagged':>15} | "
          f"{'balanced median':>15} {'>=0.8':>6}")
    for cell in cells:
        row = []
        for group in ("adbench", "generated"):
            values = shares[group][cell]
            row.append((statistics.median(values) if values else float("nan"),
                        float(np.mean(np.array(values) >= 0.8)) if values else float("nan"),
                        statistics.median(flagged[group][cell]) if values else float("nan")))
        (am, a8, af), (gm, g8, gf) = row
        cap = "none" if cell[1] is None else f"{cell[1]:.0%}"
        fence = f"q{-cell[0] * 100:g}" if cell[0] < 0 else f"{cell[0]:.1f}"
        print(f"{fence:>6} {cap:>5} | {am:>14.2f} {a8:>6.2f} {af:>15.3f} | {gm:>16.2f} "
              f"{g8:>6.2f} {gf:>15.3f} | {(am + gm) / 2:>15.2f} {(a8 + g8) / 2:>6.2f}")


def main() -> None:
    from sklearn.model_selection import train_test_split

    from core.datasets import FeatureMatrix
    from core.detectors import build_detector
    from core.operating_point import RULES, threshold_by_rule

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-rows", type=int, default=30_000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--from-dump", nargs="+", type=Path, metavar="DIR",
                        help="evaluate the fence grid on `benchmarks.detection --dump-scores`")
    args = parser.parse_args()
    if args.from_dump:
        from_dump(args.from_dump)
        return
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
