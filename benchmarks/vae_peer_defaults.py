"""PyOD's VAE at its own defaults against the setting ``benchmarks.detection`` runs it at.

    python -m benchmarks.vae_peer_defaults [--sets cardio,satellite] [--seeds 3]

The detection benchmark trains PyOD's VAE for 10 epochs of batch 256 (as its autoencoder
peer); PyOD's defaults are 30 epochs of batch 32. This runs both on ADBench's split of each
set (min-max scaled as ``benchmarks.detection_data`` does, then PyOD's own standardisation)
and prints one JSON line per set and setting: average precision, mean and sd over seeds.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from benchmarks.detection_data import ADBENCH_DIR, adbench_files, adbench_name, load_adbench

SETTINGS = {"defaults": {}, "benchmark": {"epoch_num": 10, "batch_size": 256}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", help="comma-separated ADBench sets (default: all)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--adbench-dir", default=str(ADBENCH_DIR))
    args = parser.parse_args()
    import torch
    from pyod.models.vae import VAE
    from sklearn.metrics import average_precision_score
    from sklearn.preprocessing import MinMaxScaler

    torch.set_num_threads(1)
    wanted = set(args.sets.split(",")) if args.sets else None
    for path in adbench_files(Path(args.adbench_dir)):
        name = adbench_name(path)
        if wanted is not None and name not in wanted:
            continue
        data = load_adbench(path)
        train, test = data["train_idx"], data["test_idx"]
        x = np.concatenate([data["X"][train], data["X"][test]])
        x = MinMaxScaler().fit(x[:len(train)]).transform(x)
        y = data["y"][test]
        for setting, config in SETTINGS.items():
            started, aps = time.perf_counter(), []
            for seed in range(args.seeds):
                model = VAE(device="cpu", random_state=seed, verbose=0, preprocessing=True,
                            **config).fit(x[:len(train)])
                aps.append(average_precision_score(y, model.decision_function(x[len(train):])))
            print(json.dumps({"set": name, "setting": setting, "ap_mean": float(np.mean(aps)),
                              "ap_sd": float(np.std(aps)),
                              "seconds": time.perf_counter() - started}), flush=True)


if __name__ == "__main__":
    main()
