"""End to end, as a site admin moving from Globus Compute would set it up: a root multi-user
endpoint whose template and schema are Globus's own defaults (byte for byte, from
``tests/multiuser/globus/``), identity mapping rules in Globus's format with an ``{email}`` rule
in front; a real Unix user submits with Globus's SDK code (import changed only) and a
``user_endpoint_config``; the task runs as that user, in a block started with the user's
``worker_init``."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow

GLOBUS = Path(__file__).parent / "globus"

USER_SCRIPT = r'''
import json, sys
from faas import Executor     # Globus: from globus_compute_sdk import Executor

def greet():
    import os
    return [os.getuid(), os.environ.get("GREETING")]

args = json.loads(sys.argv[1])
with Executor(endpoint_id=args["endpoint"], user_endpoint_config=args["uec"]) as ex:
    future = ex.submit(greet)
    try:
        out = {"result": future.result(timeout=180)}
    except Exception as e:
        out = {"error": type(e).__name__, "message": str(e)}
print(json.dumps(out), flush=True)
'''


def submit_as(site, user, uec: dict) -> dict:
    script = site.base / "globus_user.py"
    if not script.exists():
        script.write_text(USER_SCRIPT)
        os.chmod(script, 0o644)
    p = subprocess.run([sys.executable, str(script), json.dumps({"endpoint": site.name, "uec": uec})],
                       user=user.pw_uid, group=user.pw_gid, extra_groups=[], env=site.user_env(user),
                       cwd=user.pw_dir, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, f"{user.pw_name}'s script failed:\n{p.stdout}\n{p.stderr}"
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_globus_default_template_runs_a_users_task_as_that_user(site, mu_users):
    alice, bob, _ = mu_users
    site.configure()
    for name in ("user_config_template.yaml.j2", "user_config_schema.json"):
        shutil.copyfile(GLOBUS / name, site.dir / name)
    (site.dir / "identity_mapping.json").write_text(json.dumps([
        {"DATA_TYPE": "expression_identity_mapping#1.0.0", "mappings": [
            {"source": "{email}", "match": "(.*)@example.com", "output": "{0}"},
            {"source": "{username}", "match": "local:(.*)", "output": "{0}"}]}]))
    site.set(public=True)   # a key of Globus's ManagerEndpointConfig, for its web app
    site.start()
    assert "no effect here: public (visibility in Globus's web app" in (site.dir / "endpoint.log").read_text()

    worker_init = "export GREETING='hello from worker_init'"
    r = submit_as(site, alice, {"worker_init": worker_init})
    assert r.get("result") == [alice.pw_uid, "hello from worker_init"], r
    # her user endpoint: an ordinary endpoint in her home, its config.yaml as the template made it
    (ue,) = [u for u in site.status()["user_endpoints"] if u["user"] == alice.pw_name]
    config = Path(alice.pw_dir) / ".faas" / "endpoints" / ue["name"] / "config.yaml"
    assert os.stat(config).st_uid == alice.pw_uid
    written = yaml.safe_load(config.read_text())
    assert written["engine"]["type"] == "GlobusComputeEngine"
    assert written["engine"]["provider"]["worker_init"] == worker_init
    assert written["idle_heartbeats_soft"] == 10 and written["store"] == site.store.as_uri()

    # Globus's default schema: worker_init must be a string; the refusal names it
    r = submit_as(site, bob, {"worker_init": 5})
    assert r.get("error") == "TaskRefused" and "worker_init: 5 is not of type 'string'" in r["message"], r
    # a reserved word
    r = submit_as(site, bob, {"mapped_identity": "root"})
    assert r.get("error") == "TaskRefused" and "'mapped_identity' is a reserved word" in r["message"], r
    assert [a["outcome"] for a in site.audit() if a["identity"] == f"local:{bob.pw_name}"] == ["refused"] * 2
