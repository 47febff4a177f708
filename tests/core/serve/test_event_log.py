"""The durable event log: framing, group commit, recovery, back-pressure, kill -9."""

from __future__ import annotations

import os
import queue
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from core.serve.event_log import (
    HEADER,
    MAX_RECORD_BYTES,
    EventLog,
    EventLogError,
    LogCorrupt,
    LogFull,
    LogInUse,
    RecordTooLarge,
    segment_name,
)

REPO = Path(__file__).resolve().parents[3]
WAIT_S = 30.0  # upper bound on any wait for a subprocess


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def _payload(seq: int) -> bytes:
    return f'{{"event": {seq}}}'.encode()


def _all(log: EventLog, after: int = 0) -> list[tuple[int, bytes]]:
    return list(log.read(after))


def _last_segment(folder: Path) -> Path:
    return sorted(folder.glob("*.log"))[-1]


def test_round_trip_and_contiguous_seqs_across_reopen(tmp_path):
    folder = tmp_path / "log"
    with EventLog.open(folder) as log:
        assert log.append([_payload(1), _payload(2)]) == (1, 2)
        assert log.append([_payload(3)]) == (3, 3)
        assert _all(log) == [(s, _payload(s)) for s in (1, 2, 3)]
        assert list(log.read(1, limit=1)) == [(2, _payload(2))]
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    with EventLog.open(folder) as log:
        assert log.recovery.clean and log.recovery.records_kept == 3
        assert log.last_seq == 3
        assert log.append([_payload(4), _payload(5)]) == (4, 5)
        assert _all(log, 2) == [(s, _payload(s)) for s in (3, 4, 5)]


def test_bad_input_is_refused_without_writing(tmp_path):
    with EventLog.open(tmp_path) as log:
        with pytest.raises(RecordTooLarge, match="at most 1048576 bytes"):
            log.append([b"x", b"y" * (MAX_RECORD_BYTES + 1)])
        with pytest.raises(TypeError):
            log.append(b"not a list")
        with pytest.raises(ValueError):
            log.append([])
        assert log.append([b"ok"]) == (1, 1)


def test_segments_roll_and_reads_span_them(tmp_path):
    frame = HEADER.size + len(_payload(10))
    with EventLog.open(tmp_path, segment_bytes=frame * 10, fsync=False) as log:
        for seq in range(1, 36):
            assert log.append([_payload(seq)]) == (seq, seq)
        names = log.segments()
    assert names == [segment_name(n) for n in (1, 11, 21, 31)]
    with EventLog.open(tmp_path, segment_bytes=frame * 10, fsync=False) as log:
        assert _all(log) == [(s, _payload(s)) for s in range(1, 36)]
        assert [s for s, _ in log.read(15, limit=10)] == list(range(16, 26))
        assert log.append([_payload(36)]) == (36, 36)


def test_read_while_appending(tmp_path):
    total = 400
    with EventLog.open(tmp_path, segment_bytes=4096, fsync=False) as log:
        def writer() -> None:
            for seq in range(1, total + 1):
                log.append([_payload(seq)])

        thread = threading.Thread(target=writer)
        thread.start()
        seen: list[tuple[int, bytes]] = []
        deadline = time.monotonic() + WAIT_S
        while len(seen) < total and time.monotonic() < deadline:
            seen.extend(log.read(seen[-1][0] if seen else 0, limit=50))
        thread.join(WAIT_S)
        assert seen == [(s, _payload(s)) for s in range(1, total + 1)]


def test_concurrent_appends_group_commit(tmp_path):
    threads, per_thread = 8, 60
    acks: list[tuple[int, int, bytes]] = []
    guard = threading.Lock()
    with EventLog.open(tmp_path) as log:
        def worker(tid: int) -> None:
            for i in range(per_thread):
                payload = f"t{tid}-{i}".encode()
                first, last = log.append([payload])
                with guard:
                    acks.append((first, last, payload))

        pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join(WAIT_S)
        records = _all(log)
        fsyncs = log.fsync_count
    appends = threads * per_thread
    assert [s for s, _ in records] == list(range(1, appends + 1))
    assert sorted(p for _, p in records) == sorted(p for _, _, p in acks)
    assert all(dict(records)[first] == p and first == last for first, last, p in acks)
    assert 0 < fsyncs < appends


def test_torn_tails_are_truncated(tmp_path):
    folder = tmp_path / "log"
    with EventLog.open(folder) as log:
        log.append([_payload(s) for s in range(1, 6)])
    good_size = _last_segment(folder).stat().st_size
    half_frame = HEADER.pack(50, 0, 6) + b"half"
    for n, damage in enumerate([b"garbage!" * 3, half_frame, b"\0" * 64]):
        with open(_last_segment(folder), "ab") as f:
            f.write(damage)
        with EventLog.open(folder) as log:
            assert log.recovery.bytes_truncated == len(damage)
            assert log.recovery.truncated_at == good_size
            assert log.recovery.records_kept == 5 + n and log.recovery.reason
            assert _all(log) == [(s, _payload(s)) for s in range(1, 6 + n)]
            assert log.append([_payload(6 + n)]) == (6 + n, 6 + n)
        good_size = _last_segment(folder).stat().st_size


def test_flipped_crc_of_last_frame_is_truncated(tmp_path):
    with EventLog.open(tmp_path) as log:
        log.append([_payload(s) for s in range(1, 4)])
    path = _last_segment(tmp_path)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # last payload byte: its CRC no longer matches
    path.write_bytes(bytes(data))
    last_frame = HEADER.size + len(_payload(3))
    with EventLog.open(tmp_path) as log:
        assert log.recovery.bytes_truncated == last_frame
        assert "CRC" in log.recovery.reason
        assert _all(log) == [(s, _payload(s)) for s in (1, 2)]
        assert log.append([_payload(3)]) == (3, 3)


def test_corrupt_middle_of_older_segment_raises(tmp_path):
    frame = HEADER.size + len(_payload(10))
    with EventLog.open(tmp_path, segment_bytes=frame * 10, fsync=False) as log:
        for seq in range(1, 26):
            log.append([_payload(seq)])
    older = tmp_path / segment_name(11)
    data = bytearray(older.read_bytes())
    data[frame * 4 + HEADER.size] ^= 0xFF  # a payload byte of seq 15
    older.write_bytes(bytes(data))
    with pytest.raises(LogCorrupt, match=r"00000000000000000011\.log must be intact.*"
                                         r"not the last segment.*CRC mismatch on seq 15"):
        EventLog.open(tmp_path)
    # the failed open released its lock: the error is about data, not a stuck directory
    with pytest.raises(LogCorrupt):
        EventLog.open(tmp_path)


def test_log_full_until_applied(tmp_path):
    with EventLog.open(tmp_path, max_pending_records=10) as log:
        log.append([b"x"] * 8)
        with pytest.raises(LogFull, match="at most 10 unapplied") as caught:
            log.append([b"y"] * 3)
        assert caught.value.retry_after_s > 0
        assert log.last_seq == 8 and log.pending() == 8  # nothing written
        log.append([b"y"] * 2)
        with pytest.raises(LogFull):
            log.append([b"z"])
        log.mark_applied(5)
        assert log.pending() == 5
        assert log.append([b"z"] * 5) == (11, 15)


def test_checkpoint_survives_reopen_and_compact(tmp_path):
    frame = HEADER.size + len(_payload(10))
    with EventLog.open(tmp_path, segment_bytes=frame * 10) as log:
        for seq in range(1, 26):
            log.append([_payload(seq)])
        with pytest.raises(ValueError):
            log.mark_applied(26)  # beyond the last record
        log.mark_applied(15)
        with pytest.raises(ValueError):
            log.mark_applied(14)  # backwards
    with EventLog.open(tmp_path, segment_bytes=frame * 10) as log:
        assert log.applied_seq == 15 and log.pending() == 10
        assert [s for s, _ in log.read(log.applied_seq)] == list(range(16, 26))
        assert log.compact() == [segment_name(1)]  # 11..20 still holds unapplied 16..20
        log.mark_applied(25)
        assert log.compact() == [segment_name(11)]  # never the active one (21..)
        assert log.segments() == [segment_name(21)]
        assert [s for s, _ in log.read(25)] == []
        with pytest.raises(EventLogError, match="compacted"):
            list(log.read(5))
        assert log.append([_payload(26)]) == (26, 26)
    with EventLog.open(tmp_path) as log:
        assert log.applied_seq == 25 and _all(log, 25) == [(26, _payload(26))]


def test_second_process_gets_log_in_use(tmp_path):
    code = textwrap.dedent(f"""
        from core.serve.event_log import EventLog, LogInUse
        try:
            EventLog.open({str(tmp_path)!r})
        except LogInUse as error:
            print("IN USE:", error)
    """)
    with EventLog.open(tmp_path) as log:
        log.append([b"x"])
        with pytest.raises(LogInUse, match="one process at a time"):
            EventLog.open(tmp_path)  # a second open in this process is refused too
        out = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True,
                             text=True, timeout=WAIT_S)
        assert out.stdout.startswith("IN USE:") and str(tmp_path) in out.stdout, out.stderr
        assert f"pid {os.getpid()}" in out.stdout
    with EventLog.open(tmp_path) as log:  # released on close
        assert log.last_seq == 1


_WRITER = """
import sys, threading
from core.serve.event_log import EventLog

log = EventLog.open(sys.argv[1], segment_bytes=8192)
out = threading.Lock()

def worker(tid):
    i = 0
    while True:
        batch = [f"t{tid}-{i + k}".encode() for k in range(3)]
        first, last = log.append(batch)
        with out:
            sys.stdout.write(f"{first} {last} {tid} {i}\\n")
            sys.stdout.flush()
        i += 3

for tid in range(4):
    threading.Thread(target=worker, args=(tid,), daemon=True).start()
threading.Event().wait()
"""


def test_kill_9_loses_no_acknowledged_record(tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(_WRITER)
    folder = tmp_path / "log"
    proc = subprocess.Popen([sys.executable, str(script), str(folder)], env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    acks: list[str] = []
    deadline = time.monotonic() + WAIT_S
    try:
        while len(acks) < 200:
            line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
            assert line is not None, proc.stderr.read() if proc.stderr else ""
            acks.append(line)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(WAIT_S)
    expected: dict[int, bytes] = {}
    for line in acks:
        first, last, tid, i = map(int, line.split())
        for k, seq in enumerate(range(first, last + 1)):
            expected[seq] = f"t{tid}-{i + k}".encode()
    with EventLog.open(folder) as log:
        found = dict(log.read(0))
        assert log.last_seq >= max(expected)
        next_first, _ = log.append([b"after"])
    assert {seq: found.get(seq) for seq in expected} == expected
    assert sorted(found) == list(range(1, len(found) + 1))
    assert next_first == len(found) + 1


def test_read_refuses_damage_in_an_applied_segment(tmp_path):
    frame = HEADER.size + len(_payload(10))
    with EventLog.open(tmp_path, segment_bytes=frame * 10, fsync=False) as log:
        for seq in range(1, 16):
            log.append([_payload(seq)])
        log.mark_applied(12)
    first = tmp_path / segment_name(1)
    data = bytearray(first.read_bytes())
    data[frame * 2 + HEADER.size] ^= 0xFF  # seq 3: applied, so open does not verify it
    first.write_bytes(bytes(data))
    (tmp_path / ".checkpoint.json.tmp-killed").write_text("{")  # a checkpoint write cut short
    with EventLog.open(tmp_path, fsync=False) as log:
        assert log.applied_seq == 12
        assert not (tmp_path / ".checkpoint.json.tmp-killed").exists()
        assert [s for s, _ in log.read(12)] == [13, 14, 15]
        with pytest.raises(LogCorrupt, match="must hold seq 3, got CRC mismatch"):
            list(log.read(0))


def test_failed_write_is_cut_back(tmp_path, monkeypatch):
    import core.serve.event_log as event_log

    with EventLog.open(tmp_path) as log:
        log.append([_payload(1)])
        real_write = os.write

        def half_then_enospc(fd: int, data) -> int:
            real_write(fd, bytes(data)[:10])
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(event_log.os, "write", half_then_enospc)
        with pytest.raises(OSError, match="No space"):
            log.append([_payload(2)])
        monkeypatch.undo()
        assert log.append([_payload(2)]) == (2, 2)
    with EventLog.open(tmp_path) as log:
        assert log.recovery.clean
        assert _all(log) == [(1, _payload(1)), (2, _payload(2))]


def test_unapplied_records_are_read_from_memory(tmp_path, monkeypatch):
    with EventLog.open(tmp_path) as log:
        log.append([_payload(s) for s in (1, 2, 3)])
        log.append([_payload(4)])

        def no_disk(*args, **kwargs):
            raise AssertionError("read the file for records held in memory")

        monkeypatch.setattr(log, "_iter", no_disk)
        assert _all(log) == [(s, _payload(s)) for s in (1, 2, 3, 4)]
        assert list(log.read(1, limit=2)) == [(2, _payload(2)), (3, _payload(3))]
        log.mark_applied(2)
        assert _all(log, 2) == [(3, _payload(3)), (4, _payload(4))]
        monkeypatch.undo()  # below the checkpoint: from the file, still correct
        assert _all(log) == [(s, _payload(s)) for s in (1, 2, 3, 4)]
        assert log._tail_first == 3 and len(log._tail) == 2


def test_memory_tail_is_bounded(tmp_path, monkeypatch):
    import core.serve.event_log as event_log

    monkeypatch.setattr(event_log, "TAIL_BYTES", 200)
    with EventLog.open(tmp_path) as log:
        for seq in range(1, 101):
            log.append([_payload(seq)])
            assert log._tail_bytes <= 200
            assert log._tail_bytes == sum(len(p) for p in log._tail)
        assert _all(log) == [(s, _payload(s)) for s in range(1, 101)]  # oldest from the file
        assert log._tail_first > 1 and log._tail_first + len(log._tail) == 101
