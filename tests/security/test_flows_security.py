"""The flows subsystem as an attacker sees it (issue 14): each test plays the attacker.

* An HTTP Action Provider's bearer token must reach only the provider it was configured for:
  not a server on another port whose number starts with the same digits, not a look-alike
  host whose name starts with the configured one.
* Writing into the store must not approve a run: the runner accepts an approval only from a
  writer the kernel names (the owner of the decision file) who is among the approvers.
* An expression must not buy seconds of CPU or hundreds of MB with a few characters: big
  comparisons are charged by size, and ``str()`` refuses before it builds a huge string.

The approval test uses real Unix accounts (useradd), so it runs as root (CI does) and is
skipped otherwise, with the reason.
"""
from __future__ import annotations

import http.server
import json
import os
import pwd
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

import httpx
import pytest
from helpers import drive_runner, python_as

from faas.flows.actions import ActionContext, ActionUnableToRun
from faas.flows.actions import http as http_action
from faas.flows.errors import ExpressionError
from faas.flows.expressions import MAX_SIZE, MAX_STEPS, evaluate


# --- 1. bearer tokens go only to the configured provider ---------------------------------------
class _Recorder(http.server.ThreadingHTTPServer):
    """An HTTP server on 127.0.0.1 that records every request's Authorization header and answers
    like an action provider that refuses the body (400), so the client never retries."""

    def __init__(self):
        self.seen: list[str | None] = []
        super().__init__(("127.0.0.1", 0), _RecordingHandler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"

    def __enter__(self) -> _Recorder:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()
        self.server_close()


class _RecordingHandler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - the http.server spelling
        self.server.seen.append(self.headers.get("Authorization"))
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.dumps({"detail": "recorded"}).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def _run_against(url: str, tokens: dict) -> None:
    ctx = ActionContext("memory://flows-security-http", "run-1", "flow-1", "alice",   # any URL: the token's
                        config={"http": tokens, "http_allow_any_url": True})          # scope is the test
    with pytest.raises(ActionUnableToRun, match="HTTP 400"):
        http_action.HttpProvider(url).run({"op": "echo"}, "req-1", ctx)


def test_http_token_does_not_go_to_a_port_that_starts_like_the_configured_one():
    with _Recorder() as other:
        port = other.url.rsplit(":", 1)[1]
        shorter = f"http://127.0.0.1:{port[:-1]}/"   # 1876 for a server on 18765
        _run_against(other.url, {shorter: {"token": "for-the-other-port"}})
        assert other.seen == [None], "the token configured for another port was sent"
        # the control: configured for this very server, the token does arrive
        _run_against(other.url + "/", {other.url + "/": {"token": "mine"}})
        assert other.seen[-1] == "Bearer mine"


def test_http_token_does_not_go_to_a_look_alike_host(monkeypatch):
    sent: list[tuple[str, str | None]] = []

    def fake_request(method, url, headers=None, **kw):
        sent.append((url, (headers or {}).get("Authorization")))
        return httpx.Response(400, json={"detail": "no"})
    monkeypatch.setattr(http_action.httpx, "request", fake_request)
    _run_against("https://actions.example.org.attacker.net/",
                 {"https://actions.example.org/": {"token": "T"}})
    _run_against("https://actions.example.org:8443/", {"https://actions.example.org/": "T"})
    _run_against("http://actions.example.org/", {"https://actions.example.org/": "T"})
    _run_against("https://actions.example.org/ab", {"https://actions.example.org/a": "T"})
    assert [a for _, a in sent] == [None] * 4, sent


@pytest.mark.parametrize("configured,url,match", [
    ("https://actions.example.org/", "https://actions.example.org/run", True),
    ("https://actions.example.org", "https://ACTIONS.example.org:443/x/y/run", True),
    ("http://127.0.0.1:1876/", "http://127.0.0.1:1876/run", True),
    ("http://h/", "http://h:80/run", True),
    ("https://h/a", "https://h/a", True),
    ("https://h/a/", "https://h/a/b/run", True),
    ("https://actions.example.org/", "https://actions.example.org.attacker.net/run", False),
    ("https://actions.example.org/", "https://actions.example.org@attacker.net/run", False),
    ("http://127.0.0.1:1876/", "http://127.0.0.1:18765/run", False),
    ("https://h/", "http://h/run", False),
    ("https://h/", "https://h:8443/run", False),
    ("https://h/a", "https://h/ab", False),
    ("https://h/a", "https://h/a/../b/run", False),
    ("https://h/a", "https://h/a/%2e%2e/b", False),
    ("not a url", "https://h/run", False),
])
def test_token_matcher(configured, url, match):
    assert http_action.url_matches(configured, url) is match


def test_the_longest_matching_prefix_wins():
    tokens = {"https://h/": {"token": "host"}, "https://h/a": {"token": "a"}, "https://h/ab": "ab",
              "https://h:8443/": "other-port"}
    assert http_action.token_for("https://h/a/run", tokens) == "a"
    assert http_action.token_for("https://h/ab/run", tokens) == "ab"
    assert http_action.token_for("https://h/abc/run", tokens) == "host"
    assert http_action.token_for("https://other/a/run", tokens) is None


# --- 2. writing into the store does not approve a run ---------------------------------------------
#: Run as another account: ``attacker`` decides as if it were the approver (the client's own
#: check passes: it trusts the name it is given) and also writes the approval's document over
#: with a SUCCEEDED one, the way deciding used to work; ``approver`` simply decides.
DECIDER = r'''
import json, sys
from faas.store import open_store
from faas.flows.actions.approval import decide

a = json.loads(sys.argv[1])
decided = decide(a["store"], a["run_id"], True, by=a["approver"], comment=a["role"])
if a["role"] == "attacker":
    key = "flows/actions/approval/%s.json" % a["action_id"]
    forged = {"action_id": a["action_id"], "run_id": a["run_id"], "kind": "approval",
              "status": "SUCCEEDED", "display_status": "Approved by " + a["approver"],
              "details": {"approved": True, "approved_by": a["approver"], "comment": "forged"},
              "request_id": a["request_id"], "flow_id": a["flow_id"]}
    open_store(a["store"]).put(key, json.dumps(forged).encode())
print(json.dumps(decided))
'''

APPROVAL_FLOW = {"StartAt": "Ask", "States": {
    "Ask": {"Type": "Action", "ActionUrl": "faas://approval", "WaitTime": 600,
            "Parameters": {"message": "publish?", "approvers.$": "$.approvers"},
            "ResultPath": "$.approval", "Next": "Publish"},
    "Publish": {"Type": "Pass", "Result": "published", "ResultPath": "$.published", "End": True}}}


@pytest.fixture(scope="module")
def accounts():
    """Two fresh accounts, ``<tag>a`` (the approver) and ``<tag>m`` (the attacker), deleted with
    their homes at the end."""
    if os.geteuid() != 0:
        pytest.skip("the approval test needs root: it creates Unix accounts with useradd")
    if not (shutil.which("useradd") and shutil.which("userdel")):
        pytest.skip("the approval test needs useradd and userdel")
    tag = "ffs" + secrets.token_hex(3)
    made = []
    try:
        for n in (tag + "a", tag + "m"):
            subprocess.run(["useradd", "-m", "-s", "/bin/sh", n], check=True, capture_output=True)
            made.append(pwd.getpwnam(n))
        probe = python_as(made[0], "-c", "import faas")
        if probe.returncode != 0:
            pytest.skip(f"a test account cannot run `{sys.executable} -c 'import faas'` "
                        f"({probe.stderr.strip()[-300:]}); CI must make the install reachable")
        yield made[0], made[1]
    finally:
        for u in made:   # their commands ran to their end (subprocess.run): nothing is left
            subprocess.run(["userdel", "-r", "-f", u.pw_name], capture_output=True)


def _open_up(store: Path) -> None:
    """The store as anyone may write it (a folder shared too widely): every folder 777, every
    file readable. What the runner writes later is private again, so this is redone."""
    for folder, _, files in os.walk(store):
        os.chmod(folder, 0o777)
        for f in files:
            os.chmod(os.path.join(folder, f), 0o644)
    decisions = store / "flows" / "actions" / "approval-decisions"
    decisions.mkdir(parents=True, exist_ok=True)
    os.chmod(decisions, 0o1777)   # as a site sets it up: sticky, so no one removes another's


@pytest.mark.slow
def test_only_an_approver_the_kernel_names_approves_a_run(accounts, faas_home, caplog):
    from faas.flows import FlowsClient
    from faas.flows.actions.approval import pending
    from faas.flows.runner import Runner

    approver, attacker = accounts
    base = Path(tempfile.mkdtemp(prefix="faas-flows-sec-", dir="/tmp"))
    os.chmod(base, 0o755)
    try:
        store = base / "store"
        url = store.as_uri()
        me = FlowsClient(url, identity=f"local:{pwd.getpwuid(os.geteuid()).pw_name}")
        runner = Runner(url)
        flow = me.deploy(APPROVAL_FLOW)
        run_id = me.start(flow["id"], {"approvers": [approver.pw_name]})["run_id"]
        drive_runner(runner, lambda: me.get_run(run_id)["status"] == "INACTIVE", 30)
        assert me.get_run(run_id)["status"] == "INACTIVE", me.get_run(run_id)
        [waiting] = pending(url, run_id)
        args = {"store": url, "run_id": run_id, "action_id": waiting["action_id"],
                "request_id": waiting["request_id"], "flow_id": flow["id"],
                "approver": approver.pw_name}

        _open_up(store)
        attack = python_as(attacker, "-c", DECIDER, json.dumps(dict(args, role="attacker")))
        assert attack.returncode == 0, attack.stderr
        me.resume_run(run_id)   # the runner looks at the approval now
        drive_runner(runner, lambda: (me.get_run(run_id)["status"] not in ("ACTIVE", "INACTIVE")
                                or f"by local:{attacker.pw_name}" in caplog.text), 30)
        run = me.get_run(run_id)
        assert run["status"] == "INACTIVE", f"the attacker's decision moved the run on: {run}"
        assert f"by local:{attacker.pw_name}" in caplog.text        # its decision, ignored
        assert f"written by local:{attacker.pw_name}" in caplog.text   # its forged document
        assert [d["action_id"] for d in pending(url, run_id)] == [waiting["action_id"]]

        _open_up(store)
        decided = python_as(approver, "-c", DECIDER, json.dumps(dict(args, role="approver")))
        assert decided.returncode == 0, decided.stderr
        me.resume_run(run_id)
        drive_runner(runner, lambda: me.get_run(run_id)["status"] not in ("ACTIVE", "INACTIVE"), 30)
        run = me.get_run(run_id)
        assert run["status"] == "SUCCEEDED", run
        assert run["output"]["approval"]["details"]["approved_by"] == approver.pw_name
        assert run["output"]["approval"]["details"]["comment"] == "approver"
        assert run["output"]["published"] == "published"
        runner.queue.destroy()
    finally:
        shutil.rmtree(base, ignore_errors=True)


# --- 3. expressions pay for what they make the runner do -----------------------------------------
def _cpu(fn):
    t = time.process_time()
    try:
        return fn(), time.process_time() - t
    except ExpressionError as e:
        return e, time.process_time() - t


def test_comparing_big_lists_again_and_again_is_refused_quickly():
    names = {"a": [list(range(1000)) for _ in range(1000)],      # two equal, distinct lists of
             "b": [list(range(1000)) for _ in range(1000)]}      # a million numbers in all
    expr = " and ".join(["a == b"] * 800)                          # ~6 s of CPU before the fix
    out, cpu = _cpu(lambda: evaluate(expr, names))
    assert isinstance(out, ExpressionError), f"evaluated to {out!r} in {cpu:.1f} s of CPU"
    assert f"> {MAX_STEPS}" in str(out) and "compar" in str(out)
    assert cpu < 2.0


def test_comparing_lists_made_by_repetition_is_refused_quickly():
    big = "[[0] * 10000] * 10000"     # 10**8 numbers, 80 KB of memory: the items are shared
    out, cpu = _cpu(lambda: evaluate(f"({big} == {big}) and " * 100 + "true", {}))
    assert isinstance(out, ExpressionError), f"evaluated to {out!r} in {cpu:.1f} s of CPU"
    assert "too large" in str(out) or f"> {MAX_STEPS}" in str(out)
    assert cpu < 2.0


def test_in_and_max_over_big_lists_are_charged():
    names = {"a": [list(range(10000)) for _ in range(100)],       # rows that differ from x only
             "x": list(range(9999)) + [-1]}                       # at their last number
    for expr in ["x in a", "max(a) == x"]:
        out, cpu = _cpu(lambda expr=expr: evaluate(" and ".join([f"not ({expr})"] * 300), names))
        assert isinstance(out, ExpressionError), f"{expr}: {out!r} in {cpu:.1f} s of CPU"
        assert f"> {MAX_STEPS}" in str(out), (expr, out)
        assert cpu < 2.0


def test_str_of_a_huge_structure_is_refused_before_it_is_built():
    names = {"a": [list(range(1000)) for _ in range(100)]}     # str(a) alone: ~490 KB
    expr = "str([" + ", ".join(["a"] * 300) + "])"             # would be ~150 MB of text
    tracemalloc.start()
    try:
        out, cpu = _cpu(lambda: evaluate(expr, names))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert isinstance(out, ExpressionError), f"built {len(out)} characters"
    assert peak < 8 * 2**20, f"{peak / 2**20:.0f} MB allocated before the refusal"
    assert "str()" in str(out) and f"{MAX_SIZE}" in str(out)
    assert cpu < 2.0
