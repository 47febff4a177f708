"""Event log: acknowledged records/s and fsyncs/s with group commit (core.serve.event_log).

    python -m benchmarks.event_log [--dir /tmp/anomalyst-bench/event-log] [--seconds 3]
        [--record-bytes 200] [--json]

Three cases, each on a fresh log (fsync on, the default) in a temporary folder under ``--dir``
(default: the system temp folder, so the figures are that disk's): one thread appending
batches of 1 record, 16 threads appending 1 record each (group commit shares fsyncs), and one
thread appending batches of 1,000 records. Each case runs for about ``--seconds``; records are
``--record-bytes`` of JSON-like bytes. Reported per case: acknowledged records/s, appends/s,
fsyncs/s and records per fsync.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks._util import machine


def _record(i: int, size: int) -> bytes:
    head = f'{{"event_id": {i}, "pad": "'.encode()
    return head + b"x" * max(0, size - len(head) - 2) + b'"}'


def _run_case(folder: Path, threads: int, batch: int, seconds: float,
              record_bytes: int) -> dict[str, Any]:
    from core.serve.event_log import EventLog

    records = [_record(i, record_bytes) for i in range(batch)]
    counts = [0] * threads
    stop = threading.Event()
    with EventLog.open(folder, max_pending_records=10**9) as log:
        def worker(slot: int) -> None:
            while not stop.is_set():
                log.append(records)
                counts[slot] += 1

        pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
        fsyncs_before = log.fsync_count
        started = time.perf_counter()
        for t in pool:
            t.start()
        stop.wait(seconds)
        stop.set()
        for t in pool:
            t.join()
        elapsed = time.perf_counter() - started
        fsyncs = log.fsync_count - fsyncs_before
    appends = sum(counts)
    return {
        "threads": threads, "batch": batch, "seconds": round(elapsed, 2),
        "appends": appends, "records": appends * batch, "fsyncs": fsyncs,
        "records_per_s": round(appends * batch / elapsed),
        "appends_per_s": round(appends / elapsed), "fsyncs_per_s": round(fsyncs / elapsed),
        "records_per_fsync": round(appends * batch / fsyncs, 1) if fsyncs else None,
    }


def bench_event_log(root: str | Path | None = None, *, seconds: float = 3.0,
                    record_bytes: int = 200) -> dict[str, Any]:
    """Run the three cases under ``root``; a dict of the figures."""
    cases = {"1 thread x 1 record": (1, 1), "16 threads x 1 record": (16, 1),
             "1 thread x 1,000 records": (1, 1000)}
    if root is not None:
        Path(root).mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {"record_bytes": record_bytes, "machine": machine(), "cases": {}}
    with tempfile.TemporaryDirectory(dir=root, prefix="event-log-") as tmp:
        out["dir"] = tmp
        for i, (name, (threads, batch)) in enumerate(cases.items()):
            out["cases"][name] = _run_case(Path(tmp) / f"case{i}", threads, batch, seconds,
                                           record_bytes)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default=None, help="folder for the temporary logs")
    parser.add_argument("--seconds", type=float, default=3.0, help="per case")
    parser.add_argument("--record-bytes", type=int, default=200)
    parser.add_argument("--json", action="store_true", help="print one BENCH_JSON line")
    args = parser.parse_args(argv)
    out = bench_event_log(args.dir, seconds=args.seconds, record_bytes=args.record_bytes)
    if args.json:
        print("BENCH_JSON " + json.dumps(out))
        return
    print(f"event log, fsync on, {out['record_bytes']}-byte records, in {out['dir']} "
          f"({out['machine']})")
    for name, c in out["cases"].items():
        per_fsync = c["records_per_fsync"]
        print(f"  {name:<26} {c['records_per_s']:>10,} records/s  "
              f"{c['appends_per_s']:>8,} appends/s  {c['fsyncs_per_s']:>6,} fsyncs/s  "
              f"({per_fsync if per_fsync is not None else '-'} records per fsync, "
              f"{c['seconds']} s)")


if __name__ == "__main__":
    main()
