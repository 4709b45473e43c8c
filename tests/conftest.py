"""Shared fixtures: a real moto server over HTTP on loopback, a private FAAS_HOME per test, and
the embedded default running for a test module (``home``).

``FAAS_TEST_AWS_URL`` (or ``FAAS_TEST_MOTO_URL``, as .ci/run sets it) names an S3 + SQS server
already running, used instead of starting moto: a moto server, or LocalStack (.ci/localstack.sh),
so the AWS suites can run a second time against another implementation. Read once, at import:
tests that clear ``FAAS_*`` from the environment cannot hide it from a fixture set up later.
"""
from __future__ import annotations

import http.client
import json
import os
import time
import urllib.request
import uuid

import pytest
from helpers import running_endpoint, start_moto_server

GIVEN_AWS_URL = os.environ.get("FAAS_TEST_AWS_URL") or os.environ.get("FAAS_TEST_MOTO_URL")
AWS_SERVER: dict[str, str] = {}      # "kind": "moto" or "localstack", once moto_url is set up


def _server_kind(url: str) -> str | None:
    """"moto" or "localstack" once the server at ``url`` serves S3 and SQS; None before."""
    try:
        urllib.request.urlopen(url + "/moto-api/", timeout=2).read()
        return "moto"
    except (OSError, http.client.HTTPException, ValueError):   # not up yet, or not moto
        pass
    try:       # LocalStack: ready when its health check says so (it has no /moto-api/)
        with urllib.request.urlopen(url + "/_localstack/health", timeout=2) as r:
            services = json.load(r).get("services", {})
        if all(services.get(s) in ("available", "running") for s in ("s3", "sqs")):
            return "localstack"
    except (OSError, http.client.HTTPException, ValueError):   # not up yet, or not LocalStack
        pass
    return None


def _wait_http(url: str, seconds: float = 30.0) -> str:
    deadline = time.monotonic() + seconds
    while True:
        kind = _server_kind(url)
        if kind:
            return kind
        if time.monotonic() > deadline:
            raise RuntimeError(f"no S3 + SQS server (moto or LocalStack) answers at {url} "
                               f"after {seconds:.0f} s")
        time.sleep(0.1)


@pytest.fixture(scope="session")
def moto_url():
    """URL of a moto server (S3 + SQS over HTTP). Uses $FAAS_TEST_AWS_URL or $FAAS_TEST_MOTO_URL
    if one is running already (.ci/run's moto, or LocalStack: see ``aws_server``), else starts
    ``moto_server`` on 127.0.0.1 on a free port for this test session."""
    url = GIVEN_AWS_URL
    proc = None
    if not url:
        proc, url = start_moto_server()
    AWS_SERVER["kind"] = _wait_http(url)
    saved = {k: os.environ.get(k) for k in
             ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}
    os.environ.update(AWS_ENDPOINT_URL=url, AWS_ACCESS_KEY_ID="testing",
                      AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    yield url
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    if proc is not None:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="session")
def aws_server(moto_url) -> str:
    """Which S3 + SQS implementation ``moto_url`` is: "moto" or "localstack"."""
    return AWS_SERVER["kind"]


@pytest.fixture
def s3_bucket(moto_url):
    """A fresh bucket on the moto server; yields its name."""
    import boto3
    name = f"faas-test-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=name)
    yield name


@pytest.fixture(scope="module")
def home(tmp_path_factory, request):
    """The FAAS_HOME of an embedded default endpoint (``local``) that runs for the whole test
    module: started before its first test, stopped (and checked stopped) after its last."""
    home = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1]) / "faas-home"
    with running_endpoint(home):
        yield home


@pytest.fixture
def faas_home(tmp_path, monkeypatch):
    """A private FAAS_HOME; no FAAS_* variable from the outside leaks in."""
    for k in list(os.environ):
        if k.startswith("FAAS_") and k not in ("FAAS_TEST_MOTO_URL", "FAAS_TEST_AWS_URL"):
            monkeypatch.delenv(k)
    home = tmp_path / "faas-home"
    monkeypatch.setenv("FAAS_HOME", str(home))
    yield home


def pytest_collection_modifyitems(config, items):
    """Mark ``aws`` every test that needs the S3 + SQS server: those that use ``moto_url`` (or a
    fixture built on it), and the contract suites' S3 and SQS cases, which pick their backend by
    parameter (``url_for``/``store`` = "sqs"/"s3") and ask for the server at run time. So
    ``-m aws`` selects what a second implementation (FAAS_TEST_AWS_URL) can tell apart."""
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "moto_url" in getattr(item, "fixturenames", ()) or \
                any(isinstance(v, str) and v in ("sqs", "s3") for v in params.values()):
            item.add_marker(pytest.mark.aws)
