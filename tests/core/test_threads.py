"""run_at_once: every job runs on its own thread; an error reaches the caller."""

from __future__ import annotations

import threading

import pytest

from core.threads import run_at_once


def test_every_job_runs_once_on_its_own_named_thread() -> None:
    seen: list[str] = []
    run_at_once([lambda: seen.append(threading.current_thread().name)] * 3, "job")
    assert sorted(seen) == ["job-0", "job-1", "job-2"]


def test_the_first_error_is_raised_after_all_jobs_finish() -> None:
    done = threading.Event()

    def fail() -> None:
        raise KeyError("lost")

    def slow() -> None:
        done.wait(0.05)
        done.set()

    with pytest.raises(KeyError, match="lost"):
        run_at_once([fail, slow], "job")
    assert done.is_set()
