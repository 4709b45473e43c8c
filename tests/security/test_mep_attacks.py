"""The root multi-user endpoint (router) against an ordinary account (bob) that wants to stop
routing for everyone else (alice), or to aim root's file moves at a folder of his choosing,
using only what any account may do: write a spool file, its own user endpoint's files, its own
processes, a folder it can write.

Each test failed on the code before the fix (a spool file nested 600 deep stopped all routing; a
status file with a block that is not an object stopped multiuser.status.json; a frozen user
endpoint held the router for stop_grace + 45 s; root moved a root-only folder's files into its
refused/ once bob swapped the store) and passes after it."""
from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

# The real accounts and the root endpoint of tests/multiuser (see test_multiuser_attacks.py).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from helpers import wait_until  # noqa: E402
from multiuser.conftest import Site, mu_shared, mu_users, site  # noqa: E402,F401 - fixtures

pytestmark = pytest.mark.slow

GLOBUS_SCHEMA = Path(__file__).resolve().parents[1] / "multiuser" / "globus" / "user_config_schema.json"


def as_user(user, code: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], user=user.pw_uid, group=user.pw_gid, extra_groups=[],
                          env={"HOME": user.pw_dir, "PATH": "/usr/bin:/bin"}, cwd=user.pw_dir,
                          capture_output=True, text=True, timeout=timeout)


def spooled_by(site, user) -> bool:
    """Whether the spool holds a message of ``user``'s (not a temporary file being written)."""
    for p in (site.store / "spool" / site.name).iterdir():
        try:
            if p.suffix == ".json" and not p.name.startswith(".") and p.stat().st_uid == user.pw_uid:
                return True
        except FileNotFoundError:   # taken meanwhile
            continue
    return False


def user_endpoint_of(site, user) -> dict:
    return next(u for u in site.status()["user_endpoints"] if u["user"] == user.pw_name)


def signal_own_daemon(user, pid: int, sig: str) -> None:
    """``user`` signals its own user endpoint's daemon (its process: its right)."""
    p = as_user(user, f"import os, signal; os.kill({pid}, signal.{sig})")
    assert p.returncode == 0, p.stderr


def write_own_status(user, path: Path, text: str) -> None:
    p = as_user(user, f"from faas.safe_open import replace_file\nreplace_file({str(path)!r}, {text!r}, 0o600)")
    assert p.returncode == 0, p.stderr


def status_time(site) -> float:
    return json.loads((site.dir / "multiuser.status.json").read_text())["time"]


def test_one_deeply_nested_message_never_stops_routing(site, mu_users):
    """Bob spools one message whose user_endpoint_config is a list nested 600 deep (json.loads
    and the message model accept it) and dates it 1970, so that it sorts first. It used to raise
    RecursionError while rendering, outside every except, before being acked or set aside: every
    step died on it and alice's tasks waited for ever. Now it is refused, naming the limit."""
    alice, bob, _ = mu_users
    site.configure()
    shutil.copy(GLOBUS_SCHEMA, site.dir / "user_config_schema.json")   # additionalProperties: true
    site.start()
    spool = site.store / "spool" / site.name
    tid = str(uuid.uuid4())
    depth = 600
    head = json.dumps({"v": 1, "id": tid, "fn": "0" * 64, "n": 1, "sent": time.time(), "rk": "A" * 43,
                       "cid": "c" * 32})
    body = head[:-1] + ', "uec": {"x": ' + "[" * depth + "]" * depth + "}}"
    code = ("import os\n"   # dated before it is in place: the router may take it at once
            f"p = os.path.join({str(spool)!r}, '.deep-in-progress')\n"
            "fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)\n"
            f"os.write(fd, {body!r}.encode()); os.close(fd); os.utime(p, (0, 0))\n"
            f"os.rename(p, os.path.join({str(spool)!r}, 'deep.json'))\n")
    p = as_user(bob, code)
    assert p.returncode == 0, p.stderr
    r = site.run_as(alice, wait=20, timeout=90)
    assert r[0].get("uid") == alice.pw_uid, r
    refused = wait_until(lambda: [a for a in site.audit() if a.get("task") == tid], 10, "bob's refusal")
    assert refused[0]["outcome"] == "refused" and refused[0]["identity"] == f"local:{bob.pw_name}"
    assert "nested deeper than 16 levels" in refused[0]["reason"], refused
    assert not (spool / "deep.json").exists()
    assert "routing step failed" not in (site.dir / "endpoint.log").read_text()


def test_a_users_status_file_never_stops_the_routers_status(site, mu_users):
    """Bob freezes his own user endpoint and writes its daemon.status.json himself: first a
    block that is not an object (it used to raise AttributeError on every step, outside the
    try: multiuser.status.json and the endpoint record stopped being refreshed), then thousands
    of fresh block ids (root rendered the template once per id inside its loop, and wrote a line
    per id to its blocks.log). Now the status goes on, at most max_blocks_per_user blocks are
    counted, and each line root writes from bob's file says whose word it is."""
    alice, bob, _ = mu_users
    site.configure(max_blocks_per_user=2)
    site.start()
    assert site.run_as(bob)[0].get("uid") == bob.pw_uid
    ue = user_endpoint_of(site, bob)
    status = Path(bob.pw_dir) / ".faas" / "endpoints" / ue["name"] / "daemon.status.json"
    signal_own_daemon(bob, ue["pid"], "SIGSTOP")   # so that it does not rewrite its status file
    try:
        write_own_status(bob, status, '{"blocks": {"b1": "x"}}')
        t0 = status_time(site)
        wait_until(lambda: status_time(site) > t0 + 1.5, 8, "multiuser.status.json to be refreshed")
        for k in range(3):   # fresh ids each time: each set ends the blocks of the one before
            write_own_status(bob, status, json.dumps(
                {"blocks": {f"{k}-{i}": {"submitted": 0} for i in range(3000)}}))
            seen = status_time(site)
            wait_until(lambda seen=seen: status_time(site) > seen, 8, "the router to read bob's status")
        counted = user_endpoint_of(site, bob)["blocks"]
        assert counted <= 2, counted
        r = site.run_as(alice, wait=20, timeout=90)
        assert r[0].get("uid") == alice.pw_uid, r
    finally:
        signal_own_daemon(bob, ue["pid"], "SIGCONT")
    lines = [json.loads(x) for x in (site.dir / "blocks.log").read_text().splitlines()]
    bobs = [x for x in lines if x["user"] == bob.pw_name]
    assert 1 <= len(bobs) <= 8, len(bobs)   # 2 counted a round, 3 rounds (and his real block)
    for x in bobs:
        assert x["reported_by_user"]["file"] == "daemon.status.json", x
        assert x["node_seconds"] < 60, x   # root's own observation, not the 1970 bob claims
    assert "routing step failed" not in (site.dir / "endpoint.log").read_text()


def test_a_frozen_user_endpoint_never_holds_the_router(site, mu_users):
    """Bob freezes (SIGSTOP) his own user endpoint; when it has been idle long enough, the
    router stops it. It used to wait for it inside its loop for stop_grace + 45 s, and alice's
    task waited as long. Now the stop is asked for and checked on later steps."""
    alice, bob, _ = mu_users
    site.configure(user_endpoint_idle_timeout=2, stop_grace=1)
    site.start()
    assert site.run_as(bob)[0].get("uid") == bob.pw_uid
    ue = user_endpoint_of(site, bob)
    signal_own_daemon(bob, ue["pid"], "SIGSTOP")
    try:
        wait_until(lambda: f"{ue['name']} of {bob.pw_name} idle for" in (site.dir / "endpoint.log").read_text(),
                   20, "the router to stop bob's idle user endpoint")
        t0 = time.monotonic()
        r = site.run_as(alice, wait=15, timeout=90)
        assert r[0].get("uid") == alice.pw_uid, r
        assert time.monotonic() - t0 < 15
        assert user_endpoint_of(site, bob)["state"] == "stopping"
    finally:
        signal_own_daemon(bob, ue["pid"], "SIGCONT")   # it takes its SIGTERM and stops
    wait_until(lambda: user_endpoint_of(site, bob)["state"] == "stopped", 20, "bob's user endpoint to stop")


def test_a_user_holding_their_own_queue_never_holds_the_router(site, mu_users):
    """Bob holds his own user endpoint's queue file locked (BEGIN EXCLUSIVE: his file, his
    right) and sends a task. The router handed tasks over in a child running as bob and waited
    for it in its loop: 120 s on each step, and its watchdog then stopped the router for
    everyone. Now the hand-over runs beside the loop: alice's task runs at once, bob's waits in
    the spool (and is handed over once he lets go)."""
    alice, bob, _ = mu_users
    site.configure(stall_timeout=30)
    site.start()
    assert site.run_as(bob)[0].get("uid") == bob.pw_uid
    queue = Path(bob.pw_dir) / ".faas" / "queues" / f"{user_endpoint_of(site, bob)['name']}.sqlite3"
    lock = ("import sqlite3, sys, time\n"
            f"db = sqlite3.connect({str(queue)!r}, isolation_level=None)\n"
            "db.execute('BEGIN EXCLUSIVE')\nprint('locked', flush=True)\nsys.stdin.read()\n")
    holder = subprocess.Popen([sys.executable, "-c", lock], user=bob.pw_uid, group=bob.pw_gid, extra_groups=[],
                              env={"HOME": bob.pw_dir, "PATH": "/usr/bin:/bin"}, cwd=bob.pw_dir,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        bobs = subprocess.Popen([sys.executable, str(site.base.parent / "client.py"),
                                 json.dumps({"endpoint": site.name, "wait": 120})],
                                user=bob.pw_uid, group=bob.pw_gid, extra_groups=[], env=site.user_env(bob),
                                cwd=bob.pw_dir, stdout=subprocess.PIPE, text=True)
        # bob's task is in the spool (its hand-over then sticks on his lock), and the router has
        # looked at it: a fixed sleep could end before his client had even sent it
        wait_until(lambda: spooled_by(site, bob), 60, "bob's task in the spool")
        site.stepped_after(time.time())
        for _ in range(3):
            t0 = time.monotonic()
            r = site.run_as(alice, wait=20, timeout=90)
            assert r[0].get("uid") == alice.pw_uid, r
            assert time.monotonic() - t0 < 15, "alice's task waited behind bob's hand-over"
        holder.stdin.close()   # bob lets go: his task is handed over and runs
        out = json.loads(bobs.communicate(timeout=150)[0].strip().splitlines()[-1])
        assert out[0].get("uid") == bob.pw_uid, out
    finally:
        holder.kill()
        holder.wait()
    assert "NOT LIVE" not in (site.dir / "endpoint.log").read_text()


def test_a_user_holding_their_own_reply_queue_never_holds_the_router(site, mu_users):
    """Bob spools tasks the router refuses (variables nested too deep), each naming as its reply
    queue one of his own that he holds locked. The router told each refusal through a child
    running as bob and waited up to 30 s for it, message after message, while alice's tasks
    waited. Now a step's refusals are told by one child per sender, beside the loop."""
    alice, bob, _ = mu_users
    site.configure()
    site.start()
    queues = Path(bob.pw_dir) / "q"
    spool = site.store / "spool" / site.name
    code = (
        "import json, os, sqlite3, sys, time, uuid\n"
        "from faas.store.local_queue import LocalQueue\n"
        f"os.makedirs({str(queues)!r}, exist_ok=True)\n"
        f"q = LocalQueue.create('local://{queues}/r')\n"
        f"db = sqlite3.connect({str(queues / 'r.sqlite3')!r}, isolation_level=None)\n"
        "db.execute('BEGIN EXCLUSIVE')\n"
        "for i in range(3):\n"
        "    body = {'v': 1, 'id': str(uuid.uuid4()), 'fn': '0' * 64, 'n': 1, 'sent': time.time(), 'rk': 'A' * 43,\n"
        "            'cid': 'c' * 32, 'reply': q.url, 'uec': {'x': json.loads('[' * 20 + ']' * 20)}}\n"
        f"    p = os.path.join({str(spool)!r}, f'bob-{{i}}.json')\n"
        "    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)\n"
        "    os.write(fd, json.dumps(body).encode()); os.close(fd)\n"
        "print('spooled', flush=True)\nsys.stdin.read()\n")
    env = {"HOME": bob.pw_dir, "PATH": "/usr/bin:/bin",
           **{k: os.environ[k] for k in ("PYTHONPATH",) if k in os.environ}}
    holder = subprocess.Popen([sys.executable, "-c", code], user=bob.pw_uid, group=bob.pw_gid, extra_groups=[],
                              env=env, cwd=bob.pw_dir, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "spooled"
        # the first is refused at once; its telling child waits on bob's lock, and his others wait
        # in the spool until it ends (his own lock holds only his own refusals)
        wait_until(lambda: [a for a in site.audit() if a.get("identity") == f"local:{bob.pw_name}"],
                   20, "bob's first refusal")
        t0 = time.monotonic()
        r = site.run_as(alice, wait=20, timeout=90)
        assert r[0].get("uid") == alice.pw_uid, r
        assert time.monotonic() - t0 < 15, "alice's task waited behind bob's refusals"
    finally:
        holder.kill()
        holder.wait()


def test_one_user_cannot_take_every_place(site, mu_users):
    """Bob sends tasks with as many sets of variables as the endpoint has places for user
    endpoints (each set is a user endpoint of its own): he took them all, and alice's tasks
    waited for a place (over_limit: wait) until his idled out. Now one user runs at most
    max_user_endpoints_per_user (4) of them; his others wait, and alice's task runs."""
    alice, bob, _ = mu_users
    site.configure(max_user_endpoints=5)
    site.start()
    spool = site.store / "spool" / site.name
    code = (
        "import json, os, time, uuid\n"
        "for i in range(5):\n"
        "    body = {'v': 1, 'id': str(uuid.uuid4()), 'fn': '0' * 64, 'n': 1, 'sent': time.time(),\n"
        "            'rk': 'A' * 43, 'cid': 'c' * 32, 'uec': {'account': f'b{i}'}}\n"
        f"    p = os.path.join({str(spool)!r}, f'bob-{{i}}.json')\n"
        "    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)\n"
        "    os.write(fd, json.dumps(body).encode()); os.close(fd)\n")
    p = as_user(bob, code)
    assert p.returncode == 0, p.stderr
    wait_until(lambda: sum(1 for u in site.status()["user_endpoints"] if u["user"] == bob.pw_name) >= 4,
               60, "bob's user endpoints")
    site.stepped_after(time.time())   # a step that saw bob's four running has looked at his fifth
    r = site.run_as(alice, wait=30, timeout=90)
    assert r[0].get("uid") == alice.pw_uid, r
    bobs = [u for u in site.status()["user_endpoints"] if u["user"] == bob.pw_name and u["state"] == "running"]
    assert len(bobs) == 4, bobs


def test_a_folder_squatting_a_users_record_never_stops_their_endpoint(site, mu_users):
    """A user endpoint's name is predictable (root endpoint, site tag, uid, hash of the
    variables: bob reads the pattern off his own), and its record goes in the store's shared
    ``endpoints/`` (1777). Bob made a folder at alice's record name first: her user endpoint's
    daemon died publishing it, and each of her tasks failed, until root removed the folder. Now
    the daemon reports the error (retried) and serves its queue: the router needs no record."""
    alice, bob, _ = mu_users
    site.configure()
    site.start()
    r = site.run_as(bob, wait=30, timeout=90)
    assert r[0].get("uid") == bob.pw_uid, r
    bobs = user_endpoint_of(site, bob)["name"]
    alices = bobs.replace(f"-u{bob.pw_uid}-", f"-u{alice.pw_uid}-")
    squat = site.store / "endpoints" / f"{alices}.json"
    p = as_user(bob, f"import os; os.mkdir({str(squat)!r}); open(os.path.join({str(squat)!r}, 'x'), 'w').close()")
    assert p.returncode == 0, p.stderr
    r = site.run_as(alice, wait=30, timeout=90)
    assert r[0].get("uid") == alice.pw_uid, r
    assert user_endpoint_of(site, alice)["name"] == alices


def test_a_fifo_where_the_config_belongs_never_holds_the_router(site, mu_users):
    """Bob puts a FIFO where the config.yaml of his next user endpoint will be written (its
    name follows from his variables) and sends a task with those variables. The child that
    starts it (as bob) blocked opening the FIFO and the router waited for it for ever. Now the
    config is opened without blocking and the start has a deadline: bob's task is refused,
    saying why, and alice's runs."""
    alice, bob, _ = mu_users
    site.configure()
    site.start()
    assert site.run_as(bob, uec={"account": "b1"})[0].get("uid") == bob.pw_uid
    first = user_endpoint_of(site, bob)["name"]   # <root>-<site>-u<uid>-<variables hash>: bob sees it
    from faas.endpoint.multiuser import templates
    name = first.rsplit("-", 1)[0] + "-" + templates.variables_hash({"account": "b2"})[:8]
    folder = Path(bob.pw_dir) / ".faas" / "endpoints" / name
    code = f"import os\nos.makedirs({str(folder)!r}, exist_ok=True)\nos.mkfifo({str(folder / 'config.yaml')!r})\n"
    p = as_user(bob, code)
    assert p.returncode == 0, p.stderr
    t0 = time.monotonic()
    r = site.run_as(bob, uec={"account": "b2"}, wait=60, timeout=120)
    assert r[0].get("error"), r
    assert time.monotonic() - t0 < 45
    r = site.run_as(alice, wait=20, timeout=90)
    assert r[0].get("uid") == alice.pw_uid, r


def _site_in(base: Path) -> Site:
    return Site(base, name=f"campus{secrets.token_hex(3)}")


def test_root_refuses_a_store_whose_folders_a_user_can_rename(mu_shared, mu_users):
    """The store sits in a project folder bob may write (no sticky bit): bob could rename the
    store and put a link to a root-only folder in its place, and root (which worked from the
    path) moved that folder's files into its refused/. Now root refuses to start there, naming
    the folder and what to do."""
    _, bob, _ = mu_users
    proj = mu_shared / f"proj-{secrets.token_hex(3)}"
    proj.mkdir()
    os.chmod(proj, 0o777)
    s = _site_in(proj)
    s.root_home = mu_shared / f"root-home-{secrets.token_hex(3)}"   # root's own FAAS_HOME is safe
    s.dir = s.root_home / "endpoints" / s.name
    try:
        s.configure()
        p = s.faas("endpoint", "start", s.name, "--detach", check=False)
        assert p.returncode != 0, "started with a store in a folder any account may rename"
        assert str(proj) in p.stderr and "sticky" in p.stderr, p.stderr
    finally:
        s.stop()


def test_root_never_follows_a_store_swapped_after_start(site, mu_users):
    """The folder above the store was safe at start, then became writable by bob (an admin's
    chmod); bob swaps the store for his own, whose spool is a link to a root-only folder. Root
    used to move every file of that folder into its refused/; now it works on the spool it
    opened at start and never touches the other folder."""
    _, bob, _ = mu_users
    site.configure()
    site.start()
    precious = site.base / "rootonly"
    precious.mkdir(mode=0o755)
    for n in ("shadow", "sudoers"):
        (precious / n).write_text(f"root's {n}\n")
        os.chmod(precious / n, 0o600)
    os.chmod(site.base, 0o777)
    code = (
        "import os\n"
        f"store = {str(site.store)!r}; fake = os.path.join(os.environ['HOME'], 'fakestore')\n"
        "os.makedirs(os.path.join(fake, 'spool'), exist_ok=True)\n"
        f"os.symlink({str(precious)!r}, os.path.join(fake, 'spool', {site.name!r}))\n"
        "os.rename(store, store + '.real')\n"
        "os.symlink(fake, store)\n")
    p = as_user(bob, code)
    swapped = time.time()
    try:
        assert p.returncode == 0, p.stderr
        site.stepped_after(swapped)   # the router has looked at "the spool" since the swap
        assert sorted(os.listdir(precious)) == ["shadow", "sudoers"]
    finally:
        if site.store.is_symlink():
            site.store.unlink()
            os.rename(str(site.store) + ".real", site.store)
        os.chmod(site.base, 0o755)


def test_root_never_takes_over_a_users_store_root(mu_shared, mu_users):
    """The store's root folder exists and is bob's: root used to chown it to itself (following
    whatever it had become) and use it. Now it refuses, naming the owner."""
    _, bob, _ = mu_users
    base = mu_shared / f"site-{secrets.token_hex(3)}"
    base.mkdir(mode=0o755)
    s = _site_in(base)
    try:
        s.configure()
        s.store.mkdir(exist_ok=True)
        os.chown(s.store, bob.pw_uid, bob.pw_gid)
        p = s.faas("endpoint", "start", s.name, "--detach", check=False)
        assert p.returncode != 0, "started with a store root another account owns"
        assert bob.pw_name in p.stderr and "not root" in p.stderr, p.stderr
        assert s.store.stat().st_uid == bob.pw_uid
    finally:
        s.stop()
