"""How many blocks to add: a pure function of what the daemon observed."""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Observed:
    visible: int          # tasks waiting in the queue
    in_flight: int        # tasks held by pools
    pending_blocks: int   # submitted, not yet running
    running_blocks: int
    keep_alive_blocks: int


def blocks_to_add(o: Observed, *, min_blocks: int, max_blocks: int, workers_per_block: int,
                  parallelism: float = 1.0) -> int:
    """Blocks to submit now. Never adds while blocks are still pending (they will take the load
    when they start); keeps ``min_blocks``; asks for enough slots for the whole backlog, scaled
    by ``parallelism`` and capped by ``max_blocks``."""
    active = o.pending_blocks + o.running_blocks
    if o.pending_blocks:
        return 0
    want = min_blocks
    load = o.visible + o.in_flight
    if load:
        want = max(want, math.ceil(parallelism * load / max(workers_per_block, 1)))
    want = min(max(want, 0), max_blocks)
    return max(want - active, 0)
