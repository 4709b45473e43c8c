"""Start, stop and inspect endpoint daemons from the login node (used by the CLI and the client)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ..config import faas_home
from ..exceptions import ConfigError, EndpointNotFound
from . import config as ep_config
from .daemon import daemon_pid, is_running, ready_path


def default_local_config(home: Path) -> ep_config.EndpointConfig:
    """The embedded default: store and queue under FAAS_HOME, one always-warm local block."""
    return ep_config.EndpointConfig(
        display_name="embedded local endpoint", store=(home / "store").as_uri(), queue="local",
        signing_keys_file="signing.key",
        engine=ep_config.EngineConfig(provider=ep_config.ProviderConfig(
            type="local", init_blocks=1, min_blocks=1, max_blocks=1)))


def ensure_key_file(endpoint_dir: Path) -> None:
    """A private signing key beside the config, made once (mode 600)."""
    from .. import signing
    path = endpoint_dir / "signing.key"
    if not path.exists():
        signing.write_key_file(path, signing.new_key("k1"))


def start_detached(name: str, home: Path | None = None, wait: float = 15.0) -> int:
    """Start the daemon in its own session; return its pid once it holds the endpoint's lock."""
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
        proc = subprocess.Popen([sys.executable, "-m", "faas.endpoint.daemon", name],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                start_new_session=True, env=env, cwd=d)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if _ready_pid(d) and is_running(d):
            return _ready_pid(d)
        code = proc.poll()
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
    """SIGTERM the daemon and wait until it let go of its lock. False if it was not running."""
    d = ep_config.endpoint_dir(name, faas_home(home))
    if not is_running(d):
        return False
    pid = daemon_pid(d)
    if pid:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return False
    deadline = time.monotonic() + wait
    while is_running(d):
        if time.monotonic() > deadline:
            raise TimeoutError(f"endpoint {name!r} (pid {pid}) did not stop within {wait} s")
        time.sleep(0.05)
    return True


def local_endpoints(home: Path | None = None) -> list[str]:
    root = faas_home(home) / "endpoints"
    return sorted(p.name for p in root.iterdir() if (p / "config.yaml").exists()) if root.exists() else []
