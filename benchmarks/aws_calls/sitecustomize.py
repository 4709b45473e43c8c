"""The AWS call log of tests/aws_calls (every call of every process, through botocore's hooks),
plus the payload size of each SQS call, which SQS bills by (each 64 KiB chunk is a request).

benchmarks/aws_cost.py puts this folder first on PYTHONPATH, so the endpoint daemon, its pools
and workers load it at start-up; with $FAAS_BENCH_SQS_SIZE_LOG set, each SQS call appends
``{"op", "req", "resp", "pid"}`` (bytes of the serialized request and of the response body).
"""
from __future__ import annotations

import importlib.util
import json
import os

import botocore.session

_TESTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "aws_calls",
                      "sitecustomize.py")
_spec = importlib.util.spec_from_file_location("faas_tests_aws_calls", _TESTS)
calls = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(calls)          # installs the per-call log ($FAAS_AWS_CALL_LOG)

_counting_create_client = botocore.session.Session.create_client
_KEY = "faas_bench_req_bytes"


def _before(params, context=None, **_):
    if context is not None and isinstance(params, dict):
        body = params.get("body") or b""
        context[_KEY] = len(body) if isinstance(body, (bytes, bytearray, str)) else 0


def _after(http_response, model, context=None, **_):
    path = os.environ.get("FAAS_BENCH_SQS_SIZE_LOG")
    if not path:
        return
    try:
        resp = len(http_response.content or b"")
    except Exception:  # noqa: BLE001 - measuring must never break the call it measures
        resp = 0
    rec = {"op": model.name, "req": (context or {}).get(_KEY, 0), "resp": resp, "pid": os.getpid()}
    with open(path, "a") as f:
        f.write(json.dumps(rec) + "\n")


def _create_client(self, *args, **kwargs):
    client = _counting_create_client(self, *args, **kwargs)
    if client.meta.service_model.service_name == "sqs":
        client.meta.events.register("before-call.sqs.*", _before)
        client.meta.events.register("after-call.sqs.*", _after)
    return client


def install() -> None:
    calls.install()
    botocore.session.Session.create_client = _create_client


install()
