"""The pieces of faas.endpoint.multiuser.lifecycle that need no accounts: site names, the
router watch of a user endpoint, killing a process tree that keeps forking."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from faas.endpoint.config import NAME_RE, check_name
from faas.endpoint.multiuser import lifecycle


def test_the_site_is_in_the_user_endpoint_name():
    a = lifecycle.site_tag("campus", "file:///shared/a", "local:///root/.faas/queues/campus")
    b = lifecycle.site_tag("campus", "file:///shared/b", "local:///root/.faas/queues/campus")
    c = lifecycle.site_tag("campus", "file:///shared/a", "sqs://faas-campus")
    assert len({a, b, c}) == 3 and all(len(x) == 8 for x in (a, b, c))
    assert lifecycle.site_tag("campus", "file:///shared/a", "local:///root/.faas/queues/campus") == a
    name = lifecycle.user_endpoint_name("campus", a, 1001, "0123456789ab")
    assert name == f"campus-{a}-u1001-01234567"
    assert lifecycle._NAME.match(name).groups() == (a, "1001")
    # a long root endpoint name is shortened, never the site or the uid: still a valid name
    long = lifecycle.user_endpoint_name("x" * 63, a, 4294967294, "f" * 12)
    assert len(long) == 63 and check_name(long) and long.endswith(f"-{a}-u4294967294-ffffffff")
    import re
    assert re.match(NAME_RE, long)


def test_grace_from_the_environment():
    assert lifecycle.gone_grace({}) is None                     # not a user endpoint: no watch
    assert lifecycle.gone_grace({"FAAS_ROUTER_GONE_GRACE": "30"}) == 30.0
    assert lifecycle.gone_grace({"FAAS_ROUTER_GONE_GRACE": "0"}) is None
    assert lifecycle.gone_grace({"FAAS_ROUTER_GONE_GRACE": "off"}) is None
    assert lifecycle.gone_grace({"FAAS_ROUTER_GONE_GRACE": "soon"}) == lifecycle.DEFAULT_GONE_GRACE


def test_router_watch_waits_its_grace_and_forgives_a_comeback(tmp_path):
    assert lifecycle.RouterWatch.from_env(tmp_path, {}) is None
    w = lifecycle.RouterWatch.from_env(tmp_path, {"FAAS_ROUTER_GONE_GRACE": "0.5"})
    w.every = 0.0
    lifecycle.write_router_file(tmp_path, lifecycle.router_stamp("campus", "abcd1234"))
    assert not w.gone() and w.gone_since is None                # this process: alive
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stamp = {"pid": dead.pid, "start": 1, "endpoint": "campus"}
    (tmp_path / lifecycle.ROUTER_FILE).write_text(json.dumps(stamp))
    assert not w.gone() and w.gone_since is not None             # gone: the grace starts
    lifecycle.write_router_file(tmp_path, lifecycle.router_stamp("campus", "abcd1234"))
    assert not w.gone() and w.gone_since is None                # a new router claimed it
    (tmp_path / lifecycle.ROUTER_FILE).write_text(json.dumps(stamp))
    assert not w.gone()
    time.sleep(0.6)
    assert w.gone()                                             # gone for longer than the grace
    # a pid reused by another process is not the router (its start time differs)
    me = lifecycle.router_stamp("campus", "abcd1234")
    assert lifecycle.router_alive(me) and not lifecycle.router_alive(dict(me, start=me["start"] + 1))
    (tmp_path / lifecycle.ROUTER_FILE).write_text("not json")
    w2 = lifecycle.RouterWatch(tmp_path, 0.01, every=0.0)
    assert not w2.gone()
    time.sleep(0.02)
    assert w2.gone()                                            # unreadable: gone (it was the user's to keep)


FORKER = r"""
import os, subprocess, sys, time
# a block: its own session, a pool in it, workers; the pool keeps forking
if sys.argv[1] == "daemon":
    subprocess.Popen([sys.executable, __file__, "block"], start_new_session=True)
elif sys.argv[1] == "block":
    subprocess.Popen([sys.executable, __file__, "worker"])
    while True:
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        time.sleep(0.05)
time.sleep(120)
"""


def test_kill_trees_ends_a_tree_that_keeps_forking(tmp_path):
    script = tmp_path / "forker.py"
    script.write_text(FORKER)
    daemon = subprocess.Popen([sys.executable, str(script), "daemon"], start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            below = _descendants(daemon.pid)
            if len(below) >= 4:
                break
            time.sleep(0.05)
        assert len(below) >= 4, below
        killed = lifecycle.kill_trees([daemon.pid])
        assert daemon.pid in killed and set(below) <= set(killed)
        daemon.wait(10)
        assert not lifecycle.wait_gone(killed, 10)
        time.sleep(0.3)   # nothing forked away meanwhile
        assert not [p for p in killed if lifecycle.alive(p)]
        assert not _descendants(daemon.pid)
    finally:
        try:
            os.killpg(daemon.pid, 9)
        except OSError:
            pass


def _descendants(root: int) -> list[int]:
    table = lifecycle.processes()
    out, frontier = [], {root}
    while frontier:
        nxt = {p for p, info in table.items() if info.ppid in frontier and info.state != "Z"}
        out += sorted(nxt)
        frontier = nxt
    return out
