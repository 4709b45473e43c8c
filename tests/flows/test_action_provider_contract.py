"""One contract for every action provider, in-process and over HTTP through ``faas actions
serve`` (the app on 127.0.0.1 in a thread, driven by faas's own HttpProvider as another site's
runner would): run is idempotent by request id (the side effect happens once), status of an
unknown id is ActionNotFound, release of a running action is ActionConflict, release of a
finished one forgets it, cancel ends a running action, and a bad body is ActionUnableToRun.

Providers: transfer on file://, notify with a real SMTP server (aiosmtpd), compute with a running
embedded endpoint (slow: it starts an endpoint), and approval (in-process: it is not served).
"""
from __future__ import annotations

import email
import email.policy
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest
import uvicorn
from aiosmtpd.controller import Controller
from helpers import free_port, running_endpoint

import faas
from faas.flows.actions import DONE, ActionConflict, ActionContext, ActionNotFound, ActionUnableToRun, jobs, resolve
from faas.flows.actions.http import HttpProvider
from faas.flows.ap_server import ActionTokens, create_app

WAIT = 120.0
RUN, MANAGE, READ, OTHER = "run-token-1", "manage-token-1", "read-token-1", "run-token-2"


def append_line(path, text):
    """A function with a visible side effect: one line per run."""
    with open(path, "a") as f:
        f.write(text + "\n")
    return text


def nap(seconds):
    import time
    time.sleep(seconds)
    return seconds


class Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"


class Served:
    """``faas actions serve``'s app on a free loopback port, in a thread."""

    def __init__(self, store_url: str, config: dict):
        self.app = create_app(tokens=ActionTokens([("run", RUN), ("manage", MANAGE), ("read", READ),
                                                   ("run", OTHER)]),
                              store_url=store_url, config=config)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port,
                                                    log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "server did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Files for transfers, an SMTP server, the site config, and the AP server over them."""
    root = tmp_path_factory.mktemp("contract")
    src = root / "src"
    (src / "big").mkdir(parents=True)
    (src / "one.txt").write_bytes(b"one file\n")
    blob = os.urandom(20_000)
    for i in range(2000):                      # a copy that takes seconds (per-file checks)
        (src / "big" / f"f{i:04}.bin").write_bytes(blob + i.to_bytes(4, "big"))
    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    config = {"notify": {"smtp": {"host": "127.0.0.1", "port": smtp.port, "security": "none",
                                  "sender": "flows@site.example"}},
              # each test copies to its own folder: URLs, which the server refuses by default
              "transfer": {"allow_urls": True},
              # the in-process cases act for "alice", not the runner's account
              "compute": {"allowed_endpoints": ["*"]}}
    with Served((root / "server-store").as_uri(), config) as server:
        yield {"root": root, "src": src, "inbox": inbox, "config": config, "server": server}
    smtp.stop()


@pytest.fixture(scope="module")
def compute_fns(tmp_path_factory):
    home = tmp_path_factory.mktemp("contract-compute") / "faas-home"
    with running_endpoint(home):
        c = faas.client()
        ids = {f.__name__: c.register_function(f) for f in (append_line, nap)}
        c.close()
        yield ids


@dataclass
class Case:
    provider: object
    ctx: ActionContext
    quick: Callable[[str], dict]           # a body that finishes soon (its side effect tagged)
    effects: Callable[[str], int]          # how many times the side effect of a tag happened
    slow: dict | None                      # a body that runs for a while (None: synchronous)
    bad: dict                              # a body the provider refuses, and the key it names
    bad_key: str
    prefix: str | None                     # its path on the server (None: not served)
    #: what ends a quick action from outside (approval: a person decides); nothing for most
    after_run: Callable[[dict, ActionContext], None] = lambda doc, ctx: None

    def run_quick(self, tag: str, rid: str) -> dict:
        doc = self.provider.run(self.quick(tag), rid, self.ctx)
        self.after_run(doc, self.ctx)
        return doc


def _transfer(world, tmp_path, monkeypatch) -> Case:
    # a running copy looks for a cancel at each heartbeat (5 s on a site): sooner here
    monkeypatch.setattr(jobs, "HEARTBEAT", 0.05)
    dst = tmp_path / "dst"
    src = world["src"].as_uri()

    def quick(tag):
        return {"source_endpoint_id": src, "destination_endpoint_id": dst.as_uri(),
                "transfer_items": [{"source_path": "/one.txt", "destination_path": f"/{tag}.txt"}]}
    return Case(resolve("faas://transfer"), None, quick,
                lambda tag: int((dst / f"{tag}.txt").exists()),
                {"source_endpoint_id": src, "destination_endpoint_id": dst.as_uri(),
                 "transfer_items": [{"source_path": "/big", "destination_path": "/big",
                                     "recursive": True}]},
                {"source_endpoint_id": src, "destination_endpoint_id": dst.as_uri()},
                "transfer_items", "/transfer/transfer")


def _notify(world, tmp_path) -> Case:
    inbox = world["inbox"]
    return Case(resolve("https://actions.globus.org/notification/notify"), None,
                lambda tag: {"destination": "curator@lab.example", "subject": tag,
                             "body_template": "done"},
                lambda tag: sum(m["Subject"] == tag for m in inbox.messages),
                None, {"subject": "no one to send to", "body_template": "x"}, "destination",
                "/notify")


def _compute(world, tmp_path, fns) -> Case:
    marks = tmp_path / "marks"
    marks.mkdir()
    return Case(resolve("https://compute.actions.globus.org/v3"), None,
                lambda tag: {"endpoint": "local", "function": fns["append_line"],
                             "args": [str(marks / tag), tag]},
                lambda tag: len((marks / tag).read_text().splitlines()) if (marks / tag).exists() else 0,
                {"endpoint": "local", "function": fns["nap"], "args": [60]},
                {"endpoint": "local"}, "function", "/compute")


def _approval(world, tmp_path) -> Case:
    """In-process only: the server does not serve approvals."""
    import json

    from faas.flows import access
    from faas.flows.actions import approval
    me = access.identity_of_uid(os.getuid())
    store = tmp_path / "store"

    def decide(doc, ctx):
        if doc["status"] == "INACTIVE":
            approval.write_decision(ctx.store_url, ctx.run_id, doc["action_id"], True, me, "ok")

    def effects(tag):
        docs = [json.loads(f.read_text()) for f in (store / "flows/actions/approval").glob("*.json")]
        return sum(d["details"].get("message") == tag for d in docs)
    return Case(resolve("faas://approval"), None,
                lambda tag: {"message": tag, "approvers": [me]}, effects,
                {"message": "waits", "approvers": [me]}, {"approvers": "everyone"}, "approvers",
                None, decide)


PROVIDERS = ["transfer", "notify", "approval", "compute"]
#: every provider in-process, and over HTTP each one the server serves (not approval: a person's
#: decision belongs to a run on this site); compute's cases start an endpoint: slow
CASES = [pytest.param((kind, transport), id=f"{kind}-{transport}",
                      marks=[pytest.mark.slow] if kind == "compute" else [])
         for kind in PROVIDERS for transport in ("in-process", "http")
         if (kind, transport) != ("approval", "http")]


@pytest.fixture(params=CASES)
def case(request, world, tmp_path, monkeypatch) -> Case:
    kind, transport = request.param
    if kind == "compute":
        c = _compute(world, tmp_path, request.getfixturevalue("compute_fns"))
    else:
        c = {"transfer": lambda: _transfer(world, tmp_path, monkeypatch),
             "notify": lambda: _notify(world, tmp_path),
             "approval": lambda: _approval(world, tmp_path)}[kind]()
    assert transport == "in-process" or c.prefix is not None
    if transport == "in-process":
        c.ctx = ActionContext((tmp_path / "store").as_uri(), "run-k", "flow-k", "alice",
                              config=world["config"])
    else:
        server = world["server"]
        c.provider = HttpProvider(server.url + c.prefix)
        c.ctx = ActionContext("memory://unused", "run-k", "flow-k", "alice",
                              config={"http": {server.url: {"token": RUN}}})
    return c


def wait_done(case: Case, doc: dict) -> dict:
    deadline = time.monotonic() + WAIT
    while doc["status"] not in DONE:
        assert time.monotonic() < deadline, f"still {doc['status']}: {doc}"
        time.sleep(min(float(doc.get("poll_after") or 0.1), 0.2))
        doc = case.provider.status(doc["action_id"], case.ctx)
    return doc


def test_run_is_idempotent_by_request_id(case):
    tag, rid = uuid.uuid4().hex[:12], uuid.uuid4().hex
    a = case.run_quick(tag, rid)
    b = case.run_quick(tag, rid)
    assert a["action_id"] == b["action_id"]
    done = wait_done(case, b)
    assert done["status"] == "SUCCEEDED", done
    c = case.provider.run(case.quick(tag), rid, case.ctx)       # after the end too
    assert c["action_id"] == a["action_id"] and c["status"] == "SUCCEEDED"
    assert case.effects(tag) == 1
    other = wait_done(case, case.run_quick(tag + "x", rid + "x"))
    assert other["action_id"] != a["action_id"] and case.effects(tag + "x") == 1


def test_unknown_action_is_not_found(case):
    for op in (case.provider.status, case.provider.cancel, case.provider.release):
        with pytest.raises(ActionNotFound):
            op("0" * 32, case.ctx)


def test_release_of_a_finished_action_forgets_it(case):
    doc = wait_done(case, case.run_quick(uuid.uuid4().hex[:12], uuid.uuid4().hex))
    released = case.provider.release(doc["action_id"], case.ctx)
    assert released["action_id"] == doc["action_id"] and released["status"] == doc["status"]
    with pytest.raises(ActionNotFound):
        case.provider.status(doc["action_id"], case.ctx)
    with pytest.raises(ActionNotFound):
        case.provider.release(doc["action_id"], case.ctx)


def test_cancel_of_a_finished_action_changes_nothing(case):
    doc = wait_done(case, case.run_quick(uuid.uuid4().hex[:12], uuid.uuid4().hex))
    after = case.provider.cancel(doc["action_id"], case.ctx)
    assert (after["status"], after["details"]) == (doc["status"], doc["details"])


def test_running_action_cannot_be_released_and_cancel_ends_it(case):
    if case.slow is None:
        pytest.skip("a synchronous provider: its actions end inside run")
    doc = case.provider.run(case.slow, uuid.uuid4().hex, case.ctx)
    assert doc["status"] in ("ACTIVE", "INACTIVE"), doc
    with pytest.raises(ActionConflict):
        case.provider.release(doc["action_id"], case.ctx)
    case.provider.cancel(doc["action_id"], case.ctx)
    doc = wait_done(case, case.provider.status(doc["action_id"], case.ctx))
    assert doc["status"] == "FAILED" and doc["details"]["error"] in ("Canceled", "TaskCancelled"), doc
    case.provider.release(doc["action_id"], case.ctx)


def test_bad_body_is_unable_to_run(case):
    with pytest.raises(ActionUnableToRun, match=case.bad_key):
        case.provider.run(case.bad, uuid.uuid4().hex, case.ctx)


# -- what only the server has: introspection, tokens and roles, the new-style routes -----------

def _call(world, method, path, token=RUN, **kw):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.request(method, world["server"].url + path, headers=headers, timeout=30, **kw)


def test_introspection_documents(world):
    index = _call(world, "GET", "/").json()["actions"]
    assert {"/compute", "/transfer/transfer", "/transfer/delete", "/notify"} <= set(index)
    doc = _call(world, "GET", "/notify/").json()
    assert doc["api_version"] == "1.0" and doc["synchronous"] is True and doc["log_supported"] is False
    assert {"destination", "body_template", "send_credentials"} <= set(doc["input_schema"]["properties"])
    assert {"title", "visible_to", "runnable_by", "types", "maximum_deadline"} <= set(doc)
    assert _call(world, "GET", "/transfer/transfer").json()["synchronous"] is False
    assert _call(world, "GET", "/notify/", token=None).status_code == 401


def test_tokens_roles_and_owners(world):
    body = {"request_id": uuid.uuid4().hex,
            "body": {"destination": "a@lab.example", "subject": "roles", "body_template": "x"}}
    assert _call(world, "POST", "/notify/run", token=None, json=body).status_code == 401
    assert _call(world, "POST", "/notify/run", token="nope", json=body).status_code == 401
    r = _call(world, "POST", "/notify/run", token=READ, json=body)
    assert r.status_code == 403 and r.json()["code"] == "ForbiddenRequest"
    r = _call(world, "POST", "/notify/run", json=body)
    assert r.status_code == 202 and r.json()["status"] == "SUCCEEDED"
    doc = r.json()
    aid = doc["action_id"]
    assert doc["creator_id"].startswith("run:") and RUN not in doc["creator_id"]
    assert doc["release_after"] == "P30D" and "request_id" not in doc
    # another run token neither sees nor touches it; the same request id is its own action there
    assert _call(world, "GET", f"/notify/{aid}/status", token=OTHER).status_code == 404
    assert _call(world, "POST", f"/notify/{aid}/release", token=OTHER).status_code == 404
    theirs = _call(world, "POST", "/notify/run", token=OTHER, json=body).json()
    assert theirs["action_id"] != aid
    # read may look, not release; manage may do both
    assert _call(world, "GET", f"/notify/{aid}/status", token=READ).json()["status"] == "SUCCEEDED"
    assert _call(world, "POST", f"/notify/{aid}/release", token=READ).status_code == 403
    assert _call(world, "GET", f"/notify/actions/{aid}", token=MANAGE).status_code == 200
    assert _call(world, "DELETE", f"/notify/actions/{aid}", token=MANAGE).status_code == 200
    assert _call(world, "GET", f"/notify/actions/{aid}").status_code == 404
    # an id that is not one, a body that is not an object
    assert _call(world, "GET", "/notify/..%2F..%2Fx/status").status_code == 404
    r = _call(world, "POST", "/notify/actions", json={"request_id": "r", "body": [1]})
    assert r.status_code == 400 and "body" in r.json()["description"]
    r = _call(world, "POST", "/notify/run", content=b"{not json")
    assert r.status_code == 400 and r.json()["code"] == "BadActionRequest"


def test_a_flow_of_another_site_drives_this_one(world):
    """faas.flows.run with the server's URL as ActionUrl and the token in the http config."""
    import faas.flows as ff
    url = world["server"].url
    defn = {"StartAt": "Tell", "States": {"Tell": {
        "Type": "Action", "ActionUrl": f"{url}/notify", "ResultPath": "$.told",
        "Parameters": {"destination.$": "$.to", "subject": "from afar", "body_template": "hi $who",
                       "body_variables": {"who.$": "$.who"}}, "End": True}}}
    doc = ff.run(defn, {"to": "c@lab.example", "who": "Cy"}, store_url="memory://other-site",
                 config={"http": {url: {"token": RUN}}})
    assert doc["status"] == "SUCCEEDED", doc
    assert doc["output"]["told"]["details"]["accepted"] == ["c@lab.example"]
    msg = [m for m in world["inbox"].messages if m["Subject"] == "from afar"][-1]
    assert msg.get_content().strip() == "hi Cy"


# -- what a plain `pip install faas` reaches (issue 17 item 6) --------------------------------

#: import name -> distribution name, where they differ
DISTRIBUTIONS = {"yaml": "pyyaml", "pydantic_settings": "pydantic-settings", "jinja2": "jinja2",
                 "globus_identity_mapping": "globus-identity-mapping", "multipart": "python-multipart"}
#: modules that may import the console extra (each importer says "install faas[console]")
WEB = ("faas/console/", "faas/flows/ap_server/", "faas/cli/console.py", "faas/cli/actions.py")


def _declared():
    import re
    import sys
    from pathlib import Path

    import tomllib
    project = tomllib.loads(Path("pyproject.toml").read_text())["project"]

    def names(reqs):
        return {re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0].strip().lower().replace("_", "-") for r in reqs}
    return names(project["dependencies"]), names(project["optional-dependencies"]["console"]), \
        set(sys.stdlib_module_names)


def test_every_import_of_faas_is_declared():
    import ast
    from pathlib import Path
    core, console, stdlib = _declared()
    missing = []
    for f in sorted(Path("faas").rglob("*.py")):
        for node in ast.walk(ast.parse(f.read_text())):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else []
            for m in mods:
                top = m.split(".")[0]
                if top in stdlib or top == "faas":
                    continue
                assert top != "starlette", f"{f}: imports starlette; use fastapi's re-exports"
                dist = DISTRIBUTIONS.get(top, top).lower().replace("_", "-")
                allowed = core | console if str(f).startswith(WEB) else core
                if dist not in allowed:
                    missing.append(f"{f}: {m}")
    assert not missing, missing


def test_server_without_fastapi_says_what_to_install(monkeypatch):
    import importlib
    import sys
    for name in [m for m in sys.modules if m.startswith("faas.flows.ap_server")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "fastapi", None)      # as on a plain `pip install faas`
    with pytest.raises(ModuleNotFoundError, match=r"install faas\[console\]"):
        importlib.import_module("faas.flows.ap_server")


# -- the command -------------------------------------------------------------------------------

def test_faas_actions_serve(tmp_path):
    """`faas actions serve` as a site runs it: tokens from the environment, the store, --only."""
    import subprocess
    import sys
    port = free_port()
    env = dict(os.environ, FAAS_HOME=str(tmp_path / "home"), FAAS_ACTIONS_TOKEN="run:cli-token")
    proc = subprocess.Popen([sys.executable, "-m", "faas.cli.main", "actions", "serve", "--port",
                             str(port), "--store", (tmp_path / "store").as_uri(), "--only", "/notify",
                             "--only", "/transfer/transfer"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                r = httpx.get(url + "/", headers={"Authorization": "Bearer cli-token"}, timeout=5)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()
                time.sleep(0.1)
        assert r.status_code == 200 and set(r.json()["actions"]) == {"/notify", "/transfer/transfer"}
        assert httpx.get(url + "/compute/", headers={"Authorization": "Bearer cli-token"}).status_code == 404
        # no SMTP server configured here: the run is refused, naming what to configure
        r = httpx.post(url + "/notify/run", headers={"Authorization": "Bearer cli-token"},
                       json={"request_id": "r1", "body": {"destination": "a@b.example", "body_template": "x"}})
        assert r.status_code == 400 and "notify.smtp" in r.json()["description"]
    finally:
        proc.terminate()
        proc.wait(20)


def test_faas_actions_serve_refuses_an_open_non_loopback_bind():
    from click.testing import CliRunner

    from faas.cli.main import main
    r = CliRunner().invoke(main, ["actions", "serve", "--host", "0.0.0.0"], env={"FAAS_ACTIONS_TOKEN": None})
    assert r.exit_code == 2 and "not a loopback address" in r.output


def test_the_server_gives_remote_callers_only_the_sites_collections_by_default(world, tmp_path):
    """A token with the run role must not copy whatever the server's account can read."""
    secret = tmp_path / "secret.txt"
    secret.write_text("not for callers\n")
    config = {"collections": {"scratch": world["src"].as_uri()}}
    with Served((tmp_path / "store").as_uri(), config) as server:
        p = HttpProvider(f"{server.url}/transfer/transfer")
        ctx = ActionContext("memory://unused", "r1", "f1", "me",
                            config={"http": {server.url: {"token": RUN}}})
        with pytest.raises(ActionUnableToRun, match="allows only its collections"):
            p.run({"source_endpoint_id": tmp_path.as_uri(), "destination_endpoint_id": "scratch",
                   "transfer_items": [{"source_path": "/secret.txt",
                                       "destination_path": "/stolen.txt"}]}, "steal-1", ctx)
    assert not (world["src"] / "stolen.txt").exists()
