"""Local queues in folders other accounts may write into, played with real Unix accounts
(tests/multiuser/conftest.py ``mu_users``: root only, skipped otherwise). Alice is the victim,
Bob the attacker.

Before: in a root-owned folder everyone may write into (/tmp, /dev/shm: ``TMPDIR=/dev/shm``),
a queue file Bob made first at the name of Alice's queue (mode 666) was accepted: Alice's
``create_queue`` sent her tasks into Bob's file and Bob read them. And a drop box (a folder of
Alice's, mode 1733: others may enter and write, not list) that Bob could send into was refused
with "cannot be opened without following a link", since the folder was opened for reading."""
from __future__ import annotations

import json
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(__file__)))
from helpers import python_as  # noqa: E402
from multiuser.conftest import mu_shared, mu_users  # noqa: E402,F401 - fixtures: real accounts

pytestmark = pytest.mark.slow

# Make the queue argv[1] (its files then mode 666, as a shared doorbell's are).
MAKE_SHARED = r"""
import glob, os, sys
from faas.store import create_queue
create_queue(sys.argv[1], dead_letter=False).close()
for f in glob.glob(sys.argv[1][len("local://"):] + ".sqlite3*"):
    os.chmod(f, 0o666)
"""

# Make (create) or open the queue argv[2] and send one task; print what happened.
SEND = r"""
import json, sys
from faas.store import create_queue, open_queue
out = {}
try:
    if sys.argv[1] == "create":
        q = create_queue(sys.argv[2], dead_letter=False)
    else:
        q = open_queue(sys.argv[2])
    q.send(["alice's secret task"])
    out["sent"] = q.depth()["visible"]
except Exception as e:
    out["error"] = f"{type(e).__name__}: {e}"
print(json.dumps(out))
"""

RECEIVE = r"""
import json, sys
from faas.store import open_queue
print(json.dumps([m.body for m in open_queue(sys.argv[1]).receive(10, wait=0)]))
"""


def _run(user, script: str, *args: str):
    p = python_as(user, "-c", script, *args)
    assert p.returncode == 0, f"exit {p.returncode}: {p.stderr[-2000:]}"
    return json.loads(p.stdout.strip().splitlines()[-1])


def _folder(base, name: str, mode: int, owner=None):
    folder = base / name
    folder.mkdir()
    if owner is not None:
        os.chown(folder, owner.pw_uid, owner.pw_gid)
    os.chmod(folder, mode)
    return folder


@pytest.mark.parametrize("mode", [0o1777, 0o777])
def test_a_queue_another_account_planted_in_a_folder_all_may_write_is_refused(mu_users, mu_shared, mode):
    alice, bob, _ = mu_users
    shm = _folder(mu_shared, f"shm-{mode:o}", mode)     # root's, like /tmp and /dev/shm
    url = f"local://{shm}/jobs"
    assert python_as(bob, "-c", MAKE_SHARED, url).returncode == 0
    out = _run(alice, SEND, "create", url)
    assert "QueueError" in out.get("error", ""), f"Alice sent into Bob's planted queue: {out}"
    assert str(shm / "jobs.sqlite3") in out["error"] and bob.pw_name in out["error"], out
    assert _run(bob, RECEIVE, url) == [], "Bob read Alice's task"


def test_a_wal_another_account_planted_beside_a_new_queue_is_refused(mu_users, mu_shared):
    """SQLite opens NAME.sqlite3-wal itself: one of Bob's there would get Alice's tasks."""
    alice, bob, _ = mu_users
    shm = _folder(mu_shared, "shm-wal", 0o1777)
    planted = python_as(bob, "-c", "import os, sys; os.close(os.open(sys.argv[1], os.O_CREAT | "
                        "os.O_WRONLY, 0o666)); os.chmod(sys.argv[1], 0o666)",
                        str(shm / "jobs.sqlite3-wal"))
    assert planted.returncode == 0, planted.stderr
    out = _run(alice, SEND, "create", f"local://{shm}/jobs")
    assert "QueueError" in out.get("error", "") and "jobs.sqlite3-wal" in out["error"] \
        and bob.pw_name in out["error"], f"Alice's queue used Bob's WAL: {out}"


def test_alices_own_queue_in_a_folder_all_may_write_still_works(mu_users, mu_shared):
    alice, bob, _ = mu_users
    shm = _folder(mu_shared, "shm-own", 0o1777)
    out = _run(alice, SEND, "create", f"local://{shm}/jobs")
    assert out == {"sent": 1}, out
    # and the folder owner's (a runner's shared doorbell in its own 1777 queues/) opens for others
    queues = _folder(mu_shared, "queues-of-bob", 0o1777, owner=bob)
    made = python_as(bob, "-c", MAKE_SHARED, f"local://{queues}/doorbell")
    assert made.returncode == 0, made.stderr
    out = _run(alice, SEND, "open", f"local://{queues}/doorbell")
    assert out == {"sent": 1}, out


def test_a_drop_box_folder_others_may_send_into(mu_users, mu_shared):
    """Alice's folder, mode 1733 (others may enter and write, not list), her queue in it mode
    666: Bob sends to it, as before the folder was opened for reading."""
    alice, bob, _ = mu_users
    drop = _folder(mu_shared, "dropbox", 0o755, owner=alice)
    made = python_as(alice, "-c", MAKE_SHARED, f"local://{drop}/q")
    assert made.returncode == 0, made.stderr
    os.chmod(drop, 0o1733)
    out = _run(bob, SEND, "open", f"local://{drop}/q")
    assert out == {"sent": 1}, out


def test_a_link_at_the_queues_folder_is_named_a_link(mu_users, mu_shared):
    alice, bob, _ = mu_users
    shm = _folder(mu_shared, "shm-link", 0o1777)
    os.symlink(str(mu_shared), shm / "linked")
    out = _run(alice, SEND, "open", f"local://{shm}/linked/q")
    assert "QueueError" in out.get("error", "") and "symbolic link" in out["error"], out


def test_a_shared_queue_of_alices_opens_after_bob_wrote_to_it(mu_users, mu_shared):
    """Her queue mode 666 in a 1777 folder (shared on purpose): Bob's SQLite may have made its
    -wal (his file, as while he has it open); she still opens her queue."""
    alice, bob, _ = mu_users
    shm = _folder(mu_shared, "shm-shared-wal", 0o1777)
    url = f"local://{shm}/jobs"
    assert python_as(alice, "-c", MAKE_SHARED, url).returncode == 0
    made = python_as(bob, "-c", "import os, sys; os.close(os.open(sys.argv[1], os.O_CREAT | "
                     "os.O_EXCL | os.O_WRONLY, 0o666)); os.chmod(sys.argv[1], 0o666)",
                     str(shm / "jobs.sqlite3-wal"))
    assert made.returncode == 0, made.stderr
    out = _run(alice, SEND, "open", url)
    assert out == {"sent": 1}, out
