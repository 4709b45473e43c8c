"""The flows runner's doorbell queue and lock file where other accounts may create entries (a
project's shared folder, a sticky /tmp-like one, the runner's shared ``queues/``), played with
real Unix accounts (tests/multiuser/conftest.py ``mu_users``: root only, skipped otherwise).
Alice is the victim (a flows user, or the runner), Bob the attacker.

Before: a link Bob planted at the queue's database name made Alice's client create the file it
named (SQLite followed it); a ``queues/`` folder Bob made first (or ``/tmp/faas-flows-<uid>``,
the default for ``memory://`` stores) got Alice's queue made inside it, where Bob could swap or
read it; Bob holding the shared doorbell locked (``BEGIN EXCLUSIVE``) held Alice's start for
SQLite's 120 s; a ``flows/runner.lock`` of Bob's made every runner stand by for ever (mode 666,
held locked) or crash (mode 644); the runner made ``flows/`` group-writable under umask 002."""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(__file__)))
from helpers import DEPLOY_AND_START, open_to_users, python_as  # noqa: E402
from multiuser.conftest import mu_shared, mu_users  # noqa: E402,F401 - fixtures: real accounts

pytestmark = pytest.mark.slow

# The victim's flows client: open the runner's queue for the store, then send a command (which
# rings it). Killed by the alarm if it hangs.
RING = r"""
import json, logging, signal, sys, time
signal.alarm(30)
logging.basicConfig(level=logging.WARNING)
from faas.store.file import FileStore
from faas.flows import store_layout as L
store = FileStore(sys.argv[1])
out = {}
if sys.argv[2:] != ["send-only"]:
    try:
        out["url"] = L.open_command_queue(store).url
    except Exception as e:
        out["error"] = f"{type(e).__name__}: {e}"
t = time.monotonic()
out["command"] = L.send_command(store, "start", "run-of-alice", "local:alice")
out["took"] = round(time.monotonic() - t, 2)
print(json.dumps(out))
"""

# The runner, as an account of a project group would start it (umask 002).
RUNNER = r"""
import json, os, signal, sys
signal.alarm(30)
os.umask(0o002)
from faas.flows.runner import Runner
r = Runner(sys.argv[1])
try:
    r.acquire(wait=False)
    r.release()
    print(json.dumps({"acquired": True}))
except Exception as e:
    print(json.dumps({"error": f"{type(e).__name__}: {e}"}))
finally:
    r.queue.destroy()
"""

# Bob's runner.lock: his own file, held locked.
HOLD_LOCK = r"""
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_CREAT | os.O_RDWR, 0o600)
os.fchmod(fd, int(sys.argv[2], 8))
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(60)
"""

# Bob holds the shared doorbell's database.
HOLD_QUEUE = r"""
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
print("held", flush=True)
time.sleep(60)
"""


# Bob rings the shared doorbell (anyone may), then holds its database: the runner's receive sees
# a message and must take the write lock to claim it.
RING_AND_HOLD = r"""
import sqlite3, sys, time
from faas.store.local_queue import LocalQueue
LocalQueue.open(sys.argv[1]).send(['{"op": "start"}'])
db = sqlite3.connect(sys.argv[2], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
print("held", flush=True)
time.sleep(60)
"""


def _run(user, script: str, *args: str) -> dict:
    p = python_as(user, "-c", script, *args)
    assert p.returncode == 0, f"exit {p.returncode}: {p.stderr[-2000:]}"
    return dict(json.loads(p.stdout.strip().splitlines()[-1]), stderr=p.stderr)


def _project(base, name: str, mode: int = 0o1777):
    """A shared project folder (root's) both accounts may create entries in."""
    folder = base / name
    folder.mkdir()
    os.chmod(folder, mode)
    return folder


def _popen(user, script: str, *args: str) -> subprocess.Popen:
    env = {"HOME": user.pw_dir, "PATH": "/usr/bin:/bin",
           **{k: os.environ[k] for k in ("PYTHONPATH",) if k in os.environ}}
    p = subprocess.Popen([sys.executable, "-c", script, *args], user=user.pw_uid, group=user.pw_gid,
                         extra_groups=[], env=env, cwd=user.pw_dir, stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "held"
    return p


def _stop(p: subprocess.Popen) -> None:
    p.kill()
    p.wait()


# --- the doorbell queue ----------------------------------------------------------------------------
def test_a_link_at_the_queues_name_is_refused_not_followed(mu_users, mu_shared):
    alice, bob, _ = mu_users
    project = _project(mu_shared, "flowsq-link")
    queues = _project(project, "queues")   # the site's, open to its users
    target = os.path.join(alice.pw_dir, "CHOSEN_BY_BOB")
    planted = python_as(bob, "-c", "import os, sys; os.symlink(sys.argv[1], sys.argv[2])",
                        target, str(queues / "flows-store.sqlite3"))
    assert planted.returncode == 0, planted.stderr
    out = _run(alice, RING, str(project / "store"))
    assert not [n for n in os.listdir(alice.pw_dir) if n.startswith("CHOSEN_BY_BOB")], \
        "Alice created the file Bob's link named"
    assert "QueueError" in out.get("error", "") and str(queues / "flows-store.sqlite3") in out["error"] \
        and "symbolic link" in out["error"], out
    # the command is in the store all the same (the runner's scan finds it); the ring is logged
    assert out["took"] < 10, out
    assert os.path.exists(project / "store" / "flows" / "commands" / f"{out['command']}.json")
    assert "could not ring the runner's queue" in out["stderr"], out["stderr"]


def test_no_queue_is_made_in_a_queues_folder_another_account_made(mu_users, mu_shared):
    alice, bob, _ = mu_users
    project = _project(mu_shared, "flowsq-folder")
    made = python_as(bob, "-c", "import os, sys; os.mkdir(sys.argv[1]); os.chmod(sys.argv[1], 0o777)",
                     str(project / "queues"))
    assert made.returncode == 0, made.stderr
    out = _run(alice, RING, str(project / "store"))
    assert not [n for n in os.listdir(project / "queues")
                if os.lstat(project / "queues" / n).st_uid == alice.pw_uid], \
        "Alice made her queue in Bob's folder"
    assert "QueueError" in out.get("error", "") and bob.pw_name in out["error"], out
    assert os.path.exists(project / "store" / "flows" / "commands" / f"{out['command']}.json")


MEMORY = r"""
import json
from faas.flows import store_layout as L
from faas.store.memory import MemoryStore
q = L.open_command_queue(MemoryStore("memory://x"))
print(json.dumps({"url": q.url}))
q.destroy()
"""


def test_a_memory_stores_queue_is_not_made_in_a_tmp_folder_another_account_made(mu_users):
    alice, bob, _ = mu_users
    predictable = f"/tmp/faas-flows-{alice.pw_uid}"
    shutil.rmtree(predictable, ignore_errors=True)
    try:
        made = python_as(bob, "-c", "import os, sys; os.mkdir(sys.argv[1]); os.chmod(sys.argv[1], 0o777)",
                         predictable)
        assert made.returncode == 0, made.stderr
        out = _run(alice, MEMORY)
        assert os.listdir(predictable) == [], "Alice's queue was made in Bob's folder"
        assert out["url"].startswith(f"local://{alice.pw_dir}/.faas/queues/"), out
    finally:
        shutil.rmtree(predictable, ignore_errors=True)


def test_a_doorbell_another_account_holds_locked_does_not_hold_a_start(mu_users, mu_shared):
    """The runner's shared doorbell (root's, open to the users as tests/security/
    test_flows_actions_attacks.py ``runner_site`` makes it): Alice's ring reaches it; with Bob
    holding it locked, her start goes on within seconds and the command is in the store."""
    from faas.flows import store_layout as L
    from faas.store import open_queue
    from faas.store.file import FileStore
    alice, bob, _ = mu_users
    project = _project(mu_shared, "flowsq-held", 0o755)
    store = FileStore(str(project / "store"))
    queue = L.open_command_queue(store)          # as the runner makes it
    for folder in (project / "store", project / "store" / "flows", project / "store" / "flows" / "commands"):
        folder.mkdir(exist_ok=True)
        os.chmod(folder, 0o1777)
    os.chmod(project / "queues", 0o777)
    for name in os.listdir(project / "queues"):
        if (project / "queues" / name).is_file():
            os.chmod(project / "queues" / name, 0o666)
    try:
        out = _run(alice, RING, str(project / "store"), "send-only")
        assert open_queue(queue.url).depth()["visible"] == 1, "the shared doorbell did not ring"
        holder = _popen(bob, HOLD_QUEUE, str(project / "queues" / "flows-store.sqlite3"))
        try:
            t = time.monotonic()
            out = _run(alice, RING, str(project / "store"), "send-only")
            took = time.monotonic() - t
        finally:
            _stop(holder)
        assert out["took"] < 10 and took < 20, f"Alice's start waited on Bob's lock: {out}"
        assert "did not take a doorbell" in out["stderr"], out["stderr"]
        assert os.path.exists(project / "store" / "flows" / "commands" / f"{out['command']}.json")
    finally:
        queue.destroy()


def test_a_doorbell_another_account_holds_locked_does_not_stall_the_runner(mu_users, mu_shared):
    """The runner's own receive on the shared doorbell: with Bob holding it locked, each turn
    waited SQLite's busy timeout (120 s; here until Bob let go, 60 s) and nothing else of any
    run moved meanwhile. Now a turn waits DOORBELL_PATIENCE (5 s), says so once, and scans the
    store: Alice's run, started while Bob holds the doorbell, runs to its end."""
    from faas.flows import store_layout as L
    from faas.flows.runner import Runner
    from faas.store import open_store
    alice, bob, _ = mu_users
    project = _project(mu_shared, "flowsq-runner", 0o755)
    url = (project / "store").as_uri()
    runner = Runner(url, config={})
    open_to_users(project / "store")
    open_to_users(project / "queues")
    holder = _popen(bob, RING_AND_HOLD, runner.queue.url, str(project / "queues" / "flows-store.sqlite3"))
    try:
        flow = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
        started = python_as(alice, "-c", DEPLOY_AND_START, url, json.dumps(flow), "{}")
        assert started.returncode == 0, started.stderr
        rid = started.stdout.split()[-1]
        s = open_store(url)
        turns: list[float] = []
        deadline = time.monotonic() + 40
        while L.get_json(s, L.run_key(rid), {}).get("status") != "SUCCEEDED" and time.monotonic() < deadline:
            t = time.monotonic()
            runner.serve(once=True)
            turns.append(time.monotonic() - t)
        assert L.get_json(s, L.run_key(rid), {}).get("status") == "SUCCEEDED", turns
        assert max(turns) < 15, f"a turn of the runner waited on Bob's lock: {turns}"
    finally:
        _stop(holder)
        runner.queue.destroy()


# --- the runner's lock file ------------------------------------------------------------------------
def test_the_runner_makes_flows_writable_by_no_one_else(mu_users, mu_shared):
    alice, _, _ = mu_users
    project = _project(mu_shared, "flowsq-mode")
    out = _run(alice, RUNNER, (project / "store").as_uri())
    assert out.get("acquired"), out
    for folder in (project / "store", project / "store" / "flows"):
        mode = stat.S_IMODE(os.stat(folder).st_mode)
        assert not mode & 0o022, f"{folder} is mode {mode:o} under umask 002: others may plant in it"


@pytest.mark.parametrize("mode", ["666", "644"])
def test_a_lock_file_another_account_planted_is_replaced(mu_users, mu_shared, mode):
    """flows/ open to the users (777, as a site may have made it): Bob's runner.lock (666: every
    runner stood by for ever, silently; 644, not Alice's to write: her runner crashed). While
    Bob holds it, Alice's runner stands by and names him (a runner of his would be serving the
    store: two would both act on its runs); once he does not, hers replaces it and holds the store."""
    alice, bob, _ = mu_users
    project = _project(mu_shared, f"flowsq-lock-{mode}")
    flows = project / "store" / "flows"
    flows.mkdir(parents=True)
    os.chown(project / "store", alice.pw_uid, alice.pw_gid)
    os.chmod(flows, 0o777)
    holder = _popen(bob, HOLD_LOCK, str(flows / "runner.lock"), mode)
    try:
        out = _run(alice, RUNNER, (project / "store").as_uri())
    finally:
        _stop(holder)
    assert "StoreBusy" in out.get("error", "") and f"held by a runner of {bob.pw_name}" in out["error"], out
    out = _run(alice, RUNNER, (project / "store").as_uri())
    assert out.get("acquired"), out
    assert os.lstat(flows / "runner.lock").st_uid == alice.pw_uid
    assert "replacing it" in out["stderr"], out["stderr"]


def test_a_lock_file_another_account_planted_where_it_stays_is_named(mu_users, mu_shared):
    """flows/ sticky (1777): Alice's runner may not remove Bob's lock file; it says so, and whose
    it is, instead of standing by for ever behind it."""
    alice, bob, _ = mu_users
    project = _project(mu_shared, "flowsq-lock-sticky")
    flows = project / "store" / "flows"
    flows.mkdir(parents=True)
    os.chown(project / "store", alice.pw_uid, alice.pw_gid)
    os.chmod(flows, 0o1777)
    holder = _popen(bob, HOLD_LOCK, str(flows / "runner.lock"), "666")
    _stop(holder)   # his lock file stays; no runner of his holds it
    out = _run(alice, RUNNER, (project / "store").as_uri())
    assert "StoreError" in out.get("error", "") and bob.pw_name in out["error"] \
        and str(flows / "runner.lock") in out["error"], out
