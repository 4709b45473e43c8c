"""Globus's file operations (ls, stat, mkdir, rename) under their ActionUrls, on file:// and on
S3 (the moto server), and flows written for Globus run unchanged: transfer then ls, move =
transfer + delete, the docs' ls/stat/mkdir examples."""
from __future__ import annotations

import uuid

import pytest
from test_actions_transfer import site, tree  # noqa: F401

from faas.flows import run
from faas.flows.actions import ActionUnableToRun, resolve

LS, STAT, MKDIR, RENAME = (f"https://transfer.actions.globus.org/{op}" for op in
                           ("ls", "stat", "mkdir", "rename"))


def act(url, ctx, body):
    return resolve(url).run(body, uuid.uuid4().hex, ctx)


@pytest.fixture(params=["file", "s3"])
def coll(request, site):
    """(tmp, ctx, collection name) with data/a.txt, data/sub/b.bin, single.txt in it."""
    tmp, ctx = site
    if request.param == "file":
        return tmp, ctx, "src"
    bucket = request.getfixturevalue("s3_bucket")
    ctx.config["collections"]["bucket"] = f"s3://{bucket}/area"
    p = resolve("https://transfer.actions.globus.org/transfer")
    from test_actions_transfer import wait_done
    doc = wait_done(p, p.run({"source_endpoint": "src", "destination_endpoint": "bucket",
                              "DATA": [{"source_path": "/", "destination_path": "/",
                                        "recursive": True}]}, uuid.uuid4().hex, ctx), ctx)
    assert doc["status"] == "SUCCEEDED", doc
    return tmp, ctx, "bucket"


def test_ls_stat_mkdir_rename(coll):
    tmp, ctx, c = coll
    doc = act(LS, ctx, {"endpoint_id": c, "path": "/~/data/"})
    assert doc["status"] == "SUCCEEDED", doc
    d = doc["details"]
    assert (d["DATA_TYPE"], d["path"], d["total"], d["length"]) == ("file_list", "/~/data/", 2, 2)
    assert [(e["name"], e["type"], e["DATA_TYPE"]) for e in d["DATA"]] == [
        ("a.txt", "file", "file"), ("sub", "dir", "file")]
    assert d["DATA"][0]["size"] == 6 and d["DATA"][0]["last_modified"].endswith("+00:00")
    doc = act(LS, ctx, {"endpoint_id": c, "path": "/data", "filter": "type:file/name:~*.txt"})
    assert [e["name"] for e in doc["details"]["DATA"]] == ["a.txt"]
    doc = act(LS, ctx, {"endpoint_id": c, "path": "/data", "limit": 1, "offset": 1})
    assert [e["name"] for e in doc["details"]["DATA"]] == ["sub"] and doc["details"]["total"] == 2

    doc = act(STAT, ctx, {"endpoint_id": c, "path": "/data/sub/b.bin"})
    assert (doc["details"]["name"], doc["details"]["type"], doc["details"]["size"]) == \
        ("b.bin", "file", 300_000)
    doc = act(STAT, ctx, {"endpoint_id": c, "path": "/nothing"})
    assert doc["status"] == "FAILED" and doc["details"]["error"] == "NotFound"

    doc = act(MKDIR, ctx, {"endpoint_id": c, "path": "/~/new_folder"})
    assert doc["status"] == "SUCCEEDED", doc
    assert (doc["details"]["DATA_TYPE"], doc["details"]["code"]) == ("mkdir_result", "DirectoryCreated")
    assert act(STAT, ctx, {"endpoint_id": c, "path": "/new_folder"})["details"]["type"] == "dir"
    assert act(MKDIR, ctx, {"endpoint_id": c, "path": "/new_folder"})["status"] == "FAILED"

    doc = act(RENAME, ctx, {"endpoint_id": c, "old_path": "/data", "new_path": "/renamed"})
    assert doc["status"] == "SUCCEEDED", doc
    assert (doc["details"]["DATA_TYPE"], doc["details"]["code"]) == ("result", "FileRenamed")
    names = [e["name"] for e in act(LS, ctx, {"endpoint_id": c, "path": "/"})["details"]["DATA"]]
    assert "renamed" in names and "data" not in names
    got = act(LS, ctx, {"endpoint_id": c, "path": "/renamed/sub"})["details"]["DATA"]
    assert [e["name"] for e in got] == ["b.bin"]


def test_show_hidden_and_orderby(site):
    tmp, ctx = site
    (tmp / "src" / "data" / ".hidden").write_bytes(b"h" * 50)
    names = lambda **kw: [e["name"] for e in act(LS, ctx, {"endpoint_id": "src", "path": "/data",  # noqa: E731
                                                           **kw})["details"]["DATA"]]
    assert names() == [".hidden", "a.txt", "sub"]
    assert names(show_hidden=False) == ["a.txt", "sub"]
    assert names(orderby="name DESC") == ["sub", "a.txt", ".hidden"]
    assert names(orderby=["type", "size DESC"]) == ["sub", ".hidden", "a.txt"]


@pytest.mark.parametrize("url,body,match", [
    (LS, {"endpoint_id": "src", "path": "/../etc"}, r"path: .*'\.\.'"),
    (LS, {"endpoint_id": "src", "limit": -1}, "limit: expected a whole number"),
    (LS, {"endpoint_id": "src", "filter": "owner:root"}, "filter: clause 'owner:root'"),
    (LS, {"endpoint_id": "src", "show_hidden": "no"}, "show_hidden: expected true or false"),
    (STAT, {"endpoint_id": "src"}, "path: required"),
    (MKDIR, {"path": "/x"}, "endpoint_id"),
    (RENAME, {"endpoint_id": "src", "old_path": "/a"}, "new_path: required"),
    (RENAME, {"endpoint_id": "src", "old_path": "/a", "new_path": "/../../b"}, "new_path"),
])
def test_bad_bodies_name_the_key(site, url, body, match):
    tmp, ctx = site
    with pytest.raises(ActionUnableToRun, match=match):
        act(url, ctx, body)


# Globus's documentation examples (docs.globus.org/api/transfer/action-providers/), as written
# but for the endpoint ids, which the site maps to its collections.
DOCS_LS = {"StartAt": "ls", "States": {"ls": {
    "Type": "Action", "ActionUrl": "https://transfer.actions.globus.org/ls",
    "Parameters": {"endpoint_id.$": "$.endpoint_id", "path.$": "$.path"},
    "ResultPath": "$.ls_result", "End": True}}}
DOCS_STAT = {"StartAt": "stat", "States": {"stat": {
    "Type": "Action", "ActionUrl": "https://transfer.actions.globus.org/stat",
    "Parameters": {"endpoint_id.$": "$.endpoint_id", "path.$": "$.path"},
    "ResultPath": "$.stat_result", "End": True}}}
DOCS_MKDIR = {"StartAt": "mkdir", "States": {"mkdir": {
    "Type": "Action", "ActionUrl": "https://transfer.actions.globus.org/mkdir",
    "Parameters": {"endpoint_id.$": "$.endpoint_id", "path.$": "$.path"},
    "ResultPath": "$.mkdir_result", "End": True}}}
EP = "6c54cade-bde5-45c1-bdea-f4bd71dba2cc"

# Globus's "Move (copy and delete) files" example, reduced to its two actions
MOVE = {"StartAt": "Transfer", "States": {
    "Transfer": {"Type": "Action", "ActionUrl": "https://transfer.actions.globus.org/transfer",
                 "Parameters": {"source_endpoint.$": "$.source.id",
                                "destination_endpoint.$": "$.destination.id",
                                "DATA": [{"DATA_TYPE": "transfer_item", "source_path.$": "$.source.path",
                                          "destination_path.$": "$.destination.path",
                                          "recursive": True}]},
                 "ResultPath": "$.TransferResult", "Next": "Delete"},
    "Delete": {"Type": "Action", "ActionUrl": "https://transfer.actions.globus.org/delete",
               "Parameters": {"endpoint.$": "$.source.id", "recursive": True,
                              "DATA": [{"DATA_TYPE": "delete_item", "path.$": "$.source.path"}]},
               "ResultPath": "$.DeleteResult", "End": True}}}


def test_docs_examples_run_unchanged(coll):
    tmp, ctx, c = coll
    ctx.config["collections"][EP] = ctx.config["collections"][c]
    kw = dict(store_url=ctx.store_url, config=ctx.config)
    doc = run(DOCS_MKDIR, {"endpoint_id": EP, "path": "/~/new_folder"}, **kw)
    assert doc["status"] == "SUCCEEDED", doc
    assert doc["output"]["mkdir_result"]["details"]["code"] == "DirectoryCreated"
    doc = run(DOCS_LS, {"endpoint_id": EP, "path": "/"}, **kw)
    assert "new_folder" in [e["name"] for e in doc["output"]["ls_result"]["details"]["DATA"]]
    doc = run(DOCS_STAT, {"endpoint_id": EP, "path": "/data/"}, **kw)
    assert doc["output"]["stat_result"]["details"]["type"] == "dir"


def test_move_is_transfer_then_delete(coll):
    tmp, ctx, c = coll
    ctx.config["collections"][EP] = ctx.config["collections"][c]
    expected = tree(tmp / "src" / "data")
    doc = run(MOVE, {"source": {"id": EP, "path": "/data/"},
                     "destination": {"id": "dst", "path": "/moved/"}},
              store_url=ctx.store_url, config=ctx.config)
    assert doc["status"] == "SUCCEEDED", doc
    assert doc["output"]["TransferResult"]["details"]["files_transferred"] == 2
    assert tree(tmp / "dst" / "moved") == expected
    gone = run(DOCS_STAT, {"endpoint_id": EP, "path": "/data/"}, store_url=ctx.store_url,
               config=ctx.config)
    assert gone["status"] == "FAILED" and "NotFound" in (gone["cause"] or "") + str(gone["error"])


def test_ls_refuses_the_retired_path_only(site):
    """``path_only`` was an addition of Globus's retired actions.globus.org/transfer/ls: refused
    by name (pointing to stat) rather than ignored, which listed the folder's contents instead."""
    _, ctx = site
    with pytest.raises(ActionUnableToRun, match="path_only.*retired.*stat"):
        act("https://actions.globus.org/transfer/ls", ctx, {"endpoint_id": "src", "path": "/data",
                                                            "path_only": True})
    doc = act(LS, ctx, {"endpoint_id": "src", "path": "/data", "path_only": False})
    assert doc["details"]["total"] == 2
