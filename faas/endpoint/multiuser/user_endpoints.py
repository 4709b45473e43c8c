"""User endpoints: one ordinary single-user endpoint per (user, variable set), started by the
router under the user's uid, in the user's own ``$FAAS_HOME`` (``~/.faas``), with its own local
queue there. Root hands tasks to that queue from a child that dropped to the user (so every file
in the user's home stays the user's), and never runs, nor unpickles, anything of the user's.
"""
from __future__ import annotations

import logging
import os
import select
import signal
import stat
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from . import lifecycle
from .privileges import AsUser, drop_to, run_as

log = logging.getLogger("faas.multiuser.user_endpoints")


#: seconds a hand-over (a send to the user endpoint's queue, as the user) may take before its
#: child is killed and the tasks wait in the spool for the next try
HAND_OVER_TIMEOUT = 60.0
#: seconds the start of a user endpoint may take (fork, drop, write its config, exec)
START_TIMEOUT = 30.0

@dataclass
class UserEndpoint:
    key: str                  # "<user>/<variables hash>"
    name: str                 # its endpoint name in the user's FAAS_HOME
    user: str
    uid: int
    gid: int
    home: str
    variables: dict
    vhash: str
    pid: int | None = None
    state: str = "stopped"    # running | stopping | stopped | failed
    started_at: float | None = None
    last_activity: float = 0.0
    outstanding: dict = field(default_factory=dict)   # task id -> [function id, client id]
    routed: int = 0
    done: int = 0
    failed: int = 0
    last_error: str | None = None
    blocks: dict = field(default_factory=dict)   # block id -> {"since": epoch, "nodes": n}, for usage
    failures: int = 0         # unexpected exits in a row (restarts back off)
    retry_at: float = 0.0
    site: str | None = None   # the root endpoint's site (lifecycle.site_tag) it was started for
    identity: str | None = None   # the identity whose task started it (the template's mapped_identity.globus.id)
    stop_deadline: float | None = None   # stopping: when it is killed if it has not stopped (epoch)

    @property
    def faas_home(self) -> Path:
        return Path(self.home) / ".faas"

    @property
    def dir(self) -> Path:
        return self.faas_home / "endpoints" / self.name

    @property
    def queue_url(self) -> str:
        return f"local://{self.faas_home / 'queues'}/{self.name}"

    def to_json(self) -> dict:
        return asdict(self)


def running(ue: UserEndpoint) -> bool:
    """The daemon we started (or adopted) is alive: its pid is the user's, not a zombie, and runs
    this user endpoint (the lock alone lags a fresh start)."""
    return ue.pid is not None and ue.pid != 0 and lifecycle.is_daemon(ue.pid, ue.name, ue.uid)


def start(ue: UserEndpoint, config: dict, environment: dict[str, str], python: str | None = None,
          router: dict | None = None) -> int:
    """Fork, drop to the user, write the rendered config.yaml, exec the ordinary endpoint daemon
    (in its own session: it outlives a restart of the router, which adopts it). ``router``: the
    router's stamp (lifecycle.router_stamp), written beside the config; the daemon stops by
    itself once that router has been gone for ``FAAS_ROUTER_GONE_GRACE`` seconds."""
    python = python or sys.executable
    env = dict(environment)
    env.update(HOME=ue.home, USER=ue.user, LOGNAME=ue.user, PWD=ue.home, FAAS_HOME=str(ue.faas_home))
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    if router is not None:
        env.setdefault(lifecycle.GONE_GRACE_ENV, f"{lifecycle.DEFAULT_GONE_GRACE:g}")
    text = ("# written by the multi-user endpoint from its template; edits are overwritten\n" +
            yaml.safe_dump(config, sort_keys=False))
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:   # child: becomes the user, then the daemon
        try:
            os.close(r)
            os.setsid()
            drop_to(ue.user, ue.uid, ue.gid)
            os.chdir(ue.home)
            ue.dir.mkdir(parents=True, exist_ok=True)
            _write_own(ue.dir / "config.yaml", text)
            if router is not None:
                lifecycle.write_router_file(ue.dir, router)
            out = os.open(ue.dir / "daemon.out", os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NONBLOCK, 0o600)
            os.set_blocking(out, True)
            devnull = os.open(os.devnull, os.O_RDONLY)
            os.dup2(devnull, 0)
            os.dup2(out, 1)
            os.dup2(out, 2)
            os.set_inheritable(w, False)
            os.execve(python, [python, "-m", "faas.endpoint.daemon", ue.name], env)
        except BaseException as e:  # noqa: BLE001 - forked child before execve: report anything, never return
            try:
                os.write(w, f"{type(e).__name__}: {e}".encode()[:4000])
            except OSError:
                pass
        os._exit(71)
    os.close(w)
    why = _exec_or_error(r, pid)
    if why:
        os.waitpid(pid, 0)
        raise OSError(f"starting the user endpoint of {ue.user} failed: {why}")
    ue.pid, ue.state, ue.started_at, ue.last_error = pid, "running", time.time(), None
    ue.last_activity = time.time()
    log.info("started user endpoint %s for %s (pid %d, variables %s)", ue.name, ue.user, pid, ue.vhash)
    return pid


def _write_own(path: Path, text: str) -> None:
    """As the user: write ``path`` without blocking on a FIFO the user put there (the router
    waits for this child; a FIFO with no reader would hold it)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NONBLOCK | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path} is not a regular file")
        os.set_blocking(fd, True)
        f.write(text)


def _exec_or_error(r: int, pid: int) -> str:
    """What the starting child wrote before its exec (its end closes on exec: "" then), waiting
    at most START_TIMEOUT; a child that takes longer is killed."""
    deadline = time.monotonic() + START_TIMEOUT
    chunks: list[bytes] = []
    with os.fdopen(r, "rb", buffering=0) as f:
        while True:
            ready, _, _ = select.select([f], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                os.kill(pid, signal.SIGKILL)
                return f"it did not start within {START_TIMEOUT:.0f} s (killed)"
            data = f.read(4096)
            if not data:
                return b"".join(chunks).decode(errors="replace")
            chunks.append(data)


def begin_hand_over(ue: UserEndpoint, bodies: list[str], max_receives: int, visibility_timeout: float,
                    timeout: float = HAND_OVER_TIMEOUT) -> AsUser:
    """Send task messages to the user endpoint's queue, as the user, in a child the router polls
    (durable once it ends well): the queue file is the user's, and they may hold it locked."""
    def send():
        from ...store import create_queue
        q = create_queue(ue.queue_url, max_receives=max_receives, visibility_timeout=visibility_timeout)
        q.send(bodies)
        q.close()
    return AsUser(ue.user, ue.uid, ue.gid, send, timeout)


def claim(ue: UserEndpoint, router: dict) -> tuple[bool, str]:
    """Tell an adopted user endpoint which router it has now (``router.json``, written as the
    user), so that it does not stop when the router that started it is gone."""
    return run_as(ue.user, ue.uid, ue.gid, lambda: lifecycle.write_router_file(ue.dir, router), timeout=30)


def signal_stop(ue: UserEndpoint) -> None:
    if ue.pid and running(ue):
        try:
            os.kill(ue.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


def begin_stop(ue: UserEndpoint, wait: float) -> None:
    """SIGTERM its daemon (it hands back what its pools hold: nothing lost) and return at once:
    ``ue`` is "stopping" until :func:`check_stop` sees it gone, or kills it ``wait`` seconds
    from now. The router never waits for a user's process (one the user froze would hold it)."""
    if not running(ue):
        _stopped(ue)
        return
    signal_stop(ue)
    ue.state, ue.stop_deadline = "stopping", time.time() + wait


def check_stop(ue: UserEndpoint) -> bool:
    """True once the stopping ``ue`` has stopped; past its deadline it is killed, with its
    blocks (its messages come back to its queue after their visibility timeout)."""
    reap(ue)
    if ue.pid and running(ue):
        if time.time() < (ue.stop_deadline or 0.0):
            return False
        log.warning("user endpoint %s (pid %s) did not stop in time: killing it and its blocks", ue.name, ue.pid)
        lifecycle.kill_trees([ue.pid])
        p = lifecycle.proc(ue.pid)
        if p is not None and p.ppid == os.getpid():
            os.waitpid(ue.pid, 0)
    _stopped(ue)
    return True


def stop(ue: UserEndpoint, wait: float = 60.0) -> None:
    """SIGTERM its daemon and wait until it stopped (killed after ``wait`` seconds)."""
    begin_stop(ue, wait)
    while ue.state == "stopping" and not check_stop(ue):
        time.sleep(0.05)


def _stopped(ue: UserEndpoint) -> None:
    reap(ue)
    ue.state, ue.pid, ue.stop_deadline = "stopped", None, None
    log.info("stopped user endpoint %s of %s", ue.name, ue.user)


def reap(ue: UserEndpoint) -> None:
    if ue.pid:
        try:
            os.waitpid(ue.pid, os.WNOHANG)
        except ChildProcessError:
            pass
