"""A multi-user endpoint end to end, with real accounts: tasks run under the account that wrote
them (``os.getuid()`` proves it), per (user, variables) user endpoints, refusals on the client's
future and in the audit log, idle stop and restart, a restarted root endpoint."""
from __future__ import annotations

import json
import os
import signal
import time
import uuid
from pathlib import Path

import pytest
import yaml
from helpers import wait_until  # noqa: E402

pytestmark = pytest.mark.slow




def test_two_users_at_once_with_different_variables(site, mu_users):
    from concurrent.futures import ThreadPoolExecutor
    alice, bob, _ = mu_users
    site.configure()
    site.start()
    with ThreadPoolExecutor(2) as pool:
        fa = pool.submit(site.run_as, alice, n=3, delay=0.2, uec={"account": "proj-a", "walltime": "00:30:00"})
        fb = pool.submit(site.run_as, bob, n=3, uec={"account": "proj-b"})
        ra, rb = fa.result(), fb.result()
    assert [r.get("uid") for r in ra] == [alice.pw_uid] * 3, ra
    assert [r.get("uid") for r in rb] == [bob.pw_uid] * 3, rb
    st = site.status()
    assert st["multi_user"] is True and st["queue"] == f"spool://{site.store / 'spool' / site.name}"
    # clients find a multi-user endpoint by its UUID too: its record in the store carries it
    record = json.loads((site.store / "endpoints" / f"{site.name}.json").read_text())
    assert str(uuid.UUID(record["endpoint_id"])) == record["endpoint_id"], record
    ues = {u["user"]: u for u in st["user_endpoints"]}
    assert set(ues) == {alice.pw_name, bob.pw_name}
    assert ues[alice.pw_name]["variables"] == {"account": "proj-a", "walltime": "00:30:00"}
    assert ues[alice.pw_name]["variables_hash"] != ues[bob.pw_name]["variables_hash"]
    assert ues[alice.pw_name]["state"] == "running"
    # each user endpoint is an ordinary endpoint in the user's own FAAS_HOME, owned by the user
    ep = Path(alice.pw_dir) / ".faas" / "endpoints" / ues[alice.pw_name]["name"]
    assert os.stat(ep / "config.yaml").st_uid == alice.pw_uid
    assert "account: proj-a" in (ep / "config.yaml").read_text()
    assert (ep / "endpoint.log").exists()
    # a second variable set of the same user is a second user endpoint
    rc = site.run_as(alice, uec={"account": "proj-c"})
    assert rc[0].get("uid") == alice.pw_uid, rc
    names = [u["name"] for u in site.status()["user_endpoints"] if u["user"] == alice.pw_name]
    assert len(names) == 2
    done = wait_until(lambda: [a for a in site.audit() if a["outcome"] == "success"] if len(
        [a for a in site.audit() if a["outcome"] == "success"]) == 7 else None, what="7 audit lines")
    assert {a["identity"] for a in done} == {f"local:{alice.pw_name}", f"local:{bob.pw_name}"}
    assert all(a["function"] and a["task"] for a in done)
    usage = json.loads(site.faas("endpoint", "usage", site.name).stdout)
    assert usage[alice.pw_name]["success"] == 4 and usage[bob.pw_name]["success"] == 3
    assert usage[alice.pw_name]["task_hours"] > 0
    future = json.loads(site.faas("endpoint", "usage", site.name, "--since", "2999-01-01").stdout)
    assert future == {}
    # node-hours: the blocks of the user endpoints, once they end (here: when the site stops)
    site.stop()
    usage = json.loads(site.faas("endpoint", "usage", site.name).stdout)
    assert usage[alice.pw_name]["node_hours"] > 0 and usage[bob.pw_name]["node_hours"] > 0


def _spool_message(site, task_id: str, reply: str | None = None, **extra) -> str:
    msg = {"v": 1, "id": task_id, "fn": "0" * 64, "n": 1, "sent": time.time(), "rk": "A" * 43,
           "cid": "0" * 32, **extra}
    if reply:
        msg["reply"] = reply
    return json.dumps(msg)


def test_a_forged_identity_never_runs(site, mu_users):
    """A message that claims to be alice's runs as its writer (bob), or not at all; a link to
    alice's file, or a file others can write, is set aside."""
    alice, bob, _ = mu_users
    site.configure(allowed_users=[alice.pw_name])
    site.start()
    spool = site.store / "spool" / site.name
    assert oct(os.stat(spool).st_mode & 0o7777) == "0o1733"
    # bob's client says nothing about identity; a field claiming alice's is ignored all the same
    r = site.run_as(bob)
    assert r[0]["error"] == "TaskRefused" and bob.pw_name in r[0]["message"], r
    assert "allowed_users" in r[0]["message"]
    # bob writes a spool file by hand that claims alice's identity in every way a field can
    import subprocess
    import sys
    import uuid
    forged_id = str(uuid.uuid4())
    forged = _spool_message(site, forged_id, identity=f"local:{alice.pw_name}", user=alice.pw_name,
                            uid=alice.pw_uid)
    code = (f"import os\nfd=os.open({str(spool / 'forged.json')!r}, os.O_WRONLY|os.O_CREAT|os.O_EXCL, 0o600)\n"
            f"os.write(fd, {forged.encode()!r})\n"
            f"os.close(fd)\n"
            f"os.symlink('/etc/passwd', {str(spool / 'link.json')!r})\n")
    subprocess.run([sys.executable, "-c", code], user=bob.pw_uid, group=bob.pw_gid, extra_groups=[], check=True)
    wait_until(lambda: not any(spool.iterdir()), what="the spool to be emptied")
    audit = site.audit()
    forged = [a for a in audit if a.get("task") == forged_id]
    assert forged and forged[0]["identity"] == f"local:{bob.pw_name}" and forged[0]["outcome"] == "refused"
    linked = [a for a in audit if a.get("task") == "link"]
    assert linked and "symbolic link" in linked[0]["reason"]
    # nothing ran as alice: no user endpoint exists for her, nor for bob
    assert site.status()["user_endpoints"] == []
    # alice herself runs fine
    assert site.run_as(alice)[0].get("uid") == alice.pw_uid


def test_refusals_reach_the_client_and_the_audit_log(site, mu_users):
    alice, bob, carol = mu_users
    mapping = [{"DATA_TYPE": "expression_identity_mapping#1.0.0", "mappings": [
        {"source": "{username}", "match": f"local:{alice.pw_name}", "output": alice.pw_name},
        {"source": "{username}", "match": f"local:{bob.pw_name}", "output": "root"},
        {"source": "{username}", "match": f"local:{carol.pw_name}", "output": "no-such-account-xyz"},
    ]}]
    site.configure(max_user_endpoints=1, over_limit="refuse")
    (site.dir / "identity_mapping.json").write_text(json.dumps(mapping))
    site.start()
    # variables that fail the schema: the key and the schema's message
    r = site.run_as(alice, uec={"nodes_per_block": 99})
    assert r[0]["error"] == "TaskRefused" and "nodes_per_block" in r[0]["message"] \
        and "maximum" in r[0]["message"], r
    r = site.run_as(alice, uec={"account": "x\ny: 1"})
    assert r[0]["error"] == "TaskRefused" and "account" in r[0]["message"], r
    # mapped to root; to an account that does not exist
    r = site.run_as(bob)
    assert r[0]["error"] == "TaskRefused" and "root never runs" in r[0]["message"], r
    r = site.run_as(carol)
    assert r[0]["error"] == "TaskRefused" and "not a local account" in r[0]["message"], r
    # over a limit: alice holds the one user endpoint; a second variable set is refused
    assert site.run_as(alice)[0].get("uid") == alice.pw_uid
    r = site.run_as(alice, uec={"account": "other"})
    assert r[0]["error"] == "TaskRefused" and "max_user_endpoints" in r[0]["message"], r
    # denied, then no mapping at all (the mapping file is re-read when it changes)
    site.set(denied_users=[alice.pw_name])
    site.stop()
    site.start()
    r = site.run_as(alice)
    assert r[0]["error"] == "TaskRefused" and "denied_users" in r[0]["message"], r
    site.set(denied_users=[])
    site.stop()
    site.start()
    (site.dir / "identity_mapping.json").write_text(json.dumps(
        [{"DATA_TYPE": "expression_identity_mapping#1.0.0",
          "mappings": [{"source": "{username}", "match": "nobody-matches", "output": "x"}]}]))
    r = site.run_as(alice)
    assert r[0]["error"] == "TaskRefused" and "no identity mapping rule" in r[0]["message"], r
    # a function not in allowed_functions
    site.set(allowed_functions=["f" * 64])
    (site.dir / "identity_mapping.json").write_text(json.dumps(mapping))
    site.stop()
    site.start()
    r = site.run_as(alice)
    assert r[0]["error"] == "FunctionNotAllowed" and "allowed_functions" in r[0]["message"], r
    refused = [a for a in site.audit() if a["outcome"] == "refused"]
    assert len(refused) == 8, refused
    assert all(a["reason"] and a["identity"].startswith("local:") and a["function"] for a in refused)


def test_idle_user_endpoint_stops_and_comes_back(site, mu_users):
    alice = mu_users[0]
    site.configure(user_endpoint_idle_timeout=2)
    site.start()
    assert site.run_as(alice)[0].get("uid") == alice.pw_uid
    wait_until(lambda: [u for u in site.status()["user_endpoints"] if u["state"] == "stopped"],
          what="the idle user endpoint to stop")
    assert site.run_as(alice)[0].get("uid") == alice.pw_uid
    ue = wait_until(lambda: [u for u in site.status()["user_endpoints"] if u["tasks_done"] == 2],
               what="the router to see the second result")
    assert len(site.status()["user_endpoints"]) == 1 and ue[0]["state"] == "running"
    log = (site.dir / "endpoint.log").read_text()
    assert "idle for" in log and log.count("started user endpoint") == 2


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_root_endpoint_restarted_while_user_endpoints_run(site, mu_users, how):
    """Tasks in flight when the root endpoint stops (or is killed) all finish, once each."""
    import threading
    alice = mu_users[0]
    site.configure()
    site.start()
    out = {}
    t = threading.Thread(target=lambda: out.update(r=site.run_as(alice, n=6, delay=1.5, wait=200)))
    t.start()
    wait_until(lambda: any(u["tasks_running"] for u in json.loads(
        (site.dir / "multiuser.status.json").read_text()).get("user_endpoints", []))
        if (site.dir / "multiuser.status.json").exists() else False, what="tasks in flight")
    if how == "stop":
        site.stop()
    else:
        os.kill(int((site.dir / "daemon.pid").read_text()), signal.SIGKILL)
        wait_until(lambda: site.faas("endpoint", "status", site.name).stdout and
              json.loads(site.faas("endpoint", "status", site.name).stdout)["state"] == "stopped",
              what="the killed router to be gone")
    site.start()
    t.join(240)
    assert not t.is_alive()
    assert [r.get("uid") for r in out["r"]] == [alice.pw_uid] * 6, out
    if how == "kill":   # the running user endpoint was adopted, not started twice
        assert "adopted the running user endpoint" in (site.dir / "endpoint.log").read_text()


def test_started_by_a_user_it_is_single_user_and_says_so(site, mu_users):
    """The multi-user files do nothing for anyone but root: the endpoint runs single-user."""
    import subprocess
    import sys
    alice = mu_users[0]
    home = Path(alice.pw_dir) / ".faas-own"
    env = {"HOME": alice.pw_dir, "PATH": "/usr/bin:/bin", "FAAS_HOME": str(home)}
    store = Path(alice.pw_dir) / "own-store"

    def faas(*args):
        return subprocess.run([sys.executable, "-m", "faas.cli.main", *args], user=alice.pw_uid,
                              group=alice.pw_gid, extra_groups=[], env=env, cwd=alice.pw_dir,
                              capture_output=True, text=True, timeout=120)
    r = faas("endpoint", "configure", "mine", "--multi-user", "--store", store.as_uri())
    assert r.returncode == 0, r.stderr
    r = faas("endpoint", "start", "mine", "--detach")
    try:
        assert r.returncode == 0, r.stderr
        log = (home / "endpoints" / "mine" / "endpoint.log").read_text()
        assert "runs single-user" in log and "only root can run a multi-user endpoint" in log
        assert not (store / "spool").exists()
    finally:
        faas("endpoint", "stop", "mine")


# bob's own script: the endpoint's queue, opened by hand (his client would not believe the record)
RAW_SEND = """
import json, sys
import faas
from faas.store import open_queue
c = faas.client()
c._endpoints[sys.argv[1]] = open_queue(sys.argv[2])
tid = c.run(function_id=c.register_function(len), endpoint=sys.argv[1], args=("x",))
try:
    c.get_result(task_id=tid, timeout=8)
    print(json.dumps([{"task": tid, "ran": True}]))
except Exception as e:
    name = "TimeoutError" if "TaskTimeout" in type(e).__name__ else type(e).__name__
    print(json.dumps([{"task": tid, "error": name}]))
"""


def test_s3_sqs_identity_is_the_registered_key(site, mu_users, moto_url, s3_bucket):
    """On S3/SQS (the moto server), a task runs as the identity whose registered key signed it
    (two users at once, with different variables); an unregistered key never runs; a
    registered but denied identity is refused on its future."""
    import threading
    alice, bob, carol = mu_users
    from faas import signing
    arn = "arn:aws:iam::123456789012:user/{}"
    keys = {arn.format(u.pw_name): [signing.new_key(f"{u.pw_name}1")] for u in (alice, bob, carol)}
    aws = {k: os.environ[k] for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                      "AWS_DEFAULT_REGION")}
    store = f"s3://{s3_bucket}/site"
    site.faas("endpoint", "configure", site.name, "--multi-user", "--store", store, "--queue", "sqs")
    site.set(visibility_timeout=10, stop_grace=5, denied_users=[bob.pw_name])
    (site.dir / "user_signing_keys.json").write_text(json.dumps(keys))
    os.chmod(site.dir / "user_signing_keys.json", 0o600)   # secrets: the router refuses anything else
    (site.dir / "identity_mapping.json").write_text(json.dumps([
        {"DATA_TYPE": "expression_identity_mapping#1.0.0", "mappings": [
            {"source": "{username}", "match": "arn:aws:iam::123456789012:user/(.*)", "output": "{0}"}]}]))
    (site.dir / "user_environment.yaml").write_text(yaml.safe_dump(aws))   # the users' own AWS settings
    site.start()

    def run(user, key, **args):
        env_extra = dict(aws, FAAS_STORE=store, FAAS_SIGNING_KEY=key)
        return site.run_as(user, env_extra=env_extra, **args)
    r = run(alice, keys[arn.format(alice.pw_name)][0], n=2, uec={"account": "a1"})
    assert [x.get("uid") for x in r] == [alice.pw_uid] * 2, r
    # bob, who may write the shared bucket (his user endpoints must), plants a pickle at alice's
    # result; alice's client refuses it by name and never loads it (issue 14)
    import pickle
    import subprocess
    import sys

    import boto3

    from faas import serialize
    tid = r[0]["task"]
    pwned = Path(f"/tmp/faas-pwned-{tid}")
    s3 = boto3.client("s3")
    (key,) = [o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket, Prefix="site/results/")["Contents"]
              if o["Key"].endswith(tid)]

    class Pwn:
        def __reduce__(self):
            return (os.system, (f"touch {pwned}",))
    s3.put_object(Bucket=s3_bucket, Key=key, Body=serialize.frame(
        {"kind": "result", "status": "success", "task_id": tid, "n": 1}, pickle.dumps([(True, Pwn())])))
    env = dict(site.user_env(alice), **aws, FAAS_STORE=store)
    p = subprocess.run([sys.executable, "-m", "faas.cli.main", "result", tid], user=alice.pw_uid,
                       group=alice.pw_gid, extra_groups=[], env=env, cwd=alice.pw_dir,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode != 0 and "not written by the endpoint that ran it" in p.stderr, (p.stdout, p.stderr)
    assert not pwned.exists()
    both = {}

    def go(user, uec):
        both[user.pw_name] = run(user, keys[arn.format(user.pw_name)][0], n=2, uec=uec)
    threads = [threading.Thread(target=go, args=(alice, {"account": "a2"})),
               threading.Thread(target=go, args=(carol, {"account": "c1"}))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert [x.get("uid") for x in both[alice.pw_name]] == [alice.pw_uid] * 2, both
    assert [x.get("uid") for x in both[carol.pw_name]] == [carol.pw_uid] * 2, both
    ues = {(u["user"], u["variables"].get("account")) for u in site.status()["user_endpoints"]}
    assert {(alice.pw_name, "a1"), (alice.pw_name, "a2"), (carol.pw_name, "c1")} <= ues, ues
    # bob signs with a forged key (alice's key id, another secret): his client does not believe
    # the endpoint's record (no MAC under that key: faas/endpoint/registry.py), and a message he
    # puts on the queue himself never runs (set aside)
    forged = signing.new_key(f"{alice.pw_name}1")   # alice's key id, another secret
    with pytest.raises(AssertionError, match="RecordNotTrusted.*no MAC under your signing key"):
        run(bob, forged, wait=8)
    record = s3.get_object(Bucket=s3_bucket, Key=f"site/endpoints/{site.name}.json")["Body"].read()
    queue_url = json.loads(record)["queue"]
    script = site.base.parent / "raw_send.py"
    script.write_text(RAW_SEND)
    os.chmod(script, 0o644)
    p = subprocess.run([sys.executable, str(script), site.name, queue_url], user=bob.pw_uid, group=bob.pw_gid,
                       extra_groups=[], env=dict(site.user_env(bob), **aws, FAAS_STORE=store,
                                                 FAAS_SIGNING_KEY=forged), cwd=bob.pw_dir,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout.strip().splitlines()[-1])
    assert r[0]["error"] == "TimeoutError", r
    aside = [a for a in site.audit() if a["task"] == r[0]["task"]]
    assert aside and aside[0]["outcome"] == "refused" and "does not verify" in aside[0]["reason"]
    # bob with his own key: his identity, which is denied
    r = run(bob, keys[arn.format(bob.pw_name)][0])
    assert r[0]["error"] == "TaskRefused" and "denied_users" in r[0]["message"], r
    ok = [a for a in site.audit() if a["outcome"] == "success"]
    assert {a["identity"] for a in ok} == {arn.format(alice.pw_name), arn.format(carol.pw_name)}


def test_over_the_limit_a_task_waits_for_room(site, mu_users):
    """over_limit: wait — bob's task waits in the spool while alice's user endpoint holds the only
    place, and runs once it idles out."""
    alice, bob, _ = mu_users
    site.configure(max_user_endpoints=1, over_limit="wait", user_endpoint_idle_timeout=3)
    site.start()
    assert site.run_as(alice)[0].get("uid") == alice.pw_uid
    r = site.run_as(bob)
    assert r[0].get("uid") == bob.pw_uid, r
    states = {u["user"]: u["state"] for u in site.status()["user_endpoints"]}
    assert states[alice.pw_name] == "stopped" and set(states) == {alice.pw_name, bob.pw_name}
    log = (site.dir / "endpoint.log").read_text()   # bob's started only once alice's had stopped
    assert log.index(f"of {alice.pw_name} idle for") < log.index(f"for {bob.pw_name} (pid")


def test_faas_submit_and_client_run_carry_the_variables(site, mu_users):
    import subprocess
    import sys
    alice = mu_users[0]
    site.configure()
    site.start()
    work = Path(alice.pw_dir)
    (work / "calls.jsonl").write_text('{"args": []}\n{"args": []}\n')
    (work / "vars.json").write_text(json.dumps({"account": "cli-acct"}))
    for f in ("calls.jsonl", "vars.json"):
        os.chown(work / f, alice.pw_uid, alice.pw_gid)
    p = subprocess.run([sys.executable, "-m", "faas.cli.main", "submit", "--endpoint", site.name,
                        "--function", "os:getuid", "--input", "calls.jsonl", "--output", "out.jsonl",
                        "--user-endpoint-config", "vars.json"], user=alice.pw_uid, group=alice.pw_gid,
                       extra_groups=[], env=site.user_env(alice), cwd=str(work), capture_output=True,
                       text=True, timeout=240)
    assert p.returncode == 0, p.stderr
    assert [json.loads(x)["result"] for x in (work / "out.jsonl").read_text().splitlines()] == [alice.pw_uid] * 2
    r = site.run_as(alice, mode="client", uec={"account": "cli-acct"})
    assert r[0]["uid"] == alice.pw_uid
    ues = site.status()["user_endpoints"]
    assert len(ues) == 1 and ues[0]["variables"] == {"account": "cli-acct"}   # same variables, same one
    # a bad vars file is a clear error before anything is sent
    (work / "bad.json").write_text("[1, 2]")
    p = subprocess.run([sys.executable, "-m", "faas.cli.main", "submit", "--endpoint", site.name,
                        "--function", "os:getuid", "--input", "calls.jsonl", "--user-endpoint-config",
                        str(work / "bad.json")], user=alice.pw_uid, group=alice.pw_gid, extra_groups=[],
                       env=site.user_env(alice), cwd=str(work), capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "expected a JSON object" in p.stderr


def test_an_account_whose_user_endpoint_cannot_start_gets_a_clear_refusal(site, mu_users):
    """The task of an account with no home folder is refused with the reason (not left waiting)."""
    import pwd
    import secrets
    import subprocess
    name = "fmu" + secrets.token_hex(3) + "h"
    subprocess.run(["useradd", "-M", "-d", f"/nonexistent/{name}", "-s", "/bin/sh", name], check=True)
    tmp = Path(site.base) / f"{name}-client"
    try:
        nohome = pwd.getpwnam(name)
        site.configure()
        site.start()
        # the client needs a writable FAAS_HOME of its own
        tmp.mkdir(mode=0o700)
        os.chown(tmp, nohome.pw_uid, nohome.pw_gid)
        r = site.run_as(nohome, env_extra={"HOME": str(tmp), "FAAS_HOME": str(tmp / ".faas")})
        assert r[0]["error"] == "TaskRefused" and "starting the user endpoint" in r[0]["message"] \
            and "No such file or directory" in r[0]["message"], r
    finally:
        from .conftest import kill_processes_of
        kill_processes_of({pwd.getpwnam(name).pw_uid})
        subprocess.run(["userdel", "-f", name], capture_output=True)


def test_two_users_storing_the_same_function_at_once(site, mu_users):
    """The same function from two users in a shared store: each keeps a private copy in a
    folder of their own (functions/<client id>/, mode 700), which the other can neither read
    nor replace."""
    import subprocess
    import sys

    from faas.endpoint.multiuser import spool
    alice, bob, _ = mu_users
    spool.prepare(site.store.as_uri(), site.name)
    code = (
        "import faas, sys\n"
        "def same():\n    return 42\n"
        "c = faas.client()\n"
        "print(c.register_function(same), c.client_id)\n")
    out = []
    for user in (alice, bob):
        p = subprocess.run([sys.executable, "-c", code], user=user.pw_uid, group=user.pw_gid,
                           extra_groups=[], env=site.user_env(user), cwd=user.pw_dir,
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        out.append(p.stdout.split())
    (fid_a, cid_a), (fid_b, cid_b) = out
    assert fid_a == fid_b and cid_a != cid_b
    for (fid, cid), user in zip(out, (alice, bob), strict=True):
        folder = site.store / "functions" / cid
        assert os.stat(folder).st_uid == user.pw_uid and os.stat(folder).st_mode & 0o777 == 0o700
        assert os.stat(folder / fid).st_mode & 0o777 == 0o600
