"""The console as another account on the same machine sees it: loopback is everyone's.

User A starts ``faas console`` on 127.0.0.1 with no ``--token``; user B, another Unix account on
the same login node, talks to it over HTTP. B must get 401/403 for every API call and cancel
nothing, and B must not be able to read A's token file; A, with the token from that file, may.

Real accounts (useradd), so this runs as root (CI does) and is skipped otherwise, with the reason.
"""
from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from helpers import kill_processes_of as _kill_processes_of
from helpers import stop_process

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

#: B's attack and A's own use, as one script run as either account: HTTP only (urllib), and an
#: attempt to read the token file. Prints one JSON object.
PROBE = r'''
import json, sys, urllib.error, urllib.request

args = json.loads(sys.argv[1])
base = args["url"]


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k):
        return None


opener = urllib.request.build_opener(NoRedirect)


def call(method, path, token=None, data=None, headers=None):
    h = dict(headers or {})
    if token:
        h["Authorization"] = "Bearer " + token
    body = None if data is None else data.encode()
    if body is not None:
        h.setdefault("Content-Type", "application/x-www-form-urlencoded")
    req = urllib.request.Request(base + path, data=body, method=method, headers=h)
    try:
        with opener.open(req, timeout=30) as r:
            return {"status": r.status, "body": r.read().decode(errors="replace")[:2000],
                    "location": r.headers.get("location"), "cookie": r.headers.get("set-cookie")}
    except urllib.error.HTTPError as e:
        return {"status": e.code, "body": e.read().decode(errors="replace")[:2000],
                "location": e.headers.get("location"), "cookie": e.headers.get("set-cookie")}


out = {}
try:
    with open(args["token_file"]) as f:
        out["token_file"] = {"read": True, "token": f.read().strip()}
except OSError as e:
    out["token_file"] = {"read": False, "error": type(e).__name__}
token = out["token_file"].get("token") if args.get("use_file_token") else None
same_origin = {"Origin": base}
out["whoami"] = call("GET", "/api/whoami", token)
out["endpoints"] = call("GET", "/api/endpoints", token)
out["tasks"] = call("GET", "/api/tasks", token)
out["cancel_api"] = call("POST", "/api/tasks/" + args["task_api"] + "/cancel", token, data="", headers=same_origin)
out["cancel_page"] = call("POST", "/tasks/" + args["task_page"] + "/cancel", token, data="", headers=same_origin)
out["page"] = call("GET", "/endpoints", token)
out["guess_in_url"] = call("GET", "/?token=" + "0" * 43)
if token:
    out["login_url"] = call("GET", "/?token=" + token)
    out["status"] = {t: json.loads(call("GET", "/api/tasks/" + t, token)["body"]).get("status")
                     for t in args.get("check", [])}
print(json.dumps(out))
'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(user: pwd.struct_passwd, **extra: str) -> dict:
    """A clean environment for ``user``: no FAAS_* (no token) from this process, this checkout
    first on the path."""
    return {"HOME": user.pw_dir, "USER": user.pw_name, "LOGNAME": user.pw_name,
            "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "PYTHONPATH": str(ROOT),
            "PYTHONDONTWRITEBYTECODE": "1", **extra}


def _as(user: pwd.struct_passwd, args: list[str], env: dict, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(args, user=user.pw_uid, group=user.pw_gid, extra_groups=[], env=env,
                          cwd=user.pw_dir, capture_output=True, text=True, check=False, **kw)


@pytest.fixture(scope="module")
def accounts():
    """Two fresh accounts ``fcs<random>a`` (the console's owner) and ``...b`` (the attacker),
    deleted with their homes at the end."""
    if os.geteuid() != 0:
        pytest.skip("needs root: the test creates two Unix accounts with useradd")
    if not (shutil.which("useradd") and shutil.which("userdel")):
        pytest.skip("needs useradd and userdel")
    tag = "fcs" + secrets.token_hex(3)
    names = [tag + "a", tag + "b"]
    made: list[str] = []
    try:
        for n in names:
            subprocess.run(["useradd", "-m", "-s", "/bin/sh", n], check=True, capture_output=True)
            made.append(n)
        users = [pwd.getpwnam(n) for n in names]
        probe = _as(users[0], [sys.executable, "-c", "import faas.console, uvicorn"], _env(users[0]))
        if probe.returncode != 0:
            last = probe.stderr.strip().splitlines()[-1] if probe.stderr.strip() else probe.returncode
            pytest.skip(f"a test account cannot run `{sys.executable} -c 'import faas.console'` ({last}): "
                        f"the interpreter and this checkout must be reachable by other accounts "
                        f"(CI: chmod o+x on the folders above them)")
        yield users
    finally:
        _kill_processes_of({pwd.getpwnam(n).pw_uid for n in made})
        for n in made:
            subprocess.run(["userdel", "-r", "-f", n], capture_output=True, check=False)


@pytest.fixture
def shared():
    """A folder both accounts can reach (pytest's own tmp folder is root's alone)."""
    d = Path(tempfile.mkdtemp(prefix="faas-console-sec-", dir="/tmp"))
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_another_account_cannot_use_or_read_a_console_started_without_a_token(accounts, shared, tmp_path):
    a, b = accounts
    os.chmod(a.pw_dir, 0o755)       # a home others may traverse (common on clusters): the token
    a_home = Path(a.pw_dir) / ".faas"   # file's own mode is what must keep B out
    store_url = (a_home / "store").as_uri()
    # A's store holds an endpoint and two tasks B will try to cancel
    publish = ("import sys; from faas.endpoint import registry; from faas.store import open_store; "
               "registry.publish(open_store(sys.argv[1]), {'name': 'site-a', 'status': 'running', "
               "'queue': 'local:///nonexistent/q', 'provider': 'local'})")
    setup = _as(a, [sys.executable, "-c", publish, store_url], _env(a, FAAS_HOME=str(a_home)), timeout=120)
    assert setup.returncode == 0, setup.stderr

    probe = shared / "probe.py"
    probe.write_text(PROBE)
    os.chmod(probe, 0o644)

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "console.log"
    with open(log, "wb") as out:
        console = subprocess.Popen(
            [sys.executable, "-m", "faas.cli.main", "console", "--host", "127.0.0.1", "--port", str(port)],
            user=a.pw_uid, group=a.pw_gid, extra_groups=[], env=_env(a, FAAS_HOME=str(a_home)),
            cwd=a.pw_dir, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url + "/login", timeout=2).read()
                break
            except Exception:
                if console.poll() is not None:
                    pytest.fail(f"the console exited ({console.returncode}): {log.read_text()[-3000:]}")
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        token_file = a_home / "console.token"
        victim_api, victim_page, mine_api, mine_page = (str(uuid.uuid4()) for _ in range(4))

        # B, the other account: every API call is refused, nothing is cancelled, the file is closed
        p = _as(b, [sys.executable, str(probe), json.dumps(
            {"url": url, "token_file": str(token_file), "task_api": victim_api, "task_page": victim_page})],
            _env(b), timeout=120)
        assert p.returncode == 0, p.stderr
        seen = json.loads(p.stdout.strip().splitlines()[-1])
        for what in ("whoami", "endpoints", "tasks", "cancel_api"):
            assert seen[what]["status"] in (401, 403), (what, seen[what])
            assert "site-a" not in seen[what]["body"]
        # a page's form post: sent to the login page, not served
        assert seen["cancel_page"]["status"] in (303, 401, 403), seen["cancel_page"]
        if seen["cancel_page"]["status"] == 303:
            assert seen["cancel_page"]["location"].startswith("/login"), seen["cancel_page"]
        assert seen["page"]["status"] == 303 and seen["page"]["location"].startswith("/login"), seen["page"]
        assert seen["guess_in_url"]["status"] == 303 and seen["guess_in_url"]["location"].startswith("/login")
        assert not seen["guess_in_url"]["cookie"]
        assert seen["token_file"] == {"read": False, "error": "PermissionError"}, seen["token_file"]

        # the file: A's, a regular file, 0600; the console printed the login URL and the file
        st = os.lstat(token_file)
        assert stat.S_ISREG(st.st_mode) and st.st_uid == a.pw_uid and stat.S_IMODE(st.st_mode) == 0o600
        token = token_file.read_text().strip()
        assert len(token) >= 32
        printed = log.read_text()
        assert f"{url}/?token={token}" in printed and str(token_file) in printed, printed

        # A, with the token from the file: everything works, and B's tasks were never cancelled
        p = _as(a, [sys.executable, str(probe), json.dumps(
            {"url": url, "token_file": str(token_file), "task_api": mine_api, "task_page": mine_page,
             "use_file_token": True, "check": [victim_api, victim_page, mine_api, mine_page]})],
            _env(a), timeout=120)
        assert p.returncode == 0, p.stderr
        mine = json.loads(p.stdout.strip().splitlines()[-1])
        assert mine["token_file"]["read"] and mine["whoami"]["status"] == 200
        assert json.loads(mine["whoami"]["body"]) == {"role": "manage"}
        assert mine["endpoints"]["status"] == 200 and "site-a" in mine["endpoints"]["body"]
        assert mine["cancel_api"]["status"] == 200 and mine["cancel_page"]["status"] == 303
        status = mine["status"]
        assert status[mine_api] == status[mine_page] == "cancelled", status
        assert status[victim_api] != "cancelled" and status[victim_page] != "cancelled", status
        # the printed URL logs a browser in: a cookie, and a redirect that drops the token
        assert mine["login_url"]["status"] == 303 and "token=" not in mine["login_url"]["location"]
        assert "httponly" in (mine["login_url"]["cookie"] or "").lower()
    finally:
        stop_process(console)


#: B's look at A's processes: every word of their command lines (a ``manage:``/``read:`` prefix
#: dropped) tried as a console token, and their environments (which must stay A's alone).
SNOOP = r'''
import json, os, sys, urllib.error, urllib.request

uid, url = int(sys.argv[1]), sys.argv[2]
words, environ, procs = set(), {}, 0
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        if os.stat("/proc/" + pid).st_uid != uid:
            continue
        with open("/proc/%s/cmdline" % pid, "rb") as f:
            args = f.read().decode(errors="replace").split("\0")
    except OSError:
        continue
    procs += 1
    for a in args:
        for w in a.replace("=", " ").split():
            words.add(w.split(":", 1)[1] if w.startswith(("manage:", "read:")) else w)
    try:
        with open("/proc/%s/environ" % pid, "rb") as f:
            environ[pid] = "read: " + f.read().decode(errors="replace").replace("\0", " ")[:2000]
    except OSError as e:
        environ[pid] = type(e).__name__
worked = {}
for w in sorted(words):
    req = urllib.request.Request(url + "/api/whoami", headers={"Authorization": "Bearer " + w})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            worked[w[:6] + "..."] = json.loads(r.read())["role"]
    except (urllib.error.URLError, ValueError, UnicodeError, OSError):
        pass
print(json.dumps({"procs": procs, "worked": worked, "environ": environ}))
'''


def _start_console(user: pwd.struct_passwd, args: list[str], env: dict, log: Path, url: str):
    """``faas console ARGS`` as ``user``; returns once it answers on ``url`` or has exited."""
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "faas.cli.main", "console", *args],
                                user=user.pw_uid, group=user.pw_gid, extra_groups=[], env=env,
                                cwd=user.pw_dir, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "/login", timeout=2).read()
            break
        except OSError:     # not listening yet (URLError, a reset, a timeout)
            time.sleep(0.2)
    return proc


def _snoop(b: pwd.struct_passwd, a: pwd.struct_passwd, url: str, shared: Path) -> dict:
    script = shared / "snoop.py"
    script.write_text(SNOOP)
    os.chmod(script, 0o644)
    p = _as(b, [sys.executable, str(script), str(a.pw_uid), url], _env(b), timeout=120)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_another_account_cannot_read_a_token_from_the_consoles_command_line(accounts, shared, tmp_path):
    """P1: ``faas console --token manage:T`` (what the docs once said) put T in argv, which every
    account reads from /proc/PID/cmdline (ps): B took it and had A's manage role. A token on the
    command line is now refused before anything is served; a token file (mode 600) or the
    environment keeps it A's: B sees neither, in argv, in /proc/PID/environ or in the file."""
    a, b = accounts
    a_home = Path(a.pw_dir) / ".faas"
    env = _env(a, FAAS_HOME=str(a_home))
    url = f"http://127.0.0.1:{_free_port()}"

    # 1. the token on the command line, as the old docs and help said
    given = secrets.token_urlsafe(24)
    proc = _start_console(a, ["--port", url.rsplit(":", 1)[1], "--token", f"manage:{given}"], env,
                          tmp_path / "argv.log", url)
    try:
        seen = _snoop(b, a, url, shared)
        assert not seen["worked"], f"B used a token read from A's command line: {seen['worked']}"
        assert proc.wait(30) == 2
    finally:
        if proc.poll() is None:
            stop_process(proc)
    said = (tmp_path / "argv.log").read_text()
    assert "--token-file" in said and "/proc/PID/cmdline" in said and given not in said, said

    # 2. the safe ways: a token file (mode 600) and the environment
    manage, read = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    setup = _as(a, [sys.executable, "-c",
                    "import os, sys; os.makedirs(os.path.dirname(sys.argv[1]), 0o700, exist_ok=True); "
                    "fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600); "
                    "os.write(fd, sys.argv[2].encode()); os.close(fd)",
                    str(a_home / "tokens"), f"manage:{manage}\n"], env, timeout=60)
    assert setup.returncode == 0, setup.stderr
    url = f"http://127.0.0.1:{_free_port()}"
    log = tmp_path / "file.log"
    proc = _start_console(a, ["--port", url.rsplit(":", 1)[1], "--token-file", str(a_home / "tokens")],
                          dict(env, FAAS_CONSOLE_READ_TOKEN=read), log, url)
    try:
        assert proc.poll() is None, log.read_text()
        seen = _snoop(b, a, url, shared)
        assert seen["procs"] >= 1 and not seen["worked"], seen
        assert seen["environ"] and all(v == "PermissionError" for v in seen["environ"].values()), seen
        p = _as(b, [sys.executable, "-c", "import sys; open(sys.argv[1]).read()", str(a_home / "tokens")],
                _env(b), timeout=60)
        assert p.returncode != 0 and "PermissionError" in p.stderr
        # A, with the tokens: each has its role
        for tok, role in ((manage, "manage"), (read, "read")):
            req = urllib.request.Request(url + "/api/whoami", headers={"Authorization": "Bearer " + tok})
            with urllib.request.urlopen(req, timeout=10) as r:
                assert json.loads(r.read()) == {"role": role}
        assert manage not in log.read_text() and read not in log.read_text()
    finally:
        stop_process(proc)
