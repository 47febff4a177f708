"""The dense VAE's score variants on the ADBench "Classical" sets (the default's experiment).

One fit per set and seed (default config), scored four ways: the posterior-mean negative ELBO
and the reconstruction probability with 8, 2 and 1 draws. Raw features, ADBench's stratified
70/30 split (seed 42), the training part with its anomalies; average precision on the test part.

    python -m benchmarks.vae_variants [--seeds 3] [--cap 20000]
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np

VARIANTS = {"elbo, posterior mean": {"score": "elbo", "elbo_samples": 0},
            "reconstruction probability, 8 draws": {"score": "reconstruction_probability",
                                                    "score_samples": 8},
            "reconstruction probability, 2 draws": {"score": "reconstruction_probability",
                                                    "score_samples": 2},
            "reconstruction probability, 1 draw": {"score": "reconstruction_probability",
                                                   "score_samples": 1}}


def run(seeds: int, cap: int) -> dict[str, dict[str, list[float]]]:
    """{set: {variant: [AP per seed]}}, printed per set as it goes."""
    import torch
    from sklearn.metrics import average_precision_score

    from benchmarks.detection_data import ADBENCH_DIR, adbench_files, adbench_name, load_adbench
    from core.datasets import FeatureMatrix
    from core.detectors import build_detector

    torch.set_num_threads(1)
    out: dict[str, dict[str, list[float]]] = {}
    for path in adbench_files(ADBENCH_DIR):
        data = load_adbench(path, cap=cap)
        x, y = data["X"].astype(np.float32), data["y"]
        names = tuple(f"f{i}" for i in range(x.shape[1]))

        def matrix(idx: np.ndarray, x: np.ndarray = x, names: tuple[str, ...] = names
                   ) -> FeatureMatrix:
            return FeatureMatrix(np.asarray(idx).astype(str).astype(object), x[idx], names)

        name = adbench_name(path)
        for seed in range(seeds):
            detector = build_detector("vae", seed=seed, quiet=True, device="cpu").fit(
                matrix(data["train_idx"]))
            for variant, overrides in VARIANTS.items():
                detector.config = dataclasses.replace(detector.config, **overrides)
                scores = detector.score(matrix(data["test_idx"]))
                out.setdefault(name, {}).setdefault(variant, []).append(
                    float(average_precision_score(y[data["test_idx"]], scores)))
        print(f"{name:12s} " + "  ".join(f"{np.mean(v):.3f}±{np.std(v):.3f}"
                                         for v in out[name].values()), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--cap", type=int, default=20_000, help="rows per set at most")
    args = parser.parse_args()
    started = time.perf_counter()
    print("AP per set, mean±sd over seeds, columns: " + " | ".join(VARIANTS))
    results = run(args.seeds, args.cap)
    print("mean over sets: " + " | ".join(
        f"{v}: {np.mean([np.mean(r[v]) for r in results.values()]):.3f}" for v in VARIANTS))
    print(f"{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
