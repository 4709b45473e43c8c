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


def run_as(user: str, uid: int, gid: int, fn: Callable[[], object], timeout: float = 120.0) -> tuple[bool, str]:
    """Run ``fn()`` in a forked child dropped to ``user``; (True, "") if it returned, else
    (False, why). The child shares nothing back but its exit status and a short error text."""
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
    deadline = time.monotonic() + timeout
    chunks = []
    with os.fdopen(r, "rb", buffering=0) as f:
        while True:   # until the child closes its end (exits), or the time is up
            ready, _, _ = select.select([f], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                os.kill(pid, signal.SIGKILL)
                chunks.append(f"timed out after {timeout:.0f} s".encode())
                break
            data = f.read(4096)
            if not data:
                break
            chunks.append(data)
    why = b"".join(chunks).decode(errors="replace")
    _, status = os.waitpid(pid, 0)
    ok = os.waitstatus_to_exitcode(status) == 0
    return ok, "" if ok else (why or f"child exited with {os.waitstatus_to_exitcode(status)}")
