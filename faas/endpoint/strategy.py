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
    """- Scale out to cover ``parallelism`` x the backlog with workers, within ``max_blocks``.
      Pending blocks count as capacity already asked for, so blocks still waiting in the
      scheduler's queue are never doubled; draining blocks do not count (they are ending).
    - Keep ``min_blocks``.
    - Scale in (unless ``max_idle_time`` <= 0): pending blocks once the queue has been empty
      for ``max_idle_time`` (nothing waits for them), and running blocks idle that long,
      longest idle first, keep-alive ones last; never below ``max(min_blocks, what the backlog
      needs)``, so no decision both cancels and submits."""
    pending = [b for b in o.blocks if b.state == "pending"]
    live = [b for b in o.blocks if b.state in ("pending", "running")]
    load = o.visible + o.in_flight
    want = lim.min_blocks
    if load:
        want = max(want, math.ceil(lim.parallelism * load / max(lim.workers_per_block, 1)))
    want = min(want, lim.max_blocks)
    submit = max(want - len(live), 0)
    floor = max(lim.min_blocks, want)

    cancel: list[str] = []
    if lim.max_idle_time <= 0 or submit:
        return Decision(submit=submit)
    keep_alive_live = sum(1 for b in live if b.keep_alive)
    if not load and o.queue_idle_for >= lim.max_idle_time:
        # Newest pending first: they have not started, so cancelling them costs nothing.
        for b in reversed(pending):
            if len(live) - len(cancel) <= floor:
                break
            if b.keep_alive and keep_alive_live <= lim.min_blocks:
                continue
            cancel.append(b.id)
            keep_alive_live -= b.keep_alive
    idle = sorted((b for b in live if b.state == "running" and b.idle_for is not None
                   and b.idle_for >= lim.max_idle_time),
                  key=lambda b: (b.keep_alive, -(b.idle_for or 0)))
    for b in idle:
        if len(live) - len(cancel) <= floor:
            break
        cancel.append(b.id)
    return Decision(submit=0, cancel=tuple(cancel))
