"""A multi-user endpoint's life and death, as an operator sees it (issue 15, item 5):

- ``faas endpoint stop`` ends the whole tree (router, user endpoints, their pools) even when the
  router is stuck: SIGTERM, then SIGKILL after the grace;
- a user endpoint whose router is gone (kill -9) exits by itself after a bounded grace, but a
  router restarted within that grace adopts it again;
- two root endpoints of the same name with different stores (a test and a production site, or
  one re-created with another store) never share a user endpoint, and a user's task runs on the
  one it was sent to.
"""
from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path

import pytest
import yaml
from helpers import wait_until

from .conftest import Site

pytestmark = pytest.mark.slow


def _stat(pid: int) -> str | None:
    """The state letter of ``pid`` (None when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def _alive(pid: int) -> bool:
    return _stat(pid) not in (None, "Z")   # a zombie runs nothing: it only waits to be reaped


def _live_processes_of(uids: set[int]) -> list[str]:
    """'pid uid cmdline' of every process of these accounts that is not a zombie."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            uid = os.stat(f"/proc/{entry}").st_uid
            if uid not in uids or not _alive(int(entry)):
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            out.append(f"{entry} {uid} {cmd}")
        except OSError:
            continue
    return out


def _router_pid(site: Site) -> int:
    return int((site.dir / "daemon.pid").read_text())


def _user_endpoints(site: Site) -> list[dict]:
    return json.loads((site.dir / "multiuser.status.json").read_text())["user_endpoints"]


def _kill_if_alive(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


def test_stop_ends_a_stuck_router_and_all_its_user_endpoints(site, mu_users):
    """The router is frozen (SIGSTOP: it can no longer act on SIGTERM): `faas endpoint stop`
    still returns within its grace plus a bound, and no process of the router, of the user
    endpoints or of their pools is left."""
    alice, bob, _ = mu_users
    site.configure()
    site.start()
    assert site.run_as(alice, uec={"account": "a"})[0].get("uid") == alice.pw_uid
    assert site.run_as(bob)[0].get("uid") == bob.pw_uid
    ues = _user_endpoints(site)
    assert {u["user"] for u in ues if u["state"] == "running"} == {alice.pw_name, bob.pw_name}
    assert _live_processes_of({alice.pw_uid}) and _live_processes_of({bob.pw_uid})
    router = _router_pid(site)
    os.kill(router, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        p = site.faas("endpoint", "stop", site.name, "--timeout", "8", check=False)
        took = time.monotonic() - t0
        assert p.returncode == 0, f"stop failed ({p.returncode}):\n{p.stdout}\n{p.stderr}"
        assert took < 8 + 25, f"stop took {took:.1f} s"
        assert "stopped" in p.stdout
        # everything is gone (at most zombies waiting for their parent's reaper)
        wait_until(lambda: not _alive(router), timeout=10, what="the router to be gone")
        wait_until(lambda: not _live_processes_of({alice.pw_uid, bob.pw_uid}), timeout=10,
              what="no process of the user endpoints")
        st = site.status()
        assert st["state"] == "stopped", st
        log = (site.dir / "endpoint.log").read_text()
        assert "started multi-user" in log
    finally:
        _kill_if_alive(router)


def test_stop_of_a_healthy_router_leaves_nothing_running(site, mu_users):
    """The ordinary stop: the router stops its user endpoints itself, and nothing of theirs is left."""
    alice = mu_users[0]
    site.configure()
    site.start()
    assert site.run_as(alice)[0].get("uid") == alice.pw_uid
    router = _router_pid(site)
    p = site.faas("endpoint", "stop", site.name, "--timeout", "60")
    assert "stopped" in p.stdout
    wait_until(lambda: not _alive(router), timeout=10, what="the router to be gone")
    wait_until(lambda: not _live_processes_of({alice.pw_uid}), timeout=10, what="no process of alice's")


def _with_gone_grace(site: Site, seconds: float) -> None:
    env_file = site.dir / "user_environment.yaml"
    env = yaml.safe_load(env_file.read_text()) or {}
    env["FAAS_ROUTER_GONE_GRACE"] = seconds
    env_file.write_text(yaml.safe_dump(env))


def test_a_user_endpoint_exits_by_itself_when_its_router_is_killed(site, mu_users):
    alice = mu_users[0]
    site.configure()
    _with_gone_grace(site, 3)
    site.start()
    assert site.run_as(alice)[0].get("uid") == alice.pw_uid
    ue = [u for u in _user_endpoints(site) if u["state"] == "running"][0]
    assert _alive(ue["pid"])
    router = _router_pid(site)
    os.kill(router, signal.SIGKILL)
    t0 = time.monotonic()
    # the grace (3 s), one look a second, then its ordinary stop (its pools hand back their tasks)
    wait_until(lambda: not _live_processes_of({alice.pw_uid}), timeout=3 + 30,
          what="the orphaned user endpoint and its pools to exit")
    assert time.monotonic() - t0 >= 2.5, "it must wait its grace: a router restart re-adopts it"
    log = (Path(alice.pw_dir) / ".faas" / "endpoints" / ue["name"] / "endpoint.log").read_text()
    assert "gone" in log and "FAAS_ROUTER_GONE_GRACE" in log, log[-2000:]


def test_a_router_restarted_within_the_grace_keeps_its_user_endpoints(site, mu_users):
    alice = mu_users[0]
    site.configure()
    _with_gone_grace(site, 4)
    site.start()
    assert site.run_as(alice)[0].get("uid") == alice.pw_uid
    pid = [u for u in _user_endpoints(site) if u["state"] == "running"][0]["pid"]
    os.kill(_router_pid(site), signal.SIGKILL)
    wait_until(lambda: site.status()["state"] == "stopped", timeout=20, what="the killed router to be gone")
    site.start()
    assert "adopted the running user endpoint" in (site.dir / "endpoint.log").read_text()
    time.sleep(4 + 4)   # longer than the grace: the new router told it that it is alive
    assert _alive(pid)
    assert site.run_as(alice)[0].get("uid") == alice.pw_uid
    running = [u for u in _user_endpoints(site) if u["state"] == "running"]
    assert [u["pid"] for u in running] == [pid]


def _twin(site: Site, mu_shared: Path, tag: str) -> Site:
    """Another root endpoint of the same name, with its own store and root FAAS_HOME."""
    base = mu_shared / f"{site.base.name}-{tag}"
    base.mkdir(mode=0o755)
    os.chmod(base, 0o755)
    return Site(base, name=site.name)


def test_two_sites_of_the_same_name_never_share_a_user_endpoint(site, mu_users, mu_shared):
    """A test and a production site of the same name, both running, each with its own store:
    alice's tasks run on the site she sent them to, by a user endpoint of that site."""
    alice = mu_users[0]
    other = _twin(site, mu_shared, "test")
    site.configure()
    site.start()
    try:
        assert site.run_as(alice)[0].get("uid") == alice.pw_uid
        other.configure()
        other.start()
        r = other.run_as(alice, wait=60)
        assert r[0].get("uid") == alice.pw_uid, r
        mine, theirs = _user_endpoints(site), _user_endpoints(other)
        assert len(mine) == 1 and len(theirs) == 1
        assert mine[0]["name"] != theirs[0]["name"] and mine[0]["pid"] != theirs[0]["pid"]
        for u in mine + theirs:   # <endpoint>-<site hash>-u<uid>-<variables hash>
            assert re.fullmatch(rf"{site.name}-[0-9a-f]{{8}}-u{alice.pw_uid}-[0-9a-f]{{8}}", u["name"]), u
        # each user endpoint serves its own site's store
        for s, u in ((site, mine[0]), (other, theirs[0])):
            cfg = yaml.safe_load((Path(alice.pw_dir) / ".faas" / "endpoints" / u["name"] / "config.yaml").read_text())
            assert cfg["store"] == s.store.as_uri()
        # and the first site still runs alice's tasks on its own user endpoint
        assert site.run_as(alice)[0].get("uid") == alice.pw_uid
        # each router saw its own results (its audit log: written once it read the result)
        wait_until(lambda: [a["outcome"] for a in site.audit()] == ["success", "success"], timeout=20,
              what="two successes in the first site's audit log")
        wait_until(lambda: [a["outcome"] for a in other.audit()] == ["success"], timeout=20,
              what="one success in the second site's audit log")
    finally:
        other.stop()
        other.kill_user_endpoints_by_state()


def test_a_site_recreated_with_another_store_does_not_adopt_the_old_user_endpoint(site, mu_users, mu_shared):
    """The root endpoint is killed (its user endpoint keeps running, against the old store),
    then configured again in place with another store: the new router must not take the old
    user endpoint as its own; alice's task runs, on the new store."""
    alice = mu_users[0]
    site.configure()
    site.start()
    assert site.run_as(alice)[0].get("uid") == alice.pw_uid
    old = [u for u in _user_endpoints(site) if u["state"] == "running"][0]
    os.kill(_router_pid(site), signal.SIGKILL)
    wait_until(lambda: site.status()["state"] == "stopped", timeout=20, what="the killed router to be gone")
    assert _alive(old["pid"])
    # the same endpoint (same folder, same state file), another store
    new_store = site.base / "store2"
    site.set(store=new_store.as_uri())
    site.store = new_store
    site.start()
    r = site.run_as(alice, wait=60)
    assert r[0].get("uid") == alice.pw_uid, r
    log = (site.dir / "endpoint.log").read_text()
    assert "adopted the running user endpoint" not in log.split("started multi-user")[-1]
    assert "not adopting" in log and old["name"] in log
    now = [u for u in _user_endpoints(site) if u["state"] == "running"]
    assert len(now) == 1 and now[0]["name"] != old["name"] and now[0]["pid"] != old["pid"]
    assert (new_store / "results").exists()


def test_a_router_that_lost_its_state_adopts_only_a_user_endpoint_of_its_own_site(site, mu_users):
    """The state file is lost while a user endpoint runs: the router finds it by its name and
    adopts it if it serves this site's store; a daemon of that name serving another store is
    never handed a task: the task is refused with the reason."""
    alice = mu_users[0]
    site.configure()
    site.start()
    assert site.run_as(alice)[0].get("uid") == alice.pw_uid
    ue = [u for u in _user_endpoints(site) if u["state"] == "running"][0]

    def kill_router_and_state():
        os.kill(_router_pid(site), signal.SIGKILL)
        wait_until(lambda: site.status()["state"] == "stopped", timeout=20, what="the killed router to be gone")
        (site.dir / "user_endpoints.json").unlink()
    kill_router_and_state()
    site.start()
    assert site.run_as(alice)[0].get("uid") == alice.pw_uid
    assert [u["pid"] for u in _user_endpoints(site) if u["state"] == "running"] == [ue["pid"]]
    assert "found running" in (site.dir / "endpoint.log").read_text()
    # the same name, another store (as its config.yaml says): a stranger
    kill_router_and_state()
    cfg_path = Path(alice.pw_dir) / ".faas" / "endpoints" / ue["name"] / "config.yaml"
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg["store"] = (site.base / "elsewhere").as_uri()
    cfg_path.write_text(yaml.safe_dump(cfg))
    site.start()
    r = site.run_as(alice, wait=60)
    assert r[0].get("error") == "TaskRefused" and "already runs" in r[0]["message"] \
        and "elsewhere" in r[0]["message"], r
    assert _alive(ue["pid"])   # left alone: not ours to stop
