"""The scoring service under load (issue #26): latency at fixed request rates, batch
throughput, acknowledgement to alert, and River's HalfSpaceTrees on the same events.

    python -m benchmarks.serve [--quick] [--seconds 10]

A demo store (feature models and their ensemble: the default policy) is built once and cached
under /tmp/anomalyst-bench/; each run copies it, starts ``anomalyst serve --insecure-local``
on the copy as its own process, and drives it from this one over kept-alive HTTP connections.
Single-event requests are sent open-loop at 100, 500 and 1,000 a second (a request's latency
counts from when it was due, so queueing shows); 1,000-event batches are sent back to back from
two connections; the alert latency is from the acknowledgement of a planted session's last
event to its row in ``live_alerts`` (what the Live page reads), polled from another process's
point of view (a read-only open of the shared store), under a policy the benchmark publishes
on the copy: the model in force with a threshold at the top 2% of its scores, so that the
alert does not hang on the model's own operating point. River's HalfSpaceTrees learns and scores
the same events one by one on per-event numeric fields.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._util import machine

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path("/tmp/anomalyst-bench")
DETECTORS = ("zscore", "isolation_forest", "autoencoder", "ensemble")
RATES = (100, 500, 1000)
TARGETS = {"p99_ms_at_500": 50.0, "batch_events_per_s": 20_000}


def demo_store(users: int, days: int) -> Path:
    """The cached store: sample data, the feature detectors and their ensemble, scored."""
    from cli.demo import build_demo_store

    db = CACHE / f"serve-u{users}-d{days}" / "demo.duckdb"
    if not db.exists():
        db.parent.mkdir(parents=True, exist_ok=True)
        build_demo_store(db, users=users, days=days, seed=7, detectors=DETECTORS, quiet=True,
                         step=lambda s: print(f"  {s}", flush=True))
    return db


ALERT_SHARE = 0.02
"""The benchmark's published policy flags this share of the store's sessions (see
``publish_alert_policy``)."""


def publish_alert_policy(db: Path, share: float = ALERT_SHARE) -> dict[str, Any]:
    """Publish a policy on the model in force whose threshold flags the top ``share`` of the
    store's scored sessions, as an analyst sets an alert budget. The alert latency is a
    property of the service, not of one model's choice: with its own operating point the
    ensemble's choice of weighting decided whether the planted burst alerted at all (a rank
    of 0.991 against a best-F1 threshold of 0.998 in one build), so the figure came and went
    with retraining. Returns the policy's model, threshold and version."""
    from core.app.policy import in_force, publish
    from core.store import Store

    with Store.open(db) as store:
        policy = in_force(store)
        if policy is None:
            raise SystemExit("the benchmark store has no policy in force: rebuild it")
        scores = store.scores.of_model(policy.model_id)["score"].to_numpy(dtype=float)
        threshold = float(np.quantile(scores, 1.0 - share))
        published = publish(store, analyst="benchmark", model_id=policy.model_id,
                            thresholds={"all": threshold},
                            note=f"benchmarks.serve: the top {share:.0%} of sessions alert")
    return {"model_id": published.model_id, "threshold": threshold,
            "version": published.version, "flags_share": share}


def events_for(db: Path, users: int, seed: int = 11) -> list[dict[str, Any]]:
    """Fresh users' events after the store's last one (``anomalyst demo --live``'s)."""
    import pandas as pd

    from cli.demo import write_live_events

    frame = pd.read_parquet(write_live_events(db, users=users, days=2, seed=seed))
    for column in ("user_id", "event_id"):  # two draws never share a user or an event
        frame[column] = f"s{seed}-" + frame[column].astype(str)
    frame["ts"] = pd.to_datetime(frame["ts"]).dt.strftime("%Y-%m-%dT%H:%M:%S.%f")
    return [{k: v for k, v in r.items() if v is not None and v == v and v != ""}
            for r in frame.to_dict(orient="records")]


class Service:
    """``anomalyst serve`` on a copy of the store, as its own process."""

    def __init__(self, db: Path, port: int) -> None:
        self.port = port
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cli", "serve", "--db", str(db), "--port", str(port),
             "--insecure-local", "--wait-applied", "10"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                    return
            except OSError:
                if self.proc.poll() is not None:
                    raise SystemExit(f"the service stopped: {self.proc.stderr.read()[-2000:]}"
                                     ) from None
                time.sleep(0.3)
        raise SystemExit("the service did not start in 180 s")

    def post(self, conn: http.client.HTTPConnection, events: list[dict[str, Any]]
             ) -> tuple[int, dict[str, Any]]:
        conn.request("POST", "/v1/events", body=json.dumps(events),
                     headers={"Content-Type": "application/json"})
        reply = conn.getresponse()
        body = reply.read()
        try:
            return reply.status, json.loads(body)
        except ValueError:
            return reply.status, {}

    def health(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=30) as r:
            return json.loads(r.read())

    def wait_stored(self, timeout: float = 600.0) -> float | None:
        """Seconds until every acknowledged event is in the store (None: not within
        ``timeout``)."""
        started = time.perf_counter()
        while time.perf_counter() - started < timeout:
            if self.health().get("pending") == 0:
                return time.perf_counter() - started
            time.sleep(0.05)
        return None

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def open_loop(service: Service, events: list[dict[str, Any]], rate: int, seconds: float,
              workers: int = 16) -> dict[str, Any]:
    """Single-event requests due every 1/rate s, sent by ``workers`` connections; latency
    from the due time to the answer."""
    n = min(len(events), int(rate * seconds))
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    provisional = [0]
    lock = threading.Lock()
    start = time.perf_counter() + 0.2
    cursor = iter(range(n))

    def worker() -> None:
        conn = service.connection()
        while True:
            with lock:
                i = next(cursor, None)
            if i is None:
                return
            due = start + i / rate
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            try:
                status, body = service.post(conn, [events[i]])
            except (OSError, http.client.HTTPException):
                status, body, conn = 0, {}, service.connection()
            with lock:
                latencies.append(time.perf_counter() - due)
                statuses[status] = statuses.get(status, 0) + 1
                provisional[0] += any(e.get("provisional") for e in body.get("events", []))

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    ms = np.array(latencies) * 1000
    return {"rate": rate, "requests": n, "achieved_per_s": n / wall,
            "p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "statuses": statuses, "provisional": provisional[0],
            "stored_after_s": service.wait_stored()}


def batches(service: Service, events: list[dict[str, Any]], size: int = 1000,
            connections: int = 2) -> dict[str, Any]:
    """1,000-event batches back to back; events a second acknowledged, and stored and
    scored (answered 200: applied within the wait)."""
    parts = [events[i:i + size] for i in range(0, len(events), size)]
    applied = [0]
    lock = threading.Lock()
    cursor = iter(parts)

    def worker() -> None:
        conn = service.connection()
        while True:
            with lock:
                part = next(cursor, None)
            if part is None:
                return
            status, _ = service.post(conn, part)
            with lock:
                applied[0] += len(part) if status == 200 else 0

    start = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    total = sum(len(p) for p in parts)
    service.wait_stored()
    stored_wall = time.perf_counter() - start
    return {"events": total, "wall_s": wall, "acknowledged_per_s": total / wall,
            "answered_per_s": applied[0] / wall, "stored_per_s": total / stored_wall}


def alert_latency(service: Service, db: Path) -> dict[str, Any]:
    """A card-testing burst (many failed payments in a minute) by a new user: seconds from
    the acknowledgement of its last event to its live alert in the store."""
    user = f"bench-{int(time.time())}"
    burst = [{"user_id": user, "event_id": f"{user}-{i}", "event_type": "payment_failed",
              "ts": f"2026-09-30T12:00:{i:02d}", "amount": 1.0 + i, "payment_id": f"card{i}"}
             for i in range(40)]
    status, answer = service.post(service.connection(), burst)
    acked = time.perf_counter()
    flagged = any(e.get("flagged") for e in answer.get("events", []))
    code = ("import datetime as dt\nfrom core.store import Store\n"
            f"with Store.open({str(db)!r}, read_only=True, wait_s=30) as s:\n"
            "    found = s.live.since(dt.datetime(1970, 1, 1), limit=100_000)\n"
            f"    print(int((found['user_id'] == {user!r}).sum()))\n")
    while time.perf_counter() - acked < 60:
        seen = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                              text=True).stdout.strip()
        if seen not in ("", "0"):
            return {"status": status, "flagged": flagged,
                    "ack_to_alert_in_store_s": time.perf_counter() - acked}
    return {"status": status, "flagged": flagged, "ack_to_alert_in_store_s": None}


def river_peer(events: list[dict[str, Any]]) -> dict[str, Any]:
    """HalfSpaceTrees learning and scoring each event on its numeric fields."""
    try:
        from river import anomaly, compose, preprocessing
    except ImportError:
        return {"error": "river is not installed: pip install 'anomalyst[bench]'"}
    model = compose.Pipeline(preprocessing.MinMaxScaler(), anomaly.HalfSpaceTrees(seed=0))
    types = sorted({e["event_type"] for e in events})
    latencies = []
    start = time.perf_counter()
    for e in events:
        x = {"amount": float(e.get("amount", 0) or 0), "quantity": float(e.get("quantity", 0) or 0),
             "hour": float(str(e["ts"])[11:13]), **{f"type={t}": float(e["event_type"] == t)
                                                     for t in types}}
        t0 = time.perf_counter()
        model.score_one(x)
        model.learn_one(x)
        latencies.append(time.perf_counter() - t0)
    wall = time.perf_counter() - start
    ms = np.array(latencies) * 1000
    return {"events": len(events), "events_per_s": len(events) / wall,
            "p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99))}


def run(quick: bool, seconds: float, rates: tuple[int, ...] | None = None) -> dict[str, Any]:
    users, days = (400, 14) if quick else (2000, 21)
    print(f"store: {users} users x {days} days (cached)", flush=True)
    source = demo_store(users, days)
    out: dict[str, Any] = {"machine": machine(), "load_before": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="anomalyst-serve-") as tmp:
        db = Path(tmp) / "demo.duckdb"
        shutil.copy(source, db)
        shutil.copytree(source.parent / "models", Path(tmp) / "models", dirs_exist_ok=True)
        out["policy"] = publish_alert_policy(db)
        print(f"  policy: {out['policy']}", flush=True)
        events = events_for(db, users=1000 if quick else 3000)
        batch_events = events_for(db, users=1000 if quick else 5000, seed=12)
        print(f"{len(events):,} fresh events for single requests, {len(batch_events):,} "
              "others for batches", flush=True)
        out["river"] = river_peer(events)
        print(f"  river HalfSpaceTrees: {out['river']}", flush=True)
        service = Service(db, 8799)
        try:
            used = 200
            out["rates"] = []
            out["scoring"] = service.health().get("scoring")
            out["warm_up"] = open_loop(service, events[:200], 100, 2)  # first requests
            for rate in rates or (RATES[:1] if quick else RATES):
                part = events[used:used + int(rate * seconds)]
                used += len(part)
                row = open_loop(service, part, rate, seconds)
                out["rates"].append(row)
                print(f"  {rate}/s: {row}", flush=True)
            out["batches"] = batches(service, batch_events)
            print(f"  batches: {out['batches']}", flush=True)
            out["alert"] = alert_latency(service, db)
            print(f"  alert: {out['alert']}", flush=True)
        finally:
            service.stop()
    out["load_after"] = os.getloadavg()[0]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small store, 100/s only")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds at each rate")
    parser.add_argument("--rates", help="comma-separated request rates (default 100,500,1000; "
                        "100 with --quick)")
    args = parser.parse_args()
    rates = tuple(int(r) for r in args.rates.split(",")) if args.rates else None
    results = run(args.quick, args.seconds, rates)
    print(json.dumps(results, default=str))
    at_500 = next((r for r in results.get("rates", []) if r["rate"] == 500), None)
    if at_500:
        print(f"target p99 <= {TARGETS['p99_ms_at_500']:.0f} ms at 500/s: "
              f"{at_500['p99_ms']:,.0f} ms -> "
              f"{'met' if at_500['p99_ms'] <= TARGETS['p99_ms_at_500'] else 'MISSED'}")
    applied = results["batches"]["stored_per_s"]
    print(f"target >= {TARGETS['batch_events_per_s']:,} events/s stored and scored: "
          f"{applied:,.0f} -> {'met' if applied >= TARGETS['batch_events_per_s'] else 'MISSED'}")


if __name__ == "__main__":
    main()
