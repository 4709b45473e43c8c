"""The local queue's writers lock ``NAME.sqlite3-lock`` first (issue 18: they queue in the
kernel instead of sleeping in SQLite's busy handler). A lock nobody else can hold: in a queue
folder another account may write into (a group's shared folder, a sticky /tmp-like one), what
that account plants there (a FIFO, a file it holds locked for ever, a link) stalls no writer;
the queue works on, with SQLite's own locking."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(__file__)))
from helpers import python_as  # noqa: E402
from multiuser.conftest import mu_shared, mu_users  # noqa: E402,F401 - fixtures: real accounts

pytestmark = pytest.mark.slow

SEND = """
import sys, time
from faas.store.local_queue import LocalQueue
q = LocalQueue.create("local://" + sys.argv[1])
t = time.monotonic()
q.send(["hello"] * 3)
got = q.receive(max_messages=10, visibility_timeout=30)
q.delete([m.receipt for m in got])
print(len(got), round(time.monotonic() - t, 2))
"""

HOLD = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o666)
os.fchmod(fd, 0o666)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(120)
"""


@pytest.mark.parametrize("planted", ["fifo", "held lock file", "link to a held lock file"])
def test_what_another_account_plants_at_the_lock_stalls_no_writer(mu_users, mu_shared, planted):
    alice, bob, _ = mu_users
    shared = mu_shared / f"queues-{planted.replace(' ', '-')}"
    shared.mkdir()
    os.chmod(shared, 0o1777)   # both may create names here (sticky: neither may remove the other's)
    lock = shared / "q.sqlite3-lock"
    holder = None
    try:
        if planted == "fifo":
            assert python_as(bob, "-c", f"import os; os.mkfifo({str(lock)!r}, 0o666)").returncode == 0
        else:
            target = lock if planted == "held lock file" else shared / "bobs-lock"
            script = shared / "hold.py"
            script.write_text(HOLD)
            os.chmod(script, 0o644)
            holder = subprocess.Popen(
                [sys.executable, str(script), str(target)], user=bob.pw_uid, group=bob.pw_gid,
                stdout=subprocess.PIPE, text=True)
            assert holder.stdout.readline().strip() == "held"
            if planted != "held lock file":
                assert python_as(bob, "-c", f"import os; os.symlink({str(target)!r}, {str(lock)!r})").returncode == 0
        script = mu_shared / "send.py"   # a folder every test account can read
        script.write_text(SEND)
        os.chmod(script, 0o644)
        t = time.monotonic()
        p = python_as(alice, str(script), str(shared / "q"))
        assert p.returncode == 0, p.stderr
        assert p.stdout.split()[0] == "3", p.stdout
        assert time.monotonic() - t < 30, "the writer waited on what another account planted"
    finally:
        if holder is not None:
            holder.kill()
            holder.wait()
