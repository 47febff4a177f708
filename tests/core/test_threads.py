"""in_background: the job runs on its own named thread; its result or error reaches the
caller when it waits."""

from __future__ import annotations

import threading

import pytest

from core.threads import in_background


def test_the_job_runs_on_its_own_named_thread_and_returns_its_result() -> None:
    wait = in_background(lambda: threading.current_thread().name, "job-x")
    assert wait() == "job-x"
    assert wait() == "job-x"  # waiting again gives the same result


def test_the_caller_keeps_working_while_the_job_runs() -> None:
    release = threading.Event()
    wait = in_background(lambda: release.wait(5), "job")
    release.set()  # only the caller can set it: the job waits on the caller
    assert wait() is True


def test_an_error_is_raised_in_the_waiting_thread() -> None:
    def fail() -> None:
        raise KeyError("lost")

    wait = in_background(fail, "job")
    with pytest.raises(KeyError, match="lost"):
        wait()
