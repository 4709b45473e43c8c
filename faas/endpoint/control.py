"""Start, stop and inspect endpoint daemons from the login node (used by the CLI and the client)."""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ..config import faas_home
from ..exceptions import ConfigError, EndpointNotFound
from ..locks import daemon_pid, is_running, lock_holders, lock_path, ready_path, setup_path
from . import config as ep_config
from .provider_config import LocalProviderConfig

log = logging.getLogger("faas.control")


def default_local_config(home: Path) -> ep_config.UserEndpointConfig:
    """The embedded default: store and queue under FAAS_HOME, one always-warm local block."""
    return ep_config.UserEndpointConfig(
        display_name="embedded local endpoint", store=(home / "store").as_uri(), queue="local",
        signing_keys_file="signing.key",
        engine=ep_config.EngineConfig(provider=LocalProviderConfig(init_blocks=1, min_blocks=1, max_blocks=1)))


def ensure_key_file(endpoint_dir: Path) -> None:
    """A private signing key beside the config, made once (mode 600)."""
    from .. import signing
    path = endpoint_dir / "signing.key"
    if not path.exists():
        signing.write_key_file(path, signing.new_key("k1"))


def start_detached(name: str, home: Path | None = None, wait: float = 15.0, debug: bool = False) -> int:
    """Start the daemon in its own session; return its pid once it holds the endpoint's lock
    and serves. While its endpoint_setup runs (it may take minutes), this waits for it.
    ``debug``: its log at DEBUG for this run, as ``debug: true`` in config.yaml."""
    home = faas_home(home)
    d = ep_config.endpoint_dir(name, home)
    if not (d / "config.yaml").exists():
        raise EndpointNotFound(f"endpoint {name!r} is not configured: run `faas endpoint configure {name}`")
    ep_config.load(d / "config.yaml")    # fail here, loudly, on a bad config
    if is_running(d):
        _wait_ready(d, time.monotonic() + wait)
        return daemon_pid(d) or 0
    ready_path(d).unlink(missing_ok=True)   # left by a daemon that was killed
    env = dict(os.environ, FAAS_HOME=str(home))
    with open(d / "daemon.out", "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "faas.endpoint.daemon", name, *(["--debug"] if debug else [])],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                start_new_session=True, env=env, cwd=d)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if _ready_pid(d) and is_running(d):
            return _ready_pid(d) or 0
        code = proc.poll()
        if code is None and setup_path(d).exists():   # endpoint_setup runs: no deadline for it
            deadline = max(deadline, time.monotonic() + wait)
        if code is not None:
            if is_running(d):   # another starter won the race: theirs is the daemon
                _wait_ready(d, deadline)
                return daemon_pid(d) or 0
            tail = (d / "daemon.out").read_text(errors="replace")[-2000:]
            raise ConfigError(f"endpoint {name!r} failed to start (exit {code}):\n{tail}")
        time.sleep(0.02)
    raise TimeoutError(f"endpoint {name!r} did not start within {wait} s; see {d / 'endpoint.log'}")


def _ready_pid(d: Path) -> int | None:
    """The pid in ``daemon.ready`` if that process is alive (the file outlives a kill -9)."""
    try:
        pid = int(ready_path(d).read_text())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def _wait_ready(d: Path, deadline: float) -> None:
    while not _ready_pid(d) and time.monotonic() < deadline:
        time.sleep(0.05)


def stop(name: str, home: Path | None = None, wait: float = 60.0) -> bool:
    """SIGTERM the daemon and wait until it let go of its lock. False if it was not running.

    A multi-user endpoint (root's router) is stopped whole: after ``wait`` seconds the router,
    every user endpoint of its site and their blocks are killed (SIGKILL), whatever state the
    router is in; user endpoints of the site still running after the router stopped (left by a
    router that was killed) are stopped too. A single-user daemon that does not stop in time
    raises TimeoutError (its blocks are adopted by the next daemon)."""
    home = faas_home(home)
    d = ep_config.endpoint_dir(name, home)
    multi = _is_multi_user(d)
    if not is_running(d):
        if multi:
            _stop_leftovers(name, home, d)
        return False
    pid = daemon_pid(d)
    if pid:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pid = None
    deadline = time.monotonic() + wait
    while is_running(d):
        if time.monotonic() > deadline:
            if not multi:
                raise TimeoutError(f"endpoint {name!r} (pid {pid}) did not stop within {wait} s")
            _kill_multi_user(name, home, d, pid, wait)
            break
        time.sleep(0.05)
    if multi:
        _stop_leftovers(name, home, d)
    return True


def _is_multi_user(d: Path) -> bool:
    """Root, with the files of ``configure --multi-user``: what makes the daemon a router."""
    return os.geteuid() == 0 and ep_config.is_multi_user(d)


def _site_user_endpoints(name: str, home: Path, d: Path) -> list[int]:
    """Pids of the user endpoint daemons of this root endpoint that run: those in the router's
    state (each checked: the recorded account's, running that user endpoint) and any other
    daemon whose name carries this endpoint's site."""
    import json

    from .multiuser import files as mu_files
    from .multiuser import lifecycle, user_endpoints
    pids = set()
    try:
        state = json.loads((d / mu_files.STATE).read_text())
        for rec in state.get("endpoints", {}).values():
            try:
                ue = user_endpoints.UserEndpoint(**rec)
            except TypeError:
                continue
            if user_endpoints.running(ue) and ue.pid is not None:   # running() found its process
                pids.add(ue.pid)
    except (OSError, ValueError, AttributeError):
        pass
    try:
        cfg = ep_config.load(d / "config.yaml")
        pids.update(lifecycle.site_daemons(lifecycle.site_tag(name, cfg.store, cfg.queue_url(name, home))))
    except ConfigError:
        pass
    return sorted(pids)


def _kill_multi_user(name: str, home: Path, d: Path, pid: int | None, wait: float) -> None:
    """The router did not stop within ``wait`` s (stuck, frozen, or its user endpoints are):
    SIGKILL it, its user endpoints and everything below them."""
    from .multiuser import lifecycle
    users = _site_user_endpoints(name, home, d)
    # the router: the process that holds the endpoint's lock (and the pid file's, if it runs it)
    routers = [p for p in (lock_holders(lock_path(d)) or []) if p != os.getpid()]
    if pid and pid not in routers and lifecycle.is_daemon(pid, name):
        routers.append(pid)
    log.warning("endpoint %r (pid %s) did not stop within %g s: killing it (pids %s) and its %d user "
                "endpoint(s) (pids %s), with their blocks", name, pid, wait, routers, len(users), users)
    killed = lifecycle.kill_trees(routers + users)
    left = lifecycle.wait_gone(killed, 10.0)
    deadline = time.monotonic() + 10.0
    while is_running(d) and time.monotonic() < deadline:
        time.sleep(0.05)
    if is_running(d) or left:
        raise TimeoutError(f"endpoint {name!r}: processes {left or [pid]} still run after SIGKILL")
    ready_path(d).unlink(missing_ok=True)


def _stop_leftovers(name: str, home: Path, d: Path) -> None:
    """User endpoints of this root endpoint that run without it (its router was killed, or
    did not stop them): SIGTERM (their pools hand back their tasks), then SIGKILL after the
    endpoint's stop_grace + 20 s."""
    from .multiuser import lifecycle
    pids = _site_user_endpoints(name, home, d)
    if not pids:
        return
    try:
        grace = ep_config.load(d / "config.yaml").stop_grace + 20.0
    except ConfigError:
        grace = 50.0
    log.warning("stopping %d user endpoint(s) of %r still running without it (pids %s)", len(pids), name,
                ", ".join(map(str, pids)))
    for p in pids:
        try:
            os.kill(p, signal.SIGTERM)
        except OSError:
            pass
    left = lifecycle.wait_gone(pids, grace)
    if left:
        lifecycle.kill_trees(left)
        lifecycle.wait_gone(left, 10.0)


def local_endpoints(home: Path | None = None) -> list[str]:
    root = faas_home(home) / "endpoints"
    return sorted(p.name for p in root.iterdir() if (p / "config.yaml").exists()) if root.exists() else []


def local_name(ref: str, home: Path | None = None) -> str:
    """The endpoint configured here that ``ref`` names: ``ref`` itself, or the endpoint whose
    UUID it is (the CLI takes either, as Globus's takes a name or an id)."""
    root = faas_home(home) / "endpoints"
    if not ep_config.is_uuid(ref) or (root / ref / "config.yaml").exists():
        return ref
    for name in local_endpoints(home):
        try:
            if ep_config.endpoint_id(root / name) == ref.lower():
                return name
        except ConfigError:
            continue
    return ref
