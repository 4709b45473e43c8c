"""Shared fixtures: a real moto server over HTTP on loopback, and a private FAAS_HOME per test."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=2).read()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.fixture(scope="session")
def moto_url():
    """URL of a moto server (S3 + SQS over HTTP). Uses $FAAS_TEST_MOTO_URL if .ci/run started
    one, else starts ``moto_server`` on 127.0.0.1 on a free port for this test session."""
    url = os.environ.get("FAAS_TEST_MOTO_URL")
    proc = None
    if not url:
        exe = shutil.which("moto_server") or os.path.join(os.path.dirname(sys.executable), "moto_server")
        port = _free_port()
        proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
    _wait_http(url)
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


@pytest.fixture
def s3_bucket(moto_url):
    """A fresh bucket on the moto server; yields its name."""
    import boto3
    name = f"faas-test-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=name)
    yield name


@pytest.fixture
def faas_home(tmp_path, monkeypatch):
    """A private FAAS_HOME; no FAAS_* variable from the outside leaks in."""
    for k in list(os.environ):
        if k.startswith("FAAS_") and k != "FAAS_TEST_MOTO_URL":
            monkeypatch.delenv(k)
    home = tmp_path / "faas-home"
    monkeypatch.setenv("FAAS_HOME", str(home))
    yield home
