"""The transfer action's Globus options: sync_level names, preserve_timestamp,
delete_destination_extra, skip_source_errors, filter_rules, label, deadline; Globus's task
document in the result; progress lines; a resumed copy writes only what is missing."""
from __future__ import annotations

import logging
import os
import uuid

import pytest
from test_actions_transfer import _orphan, site, transfer, tree, wait_done  # noqa: F401

from faas.flows.actions import ActionUnableToRun
from faas.flows.actions import files as files_mod
from faas.flows.actions.transfer import TransferProvider


def item(src="/data", dst="/copy", rec=True):
    return [{"source_path": src, "destination_path": dst, "recursive": rec}]


@pytest.mark.parametrize("name,level", [("exists", 0), ("size", 1), ("mtime", 2), ("checksum", 3)])
def test_sync_level_names(site, name, level):
    tmp, ctx = site
    transfer(ctx, item())
    (tmp / "dst" / "copy" / "a.txt").write_bytes(b"ALPHA\n")     # same size, other bytes
    os.utime(tmp / "dst" / "copy" / "a.txt", (1, 1))              # and older than its source
    _, doc = transfer(ctx, item(), sync_level=name)
    d = doc["details"]
    assert d["sync_level"] == level and d["DATA_TYPE"] == "task" and d["status"] == "SUCCEEDED"
    assert d["files_transferred"] == (1 if level >= 2 else 0), d


def test_globus_task_document_and_label(site):
    tmp, ctx = site
    _, doc = transfer(ctx, item(), label="nightly copy", preserve_timestamp=True,
                      encrypt_data=True, notify_on_succeeded=False)
    d = doc["details"]
    for k in ("task_id", "label", "files", "files_transferred", "files_skipped", "bytes_transferred",
              "sync_level", "verify_checksum", "preserve_timestamp", "delete_destination_extra",
              "skip_source_errors", "filter_rules", "deadline", "source_endpoint_id",
              "destination_endpoint_id", "nice_status", "fatal_error"):
        assert k in d, k
    assert d["label"] == "nightly copy" and d["preserve_timestamp"] is True


def test_preserve_timestamp(site):
    tmp, ctx = site
    os.utime(tmp / "src" / "data" / "a.txt", (1_500_000_000, 1_500_000_000))
    transfer(ctx, item("/data", "/kept"), preserve_timestamp=True)
    transfer(ctx, item("/data", "/fresh"))
    assert os.stat(tmp / "dst" / "kept" / "a.txt").st_mtime == 1_500_000_000
    assert os.stat(tmp / "dst" / "fresh" / "a.txt").st_mtime > 1_700_000_000


def test_delete_destination_extra(site):
    tmp, ctx = site
    transfer(ctx, item())
    (tmp / "dst" / "copy" / "stale.txt").write_bytes(b"old")
    (tmp / "dst" / "copy" / "sub" / "gone.bin").write_bytes(b"old")
    _, doc = transfer(ctx, item(), sync_level="checksum", delete_destination_extra=True)
    assert doc["details"]["files_deleted"] == 2 and doc["details"]["files_skipped"] == 2
    assert tree(tmp / "dst" / "copy") == tree(tmp / "src" / "data")


def test_filter_rules_globus_semantics(site):
    """First matching rule decides; no match: included; an excluded folder excludes its contents
    whatever include rules follow."""
    tmp, ctx = site
    src = tmp / "src" / "data"
    (src / "keep.txt").write_bytes(b"k")
    (src / "skip.tmp").write_bytes(b"t")
    (src / "cache").mkdir()
    (src / "cache" / "x.txt").write_bytes(b"c")
    (src / "sub" / "note.tmp").write_bytes(b"n")
    rules = [{"DATA_TYPE": "filter_rule", "method": "include", "type": "file", "name": "note.*"},
             {"method": "exclude", "type": "file", "name": "*.tmp"},
             {"method": "exclude", "type": "dir", "name": "cache"}]
    _, doc = transfer(ctx, item(), filter_rules=rules)
    assert doc["status"] == "SUCCEEDED", doc
    got = sorted(tree(tmp / "dst" / "copy"))
    assert got == ["a.txt", "keep.txt", "sub/b.bin", "sub/note.tmp"]
    assert doc["details"]["filter_rules"][0]["method"] == "include"


def test_skip_source_errors(site):
    tmp, ctx = site
    items = [{"source_path": "/missing", "destination_path": "/m"},
             {"source_path": "/single.txt", "destination_path": "/s.txt"}]
    _, doc = transfer(ctx, items)
    assert doc["status"] == "FAILED" and doc["details"]["error"] == "FileNotFoundError"
    _, doc = transfer(ctx, items, skip_source_errors=True)
    assert doc["status"] == "SUCCEEDED", doc
    d = doc["details"]
    assert d["files_transferred"] == 1 and [e["error"] for e in d["skipped_errors"]] == ["FileNotFoundError"]
    assert (tmp / "dst" / "s.txt").read_bytes() == b"one file\n"


def test_deadline(site):
    tmp, ctx = site
    _, doc = transfer(ctx, item(), deadline="2001-01-01T00:00:00Z")
    assert doc["status"] == "FAILED" and doc["details"]["error"] == "DeadlineExceeded", doc
    assert not (tmp / "dst" / "copy").exists()
    _, doc = transfer(ctx, item(), deadline="2999-01-01 00:00+02:00")
    assert doc["status"] == "SUCCEEDED" and doc["details"]["deadline"].startswith("2998-12-31T22:00")


@pytest.mark.parametrize("extra,match", [
    ({"sync_level": "sometimes"}, "sync_level: expected 0 .exists.*\"checksum\", got 'sometimes'"),
    ({"sync_level": True}, "sync_level"),
    ({"preserve_timestamp": "yes"}, "preserve_timestamp: expected true or false"),
    ({"delete_destination_extra": 1}, "delete_destination_extra"),
    ({"skip_source_errors": "no"}, "skip_source_errors"),
    ({"filter_rules": {"name": "*"}}, "filter_rules: expected a list"),
    ({"filter_rules": [{"method": "drop", "name": "*"}]}, r"filter_rules\[0\].method"),
    ({"filter_rules": [{"method": "exclude", "type": "link", "name": "*"}]}, r"filter_rules\[0\].type"),
    ({"filter_rules": [{"method": "exclude"}]}, r"filter_rules\[0\].name"),
    ({"deadline": "tomorrow"}, "deadline: expected an ISO 8601 time"),
    ({"label": "two\nlines"}, "label"),
])
def test_bad_options_name_the_key(site, extra, match):
    tmp, ctx = site
    body = {"source_endpoint_id": "src", "destination_endpoint_id": "dst", "transfer_items": item(),
            **extra}
    with pytest.raises(ActionUnableToRun, match=match):
        TransferProvider().run(body, uuid.uuid4().hex, ctx)


def test_progress_lines_in_the_log(site, monkeypatch, caplog):
    tmp, ctx = site
    from faas.flows.actions import transfer as T
    monkeypatch.setattr(T, "PROGRESS_FILES", 10)
    big = tmp / "src" / "big"
    big.mkdir()
    for i in range(35):
        (big / f"f{i:03}.txt").write_bytes(b"x" * i)
    with caplog.at_level(logging.INFO, logger="faas.flows.actions.transfer"):
        _, doc = transfer(ctx, item("/big", "/big"))
    lines = [r.getMessage() for r in caplog.records if "transfer" in r.getMessage()]
    assert doc["status"] == "SUCCEEDED"
    assert [ln.split(": ", 2)[2].split(" files")[0] for ln in lines] == \
        ["10 of 35", "20 of 35", "30 of 35", "35 of 35"]
    assert all(ln.startswith(f"flow run {ctx.run_id}: transfer ") for ln in lines)


def test_a_resumed_copy_writes_only_what_is_missing(site, monkeypatch):
    """A copy whose process died after 25 of 40 files: the resumed job writes the other 15 and
    nothing twice (every write is counted)."""
    tmp, ctx = site
    big = tmp / "src" / "big"
    big.mkdir()
    for i in range(40):
        (big / f"f{i:03}.bin").write_bytes(os.urandom(1000 + i))
    done = tmp / "dst" / "big"
    done.mkdir(parents=True)
    for i in range(25):
        (done / f"f{i:03}.bin").write_bytes((big / f"f{i:03}.bin").read_bytes())
    writes = []
    orig = files_mod.LocalFiles.write

    def counting(self, path, source):
        writes.append(os.path.basename(path))
        return orig(self, path, source)
    monkeypatch.setattr(files_mod.LocalFiles, "write", counting)
    p = TransferProvider()
    body = {"source_endpoint_id": "src", "destination_endpoint_id": "dst",
            "transfer_items": item("/big", "/big")}
    doc = _orphan(p, ctx, body, "req-resume-count")
    doc = wait_done(p, p.status(doc["action_id"], ctx), ctx)
    assert doc["status"] == "SUCCEEDED", doc
    assert sorted(writes) == [f"f{i:03}.bin" for i in range(25, 40)]
    assert (doc["details"]["files_transferred"], doc["details"]["files_skipped"]) == (15, 25)
    assert tree(done) == tree(big)


def test_options_on_s3(site, s3_bucket):
    """The same options with an S3 destination (the moto server): filters, a checksum sync that
    copies only the changed file, and delete_destination_extra removing an object."""
    tmp, ctx = site
    ctx.config["collections"]["bucket"] = f"s3://{s3_bucket}/area"
    (tmp / "src" / "data" / "skip.tmp").write_bytes(b"t")
    p = TransferProvider()

    def go(**extra):
        body = {"source_endpoint_id": "src", "destination_endpoint_id": "bucket",
                "transfer_items": item("/data/", "/in/"),
                "filter_rules": [{"method": "exclude", "type": "file", "name": "*.tmp"}], **extra}
        doc = wait_done(p, p.run(body, uuid.uuid4().hex, ctx), ctx)
        assert doc["status"] == "SUCCEEDED", doc
        return doc["details"]
    assert go()["files_transferred"] == 2
    s3, path = files_mod.open_url(f"s3://{s3_bucket}/area/in")
    s3.write(path + "/stale.txt", __import__("io").BytesIO(b"old"))
    (tmp / "src" / "data" / "a.txt").write_bytes(b"ALPHA\n")
    d = go(sync_level="checksum", delete_destination_extra=True, preserve_timestamp=True)
    assert (d["files_transferred"], d["files_skipped"], d["files_deleted"]) == (1, 1, 1), d
    assert sorted(rel for rel, _ in s3.walk(path)) == ["a.txt", "sub/b.bin"]


def test_symlinks_never_take_a_transfer_out_of_its_collection(site):
    """The runner may read what the flow's user may not: a symlink inside a collection must not
    copy /etc/hostname out, nor write through a symlinked destination folder."""
    tmp, ctx = site
    outside = tmp / "outside"
    outside.mkdir()
    (outside / "secret").write_text("secret")
    (tmp / "src" / "data" / "leak").symlink_to(outside / "secret")        # a file link out
    (tmp / "src" / "data" / "door").symlink_to(outside)                   # a folder link out
    (tmp / "src" / "exit").symlink_to(outside)
    _, doc = transfer(ctx, item())                                         # links ignored
    assert doc["status"] == "SUCCEEDED" and sorted(tree(tmp / "dst" / "copy")) == ["a.txt", "sub/b.bin"]
    with pytest.raises(ActionUnableToRun, match="source_path: path '/exit/secret': leaves its collection"):
        TransferProvider().run({"source_endpoint_id": "src", "destination_endpoint_id": "dst",
                                "transfer_items": item("/exit/secret", "/x", False)}, "req-x", ctx)
    (tmp / "dst" / "copy" / "sub").rename(tmp / "dst" / "copy" / "was-sub")
    (tmp / "dst" / "copy" / "sub").symlink_to(outside)                    # the destination turns
    _, doc = transfer(ctx, item(), sync_level="checksum")
    assert doc["status"] == "FAILED" and "leaves its collection" in doc["details"]["message"], doc
    assert sorted(p.name for p in outside.iterdir()) == ["secret"]
