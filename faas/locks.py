"""Is a file's flock held? Asked without taking the lock."""
from __future__ import annotations

import fcntl
import os
from pathlib import Path


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
        f = line.split()
        if "->" not in line and len(f) > 5 and f[1] == "FLOCK" and f[5] == dev and f[4].isdigit():
            out.append(int(f[4]))
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
