"""The local queue's doorbell folder ``NAME.waiters`` in a queue folder another account may write
into (a group's shared folder, a sticky /tmp-like one), as tests/security/test_queue_lock_file.py's
lock file: what that account makes there first neither stalls a receiver nor makes a sender fail
after its commit, and never gets the victim to create a file where the attacker points.

Before: a plain file planted at ``q.waiters`` made every ``receive(wait>0)`` raise
FileExistsError (a pool's receiver or a client's listener retried for ever: no task, no notice)
and ``send`` raise NotADirectoryError after its commit (a sender that retries sends twice); an
attacker's own ``q.waiters`` folder had the victim write its marker there, and a link put in
the marker's place made the victim create the file the link named."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(__file__)))
from helpers import python_as, wait_until  # noqa: E402
from multiuser.conftest import mu_shared, mu_users  # noqa: E402,F401 - fixtures: real accounts

pytestmark = pytest.mark.slow

# The victim: a receiver blocked on the empty queue must get a message sent 0.5 s later soon
# (not at its 10 s deadline), and sending must not raise; then a second receive, as a pool's
# receiver does over and over.
VICTIM = """
import json, sys, threading, time
from faas.store.local_queue import LocalQueue
q = LocalQueue.create("local://" + sys.argv[1])
got = {}
def receive():
    t = time.monotonic()
    try:
        got["n"] = len(q.receive(max_messages=10, wait=10, visibility_timeout=30))
    except Exception as e:
        got["error"] = f"{type(e).__name__}: {e}"
    got["after"] = round(time.monotonic() - t, 2)
th = threading.Thread(target=receive)
th.start()
time.sleep(0.5)
try:
    q.send(["hello"])
    sent = "ok"
except Exception as e:
    sent = f"{type(e).__name__}: {e}"
th.join()
q.send(["again"])
again = len(q.receive(max_messages=10, wait=5, visibility_timeout=30))
print(json.dumps(dict(got, sent=sent, again=again)))
"""

# The attacker's own q.waiters (mode 777): every marker the victim writes there is replaced by a
# link to a file of the victim's choosing... of the attacker's choosing, in the victim's home.
SWAP = """
import os, sys, time
folder, target = sys.argv[1], sys.argv[2]
os.mkdir(folder)
os.chmod(folder, 0o777)
print("ready", flush=True)
deadline = time.time() + 20
while time.time() < deadline:
    for name in os.listdir(folder):
        p = os.path.join(folder, name)
        if not os.path.islink(p):
            os.unlink(p)
            os.symlink(target, p)
            print("swapped", name, flush=True)
    time.sleep(0.02)
"""


def _victim(alice, shared, base):
    script = base / "victim.py"
    script.write_text(VICTIM)
    os.chmod(script, 0o644)
    p = python_as(alice, str(script), str(shared / "q"))
    assert p.returncode == 0, p.stderr
    import json
    return json.loads(p.stdout.strip().splitlines()[-1]), p.stderr


def _shared(base, name):
    shared = base / name
    shared.mkdir()
    os.chmod(shared, 0o1777)   # both may create names here (sticky: neither may remove the other's)
    return shared


def test_a_file_planted_at_the_waiters_folder_stalls_nothing(mu_users, mu_shared):
    alice, bob, _ = mu_users
    shared = _shared(mu_shared, "waiters-file")
    assert python_as(bob, "-c", f"open({str(shared / 'q.waiters')!r}, 'w').close()").returncode == 0
    out, stderr = _victim(alice, shared, mu_shared)
    assert out.get("error") is None and out["n"] == 1, out
    assert out["after"] < 3, f"the receiver waited for its deadline: {out}"
    assert out["sent"] == "ok" and out["again"] == 1, out
    assert "is not this account's own" in stderr   # said once, with what it does instead


def test_the_attackers_own_waiters_folder_gets_no_marker_and_no_file_made(mu_users, mu_shared):
    alice, bob, _ = mu_users
    shared = _shared(mu_shared, "waiters-folder")
    target = os.path.join(alice.pw_dir, "CHOSEN_BY_BOB")
    script = mu_shared / "swap.py"
    script.write_text(SWAP)
    os.chmod(script, 0o644)
    env = {"HOME": bob.pw_dir, "PATH": "/usr/bin:/bin",
           **{k: os.environ[k] for k in ("PYTHONPATH",) if k in os.environ}}
    swapper = subprocess.Popen([sys.executable, str(script), str(shared / "q.waiters"), target],
                               user=bob.pw_uid, group=bob.pw_gid, extra_groups=[], env=env,
                               stdout=subprocess.PIPE, text=True)
    try:
        assert swapper.stdout.readline().strip() == "ready"
        out, _ = _victim(alice, shared, mu_shared)
        assert out.get("error") is None and out["n"] == 1 and out["again"] == 1, out
        assert out["after"] < 3, out
        assert not os.path.lexists(target), "the victim created the file the attacker's link named"
        assert not [n for n in os.listdir(shared / "q.waiters")
                    if os.lstat(shared / "q.waiters" / n).st_uid == alice.pw_uid], \
            "the victim wrote its marker into the attacker's folder"
    finally:
        swapper.kill()
        swapper.wait()


# The attacker: rings the victim's doorbell (abstract sockets are listed in /proc/net/unix, and
# anyone may send to one) as fast as it can, for a few seconds. Only the victim's: ringing every
# faas bell listed rang the other processes on the machine too, and counted their rings as the
# victim's (the victim alone takes a few hundred in 3 s: a full bell, 10 rings here, a look).
FLOOD = """
import json, socket, sys, time
name = sys.argv[2]
listed = any(line.split()[-1] == "@" + name for line in open("/proc/net/unix"))
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setblocking(False)
deadline = time.time() + float(sys.argv[1])
rang = full = 0
while time.time() < deadline:
    try:
        s.sendto(b"!", b"\\0" + name.encode())
        rang += 1
    except BlockingIOError:   # its bell is full: rung faster than it is read
        full += 1
print(json.dumps({"listed": listed, "rang": rang, "full": full}))
"""

# The victim: a receiver waiting on an empty queue; the CPU it spends meanwhile.
IDLE = """
import sys, time
from faas.store.local_queue import LocalQueue
q = LocalQueue.create("local://" + sys.argv[1])
print("waiting", flush=True)
t = time.process_time()
q.receive(max_messages=10, wait=4)
print(round(time.process_time() - t, 3), flush=True)
"""


def test_another_accounts_rings_do_not_busy_the_receiver(mu_users, mu_shared):
    alice, bob, _ = mu_users
    folder = mu_shared / "doorbell-flood"
    folder.mkdir()
    os.chown(folder, alice.pw_uid, alice.pw_gid)
    idle, flood = mu_shared / "idle.py", mu_shared / "flood.py"
    idle.write_text(IDLE)
    flood.write_text(FLOOD)
    os.chmod(idle, 0o644)
    os.chmod(flood, 0o644)
    env = {"PATH": "/usr/bin:/bin", **{k: os.environ[k] for k in ("PYTHONPATH",) if k in os.environ}}
    victim = subprocess.Popen([sys.executable, str(idle), str(folder / "q")], user=alice.pw_uid,
                              group=alice.pw_gid, extra_groups=[], env=dict(env, HOME=alice.pw_dir),
                              stdout=subprocess.PIPE, text=True)
    try:
        assert victim.stdout.readline().strip() == "waiting"
        # its doorbell is listening once its marker is written (it printed before it receives)
        waiters = folder / "q.waiters"
        token = wait_until(lambda: waiters.is_dir() and next(iter(os.listdir(waiters)), None), 30,
                           "the victim's doorbell marker")
        attacker = subprocess.run([sys.executable, str(flood), "3", f"faas-{token}"], user=bob.pw_uid,
                                  group=bob.pw_gid, extra_groups=[], env=dict(env, HOME=bob.pw_dir),
                                  capture_output=True, text=True, timeout=60)
        assert attacker.returncode == 0, attacker.stderr
        rings = json.loads(attacker.stdout)
        # it found the bell, rang it, and kept it full the whole time: a flood
        assert rings["listed"] and rings["rang"] > 100 and rings["full"] > 1000, rings
        cpu = float(victim.stdout.readline())
    finally:
        victim.kill()
        victim.wait()
    # each ring it believed sent it to the queue's write lock: seconds of CPU; ignored: none
    assert cpu < 0.3, f"the receiver spent {cpu} s of CPU on another account's rings"
