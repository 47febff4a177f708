"""Which dense-autoencoder defaults hold on outside data? ROC-AUC on ADBench's ten sets.

    python -m benchmarks.autoencoder_variants [--max-rows 20000] [--threads 1]

Each set: a stratified 70/30 split (seed 42, labels unused in training, as ADBench's
unsupervised protocol), the autoencoder fitted on the set's features directly (no store), one
seed; a few variants of its defaults beside our isolation forest. The 2026-12-05 run chose
dropout 0.2 (docs/FEATURES.md, docs/BENCHMARKS.md).
"""

from __future__ import annotations

import argparse

import numpy as np

VARIANTS: dict[str, dict[str, object]] = {
    "no dropout": {"dropout": 0.0},
    "dropout 0.2": {"dropout": 0.2},
    "latent 4": {"dropout": 0.0, "latent_dim": 4},
    "standard scaling": {"dropout": 0.0, "scaling": "standard"},
    "64-32/16 dropout 0.2": {"hidden_dims": (64, 32), "latent_dim": 16, "dropout": 0.2},
}


def main() -> None:
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split

    from benchmarks.operating_point import ADBENCH, load_adbench
    from core.datasets import FeatureMatrix
    from core.detectors import build_detector

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-rows", type=int, default=20_000)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    results: dict[str, list[float]] = {name: [] for name in [*VARIANTS, "isolation forest"]}
    for path in sorted(ADBENCH.glob("*.npz"), key=lambda p: int(p.stem.split("_")[0])):
        x, y = load_adbench(path, args.max_rows)
        train, test = train_test_split(np.arange(len(x)), test_size=0.3, stratify=y,
                                       random_state=42)
        data = FeatureMatrix(np.arange(len(x)).astype(object), x,
                             tuple(f"f{i}" for i in range(x.shape[1])))
        line = f"{path.stem:<16}"
        for name, fields in VARIANTS.items():
            model = build_detector("autoencoder", quiet=True, **fields).fit(data.take(train))
            auc = roc_auc_score(y[test], model.score(data.take(test)))
            results[name].append(auc)
            line += f"  {name}={auc:.3f}"
        forest = build_detector("isolation_forest").fit(data.take(train))
        auc = roc_auc_score(y[test], forest.score(data.take(test)))
        results["isolation forest"].append(auc)
        print(f"{line}  isolation forest={auc:.3f}", flush=True)
    for name, values in results.items():
        print(f"{name:<24} median {np.median(values):.3f}  mean {np.mean(values):.3f}")


if __name__ == "__main__":
    main()
