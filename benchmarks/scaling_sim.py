"""A discrete-event simulation of one endpoint on a 1,000-node site with bursty load. Each
strategy period, the simulated daemon calls the real ``faas.endpoint.strategy.decide``.

    python benchmarks/scaling_sim.py [--seed N] [--hours H] [--quick]

What is simulated (plain Python, seeded RNG, no I/O):
- The site: ``nodes`` nodes the endpoint may use. A block is one batch job of ``nodes_per_block``
  nodes. A submitted block waits in the scheduler's queue for a time drawn from a lognormal
  (median ``wait_median`` s), and now and then (``long_wait_p``) much longer; it then starts as
  soon as enough nodes are free (first come, first served).
- A started block boots its pools (``boot_time`` s, nodes allocated, no task yet), then each
  node's pool runs ``workers_per_node`` tasks at a time, taking the next task as soon as a worker
  is free. A pool with nothing to run for ``max_idle_time`` exits (not one of the min_blocks, and
  not with ``max_idle_time`` 0); the block ends when all its pools have exited.
- Walltime: at ``walltime - walltime_margin`` the pools stop taking tasks; a task still running
  at ``walltime - min(5, margin / 2)`` is killed and handed back to the queue (it runs again),
  and the block ends.
- A cancelled block: a pending one leaves the scheduler's queue; a running one is killed and
  hands back its running tasks.
- The load: bursts of ``burst_tasks`` tasks (log-uniform count) of 1-60 s (uniform) at random
  times, with quiet gaps between; a burst is sent over a few seconds (5,000 tasks/s).
- The daemon: every ``strategy_period`` s, builds ``Observed`` (visible, in flight, every block's
  state and idle time, how long the queue has been empty) and applies the ``Decision``.

The observation is exact and instant: a real daemon sees the queue depth and the pools' status
files a little late (SQS's counts are approximate), which this does not model.

Baselines, so the figures mean something:
- ``static max_blocks``: always keep max_blocks blocks submitted (keep-alive pools, replaced at
  walltime): the fastest possible, and the most idle.
- ``naive 1 block/task``: ask for one block per queued task (up to max_blocks) counting only the
  running blocks, with no pending check and no cancels; pools idle-exit as usual.

Reported per strategy: makespan (first task sent -> last result) overall and per burst,
node-hours allocated and idle (a node allocated with no task running: booting, waiting for work,
or its pool exited while the block lives on), utilisation (busy worker-time / allocated
worker-time), tasks lost (sent but never completed: must be 0), task runs killed and repeated,
blocks submitted / cancelled, the most blocks pending (and pending + running) at once, and
``held``: the time decide asked for no block although the backlog wanted more than the live ones,
because some block was still pending (its rule: never submit while a block is pending).
"""
from __future__ import annotations

import argparse
import dataclasses
import heapq
import math
import random
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from faas.endpoint.strategy import BlockView, Decision, Limits, Observed, decide


# -- configuration --------------------------------------------------------------------------
@dataclass(frozen=True)
class Site:
    nodes: int = 1000
    nodes_per_block: int = 10
    workers_per_node: int = 32
    min_blocks: int = 0
    max_blocks: int = 100
    init_blocks: int = 0
    parallelism: float = 1.0
    max_idle_time: float = 120.0
    walltime: float = 3600.0
    walltime_margin: float = 60.0
    boot_time: float = 20.0            # job start -> pools polling the queue
    strategy_period: float = 15.0
    wait_median: float = 180.0         # scheduler queue wait of a block: lognormal median (s)
    wait_sigma: float = 0.6
    long_wait_p: float = 0.05          # and now and then a long one
    long_wait: tuple[float, float] = (1200.0, 3600.0)

    @property
    def workers_per_block(self) -> int:
        return self.workers_per_node * self.nodes_per_block

    def limits(self) -> Limits:
        return Limits(min_blocks=self.min_blocks, max_blocks=self.max_blocks,
                      workers_per_block=self.workers_per_block, parallelism=self.parallelism,
                      max_idle_time=self.max_idle_time)


@dataclass(frozen=True)
class Load:
    hours: float = 4.0
    burst_tasks: tuple[int, int] = (10_000, 200_000)
    task_seconds: tuple[float, float] = (1.0, 60.0)
    gap_minutes: tuple[float, float] = (5.0, 40.0)   # quiet time between two bursts' starts
    quiet_end_minutes: float = 40.0                   # no burst starts in the last part
    send_rate: float = 5000.0                         # tasks/s a client sends


@dataclass
class Burst:
    t0: float
    durations: list[float]


def make_bursts(load: Load, seed: int) -> list[Burst]:
    rng = random.Random(seed)
    end = load.hours * 3600 - load.quiet_end_minutes * 60
    t = rng.uniform(60.0, 600.0)
    bursts = []
    lo, hi = load.burst_tasks
    while t < end or not bursts:
        n = int(math.exp(rng.uniform(math.log(lo), math.log(hi))))
        a, b = load.task_seconds
        bursts.append(Burst(t, [rng.uniform(a, b) for _ in range(n)]))
        t += rng.uniform(*load.gap_minutes) * 60
    return bursts


# -- strategies: (sim, site) -> (submit, cancel ids) --------------------------------------
@dataclass(frozen=True)
class Strategy:
    name: str
    site: Site
    kind: str = "decide"        # decide | static | naive

    @property
    def keep_alive_all(self) -> bool:
        return self.kind == "static"


# -- the simulation ------------------------------------------------------------------------
class Node:
    __slots__ = ("block", "free", "running", "idle_since", "idle_epoch", "accepting", "exited")

    def __init__(self, block, workers: int, now: float):
        self.block = block
        self.free = workers
        self.running: dict[int, float] = {}     # task -> start time
        self.idle_since: float | None = now     # allocated, no task running since
        self.idle_epoch = 0
        self.accepting = False                  # pool up and taking tasks
        self.exited = False                     # pool gone (idle or drained); node still held


class Block:
    __slots__ = ("id", "state", "submitted", "eligible", "started", "nodes", "keep_alive", "booted")

    def __init__(self, bid: str, now: float, keep_alive: bool):
        self.id = bid
        self.state = "pending"          # pending | running | draining | ended
        self.submitted = now
        self.eligible = math.inf
        self.started: float | None = None
        self.nodes: list[Node] = []
        self.keep_alive = keep_alive
        self.booted = False


# event kinds
DONE, ARRIVE, ELIGIBLE, BOOTED, IDLE_CHECK, DRAIN, KILL, TICK = range(8)


@dataclass
class Result:
    name: str
    tasks: int = 0
    done: int = 0
    lost: int = 0                   # sent, never done, and in no queue at the end: vanished
    unfinished: int = 0             # still queued at the end (the run hit its hard stop)
    twice: int = 0                  # completed more than once
    reruns: int = 0                 # task runs killed (walltime or cancel) and sent back
    makespan: float = 0.0
    burst_makespans: list[float] = field(default_factory=list)
    node_hours: float = 0.0
    idle_node_hours: float = 0.0
    busy_worker_hours: float = 0.0
    submitted: int = 0
    cancelled_pending: int = 0
    cancelled_running: int = 0
    cancelled_busy: int = 0         # running blocks cancelled with tasks running on them
    max_pending: int = 0
    max_live: int = 0
    ticks: int = 0
    #: seconds decide held back blocks the backlog asked for because some block was pending
    held_s: float = 0.0
    violations: list[str] = field(default_factory=list)   # decide's contract, checked per tick
    wall_seconds: float = 0.0

    workers_per_node: int = 32

    @property
    def utilisation(self) -> float:
        return self.busy_worker_hours / max(self.node_hours * self.workers_per_node, 1e-9)


class Sim:
    def __init__(self, strategy: Strategy, bursts: list[Burst], load: Load, seed: int):
        self.st = strategy
        self.load = load
        self.site = s = strategy.site
        self.lim = s.limits()
        self.bursts = bursts
        self.rng = random.Random(seed * 7919 + 1)           # the scheduler's waits
        self.now = 0.0
        self.heap: list = []
        self.seq = 0
        self.queue: deque[int] = deque()
        self.in_flight = 0
        self.dur: list[float] = []
        self.burst_of: list[int] = []
        for i, b in enumerate(bursts):
            self.dur.extend(b.durations)
            self.burst_of.extend([i] * len(b.durations))
        self.left = [len(b.durations) for b in bursts]
        self.burst_end = [math.nan] * len(bursts)
        self.sent = 0
        self.done = 0
        self.empty_since: float | None = 0.0
        self.blocks: dict[str, Block] = {}
        self.ready: deque[Block] = deque()                   # eligible, waiting for nodes
        self.free_nodes = s.nodes
        # accepting nodes with a free worker (a dict: ordered, so runs are reproducible)
        self.open: dict[Node, None] = {}
        self.n_blocks = 0
        self.r = Result(strategy.name, tasks=len(self.dur))
        self.r.workers_per_node = s.workers_per_node
        self.finished = bytearray(len(self.dur))
        self.node_seconds = 0.0
        self.idle_node_seconds = 0.0
        self.busy_worker_seconds = 0.0

    # -- events ----------------------------------------------------------------------------
    def push(self, t: float, kind: int, a=None, b=None) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (t, self.seq, kind, a, b))

    def run(self, hard_stop_hours: float = 48.0) -> Result:
        t_wall = time.perf_counter()
        end = max(b.t0 for b in self.bursts) if self.bursts else 0.0
        horizon = self.load.hours * 3600
        rate = self.load.send_rate
        step = max(int(rate), 1)        # one arrival event a second
        base = 0
        for b in self.bursts:
            n = len(b.durations)
            for k in range(0, n, step):
                self.push(b.t0 + k / rate, ARRIVE, base + k, base + min(k + step, n))
            base += n
        for _ in range(self.site.init_blocks):
            self.submit()
        self.push(0.0, TICK)
        hard_stop = hard_stop_hours * 3600
        heap = self.heap
        pop = heapq.heappop
        while heap:
            t, _, kind, a, b = pop(heap)
            self.now = t
            if kind == DONE:
                self.on_done(a, b)
            elif kind == TICK:
                if t >= horizon and self.done == len(self.dur) and t >= end:
                    break
                if t > hard_stop:
                    break
                self.on_tick()
                self.push(t + self.site.strategy_period, TICK)
            elif kind == ARRIVE:
                self.on_arrive(a, b)
            elif kind == ELIGIBLE:
                if a.state == "pending":
                    a.eligible = t
                    self.ready.append(a)
                    self.try_start()
            elif kind == BOOTED:
                self.on_booted(a)
            elif kind == IDLE_CHECK:
                self.on_idle_check(a, b)
            elif kind == DRAIN:
                self.on_drain(a)
            elif kind == KILL:
                if a.state in ("running", "draining"):
                    self.end_block(a)
        # stop the endpoint: every block still there ends now
        for blk in list(self.blocks.values()):
            if blk.state == "pending":
                self.remove_pending(blk)
            else:
                self.end_block(blk)
        r = self.r
        r.done = self.done
        queued = set(self.queue)
        r.unfinished = len(queued)
        r.lost = sum(1 for i, f in enumerate(self.finished) if not f and i not in queued)
        firsts = [b.t0 for b in self.bursts]
        r.burst_makespans = [e - b.t0 for e, b in zip(self.burst_end, self.bursts, strict=True)]
        r.makespan = (max(self.burst_end) - min(firsts)) if self.bursts and not r.lost else math.nan
        r.node_hours = self.node_seconds / 3600
        r.idle_node_hours = self.idle_node_seconds / 3600
        r.busy_worker_hours = self.busy_worker_seconds / 3600
        r.wall_seconds = time.perf_counter() - t_wall
        return r

    # -- tasks -----------------------------------------------------------------------------
    def on_arrive(self, lo: int, hi: int) -> None:
        self.queue.extend(range(lo, hi))
        self.sent += hi - lo
        self.empty_since = None
        self.dispatch()

    def dispatch(self) -> None:
        q = self.queue
        if not q or not self.open:
            return
        for node in list(self.open):
            while node.free and q:
                self.start_task(node, q.popleft())
            if not node.free:
                self.open.pop(node, None)
            if not q:
                break

    def start_task(self, node: Node, task: int) -> None:
        node.free -= 1
        node.running[task] = self.now
        if node.idle_since is not None:
            self.idle_node_seconds += self.now - node.idle_since
            node.idle_since = None
        self.in_flight += 1
        self.seq += 1
        heapq.heappush(self.heap, (self.now + self.dur[task], self.seq, DONE, task, node))

    def on_done(self, task: int, node: Node) -> None:
        start = node.running.pop(task, None)
        if start is None:
            return                      # that run was killed; the task went back to the queue
        self.in_flight -= 1
        self.busy_worker_seconds += self.now - start
        self.done += 1
        if self.finished[task]:
            self.r.twice += 1
        self.finished[task] = 1
        bi = self.burst_of[task]
        self.left[bi] -= 1
        if not self.left[bi]:
            self.burst_end[bi] = self.now
        if node.accepting and self.queue:
            self.start_task(node, self.queue.popleft())
            node.free += 1              # start_task took the worker this task gave back
            return
        node.free += 1
        if node.accepting:
            self.open[node] = None
        if not node.running:
            node.idle_since = self.now
            node.idle_epoch += 1
            blk = node.block
            if blk.state == "draining":
                node.exited = True
                self.maybe_end(blk)
            else:
                self.arm_idle(node)
        if not self.queue and not self.in_flight:
            self.empty_since = self.now

    def arm_idle(self, node: Node) -> None:
        if node.block.keep_alive or self.site.max_idle_time <= 0:
            return
        self.push(self.now + self.site.max_idle_time, IDLE_CHECK, node, node.idle_epoch)

    def on_idle_check(self, node: Node, epoch: int) -> None:
        if node.idle_epoch != epoch or node.running or not node.accepting:
            return
        node.accepting = False          # the pool exits; the node stays held until the block ends
        node.exited = True
        self.open.pop(node, None)
        self.maybe_end(node.block)

    def hand_back(self, node: Node) -> int:
        n = 0
        for task, start in node.running.items():
            self.busy_worker_seconds += self.now - start
            self.queue.appendleft(task)
            n += 1
        node.running.clear()
        self.in_flight -= n
        self.r.reruns += n
        return n

    # -- blocks ----------------------------------------------------------------------------
    def submit(self) -> None:
        self.n_blocks += 1
        keep = self.st.keep_alive_all or (
            sum(1 for b in self.blocks.values() if b.keep_alive) < self.site.min_blocks)
        blk = Block(f"b{self.n_blocks:05d}", self.now, keep)
        self.blocks[blk.id] = blk
        self.r.submitted += 1
        if self.rng.random() < self.site.long_wait_p:
            wait = self.rng.uniform(*self.site.long_wait)
        else:
            wait = self.site.wait_median * math.exp(self.rng.gauss(0.0, self.site.wait_sigma))
        self.push(self.now + wait, ELIGIBLE, blk)

    def try_start(self) -> None:
        npb = self.site.nodes_per_block
        while self.ready and self.free_nodes >= npb:
            blk = self.ready.popleft()
            if blk.state != "pending":
                continue
            self.free_nodes -= npb
            blk.state = "running"
            blk.started = self.now
            blk.nodes = [Node(blk, self.site.workers_per_node, self.now) for _ in range(npb)]
            wt, margin = self.site.walltime, self.site.walltime_margin
            self.push(self.now + self.site.boot_time, BOOTED, blk)
            self.push(self.now + wt - margin, DRAIN, blk)
            self.push(self.now + wt - min(5.0, margin / 2), KILL, blk)

    def on_booted(self, blk: Block) -> None:
        if blk.state != "running":
            return
        blk.booted = True
        for node in blk.nodes:
            node.accepting = True
            self.open[node] = None
            self.arm_idle(node)
        self.dispatch()

    def on_drain(self, blk: Block) -> None:
        if blk.state != "running":
            return
        blk.state = "draining"
        for node in blk.nodes:
            node.accepting = False
            self.open.pop(node, None)
            if not node.running:
                node.exited = True
        self.maybe_end(blk)

    def maybe_end(self, blk: Block) -> None:
        if blk.state in ("running", "draining") and all(n.exited for n in blk.nodes):
            self.end_block(blk)

    def end_block(self, blk: Block) -> None:
        back = 0
        for node in blk.nodes:
            if node.running:
                back += self.hand_back(node)
            if node.idle_since is not None:
                self.idle_node_seconds += self.now - node.idle_since
                node.idle_since = None
            node.accepting = False
            self.open.pop(node, None)
        self.node_seconds += (self.now - blk.started) * len(blk.nodes)
        self.free_nodes += len(blk.nodes)
        blk.state = "ended"
        del self.blocks[blk.id]
        if back:
            self.empty_since = None
            self.dispatch()
        self.try_start()

    def remove_pending(self, blk: Block) -> None:
        blk.state = "ended"
        del self.blocks[blk.id]

    # -- the daemon ------------------------------------------------------------------------
    def view(self, blk: Block) -> BlockView:
        idle_for = None
        if blk.state == "running" and blk.booted and all(not n.running for n in blk.nodes):
            idle_for = self.now - max(n.idle_since for n in blk.nodes)
        return BlockView(blk.id, "draining" if blk.state == "draining" else blk.state,
                         idle_for, blk.keep_alive)

    def observe(self) -> Observed:
        load = len(self.queue) + self.in_flight
        idle = (self.now - self.empty_since) if (not load and self.empty_since is not None) else 0.0
        return Observed(visible=len(self.queue), in_flight=self.in_flight,
                        blocks=tuple(self.view(b) for b in self.blocks.values()),
                        queue_idle_for=idle)

    def on_tick(self) -> None:
        self.r.ticks += 1
        o = self.observe()
        kind = self.st.kind
        if kind == "decide":
            d = decide(o, self.lim)
            self.check(o, d)
        elif kind == "static":
            live = sum(1 for b in o.blocks if b.state in ("pending", "running"))
            d = Decision(submit=max(self.site.max_blocks - live, 0))
        elif kind == "naive":
            running = sum(1 for b in o.blocks if b.state == "running")
            want = min(o.visible + o.in_flight, self.site.max_blocks)
            d = Decision(submit=max(want - running, 0))
        else:
            raise ValueError(kind)
        for bid in d.cancel:
            blk = self.blocks[bid]
            if blk.state == "pending":
                self.r.cancelled_pending += 1
                self.remove_pending(blk)
            else:
                self.r.cancelled_running += 1
                if any(n.running for n in blk.nodes):
                    self.r.cancelled_busy += 1
                self.end_block(blk)
        for _ in range(d.submit):
            self.submit()
        pending = sum(1 for b in self.blocks.values() if b.state == "pending")
        live = sum(1 for b in self.blocks.values() if b.state in ("pending", "running"))
        self.r.max_pending = max(self.r.max_pending, pending)
        self.r.max_live = max(self.r.max_live, live)

    def check(self, o: Observed, d: Decision) -> None:
        """decide's contract, on every real observation (recorded, not raised)."""
        lim = self.lim
        live = [b for b in o.blocks if b.state in ("pending", "running")]
        ids = {b.id: b for b in live}
        pending = any(b.state == "pending" for b in live)
        load = o.visible + o.in_flight
        bad = []
        if d.submit < 0:
            bad.append("negative submit")
        if len(live) <= lim.max_blocks and len(live) + d.submit > lim.max_blocks:
            bad.append("over max_blocks")
        want = lim.min_blocks
        if load:
            want = max(want, math.ceil(lim.parallelism * load / max(lim.workers_per_block, 1)))
        want = min(want, lim.max_blocks)
        if d.submit > max(want - len(live), 0):
            bad.append("submit beyond what the backlog asks for (pending blocks are capacity)")
        if pending and load and want > len(live) + d.submit:
            self.r.held_s += self.site.strategy_period
        if len(set(d.cancel)) != len(d.cancel) or any(c not in ids for c in d.cancel):
            bad.append("cancel of an unknown, draining or repeated block")
        if d.cancel and d.submit:
            bad.append("cancel while submitting")
        if any(ids[c].state == "running" and ids[c].idle_for is None for c in d.cancel if c in ids):
            bad.append("cancel of a busy block")
        if len(live) - len(d.cancel) < min(lim.min_blocks, len(live)):
            bad.append("below min_blocks")
        for b in bad:
            self.r.violations.append(f"t={self.now:.0f}: {b}")


def simulate(strategy: Strategy, bursts: list[Burst], load: Load, seed: int) -> Result:
    return Sim(strategy, bursts, load, seed).run()


# -- the study -------------------------------------------------------------------------------
def strategies(site: Site) -> list[Strategy]:
    out = []
    for par in (1.0, 0.5):
        for idle in (60.0, 600.0):
            out.append(Strategy(f"decide p={par:g} idle={idle:g}s",
                                dataclasses.replace(site, parallelism=par, max_idle_time=idle)))
    out.append(Strategy("static max_blocks", site, kind="static"))
    out.append(Strategy("naive 1 block/task idle=120s",
                        dataclasses.replace(site, max_idle_time=120.0), kind="naive"))
    return out


def settings(quick: bool, hours: float | None) -> tuple[Site, Load]:
    site = Site()
    if quick:
        load = Load(hours=hours or 1.5, burst_tasks=(2_000, 20_000), gap_minutes=(5.0, 20.0),
                    quiet_end_minutes=30.0)
    else:
        load = Load(hours=hours or 4.0)
    return site, load


def run_all(seed: int = 1, hours: float | None = None, quick: bool = False,
            only: Callable[[Strategy], bool] | None = None) -> tuple[list[Burst], list[Result]]:
    site, load = settings(quick, hours)
    bursts = make_bursts(load, seed)
    results = [simulate(s, bursts, load, seed) for s in strategies(site) if only is None or only(s)]
    return bursts, results


def fmt_min(s: float) -> str:
    return "-" if math.isnan(s) else f"{s / 60:.1f}"


def table(results: list[Result]) -> str:
    cols = [("strategy", lambda r: r.name, "<"),
            ("makespan min", lambda r: fmt_min(r.makespan), ">"),
            ("burst mean", lambda r: fmt_min(sum(r.burst_makespans) / len(r.burst_makespans)), ">"),
            ("burst max", lambda r: fmt_min(max(r.burst_makespans)), ">"),
            ("node-h", lambda r: f"{r.node_hours:.0f}", ">"),
            ("idle node-h", lambda r: f"{r.idle_node_hours:.0f}", ">"),
            ("idle %", lambda r: f"{100 * r.idle_node_hours / max(r.node_hours, 1e-9):.0f}", ">"),
            ("util %", lambda r: f"{100 * r.utilisation:.0f}", ">"),
            ("lost", lambda r: str(r.lost), ">"),
            ("reruns", lambda r: str(r.reruns), ">"),
            ("submitted", lambda r: str(r.submitted), ">"),
            ("cancel pend/run", lambda r: f"{r.cancelled_pending}/{r.cancelled_running}", ">"),
            ("max pending", lambda r: str(r.max_pending), ">"),
            ("max live", lambda r: str(r.max_live), ">"),
            ("held min", lambda r: f"{r.held_s / 60:.0f}" if r.name.startswith("decide") else "-", ">")]
    rows = [[c[0] for c in cols]] + [[c[1](r) for c in cols] for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(cols))]

    def line(row):
        return "  ".join(v.ljust(w) if c[2] == "<" else v.rjust(w)
                         for v, w, c in zip(row, widths, cols, strict=True))
    out = [line(rows[0]), "  ".join("-" * w for w in widths)]
    out += [line(row) for row in rows[1:]]
    return "\n".join(out)


def burst_table(bursts: list[Burst], results: list[Result]) -> str:
    head = ["burst", "at min", "tasks"] + [r.name for r in results]
    rows = [head]
    for i, b in enumerate(bursts):
        rows.append([str(i + 1), f"{b.t0 / 60:.0f}", str(len(b.durations))]
                    + [fmt_min(r.burst_makespans[i]) for r in results])
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    out = ["  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)) for row in rows]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--hours", type=float, default=None, help="length of the load (default 4, quick 1.5)")
    p.add_argument("--quick", action="store_true", help="small bursts (2k-20k tasks), 1.5 h")
    a = p.parse_args(argv)
    t = time.perf_counter()
    site, load = settings(a.quick, a.hours)
    bursts, results = run_all(a.seed, a.hours, a.quick)
    n = sum(len(b.durations) for b in bursts)
    print(f"site: {site.nodes} nodes, blocks of {site.nodes_per_block} nodes x {site.workers_per_node} "
          f"workers, max_blocks {site.max_blocks}, min_blocks {site.min_blocks}, walltime "
          f"{site.walltime / 3600:g} h (drain {site.walltime_margin:g} s before), boot "
          f"{site.boot_time:g} s, strategy every {site.strategy_period:g} s")
    print(f"scheduler wait: lognormal median {site.wait_median:g} s (sigma {site.wait_sigma:g}), "
          f"{100 * site.long_wait_p:g}% uniform {site.long_wait[0] / 60:g}-{site.long_wait[1] / 60:g} min")
    print(f"load: seed {a.seed}, {len(bursts)} bursts, {n} tasks of {load.task_seconds[0]:g}-"
          f"{load.task_seconds[1]:g} s over {load.hours:g} h "
          f"({sum(sum(b.durations) for b in bursts) / 3600 / site.workers_per_node:.0f} node-h of work)")
    print()
    print(table(results))
    print()
    print("makespan per burst (min):")
    print(burst_table(bursts, results))
    bad = [(r.name, v) for r in results for v in r.violations]
    print()
    if bad:
        print(f"decide's contract broken {len(bad)} time(s); first: {bad[:5]}")
    else:
        print("decide's contract held on every tick (never more blocks than the backlog asks for "
              "counting pending ones, <= max_blocks, >= min_blocks, no cancel of a busy block "
              "or while submitting)")
    print(f"({time.perf_counter() - t:.1f} s)")
    return 1 if any(r.lost or r.unfinished or r.twice for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
