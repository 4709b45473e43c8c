"""End to end in headless Chromium: a console (``faas console``, its own process) over a real
endpoint (daemon + worker pool) and the flows runner (``faas flows serve``), all on 127.0.0.1.

Each test saves screenshots to docs/screenshots/ (the README shows the best of them).
Skipped when Debian's chromium is not installed (CI installs it: .ci/chromium.sh).
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                 reason=f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/chromium.sh)")]

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from helpers import running_endpoint, stop_process  # noqa: E402

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
MANAGE, READ = "manage-secret-e2e", "read-secret-e2e"
WAIT = 90_000   # ms: two shared cores run the endpoint, runner, console and browser at once


def slow_square(x):
    import time
    time.sleep(1.0)
    return x * x


def fails(x):
    raise ValueError(f"cannot take {x}")


def sleeper(seconds):
    import time
    time.sleep(seconds)
    return seconds


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _faas_cmd() -> list[str]:
    exe = shutil.which("faas") or os.path.join(os.path.dirname(sys.executable), "faas")
    return [exe] if os.path.exists(exe) else [sys.executable, "-m", "faas.cli.main"]


@contextlib.contextmanager
def _process(args: list[str], env: dict, log: Path):
    with open(log, "wb") as out:
        p = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield p
        finally:
            stop_process(p)


def _wait_http(url: str, proc, log: Path, seconds: float = 60.0) -> None:
    end = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except Exception:
            if proc.poll() is not None:
                raise RuntimeError(f"the console exited: {log.read_text()[-2000:]}") from None
            if time.monotonic() > end:
                raise
            time.sleep(0.2)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A real endpoint ``site`` (1 block, 2 workers), the flows runner and the console, all
    over one file store; yields a dict of what the tests need."""
    home = tmp_path_factory.mktemp("e2e") / "home"
    with running_endpoint(home, "site", engine={"max_workers_per_node": 2}) as cfg:
        env = dict(os.environ, FAAS_HOME=str(home), PYTHONUNBUFFERED="1")
        store = cfg.store
        port = _free_port()
        logs = home.parent
        with _process(_faas_cmd() + ["flows", "serve", "--store", store], env, logs / "runner.log"), \
                _process(_faas_cmd() + ["console", "--port", str(port), "--store", store],
                         dict(env, FAAS_CONSOLE_TOKEN=f"manage:{MANAGE}", FAAS_CONSOLE_READ_TOKEN=READ),
                         logs / "console.log") as console:
            url = f"http://127.0.0.1:{port}"
            _wait_http(url + "/login", console, logs / "console.log")
            import faas
            client = faas.client(store=store, endpoint="site")
            try:
                yield {"url": url, "store": store, "home": home, "client": client}
            finally:
                client.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                              args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                                    "--disable-background-networking"])
        yield b
        b.close()


def _login(browser, site, token: str, **ctx):
    context = browser.new_context(viewport=ctx.pop("viewport", {"width": 1280, "height": 860}), **ctx)
    context.set_default_timeout(WAIT)
    page = context.new_page()
    page.goto(site["url"] + "/login")
    page.fill("input[name=token]", token)
    page.click("form button")
    page.wait_for_url(re.compile(r".*/endpoints$"))
    return context, page


def _shot(page, name: str, full: bool = True) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full)


def _pool_writes_journal() -> bool:
    from faas.endpoint import pool
    return "journal" in Path(pool.__file__).read_text()


def _reload_until(page, check, seconds: float = 90.0) -> None:
    end = time.monotonic() + seconds
    while not check():
        if time.monotonic() > end:
            raise AssertionError(f"{page.url}: condition not met in {seconds} s")
        time.sleep(1.0)
        page.reload()


def test_task_submitted_from_python_appears_and_completes(browser, site):
    c = site["client"]
    fid = c.register_function(slow_square)
    tid = c.run(fid, endpoint="site", args=(7,))
    bad = c.run(c.register_function(fails), endpoint="site", args=(3,))
    context, page = _login(browser, site, MANAGE)
    page.click("text=Tasks")
    page.fill("input[name=id]", tid)
    page.click("form.find button")
    page.wait_for_url(f"**/tasks/{tid}")
    # the page refreshes itself until the task ends
    page.wait_for_selector("[data-task-status=success]")
    assert "49" in page.inner_text("pre.result")
    assert "endpoint site" in page.inner_text("dl.kv")
    page.goto(f"{site['url']}/tasks/{bad}")
    page.wait_for_selector("[data-task-status=failed]")
    assert "cannot take 3" in page.inner_text("pre.traceback")
    _shot(page, "task-failed")
    c.get_result(tid, timeout=60)
    if not _pool_writes_journal():   # until the pool writes the journal, write what it would
        from faas.endpoint.journal import Journal
        from faas.store import open_store
        info = c.get_task(tid)
        j = Journal(open_store(site["store"]), "site", info["block"] or "block", info["host"] or "host")
        j.record(tid, fid, n=1, sent=info["started_t"] - 0.1, started=info["started_t"],
                 finished=info["completion_t"], status="success")
        j.close()
    page.goto(f"{site['url']}/tasks")
    _reload_until(page, lambda: (tid[:8] in page.inner_text("table.tasks")
                                 if page.query_selector("table.tasks") else False))
    _shot(page, "tasks")
    page.click(f"text={tid[:8]}")
    page.wait_for_selector("[data-task-status=success]")
    assert "slow_square" in page.inner_text("dl.kv")     # the journal names the function
    _shot(page, "task")
    page.goto(f"{site['url']}/endpoints")
    assert "site" in page.inner_text(".endpoint h2")
    _reload_until(page, lambda: "running" in page.inner_text(".endpoint dl"))
    _shot(page, "endpoints")
    page.click(".endpoint h2 a")
    page.wait_for_selector("text=Scheduler job")
    _shot(page, "endpoint")
    page.goto(f"{site['url']}/functions")
    assert "slow_square" in page.inner_text("table")
    _shot(page, "functions")
    context.close()


FLOW_SCHEMA = {"type": "object", "required": ["sample", "x"], "properties": {
    "sample": {"type": "string", "title": "Sample id", "pattern": "^S[0-9]{3}$",
               "description": "as printed on the tube", "errorMessage": {"pattern": "a sample id looks like S123"}},
    "x": {"type": "integer", "title": "Value to square", "minimum": 0, "maximum": 1000, "default": 12},
    "priority": {"type": "string", "enum": ["normal", "high"], "default": "normal"},
    "notify": {"type": "boolean", "title": "Notify me", "default": True}}}


def _flow(fid: str) -> dict:
    return {"Comment": "square a value on the site, then ask a person", "StartAt": "Prepare", "States": {
        "Prepare": {"Type": "Pass", "Parameters": {"sample.$": "$.sample"}, "ResultPath": "$.prep",
                    "Next": "Settle"},
        "Settle": {"Type": "Wait", "Seconds": 2, "Next": "Square"},
        "Square": {"Type": "Action", "ActionUrl": "faas://compute",
                   "Parameters": {"endpoint": "site", "function": fid, "kwargs": {"x.$": "$.x"}},
                   "ResultPath": "$.square", "Next": "Approve"},
        "Approve": {"Type": "Action", "ActionUrl": "faas://approval", "WaitTime": 600,
                    "Parameters": {"message": "Publish the result?"}, "ResultPath": "$.approval",
                    "Next": "Publish"},
        "Publish": {"Type": "Pass", "End": True}}}


def test_flow_started_from_the_generated_form(browser, site):
    from faas.flows import FlowsClient, TimersClient
    fid = site["client"].register_function(slow_square)
    fc = FlowsClient(site["store"])
    deployed = fc.deploy(_flow(fid), FLOW_SCHEMA, title="Square and approve",
                         description="Runs slow_square on the site, then waits for a person.")
    context, page = _login(browser, site, MANAGE)
    page.click("text=Flows")
    page.click("text=Square and approve")
    page.wait_for_selector("svg.flowgraph")
    # a wrong input: the schema's message, before anything is posted
    page.fill("#in-sample", "tube 7")
    page.fill("#in-x", "-4")
    page.click("form.schema-form button:has-text('Start run')")
    assert page.inner_text("[data-field=sample] .field-error") == "a sample id looks like S123"
    assert page.inner_text("[data-field=x] .field-error") == "Value to square must be at least 0"
    assert "/flows/" in page.url and fc.list_runs(flow_id=deployed["id"]) == []
    _shot(page, "flow-form-invalid")
    # a good input: the run starts and its event log fills in while it goes on
    page.fill("#in-sample", "S042")
    page.fill("#in-x", "12")
    page.click("form.schema-form summary")
    page.fill("input[name=_label]", "tube S042")
    page.click("form.schema-form button:has-text('Start run')")
    page.wait_for_url(re.compile(r".*/runs/[^/?]+\?tab=log"))
    run_id = page.url.split("/runs/")[1].split("?")[0]
    page.wait_for_selector("#event-log tr.new", state="attached")       # appended live, no reload
    page.wait_for_selector("#event-log tr.ev >> text=ActionCompleted")   # the compute action finished
    page.wait_for_selector("button:has-text('Approve')")                  # now waiting for a person
    log_text = page.inner_text("#event-log")
    assert "FlowStarted" in log_text and "Square" in log_text and "144" in log_text
    _shot(page, "run-log")
    page.click("text=Overview")
    page.wait_for_selector("svg.flowgraph .current")
    _shot(page, "run-overview")
    page.click("button:has-text('Approve')")
    page.wait_for_selector("p.big .s-succeeded")
    assert fc.get_run(run_id)["status"] == "SUCCEEDED"
    # a second run, cancelled from its page while it waits for approval
    run2 = fc.start(deployed["id"], {"sample": "S043", "x": 2}, label="to cancel")
    page.goto(f"{site['url']}/runs/{run2['run_id']}?tab=log")
    page.wait_for_selector("button:has-text('Approve')")
    page.click("button:has-text('Cancel run')")
    page.wait_for_selector("p.big .s-ended")
    assert "FlowCanceled" in page.inner_text("#event-log")
    assert fc.get_run(run2["run_id"])["status"] == "ENDED"
    _shot(page, "run-cancelled")
    page.goto(f"{site['url']}/runs?status=SUCCEEDED")
    assert "tube S042" in page.inner_text("table.runs") or run_id[:8] in page.inner_text("table.runs")
    page.goto(f"{site['url']}/runs")
    _shot(page, "runs")
    page.goto(f"{site['url']}/flows/{deployed['id']}")
    _shot(page, "flow")
    # timers: pause and resume from the page
    tc = TimersClient(site["store"])
    timer = tc.create(deployed["id"], {"sample": "S100", "x": 5}, name="nightly square",
                      interval="1d", start=time.time() + 3600)
    page.goto(f"{site['url']}/timers")
    page.click(f"#timer-{timer['id']} button:has-text('Pause')")
    page.wait_for_selector(f"#timer-{timer['id']} .s-paused")
    assert tc.get(timer["id"])["status"] == "paused"
    page.click(f"#timer-{timer['id']} button:has-text('Resume')")
    page.wait_for_selector(f"#timer-{timer['id']} .s-active")
    _shot(page, "timers")
    page.click(f"#timer-{timer['id']} a")
    page.wait_for_selector("text=No tick yet.")
    _shot(page, "timer")
    page.goto(f"{site['url']}/timers")
    page.once("dialog", lambda d: d.accept())          # "Delete timer nightly square?"
    page.click(f"#timer-{timer['id']} button:has-text('Delete')")
    page.wait_for_selector("text=delete: done")
    assert page.query_selector(f"#timer-{timer['id']}") is None and tc.list() == []
    context.close()
    # with JavaScript off the read-only pages still read: server-rendered, refreshed by meta tags
    context, page = _login(browser, site, READ, java_script_enabled=False)
    for path, text in ((f"/runs/{run_id}?tab=log", "ActionCompleted"), ("/tasks", "slow_square"),
                       ("/endpoints", "running"), (f"/flows/{deployed['id']}", "Prepare")):
        page.goto(site["url"] + path)
        assert text in page.inner_text("main"), path
    context.close()
    # the same pages on a phone-sized screen
    context, page = _login(browser, site, READ, viewport={"width": 390, "height": 844}, is_mobile=True)
    page.goto(f"{site['url']}/runs/{run_id}?tab=log")
    _shot(page, "phone-run-log", full=False)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the run page is {width} px wide on a 390 px screen"
    page.goto(f"{site['url']}/endpoints")
    _shot(page, "phone-endpoints", full=False)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    context.close()


def test_read_only_token_cannot_cancel(browser, site):
    from faas.messages import cancel_key
    from faas.store import open_store
    c = site["client"]
    tid = c.run(c.register_function(sleeper), endpoint="site", args=(20,))
    context, page = _login(browser, site, READ)
    page.goto(f"{site['url']}/tasks/{tid}")
    page.wait_for_selector("[data-task-status=running]")     # the page refreshes itself
    button = page.locator("button:has-text('Cancel task')")
    assert button.is_disabled()
    assert "read-only" in page.inner_text("form.actions")
    _shot(page, "task-read-only")
    # posting anyway (the button is only a hint) is refused by the server
    r = page.request.post(f"{site['url']}/api/tasks/{tid}/cancel")
    assert r.status == 403 and "manage token" in r.json()["detail"]
    r = page.request.post(f"{site['url']}/tasks/{tid}/cancel", max_redirects=0)
    assert r.status == 403
    assert not open_store(site["store"]).exists(cancel_key(tid, c.client_id))
    context.close()
    # the manage token cancels it from the same page
    context, page = _login(browser, site, MANAGE)
    page.goto(f"{site['url']}/tasks/{tid}")
    page.click("button:has-text('Cancel task')")
    page.wait_for_selector("[data-task-status=cancelled]")
    context.close()


def test_console_started_without_a_token_prints_a_url_that_logs_in(browser, site, tmp_path):
    """``faas console`` given no token: a private token file, and the printed login URL (what a
    user clicks) opens the console with the manage role; without it the browser gets the login page."""
    home = tmp_path / "home"             # its own FAAS_HOME: a new token file
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAAS_CONSOLE_")}
    env.update(FAAS_HOME=str(home), PYTHONUNBUFFERED="1")
    port = _free_port()
    log = tmp_path / "console.log"
    with _process(_faas_cmd() + ["console", "--port", str(port), "--store", site["store"]], env, log) as proc:
        url = f"http://127.0.0.1:{port}"
        _wait_http(url + "/login", proc, log)
        path = home / "console.token"
        token = path.read_text().strip()
        assert os.stat(path).st_mode & 0o777 == 0o600
        printed = re.search(r"open (http://\S+)", log.read_text())
        assert printed and printed.group(1) == f"{url}/?token={token}", log.read_text()
        context = browser.new_context(viewport={"width": 1280, "height": 860})
        context.set_default_timeout(WAIT)
        page = context.new_page()
        page.goto(url + "/endpoints")
        page.wait_for_url(re.compile(r".*/login\?next=.*"))        # no token, no console
        page.goto(printed.group(1))
        page.wait_for_url(re.compile(r".*/endpoints$"))
        assert "token" not in page.url                               # gone from the address bar
        assert page.inner_text(".who .badge") == "manage"
        assert "site" in page.inner_text("main")
        page.screenshot(path=str(tmp_path / "login-url.png"), full_page=True)
        context.close()
