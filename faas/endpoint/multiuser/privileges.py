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
        """``(ok, why not)`` once the child has ended (killed at its deadline); None before."""
        if self.outcome is not None:
            return self.outcome
        ready, _, _ = select.select([self.fd], [], [], max(0.0, min(wait, self.deadline - time.monotonic())))
        if ready:
            while True:   # until its end closes (it exited), or nothing more for now
                try:
                    data = os.read(self.fd, 4096)
                except BlockingIOError:
                    return None
                if not data:
                    return self._reap()
                self.chunks.append(data)
        if time.monotonic() >= self.deadline:
            os.kill(self.pid, signal.SIGKILL)
            self.chunks.append(f"timed out after {self.timeout:.0f} s".encode())
            return self._reap()
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
