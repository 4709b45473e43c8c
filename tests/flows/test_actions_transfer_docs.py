"""docs/flows.md's transfer examples run as written, in order, against the collection the docs
configure (``mydata``, here a temporary folder)."""
from __future__ import annotations

import grp
import json
import os
import re
import shutil
import uuid
from pathlib import Path

from test_actions_transfer import wait_done

from faas.flows.actions import ActionContext, resolve

DOCS = Path(__file__).resolve().parents[2] / "docs" / "flows.md"
EXAMPLE = re.compile(r"<!-- example: (\S+) -->\s*```json\n(.*?)```", re.S)


def examples() -> list[tuple[str, dict]]:
    section = DOCS.read_text().split("## Transfer actions", 1)[1]
    return [(url, json.loads(body)) for url, body in EXAMPLE.findall(section)]


def test_every_transfer_action_has_an_example():
    urls = [u.rsplit("/", 1)[1] for u, _ in examples()]
    assert urls == ["mkdir", "transfer", "ls", "stat", "rename", "manage_permission", "delete"]


def test_the_examples_run_as_written(tmp_path):
    data = tmp_path / "data"
    (data / "raw" / "sub").mkdir(parents=True)
    (data / "raw" / "run1.dat").write_bytes(b"1" * 100)
    (data / "raw" / "scratch.tmp").write_bytes(b"t")
    (data / "raw" / "sub" / "run2.dat").write_bytes(b"2" * 10)
    ctx = ActionContext((tmp_path / "store").as_uri(), "run-docs", "flow-docs", "alice",
                        config={"collections": {"mydata": data.as_uri()},
                                "permission_managers": {"mydata": ["alice"]}})
    can_acl = (os.geteuid() == 0 and shutil.which("setfacl") is not None
               and any(g.gr_name == "users" for g in grp.getgrall()))
    results = {}
    for url, body in examples():
        op = url.rsplit("/", 1)[1]
        if op == "manage_permission" and not can_acl:
            continue          # needs root, setfacl and the group "users"
        p = resolve(url)
        doc = wait_done(p, p.run(body, uuid.uuid4().hex, ctx), ctx)
        assert doc["status"] == "SUCCEEDED", (url, doc)
        results[op] = doc["details"]
    assert results["transfer"]["files_transferred"] == 2              # *.tmp filtered out
    assert [e["name"] for e in results["ls"]["DATA"]] == ["run1.dat"]
    assert results["stat"]["size"] == 100
    assert not (data / "inbox").exists()                              # deleted at the end
    if can_acl:
        assert results["manage_permission"]["code"] == "Created"
