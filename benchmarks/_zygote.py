"""Run benchmark modules in forked children of one process that imported the stack once.

``--quick`` checks that every module runs; a fresh interpreter per module spent ~4.5 s of each
run importing torch, transformers' BERT and the detectors. A zygote imports them once and forks
a child per module: each child still starts from a clean copy (its own memory, its own
``__main__``), and its peak memory still counts the imported libraries, as a fresh process's
would. ``run_lanes`` runs two such children at a time (one compute thread each). The full
run keeps fresh processes (``subprocess``), one at a time, which also time imports.
"""

from __future__ import annotations

import os
import runpy
import signal
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass

PRELOAD = ("numpy", "pandas", "duckdb", "pyarrow", "torch", "sklearn.ensemble",
           "transformers.models.bert.modeling_bert", "core.detectors", "core.pipeline",
           "core.store", "streamlit")


def preload() -> list[str]:
    """Import the heavy libraries once; the names that failed (the child imports them).
    No torch operator runs here: a parent that started torch's thread pools would hand the
    children a broken copy."""
    failed = []
    for name in PRELOAD:
        try:
            __import__(name)
        except Exception:  # noqa: BLE001 - a missing extra is the module's to report
            failed.append(name)
    return failed


def _limit_threads(threads: int) -> None:
    """At most ``threads`` compute threads in this process (torch, OpenMP, BLAS): children run
    side by side share the cores, and two torch pools spinning on 2 cores ran 3x slower."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                "NUMBA_NUM_THREADS"):
        os.environ[var] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads)
    except ImportError:
        pass


def _child(module: str, args: list[str], cwd: str, out_fd: int, err_fd: int,
           threads: int | None = None) -> None:
    os.chdir(cwd)
    if threads:
        _limit_threads(threads)
    os.dup2(out_fd, 1)
    os.dup2(err_fd, 2)
    # the parent's sys.stdout may be a wrapper (pytest's capture): write to the fds themselves
    sys.stdout = open(1, "w", buffering=1, encoding="utf-8", closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, encoding="utf-8", closefd=False)  # noqa: SIM115
    code = 0
    try:
        sys.argv = [module, *args]
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 - reported through stderr and the exit status
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


@dataclass
class Finished:
    """A child's outcome: exit status (or "timeout"), output, and its own wall and CPU seconds
    (CPU from ``wait4``, so it is the child's even when others run beside it)."""

    status: int | str
    stdout: str
    stderr: str
    wall_s: float
    cpu_s: float


class _Child:
    """A forked ``python -m module`` writing to temporary files; ``poll`` reaps it."""

    def __init__(self, module: str, args: list[str], timeout_s: float, cwd: str,
                 threads: int | None = None) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        self.out = tempfile.TemporaryFile()  # noqa: SIM115 - closed in poll
        self.err = tempfile.TemporaryFile()  # noqa: SIM115
        self.started = time.perf_counter()
        self.deadline = time.monotonic() + timeout_s
        self.pid = os.fork()
        if self.pid == 0:  # pragma: no cover - the child never returns
            _child(module, args, cwd, self.out.fileno(), self.err.fileno(), threads)

    def poll(self) -> Finished | None:
        """The outcome once the child has ended (killed past its deadline), else None."""
        done, wait_status, usage = os.wait4(self.pid, os.WNOHANG)
        status: int | str
        if done:
            status = os.waitstatus_to_exitcode(wait_status)
        elif time.monotonic() >= self.deadline:
            os.kill(self.pid, signal.SIGKILL)
            _, _, usage = os.wait4(self.pid, 0)
            status = "timeout"
        else:
            return None
        wall = time.perf_counter() - self.started
        outputs = []
        for handle in (self.out, self.err):
            handle.seek(0)
            outputs.append(handle.read().decode(errors="replace"))
            handle.close()
        return Finished(status, outputs[0], outputs[1], wall, usage.ru_utime + usage.ru_stime)


def run_forked(module: str, args: list[str], timeout_s: float,
               cwd: str = ".") -> tuple[int | str, str, str]:
    """(exit status or "timeout", stdout, stderr) of ``python -m <module> *args`` run in a
    forked child in ``cwd``."""
    child = _Child(module, args, timeout_s, cwd)
    while (done := child.poll()) is None:
        time.sleep(0.02)
    return done.status, done.stdout, done.stderr


Job = tuple[str, tuple[str, ...]]
"""(module, arguments)"""


def run_lanes(lanes: list[list[Job]], timeout_s: float, cwd: str = ".",
              threads: int = 1) -> dict[Job, Finished]:
    """Run the lanes side by side, each lane's jobs one after another (jobs that share a
    resource, such as one DuckDB file, go in one lane), each job on ``threads`` compute
    threads. Only this thread forks; it polls."""
    results: dict[Job, Finished] = {}
    queues = [list(lane) for lane in lanes if lane]
    running: dict[int, tuple[Job, _Child]] = {}
    while queues or running:
        for lane, queue in enumerate(queues):
            if lane not in running and queue:
                job = queue.pop(0)
                print(f"$ -m {job[0]} {' '.join(job[1])}  (lane {lane + 1})", flush=True)
                running[lane] = (job, _Child(job[0], list(job[1]), timeout_s, cwd, threads))
        for lane, (job, child) in list(running.items()):
            done = child.poll()
            if done is not None:
                results[job] = done
                del running[lane]
        if not any(queues) and not running:
            break
        time.sleep(0.02)
    return results
