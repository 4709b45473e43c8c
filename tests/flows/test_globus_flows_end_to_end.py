"""Issue 17's "done when": one flow in Globus's shapes, as a Globus user writes it, run by the
durable runner with the site's real actions, on the embedded default (a file store) and on S3:
transfer a folder, compute on what the transfer reports (reading ``details.results[0].output``),
move the copy (transfer + delete), and e-mail the curator (a real SMTP server receives it)."""
from __future__ import annotations

import threading

import pytest
from helpers import running_endpoint
from test_actions_notify import smtp  # noqa: F401 - the fixture: a real SMTP server on loopback

import faas
from faas.flows import FlowsClient
from faas.flows.actions.files import open_url
from faas.flows.runner import Runner

# Written as for Globus: its ActionUrls, its body keys, its result paths; only the collection
# and endpoint ids are the site's names.
FLOW = {
    "Comment": "Transfer, process, archive, tell the curator",
    "StartAt": "Transfer",
    "States": {
        "Transfer": {
            "Type": "Action", "ActionUrl": "https://transfer.actions.globus.org/transfer",
            "Parameters": {"source_endpoint_id.$": "$.src", "destination_endpoint_id.$": "$.dst",
                           "label": "incoming", "sync_level": "checksum",
                           "transfer_items": [{"source_path": "/incoming/", "destination_path": "/staged/",
                                               "recursive": True}]},
            "ResultPath": "$.Transfer", "WaitTime": 120, "Next": "Process"},
        "Process": {
            "Type": "Action", "ActionUrl": "https://compute.actions.globus.org/v3",
            "Parameters": {"endpoint_id.$": "$.compute_endpoint",
                           "tasks": [{"function_id.$": "$.function",
                                      "kwargs": {"n.$": "$.Transfer.details.files_transferred"}}]},
            "ResultPath": "$.Process", "WaitTime": 120, "Next": "Archive"},
        "Archive": {
            "Type": "Action", "ActionUrl": "https://actions.automate.globus.org/transfer/transfer",
            "Parameters": {"source_endpoint_id.$": "$.dst", "destination_endpoint_id.$": "$.dst",
                           "transfer_items": [{"source_path": "/staged/", "destination_path": "/archive/",
                                               "recursive": True}]},
            "ResultPath": "$.Archive", "WaitTime": 120, "Next": "Clean"},
        "Clean": {
            "Type": "Action", "ActionUrl": "https://transfer.actions.globus.org/delete",
            "Parameters": {"endpoint_id.$": "$.dst", "recursive": True,
                           "items": [{"path": "/staged/"}]},
            "ResultPath": "$.Clean", "WaitTime": 120, "Next": "Notify"},
        "Notify": {
            "Type": "Action", "ActionUrl": "https://actions.globus.org/notification/notify",
            "Parameters": {"destination": "curator@lab.example", "subject": "new data archived",
                           "body_template": "$summary from $files files",
                           "body_variables": {"summary.$": "$.Process.details.results[0].output",
                                              "files.$": "$.Transfer.details.files_transferred"}},
            "ResultPath": "$.Notify", "End": True}}}


def summarize(n):
    return f"{n} records"


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory):
    home = tmp_path_factory.mktemp("e2e") / "faas-home"
    with running_endpoint(home):
        c = faas.client()
        fid = c.register_function(summarize)
        c.close()
        yield fid


@pytest.mark.slow
@pytest.mark.parametrize("where", ["embedded", "s3"])
def test_a_globus_flow_runs_unchanged(where, endpoint, smtp, tmp_path, request):
    controller, inbox = smtp
    port = controller.port
    src = tmp_path / "instrument"
    (src / "incoming" / "run1").mkdir(parents=True)
    for i in range(5):
        (src / "incoming" / "run1" / f"shot{i}.dat").write_bytes(bytes([i]) * (100 + i))
    (src / "incoming" / "notes.txt").write_text("calibrated\n")
    if where == "s3":
        bucket = request.getfixturevalue("s3_bucket")
        store_url, dst = f"s3://{bucket}/site", f"s3://{bucket}/collection"
    else:
        store_url, dst = (tmp_path / "store").as_uri(), (tmp_path / "collection").as_uri()
    config = {"collections": {"instrument-uuid": src.as_uri(), "archive-uuid": dst},
              "notify": {"smtp": {"host": "127.0.0.1", "port": port, "security": "none",
                                  "sender": "flows@site.example"}}}
    runner = Runner(store_url, config=config)
    stop = threading.Event()
    t = threading.Thread(target=runner.serve, kwargs={"max_wait": 0.1, "should_stop": stop.is_set},
                         daemon=True)
    t.start()
    try:
        c = FlowsClient(store_url)
        flow = c.deploy(FLOW)
        run = c.start(flow["id"], {"src": "instrument-uuid", "dst": "archive-uuid",
                                   "compute_endpoint": "local", "function": endpoint})
        done = c.wait(run["run_id"], timeout=240)
    finally:
        stop.set()
        t.join(60)
    assert done["status"] == "SUCCEEDED", (done.get("error"), done.get("cause"))
    out = done["output"]
    assert out["Transfer"]["details"]["files_transferred"] == 6
    assert out["Process"]["details"]["results"][0]["output"] == "6 records"
    files, root = open_url(dst)
    assert sorted(rel for rel, _ in files.walk(root + "/archive")) == \
        ["notes.txt", *(f"run1/shot{i}.dat" for i in range(5))]
    assert files.info(root + "/staged/notes.txt") is None           # moved: the copy is gone
    (_, to, msg), = inbox.messages
    assert to == ["curator@lab.example"] and msg["Subject"] == "new data archived"
    assert msg.get_content().strip() == "6 records from 6 files"
