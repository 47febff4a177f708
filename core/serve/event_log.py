"""A durable append-only log of opaque byte records, with group commit.

The scoring service acknowledges an event only after ``EventLog.append`` returns, and
``append`` returns only after the records are written *and* fsynced. The service is the
single writer of the store: it reads the log in micro-batches (``read(applied_seq)``), commits
each batch to the store, then calls ``mark_applied(last_seq_of_batch)``.

Format (one directory, owned by one process at a time)::

    LOCK                        flock(LOCK_EX | LOCK_NB) held while open; holds the owner's pid
    checkpoint.json             {"applied_seq": N}, replaced atomically (temp, fsync, rename,
                                fsync of the directory)
    00000000000000000001.log    segments, named by the seq of their first record; a new one is
    00000000000000052817.log    started once the active one reaches ``segment_bytes``

    frame = [u32 length][u32 crc32(payload)][u64 seq][payload]     (little-endian)

Guarantees:

* Sequence numbers start at 1, are contiguous and survive restarts.
* A kill -9 (or power cut, with ``fsync=True``) loses no acknowledged record: ack follows
  fsync; a new segment file is made durable (file and directory fsync) before it is used.
* Recovery on ``open`` scans the last segment and truncates a torn or corrupt tail (short
  frame, bad CRC, out-of-sequence seq -- which also rejects the zero-filled tail some file
  systems leave after a crash): those records were never acknowledged. ``recovery`` says what
  was kept and cut. Damage anywhere else (a non-last segment, or a record ``read`` meets) is
  not a torn write and raises ``LogCorrupt`` rather than skipping data. On open, segments that
  still hold unapplied records are verified too; fully applied ones wait for ``compact``.
* Delivery after the checkpoint is at-least-once: the consumer may commit a batch and die
  before ``mark_applied``, so it sees that batch again after a restart. Re-application must be
  idempotent (the store dedupes by event id).
* Back-pressure: ``append`` raises ``LogFull`` (with a ``retry_after_s`` hint, for a 429's
  Retry-After) instead of writing when the written-but-not-applied count would pass
  ``max_pending_records``.

Group commit is leader/follower, with no extra thread: an appender writes its frames under the
lock, then waits until an fsync covers its last seq. If no fsync is running it becomes the
leader: it fsyncs outside the lock, so other appenders keep writing meanwhile, and then wakes
everyone its fsync covered. Those written during that fsync are covered by the next one,
led by whichever of them gets the lock first. With N concurrent appenders there are about
two fsyncs per "round" instead of N.

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as folder, EventLog.open(folder) as log:
...     log.append([b'{"id": 1}', b'{"id": 2}'])
...     [seq for seq, _ in log.read(log.applied_seq)]
...     log.mark_applied(2)
...     log.pending()
(1, 2)
[1, 2]
0
"""

from __future__ import annotations

import bisect
import collections
import contextlib
import fcntl
import json
import os
import re
import struct
import threading
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from core.errors import AnomalystError
from core.files import atomic_file, private_dir

HEADER = struct.Struct("<IIQ")  # length, crc32 of payload, seq
MAX_RECORD_BYTES = 1 << 20  # part of the format: recovery treats a longer length as damage
DEFAULT_SEGMENT_BYTES = 64 << 20
DEFAULT_MAX_PENDING = 100_000
TAIL_BYTES = 64 << 20  # unapplied records kept in memory for the readers (then the file)
LOCK_NAME = "LOCK"
CHECKPOINT_NAME = "checkpoint.json"
_SEGMENT_RE = re.compile(r"^(\d{20})\.log$")
_INDEX_EVERY = 1024  # a sparse (seq -> offset) entry every this many records, for read()
_FILE_MODE = 0o600


class EventLogError(AnomalystError):
    """The event log could not be opened, written or read."""


class LogInUse(EventLogError):
    """Another process (or another open in this one) holds the log directory's lock."""


class LogFull(EventLogError):
    """Too many records are written but not yet applied; retry after ``retry_after_s``."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class LogCorrupt(EventLogError):
    """Damage that is not a torn tail: a bad frame in an older segment or a missing range."""


class RecordTooLarge(EventLogError, ValueError):
    """A record is longer than ``MAX_RECORD_BYTES``."""


class LogFailed(EventLogError):
    """A write or fsync failed; the log refuses further appends until it is reopened."""


@dataclass(frozen=True)
class Recovery:
    """What ``open`` found: the log's range and what was cut from the last segment's tail."""

    first_seq: int  # oldest readable seq (last_seq + 1 when the log is empty)
    last_seq: int
    bytes_truncated: int = 0
    truncated_at: int | None = None  # byte offset in ``segment`` where the cut began
    segment: str | None = None  # file name of the truncated segment
    reason: str | None = None  # why the first dropped frame was rejected

    @property
    def records_kept(self) -> int:
        return self.last_seq - self.first_seq + 1

    @property
    def clean(self) -> bool:
        return self.bytes_truncated == 0


@dataclass
class _Segment:
    first_seq: int
    path: Path
    index_seqs: list[int] = field(default_factory=list)  # sparse: every _INDEX_EVERY records
    index_offsets: list[int] = field(default_factory=list)

    def note(self, seq: int, offset: int) -> None:
        if (seq - self.first_seq) % _INDEX_EVERY == 0:
            self.index_seqs.append(seq)
            self.index_offsets.append(offset)

    def locate(self, seq: int) -> tuple[int, int]:
        """(seq, offset) of an indexed frame at or before ``seq`` (the start when unknown)."""
        i = bisect.bisect_right(self.index_seqs, seq) - 1
        if i < 0:
            return self.first_seq, 0
        return self.index_seqs[i], self.index_offsets[i]


def segment_name(first_seq: int) -> str:
    return f"{first_seq:020d}.log"


def _frame_problem(f: BinaryIO, expected_seq: int) -> tuple[bytes | None, str | None]:
    """Read one frame from ``f``: (payload, None), (None, None) at a clean end of file, or
    (None, why) for a short, oversized, out-of-sequence or CRC-failing frame."""
    header = f.read(HEADER.size)
    if not header:
        return None, None
    if len(header) < HEADER.size:
        return None, f"short frame header ({len(header)} of {HEADER.size} bytes)"
    length, crc, seq = HEADER.unpack(header)
    if seq != expected_seq:
        return None, f"seq {seq} where {expected_seq} was expected"
    if length > MAX_RECORD_BYTES:
        return None, f"frame length {length} over the {MAX_RECORD_BYTES} byte limit"
    payload = f.read(length)
    if len(payload) < length:
        return None, f"short payload ({len(payload)} of {length} bytes)"
    if zlib.crc32(payload) != crc:
        return None, f"CRC mismatch on seq {seq}"
    return payload, None


def _scan(segment: _Segment) -> tuple[int, int, str | None]:
    """Walk every frame of ``segment`` from its start, filling its sparse index: the next
    expected seq, the byte offset where valid frames end, and why the scan stopped early
    (None at a clean end of file)."""
    segment.index_seqs.clear()
    segment.index_offsets.clear()
    seq, offset = segment.first_seq, 0
    with open(segment.path, "rb") as f:
        while True:
            payload, problem = _frame_problem(f, seq)
            if payload is None:
                return seq, offset, problem
            segment.note(seq, offset)
            offset += HEADER.size + len(payload)
            seq += 1


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _take_lock(directory: Path) -> int:
    path = directory / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, _FILE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        raise LogInUse(f"event log {directory} must be opened by one process at a time, got "
                       f"it locked by pid {holder} ({path}). Stop the other service "
                       "instance or use another directory.") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd


def _read_checkpoint(directory: Path) -> int:
    path = directory / CHECKPOINT_NAME
    try:
        value = json.loads(path.read_text("utf-8"))["applied_seq"]
    except FileNotFoundError:
        return 0
    except (ValueError, KeyError, TypeError) as error:
        raise LogCorrupt(f"event log checkpoint {path} must hold "
                         f'{{"applied_seq": <int>}}, got unreadable content ({error}).') from None
    if not isinstance(value, int) or value < 0:
        raise LogCorrupt(f"event log checkpoint {path} must hold a seq >= 0, got {value!r}.")
    return value


def _list_segments(directory: Path) -> list[_Segment]:
    found = [(int(m.group(1)), p) for p in directory.iterdir()
             if (m := _SEGMENT_RE.match(p.name))]
    return [_Segment(first, path) for first, path in sorted(found)]


class EventLog:
    """The log; build it with ``EventLog.open``. Thread-safe; one process per directory."""

    def __init__(self, directory: Path, lock_fd: int, *, segment_bytes: int,
                 max_pending_records: int, fsync: bool) -> None:
        self.directory = directory
        self._lock_fd = lock_fd
        self._segment_bytes = segment_bytes
        self._max_pending = max_pending_records
        self._fsync = fsync
        self._cond = threading.Condition(threading.Lock())
        self._checkpoint_lock = threading.Lock()
        self._segments: list[_Segment] = []
        self._fd = -1  # the active (last) segment, opened for appending
        self._size = 0  # bytes in the active segment
        self._next_seq = 1
        self._durable_seq = 0  # every seq <= this is fsynced (readable, acknowledged)
        self._applied_seq = 0
        self._flushing = False  # a leader is fsyncing outside the lock
        self._failed: BaseException | None = None
        self._closed = False
        self._applied_history: collections.deque[tuple[float, int]] = collections.deque(
            maxlen=16)
        # The records not yet applied, kept in memory as written (bounded by TAIL_BYTES):
        # the followers read them from here, not back from the file.
        self._tail: list[bytes] = []
        self._tail_first = 1  # seq of _tail[0]
        self._tail_bytes = 0
        self.fsync_count = 0  # fsyncs of segment data (group commits, rolls, close)
        self.recovery = Recovery(1, 0)

    # -- opening -------------------------------------------------------------------------

    @classmethod
    def open(cls, directory: str | os.PathLike[str], *,
             segment_bytes: int = DEFAULT_SEGMENT_BYTES,
             max_pending_records: int = DEFAULT_MAX_PENDING, fsync: bool = True) -> EventLog:
        """Open (creating, 0700) the log in ``directory``, recovering from a crash.

        Raises ``LogInUse`` when another process holds it and ``LogCorrupt`` on damage that
        is not a torn tail. ``fsync=False`` is for tests and benchmarks only: it keeps the
        format but gives up durability against power loss (not against kill -9)."""
        if segment_bytes < HEADER.size:
            raise ValueError(f"segment_bytes must be >= {HEADER.size}, got {segment_bytes}")
        if max_pending_records < 1:
            raise ValueError(f"max_pending_records must be >= 1, got {max_pending_records}")
        folder = private_dir(directory)
        lock_fd = _take_lock(folder)
        log = cls(folder, lock_fd, segment_bytes=segment_bytes,
                  max_pending_records=max_pending_records, fsync=fsync)
        try:
            log._recover()
        except BaseException:
            os.close(lock_fd)
            raise
        return log

    def _recover(self) -> None:
        for leftover in self.directory.glob(f".{CHECKPOINT_NAME}.tmp-*"):  # a killed write
            leftover.unlink(missing_ok=True)
        self._applied_seq = _read_checkpoint(self.directory)
        segments = _list_segments(self.directory)
        if not segments:
            segments = [_Segment(self._applied_seq + 1,
                                 self.directory / segment_name(self._applied_seq + 1))]
            self._create_segment_file(segments[0].path)
        first = segments[0].first_seq
        if first > self._applied_seq + 1:
            raise LogCorrupt(f"event log {self.directory} must hold every record after the "
                             f"checkpoint (seq {self._applied_seq}), got the oldest segment "
                             f"starting at {first}. Records are missing; restore them.")
        for segment, following in zip(segments, segments[1:], strict=False):
            if following.first_seq - 1 > self._applied_seq:  # still to be replayed: verify
                self._verify_sealed(segment, following.first_seq)
        last = segments[-1]
        next_seq, valid_end, problem = _scan(last)
        size = last.path.stat().st_size
        self._segments = segments
        self._next_seq, self._durable_seq = next_seq, next_seq - 1
        self._size = valid_end
        self.recovery = Recovery(first, next_seq - 1)
        if size > valid_end:
            self._truncate_tail(last, valid_end, size, problem)
        if self._applied_seq > self._durable_seq:
            raise LogCorrupt(f"event log {self.directory} checkpoint must not pass the last "
                             f"record, got applied_seq {self._applied_seq} > last seq "
                             f"{self._durable_seq}. Acknowledged records are missing.")
        self._fd = os.open(last.path, os.O_WRONLY | os.O_APPEND)

    def _verify_sealed(self, segment: _Segment, next_first: int) -> None:
        """A non-last segment must hold exactly first_seq .. next_first - 1, nothing more."""
        next_seq, valid_end, problem = _scan(segment)
        size = segment.path.stat().st_size
        if problem is None and next_seq == next_first and valid_end == size:
            return
        why = problem or (f"{next_seq - segment.first_seq} records where "
                          f"{next_first - segment.first_seq} were expected")
        raise LogCorrupt(f"event log segment {segment.path} must be intact (it is not the "
                         f"last segment, so this is not a torn write), got damage at byte "
                         f"{valid_end}: {why}. Restore the directory from a backup; records "
                         f"from seq {next_seq} are unreadable.")

    def _truncate_tail(self, segment: _Segment, valid_end: int, size: int,
                       problem: str | None) -> None:
        with open(segment.path, "r+b") as f:
            f.truncate(valid_end)
            f.flush()
            if self._fsync:
                os.fsync(f.fileno())
        self.recovery = Recovery(self.recovery.first_seq, self.recovery.last_seq,
                                 bytes_truncated=size - valid_end, truncated_at=valid_end,
                                 segment=segment.path.name, reason=problem)

    def _create_segment_file(self, path: Path) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _FILE_MODE)
        try:
            if self._fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        if self._fsync:
            _fsync_dir(self.directory)

    # -- state ---------------------------------------------------------------------------

    @property
    def applied_seq(self) -> int:
        """The consumer's checkpoint: every seq <= this is committed to the store."""
        with self._cond:
            return self._applied_seq

    @property
    def last_seq(self) -> int:
        """The last acknowledged (fsynced, readable) seq; 0 when nothing was ever written."""
        with self._cond:
            return self._durable_seq

    def pending(self) -> int:
        """Records written but not yet applied (those mid-fsync included)."""
        with self._cond:
            return self._next_seq - 1 - self._applied_seq

    # -- appending -----------------------------------------------------------------------

    def append(self, records: Sequence[bytes]) -> tuple[int, int]:
        """Write ``records`` and return (first_seq, last_seq) once they are fsynced.

        Raises ``LogFull`` (nothing written) when the pending bound would be passed,
        ``RecordTooLarge`` for a record over ``MAX_RECORD_BYTES``."""
        payloads = _checked_payloads(records)
        crcs = [zlib.crc32(p) for p in payloads]
        with self._cond:
            self._prepare(len(payloads), sum(HEADER.size + len(p) for p in payloads))
            first = self._next_seq
            self._write(payloads, crcs)
            last = self._next_seq - 1
            self._wait_durable(last)
        return first, last

    def _prepare(self, count: int, nbytes: int) -> None:
        """Checks, then a roll to a new segment when this batch would overfill the active
        one (a batch never spans segments). Holds the lock; may wait on it."""
        while True:
            self._check_usable()
            self._check_room(count)
            if self._size == 0 or self._size + nbytes <= self._segment_bytes:
                return
            if self._flushing:  # the leader's fsync uses the active fd: let it finish
                self._cond.wait()
                continue
            self._roll()

    def _check_usable(self) -> None:
        if self._closed:
            raise EventLogError(f"event log {self.directory} must be open to append, got a "
                                "closed log.")
        if self._failed is not None:
            raise LogFailed(f"event log {self.directory} must have written every record, got "
                            f"a failed write or fsync ({self._failed}). Reopen the log; "
                            "unacknowledged records may be lost.") from self._failed

    def _check_room(self, count: int) -> None:
        pending = self._next_seq - 1 - self._applied_seq
        if count > self._max_pending:
            raise ValueError(f"a batch must hold at most max_pending_records "
                             f"({self._max_pending}) records, got {count}")
        if pending + count > self._max_pending:
            raise LogFull(f"event log {self.directory} must hold at most "
                          f"{self._max_pending} unapplied records, got {pending} pending "
                          f"plus {count} new. Retry later.",
                          self._retry_after(pending + count - self._max_pending))

    def _retry_after(self, excess: int) -> float:
        """Seconds until the consumer should have applied ``excess`` records, from its
        recent pace (1 s when unknown), clamped to [0.1, 60]."""
        if len(self._applied_history) >= 2:
            (t0, s0), (t1, s1) = self._applied_history[0], self._applied_history[-1]
            if t1 > t0 and s1 > s0:
                return min(60.0, max(0.1, excess / ((s1 - s0) / (t1 - t0))))
        return 1.0

    def _write(self, payloads: list[bytes], crcs: list[int]) -> None:
        segment, seq, offset = self._segments[-1], self._next_seq, self._size
        parts = []
        for payload, crc in zip(payloads, crcs, strict=True):
            parts.append(HEADER.pack(len(payload), crc, seq))
            parts.append(payload)
            seq += 1
        blob = b"".join(parts)
        try:
            view = memoryview(blob)
            while view:
                view = view[os.write(self._fd, view):]
        except BaseException as error:
            self._undo_write(offset, error)
            raise
        if not self._tail:
            self._tail_first = self._next_seq
        for payload in payloads:  # only now: the index must not point at undone bytes
            segment.note(self._next_seq, offset)
            offset += HEADER.size + len(payload)
            self._next_seq += 1
        self._size = offset
        self._tail.extend(payloads)
        self._tail_bytes += sum(len(p) for p in payloads)
        if self._tail_bytes > TAIL_BYTES:  # readers fall back to the file for the oldest
            drop, left = 0, self._tail_bytes
            while left > TAIL_BYTES // 2 and drop < len(self._tail):
                left -= len(self._tail[drop])
                drop += 1
            self._drop_tail(drop)

    def _drop_tail(self, count: int) -> None:
        """Forget the oldest ``count`` records of the memory tail (lock held)."""
        if count <= 0:
            return
        if count >= len(self._tail):
            self._tail, self._tail_bytes = [], 0
        else:
            self._tail_bytes -= sum(len(p) for p in self._tail[:count])
            del self._tail[:count]
        self._tail_first += count

    def _undo_write(self, offset: int, error: BaseException) -> None:
        """Cut a failed write (ENOSPC, ...) back off, so no garbage sits before the next
        frame; if that fails too, refuse further appends."""
        try:
            os.ftruncate(self._fd, offset)
        except OSError:
            self._failed = error

    def _wait_durable(self, seq: int) -> None:
        """Return once an fsync covers ``seq``, leading one if none is running (lock held)."""
        if not self._fsync:
            self._durable_seq = self._next_seq - 1
            return
        while self._durable_seq < seq:
            if self._failed is not None:
                self._check_usable()
            if self._flushing:
                self._cond.wait()
                continue
            self._lead_fsync()

    def _lead_fsync(self) -> None:
        self._flushing = True
        target, fd = self._next_seq - 1, self._fd
        self._cond.release()
        error: OSError | None = None
        try:
            os.fsync(fd)
        except OSError as e:
            error = e
        finally:
            self._cond.acquire()
            self._flushing = False
            self._cond.notify_all()
        if error is not None:  # after a failed fsync the page cache state is unknown
            self._failed = error
            self._check_usable()
        self.fsync_count += 1
        self._durable_seq = max(self._durable_seq, target)

    def _roll(self) -> None:
        """Seal the active segment (fsync, close) and start a new one (lock held, no
        leader running)."""
        segment = _Segment(self._next_seq, self.directory / segment_name(self._next_seq))
        try:
            if self._fsync:
                os.fsync(self._fd)
                self.fsync_count += 1
            self._durable_seq = self._next_seq - 1
            os.close(self._fd)
            self._fd = -1
            self._create_segment_file(segment.path)
            self._fd = os.open(segment.path, os.O_WRONLY | os.O_APPEND)
        except OSError as error:
            self._failed = error
            raise
        self._segments.append(segment)
        self._size = 0
        self._cond.notify_all()

    # -- reading -------------------------------------------------------------------------

    def read(self, after_seq: int = 0, limit: int | None = None) -> Iterator[tuple[int, bytes]]:
        """(seq, payload) for every acknowledged record with seq > ``after_seq``, in order,
        at most ``limit`` of them. Sees records acknowledged up to this call; safe while
        appends go on. Raises ``LogCorrupt`` on a damaged frame."""
        if after_seq < 0:
            raise ValueError(f"after_seq must be >= 0, got {after_seq}")
        if limit is not None and limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        start = after_seq + 1
        with self._cond:
            upto = self._durable_seq
            if limit is not None:
                upto = min(upto, after_seq + limit)
            if self._tail and self._tail_first <= start <= upto:  # the tail ends at the last
                lo = start - self._tail_first
                return iter(list(zip(range(start, upto + 1),
                                     self._tail[lo:lo + upto - start + 1], strict=True)))
            segments = list(self._segments)
        if after_seq + 1 < segments[0].first_seq:
            raise EventLogError(f"event log {self.directory} read must start at or after seq "
                                f"{segments[0].first_seq - 1} (older records were applied "
                                f"and compacted), got after_seq {after_seq}.")
        return self._iter(segments, after_seq + 1, upto)

    def _iter(self, segments: list[_Segment], start: int,
              upto: int) -> Iterator[tuple[int, bytes]]:
        firsts = [s.first_seq for s in segments]
        i = max(0, bisect.bisect_right(firsts, start) - 1)
        for j in range(i, len(segments)):
            segment = segments[j]
            if segment.first_seq > upto:
                return
            end_seq = firsts[j + 1] if j + 1 < len(firsts) else None  # first seq after it
            seq, offset = segment.locate(start)
            with open(segment.path, "rb") as f:
                f.seek(offset)
                while seq <= upto:
                    payload, problem = _frame_problem(f, seq)
                    if payload is None:
                        if problem is None and seq == end_seq:
                            break  # clean end of a sealed segment: on to the next
                        raise LogCorrupt(f"event log segment {segment.path} must hold seq "
                                         f"{seq}, got {problem or 'end of file'}.")
                    if seq >= start:
                        yield seq, payload
                    seq += 1
            if seq > upto:
                return

    # -- checkpoint and compaction -------------------------------------------------------

    def mark_applied(self, seq: int) -> None:
        """Persist that every record <= ``seq`` is committed to the store (atomic, durable).
        Call it after the micro-batch's database commit; never move it backwards."""
        with self._checkpoint_lock:
            with self._cond:
                current, durable = self._applied_seq, self._durable_seq
            if seq == current:
                return
            if not current < seq <= durable:
                raise ValueError(f"mark_applied seq must be in ({current}, {durable}] "
                                 f"(after the checkpoint, at most the last record), got {seq}")
            path = self.directory / CHECKPOINT_NAME
            with atomic_file(path, "w", durable=self._fsync) as handle:
                json.dump({"applied_seq": seq}, handle)
            if self._fsync:
                _fsync_dir(self.directory)
            with self._cond:
                self._applied_seq = seq
                self._applied_history.append((time.monotonic(), seq))
                self._drop_tail(min(seq - self._tail_first + 1, len(self._tail)))

    def compact(self) -> list[str]:
        """Delete segments whose every record is <= ``applied_seq`` (never the active one),
        oldest first; the names deleted. A reader already past a deleted segment is not
        disturbed (it holds the file open); the consumer never reads below the checkpoint."""
        with self._checkpoint_lock:  # one compaction at a time, and no checkpoint move
            with self._cond:
                applied, segments = self._applied_seq, list(self._segments)
            doomed = [s for s, nxt in zip(segments, segments[1:], strict=False)
                      if nxt.first_seq - 1 <= applied]
            for segment in doomed:  # oldest first: a crash leaves a contiguous suffix
                segment.path.unlink(missing_ok=True)
            if doomed:
                with self._cond:
                    del self._segments[:len(doomed)]
                if self._fsync:
                    _fsync_dir(self.directory)
            return [s.path.name for s in doomed]

    def segments(self) -> list[str]:
        """File names of the segments, oldest first (the last is the active one)."""
        with self._cond:
            return [s.path.name for s in self._segments]

    # -- closing -------------------------------------------------------------------------

    def close(self) -> None:
        """Flush, close the active segment and release the lock; idempotent."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            while self._flushing:
                self._cond.wait()
            try:
                if self._fsync and self._failed is None and self._durable_seq < self._next_seq - 1:
                    os.fsync(self._fd)
                    self.fsync_count += 1
                    self._durable_seq = self._next_seq - 1
            finally:
                self._cond.notify_all()
                with contextlib.suppress(OSError):
                    os.close(self._fd)
                self._fd = -1
                os.close(self._lock_fd)  # releases the flock

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _checked_payloads(records: Sequence[bytes]) -> list[bytes]:
    if isinstance(records, bytes | bytearray | memoryview | str):
        raise TypeError("append takes a sequence of records, got a single bytes/str value")
    payloads = []
    for record in records:
        if not isinstance(record, bytes | bytearray | memoryview):
            raise TypeError(f"a record must be bytes, got {type(record).__name__}")
        payloads.append(bytes(record))
    if not payloads:
        raise ValueError("append needs at least one record, got none")
    for i, payload in enumerate(payloads):
        if len(payload) > MAX_RECORD_BYTES:
            raise RecordTooLarge(f"a record must be at most {MAX_RECORD_BYTES} bytes, got "
                                 f"{len(payload)} bytes at index {i}.")
    return payloads
