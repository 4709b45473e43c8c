"""Locks held for a process's life, and the files beside them that say who holds one and
whether it serves yet: an endpoint's ``daemon.lock``, ``daemon.pid``, ``daemon.ready`` and
``daemon.setup``. Held by a daemon or a multi-user router, read by ``faas endpoint`` commands,
the client's autostart and the chaos tests; so they live here, below all of them. Whether a
lock is held is asked without taking it (/proc/locks)."""
from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from typing import IO


class AlreadyRunning(RuntimeError):
    """Another process holds the endpoint's lock."""


def lock_holders(path: Path) -> list[int] | None:
    """Pids holding an flock on ``path``, from /proc/locks (the process that took it); None
    where /proc/locks cannot be read."""
    try:
        st = Path(path).stat()
    except OSError:
        return []
    try:
        with open("/proc/locks") as f:
            table = f.read()
    except OSError:
        return None
    dev = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    out = []
    for line in table.splitlines():
        cols = line.split()
        if "->" not in line and len(cols) > 5 and cols[1] == "FLOCK" and cols[5] == dev and cols[4].isdigit():
            out.append(int(cols[4]))
    return out


def lock_held(path: Path) -> bool:
    """True while some process holds an flock on ``path`` (the kernel drops it when the process
    dies).

    Read from /proc/locks, so asking never takes the lock itself: a probe must not make a
    starting process think another one holds it, nor another prober (elsewhere than Linux: a
    probe that takes the lock for an instant, which a starting holder must wait out)."""
    holders = lock_holders(path)
    if holders is not None:
        return bool(holders)
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
        return False


def lock_path(endpoint_dir: Path) -> Path:
    return endpoint_dir / "daemon.lock"


def pid_path(endpoint_dir: Path) -> Path:
    return endpoint_dir / "daemon.pid"


def ready_path(endpoint_dir: Path) -> Path:
    """Exists while the daemon (or router) is registered and serving (written after it published)."""
    return endpoint_dir / "daemon.ready"


def setup_path(endpoint_dir: Path) -> Path:
    """Exists (holding the daemon's pid) while endpoint_setup runs: a starter waits for it."""
    return endpoint_dir / "daemon.setup"


def is_running(endpoint_dir: Path) -> bool:
    """True while a daemon or router holds the endpoint's lock (asked without taking it)."""
    return lock_held(lock_path(endpoint_dir))


def daemon_pid(endpoint_dir: Path) -> int | None:
    """The pid the endpoint's last holder wrote (it may have ended: ask :func:`is_running`)."""
    try:
        return int(pid_path(endpoint_dir).read_text())
    except (OSError, ValueError):
        return None


def take_lock(endpoint_dir: Path, name: str) -> IO:
    """Hold the endpoint's lock for this process's life (the returned file keeps it); write its
    pid and clear a stale ready file. :class:`AlreadyRunning` if another process holds it."""
    endpoint_dir.mkdir(parents=True, exist_ok=True)
    lock_file = open(lock_path(endpoint_dir), "a+")
    deadline = time.monotonic() + 2.0
    while True:   # a moment's patience: lock probes elsewhere than Linux take it for an instant
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() > deadline:
                lock_file.close()
                raise AlreadyRunning(
                    f"endpoint {name!r} is already running (pid {daemon_pid(endpoint_dir)}); "
                    f"`faas endpoint stop {name}` first") from None
            time.sleep(0.05)
    pid_path(endpoint_dir).write_text(str(os.getpid()))
    ready_path(endpoint_dir).unlink(missing_ok=True)
    return lock_file
