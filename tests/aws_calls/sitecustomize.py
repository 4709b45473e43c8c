"""Counts every AWS API call a process makes, through botocore's own event hooks.

Put this folder on PYTHONPATH and set FAAS_AWS_CALL_LOG=FILE: every boto3/botocore client that
process (and its children: the endpoint daemon, pools, workers) creates gets a ``before-call``
hook appending ``{"service", "op", "pid"}`` lines to FILE. The test process itself calls
:func:`install` instead.
"""
from __future__ import annotations

import json
import os

import botocore.session

_original = botocore.session.Session.create_client


def _hook(model, **_):
    path = os.environ.get("FAAS_AWS_CALL_LOG")
    if path:
        line = json.dumps({"service": model.service_model.service_name, "op": model.name,
                           "pid": os.getpid()}) + "\n"
        with open(path, "a") as f:   # one write of one short line: O_APPEND keeps lines whole
            f.write(line)


def _create_client(self, *args, **kwargs):
    client = _original(self, *args, **kwargs)
    client.meta.events.register("before-call.*.*", _hook)
    return client


def install() -> None:
    botocore.session.Session.create_client = _create_client


install()
