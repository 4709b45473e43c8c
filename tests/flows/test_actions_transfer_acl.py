"""set_permission on a POSIX collection, tested as the attacker would: a real Unix account
(useradd; the tests run as root) cannot read a file before the grant and can after it; symlinks
and hard links inside the collection that point outside are refused or skipped, and their
targets' ACLs stay as they were. And the talk's "Transfer and Set Permissions" flow runs as
written, with only its collection ids mapped in the site config."""
from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

from faas.flows import run
from faas.flows.actions import ActionContext, ActionUnableToRun, resolve

SET = "https://actions.automate.globus.org/transfer/set_permission"
MANAGE = "https://transfer.actions.globus.org/manage_permission"

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not all(shutil.which(c) for c in ("setfacl", "getfacl", "useradd", "runuser")),
    reason="needs root, setfacl/getfacl (Debian's acl), useradd and runuser")


@pytest.fixture(scope="module")
def account():
    """A fresh account and a group it belongs to; removed at the end."""
    name = "fac" + secrets.token_hex(3)
    group = name + "g"
    subprocess.run(["groupadd", group], check=True, capture_output=True)
    subprocess.run(["useradd", "-M", "-s", "/bin/sh", "-G", group, name], check=True, capture_output=True)
    try:
        yield name, group
    finally:
        subprocess.run(["userdel", "-f", name], capture_output=True)
        subprocess.run(["groupdel", group], capture_output=True)


def can_read(user: str, path: Path) -> bool:
    return subprocess.run(["runuser", "-u", user, "--", "cat", str(path)], capture_output=True,
                          timeout=30).returncode == 0


def acl(path: Path) -> str:
    return subprocess.run(["getfacl", "-c", "-n", str(path)], capture_output=True, text=True,
                          check=True).stdout


@pytest.fixture
def coll(tmp_path):
    """A root-only collection folder (0700, files 0600) and a secret outside it."""
    base = Path(tempfile.mkdtemp(prefix="faas-acl-", dir="/tmp"))
    outside = Path(tempfile.mkdtemp(prefix="faas-acl-outside-", dir="/tmp"))
    os.chmod(outside, 0o755)
    secret = outside / "secret"
    secret.write_text("not yours\n")
    os.chmod(secret, 0o644)      # readable but for the collection's files: the ACL is the test
    (base / "shared" / "sub").mkdir(parents=True)
    for p, text in ((base / "shared" / "data.txt", "hello\n"), (base / "shared" / "sub" / "deep.txt", "deep\n"),
                    (base / "private.txt", "private\n")):
        p.write_text(text)
        os.chmod(p, 0o600)
    ctx = ActionContext((tmp_path / "store").as_uri(), "run-acl", "flow-acl", "alice",
                        config={"collections": {"coll": base.as_uri(), "src": base.as_uri()},
                                "permission_managers": {"coll": ["alice"]}})
    yield base, outside, secret, ctx
    shutil.rmtree(base, ignore_errors=True)
    shutil.rmtree(outside, ignore_errors=True)


def grant(ctx, path, principal, ptype="identity", perms="r", url=SET):
    body = {"operation": "CREATE", "endpoint_id": "coll", "path": path, "principal_type": ptype,
            "principal": principal, "permissions": perms}
    return resolve(url).run(body, uuid.uuid4().hex, ctx)


def test_grant_read_then_delete(coll, account):
    base, _, _, ctx = coll
    user, _ = account
    target = base / "shared" / "sub" / "deep.txt"
    assert not can_read(user, target)
    doc = grant(ctx, "/~/shared/", user)
    assert doc["status"] == "SUCCEEDED", doc
    d = doc["details"]
    assert (d["DATA_TYPE"], d["code"], d["message"]) == ("access_create_result", "Created",
                                                         "Access rule created successfully.")
    assert can_read(user, target) and can_read(user, base / "shared" / "data.txt")
    assert not can_read(user, base / "private.txt")          # only the shared folder
    # new files inherit the grant (default ACLs)
    fd = os.open(base / "shared" / "new.txt", os.O_CREAT | os.O_WRONLY, 0o640)   # others: none
    os.write(fd, b"new\n")
    os.close(fd)
    assert os.stat(base / "shared" / "new.txt").st_mode & 0o007 == 0
    assert can_read(user, base / "shared" / "new.txt")
    write = subprocess.run(["runuser", "-u", user, "--", "sh", "-c", f"echo x >> {target}"],
                           capture_output=True)
    assert write.returncode != 0                              # "r" is read only
    doc = resolve(MANAGE).run({"operation": "UPDATE", "endpoint_id": "coll", "rule_id": d["access_id"],
                               "permissions": "rw"}, uuid.uuid4().hex, ctx)
    assert doc["status"] == "SUCCEEDED" and doc["details"]["code"] == "Updated", doc
    assert subprocess.run(["runuser", "-u", user, "--", "sh", "-c", f"echo x >> {target}"]).returncode == 0
    doc = resolve(SET).run({"operation": "DELETE", "endpoint_id": "coll", "rule_id": d["access_id"]},
                           uuid.uuid4().hex, ctx)
    assert doc["status"] == "SUCCEEDED" and doc["details"]["code"] == "Deleted", doc
    assert not can_read(user, target)


def test_group_grant(coll, account):
    base, _, _, ctx = coll
    user, group = account
    assert not can_read(user, base / "private.txt")
    doc = grant(ctx, "/private.txt", group, ptype="group")
    assert doc["status"] == "SUCCEEDED", doc
    assert can_read(user, base / "private.txt")
    assert f"group:{os.stat(base).st_gid}" not in acl(base / "shared" / "data.txt")


def test_symlink_escapes_are_refused(coll, account):
    base, outside, secret, ctx = coll
    user, _ = account
    os.chmod(secret, 0o600)
    before = acl(secret), acl(outside)
    (base / "evil").symlink_to(secret)                       # a file link out
    (base / "shared" / "door").symlink_to(outside)           # a folder link out
    os.link(secret, base / "shared" / "hard")                # a hard link to the outside file
    (base / "shared" / "alias").symlink_to(base / "private.txt")   # a link that stays inside
    for path in ("/evil", "/shared/door/secret"):             # refused before anything starts
        with pytest.raises(ActionUnableToRun, match="path: .* leaves its collection through a symbolic link"):
            grant(ctx, path, user)
    for path in ("/shared/hard", "/shared/alias"):            # refused when opened (O_NOFOLLOW)
        doc = grant(ctx, path, user)
        assert doc["status"] == "FAILED" and doc["details"]["error"] == "UnsafePath", (path, doc)
    doc = grant(ctx, "/shared/", user)                       # the folder: links skipped
    assert doc["status"] == "SUCCEEDED", doc
    skipped = {s["path"]: s["reason"] for s in doc["details"]["skipped"]}
    assert "symbolic link" in skipped["shared/door"] and "hard links" in skipped["shared/hard"]
    assert "symbolic link" in skipped["shared/alias"]
    assert (acl(secret), acl(outside)) == before
    assert not can_read(user, secret) and not can_read(user, base / "private.txt")
    with pytest.raises(ActionUnableToRun, match=r"path: .*'\.\.'"):
        grant(ctx, "/shared/../../etc/shadow", user)


def test_refusals_name_the_key(coll, account, s3_bucket):
    base, _, _, ctx = coll
    user, _ = account
    ctx.config["collections"]["bucket"] = f"s3://{s3_bucket}/x"
    ctx.config["collections"]["mem"] = "memory://acl-test"
    ctx.config["permission_managers"].update(bucket=["alice"], mem=["alice"])
    for c in ("bucket", "mem"):
        with pytest.raises(ActionUnableToRun, match="endpoint_id: .*not supported on this collection"):
            resolve(SET).run({"endpoint_id": c, "path": "/", "principal_type": "identity",
                              "principal": user, "permissions": "r"}, uuid.uuid4().hex, ctx)
    with pytest.raises(ActionUnableToRun, match="endpoint_id: 'file:///etc'"):
        resolve(SET).run({"endpoint_id": "file:///etc", "path": "/shadow", "principal_type": "identity",
                          "principal": user, "permissions": "r"}, uuid.uuid4().hex, ctx)
    with pytest.raises(ActionUnableToRun, match="permissions: expected"):
        grant(ctx, "/shared", user, perms="rwx")
    with pytest.raises(ActionUnableToRun, match="principal_type: 'all_authenticated_users'"):
        grant(ctx, "/shared", "", ptype="all_authenticated_users")
    with pytest.raises(ActionUnableToRun, match="principal: 'nobody-here-' is no local account"):
        grant(ctx, "/shared", "nobody-here-")
    with pytest.raises(ActionUnableToRun, match="maps to root"):
        grant(ctx, "/shared", "root")
    with pytest.raises(ActionUnableToRun, match="rule_id: 'nope'"):
        resolve(SET).run({"operation": "DELETE", "endpoint_id": "coll", "rule_id": "nope"},
                         uuid.uuid4().hex, ctx)


def test_only_the_collections_permission_managers_may_grant(coll, account):
    """A user who may start flows on the runner is not thereby an access manager: without the
    site listing them for the collection, their grant (to themselves) is refused."""
    base, _, _, ctx = coll
    user, _ = account
    ctx.username = user
    with pytest.raises(ActionUnableToRun, match=f"endpoint_id: 'coll': '{user}' may not manage "
                                                f"permissions on this collection"):
        grant(ctx, "/private.txt", user)
    ctx.run_as = "alice"          # a state's RunAs: a name the flow's author wrote, not checked
    with pytest.raises(ActionUnableToRun, match=f"'{user}' may not manage permissions"):
        grant(ctx, "/private.txt", user)
    assert not can_read(user, base / "private.txt")
    ctx.username, ctx.run_as = "alice", None     # the run's user, whom the runner checked
    assert grant(ctx, "/private.txt", user)["status"] == "SUCCEEDED"
    assert can_read(user, base / "private.txt")


def test_identity_mapping_is_used(coll, account, tmp_path):
    base, _, _, ctx = coll
    user, _ = account
    mapping = tmp_path / "identity_mapping.json"
    mapping.write_text('[{"DATA_TYPE": "expression_identity_mapping#1.0.0", "mappings": '
                       '[{"source": "{username}", "match": "(.*)@example.org", "output": "{0}"}]}]')
    ctx.config["identity_mapping"] = str(mapping)
    doc = grant(ctx, "/shared/data.txt", f"{user}@example.org")
    assert doc["status"] == "SUCCEEDED", doc
    assert can_read(user, base / "shared" / "data.txt")
    with pytest.raises(ActionUnableToRun, match="principal: no identity mapping rule"):
        grant(ctx, "/shared/data.txt", user)


# The talk's "Transfer and Set Permissions" flow: its TransferFiles state as the slide shows it,
# then SetPermission with the body of Globus's set_permission action provider docs.
TALK_FLOW = {
    "StartAt": "TransferFiles",
    "States": {
        "TransferFiles": {
            "Comment": "Transfer to a guest collection",
            "Type": "Action",
            "ActionUrl": "https://actions.automate.globus.org/transfer/transfer",
            "Parameters": {
                "source_endpoint_id.$": "$.input.source.id",
                "destination_endpoint_id.$": "$.input.destination.id",
                "transfer_items": [{"source_path.$": "$.input.source.path",
                                    "destination_path.$": "$.input.destination.path",
                                    "recursive.$": "$.input.recursive_tx"}]},
            "ResultPath": "$.TransferFiles",
            "WaitTime": 60,
            "Next": "SetPermission"},
        "SetPermission": {
            "Comment": "Grant read access on the data that was transferred",
            "Type": "Action",
            "ActionUrl": "https://actions.automate.globus.org/transfer/set_permission",
            "Parameters": {
                "operation": "CREATE",
                "endpoint_id.$": "$.input.destination.id",
                "path.$": "$.input.destination.path",
                "principal_type.$": "$.input.principal_type",
                "principal.$": "$.input.principal",
                "permissions": "r"},
            "ResultPath": "$.SetPermission",
            "End": True}}}


def test_the_talks_transfer_and_set_permissions_flow(coll, account, tmp_path):
    base, _, _, ctx = coll
    user, _ = account
    src = tmp_path / "instrument"
    (src / "run1").mkdir(parents=True)
    (src / "run1" / "frame.dat").write_bytes(b"\x00" * 4096)
    guest = "e09c6728-80a0-11ee-bddb-c52a29481bea"
    public = "0d0b8e9a-4bc8-4bd1-a4f0-ef1f5e33b1b1"
    ctx.config["collections"].update({guest: base.as_uri(), public: src.as_uri()})
    ctx.config["permission_managers"] = {guest: [pwd.getpwuid(os.getuid()).pw_name]}  # who runs it
    doc = run(TALK_FLOW, {"input": {"source": {"id": public, "path": "/run1/"},
                                    "destination": {"id": guest, "path": "/incoming/run1/"},
                                    "recursive_tx": True, "principal_type": "identity",
                                    "principal": user}},
              store_url=ctx.store_url, config=ctx.config)
    assert doc["status"] == "SUCCEEDED", doc
    assert doc["output"]["TransferFiles"]["details"]["files_transferred"] == 1
    assert doc["output"]["SetPermission"]["details"]["code"] == "Created"
    assert can_read(user, base / "incoming" / "run1" / "frame.dat")
    assert not can_read(user, base / "private.txt")
