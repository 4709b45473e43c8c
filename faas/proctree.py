"""The processes a process started (children, their children, ...), from ``/proc``, so that
stopping a task stops what it started too, without moving it out of its process group or
session (a batch scheduler may track a job's processes by either); and names for threads where
the OS shows them."""
from __future__ import annotations

import os
import signal
import threading


def name_os_thread(name: str) -> None:
    """Name the calling thread where the OS shows it (``top -H``, ``ps -L``, /proc/PID/task/TID/
    comm; 15 characters): which loop of a process spends the CPU, without a profiler."""
    try:
        with open(f"/proc/self/task/{threading.get_native_id()}/comm", "w") as f:
            f.write(name[:15])
    except OSError:   # not Linux, or /proc not mounted: only a diagnostic is lost
        pass


def descendants(pid: int) -> list[int]:
    """Pids of ``pid``'s descendants, parents before children (empty where there is no /proc)."""
    children: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses
        fields = stat[stat.rfind(b")") + 2:].split()
        if len(fields) > 1:
            children.setdefault(int(fields[1]), []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), ()):
            out.append(child)
            todo.append(child)
    return out


def signal_all(pids: list[int], sig: int = signal.SIGKILL) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
