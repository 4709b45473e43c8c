"""Issue 14, as the attacker: an ordinary account (bob) on a login node that runs a root
multi-user endpoint over a shared ``file://`` store, against another account (alice) and root.

Each test failed on the code before the fix (root wrote through bob's link; alice's client
unpickled a planted result; a FIFO hung the router; alice's files were readable by bob) and
passes after it."""
from __future__ import annotations

import json
import os
import pickle
import stat
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from faas import serialize

# The real accounts and the root endpoint of tests/multiuser (a conftest.py here would shadow
# the other folders' "conftest" modules, which some tests pickle classes from).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from helpers import wait_until  # noqa: E402
from multiuser.conftest import mu_shared, mu_users, site  # noqa: E402,F401 - fixtures

pytestmark = pytest.mark.slow




def as_user(user, code: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], user=user.pw_uid, group=user.pw_gid, extra_groups=[],
                          env=env or {"HOME": user.pw_dir, "PATH": "/usr/bin:/bin"}, cwd=user.pw_dir,
                          capture_output=True, text=True, timeout=timeout)


def in_background(fn, *args, **kwargs) -> dict:
    box: dict = {}

    def run():
        try:
            box["value"] = fn(*args, **kwargs)
        except BaseException as e:  # noqa: BLE001 - reported by the test
            box["error"] = e
    box["thread"] = threading.Thread(target=run, daemon=True)
    box["thread"].start()
    return box


def _refused(site, tasks: set[str]) -> dict:
    """The audit's refusals by task, once it holds one for each of ``tasks`` (else empty)."""
    refused = {a.get("task"): a for a in site.audit() if a["outcome"] == "refused"}
    return refused if tasks <= refused.keys() else {}


def running_task(site, uid: int, timeout: float = 60) -> Path:
    """The running marker of a task of ``uid`` (root may list what users cannot)."""
    def find():
        for p in (site.store / "running").rglob("*"):
            try:   # not the store's temporary file of a marker being written (renamed in a moment)
                if not p.name.startswith(".") and p.is_file() and p.stat().st_uid == uid:
                    return p
            except FileNotFoundError:
                continue
        return None
    return wait_until(find, timeout, "a running marker")


class Pwn:
    """A pickle that runs a command as whoever loads it."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def test_root_never_writes_through_a_users_link(site, mu_users):
    """The critical one: bob plants a link in the shared results folder and spools messages
    whose task ids walk through it; root used to write a refusal (with bob's text in it) into a
    folder only root may write. Now such ids are not task ids at all, and what root refuses is
    written as bob, who cannot write there."""
    alice, bob, _ = mu_users
    site.configure(allowed_functions=["f" * 64])
    site.start()
    vault = site.base / "vault"
    vault.mkdir(mode=0o700)
    spool = site.store / "spool" / site.name
    now = time.time()
    messages = {
        "a": {"v": 1, "id": "evil1/x/victim.conf", "fn": "0" * 64, "n": 1, "sent": now,
              "uec": {"worker_init": 5}},
        "b": {"v": 1, "id": "evil3/x/authorized_keys", "fn": "nope\nssh-ed25519 AAAAattacker bob@x\n",
              "n": 1, "sent": now},
        # well-formed, refused (the function is not allowed), with a client folder that is a link
        "c": {"v": 1, "id": str(uuid.uuid4()), "fn": "0" * 64, "n": 1, "sent": now,
              "rk": "A" * 43, "cid": "c" * 32},
    }
    code = (
        "import json, os\n"
        f"store = {str(site.store)!r}; vault = {str(vault)!r}; spool = {str(spool)!r}\n"
        f"messages = json.loads({json.dumps(messages)!r})\n"
        "for d in ('evil1', 'evil3'):\n"
        "    os.makedirs(os.path.join(store, 'results', d), exist_ok=True)\n"
        "    os.symlink(vault, os.path.join(store, 'results', d, 'x'))\n"
        "os.symlink(vault, os.path.join(store, 'results', 'c' * 32))\n"
        "for name, m in messages.items():\n"
        "    fd = os.open(os.path.join(spool, name + '.json'), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)\n"
        "    os.write(fd, json.dumps(m).encode()); os.close(fd)\n")
    p = as_user(bob, code)
    assert p.returncode == 0, p.stderr
    # Root has refused all three (its audit lines), and the child that tells bob (as bob) has
    # ended (its write through his link failed and was logged): only then does an empty vault
    # prove something (a fixed sleep could end before either, and prove nothing)
    refused = wait_until(lambda: _refused(site, {"a", "b", messages["c"]["id"]}), 60,
                         "the router to refuse all three of bob's messages")
    told = f"could not tell uid {bob.pw_uid} that its task(s) were refused"
    wait_until(lambda: told in (site.dir / "endpoint.log").read_text(), 60,
               "the router to hear that its child could not tell bob through his link")
    assert sorted(os.listdir(vault)) == [], "root wrote into a folder only root may write"
    assert "not a task message" in refused["a"]["reason"] and "not a UUID" in refused["a"]["reason"]
    assert "not a task message" in refused["b"]["reason"]
    assert messages["c"]["id"] in refused and "allowed_functions" in refused[messages["c"]["id"]]["reason"]
    assert all(a["identity"] == f"local:{bob.pw_name}" for a in refused.values())
    # the router goes on routing for everyone
    site.set(allowed_functions=None)
    site.stop()
    site.start()
    assert site.run_as(alice)[0].get("uid") == alice.pw_uid


def test_a_planted_result_is_never_loaded(site, mu_users, tmp_path):
    """Bob cannot see alice's task names nor write where her results go; and a result planted
    by anyone who can write the store (root here, or anyone with bucket write on S3) is refused
    by alice's client without unpickling it, while her real result arrives."""
    alice, bob, _ = mu_users
    site.configure()
    site.start()
    pwned = Path(f"/tmp/faas-pwned-{uuid.uuid4().hex}")
    job = in_background(site.run_as, alice, delay=6)
    marker = running_task(site, alice.pw_uid)
    tid = marker.name
    # bob's view: nothing to list, nowhere to plant
    code = (
        "import json, os\n"
        f"store = {str(site.store)!r}; tid = {tid!r}; cid = {marker.parent.name!r}\n"
        "out = {}\n"
        "for what, fn in [('list running', lambda: os.listdir(os.path.join(store, 'running'))),\n"
        "                 ('list results', lambda: os.listdir(os.path.join(store, 'results'))),\n"
        "                 ('list her folder', lambda: os.listdir(os.path.join(store, 'running', cid))),\n"
        "                 ('plant', lambda: open(os.path.join(store, 'results', cid, tid), 'wb')),\n"
        "                 ('fifo', lambda: os.mkfifo(os.path.join(store, 'results', cid, tid)))]:\n"
        "    try:\n"
        "        fn(); out[what] = 'done'\n"
        "    except OSError as e:\n"
        "        out[what] = type(e).__name__\n"
        "print(json.dumps(out))\n")
    p = as_user(bob, code)
    assert p.returncode == 0, p.stderr
    assert set(json.loads(p.stdout).values()) == {"PermissionError"}, p.stdout
    # a store writer plants a pickle at her result's key before the real one is written
    evil = serialize.frame({"kind": "result", "status": "success", "task_id": tid, "n": 1},
                           pickle.dumps([(True, Pwn(str(pwned)))]))
    planted = site.store / "results" / marker.parent.name / tid
    planted.write_bytes(evil)
    os.chown(planted, alice.pw_uid, alice.pw_gid)
    job["thread"].join(120)
    assert "error" not in job, job.get("error")
    assert job["value"][0].get("uid") == alice.pw_uid, job["value"]     # the real result arrived
    # after the fact: the stored result is replaced by the planted pickle; alice asks for it later
    planted = next(p for p in (site.store / "results").rglob(tid) if p.is_file())
    planted.write_bytes(evil)
    os.chown(planted, alice.pw_uid, alice.pw_gid)
    env = site.user_env(alice)
    r = subprocess.run([sys.executable, "-m", "faas.cli.main", "result", tid], user=alice.pw_uid,
                       group=alice.pw_gid, extra_groups=[], env=env, cwd=alice.pw_dir,
                       capture_output=True, text=True, timeout=120)
    assert not pwned.exists(), "alice's client unpickled a planted result: the command ran as alice"
    assert r.returncode != 0 and "not written by the endpoint that ran it" in r.stderr and tid in r.stderr, r


def test_a_fifo_or_a_link_never_hangs_the_router(site, mu_users):
    """Bob turns his own result and his user endpoint's status file into a FIFO (and a link to
    /etc/shadow) while his task runs: root reads them without blocking or following, and goes on
    routing alice's tasks."""
    alice, bob, _ = mu_users
    site.configure()
    site.start()
    job = in_background(site.run_as, bob, delay=8)
    marker = running_task(site, bob.pw_uid)
    ue = next(u["name"] for u in site.status()["user_endpoints"] if u["user"] == bob.pw_name)
    status = Path(bob.pw_dir) / ".faas" / "endpoints" / ue / "daemon.status.json"
    result = site.store / "results" / marker.parent.name / marker.name
    code = (
        "import os\n"
        f"os.mkfifo({str(result)!r})\n"
        f"status = {str(status)!r}\n"
        "try:\n    os.unlink(status)\nexcept FileNotFoundError:\n    pass\n"
        "os.mkfifo(status)\n")
    p = as_user(bob, code)
    assert p.returncode == 0, p.stderr
    site.stepped_after(time.time())   # it has read bob's status file, a FIFO now, and gone on
    t0 = time.monotonic()
    r = site.run_as(alice, timeout=120)
    assert r[0].get("uid") == alice.pw_uid, r
    assert time.monotonic() - t0 < 90
    job["thread"].join(120)
    log = (site.dir / "endpoint.log").read_text()
    assert f"task {marker.name} of {bob.pw_name}: its result cannot be read" in log, log[-3000:]
    assert "routing step failed" not in log, log[-3000:]


def test_what_a_client_writes_is_its_own(site, mu_users):
    """Functions, arguments, results, the reply queue and the client's home: alice's only."""
    alice, bob, _ = mu_users
    site.configure()
    site.start()
    r = site.run_as(alice, mode="client")
    assert r[0]["uid"] == alice.pw_uid
    tid = r[0]["task"]
    home = Path(alice.pw_dir) / ".faas-client"
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "result.key").stat().st_mode) == 0o600
    mine = [p for p in list(site.store.rglob("*")) + list(home.rglob("*")) if p.stat().st_uid == alice.pw_uid]
    assert any(p.name == tid for p in mine)
    for p in mine:
        mode = stat.S_IMODE(p.stat().st_mode)
        if p.parent.name == "endpoints":
            continue   # endpoint records are for every client of the site
        assert mode & 0o077 == 0, f"{p} is mode {mode:o}"
    for p in (site.dir / "multiuser.status.json", site.dir / "user_endpoints.json"):
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
    # bob tries to read each of alice's files
    paths = [str(p) for p in mine if p.is_file()] + [str(home / "result.key"),
                                                     str(site.dir / "multiuser.status.json")]
    code = (
        "import json\n"
        f"out = {{}}\nfor p in {paths!r}:\n"
        "    try:\n        open(p, 'rb').read(); out[p] = 'read'\n"
        "    except OSError as e:\n        out[p] = type(e).__name__\n"
        "print(json.dumps(out))\n")
    p = as_user(bob, code)
    assert p.returncode == 0, p.stderr
    read = {k: v for k, v in json.loads(p.stdout).items() if v != "PermissionError"}
    assert read == {}, read
