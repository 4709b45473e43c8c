"""Running as a user: a forked child of root drops to the user's uid, gids and groups for good."""
from __future__ import annotations

import os
import select
import signal
import time
from collections.abc import Callable


def drop_to(user: str, uid: int, gid: int) -> None:
    """In a child process: initgroups, setgid, setuid (real, effective and saved), umask 077.
    Never returns as root."""
    if uid == 0:
        raise PermissionError("refusing to run user work as root")
    os.initgroups(user, gid)
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if os.getuid() == 0 or os.geteuid() == 0:   # belt and braces: never go on as root
        os._exit(70)
    os.umask(0o077)


def _close_inherited(keep: int) -> None:
    """In the child: close every descriptor root had open (its logs, its lock, the spool, cached
    store folders) but the standard ones and ``keep``: what runs as the user, on the user's
    files, holds nothing of root's, whatever those files make of it."""
    os.closerange(3, keep)
    os.closerange(keep + 1, os.sysconf("SC_OPEN_MAX") if hasattr(os, "sysconf") else 65536)


class AsUser:
    """``fn()`` running in a forked child dropped to a user: the router looks at it between its
    steps (:meth:`poll`) and never waits on it, since the user controls what it touches (a
    queue file they hold locked, a FIFO where a file belongs) and could hold it for ever."""

    def __init__(self, user: str, uid: int, gid: int, fn: Callable[[], object], timeout: float):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:   # child
            code = 0
            try:
                os.close(r)
                _close_inherited(keep=w)
                drop_to(user, uid, gid)
                fn()
            except BaseException as e:  # noqa: BLE001 - report it to the parent, then exit
                code = 1
                try:
                    os.write(w, f"{type(e).__name__}: {e}".encode()[:4000])
                except OSError:
                    pass
            finally:
                os._exit(code)
        os.close(w)
        os.set_blocking(r, False)
        self.pid, self.fd, self.timeout = pid, r, timeout
        self.deadline = time.monotonic() + timeout
        self.chunks: list[bytes] = []
        self.outcome: tuple[bool, str] | None = None

    def poll(self, wait: float = 0.0) -> tuple[bool, str] | None:
        """``(ok, why not)`` once the child has ended (killed at its deadline); None if it has not
        within ``wait`` seconds."""
        if self.outcome is not None:
            return self.outcome
        until = time.monotonic() + wait
        while True:
            ready, _, _ = select.select([self.fd], [], [], max(0.0, min(until, self.deadline) - time.monotonic()))
            if ready:
                try:
                    data = os.read(self.fd, 4096)
                except BlockingIOError:
                    data = None
                if data == b"":   # its end closed: it exited
                    return self._reap()
                if data:
                    self.chunks.append(data)
                    continue
            if time.monotonic() >= self.deadline:
                os.kill(self.pid, signal.SIGKILL)
                self.chunks.append(f"timed out after {self.timeout:.0f} s".encode())
                return self._reap()
            if time.monotonic() >= until:
                return None

    def kill(self) -> None:
        """End it now (the router stops): what it did not finish is done again later."""
        if self.outcome is None:
            os.kill(self.pid, signal.SIGKILL)
            self.chunks.append(b"killed: the router stops")
            self._reap()

    def _reap(self) -> tuple[bool, str]:
        os.close(self.fd)
        _, status = os.waitpid(self.pid, 0)
        code = os.waitstatus_to_exitcode(status)
        why = b"".join(self.chunks).decode(errors="replace")
        self.outcome = (code == 0, "" if code == 0 else (why or f"child exited with {code}"))
        return self.outcome


def run_as(user: str, uid: int, gid: int, fn: Callable[[], object], timeout: float = 120.0) -> tuple[bool, str]:
    """Run ``fn()`` in a forked child dropped to ``user`` and wait for it (at most ``timeout``);
    (True, "") if it returned, else (False, why). The child shares nothing back but its exit
    status and a short error text."""
    child = AsUser(user, uid, gid, fn, timeout)
    while True:
        outcome = child.poll(wait=timeout)
        if outcome is not None:
            return outcome
