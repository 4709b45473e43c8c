"""resolve/register, and real providers inside faas.flows.run (the in-process run)."""
from __future__ import annotations

import pytest

import faas.flows as ff
from faas.flows.actions import (
    APPROVAL,
    COMPUTE,
    DELETE,
    TRANSFER,
    ActionUnableToRun,
    canonical,
    register,
    resolve,
    unregister,
)
from faas.flows.actions.http import HttpProvider


class Forever:
    """Stays ACTIVE until canceled; records the calls it gets."""

    def __init__(self):
        self.calls = []

    def run(self, body, request_id, ctx):
        self.calls.append(("run", request_id, ctx.username, ctx.run_as))
        return {"action_id": "a1", "status": "ACTIVE", "poll_after": 0.05}

    def status(self, action_id, ctx):
        self.calls.append(("status", action_id))
        return {"action_id": action_id, "status": "ACTIVE", "poll_after": 0.05}

    def cancel(self, action_id, ctx):
        self.calls.append(("cancel", action_id))
        return {"action_id": action_id, "status": "FAILED", "details": {"error": "Canceled"}}

    def release(self, action_id, ctx):
        return {"action_id": action_id, "status": "FAILED"}


def test_canonical_and_resolve():
    assert canonical("faas://delete") == DELETE
    assert canonical("HTTPS://Compute.Actions.Globus.org/v4/") == COMPUTE
    assert canonical("https://example.org/my/ap/") == "https://example.org/my/ap"
    assert isinstance(resolve("https://example.org/my/ap"), HttpProvider)
    assert resolve(APPROVAL) is resolve("faas://approval/")
    for bad in ("faas://nothing", "ftp://x/y", "no-scheme", None):
        with pytest.raises(ActionUnableToRun):
            resolve(bad)


def test_register_overrides_and_unregister():
    p = Forever()
    register("test://forever", p)
    register(TRANSFER, p)            # a site may replace a builtin in its process
    try:
        assert resolve("test://forever/") is p and resolve(
            "https://actions.automate.globus.org/transfer/transfer") is p
    finally:
        unregister("test://forever")
        unregister(TRANSFER)
    with pytest.raises(ActionUnableToRun):
        resolve("test://forever")
    assert resolve(TRANSFER) is not p


def test_local_run_times_out_and_cancels_a_provider(tmp_path):
    p = Forever()
    defn = {"StartAt": "A", "States": {"A": {
        "Type": "Action", "ActionUrl": "test://forever", "Parameters": {}, "WaitTime": 1, "RunAs": "ops",
        "Catch": [{"ErrorEquals": ["ActionTimeout"], "ResultPath": "$.timeout", "Next": "B"}],
        "End": True}, "B": {"Type": "Pass", "Result": "done", "End": True}}}
    doc = ff.run(defn, {}, actions={"test://forever": p}, store_url=(tmp_path / "s").as_uri(),
                 context={"username": "alice"})
    assert doc["status"] == "SUCCEEDED" and doc["output"] == "done"
    assert p.calls[0][2:] == ("alice", "ops")
    assert p.calls[-1] == ("cancel", "a1")


def test_local_run_mixes_callables_and_site_providers(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "f.txt").write_text("x")
    defn = {"StartAt": "Name", "States": {
        "Name": {"Type": "Action", "ActionUrl": "test://name", "Parameters": {"n.$": "$.n"},
                 "ResultPath": "$.name", "Next": "Copy"},
        "Copy": {"Type": "Action", "ActionUrl": TRANSFER, "ResultPath": "$.copy", "End": True,
                 "Parameters": {"source_endpoint_id": (tmp_path / "src").as_uri(),
                                "destination_endpoint_id": (tmp_path / "dst").as_uri(),
                                "transfer_items": [{"source_path": "/f.txt",
                                                    "destination_path.=": "'/' + name.details"}]}}}}
    from faas.flows.actions import local as site_local
    actions = site_local.SiteActions({"test://name": lambda params: f"copy-{params['n']}.txt"})
    doc = ff.run(defn, {"n": 3}, actions=actions, store_url=(tmp_path / "store").as_uri())
    assert doc["status"] == "SUCCEEDED", doc
    assert (tmp_path / "dst" / "copy-3.txt").read_text() == "x"
    # the plain callable API is untouched
    doc = ff.run({"StartAt": "N", "States": {"N": {"Type": "Action", "ActionUrl": "test://name",
                                                  "End": True}}}, {}, actions={"test://name": lambda p: 1})
    assert doc["status"] == "SUCCEEDED" and doc["output"]["details"] == 1
