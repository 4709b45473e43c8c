"""Multi-user endpoint fixtures: real Unix accounts (useradd; the tests run as root), a shared
folder all of them can reach, a root endpoint started from it, and a way to run client code as
one of the accounts.

Skipped, with the reason, when not root or when a dropped-privilege process cannot run this
Python (e.g. it lives under a mode-700 /root: CI runs `chmod o+x /root` first)."""
from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml
from helpers import kill_processes_of, wait_until  # noqa: F401 - the tests here use it too

CLIENT = r'''
import json, os, sys, time
import faas

def whoami(delay=0):
    import os, time
    time.sleep(delay)
    return os.getuid()

args = json.loads(sys.argv[1])
out = []
if args.get("mode") == "client":   # the boto-style client
    c = faas.client()
    tid = c.run(function_id=c.register_function(whoami), endpoint=args["endpoint"], args=(0,),
                user_endpoint_config=args.get("uec"))
    print(json.dumps([{"uid": c.get_result(task_id=tid, timeout=120), "task": tid}]))
    c.close()
    sys.exit(0)
ex = faas.Executor(endpoint=args["endpoint"], user_endpoint_config=args.get("uec"))
fs = [ex.submit(whoami, args.get("delay", 0)) for _ in range(args.get("n", 1))]
for f in fs:
    try:
        out.append({"uid": f.result(timeout=args.get("wait", 120)), "task": f.task_id})
    except Exception as e:
        out.append({"error": type(e).__name__, "message": str(e), "task": f.task_id})
print(json.dumps(out), flush=True)
ex.shutdown(wait=False, cancel_futures=True)
ex.client.close()
'''


def _have(cmd: str) -> bool:
    return shutil.which(cmd) is not None


@pytest.fixture(scope="session")
def mu_shared():
    """A folder every test account can reach (mode 755), removed at the end."""
    d = Path(tempfile.mkdtemp(prefix="faas-mu-", dir="/tmp"))
    os.chmod(d, 0o755)
    (d / "client.py").write_text(CLIENT)
    os.chmod(d / "client.py", 0o644)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def mu_users(mu_shared):
    """Three fresh accounts ``fmu<random>a/b/c``; deleted (with their homes) at the end."""
    if os.geteuid() != 0:
        pytest.skip("multi-user tests need root (they create Unix accounts with useradd)")
    if not (_have("useradd") and _have("userdel")):
        pytest.skip("multi-user tests need useradd and userdel")
    tag = "fmu" + secrets.token_hex(3)
    names = [tag + s for s in "abc"]
    made = []
    try:
        for n in names:
            subprocess.run(["useradd", "-m", "-s", "/bin/sh", n], check=True, capture_output=True)
            made.append(n)
        probe = subprocess.run([sys.executable, "-c", "import faas"], user=names[0],
                               group=pwd.getpwnam(names[0]).pw_gid,
                               extra_groups=[], capture_output=True, text=True,
                               env={"HOME": pwd.getpwnam(names[0]).pw_dir, "PATH": "/usr/bin:/bin"})
        if probe.returncode != 0:
            pytest.skip(f"a test account cannot run `{sys.executable} -c 'import faas'` "
                        f"({probe.stderr.strip().splitlines()[-1] if probe.stderr.strip() else probe.returncode}); "
                        f"CI must make the install reachable: chmod o+x /root")
        yield [pwd.getpwnam(n) for n in names]
    finally:
        kill_processes_of({pwd.getpwnam(n).pw_uid for n in made})
        for n in made:
            subprocess.run(["userdel", "-r", "-f", n], capture_output=True)


class Site:
    """One multi-user endpoint run by root, with its store shared by the accounts. Its name is
    new for each test, so the user endpoints (named after it, in the accounts' own homes) of one
    test never meet another's."""

    def __init__(self, base: Path, name: str):
        self.base, self.name = base, name
        self.store = base / "store"
        self.root_home = base / "root-home"
        self.dir = self.root_home / "endpoints" / name

    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FAAS_")}
        env["FAAS_HOME"] = str(self.root_home)
        return env

    def faas(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        p = subprocess.run([sys.executable, "-m", "faas.cli.main", *args], env=self.env(),
                           capture_output=True, text=True, timeout=120)
        if check and p.returncode != 0:
            raise AssertionError(f"faas {' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
        return p

    def configure(self, **keys) -> None:
        self.faas("endpoint", "configure", self.name, "--multi-user", "--store", self.store.as_uri())
        self.set(**{"visibility_timeout": 10, "stop_grace": 5, "user_endpoint_idle_timeout": 120, **keys})

    def set(self, **keys) -> None:
        path = self.dir / "config.yaml"
        data = yaml.safe_load(path.read_text())
        data.update(keys)
        path.write_text(yaml.safe_dump(data))

    def start(self) -> None:
        self.faas("endpoint", "start", self.name, "--detach")

    def stop(self) -> None:
        self.faas("endpoint", "stop", self.name, check=False)

    def status(self) -> dict:
        return json.loads(self.faas("endpoint", "status", self.name).stdout)

    def stepped_after(self, t: float, timeout: float = 30) -> None:
        """Wait for a routing step that began after the wall time ``t``: the router writes its
        status file once a second at most, late in a step; a second write after ``t`` comes from
        a step that began after the first, so its look at the spool and at each user endpoint's
        files came after ``t`` (a fixed sleep can end before the router looked at all)."""
        first = wait_until(lambda: self._status_time() > t and self._status_time(), timeout,
                           f"a status written by {self.name}'s router after {t:.3f}")
        wait_until(lambda: self._status_time() > first, timeout, f"the next step of {self.name}'s router")

    def _status_time(self) -> float:
        """When the router last wrote its status file (0.0: not yet, or not readable now)."""
        try:
            return float(json.loads((self.dir / "multiuser.status.json").read_text())["time"])
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return 0.0

    def audit(self) -> list[dict]:
        try:
            return [json.loads(x) for x in (self.dir / "audit.log").read_text().splitlines()]
        except FileNotFoundError:
            return []

    def user_env(self, user: pwd.struct_passwd) -> dict:
        home = Path(user.pw_dir)
        return {"HOME": str(home), "USER": user.pw_name, "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
                "FAAS_HOME": str(home / ".faas-client"), "FAAS_STORE": self.store.as_uri(),
                "FAAS_AUTOSTART": "false"}

    def run_as(self, user: pwd.struct_passwd, timeout: float = 240, env_extra: dict | None = None,
               **args) -> list[dict]:
        """Run the client script as ``user``; the list of {uid | error, message, task}."""
        home = Path(user.pw_dir)
        env = {"HOME": str(home), "USER": user.pw_name, "PATH": "/usr/bin:/bin",
               "FAAS_HOME": str(home / ".faas-client"), "FAAS_STORE": self.store.as_uri(),
               "FAAS_AUTOSTART": "false", **(env_extra or {})}
        args.setdefault("endpoint", self.name)
        p = subprocess.run([sys.executable, str(self.base.parent / "client.py"), json.dumps(args)],
                           user=user.pw_uid, group=user.pw_gid, extra_groups=[], env=env, cwd=env["HOME"],
                           capture_output=True, text=True, timeout=timeout)
        if p.returncode != 0:
            raise AssertionError(f"client as {user.pw_name} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
        return json.loads(p.stdout.strip().splitlines()[-1])

    def kill_user_endpoints_by_state(self) -> None:
        """Teardown: stop any user endpoint daemon a killed router left behind (by pid, after
        checking it belongs to the account recorded for it)."""
        try:
            state = json.loads((self.dir / "user_endpoints.json").read_text())
        except (OSError, ValueError):
            return
        for ue in state.get("endpoints", {}).values():
            pid = ue.get("pid")
            if not pid:
                continue
            try:
                if os.stat(f"/proc/{pid}").st_uid == ue["uid"]:
                    os.killpg(pid, 15)
            except OSError:
                pass


@pytest.fixture
def site(mu_shared, mu_users):
    tag = secrets.token_hex(3)
    base = mu_shared / f"site-{tag}"
    base.mkdir(mode=0o755)
    os.chmod(base, 0o755)
    s = Site(base, name=f"campus{tag}")
    yield s
    s.stop()
    s.kill_user_endpoints_by_state()
    kill_processes_of({u.pw_uid for u in mu_users})   # what a slow stop left: nothing may leak into the next test
