"""The combined Why: is it faithful, and how fast is it?

    python -m benchmarks.why [--users 600 --days 21 --seed 7] [--sessions 25] [--json]
    python -m benchmarks.why --latency-db STORE [--sessions 5]

**Deletion test.** A sample store is built (``cli.demo.build_demo_store``: zscore, autoencoder,
sequence_autoencoder, mlp and their ensemble, small configurations) and the sessions the alert
policy flags (the top 2% of the ensemble's scores, at least 6 events) are explained with
``core.explain.explain_why``. For each, the events named by the top 3 reasons are taken in turn
(each reason's most telling event first) until there are 3; they are removed from the store
(``Explanations.events_removed``, on the benchmark's private store), the session's features or
sequence are built again, and every model the Why draws on scores it. *Risk* here is the Why's
own weighting: the weighted mean of each model's percentile of the session's score among all
the sessions it scored (0-100). The same is done for 10 draws of 3 random events of the
session. A faithful Why lowers the risk more when its events go than when random ones do.
Sessions whose top reasons name no event (a new device, the hour) are counted apart.

**Latency.** On an existing store (read-only; nothing is saved): the uncached Why of the top
sessions of the policy's model, one at a time, after one warm-up, median and max seconds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.detection import describe_machine

DETECTORS = ("zscore", "autoencoder", "sequence_autoencoder", "mlp", "ensemble")
CONFIG: dict[str, dict[str, Any]] = {
    "autoencoder": {"epochs": 20},
    "sequence_autoencoder": {"epochs": 3, "hidden_dim": 32, "embed_dim": 16, "latent_dim": 16},
    "mlp": {"epochs": 20},
}
K = 3
N_RANDOM = 10
MIN_EVENTS = 6


def reason_events(reasons: list[Any], k: int = K) -> list[str]:
    """Up to ``k`` distinct events, round-robin over the reasons in order (each reason's most
    telling event first)."""
    out: list[str] = []
    queues = [list(r.event_ids) for r in reasons]
    while len(out) < k and any(queues):
        for q in queues:
            while q and q[0] in out:
                q.pop(0)
            if q and len(out) < k:
                out.append(q.pop(0))
    return out


class Rescorer:
    """Each Why model's percentile of a session's score, rebuilt from the store's events."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.models: dict[str, Any] = {}
        self.sorted: dict[str, np.ndarray] = {}

    def _model(self, model_id: str) -> Any:
        from core.pipeline.registry import load_model

        if model_id not in self.models:
            self.models[model_id] = load_model(self.store, model_id)
            scores = self.store.scores.of_model(model_id)["score"].to_numpy(np.float64)
            self.sorted[model_id] = np.sort(scores)
        return self.models[model_id]

    def risk(self, session_id: str, weights: dict[str, float]) -> float:
        from core.pipeline.inputs import build_input

        total = 0.0
        for model_id, weight in weights.items():
            model = self._model(model_id)
            built = build_input(self.store, model.input_kind, model.spec,
                                session_ids=[session_id])
            score = float(model.detector.score(built.data)[0])
            ref = self.sorted[model_id]
            total += weight * 100.0 * np.searchsorted(ref, score, side="left") / max(
                len(ref) - 1, 1)
        return total

    def risk_without(self, session_id: str, weights: dict[str, float],
                     event_ids: list[str]) -> float:
        with self.store.explanations.events_removed(event_ids):
            return self.risk(session_id, weights)


def deletion(store: Any, sessions: list[str], seed: int = 0) -> list[dict[str, Any]]:
    """One row per session: risk before, after removing the Why's events, after random."""
    from core.explain import explain_why

    rng = np.random.default_rng(seed)
    rescorer = Rescorer(store)
    rows = []
    for session in sessions:
        found = explain_why(store, session, save=False)
        weights = {m.model_id: m.weight for m in found.why.models}
        named = reason_events(list(found.why.reasons[:K]))
        events = store.explanations.session_events(session)["event_id"].astype(str).tolist()
        row: dict[str, Any] = {"session_id": session, "n_events": len(events),
                               "n_named": len(named),
                               "top_topics": [r.topic for r in found.why.reasons[:K]]}
        before = rescorer.risk(session, weights)
        row["risk"] = before
        if named:
            row["drop_reasons"] = before - rescorer.risk_without(session, weights, named)
            draws = [before - rescorer.risk_without(
                session, weights, list(rng.choice(events, len(named), replace=False)))
                for _ in range(N_RANDOM)]
            row["drop_random"] = float(np.mean(draws))
        rows.append(row)
    return rows


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    tested = [r for r in rows if "drop_reasons" in r]
    top = np.array([r["drop_reasons"] for r in tested])
    rand = np.array([r["drop_random"] for r in tested])
    return {
        "sessions": len(rows), "with_named_events": len(tested),
        "mean_drop_reasons": float(top.mean()) if len(top) else None,
        "mean_drop_random": float(rand.mean()) if len(rand) else None,
        "sd_drop_reasons": float(top.std(ddof=1)) if len(top) > 1 else None,
        "sd_drop_random": float(rand.std(ddof=1)) if len(rand) > 1 else None,
        "reasons_beat_random": float((top > rand).mean()) if len(top) else None,
    }


def flagged_sessions(store: Any, n: int) -> list[str]:
    """The policy model's top-2% sessions with at least MIN_EVENTS events, highest first."""
    from core.policy import policy_in_force

    policy = policy_in_force(store)
    assert policy is not None, "nothing is scored"
    scores = store.scores.of_model(policy.model_id)
    cut = float(np.quantile(scores["score"], 0.98))
    top = scores[scores["score"] >= cut].sort_values("score", ascending=False)
    meta = store.sessions.meta().set_index("session_id")
    ok = [s for s in top["session_id"] if int(meta.loc[s, "n_events"]) >= MIN_EVENTS]
    return [str(s) for s in ok[:n]]


def latency(db: Path, n: int) -> dict[str, Any]:
    """Uncached Why seconds on ``db`` (read-only), after one warm-up."""
    from core.explain import explain_why
    from core.policy import policy_in_force
    from core.store import Store

    with Store.open(db, read_only=True) as store:
        policy = policy_in_force(store)
        assert policy is not None, "nothing is scored"
        scores = store.scores.of_model(policy.model_id)
        sessions = scores.sort_values("score", ascending=False)["session_id"].head(n + 1)
        sessions = [str(s) for s in sessions]
        explain_why(store, sessions[0], use_cache=False, save=False,
                    policy_model=policy.model_id)  # warm-up: models load, torch starts
        times, models = [], []
        for session in sessions[1:]:
            start = time.perf_counter()
            found = explain_why(store, session, use_cache=False, save=False,
                                policy_model=policy.model_id)
            times.append(time.perf_counter() - start)
            models.append(len(found.why.models))
        n_sessions = int(store.summary.count_sessions())
    return {"store_sessions": n_sessions, "n": len(times),
            "median_s": statistics.median(times), "max_s": max(times),
            "models_per_why": statistics.mean(models)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=600)
    parser.add_argument("--days", type=int, default=21)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--sessions", type=int, default=25)
    parser.add_argument("--latency-db", type=Path, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    print(describe_machine())
    if args.latency_db is not None:
        out = latency(args.latency_db, args.sessions)
        print(json.dumps(out, indent=1) if args.json else
              f"uncached Why on {out['store_sessions']:,} sessions: median "
              f"{out['median_s']:.3f} s, max {out['max_s']:.3f} s over {out['n']} sessions "
              f"({out['models_per_why']:.1f} models each)")
        return
    from cli.demo import build_demo_store
    from core.store import Store

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "why.duckdb"
        start = time.perf_counter()
        build_demo_store(db, users=args.users, days=args.days, seed=args.seed,
                         detectors=DETECTORS, config=CONFIG, quiet=True)
        print(f"built and scored {', '.join(DETECTORS)} in {time.perf_counter() - start:.0f} s")
        with Store.open(db) as store:
            sessions = flagged_sessions(store, args.sessions)
            rows = deletion(store, sessions, seed=args.seed)
    summary = summarise(rows)
    if args.json:
        print(json.dumps({"summary": summary, "rows": rows}, indent=1, default=float))
        return
    print(f"data: sample_data users={args.users} days={args.days} seed={args.seed}; "
          f"{summary['sessions']} flagged sessions, {summary['with_named_events']} whose top "
          f"{K} reasons name events")
    print(f"risk drop (0-100), removing the top-{K} reasons' events: "
          f"{summary['mean_drop_reasons']:.2f} (sd {summary['sd_drop_reasons']:.2f}); "
          f"{K} random events (mean of {N_RANDOM} draws): {summary['mean_drop_random']:.2f} "
          f"(sd {summary['sd_drop_random']:.2f}); reasons beat random on "
          f"{summary['reasons_beat_random'] * 100:.0f}% of sessions")
    topics: dict[str, int] = {}
    for r in rows:
        for t in r["top_topics"]:
            topics[t] = topics.get(t, 0) + 1
    print("top-3 topics:", ", ".join(f"{t} ×{c}" for t, c in sorted(
        topics.items(), key=lambda kv: -kv[1])[:10]))


if __name__ == "__main__":
    main()
