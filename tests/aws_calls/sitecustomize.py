"""Counts every AWS API call a process makes, through botocore's own event hooks.

Put this folder on PYTHONPATH and set FAAS_AWS_CALL_LOG=FILE: every boto3/botocore client that
process (and its children: the endpoint daemon, pools, workers) creates gets a ``before-call``
hook appending ``{"service", "op", "pid"}`` lines to FILE. The test process itself calls
:func:`install` instead.

Each line also says what the call was on, from the call's own parameters (stashed by a
``before-parameter-build`` hook, which sees them as the caller passed them): ``bucket`` and
``key`` or ``prefix`` for S3, ``queue`` (its name) and ``account`` for SQS, and the client's
``region``; and ``role``: :data:`process_role` if this process set it, else $FAAS_AWS_CALL_ROLE
(``client``, ``site``: which IAM role the process would run as; children inherit the variable).
tests/test_terraform.py checks the IAM policies of the Terraform module against these.
"""
from __future__ import annotations

import json
import os
from urllib.parse import urlsplit

import botocore.session

_original = botocore.session.Session.create_client
_PARAMS = "faas_call_params"

#: the role of this process's calls, overriding $FAAS_AWS_CALL_ROLE (which its children inherit)
process_role: str | None = None


def _stash(params, context=None, **_):
    """before-parameter-build: keep the caller's resource parameters for the before-call hook."""
    if context is not None and isinstance(params, dict):
        context[_PARAMS] = {k: params[k] for k in ("Bucket", "Key", "Prefix", "QueueUrl", "QueueName",
                                                   "QueueOwnerAWSAccountId") if k in params}


def _resource(params: dict) -> dict:
    out = {}
    if "Bucket" in params:
        out["bucket"] = params["Bucket"]
    if "Key" in params:
        out["key"] = params["Key"]
    if "Prefix" in params:
        out["prefix"] = params["Prefix"]
    if "QueueUrl" in params:   # https://sqs.REGION.amazonaws.com/ACCOUNT/NAME or http://HOST/ACCOUNT/NAME
        parts = urlsplit(params["QueueUrl"]).path.strip("/").split("/")
        out["queue"] = parts[-1]
        if len(parts) >= 2:
            out["account"] = parts[-2]
    if "QueueName" in params:
        out["queue"] = params["QueueName"]
    if "QueueOwnerAWSAccountId" in params:
        out["account"] = params["QueueOwnerAWSAccountId"]
    return out


def _hook(model, context=None, **_):
    path = os.environ.get("FAAS_AWS_CALL_LOG")
    if path:
        rec = {"service": model.service_model.service_name, "op": model.name, "pid": os.getpid()}
        role = process_role or os.environ.get("FAAS_AWS_CALL_ROLE")
        if role:
            rec["role"] = role
        if context is not None:
            rec.update(_resource(context.get(_PARAMS) or {}))
            if context.get("client_region"):
                rec["region"] = context["client_region"]
        line = json.dumps(rec) + "\n"
        with open(path, "a") as f:   # one write of one short line: O_APPEND keeps lines whole
            f.write(line)


def _create_client(self, *args, **kwargs):
    client = _original(self, *args, **kwargs)
    client.meta.events.register("before-parameter-build.*.*", _stash)
    client.meta.events.register("before-call.*.*", _hook)
    return client


def install() -> None:
    botocore.session.Session.create_client = _create_client


install()
