"""Globus's own sample flows, deployed unchanged through Globus SDK's clients (import changed:
``faas.flows.sdk``'s FlowsClient.create_flow and SpecificFlowClient.run_flow) and run by the
durable runner with the site's real actions; each output is checked as Globus documents it.
The definitions and schemas are in ``globus_examples/`` (its README says where each comes from);
only the collection UUIDs are mapped to folders in the runner's config, as a site does.

Not here, as tests/flows already runs the same definitions: the talk's Transfer and Set
Permissions (test_actions_transfer_acl), Transfer and Compute and Tar and Transfer
(test_examples_flows, test_globus_compute_action), Move and Two Stage Transfer (examples/flows).
"""
from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path

import pytest

from faas.flows import FlowsClient
from faas.flows.runner import Runner
from faas.flows.sdk import FlowsClient as GlobusFlowsClient
from faas.flows.sdk import SpecificFlowClient

EXAMPLES = Path(__file__).parent / "globus_examples"
SOURCE, DESTINATION = str(uuid.uuid4()), str(uuid.uuid4())   # Globus collection ids, as users have


def example(name: str, part: str = "definition") -> dict:
    return json.loads((EXAMPLES / f"{name}.{part}.json").read_text())


@pytest.fixture
def site(tmp_path):
    """A store, two collections named by UUID, a runner serving them; yields (client, src, dst)."""
    src, dst = tmp_path / "source", tmp_path / "destination"
    src.mkdir()
    dst.mkdir()
    store_url = (tmp_path / "store").as_uri()
    runner = Runner(store_url, config={"collections": {SOURCE: src.as_uri(), DESTINATION: dst.as_uri()}})
    stop = threading.Event()
    thread = threading.Thread(target=runner.serve, kwargs={"max_wait": 0.1, "should_stop": stop.is_set},
                              daemon=True)
    thread.start()
    try:
        yield FlowsClient(store_url), src, dst
    finally:
        stop.set()
        thread.join(60)


def deploy_and_run(client: FlowsClient, name: str, flow_input: dict, schema: dict | None = None) -> dict:
    """As a Globus user's script does it, with globus_sdk's clients; waits with faas's."""
    flows = GlobusFlowsClient(client.store_url)
    flow = flows.create_flow(title=name, definition=example(name), input_schema=schema or {})
    run = SpecificFlowClient(flow["id"], store=client.store_url).run_flow(flow_input, label=name,
                                                                          tags=["globus-example"])
    assert (run["status"], run["label"], run["tags"]) == ("ACTIVE", name, ["globus-example"])
    client.wait(run["run_id"], timeout=120)
    return flows.get_run(run["run_id"])


def test_looping_batched_move(site):
    """Moves the source folder's files in batches of 100 (ls, transfer, delete) until ls finds
    it empty; the run ends in the Done Pass state with the last, empty, listing."""
    client, src, dst = site
    (src / "batch").mkdir()
    for i in range(105):   # two rounds of the loop: 100 items, then 5
        (src / "batch" / f"f{i:03}.dat").write_bytes(bytes([i]) * i)
    name = "looping-batched-transfer-and-delete"
    done = deploy_and_run(client, name, {"source": {"id": SOURCE, "path": "/batch/"},
                                         "destination": {"id": DESTINATION, "path": "/moved/"}},
                          schema=example(name, "schema"))
    assert done["status"] == "SUCCEEDED", (done.get("error"), done.get("cause"))
    out = done["output"]
    assert out["ls_results"]["details"]["total"] == 0
    assert len(out["transformations"]["delete_DATA"]) == 5   # the last round's batch
    assert out["transfer_results"]["details"]["files_transferred"] == 5
    assert sorted(p.name for p in (dst / "moved").iterdir()) == [f"f{i:03}.dat" for i in range(105)]
    assert (dst / "moved" / "f042.dat").read_bytes() == bytes([42]) * 42
    assert list((src / "batch").iterdir()) == []
    codes = [e["code"] for e in client.get_log(done["run_id"])]
    assert codes.count("ChoiceCompleted") == 3 and codes[-1] == "FlowSucceeded"


def test_simple_transfer(site):
    """The trigger examples' Transfer flow: one transfer item from the input."""
    client, src, dst = site
    (src / "run1" / "sub").mkdir(parents=True)
    (src / "run1" / "sub" / "frame.dat").write_bytes(b"\x01" * 1000)
    done = deploy_and_run(client, "transfer", {"input": {
        "source": {"id": SOURCE, "path": "/run1/"}, "destination": {"id": DESTINATION, "path": "/in/run1/"},
        "recursive_tx": True}}, schema=example("transfer", "schema"))
    assert done["status"] == "SUCCEEDED", (done.get("error"), done.get("cause"))
    details = done["output"]["TransferFiles"]["details"]
    assert (details["DATA_TYPE"], details["status"], details["files_transferred"]) == ("task", "SUCCEEDED", 1)
    assert (dst / "in" / "run1" / "sub" / "frame.dat").read_bytes() == b"\x01" * 1000


def test_hello_world(site):
    """Globus's Hello World usage example: the result is {"Hello": "World", "hello": echo_string},
    ACTIVE for sleep_time (10 s) first; with no ResultPath it replaces the run's state."""
    client, _, _ = site
    t = time.monotonic()
    done = deploy_and_run(client, "hello_world", {"name": "Ada"},
                          schema={"properties": {"name": {"title": "Name to greet", "type": "string",
                                                          "minLength": 1}}, "required": ["name"]})
    assert done["status"] == "SUCCEEDED", (done.get("error"), done.get("cause"))
    assert done["output"]["details"] == {"Hello": "World", "hello": "Greetings, Ada!"}
    assert done["output"]["status"] == "SUCCEEDED"
    assert time.monotonic() - t >= 10


def test_a_globus_hosted_provider_is_refused_by_name(site):
    """transfer_publish's SearchIngest needs Globus Search, hosted in Globus's cloud: the run
    fails with ActionUnableToRun naming it, and nothing is sent anywhere."""
    client, _, _ = site
    state = example("transfer_publish")["States"]["SearchIngest"]
    state = {k: v for k, v in state.items() if k != "Next"} | {"End": True}
    flow = client.deploy({"StartAt": "SearchIngest", "States": {"SearchIngest": state}})
    run = client.start(flow["id"], {"input": {"search_ingest_document": {
        "search_index": "i", "search_subject": "s", "search_visible_to": ["public"],
        "search_content_metadata": {"title": "x"}, "search_entry_id": "e"}}})
    done = client.wait(run["run_id"], timeout=60)
    assert (done["status"], done["error"]) == ("FAILED", "ActionUnableToRun")
    assert "Globus Search" in done["cause"] and "Globus's cloud" in done["cause"]


def test_move_example_stops_at_the_retired_path_only(site):
    """Globus's Move example asks the retired actions.globus.org/transfer/ls for ``path_only``
    (and reads ``is_folder``): the run fails at once, in its first state, with ActionUnableToRun
    saying why and what to use, before anything is copied or deleted."""
    client, src, dst = site
    (src / "data").mkdir()
    (src / "data" / "a.txt").write_text("a")
    done = deploy_and_run(client, "move", {"source": {"id": SOURCE, "path": "/data"},
                                           "destination": {"id": DESTINATION, "path": "/moved"}})
    assert (done["status"], done["error"]) == ("FAILED", "ActionUnableToRun")
    assert "path_only" in done["cause"] and "stat" in done["cause"]
    assert [e["code"] for e in client.get_log(done["run_id"])][-2:] == ["ActionFailed", "FlowFailed"]
    assert (src / "data" / "a.txt").exists() and list(dst.iterdir()) == []


def test_globus_sdk_clients_docstring_example(site):
    """globus_sdk.FlowsClient.create_flow's docstring example, then its run, log and listing."""
    client, _, _ = site
    flows = GlobusFlowsClient(client.store_url, app=None, environment="production")   # no effect
    flow = flows.create_flow(
        title="my-cool-flow",
        definition={
            "StartAt": "the-one-true-state",
            "States": {"the-one-true-state": {"Type": "Pass", "End": True}},
        },
        input_schema={
            "type": "object",
            "properties": {
                "input-a": {"type": "string"},
                "input-b": {"type": "number"},
                "input-c": {"type": "boolean"},
            },
        },
        flow_starters=["all_authenticated_users"],
    )
    assert flow.data["title"] == "my-cool-flow" and flow["flow_starters"] == ["all_authenticated_users"]
    assert [f["id"] for f in flows.list_flows(filter_fulltext="COOL")] == [flow["id"]]
    specific = SpecificFlowClient(flow["id"], store=client.store_url)
    with pytest.raises(Exception, match="input-b"):
        specific.run_flow({"input-b": "not a number"})
    run = specific.run_flow({"input-a": "x", "input-b": 2}, run_managers=["bob"])
    assert run["run_managers"] == ["local:bob"]   # faas spells a local user so (docs/flows.md)
    client.wait(run["run_id"], timeout=60)
    done = flows.get_run(run["run_id"])
    assert (done["status"], done["output"]) == ("SUCCEEDED", {"input-a": "x", "input-b": 2})
    codes = [e["code"] for e in flows.get_run_logs(run["run_id"])]
    assert codes[0] == "FlowStarted" and codes[-1] == "FlowSucceeded"
    assert [e["code"] for e in flows.get_run_logs(run["run_id"], limit=1, reverse_order=True)] == \
        ["FlowSucceeded"]
    with pytest.raises(ValueError, match="additional_fields"):
        specific.run_flow({}, additional_fields={"activity_notification_policy": {}})
    with pytest.raises(TypeError, match="bogus"):
        GlobusFlowsClient(client.store_url, bogus=1)
    assert flows.delete_flow(flow["id"])["id"] == flow["id"]
    assert list(flows.list_flows()) == []
