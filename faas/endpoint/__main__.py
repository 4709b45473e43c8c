"""The endpoint process: ``python -m faas.endpoint.daemon NAME [--foreground]``, what
``faas endpoint start`` runs (``python -m faas.endpoint NAME`` is the same). The process keeps
that name because ``ps``, the router's search for its user endpoints (lifecycle.daemon_pids) and
the chaos tests look for it; the code is here.

This is the one module above both kinds of endpoint process. It picks which runs: the
multi-user router (root, with the files of ``configure --multi-user``), which imports the
user-endpoint side it starts; or the single-user daemon, which imports neither the router nor
flows. What a daemon does for a layer above it comes from here, as plain callables:

* a user endpoint of a multi-user endpoint stops once its router has been gone a while
  (``RouterWatch``, set by the router in the user endpoint's environment);
* on the embedded default, the daemon keeps the flows runner up (``keep_runner_up``): an
  unfinished run or an active timer in the store, and no runner holding it, starts one.
"""
from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

from ..config import faas_home, resolve
from . import config as ep_config
from .daemon import Daemon
from .liveness import dump_on_signal
from .multiuser.lifecycle import RouterWatch
from .server import serve

log = logging.getLogger("faas.daemon")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0].startswith("-"):
        print("usage: python -m faas.endpoint.daemon NAME [--foreground] [--debug] (what `faas endpoint start "
              "NAME` runs)",
              file=sys.stderr)
        return 2
    name = argv[0]
    home = faas_home()
    d = ep_config.endpoint_dir(name, home)
    d.mkdir(parents=True, exist_ok=True)
    handlers: list[logging.Handler] = [logging.FileHandler(d / "endpoint.log")]
    if "--foreground" in argv:
        handlers.append(logging.StreamHandler())
    logging.basicConfig(level=logging.INFO, handlers=handlers,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if "--debug" in argv:   # `faas endpoint start --debug`: this run, as `debug: true` in config.yaml
        logging.getLogger("faas").setLevel(logging.DEBUG)
    dump_on_signal(d / "endpoint.log")   # kill -USR1: every thread's stack in endpoint.log
    if ep_config.is_multi_user(d) and os.geteuid() == 0:
        from .multiuser.router import Router  # root only: what it loads stays out of user endpoints
        return serve(name, lambda: Router(name, home))
    log.info("endpoint %s runs single-user (as uid %d)%s", name, os.geteuid(),
             ": it has multi-user files, but only root can run a multi-user endpoint"
             if ep_config.is_multi_user(d) else "")
    return serve(name, lambda: make_daemon(name, home))


def make_daemon(name: str, home: Path) -> Daemon:
    """The single-user daemon, with what the layers above ask of it."""
    daemon = Daemon(name, home)
    watch = RouterWatch.from_env(daemon.dir)
    if watch is not None:
        daemon.should_stop = watch.gone
    try:
        duty = flows_runner_duty(daemon)
    except Exception as e:  # noqa: BLE001 - flows' trouble never keeps the endpoint from serving
        log.warning("not keeping the flows runner up: %s: %s", type(e).__name__, e)
        duty = None
    if duty is not None:
        daemon.duties.append(duty)
    return daemon


def flows_runner_duty(daemon: Daemon) -> Callable[[], None] | None:
    """On the embedded default (the daemon serves the store under its FAAS_HOME), a duty that
    keeps the flows runner up; elsewhere None (a site runs ``faas flows serve`` under systemd)."""
    settings = resolve(None, home=str(daemon.home), store=daemon.cfg.store)
    if not (settings.is_embedded and settings.autostart):
        return None
    from ..flows.control import keep_runner_up  # loaded only where it is used
    return keep_runner_up(settings)


if __name__ == "__main__":
    sys.exit(main())
