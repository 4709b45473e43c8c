"""The runner on demand for the embedded store, as the client starts the ``local`` endpoint:
a run or timer made in the store under ``$FAAS_HOME`` starts ``faas flows serve`` detached if
no runner holds the store. It exits after ``idle`` seconds with no run and no active timer (the
next start brings it back), or when its store is deleted. Who brings it back after a kill -9 or
a reboot: any flows command that looks at an unfinished run, and a running endpoint daemon on
the same store (:func:`keep_runner_up`), so timers fire with no flows command at all."""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ..config import Settings
from ..locks import lock_held
from ..store import Store, open_store
from . import store_layout

log = logging.getLogger("faas.flows.control")

IDLE_EXIT = 600.0   # seconds an autostarted runner waits with nothing to do ($FAAS_FLOWS_IDLE_EXIT)
RUNNER_CHECK_EVERY = 5.0   # seconds between a client's (or daemon's) checks that the store's work has a runner


def lock_path(store_root: Path) -> Path:
    return store_root / "flows" / "runner.lock"


def runner_holds(store_root: Path) -> bool:
    """Does a live process hold the store's runner lock (``faas flows serve``)? Asked without
    taking it, so a probe never turns a starting runner into a standby."""
    return lock_held(lock_path(store_root))


def ensure_runner(settings: Settings, wait: float = 15.0) -> bool:
    """Start a detached runner for the embedded store if none holds it (and autostart is on).
    Returns True when one was started."""
    if not (settings.is_embedded and settings.autostart):
        return False
    root = Path(settings.home) / "store"
    if runner_holds(root):
        return False
    log_dir = Path(settings.home) / "flows"
    log_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, FAAS_HOME=str(settings.home))
    with open(log_dir / "runner.log", "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "faas.cli.main", "flows", "serve", "--store", settings.store_url,
             "--idle-exit", os.environ.get("FAAS_FLOWS_IDLE_EXIT", str(IDLE_EXIT)), "--verbose"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True, env=env)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if runner_holds(root):
            return True
        if proc.poll() is not None:
            if runner_holds(root):   # another starter's runner won the lock
                return False
            tail = (log_dir / "runner.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the flows runner failed to start (exit {proc.returncode}); "
                               f"{log_dir / 'runner.log'} ends with:\n{tail}")
        time.sleep(0.05)
    return True   # still starting (busy machine): commands wait in the store for it


def runner_needed(store: Store) -> bool:
    """Does the store hold work for a runner: an unfinished run, or an active timer?"""
    for _ in store.list(store_layout.ACTIVE):
        return True
    for key in store.list(store_layout.TIMERS):
        if key.endswith("/timer.json"):
            timer = store_layout.get_json(store, key, None)
            if timer and timer.get("status") == "active" and timer.get("next_run_epoch") is not None:
                return True
    return False


def keep_runner_up(settings: Settings, every: float = RUNNER_CHECK_EVERY) -> Callable[[], None]:
    """A duty for a long-lived process on the embedded store (the endpoint daemon calls it each
    step): at most every ``every`` seconds, when no runner holds the store and the store holds
    work for one, :func:`ensure_runner` starts one (without waiting for it)."""
    root = Path(settings.home) / "store"
    last = -every
    store: Store | None = None

    def keep_flows_runner_up() -> None:
        nonlocal last, store
        now = time.monotonic()
        if now - last < every:
            return
        last = now
        if runner_holds(root) or not root.exists():
            return
        if store is None:
            store = open_store(settings.store_url)
        if runner_needed(store) and ensure_runner(settings, wait=0):
            log.info("started a flows runner for %s: it had an unfinished run or an active timer "
                     "and no runner", settings.store_url)
    return keep_flows_runner_up


def idle_stopper(runner, idle: float, store_root: Path | None) -> Callable[[], bool]:
    """``should_stop`` for :meth:`Runner.serve`: idle for ``idle`` seconds, or the store gone."""
    last_busy = [time.monotonic()]

    def should_stop() -> bool:
        if store_root is not None and not store_root.exists():
            return True
        now = time.monotonic()
        if not runner.idle():
            last_busy[0] = now
            return False
        return now - last_busy[0] > idle
    return should_stop
