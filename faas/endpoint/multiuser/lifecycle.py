"""The life of a multi-user endpoint's processes: which user endpoints belong to which root
endpoint (the *site*), how a user endpoint notices that its router is gone, and how a stop ends
the whole tree.

- A site is a root endpoint's name, store and queue: ``site_tag`` hashes them, and each user
  endpoint's folder (and endpoint name) carries it, ``<endpoint>-<site>-u<uid>-<variables>``,
  so two root endpoints of the same name (a test and a production site, or one re-created with
  another store) never share a user endpoint.
- The router writes ``router.json`` (its pid and start time) in each user endpoint's folder,
  as the user, when it starts or adopts it, and sets ``FAAS_ROUTER_GONE_GRACE`` in its
  environment. The user endpoint looks about once a second; when that process has been gone
  for the grace (default 120 s, so that a restarted router can adopt it again) it stops as on
  SIGTERM: its pools hand back what they hold.
- ``kill_trees`` freezes (SIGSTOP) a process and everything below it, then SIGKILLs them all:
  nothing forks away between the look and the kill.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import signal
import time
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

from ...safe_open import replace_file

log = logging.getLogger("faas.multiuser.lifecycle")

#: in a user endpoint's folder: the router that started (or adopted) it, as the user wrote it
ROUTER_FILE = "router.json"
#: seconds a user endpoint outlives its router (set by the router; user_environment.yaml may
#: set it; 0 or "off": never exits on its own)
GONE_GRACE_ENV = "FAAS_ROUTER_GONE_GRACE"
DEFAULT_GONE_GRACE = 120.0
#: a user endpoint's endpoint name: <root endpoint>-<site>-u<uid>-<variables hash>
_NAME = re.compile(r"^.+-([0-9a-f]{8})-u([0-9]+)-[0-9a-f]{8}$")
_DAEMON = b"faas.endpoint.daemon"
NAME_MAX = 63


def site_tag(name: str, store: str, queue: str) -> str:
    """8 hex digits naming a root endpoint's site: its name, store URL and queue URL."""
    return hashlib.sha256(json.dumps([name, store, queue]).encode()).hexdigest()[:8]


def user_endpoint_name(root: str, site: str, uid: int, vhash: str) -> str:
    """``<root>-<site>-u<uid>-<vhash8>``; the root endpoint's name is shortened when the whole
    would pass the 63 characters of an endpoint name (the site hash still tells them apart)."""
    rest = f"-{site}-u{uid}-{vhash[:8]}"
    return root[:NAME_MAX - len(rest)] + rest


# -- processes -------------------------------------------------------------------------------
class Proc(NamedTuple):
    ppid: int
    state: str
    start: int      # clock ticks after boot: a pid and its start time name one process
    uid: int
    pgid: int


def proc(pid: int) -> Proc | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            rest = f.read().rsplit(")", 1)[1].split()
        return Proc(int(rest[1]), rest[0], int(rest[19]), os.stat(f"/proc/{pid}").st_uid, int(rest[2]))
    except (OSError, ValueError, IndexError):
        return None


def processes() -> dict[int, Proc]:
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            p = proc(int(entry))
            if p is not None:
                out[int(entry)] = p
    return out


def argv(pid: int) -> list[bytes]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


def alive(pid: int) -> bool:
    p = proc(pid)
    return p is not None and p.state != "Z"


def is_daemon(pid: int, name: str, uid: int | None = None) -> bool:
    """``pid`` runs the endpoint daemon (or router) ``name`` (as ``uid``, when given)."""
    p = proc(pid)
    if p is None or p.state == "Z" or (uid is not None and p.uid != uid):
        return False
    args = argv(pid)
    return _DAEMON in args and name.encode() in args


def daemon_pids(name: str, uid: int) -> list[int]:
    """Live processes of ``uid`` that run the endpoint daemon ``name``."""
    return [pid for pid, p in processes().items()
            if p.uid == uid and p.state != "Z" and is_daemon(pid, name, uid)]


def site_daemons(site: str) -> list[int]:
    """Live user endpoint daemons of the site ``site``: not root's, their name carries the site
    and their own uid (whatever started them: this router, an earlier one)."""
    out = []
    for pid, p in processes().items():
        if p.uid == 0 or p.state == "Z":
            continue
        args = argv(pid)
        if _DAEMON not in args:
            continue
        for a in args[args.index(_DAEMON) + 1:]:
            m = _NAME.match(a.decode(errors="replace"))
            if m and m.group(1) == site and int(m.group(2)) == p.uid:
                out.append(pid)
                break
    return out


def kill_trees(roots: list[int]) -> list[int]:
    """SIGKILL each of ``roots`` and everything below it: its descendants, and the members of
    the process groups they lead (a block's pool and workers, even those whose parent died
    already). First everything is stopped (SIGSTOP, looked for again until nothing new
    appears, so nothing forks away), then killed. Below a user's process only that user's
    processes are taken (never a root process a user started, e.g. through sudo). Returns the
    pids killed. The caller checked the roots are what it thinks they are."""
    me = os.getpid()
    frozen: dict[int, Proc] = {}

    def freeze(pid: int, p: Proc) -> None:
        try:
            os.kill(pid, signal.SIGSTOP)
            frozen[pid] = p
        except OSError:
            pass

    def below(pid: int, p: Proc) -> bool:
        """``pid`` belongs to a frozen tree: a child, or in a group a frozen process leads."""
        if pid in frozen or pid == me or p.state == "Z":
            return False
        up = frozen.get(p.ppid)
        if up is not None and (up.uid == 0 or up.uid == p.uid):
            return True
        leader = frozen.get(p.pgid)
        return leader is not None and leader.uid == p.uid
    table = processes()
    for pid in roots:
        if pid in table and table[pid].state != "Z" and pid != me:
            freeze(pid, table[pid])
    for _ in range(100):
        table = processes()
        new = [(pid, p) for pid, p in table.items() if below(pid, p)]
        if not new:
            break
        for pid, p in new:
            freeze(pid, p)
    table = processes()
    for pid, p in frozen.items():
        now = table.get(pid)
        if now is None or now.start != p.start:   # gone meanwhile (and the pid reused?): not ours
            continue
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return list(frozen)


def wait_gone(pids: list[int], timeout: float) -> list[int]:
    """Wait until none of ``pids`` runs (zombies count as gone); those still running."""
    deadline = time.monotonic() + timeout
    left = [p for p in pids if alive(p)]
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = [p for p in left if alive(p)]
    return left


# -- the router, seen from its user endpoints ---------------------------------------------------
def router_stamp(name: str, site: str) -> dict:
    """What the router writes in ``router.json``: its pid and start time (and, for people, its
    name and site)."""
    me = proc(os.getpid())
    return {"pid": os.getpid(), "start": me.start if me else None, "endpoint": name, "site": site}


def write_router_file(endpoint_dir: Path, stamp: dict) -> None:
    """As the user (a child dropped to them, or the user endpoint's starting child)."""
    endpoint_dir.mkdir(parents=True, exist_ok=True)
    replace_file(endpoint_dir / ROUTER_FILE, json.dumps(stamp))


def gone_grace(environ: Mapping[str, str] = os.environ) -> float | None:
    """The grace from the environment: None when not set (not a user endpoint) or off."""
    raw = environ.get(GONE_GRACE_ENV)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        if raw.strip().lower() in ("off", "never", "no", "false"):
            return None
        log.warning("%s=%r is not a number of seconds: using %.0f", GONE_GRACE_ENV, raw, DEFAULT_GONE_GRACE)
        return DEFAULT_GONE_GRACE
    return value if value > 0 else None


def router_alive(stamp: dict) -> bool:
    """The process named in ``stamp`` still runs (same pid, same start time)."""
    try:
        pid, start = int(stamp["pid"]), stamp.get("start")
    except (KeyError, TypeError, ValueError):
        return False
    p = proc(pid)
    if p is not None:
        return p.state != "Z" and (start is None or p.start == start)
    try:   # /proc of others hidden (hidepid): ask the kernel whether the pid exists
        os.kill(pid, 0)
        return True
    except PermissionError:
        return True
    except OSError:
        return False


class RouterWatch:
    """In a user endpoint: has the router that started it been gone for longer than the grace?"""

    def __init__(self, endpoint_dir: Path, grace: float, every: float = 1.0):
        self.path = endpoint_dir / ROUTER_FILE
        self.grace, self.every = grace, every
        self.gone_since: float | None = None
        self.last_look = 0.0
        self.last_stamp: dict = {}

    @classmethod
    def from_env(cls, endpoint_dir: Path, environ: Mapping[str, str] = os.environ) -> RouterWatch | None:
        grace = gone_grace(environ)
        return None if grace is None else cls(endpoint_dir, grace)

    def gone(self) -> bool:
        """True once the router has been gone for the grace (logged once, with what to do)."""
        now = time.monotonic()
        if now - self.last_look < self.every:
            return False
        self.last_look = now
        try:
            stamp = json.loads(self.path.read_text()[:4096])
            if not isinstance(stamp, dict):
                raise ValueError("not an object")
        except (OSError, ValueError) as e:
            stamp = {"error": f"{self.path}: {e}"}
        self.last_stamp = stamp
        if router_alive(stamp):
            if self.gone_since is not None:
                log.info("the multi-user endpoint (pid %s) is back", stamp.get("pid"))
            self.gone_since = None
            return False
        if self.gone_since is None:
            self.gone_since = now
            log.warning("the multi-user endpoint that started this user endpoint (%s) is gone; "
                        "stopping in %.0f s unless it comes back (%s)", _who(stamp), self.grace, GONE_GRACE_ENV)
            return False
        if now - self.gone_since >= self.grace:
            log.warning("the multi-user endpoint that started this user endpoint (%s) has been gone for "
                        "%.0f s (%s=%g): stopping", _who(stamp), now - self.gone_since, GONE_GRACE_ENV, self.grace)
            return True
        return False


def _who(stamp: dict) -> str:
    if "error" in stamp:
        return stamp["error"]
    return f"endpoint {stamp.get('endpoint')!r}, pid {stamp.get('pid')}"
