"""Run benchmark modules in forked children of one process that imported the stack once.

``--quick`` checks that every module runs; a fresh interpreter per module spent ~4.5 s of each
run importing torch, transformers' BERT and the detectors. A zygote imports them once and forks
a child per module: each child still starts from a clean copy (its own memory, its own
``__main__``), and its peak memory still counts the imported libraries, as a fresh process's
would. The full run keeps fresh processes (``subprocess``), which also time imports.
"""

from __future__ import annotations

import os
import runpy
import signal
import sys
import tempfile
import time
import traceback

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


def _child(module: str, args: list[str], cwd: str, out_fd: int, err_fd: int) -> None:
    os.chdir(cwd)
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


def run_forked(module: str, args: list[str], timeout_s: float,
               cwd: str = ".") -> tuple[int | str, str, str]:
    """(exit status or "timeout", stdout, stderr) of ``python -m <module> *args`` run in a
    forked child in ``cwd``."""
    sys.stdout.flush()
    sys.stderr.flush()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child never returns
            _child(module, args, cwd, out.fileno(), err.fileno())
        deadline = time.monotonic() + timeout_s
        status: int | str = "timeout"
        while time.monotonic() < deadline:
            done, wait_status = os.waitpid(pid, os.WNOHANG)
            if done:
                status = os.waitstatus_to_exitcode(wait_status)
                break
            time.sleep(0.02)
        else:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        out.seek(0)
        err.seek(0)
        return (status, out.read().decode(errors="replace"),
                err.read().decode(errors="replace"))
