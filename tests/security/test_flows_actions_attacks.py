"""The flows actions and runner as a user of a shared login node sees them, where the flows
runner (root here, or a service account) has more rights than the users whose folders are in its
collections and who write commands and runs into its store. Each test plays the attacker with a
real Unix account (useradd), so the module runs as root (CI does) and is skipped otherwise.

* A folder of the attacker's in a collection is swapped for a link to a root-only folder after
  the transfer action checked it (a hook on the check: the attacker winning the race, made
  deterministic): the runner must not read root's file, write into root's folder or delete
  root's file through it; ``ls`` must not describe what a planted link points to.
* Files the attacker writes into the store must not be believed: an action document (a plan to
  copy root's file) planted for an action id they can compute, a set_permission rule rewritten
  to name them, their run's request rewritten to name a permission manager, a timer rewritten
  to name another owner, a link planted at the runner's lock file.
* A flow's ``RunAs`` is a name its author writes: it does not make them a permission manager.
* The site's SMTP login mails only the recipients, as only the senders, that the site lists.
"""
from __future__ import annotations

import email
import email.policy
import json
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from helpers import DEPLOY_AND_START, drive_runner, open_to_users, python_as

from faas.flows.actions import ActionContext, transfer
from faas.flows.actions.transfer import DeleteProvider, TransferProvider

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not all(shutil.which(c) for c in ("useradd", "userdel", "runuser")),
    reason="plays the attacker with a real Unix account: needs root, useradd, userdel and runuser")

SECRET = "root's secret: not for users\n"


@pytest.fixture(scope="module")
def attacker() -> pwd.struct_passwd:
    name = "ffa" + secrets.token_hex(3)
    subprocess.run(["useradd", "-m", "-s", "/bin/sh", name], check=True, capture_output=True)
    try:
        yield pwd.getpwnam(name)
    finally:
        subprocess.run(["userdel", "-r", "-f", name], capture_output=True)


def as_user(user: pwd.struct_passwd, *cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(["runuser", "-u", user.pw_name, "--", *cmd], capture_output=True,
                          text=True, timeout=60)


def chown_tree(path: Path, user: pwd.struct_passwd) -> None:
    for d, dirs, files in os.walk(path):
        for n in [d, *(os.path.join(d, x) for x in dirs + files)]:
            os.chown(n, user.pw_uid, user.pw_gid)


@pytest.fixture
def site(attacker, tmp_path):
    """A collection (root's, 755) holding the attacker's own folder, and beside it a root-only
    folder (700) with a secret file (600)."""
    base = Path(tempfile.mkdtemp(prefix="faas-toctou-", dir="/tmp"))
    os.chmod(base, 0o755)
    coll, victim = base / "coll", base / "victim"
    mine = coll / attacker.pw_name
    for d in ("in", "out", "src", "dst", "old"):
        (mine / d).mkdir(parents=True)
    (mine / "in" / "secret").write_text("my own decoy\n")
    (mine / "src" / "evil").write_text("* * * * * root echo owned\n")
    (mine / "old" / "secret").write_text("my own file\n")
    chown_tree(mine, attacker)
    os.chmod(coll, 0o755)
    victim.mkdir(mode=0o700)
    (victim / "secret").write_text(SECRET)
    os.chmod(victim / "secret", 0o600)
    ctx = ActionContext((tmp_path / "store").as_uri(), "run-toctou", "flow-toctou",
                        attacker.pw_name, config={"collections": {"coll": coll.as_uri()},
                                                  "transfer": {"allow_urls": False}})
    yield mine, victim, ctx
    shutil.rmtree(base, ignore_errors=True)


def swap_for_link(user: pwd.struct_passwd, folder: Path, target: Path):
    """What the attacker does once the runner has checked: their folder becomes a link."""
    def swap() -> None:
        done = as_user(user, "sh", "-c", 'mv "$1" "$1.was" && ln -s "$2" "$1"', "sh",
                       str(folder), str(target))
        assert done.returncode == 0, done.stderr
    return swap


def once_after(monkeypatch, name: str, swap, nth: int = 1) -> None:
    """Run ``swap`` right after the ``nth`` call of ``transfer.<name>`` (the check, or the last
    step before the use): the attacker wins the race every time."""
    orig = getattr(transfer, name)
    calls: list = []

    def hooked(*args, **kwargs):
        out = orig(*args, **kwargs)
        calls.append(True)
        if len(calls) == nth:
            swap()
        return out
    monkeypatch.setattr(transfer, name, hooked)


def finish(provider, doc: dict, ctx: ActionContext) -> dict:
    deadline = time.monotonic() + 60
    while doc["status"] not in ("SUCCEEDED", "FAILED") and time.monotonic() < deadline:
        time.sleep(0.05)
        doc = provider.status(doc["action_id"], ctx)
    return doc


def copy(ctx: ActionContext, src: str, dst: str) -> dict:
    p = TransferProvider()
    body = {"source_endpoint_id": "coll", "destination_endpoint_id": "coll",
            "transfer_items": [{"source_path": src, "destination_path": dst}]}
    return finish(p, p.run(body, uuid.uuid4().hex, ctx), ctx)


def test_a_source_folder_swapped_after_the_check_is_not_read_through(site, attacker, monkeypatch):
    mine, victim, ctx = site
    me = attacker.pw_name
    # each file: the destination is checked, then the source; the swap follows the source's check
    once_after(monkeypatch, "_escapes", swap_for_link(attacker, mine / "in", victim), nth=2)
    doc = copy(ctx, f"/{me}/in/secret", f"/{me}/out/secret")
    got = as_user(attacker, "cat", str(mine / "out" / "secret"))
    assert SECRET not in got.stdout, "the runner copied root's file into the attacker's folder"
    assert doc["status"] == "FAILED", doc
    assert "symbolic link" in doc["details"]["message"], doc["details"]


def test_a_destination_folder_swapped_after_the_check_is_not_written_through(site, attacker,
                                                                               monkeypatch):
    mine, victim, ctx = site
    me = attacker.pw_name
    once_after(monkeypatch, "_escapes", swap_for_link(attacker, mine / "dst", victim))
    doc = copy(ctx, f"/{me}/src/evil", f"/{me}/dst/evil")
    assert sorted(os.listdir(victim)) == ["secret"], "the runner wrote into root's folder"
    assert doc["status"] == "FAILED", doc
    assert "symbolic link" in doc["details"]["message"], doc["details"]


def test_a_folder_swapped_before_a_delete_does_not_delete_root_s_file(site, attacker, monkeypatch):
    mine, victim, ctx = site
    me = attacker.pw_name
    # the path was checked when the action was planned; the swap lands before the job opens it
    once_after(monkeypatch, "open_url", swap_for_link(attacker, mine / "old", victim))
    p = DeleteProvider()
    doc = finish(p, p.run({"endpoint_id": "coll", "items": [f"/{me}/old/secret"]},
                          uuid.uuid4().hex, ctx), ctx)
    assert (victim / "secret").read_text() == SECRET, "the runner deleted root's file"
    assert doc["status"] == "FAILED", doc
    assert "symbolic link" in doc["details"]["message"], doc["details"]


def test_a_listing_does_not_describe_what_a_link_points_to(site, attacker):
    """ls through the runner: a link the attacker planted to root's file shows as a link, not
    with the size, owner and time of a file the attacker cannot even see."""
    from faas.flows.actions.transfer_ops import LsProvider
    mine, victim, ctx = site
    assert as_user(attacker, "ln", "-s", str(victim / "secret"), str(mine / "peek")).returncode == 0
    doc = LsProvider().run({"endpoint_id": "coll", "path": f"/{attacker.pw_name}/"},
                           uuid.uuid4().hex, ctx)
    assert doc["status"] == "SUCCEEDED", doc
    [peek] = [e for e in doc["details"]["DATA"] if e["name"] == "peek"]
    assert peek["link_target"] == str(victim / "secret")
    assert peek["size"] != len(SECRET) and peek["user"] == attacker.pw_name, peek


PLANT = r'''
import json, sys
from faas.flows.actions import ActionContext
from faas.flows.actions.base import action_id_for, new_doc
from faas.flows.actions.transfer import _plan_transfer
from faas.store import open_store

store_url, request_id, secret, coll, loot = sys.argv[1:]
ctx = ActionContext(store_url, "run", "flow", "me",      # URLs allowed: the attacker's own plan
                    config={"transfer": {"allow_urls": True}})
plan = _plan_transfer({"source_endpoint_id": "file:///", "destination_endpoint_id": coll,
                       "transfer_items": [{"source_path": secret, "destination_path": loot}]}, ctx)
aid = action_id_for("transfer", request_id)
doc = dict(new_doc("transfer", aid, request_id, ctx), _plan=plan)
open_store(store_url).put("flows/actions/transfer/%s.json" % aid, json.dumps(doc).encode())
'''


def test_an_action_document_planted_in_the_store_is_not_resumed(site, attacker):
    """The store's users may create folders in it (commands, runs): one writes the document of a
    transfer the runner is about to start (its action id is a hash of a request id the attacker
    can tell: its own run's), with a plan that copies root's file into the attacker's folder."""
    mine, victim, ctx = site
    probe = python_as(attacker, "-c", "import faas")
    if probe.returncode != 0:
        pytest.skip(f"the test account cannot import faas ({probe.stderr.strip()[-300:]})")
    store = mine.parent.parent / "store"
    store.mkdir(mode=0o755)
    os.chmod(store, 0o1777)                     # users write commands and runs here
    ctx.store_url = store.as_uri()
    rid = uuid.uuid4().hex
    me = attacker.pw_name
    planted = python_as(attacker, "-c", PLANT, ctx.store_url, rid, str(victim / "secret"),
                         ctx.config["collections"]["coll"], f"/{me}/out/loot")
    assert planted.returncode == 0, planted.stderr
    p = TransferProvider()
    body = {"source_endpoint_id": "coll", "destination_endpoint_id": "coll",
            "transfer_items": [{"source_path": f"/{me}/src/evil", "destination_path": f"/{me}/out/evil"}]}
    doc = finish(p, p.run(body, rid, ctx), ctx)
    got = as_user(attacker, "cat", str(mine / "out" / "loot"))
    assert SECRET not in got.stdout, "the runner carried out the attacker's planted plan"
    assert doc["status"] == "SUCCEEDED", doc                # the request's own plan ran instead
    assert (mine / "out" / "evil").read_text() == (mine / "src" / "evil").read_text()


# --- 2. RunAs is not an identity ------------------------------------------------------------------
GRANT_FLOW = {"StartAt": "Share", "States": {"Share": {
    "Type": "Action", "ActionUrl": "https://transfer.actions.globus.org/manage_permission",
    "RunAs": "alice",
    "Parameters": {"operation": "CREATE", "endpoint_id": "coll", "path": "/",
                   "principal_type": "identity", "principal.$": "$.me", "permissions": "rw"},
    "ResultPath": "$.share", "End": True}}}

@pytest.fixture
def runner_site(attacker, faas_home):
    """A root-only folder for the site's files and a store its users may write (commands, flows,
    runs, the doorbell); ``start(config, flow, input)`` deploys and starts ``flow`` as the
    attacker and drives a runner (root, with the site ``config``) to the run's end."""
    from faas.flows import store_layout
    from faas.flows.runner import Runner
    from faas.store import open_store

    probe = python_as(attacker, "-c", "import faas")
    if probe.returncode != 0:
        pytest.skip(f"the test account cannot import faas ({probe.stderr.strip()[-300:]}); CI must "
                    f"make the install reachable")
    base = Path(tempfile.mkdtemp(prefix="faas-runner-", dir="/tmp"))
    os.chmod(base, 0o755)
    runners = []

    def start(config: dict, flow: dict | None, input: dict | None, until: str | None = None):
        """The runner over an open store; with a ``flow``, that flow deployed and started as the
        attacker and driven to its end (or until it reaches the state ``until``): the run."""
        store = base / "store"
        url = store.as_uri()
        runner = Runner(url, config=config)
        runners.append(runner)
        open_to_users(store)
        open_to_users(base / "queues")        # the doorbell the users ring
        if flow is None:
            return runner
        started = python_as(attacker, "-c", DEPLOY_AND_START, url, json.dumps(flow),
                             json.dumps(input))
        assert started.returncode == 0, started.stderr
        run_id = started.stdout.split()[-1]
        s = open_store(url)

        def run() -> dict:
            return store_layout.get_json(s, store_layout.run_key(run_id), {})

        def there() -> bool:
            return (run().get("status") in ("SUCCEEDED", "FAILED")
                    or (until is not None and run().get("current_state") == until))
        deadline = time.monotonic() + 60
        while not there() and time.monotonic() < deadline:
            runner.serve(once=True)
            time.sleep(0.05)
        return run()
    try:
        yield base, start
    finally:
        for r in runners:
            r.queue.destroy()
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.skipif(not (shutil.which("setfacl") and shutil.which("getfacl")),
                    reason="set_permission needs setfacl/getfacl (Debian's acl)")
def test_run_as_in_a_definition_does_not_make_its_author_a_permission_manager(attacker, runner_site):
    base, start = runner_site
    coll = base / "coll"
    coll.mkdir(mode=0o700)
    payroll = coll / "payroll.txt"
    payroll.write_text(SECRET)
    os.chmod(payroll, 0o600)
    run = start({"collections": {"coll": coll.as_uri()}, "permission_managers": {"coll": ["alice"]}},
                GRANT_FLOW, {"me": attacker.pw_name})
    got = as_user(attacker, "cat", str(payroll))
    assert SECRET not in got.stdout, "a RunAs the author wrote granted them the collection"
    assert run["status"] == "FAILED", run
    assert f"'{attacker.pw_name}' may not manage permissions" in json.dumps(run)


# --- the run's and the timer's records: a user's folder, not a user's claim ------------------------
SHARE = {"Type": "Action", "ActionUrl": "https://transfer.actions.globus.org/manage_permission",
         "Parameters": {"operation": "CREATE", "endpoint_id": "coll", "path": "/",
                        "principal_type": "identity", "principal.$": "$.me", "permissions": "rw"},
         "ResultPath": "$.share", "End": True}
WAIT_THEN_SHARE = {"StartAt": "Wait", "States": {
    "Wait": {"Type": "Wait", "Seconds": 3, "Next": "Share"}, "Share": SHARE}}

CLAIM = r'''
import json, sys
from faas.store import open_store
store_url, key, patch = sys.argv[1:]
s = open_store(store_url)
try:
    doc = json.loads(s.get(key))
except Exception:                  # not there, or not readable: written whole
    doc = {}
doc.update(json.loads(patch))
s.put(key, json.dumps(doc).encode())
'''

TIMER = r'''
import json, sys, time
from faas.flows import FlowsClient, TimersClient
url, flow, me = sys.argv[1:]
flow = FlowsClient(url).deploy(json.loads(flow), starters=["alice"])
print(TimersClient(url).create(flow["id"], {"me": me}, start=time.time() + 3)["id"])
'''


def _payroll(base: Path) -> tuple[Path, dict]:
    coll = base / "coll"
    coll.mkdir(mode=0o700)
    payroll = coll / "payroll.txt"
    payroll.write_text(SECRET)
    os.chmod(payroll, 0o600)
    return payroll, {"collections": {"coll": coll.as_uri()}, "permission_managers": {"coll": ["alice"]}}


@pytest.mark.slow
@pytest.mark.skipif(not (shutil.which("setfacl") and shutil.which("getfacl")),
                    reason="set_permission needs setfacl/getfacl (Debian's acl)")
def test_a_request_rewritten_in_the_users_run_folder_does_not_make_them_another_user(
        attacker, runner_site, caplog):
    """The attacker starts their own run (checked: they sent its start), then, while it waits,
    rewrites its request to name a permission manager; the runner restarts (a reboot, an
    upgrade) and reads the run back."""
    from faas.flows import store_layout
    from faas.flows.runner import Runner
    from faas.store import open_store

    base, start = runner_site
    payroll, config = _payroll(base)
    url = (base / "store").as_uri()
    run = start(config, WAIT_THEN_SHARE, {"me": attacker.pw_name}, until="Wait")
    request = store_layout.run_key(run["run_id"], "request")
    claimed = python_as(attacker, "-c", CLAIM, url, request, json.dumps({"user": "local:alice"}))
    assert claimed.returncode == 0, claimed.stderr
    again = Runner(url, config=config)
    s = open_store(url)

    def status() -> str:
        return store_layout.get_json(s, store_layout.run_key(run["run_id"]), {}).get("status")
    drive_runner(again, lambda: status() in ("SUCCEEDED", "FAILED") or "not resumed" in caplog.text, 30)
    got = as_user(attacker, "cat", str(payroll))
    assert SECRET not in got.stdout, "a rewritten request made the attacker a permission manager"
    assert status() != "SUCCEEDED"
    assert "names user local:alice but was written by" in caplog.text


@pytest.mark.slow
@pytest.mark.skipif(not (shutil.which("setfacl") and shutil.which("getfacl")),
                    reason="set_permission needs setfacl/getfacl (Debian's acl)")
def test_a_timer_whose_owner_was_rewritten_is_not_fired_as_that_owner(attacker, runner_site,
                                                                       caplog):
    from faas.flows import store_layout

    base, start = runner_site
    payroll, config = _payroll(base)
    url = (base / "store").as_uri()
    runner = start(config, None, None)            # the runner and an open store, no run
    made = python_as(attacker, "-c", TIMER, url, json.dumps({"StartAt": "Share",
                                                              "States": {"Share": SHARE}}),
                      attacker.pw_name)
    assert made.returncode == 0, made.stderr
    tid = made.stdout.split()[-1]
    claimed = python_as(attacker, "-c", CLAIM, url, store_layout.timer_key(tid),
                         json.dumps({"owner": "local:alice"}))
    assert claimed.returncode == 0, claimed.stderr
    drive_runner(runner, lambda: "not fired" in caplog.text or can_read_now(attacker, payroll), 20)
    time.sleep(1)
    runner.serve(once=True)
    assert not can_read_now(attacker, payroll), "a timer fired as the owner its writer claimed"
    assert "names owner local:alice but was written by" in caplog.text


# The attacker's own timer on their own harmless flow: its next tick's run id is theirs to compute
# (uuid5 of the timer id and the tick's time), so they plant that run's records first, naming
# root and a definition that copies root's file to them.
PLANT_TICK = r"""
import json, sys, time
from faas.flows import FlowsClient, TimersClient, store_layout
from faas.flows.timers import tick_run_id
from faas.store import open_store
url, src, dst = sys.argv[1:]
flow = FlowsClient(url).deploy({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
t = TimersClient(url).create(flow["id"], {}, start=time.time() + 3)
s = open_store(url)
t = json.loads(s.get(store_layout.timer_key(t["id"])))
rid = tick_run_id(t["id"], t["next_run_epoch"])
steal = {"StartAt": "Steal", "States": {"Steal": {"Type": "Action", "ActionUrl": "faas://transfer",
         "ResultPath": "$.r", "End": True, "Parameters": {
         "source_endpoint_id": "file://", "destination_endpoint_id": "file://",
         "transfer_items": [{"source_path": src, "destination_path": dst}]}}}}
store_layout.put_json(s, store_layout.run_key(rid, "request"), {"run_id": rid, "flow_id": flow["id"],
    "flow_version": 1, "input": {}, "user": "local:root", "definition": steal})
store_layout.put_json(s, store_layout.run_key(rid), {"run_id": rid, "flow_id": flow["id"],
    "flow_version": 1, "status": "ACTIVE", "user": "local:root", "managers": [], "monitors": []})
print(rid)
"""


@pytest.mark.slow
def test_a_run_planted_at_a_timer_tick_is_not_started_as_the_user_it_names(attacker, runner_site, caplog):
    """Before: the runner found the tick's run "already there" (create_run's retried start) and
    began it with no sender to check, as the user and with the definition its planter wrote:
    root's file copied to the attacker."""
    from faas.flows import store_layout
    from faas.store import open_store

    base, start = runner_site
    secret = base / "rootonly" / "secret"
    secret.parent.mkdir(mode=0o700)
    secret.write_text(SECRET)
    os.chmod(secret, 0o600)
    loot = base / "loot"
    loot.mkdir()
    os.chown(loot, attacker.pw_uid, attacker.pw_gid)
    url = (base / "store").as_uri()
    runner = start({}, None, None)
    planted = python_as(attacker, "-c", PLANT_TICK, url, str(secret), str(loot / "secret"))
    assert planted.returncode == 0, planted.stderr
    rid = planted.stdout.split()[-1]
    s = open_store(url)

    def status() -> str | None:
        return store_layout.get_json(s, store_layout.run_key(rid), {}).get("status")
    drive_runner(runner, lambda: status() in ("SUCCEEDED", "FAILED"), 30)
    assert not (loot / "secret").exists(), "a planted tick run copied root's file for its planter"
    assert status() == "FAILED"
    assert f"but was written by local:{attacker.pw_name}, not the runner" in caplog.text


@pytest.mark.slow
def test_a_users_run_cannot_use_the_runners_compute_identity(attacker, runner_site, faas_home):
    """The runner (root) submits a flow's compute tasks with its own faas identity: its signing
    keys, the functions registered in its store. Before, any user's run sent them, with the run's
    arguments, to any endpoint that identity reached: here root's own, so the attacker's run ran
    root's registered function as root. Now a runner serving other users' runs submits for them
    only to the endpoints its config lists (compute.allowed_endpoints)."""
    from helpers import running_endpoint

    import faas

    _, start = runner_site
    with running_endpoint(faas_home, name="rootep"):
        c = faas.client(endpoint="rootep")
        fid = c.register_function(os.geteuid)      # an admin's function, registered for root's flows
        c.close()
        flow = {"StartAt": "C", "States": {"C": {
            "Type": "Action", "ActionUrl": "https://compute.actions.globus.org/v3",
            "Parameters": {"endpoint_id": "rootep", "function_id": fid, "args": []},
            "ResultPath": "$.r", "End": True}}}
        run = start({}, flow, {})
    assert run["status"] == "FAILED", f"the attacker's run used root's compute identity: {run}"
    assert "compute.allowed_endpoints" in json.dumps(run), run


# The attacker: timer documents that are no timers (in folders of their own, as any user may
# make), and one that is a timer of theirs whose firing fails, due now.
BROKEN_TIMERS = r"""
import json, sys, time, uuid
from faas.store import open_store
s = open_store(sys.argv[1])
for i in range(10):
    s.put(f"timers/{uuid.uuid4()}/timer.json", json.dumps(
        {"id": [i], "status": "active", "next_run_epoch": 0}).encode())
    s.put(f"timers/{uuid.uuid4()}/timer.json", json.dumps(["not", "a", "timer"]).encode())
    tid = str(uuid.uuid4())
    s.put(f"timers/{tid}/timer.json", json.dumps(
        {"id": tid, "owner": sys.argv[2], "status": "active", "next_run_epoch": 0,
         "interval": "x", "kind": "flow", "flow_id": "nope"}).encode())
print("planted")
"""


@pytest.mark.slow
def test_timer_documents_that_are_no_timers_never_stop_the_others(attacker, runner_site):
    """Users make the timers' folders. Before, one document that was no timer (a list, an id
    that is a list) made the runner's scan raise, and one timer whose firing raised ended the
    pass: every timer after it in the store's order never fired, for every user."""
    from faas.flows import FlowsClient, TimersClient, store_layout
    from faas.store import open_store

    base, start = runner_site
    url = (base / "store").as_uri()
    runner = start({}, None, None)
    (base / "store" / "timers").mkdir(mode=0o1777)   # where the site's users make their timers
    os.chmod(base / "store" / "timers", 0o1777)
    flow = FlowsClient(url).deploy({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
    mine = TimersClient(url).create(flow["id"], {}, start=time.time() + 2)   # root's own timer
    planted = python_as(attacker, "-c", BROKEN_TIMERS, url, f"local:{attacker.pw_name}")
    assert planted.returncode == 0, planted.stderr
    s = open_store(url)

    def fired() -> bool:
        t = store_layout.get_json(s, store_layout.timer_key(mine["id"]), {})
        return bool(t.get("last_run_id"))
    drive_runner(runner, fired, 30)
    assert fired(), store_layout.get_json(s, store_layout.timer_key(mine["id"]), {})


def can_read_now(user: pwd.struct_passwd, path: Path) -> bool:
    return SECRET in as_user(user, "cat", str(path)).stdout


@pytest.mark.skipif(not (shutil.which("setfacl") and shutil.which("getfacl")),
                    reason="set_permission needs setfacl/getfacl (Debian's acl)")
def test_a_permission_rule_rewritten_in_the_store_is_not_applied_for_its_writer(attacker, tmp_path):
    """alice (a permission manager) shares /shared/ with nobody; the attacker, who made the
    store's rules folder before any rule was written, rewrites the rule to name themselves and
    the whole collection, and waits for alice's flow to widen the rule to rw."""
    from faas.flows.actions import ActionUnableToRun, resolve

    probe = python_as(attacker, "-c", "import faas")
    if probe.returncode != 0:
        pytest.skip(f"the test account cannot import faas ({probe.stderr.strip()[-300:]})")
    base = Path(tempfile.mkdtemp(prefix="faas-acl-rule-", dir="/tmp"))
    os.chmod(base, 0o755)
    try:
        payroll, config = _payroll(base)
        (base / "coll" / "shared").mkdir()
        store = base / "store"
        store.mkdir()
        os.chmod(store, 0o1777)
        url = store.as_uri()
        first = python_as(attacker, "-c", CLAIM, url, "flows/acl/mine.json", "{}")
        assert first.returncode == 0, first.stderr
        ctx = ActionContext(url, "run-acl", "flow-acl", "alice", config=config)
        manage = resolve("https://transfer.actions.globus.org/manage_permission")
        made = manage.run({"operation": "CREATE", "endpoint_id": "coll", "path": "/shared/",
                           "principal_type": "identity", "principal": "nobody", "permissions": "r"},
                          uuid.uuid4().hex, ctx)
        assert made["status"] == "SUCCEEDED", made
        rule = made["details"]["access_id"]
        forged = {"rule_id": rule, "endpoint": "coll", "rel": ".", "path": "/", "tag": "u",
                  "id": attacker.pw_uid, "name": attacker.pw_name, "permissions": "r",
                  "principal_type": "identity", "principal": attacker.pw_name}
        claimed = python_as(attacker, "-c", CLAIM, url, f"flows/acl/{rule}.json", json.dumps(forged))
        assert claimed.returncode == 0, claimed.stderr
        try:
            manage.run({"operation": "UPDATE", "endpoint_id": "coll", "rule_id": rule,
                        "permissions": "rw"}, uuid.uuid4().hex, ctx)
        except ActionUnableToRun as e:
            assert "no permission rule with this id" in str(e)
        assert not can_read_now(attacker, payroll), "a rewritten rule gave its writer the collection"
    finally:
        shutil.rmtree(base, ignore_errors=True)


# --- 3. the site's SMTP login does not mail anyone, as anyone -------------------------------------
def _notify(name: str, nxt: str | None, **params) -> dict:
    """A notify state; a refusal goes on to ``nxt`` too (recorded at ``$.<name>_refused``)."""
    state = {"Type": "Action", "ActionUrl": "https://actions.globus.org/notification/notify",
             "Parameters": {"subject": name, "body_template": "click here", **params},
             "ResultPath": f"$.{name}"}
    if nxt is None:
        return dict(state, End=True)
    return dict(state, Next=nxt, Catch=[{"ErrorEquals": ["States.ALL"],
                                          "ResultPath": f"$.{name}_refused", "Next": nxt}])


MAIL_FLOW = {"StartAt": "Smuggle", "States": {
    # one list item naming two mailboxes: the checked address is not the one the server gets
    "Smuggle": _notify("Smuggle", "Outsider", destination=["ok@lab.example,boss@elsewhere.example"]),
    "Outsider": _notify("Outsider", "Spoof", destination="boss@elsewhere.example"),
    "Spoof": _notify("Spoof", "Allowed", destination="ok@lab.example", sender="ceo@site.example"),
    "Allowed": _notify("Allowed", None, destination="ok@lab.example")}}


@pytest.mark.slow
def test_a_flow_mails_only_whom_the_site_allows_as_whom_it_allows(runner_site):
    from aiosmtpd.controller import Controller
    from helpers import free_port

    class Inbox:
        def __init__(self):
            self.messages: list = []

        async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
            msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
            self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), msg))
            return "250 Message accepted for delivery"

    _, start = runner_site
    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    try:
        run = start({"notify": {"smtp": {"host": "127.0.0.1", "port": smtp.port, "security": "none",
                                         "sender": "flows@site.example"},
                                "recipients": ["*@lab.example"], "senders": ["flows@site.example"]}},
                    MAIL_FLOW, {})
    finally:
        smtp.stop()
    sent = [(frm, rcpt, msg["Subject"]) for frm, rcpt, msg in inbox.messages]
    assert sent == [("flows@site.example", ["ok@lab.example"], "Allowed")], sent
    assert run["status"] == "SUCCEEDED", run
    for name, key in (("Smuggle", "destination"), ("Outsider", "destination"), ("Spoof", "sender")):
        assert key in run["output"][f"{name}_refused"]["Cause"], run["output"]


# --- 4. the runner's lock file ---------------------------------------------------------------------
def test_a_link_planted_at_the_runner_lock_is_not_written_through(attacker):
    """Users write into the store (commands, runs); one plants ``flows/runner.lock`` as a link to
    a file of root's before the runner (root) starts: the runner must not truncate and write it."""
    from faas.flows.runner import Runner

    base = Path(tempfile.mkdtemp(prefix="faas-lock-", dir="/tmp"))
    os.chmod(base, 0o755)
    try:
        precious = base / "passwd"
        precious.write_text("root:x:0:0:root:/root:/bin/bash\n")
        flows = base / "store" / "flows"
        flows.mkdir(parents=True)
        for d in (base / "store", flows):
            os.chmod(d, 0o777)
        planted = as_user(attacker, "ln", "-s", str(precious), str(flows / "runner.lock"))
        assert planted.returncode == 0, planted.stderr
        runner = Runner((base / "store").as_uri())
        try:
            runner.acquire(wait=False)
            runner.release()
        finally:
            runner.queue.destroy()
        assert precious.read_text() == "root:x:0:0:root:/root:/bin/bash\n", "the runner wrote through"
        assert not (flows / "runner.lock").is_symlink()
    finally:
        shutil.rmtree(base, ignore_errors=True)


# --- a raw URL: the runner's rights, lent to whoever names it ------------------------------------
STEAL = {"StartAt": "Steal", "States": {"Steal": {
    "Type": "Action", "ActionUrl": "https://transfer.actions.globus.org/transfer",
    "Parameters": {"source_endpoint_id.$": "$.src", "destination_endpoint_id.$": "$.dst",
                   "DATA": [{"source_path": "/secret", "destination_path": "/loot"}]},
    "ResultPath": "$.copied", "End": True}}}


@pytest.mark.slow
def test_a_raw_url_does_not_lend_the_runners_rights_to_another_user(attacker, runner_site):
    """A root runner with no ``transfer:`` settings: the attacker's flow names a root-only folder
    by URL as the source and their own home as the destination. The runner must refuse the URL
    (it is not acting for its own account), where it used to copy root's file to them."""
    base, start = runner_site
    vault = base / "vault"
    vault.mkdir(mode=0o700)
    (vault / "secret").write_text(SECRET)
    os.chmod(vault / "secret", 0o600)
    loot = Path(attacker.pw_dir) / "loot"
    run = start({}, STEAL, {"src": vault.as_uri(), "dst": Path(attacker.pw_dir).as_uri()})
    assert not loot.exists() or SECRET not in loot.read_text(), "the runner copied root's file for the attacker"
    assert run["status"] == "FAILED", run
    assert "is not the run's user" in json.dumps(run), run


@pytest.mark.slow
def test_a_raw_url_is_honoured_where_the_site_allows_it(attacker, runner_site, tmp_path):
    """``transfer: {allow_urls: true}`` is the site's own choice: URLs then work for every run
    (here between two folders the attacker may use)."""
    base, start = runner_site
    src = base / "open"
    src.mkdir(mode=0o755)
    (src / "secret").write_text("public\n")
    os.chmod(src / "secret", 0o644)
    dst = base / "drop"
    dst.mkdir(mode=0o777)
    run = start({"transfer": {"allow_urls": True}}, STEAL, {"src": src.as_uri(), "dst": dst.as_uri()})
    assert run["status"] == "SUCCEEDED", run
    assert (dst / "loot").read_text() == "public\n"
