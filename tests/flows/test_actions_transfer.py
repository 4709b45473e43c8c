"""The transfer and delete actions on file://, memory:// and s3:// (the moto server)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import pytest

from faas.flows.actions import TRANSFER, ActionConflict, ActionContext, ActionUnableToRun, canonical, jobs, resolve
from faas.flows.actions.files import open_url
from faas.flows.actions.transfer import DeleteProvider, TransferProvider

WAIT = 60.0


def wait_done(provider, doc, ctx, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while doc["status"] not in ("SUCCEEDED", "FAILED"):
        assert time.monotonic() < deadline, f"action still {doc['status']} after {timeout} s: {doc}"
        time.sleep(0.05)
        doc = provider.status(doc["action_id"], ctx)
    return doc


def tree(root) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def site(tmp_path):
    src = tmp_path / "src"
    (src / "data" / "sub").mkdir(parents=True)
    (src / "data" / "a.txt").write_bytes(b"alpha\n")
    (src / "data" / "sub" / "b.bin").write_bytes(os.urandom(300_000))
    (src / "single.txt").write_bytes(b"one file\n")
    ctx = ActionContext((tmp_path / "store").as_uri(), "run-1", "flow-1", "alice",
                        config={"collections": {"src": src.as_uri(), "dst": (tmp_path / "dst").as_uri()}})
    return tmp_path, ctx


def transfer(ctx, items, rid=None, **extra):
    p = TransferProvider()
    body = {"source_endpoint_id": "src", "destination_endpoint_id": "dst", "transfer_items": items, **extra}
    return p, wait_done(p, p.run(body, rid or uuid.uuid4().hex, ctx), ctx)


def test_aliases_resolve_to_transfer():
    for url in ("https://actions.automate.globus.org/transfer/transfer",
                "https://transfer.actions.globus.org/transfer/", "faas://transfer"):
        assert canonical(url) == TRANSFER
        assert isinstance(resolve(url), TransferProvider)
    assert isinstance(resolve("https://actions.automate.globus.org/transfer/delete"), DeleteProvider)


def test_recursive_folder_and_single_file(site):
    tmp, ctx = site
    _, doc = transfer(ctx, [{"source_path": "/~/data/", "destination_path": "/~/copy/", "recursive": True},
                            {"source_path": "/single.txt", "destination_path": "/files/"}])
    assert doc["status"] == "SUCCEEDED", doc
    d = doc["details"]
    assert (d["files"], d["files_transferred"], d["files_skipped"]) == (3, 3, 0)
    assert d["bytes_transferred"] == 6 + 300_000 + 9
    assert tree(tmp / "dst" / "copy") == tree(tmp / "src" / "data")
    assert (tmp / "dst" / "files" / "single.txt").read_bytes() == b"one file\n"
    assert not [p for p in (tmp / "dst").rglob("*.part")]


@pytest.mark.parametrize("level,expect", [(0, 1), (1, 2), (2, 2), (3, 2)])
def test_sync_levels(site, level, expect):
    tmp, ctx = site
    item = [{"source_path": "/data", "destination_path": "/copy", "recursive": True}]
    transfer(ctx, item)
    # a.txt: same size, other content, destination newer; b.bin: other size
    (tmp / "dst" / "copy" / "a.txt").write_bytes(b"ALPHA\n")
    (tmp / "dst" / "copy" / "sub" / "b.bin").write_bytes(b"short")
    if level == 2:   # make the source of a.txt newer than its copy
        os.utime(tmp / "dst" / "copy" / "a.txt", (1, 1))
    _, doc = transfer(ctx, item, sync_level=level)
    d = doc["details"]
    copied = {0: 0, 1: 1, 2: 2, 3: 2}[level]
    assert (d["files_transferred"], d["files_skipped"]) == (copied, 2 - copied), d
    if level >= 2:
        assert tree(tmp / "dst" / "copy") == tree(tmp / "src" / "data")
    elif level == 1:
        assert (tmp / "dst" / "copy" / "a.txt").read_bytes() == b"ALPHA\n"


def test_move_deletes_source_after_copy(site):
    tmp, ctx = site
    expected = tree(tmp / "src" / "data")
    _, doc = transfer(ctx, [{"source_path": "/data", "destination_path": "/moved", "recursive": True},
                            {"source_path": "/single.txt", "destination_path": "/single.txt"}],
                      delete_source=True)
    assert doc["status"] == "SUCCEEDED" and doc["details"]["delete_source"] is True
    assert tree(tmp / "dst" / "moved") == expected
    assert not (tmp / "src" / "data").exists() and not (tmp / "src" / "single.txt").exists()


def test_failures_are_reported(site):
    tmp, ctx = site
    _, doc = transfer(ctx, [{"source_path": "/nothing", "destination_path": "/x"}])
    assert doc["status"] == "FAILED" and doc["details"]["error"] == "FileNotFoundError"
    assert "does not exist" in doc["details"]["message"]
    _, doc = transfer(ctx, [{"source_path": "/data", "destination_path": "/x", "recursive": False}])
    assert doc["status"] == "FAILED" and "recursive is false" in doc["details"]["message"]
    _, doc = transfer(ctx, [{"source_path": "/single.txt", "destination_path": "/y", "recursive": True}])
    assert doc["status"] == "FAILED" and "recursive is true" in doc["details"]["message"]


def test_recursive_left_out_follows_the_source(site):
    """Transfer's API treats an absent (or null) ``recursive`` as "detect from the source path"
    (globus-sdk 3.x omits it from add_item for that reason)."""
    tmp, ctx = site
    expected = tree(tmp / "src" / "data")
    _, doc = transfer(ctx, [{"source_path": "/data", "destination_path": "/copy"},
                            {"source_path": "/single.txt", "destination_path": "/one.txt",
                             "recursive": None}], delete_source=True)
    assert doc["status"] == "SUCCEEDED", doc
    assert tree(tmp / "dst" / "copy") == expected
    assert (tmp / "dst" / "one.txt").read_bytes() == b"one file\n"
    assert not (tmp / "src" / "data").exists() and not (tmp / "src" / "single.txt").exists()


@pytest.mark.parametrize("body,match", [
    ({"source_endpoint_id": "nowhere", "destination_endpoint_id": "dst",
      "transfer_items": [{"source_path": "/a", "destination_path": "/b"}]}, "source_endpoint_id: 'nowhere'"),
    ({"source_endpoint_id": "src", "destination_endpoint_id": "dst", "transfer_items": []}, "transfer_items"),
    ({"source_endpoint_id": "src", "destination_endpoint_id": "dst",
      "transfer_items": [{"source_path": "/../etc/passwd", "destination_path": "/b"}]}, r"\.\."),
    ({"source_endpoint_id": "src", "destination_endpoint_id": "dst", "sync_level": 7,
      "transfer_items": [{"source_path": "/a", "destination_path": "/b"}]}, "sync_level"),
    ({"source_endpoint_id": "src", "destination_endpoint_id": "dst", "verify_checksum": "yes",
      "transfer_items": [{"source_path": "/a", "destination_path": "/b"}]}, "verify_checksum"),
])
def test_bad_bodies_start_nothing(site, body, match):
    tmp, ctx = site
    with pytest.raises(ActionUnableToRun, match=match):
        TransferProvider().run(body, "req-bad", ctx)
    assert not (tmp / "store").exists()


def test_a_site_may_allow_collections_only(site):
    tmp, ctx = site
    ctx.config["transfer"] = {"allow_urls": False}
    body = {"source_endpoint_id": "file:///etc", "destination_endpoint_id": "dst",
            "transfer_items": [{"source_path": "/passwd", "destination_path": "/p"}]}
    with pytest.raises(ActionUnableToRun, match="allows only its collections"):
        TransferProvider().run(body, "req-urls", ctx)
    _, doc = transfer(ctx, [{"source_path": "/single.txt", "destination_path": "/ok.txt"}])
    assert doc["status"] == "SUCCEEDED"


def test_same_request_id_is_the_same_action(site):
    tmp, ctx = site
    item = [{"source_path": "/single.txt", "destination_path": "/once.txt"}]
    p, first = transfer(ctx, item, rid="req-once")
    (tmp / "dst" / "once.txt").write_bytes(b"changed since")
    again = TransferProvider().run({"source_endpoint_id": "src", "destination_endpoint_id": "dst",
                                    "transfer_items": item}, "req-once", ctx)
    assert again["action_id"] == first["action_id"] and again["status"] == "SUCCEEDED"
    assert (tmp / "dst" / "once.txt").read_bytes() == b"changed since"   # not copied again


def test_release_of_a_running_action_is_refused(site):
    tmp, ctx = site
    p = TransferProvider()
    body = {"source_endpoint_id": "src", "destination_endpoint_id": "dst",
            "transfer_items": [{"source_path": "/data", "destination_path": "/c", "recursive": True}]}
    doc = _orphan(p, ctx, body, "req-release-active")
    with pytest.raises(ActionConflict, match="still ACTIVE"):
        p.release(doc["action_id"], ctx)


def test_release_forgets_a_finished_action(site):
    tmp, ctx = site
    p, doc = transfer(ctx, [{"source_path": "/single.txt", "destination_path": "/r.txt"}], rid="req-rel")
    p.release(doc["action_id"], ctx)
    from faas.flows.actions import ActionNotFound
    with pytest.raises(ActionNotFound):
        p.status(doc["action_id"], ctx)


def _orphan(p, ctx, body, rid, **doc_fields):
    """An action document as a process killed right after writing it leaves it: ACTIVE, its
    lease expired, nothing running here."""
    from faas.flows.actions.base import new_doc
    plan = p._plan(body, ctx)

    def make(aid):
        doc = new_doc(p.kind, aid, rid, ctx)
        doc.update(_plan=plan, _attempts=1, **doc_fields,
                   _lease={"owner": "gone:1", "token": "dead", "expires": time.time() - 1})
        return doc
    doc, _ = p.docs.create(ctx, rid, make)
    return doc


def test_status_resumes_a_job_whose_process_died(site):
    tmp, ctx = site
    p = TransferProvider()
    body = {"source_endpoint_id": "src", "destination_endpoint_id": "dst",
            "transfer_items": [{"source_path": "/data", "destination_path": "/resumed", "recursive": True}]}
    (tmp / "dst" / "resumed").mkdir(parents=True)
    (tmp / "dst" / "resumed" / "a.txt").write_bytes(b"alpha\n")          # copied before the crash
    doc = _orphan(p, ctx, body, "req-orphan")
    doc = wait_done(p, p.status(doc["action_id"], ctx), ctx)
    assert doc["status"] == "SUCCEEDED", doc
    assert (doc["details"]["files_transferred"], doc["details"]["files_skipped"]) == (1, 1)
    assert tree(tmp / "dst" / "resumed") == tree(tmp / "src" / "data")


def test_cancel(site):
    tmp, ctx = site
    p = TransferProvider()
    body = {"source_endpoint_id": "src", "destination_endpoint_id": "dst",
            "transfer_items": [{"source_path": "/data", "destination_path": "/c", "recursive": True}]}
    doc = _orphan(p, ctx, body, "req-cancel-orphan")
    doc = p.cancel(doc["action_id"], ctx)           # nobody holds it: failed at once
    assert (doc["status"], doc["display_status"]) == ("FAILED", "Canceled")
    doc = _orphan(p, ctx, body, "req-cancel-held")
    ctx_key = jobs.cancel_key(p.docs, doc["action_id"])
    from faas.flows.actions.base import store_for
    store_for(ctx.store_url).put(ctx_key, b"1")      # asked while its holder was away
    doc = wait_done(p, p.status(doc["action_id"], ctx), ctx)
    assert (doc["status"], doc["display_status"]) == ("FAILED", "Canceled")
    assert not (tmp / "dst" / "c").exists()


def test_cancel_stops_a_running_copy(site, monkeypatch):
    """Cancel while a file is being written: the copy stops at its next heartbeat."""
    tmp, ctx = site
    from faas.flows.actions import files
    monkeypatch.setattr(jobs, "HEARTBEAT", 0.0)

    def slow_write(self, path, source):      # a copy that would take minutes
        while source.read(1):
            time.sleep(0.01)
    monkeypatch.setattr(files.LocalFiles, "write", slow_write)
    p = TransferProvider()
    doc = p.run({"source_endpoint_id": "src", "destination_endpoint_id": "dst",
                 "transfer_items": [{"source_path": "/data", "destination_path": "/c", "recursive": True}]},
                "req-cancel-running", ctx)
    deadline = time.monotonic() + WAIT
    while p.status(doc["action_id"], ctx)["display_status"] != "Transferring":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert p.cancel(doc["action_id"], ctx)["display_status"] == "Canceling"
    doc = wait_done(p, doc, ctx)
    assert (doc["status"], doc["display_status"], doc["details"]["error"]) == ("FAILED", "Canceled", "Canceled")


KILLED = r"""
import sys, time
from faas.flows.actions import ActionContext, jobs
from faas.flows.actions.transfer import TransferProvider
from faas.flows.actions import files
jobs.LEASE = 1.0
orig = files.LocalFiles.write
def slow_write(self, path, source):   # the first file's copy never ends: we are killed in it
    time.sleep(3600)
files.LocalFiles.write = slow_write
ctx = ActionContext(sys.argv[1], "run-k", "flow-k", "alice",
                    config={"collections": {"src": sys.argv[2], "dst": sys.argv[3]}})
doc = TransferProvider().run({"source_endpoint_id": "src", "destination_endpoint_id": "dst",
    "transfer_items": [{"source_path": "/data", "destination_path": "/k", "recursive": True}]}, "req-kill", ctx)
print(doc["action_id"], flush=True)
time.sleep(3600)
"""


def test_kill_9_mid_copy_then_status_elsewhere_finishes_it(site):
    """A real process starts the copy and is killed with SIGKILL in the middle; ``status`` in
    this process sees the lease expire and finishes the copy; ``run`` again starts nothing new."""
    tmp, ctx = site
    proc = subprocess.Popen([sys.executable, "-c", KILLED, ctx.store_url, (tmp / "src").as_uri(),
                             (tmp / "dst").as_uri()], stdout=subprocess.PIPE, text=True)
    try:
        aid = proc.stdout.readline().strip()
        assert aid, "the child did not start the transfer"
        p = TransferProvider()
        deadline = time.monotonic() + WAIT
        while p.status(aid, ctx)["display_status"] == "Transfer queued" and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        proc.kill()
        proc.wait(10)
    again = p.run({"source_endpoint_id": "src", "destination_endpoint_id": "dst",
                   "transfer_items": [{"source_path": "/data", "destination_path": "/k", "recursive": True}]},
                  "req-kill", ctx)
    assert again["action_id"] == aid and again["status"] in ("ACTIVE", "SUCCEEDED")
    doc = wait_done(p, again, ctx)        # once the child's lease (1 s) expires, this process resumes
    assert doc["status"] == "SUCCEEDED", doc
    assert tree(tmp / "dst" / "k") == tree(tmp / "src" / "data")
    raw = json.loads((tmp / "store" / "flows" / "actions" / "transfer" / f"{aid}.json").read_text())
    assert raw["_attempts"] == 2


def test_s3_round_trip_move_and_delete(site, s3_bucket):
    """file:// -> s3:// (recursive), s3:// -> s3:// as a move, s3:// -> file://, then the delete
    action on s3://, all against the moto server."""
    tmp, ctx = site
    ctx.config["collections"]["bucket"] = f"s3://{s3_bucket}/area"
    (tmp / "src" / "data" / "sub" / "big.bin").write_bytes(os.urandom(9 * 1024 * 1024))  # multipart
    p = TransferProvider()

    def go(src, dst, items, **extra):
        body = {"source_endpoint_id": src, "destination_endpoint_id": dst, "transfer_items": items, **extra}
        doc = wait_done(p, p.run(body, uuid.uuid4().hex, ctx), ctx)
        assert doc["status"] == "SUCCEEDED", doc
        return doc["details"]

    d = go("src", "bucket", [{"source_path": "/data/", "destination_path": "/in/", "recursive": True}])
    assert d["files_transferred"] == 3
    d = go("src", "bucket", [{"source_path": "/data/", "destination_path": "/in/", "recursive": True}],
           sync_level=3)
    assert (d["files_transferred"], d["files_skipped"]) == (0, 3)
    go("bucket", "bucket", [{"source_path": "/in", "destination_path": "/moved", "recursive": True}],
       delete_source=True)
    s3, path = open_url(f"s3://{s3_bucket}/area")
    assert sorted(rel for rel, _ in s3.walk(path)) == ["moved/a.txt", "moved/sub/b.bin", "moved/sub/big.bin"]
    go("bucket", "dst", [{"source_path": "/moved", "destination_path": "/back", "recursive": True},
                         {"source_path": "/moved/a.txt", "destination_path": "/one/"}])
    assert tree(tmp / "dst" / "back") == tree(tmp / "src" / "data")
    assert (tmp / "dst" / "one" / "a.txt").read_bytes() == b"alpha\n"
    # the delete action: a folder needs recursive; a missing path fails unless ignore_missing
    dp = DeleteProvider()
    doc = wait_done(dp, dp.run({"endpoint_id": "bucket", "items": ["/moved"]}, "del-1", ctx), ctx)
    assert doc["status"] == "FAILED" and "recursive" in doc["details"]["message"]
    doc = wait_done(dp, dp.run({"endpoint_id": "bucket", "items": ["/moved", "/gone"], "recursive": True,
                                "ignore_missing": True}, "del-2", ctx), ctx)
    assert doc["status"] == "SUCCEEDED" and doc["details"]["items_deleted"] == 1
    assert list(s3.walk(path)) == []
    doc = wait_done(dp, dp.run({"endpoint_id": "bucket", "items": ["/gone"]}, "del-3", ctx), ctx)
    assert doc["status"] == "FAILED" and doc["details"]["error"] == "FileNotFoundError"


def test_action_docs_in_an_s3_site_store(site, s3_bucket):
    """The site store itself on S3: documents, leases and idempotency work there too."""
    tmp, ctx = site
    ctx.store_url = f"s3://{s3_bucket}/site"
    p = TransferProvider()
    body = {"source_endpoint_id": "src", "destination_endpoint_id": "dst",
            "transfer_items": [{"source_path": "/single.txt", "destination_path": "/s.txt"}]}
    doc = wait_done(p, p.run(body, "req-s3-store", ctx), ctx)
    assert doc["status"] == "SUCCEEDED"
    assert p.run(body, "req-s3-store", ctx)["action_id"] == doc["action_id"]
    s3, path = open_url(ctx.store_url)
    assert [rel for rel, _ in s3.walk(path)] == [f"flows/actions/transfer/{doc['action_id']}.json"]
