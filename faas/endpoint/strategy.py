"""When to add and remove blocks: a pure function of what the daemon observed (no I/O, no
clock), so it is unit-tested on many cases and replayed in a simulation of a large site."""
from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class BlockView:
    id: str
    state: str                 # "pending" (in the scheduler's queue), "running", "draining"
    #: seconds every pool of the block has been idle (None: unknown, or busy)
    idle_for: float | None = None
    keep_alive: bool = False   # one of the min_blocks


@dataclass(frozen=True)
class Observed:
    visible: int               # tasks waiting in the queue
    in_flight: int             # tasks held by pools (received, not deleted)
    blocks: tuple[BlockView, ...] = ()
    #: seconds the queue has been empty (visible + in flight == 0) without a break
    queue_idle_for: float = 0.0


@dataclass(frozen=True)
class Limits:
    min_blocks: int = 0
    max_blocks: int = 1
    workers_per_block: int = 1         # max_workers_per_node * nodes_per_block
    parallelism: float = 1.0
    max_idle_time: float = 120.0


@dataclass(frozen=True)
class Decision:
    submit: int = 0
    cancel: tuple[str, ...] = field(default_factory=tuple)


def decide(o: Observed, lim: Limits) -> Decision:
    """- Scale out to cover ``parallelism`` x the backlog with workers, within ``max_blocks``,
      but never while blocks are still pending: they will take the load when they start.
    - Keep ``min_blocks`` (draining blocks do not count: they are about to end).
    - Scale in: cancel blocks idle for ``max_idle_time`` beyond ``min_blocks``, and pending
      blocks once the queue has been empty that long (nothing is waiting for them)."""
    pending = [b for b in o.blocks if b.state == "pending"]
    live = [b for b in o.blocks if b.state in ("pending", "running")]
    load = o.visible + o.in_flight
    want = lim.min_blocks
    if load:
        want = max(want, math.ceil(lim.parallelism * load / max(lim.workers_per_block, 1)))
    want = min(want, lim.max_blocks)
    submit = 0 if pending and load else max(want - len(live), 0)
    if pending and not load:
        submit = max(lim.min_blocks - len(live), 0)

    cancel: list[str] = []
    if load == 0 and o.queue_idle_for >= lim.max_idle_time:
        # Newest pending first: they have not started, so cancelling them costs nothing.
        for b in reversed(pending):
            if len(live) - len(cancel) <= lim.min_blocks:
                break
            cancel.append(b.id)
    idle = sorted((b for b in live if b.state == "running" and b.idle_for is not None
                   and b.idle_for >= lim.max_idle_time and b.id not in cancel),
                  key=lambda b: (b.keep_alive, -(b.idle_for or 0)))
    for b in idle:
        if len(live) - len(cancel) <= lim.min_blocks:
            break
        cancel.append(b.id)
    return Decision(submit=submit, cancel=tuple(cancel))
