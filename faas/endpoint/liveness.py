"""Nothing stalls silently: each loop of a long-lived process (a pool's receiver, outbox, monitor
and main loop; a daemon's or router's step) beats; a watchdog thread notices a loop that died or
stopped beating for longer than its bound, logs it with every thread's stack, and hands the
process's own way out (stop gracefully, then exit) so its supervisor replaces it.

``SIGUSR1`` dumps every thread's stack to the process's log at any time (``faulthandler``), for
a process that looks up and does nothing.
"""
from __future__ import annotations

import faulthandler
import logging
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable

from ..proctree import name_os_thread

log = logging.getLogger("faas.liveness")


def thread_stacks() -> str:
    """Every thread's stack, as text (for the log)."""
    names = {t.ident: t.name for t in threading.enumerate()}
    out = []
    for ident, frame in sys._current_frames().items():
        out.append(f'--- thread "{names.get(ident, ident)}":\n' + "".join(traceback.format_stack(frame)))
    return "\n".join(out)


def dump_on_signal(path: str | os.PathLike) -> None:
    """``kill -USR1 PID`` writes every thread's stack to ``path`` (appended)."""
    try:
        f = open(path, "a")   # kept open for the life of the process: faulthandler writes to its fd
        faulthandler.register(signal.SIGUSR1, file=f, all_threads=True)
    except (OSError, RuntimeError, ValueError) as e:   # not the main thread, or no such signal
        log.debug("no stack dumps on SIGUSR1: %s", e)


class Loops:
    """The loops of one process, each with the longest it may go without a beat."""

    def __init__(self, on_stall: Callable[[str], None], check_every: float = 1.0):
        self._limits: dict[str, float] = {}
        self._last: dict[str, float] = {}
        self._dead: dict[str, str] = {}
        self._on_stall = on_stall
        self._every = check_every
        self._reported: set[str] = set()   # loops already reported (once each)
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def add(self, name: str, limit: float) -> None:
        with self._lock:
            self._limits[name] = limit
            self._last[name] = time.monotonic()

    def beat(self, name: str) -> None:
        self._last[name] = time.monotonic()   # one store of a float: no lock on the hot path

    def done(self, name: str) -> None:
        """``name`` ended as it should (stopping): no longer watched."""
        with self._lock:
            self._limits.pop(name, None)

    def thread(self, name: str, target: Callable[[], None], limit: float) -> threading.Thread:
        """A daemon thread running ``target``, watched: an exception that ends it is logged
        with its traceback and reported as a stall at once."""
        self.add(name, limit)

        def run() -> None:
            name_os_thread(f"faas-{name}")
            try:
                target()
            except BaseException:  # noqa: BLE001 - logged and reported; the watchdog acts
                self._dead[name] = traceback.format_exc()
                log.error("thread %s died:\n%s", name, self._dead[name])
            else:
                self.done(name)
        return threading.Thread(target=run, name=name, daemon=True)

    def ages(self) -> dict[str, float]:
        """Seconds since each watched loop last beat (for status files)."""
        now = time.monotonic()
        with self._lock:
            return {n: round(now - self._last.get(n, now), 1) for n in self._limits}

    def problem(self) -> str | None:
        """Why the process is not healthy, or None."""
        found = self._problems()
        return found[0][1] if found else None

    def _problems(self) -> list[tuple[str, str]]:
        out = [(name, f"thread {name} died: {tb.strip().splitlines()[-1]}") for name, tb in self._dead.items()]
        now = time.monotonic()
        with self._lock:
            for name, limit in self._limits.items():
                age = now - self._last.get(name, now)
                if age > limit and name not in self._dead:
                    out.append((name, f"{name} has made no progress for {age:.0f} s (limit {limit:.0f} s)"))
        return out

    def start_watchdog(self) -> threading.Thread:
        t = threading.Thread(target=self._watch, name="watchdog", daemon=True)
        t.start()
        return t

    def stop(self) -> None:
        self._stop.set()

    def _watch(self) -> None:
        name_os_thread("faas-watchdog")
        while not self._stop.wait(self._every):
            new = [(name, why) for name, why in self._problems() if name not in self._reported]
            if not new:
                continue
            name, why = new[0]
            self._reported.add(name)
            log.error("NOT LIVE: %s; every thread's stack:\n%s", why, thread_stacks())
            try:
                self._on_stall(why)
            except Exception:  # noqa: BLE001 - the watchdog must go on watching
                log.exception("handling the stall failed")
