"""Scoring row blocks in parallel lanes: one torch thread per lane on the CPU.

Small inference GEMMs (a few thousand rows by tens of features) scale poorly across OpenMP
threads: on 2 cores one op over 2 threads runs ~1.7x one thread, two lanes of one thread each
run ~1.9x. Each lane is a Python thread that takes contiguous blocks of rows; torch ops release
the GIL, and ``torch.set_num_threads(1)`` inside a lane is that thread's own OpenMP setting, so
the caller's thread count is untouched. On a GPU the caller's thread runs every block.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch

from core.threads import run_at_once

CPU_BLOCK_ROWS = 8_192  # rows per block on the CPU: the layer activations stay in L2


def run_blocks(
    n_rows: int, block_rows: int, device: torch.device, score_block: Callable[[int, int], None]
) -> None:
    """Call ``score_block(start, stop)`` once for every block of rows, under inference mode.

    On the CPU blocks are at most ``CPU_BLOCK_ROWS`` and run in ``torch.get_num_threads()``
    lanes (contiguous shares of the rows); ``score_block`` must only write its own rows.
    """
    if device.type == "cpu":
        block_rows = min(block_rows, CPU_BLOCK_ROWS)
    starts = list(range(0, n_rows, block_rows))
    lanes = min(torch.get_num_threads(), len(starts)) if device.type == "cpu" else 1

    def lane(share: list[int], single_thread: bool) -> None:
        if single_thread:
            torch.set_num_threads(1)
        with torch.inference_mode():
            for start in share:
                score_block(start, min(start + block_rows, n_rows))

    if lanes <= 1:
        lane(starts, single_thread=False)
        return
    per_lane = -(-len(starts) // lanes)
    run_at_once([functools.partial(lane, starts[i:i + per_lane], True)
                 for i in range(0, len(starts), per_lane)], "score-lane")
