"""What the endpoint daemon and the multi-user router share: one process per endpoint that holds
the endpoint's lock (faas.locks), serves until SIGTERM/SIGINT, says when it is ready, and is
watched for stalls (faas.endpoint.liveness). Both are built on :class:`Server` and run by
:func:`serve`; neither imports the other.
"""
from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ..config import faas_home
from ..locks import AlreadyRunning, ready_path, take_lock
from . import config as ep_config
from .liveness import Loops

log = logging.getLogger("faas.daemon")

#: the exit code of a daemon whose endpoint_setup or endpoint_teardown failed (os.EX_CONFIG, Globus's)
EXIT_HOOK_FAILED = 78


class HookFailed(RuntimeError):
    """endpoint_setup exited non-zero: the endpoint does not start (exit 78, as Globus's)."""


class Server:
    """An endpoint's one serving process: its name, folder and config.yaml, the stop event its
    signals set, the lock it holds while it runs, and the ready file."""

    loops: Loops | None = None   # the watchdog of ``run``'s loop (its "step"), set by :func:`serve`

    def __init__(self, name: str, home: Path | None = None):
        self.name = ep_config.check_name(name)
        self.home = faas_home(home)
        self.dir = ep_config.endpoint_dir(name, self.home)
        self.cfg: ep_config.EndpointConfig = ep_config.load(self.dir / "config.yaml")
        if self.cfg.debug:   # faas's own loggers (not boto's request dumps), daemon's or router's
            logging.getLogger("faas").setLevel(logging.DEBUG)
        self.stop_event = threading.Event()

    def _lock(self) -> None:
        self.lock_file = take_lock(self.dir, self.name)

    def _ready(self) -> None:
        """Registered and serving: starters waiting on ``daemon.ready`` may go on."""
        ready_path(self.dir).write_text(str(os.getpid()))

    def _not_ready(self) -> None:
        ready_path(self.dir).unlink(missing_ok=True)

    def beat(self) -> None:
        """The watchdog's beat; each loop of ``run`` calls it."""
        if self.loops is not None:
            self.loops.beat("step")

    def unwatch(self) -> None:
        """The loop ended; the watchdog stops watching it."""
        if self.loops is not None:
            self.loops.done("step")

    def run(self) -> int:
        raise NotImplementedError


def _stalled(server: Server, why: str, grace: float) -> None:
    """A daemon's or router's loop stopped (the watchdog logged every stack): stop, and exit hard
    if even that does not end; its supervisor (systemd, or the next client on the embedded
    default) starts it again, and it adopts its blocks or user endpoints."""
    server.stop_event.set()

    def last_resort() -> None:
        time.sleep(grace)
        log.error("the endpoint did not stop after %s; exiting now", why)
        logging.shutdown()
        os._exit(70)
    threading.Thread(target=last_resort, name="last-resort", daemon=True).start()


def serve(name: str, make: Callable[[], Server]) -> int:
    """Run a daemon or a router until SIGTERM/SIGINT; exit codes: 2 bad config, 3 already
    running, 78 endpoint_setup or endpoint_teardown failed, 1 failed."""
    try:
        server = make()
    except Exception as e:  # noqa: BLE001 - config errors: say them and exit non-zero
        log.error("%s", e)
        print(f"faas endpoint {name}: {e}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: server.stop_event.set())
    signal.signal(signal.SIGINT, lambda *_: server.stop_event.set())
    cfg = server.cfg
    loops = Loops(lambda why: _stalled(server, why, cfg.stop_grace + 60))
    loops.add("step", max(cfg.stall_timeout, cfg.stop_grace + 90))   # a step may stop a user endpoint
    server.loops = loops
    loops.start_watchdog()
    try:
        return server.run()
    except AlreadyRunning as e:
        print(f"faas: {e}", file=sys.stderr)
        return 3
    except HookFailed as e:
        log.error("%s", e)
        print(f"faas endpoint {name}: {e}", file=sys.stderr)
        return EXIT_HOOK_FAILED
    except Exception as e:  # noqa: BLE001 - the process's last word: logged with its traceback, exit status 1
        log.exception("endpoint %s failed: %s", name, e)
        print(f"faas endpoint {name}: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
