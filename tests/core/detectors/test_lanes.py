"""Row blocks in parallel lanes: every row once, lanes' errors surface, caller untouched."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from core.detectors._lanes import CPU_BLOCK_ROWS, run_blocks


def test_every_row_is_scored_once_in_blocks_of_at_most_the_cpu_limit() -> None:
    n = 3 * CPU_BLOCK_ROWS + 5
    hits = np.zeros(n, dtype=np.int64)
    main = threading.current_thread()
    threads: set[str] = set()
    sizes: list[int] = []
    lock = threading.Lock()

    def block(start: int, stop: int) -> None:
        assert torch.is_inference_mode_enabled()
        assert torch.get_num_threads() == 1 or threading.current_thread() is main
        time.sleep(0.01)  # long enough that both lanes are busy at once
        hits[start:stop] += 1  # disjoint slices: no lock needed for the rows
        with lock:
            threads.add(threading.current_thread().name)
            sizes.append(stop - start)

    before = torch.get_num_threads()
    run_blocks(n, 10 * CPU_BLOCK_ROWS, torch.device("cpu"), block)
    assert (hits == 1).all()
    assert max(sizes) == CPU_BLOCK_ROWS
    assert torch.get_num_threads() == before  # one-thread lanes leave the caller alone
    if before > 1:
        assert len(threads) == min(before, 4) and all(t.startswith("score-lane") for t in threads)


def test_a_single_block_runs_in_the_callers_thread() -> None:
    seen: list[str] = []
    run_blocks(10, 64, torch.device("cpu"),
               lambda a, b: seen.append(threading.current_thread().name))
    assert seen == [threading.current_thread().name]


def test_lanes_are_made_again_in_a_forked_child() -> None:
    import multiprocessing

    run_blocks(4 * CPU_BLOCK_ROWS, CPU_BLOCK_ROWS, torch.device("cpu"), lambda a, b: None)
    context = multiprocessing.get_context("fork")
    with context.Pool(1) as pool:  # the parent's lane threads do not exist in the child
        assert pool.apply(_score_in_child) == 4 * CPU_BLOCK_ROWS


def _score_in_child() -> int:
    out = np.zeros(4 * CPU_BLOCK_ROWS)

    def block(start: int, stop: int) -> None:
        out[start:stop] = 1

    run_blocks(len(out), CPU_BLOCK_ROWS, torch.device("cpu"), block)
    return int(out.sum())


def test_an_error_in_a_lane_reaches_the_caller() -> None:
    def block(start: int, stop: int) -> None:
        if start > 0:
            raise ValueError(f"bad block at {start}")

    with pytest.raises(ValueError, match="bad block"):
        run_blocks(4 * CPU_BLOCK_ROWS, CPU_BLOCK_ROWS, torch.device("cpu"), block)
