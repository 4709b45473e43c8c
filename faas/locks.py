"""Is a file's flock held? Asked without taking the lock."""
from __future__ import annotations

import fcntl
import os
from pathlib import Path


def lock_held(path: Path) -> bool:
    """True while some process holds an flock on ``path`` (the kernel drops it when the process
    dies).

    Read from /proc/locks, so asking never takes the lock itself: a probe must not make a
    starting process think another one holds it, nor another prober (elsewhere than Linux: a
    probe that takes the lock for an instant, which a starting holder must wait out)."""
    try:
        st = Path(path).stat()
    except OSError:
        return False
    try:
        with open("/proc/locks") as f:
            table = f.read()
    except OSError:
        table = None
    if table is not None:
        dev = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
        return any(line.split()[1] == "FLOCK" and line.split()[5] == dev
                   for line in table.splitlines() if "->" not in line and len(line.split()) > 5)
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
        return False
