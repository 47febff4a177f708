"""Which label-free combination of ensemble members? An experiment over dumped member scores.

    python -m benchmarks.detection --datasets adbench --seeds 3 --dump-scores DIR
    python -m benchmarks.ensemble_combiners --from-dump DIR [DIR ...]

``benchmarks.detection --dump-scores`` saves, per data set and seed, what a label-free
ensemble sees (``{set}__ensemble_inputs__{seed}.npz``): every member's score on every session
they all scored, each session's start, the members' latest train end and which sessions are
the test part, with its labels. This module rank-normalises each member against its scores
before the train end (as ``core.detectors.ensemble.EnsembleCombiner`` does), combines the
members that a label-free ensemble may weigh (near-constant ones and those whose detector says
``weighed_without_labels = False`` left out, as ``core.pipeline.ensemble`` does) by each rule
of :data:`COMBINERS`, and prints the test part's average precision per set (mean over seeds),
beside the best and the mean member, with each rule's mean and median over the sets and the
number of sets where it reaches the best member.

No rule here sees a label: that is the question it answers, whether any label-free weighting
can find the member that labels would pick.
"""

from __future__ import annotations

import argparse
import collections
import statistics
from collections.abc import Callable
from pathlib import Path

import numpy as np

from core.detectors.ensemble import (
    EnsembleCombiner,
    agreement_weights,
    sane_members,
    tail_surprise,
)
from core.detectors.registry import weighed_without_labels

PSEUDO_SHARE = 0.03
"""The pseudo-label rule's share of training sessions taken as anomalous."""

Combiner = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""(test ranks (n, m), training ranks (k, m)) of the usable members -> test scores (n,)."""


def _average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    from core.evaluate import ThresholdTable

    return float(ThresholdTable.from_scores(np.nan_to_num(scores), labels).average_precision())


def _pseudo_label_weights(train: np.ndarray) -> np.ndarray:
    """Each member's AP (less the base rate) against the top PSEUDO_SHARE of the other
    members' mean tail surprise on the training sessions (Rayana & Akoglu's pseudo target,
    leave-one-out so that no member vouches for itself)."""
    surprise = tail_surprise(train)
    m = train.shape[1]
    n_top = max(int(PSEUDO_SHARE * len(train)), 5)
    weights = np.full(m, 1e-3)
    for j in range(m):
        others = surprise[:, [k for k in range(m) if k != j]].mean(axis=1)
        pseudo = np.zeros(len(train), bool)
        pseudo[np.argsort(-others)[:n_top]] = True
        weights[j] = max(_average_precision(train[:, j], pseudo) - pseudo.mean(), 1e-3)
    return weights / weights.sum()


def _agreement(train: np.ndarray) -> np.ndarray:
    return agreement_weights(train, np.ones(train.shape[1], bool))


COMBINERS: dict[str, Combiner] = {
    "agreement, tail (product)": lambda r, t: tail_surprise(r) @ _agreement(t),
    "equal, tail": lambda r, t: tail_surprise(r).mean(axis=1),
    "equal, rank": lambda r, t: r.mean(axis=1),
    "agreement, rank": lambda r, t: r @ _agreement(t),
    "median tail": lambda r, t: np.median(tail_surprise(r), axis=1),
    "max rank": lambda r, t: r.max(axis=1),
    "pseudo-label, tail": lambda r, t: tail_surprise(r) @ _pseudo_label_weights(t),
}
"""Label-free rules, by name."""


def evaluate_inputs(path: Path) -> tuple[str, dict[str, float]]:
    """(set name, AP on the test part by combiner, and "best member" / "mean member") of one
    dumped ``ensemble_inputs`` file."""
    with np.load(path, allow_pickle=False) as dump:
        members = [str(m) for m in dump["members"]]
        scores, start = dump["scores"], dump["start"]
        train_end, index, test_y = dump["train_end"], dump["test_index"], dump["test_y"]
    train = start < train_end
    test = index >= 0
    labels = np.asarray(test_y, bool)[index[test]]
    equal = EnsembleCombiner.fit(members, [scores[train, j] for j in range(len(members))],
                                 np.ones(len(members)))
    usable = sane_members(equal.quantiles) & np.array([weighed_without_labels(m)
                                                       for m in members])
    ranks = equal.ranks(scores)[:, usable]
    out = {name: _average_precision(rule(ranks[test], ranks[train]), labels)
           for name, rule in COMBINERS.items()}
    member_aps = [_average_precision(scores[test, j], labels) for j in np.flatnonzero(usable)]
    out["best member"] = max(member_aps)
    out["mean member"] = float(np.mean(member_aps))
    return path.name.split("__")[0], out


def from_dump(dirs: list[Path]) -> dict[str, dict[str, float]]:
    """Print the table (see the module docstring); return {rule: {set: mean AP}}."""
    files = sorted(f for d in dirs for f in d.glob("*__ensemble_inputs__*.npz"))
    if not files:
        raise SystemExit(f"no *__ensemble_inputs__*.npz in {', '.join(map(str, dirs))}: run "
                         "`python -m benchmarks.detection --dump-scores DIR` first")
    runs: dict[str, dict[str, list[float]]] = collections.defaultdict(
        lambda: collections.defaultdict(list))
    for path in files:
        name, aps = evaluate_inputs(path)
        for rule, value in aps.items():
            runs[rule][name].append(value)
    table = {rule: {s: float(np.mean(v)) for s, v in by_set.items()}
             for rule, by_set in runs.items()}
    sets = sorted(table["best member"])
    print(f"AP on the test part, mean over seeds ({len(files)} dumps)")
    print(f"{'rule':27s}" + "".join(f"{s[:11]:>12s}" for s in sets)
          + "    mean  median  >= best")
    for rule, by_set in table.items():
        values = [by_set[s] for s in sets]
        reached = sum(by_set[s] >= table["best member"][s] - 1e-9 for s in sets)
        print(f"{rule:27s}" + "".join(f"{v:12.3f}" for v in values)
              + f"  {np.mean(values):6.3f}  {statistics.median(values):6.3f}  "
              + f"{reached:>3d}/{len(sets)}")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from-dump", nargs="+", type=Path, metavar="DIR", required=True,
                        help="folders written by `benchmarks.detection --dump-scores`")
    from_dump(parser.parse_args().from_dump)


if __name__ == "__main__":
    main()
