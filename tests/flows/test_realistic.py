"""Definitions in the style of the Globus Flows docs, run with fake action callables."""
import faas.flows
from faas.flows import run

TRANSFER = "https://actions.automate.globus.org/transfer/transfer"
COMPUTE = "https://compute.actions.globus.org/fxap"

TRANSFER_THEN_COMPUTE = {
    "Comment": "Move data, then make thumbnails; report a failed transfer",
    "StartAt": "Transfer",
    "States": {
        "Transfer": {
            "Type": "Action", "ActionUrl": TRANSFER, "WaitTime": 600,
            "Parameters": {
                "source_endpoint_id.$": "$.input.source.id",
                "destination_endpoint_id.$": "$.input.destination.id",
                "transfer_items": [{"source_path.$": "$.input.source.path",
                                    "destination_path.$": "$.input.destination.path",
                                    "recursive": True}],
                "label.=": "'thumbs for ' + _context.username",
            },
            "ResultPath": "$.TransferResult",
            "Catch": [{"ErrorEquals": ["ActionFailedException", "ActionTimeout"],
                       "ResultPath": "$.TransferError", "Next": "TransferFailed"}],
            "Next": "Thumbnails",
        },
        "Thumbnails": {
            "Type": "Action", "ActionUrl": COMPUTE,
            "Parameters": {"endpoint.$": "$.input.compute_endpoint",
                           "function.$": "$.input.function",
                           "kwargs": {"folder.$": "$.input.destination.path"}},
            "ResultPath": "$.ComputeResult",
            "Next": "Done",
        },
        "Done": {"Type": "Succeed"},
        "TransferFailed": {"Type": "Fail", "Error": "TransferFailed",
                           "Cause": "the transfer did not complete"},
    },
}

INPUT = {"input": {"source": {"id": "file:///src", "path": "/raw"},
                   "destination": {"id": "file:///dst", "path": "/thumbs"},
                   "compute_endpoint": "ep1", "function": "f-123"}}


def test_transfer_then_compute_happy_path():
    calls = []

    def transfer(p):
        calls.append(("transfer", p))
        return {"task_id": "t1", "files_transferred": 3}

    def compute(p):
        calls.append(("compute", p))
        return {"result": [f"{p['kwargs']['folder']}/x.png"]}
    doc = faas.flows.run(TRANSFER_THEN_COMPUTE, INPUT, actions={TRANSFER: transfer, COMPUTE: compute},
                         context={"run_id": "run-1", "flow_id": "flow-1", "username": "ada"})
    assert doc["status"] == "SUCCEEDED"
    assert calls[0] == ("transfer", {
        "source_endpoint_id": "file:///src", "destination_endpoint_id": "file:///dst",
        "transfer_items": [{"source_path": "/raw", "destination_path": "/thumbs",
                            "recursive": True}], "label": "thumbs for ada"})
    assert calls[1][1] == {"endpoint": "ep1", "function": "f-123", "kwargs": {"folder": "/thumbs"}}
    assert doc["output"]["TransferResult"]["details"]["files_transferred"] == 3
    assert doc["output"]["ComputeResult"]["details"]["result"] == ["/thumbs/x.png"]
    assert [e["code"] for e in doc["log"]] == [
        "FlowStarted", "ActionStarted", "ActionCompleted", "ActionStarted", "ActionCompleted",
        "SucceedStarted", "SucceedCompleted", "FlowSucceeded"]


def test_transfer_failure_is_caught_and_fails_the_flow_cleanly():
    def transfer(p):
        raise PermissionError("destination not writable")
    doc = run(TRANSFER_THEN_COMPUTE, INPUT, actions={TRANSFER: transfer}, context={"run_id": "r"})
    assert (doc["status"], doc["error"], doc["cause"]) == \
        ("FAILED", "TransferFailed", "the transfer did not complete")
    assert doc["output"]["TransferError"]["Error"] == "ActionFailedException"
    assert "destination not writable" in doc["output"]["TransferError"]["Cause"]


def test_yaml_definition_with_map_fan_out():
    yml = f"""
Comment: fan a compute function out over files
StartAt: ForEach
States:
  ForEach:
    Type: Map
    ItemsPath: $.files
    MaxConcurrency: 2
    Iterator:
      StartAt: Run
      States:
        Run:
          Type: Action
          ActionUrl: {COMPUTE}
          Parameters:
            function: thumb
            args.$: $
          ResultSelector:
            out.$: $.details
          End: true
    ResultPath: $.results
    End: true
"""
    doc = run(yml, {"files": ["a", "b", "c"]},
              actions={COMPUTE: lambda p: p["args"] + ".png"}, context={"run_id": "r"})
    assert doc["status"] == "SUCCEEDED"
    assert doc["output"]["results"] == [{"out": "a.png"}, {"out": "b.png"}, {"out": "c.png"}]
