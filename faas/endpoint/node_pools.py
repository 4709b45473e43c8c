"""The pools of one node, when ``engine.pools_per_node`` is more than one: each its own process
(its own receiver, main loop and outbox, so the node's task handling is not one core's work),
started here with its index; a stop signal reaches every one; the node ends when all have.

A pool that fails (it crashed, or its watchdog ended a stall) stops its siblings, which hand
their held tasks back, and the node ends with that pool's exit code: the daemon replaces the
block, as it replaces a block whose one pool failed. A pool that ends on its own with code 0
(idle, near the walltime, its block dropped by the daemon) leaves the others running.

This module knows nothing of what a pool does; ``faas.endpoint.pool`` runs it for its siblings.
"""
from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from pathlib import Path

log = logging.getLogger("faas.node_pools")

#: seconds between looks at the pools (a failed one's siblings are told to stop within this)
LOOK_EVERY = 0.25
#: seconds, beyond the pools' own stop grace, before pools told to stop are killed (each pool
#: also exits on its own 30 s after its grace: this is the last resort behind that one)
KILL_AFTER = 60.0


def _exit_code(returncode: int) -> int:
    """A shell's exit status: 128 + N for a process ended by signal N."""
    return 128 - returncode if returncode < 0 else returncode


def run(argv: list[str], pools: int, workers: int, log_path: Path, stop_grace: float) -> int:
    """Run ``python -m faas.endpoint.pool ARGV --pool-share K POOLS WORKERS`` for K in
    0..pools-1 (pool K's share of the node's ``workers``) until every one has ended; the exit
    code is the first failed pool's (0 if none failed)."""
    logging.basicConfig(filename=log_path, level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(message)s")
    running: dict[int, subprocess.Popen] = {}
    asked = False                   # a stop signal came: each pool stops as it would alone
    stop_deadline: float | None = None
    failed = 0

    def signal_all(signum: int) -> None:
        for proc in running.values():
            proc.send_signal(signum)   # Popen's: not to a pool already ended (its pid may be reused)

    def tell_all_to_stop() -> None:
        nonlocal stop_deadline
        if stop_deadline is None:
            stop_deadline = time.monotonic() + stop_grace + KILL_AFTER
        signal_all(signal.SIGTERM)

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal asked
        asked = True
        log.info("signal %d: stopping the node's %d pools", signum, pools)
        tell_all_to_stop()

    def pass_on(signum: int, _frame: object) -> None:
        """``kill -USR1`` of the node: each pool writes every thread's stack to its pool.log (the
        signal's default action would end this process, and with it the block)."""
        log.info("signal %d: passed on to the pools", signum)
        signal_all(signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGUSR1, pass_on)
    for index in range(pools):
        if stop_deadline is not None:   # stopped while starting: the rest never start
            break
        proc = subprocess.Popen([sys.executable, "-m", "faas.endpoint.pool", *argv,
                                 "--pool-share", str(index), str(pools), str(workers)])
        running[index] = proc
        if stop_deadline is not None:   # the signal came while it started: it missed the first call
            proc.send_signal(signal.SIGTERM)
    log.info("node: %d pools started (pids %s)", len(running), [p.pid for p in running.values()])

    while running:
        time.sleep(LOOK_EVERY)
        for index, proc in list(running.items()):
            code = proc.poll()
            if code is None:
                continue
            del running[index]
            stopped_by_us = stop_deadline is not None and code == -signal.SIGTERM
            if code == 0 or stopped_by_us:
                log.info("pool %d ended (exit %d)", index, _exit_code(code))
                continue
            log.error("pool %d failed (exit %d)%s", index, _exit_code(code),
                      "" if stop_deadline is not None else ": stopping the node's other pools")
            failed = failed or _exit_code(code)
            tell_all_to_stop()
        if stop_deadline is not None and time.monotonic() > stop_deadline and running:
            log.error("pools %s did not stop in time: killing them", sorted(running))
            for proc in running.values():
                proc.kill()
            failed = failed or _exit_code(-signal.SIGKILL)
            stop_deadline = float("inf")   # killed: wait for them without killing again
    log.info("node: every pool ended%s%s", " (asked to stop)" if asked else "",
             f"; exit {failed}" if failed else "")
    return failed
