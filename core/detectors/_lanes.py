"""Scoring row blocks in parallel lanes: one torch thread per lane on the CPU.

Small inference GEMMs (a few thousand rows by tens of features) scale poorly across OpenMP
threads: on 2 cores two lanes of one thread each run faster than one op over 2 threads
(docs/BENCHMARKS.md, 'Measurements behind design choices'). Each lane is a long-lived Python
thread that takes contiguous blocks of rows; torch ops release the GIL, and
``torch.set_num_threads(1)`` in a lane thread is that thread's own OpenMP setting, so the
caller's thread count is untouched. The lane threads are kept between calls (starting fresh
ones would cost time on every call) and made again in a forked child. On a GPU the caller's
thread runs every block. Numpy scorers (isolation forest, z-score) use the same
lanes: their gathers and reductions release the GIL too.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait

import torch

CPU_BLOCK_ROWS = 8_192  # rows per block on the CPU: the layer activations stay in L2

_pool: tuple[int, int, ThreadPoolExecutor] | None = None  # (pid, lanes, executor)
_pool_lock = threading.Lock()


def _lane_pool(lanes: int) -> ThreadPoolExecutor:
    """``lanes`` long-lived one-torch-thread workers of this process."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool[0] != os.getpid() or _pool[1] != lanes:
            if _pool is not None and _pool[0] == os.getpid():
                _pool[2].shutdown(wait=False)
            _pool = (os.getpid(), lanes, ThreadPoolExecutor(
                lanes, thread_name_prefix="score-lane", initializer=torch.set_num_threads,
                initargs=(1,)))
        return _pool[2]


def run_blocks(
    n_rows: int, block_rows: int, device: torch.device, score_block: Callable[[int, int], None]
) -> None:
    """Call ``score_block(start, stop)`` once for every block of rows, under inference mode.

    On the CPU blocks are at most ``CPU_BLOCK_ROWS`` and run in ``torch.get_num_threads()``
    lanes (contiguous shares of the rows). ``score_block`` must only write its own rows and
    must not call ``run_blocks`` (the lanes would wait on themselves).
    """
    if device.type == "cpu":
        block_rows = min(block_rows, CPU_BLOCK_ROWS)
    starts = list(range(0, n_rows, block_rows))
    lanes = min(torch.get_num_threads(), len(starts)) if device.type == "cpu" else 1

    def lane(share: list[int]) -> None:
        with torch.inference_mode():
            for start in share:
                score_block(start, min(start + block_rows, n_rows))

    if lanes <= 1:
        lane(starts)
        return
    per_lane = -(-len(starts) // lanes)
    pool = _lane_pool(lanes)
    jobs = [pool.submit(lane, starts[i:i + per_lane]) for i in range(0, len(starts), per_lane)]
    wait(jobs)  # every lane has finished writing before an error is raised
    for job in jobs:
        job.result()  # re-raises a lane's error
