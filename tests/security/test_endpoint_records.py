"""An endpoint record (``endpoints/NAME.json``) names the queue a client sends its tasks to: the
tasks' arguments and the per-task secret that seals their results. A record someone else wrote
must never be believed (faas/endpoint/registry.py): else whoever may write the store's
``endpoints/`` reads the tasks, forges their results under the leaked secret, and the client
unpickles them.

Before, the client believed any record: on a shared file store (a multi-user endpoint's, whose
``endpoints/`` is 1777) another account squatted a name no endpoint had published yet and got
the tasks sent to it; on a bucket, anyone with write access overwrote a signed endpoint's record
(its queue, and ``signed_tasks: false``) and got the tasks; a record copying an endpoint's id made
every lookup by that id fail ("published by 2 endpoints").

The attackers are other Unix accounts (useradd), each writing what its own account can."""
from __future__ import annotations

import json
import os
import sys
import uuid

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(__file__)))
from helpers import QUEUE_DEPTH, python_as, running_endpoint, shared_script  # noqa: E402
from multiuser.conftest import mu_shared, mu_users  # noqa: E402,F401 - fixtures: real accounts

from faas import signing  # noqa: E402
from faas.endpoint import registry  # noqa: E402
from faas.endpoint.multiuser.spool import SHARED_PREFIXES  # noqa: E402
from faas.store import open_store  # noqa: E402

pytestmark = pytest.mark.slow

# The attacker: a queue of its own anyone may write into, and a record naming it.
PLANT = """
import json, os, sys, time
from faas.store import open_store
from faas.store.local_queue import LocalQueue
store_url, name, queue_dir, endpoint_id = sys.argv[1:5]
for k, v in json.loads(sys.argv[5]).items():
    os.environ[k] = v
os.makedirs(queue_dir, exist_ok=True)
os.chmod(queue_dir, 0o1777)
q = LocalQueue.create(f"local://{queue_dir}/evil")
for f in os.listdir(queue_dir):
    if f.startswith("evil.sqlite3"):
        os.chmod(os.path.join(queue_dir, f), 0o666)
record = {"name": name, "status": "running", "queue": q.url, "endpoint_id": endpoint_id,
          "signed_tasks": False, "signing_key_ids": [], "heartbeat_at": time.time()}
open_store(store_url).put(f"endpoints/{name}.json", json.dumps(record).encode())
print("planted", flush=True)
"""

# The victim: one task to the endpoint ``ref``; what happened.
VICTIM = """
import json, os, sys
import faas
store_url, ref = sys.argv[1:3]
for k, v in json.loads(sys.argv[3]).items():
    os.environ[k] = v
c = faas.client(store=store_url, endpoint=ref, autostart=False)
try:
    print(json.dumps({"sent": c.run(function_id=c.register_function(len), args=("secret-arg",))}))
except Exception as e:
    print(json.dumps({"error": type(e).__name__, "message": str(e)}))
"""



def _shared_file_store(base):
    """A file store laid out as a multi-user endpoint's (spool.prepare): root's, endpoints/ 1777."""
    root = base / f"store-{uuid.uuid4().hex[:6]}"
    root.mkdir(mode=0o755)
    for prefix, mode in SHARED_PREFIXES.items():
        (root / prefix).mkdir()
        os.chmod(root / prefix, mode)
    return root


def _shared_site(base):
    """A shared file store with a multi-user endpoint's record in it, written by root (as its
    router does): the store's root and the endpoint's id."""
    root = _shared_file_store(base)
    site_id = str(uuid.uuid4())
    registry.publish(open_store(root.as_uri()), {"name": "site", "status": "running", "endpoint_id": site_id,
                                                 "queue": f"spool://{root}/spool/site", "multi_user": True})
    return root, site_id


def _bobs_folder(base, bob):
    d = base / f"bob-{uuid.uuid4().hex[:6]}"
    d.mkdir()
    os.chown(d, bob.pw_uid, bob.pw_gid)
    return d


def _run(user, base, script, *args):
    name = {PLANT: "plant.py", VICTIM: "victim.py", QUEUE_DEPTH: "depth.py", LIST: "list.py"}[script]
    p = python_as(user, shared_script(base, name, script), *args)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip().splitlines()[-1]


def test_a_squatted_or_copied_record_on_a_shared_file_store_is_not_believed(mu_users, mu_shared):
    alice, bob, _ = mu_users
    root, site_id = _shared_site(mu_shared)
    url = root.as_uri()
    bobs_queue = _bobs_folder(mu_shared, bob)
    # bob: a name nobody published yet, and a copy of the site's id under a name of his
    assert _run(bob, mu_shared, PLANT, url, "newsite", str(bobs_queue), str(uuid.uuid4()), "{}") == "planted"
    assert _run(bob, mu_shared, PLANT, url, "bobsite", str(bobs_queue), site_id, "{}") == "planted"
    squat = json.loads(_run(alice, mu_shared, VICTIM, url, "newsite", "{}"))
    assert squat.get("error") == "RecordNotTrusted", squat
    assert f"written by uid {bob.pw_uid}" in squat["message"]
    by_id = json.loads(_run(alice, mu_shared, VICTIM, url, site_id, "{}"))
    assert "published by 2 endpoints" not in json.dumps(by_id), by_id
    assert _run(alice, mu_shared, QUEUE_DEPTH, f"local://{bobs_queue}/evil") == "0", "alice's task reached bob's queue"


UNREADABLE = """
import os, sys
d = sys.argv[1]
os.mkdir(os.path.join(d, "zz"), 0o000)
fd = os.open(os.path.join(d, "zz.json"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o000)
os.close(fd)
print("planted", flush=True)
"""


def test_an_unreadable_entry_in_a_shared_endpoints_folder_hides_no_record(mu_users, mu_shared):
    """Before: bob's mode-000 folder (or record) in the shared ``endpoints/`` (1777) made every
    listing raise "cannot list ...: Permission denied": alice's console pages, ``faas endpoint
    list`` and her lookups by endpoint id failed until root removed it."""
    alice, bob, _ = mu_users
    root, site_id = _shared_site(mu_shared)
    url = root.as_uri()
    p = python_as(bob, shared_script(mu_shared, "unreadable.py", UNREADABLE), str(root / "endpoints"))
    assert p.returncode == 0, p.stderr
    listed = _run(alice, mu_shared, LIST, url, site_id)
    assert listed == json.dumps({"names": ["site"], "by_id": "site"}), listed


LIST = """
import json, sys
from faas.endpoint import registry
from faas.store import open_store
store = open_store(sys.argv[1])
try:
    print(json.dumps({"names": [r["name"] for r in registry.list_all(store)],
                      "by_id": registry.resolve(store, sys.argv[2])["name"]}))
except Exception as e:
    print(json.dumps({"error": type(e).__name__, "message": str(e)}))
"""


@pytest.mark.aws
def test_a_record_overwritten_in_the_bucket_is_not_believed(mu_users, mu_shared, moto_url, s3_bucket):
    alice, bob, _ = mu_users
    key = signing.new_key("k1")
    store = f"s3://{s3_bucket}/faas"
    aws = {k: os.environ[k] for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                      "AWS_DEFAULT_REGION")}
    home = mu_shared / f"site-{uuid.uuid4().hex[:6]}"
    with running_endpoint(home, name="site", store=store, queue="sqs", signing_keys=[key]):
        victim_env = json.dumps(dict(aws, FAAS_SIGNING_KEY=key))
        first = json.loads(_run(alice, mu_shared, VICTIM, store, "site", victim_env))
        assert "sent" in first, first
        bobs_queue = _bobs_folder(mu_shared, bob)
        assert _run(bob, mu_shared, PLANT, store, "site", str(bobs_queue), str(uuid.uuid4()),
                    json.dumps(aws)) == "planted"
        after = json.loads(_run(alice, mu_shared, VICTIM, store, "site", victim_env))
        assert after.get("error") == "RecordNotTrusted", after
        assert "no MAC under your signing key 'k1'" in after["message"]
        assert _run(alice, mu_shared, QUEUE_DEPTH, f"local://{bobs_queue}/evil") == "0", \
            "alice's task reached bob's queue"
