"""Bad input gets a clear error and loses nothing (the core issue's list; the reliability issue
extends it)."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

import faas
from faas import serialize
from faas.exceptions import ConfigError, CredentialsError, EndpointNotFound, SerializationError, StoreError
from faas.messages import function_key


def double(x):
    return 2 * x


def test_python_version_mismatch_names_both_versions(home):
    """A function frame written by another Python minor version (forged header: the real
    cross-version run is in test_python_mismatch_real) fails the task, no crash, no hang."""
    c = faas.client()
    _, data = serialize.function_bytes(double)
    header, payload = serialize.unframe(data)
    header["py"] = "3.99.0"
    import json
    import struct
    head = json.dumps(header).encode()
    forged = serialize.MAGIC + struct.pack(">I", len(head)) + head + payload
    fid = serialize.hashlib.sha256(forged).hexdigest()     # content-addressed, as the client does
    c.store.put(function_key(fid, c.client_id), serialize.seal_function(forged, fid, c.function_secret(fid)))
    tid = c.run(function_id=fid, args=(2,))
    with pytest.raises(SerializationError) as info:
        c.get_result(task_id=tid, timeout=30)
    msg = str(info.value)
    assert "Python 3.99.0" in msg and f"Python {serialize.PY_VERSION}" in msg
    assert c.get_task(task_id=tid)["status"] == "failed"
    assert c.get_result(task_id=c.run(function_id=c.register_function(double), args=(4,)), timeout=30) == 8
    c.close()


def test_unknown_endpoint(home):
    with faas.Executor("nowhere") as ex:
        with pytest.raises(EndpointNotFound, match="endpoint 'nowhere' is not registered in store"):
            ex.submit(double, 1)


def never_loaded(x):
    return x


def test_missing_function_in_store(home):
    """A function id this user never registered fails at submit, naming what to do; one deleted
    from the store after its task was sent fails the task on the endpoint."""
    from faas.exceptions import FunctionNotFound
    c = faas.client()
    with pytest.raises(FunctionNotFound, match="call register_function"):
        c.run(function_id="0" * 64, args=(1,))
    with pytest.raises(FunctionNotFound, match="not a SHA-256"):
        c.run(function_id="../../etc/passwd", args=(1,))
    fid = c.register_function(never_loaded)   # no worker has it cached
    c.store.delete(function_key(fid, c.client_id))
    tid = c.run(function_id=fid, args=(1,))
    with pytest.raises(KeyError):
        c.get_result(task_id=tid, timeout=30)
    c.close()


def test_malformed_embedded_config(tmp_path, monkeypatch):
    home = tmp_path / "h"
    monkeypatch.setenv("FAAS_HOME", str(home))
    cfg = home / "endpoints" / "local" / "config.yaml"
    cfg.parent.mkdir(parents=True)
    cfg.write_text("store: file:///x\nengine:\n  max_workers_per_node: many\n")
    with faas.Executor() as ex:
        with pytest.raises(ConfigError, match=r"(?s)config.yaml: 1 problem.*engine.max_workers_per_node") as info:
            ex.submit(double, 1)
    assert str(cfg) in str(info.value)


def test_unreachable_store_fails_fast(tmp_path, monkeypatch):
    monkeypatch.setenv("FAAS_HOME", str(tmp_path / "h"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    t = time.monotonic()
    with faas.Executor("site", store="s3://some-bucket/faas") as ex:
        with pytest.raises(StoreError, match="127.0.0.1:1"):
            ex.submit(double, 1)
    assert time.monotonic() - t < 15


def test_missing_aws_credentials(tmp_path, monkeypatch):
    monkeypatch.setenv("FAAS_HOME", str(tmp_path / "h"))
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    with faas.Executor("site", store="s3://some-bucket/faas") as ex:
        with pytest.raises(CredentialsError, match="no AWS credentials found"):
            ex.submit(double, 1)


PY312 = "/root/.pyenv/versions/3.12.1/bin/python"


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists(PY312) or sys.version_info[:2] == (3, 12),
                    reason="needs pyenv's CPython 3.12 beside the test Python")
def test_python_mismatch_real(home, tmp_path):
    """A real client on CPython 3.12 sends to this endpoint on another minor version."""
    venv = tmp_path / "venv312"
    subprocess.run([PY312, "-m", "venv", str(venv)], check=True)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "-e", root], check=True,
                   capture_output=True, timeout=600)
    script = ("import faas\n"
              "def f(x):\n    return x\n"
              "with faas.Executor() as ex:\n"
              "    try:\n        ex.submit(f, 1).result(timeout=60)\n"
              "    except Exception as e:\n        print(type(e).__name__, e)\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAAS_")}
    env["FAAS_HOME"] = str(home)
    r = subprocess.run([str(venv / "bin" / "python"), "-c", script], env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "SerializationError" in r.stdout and "Python 3.12.1" in r.stdout
    assert f"this worker runs Python {serialize.PY_VERSION}" in r.stdout


def _faas(home, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAAS_")}
    env["FAAS_HOME"] = str(home)
    return subprocess.run([sys.executable, "-m", "faas.cli.main", *args], env=env,
                          capture_output=True, text=True, timeout=120)


def test_cli_result_of_unknown_task(home):
    """``faas result`` of an id no task ever had says so (not "no result within 0.0 s
    (pending)") and exits non-zero; an id that is not a UUID is a usage error."""
    import uuid
    tid = str(uuid.uuid4())
    r = _faas(home, "result", tid)
    assert r.returncode != 0 and not r.stdout
    assert f"no task {tid} is known" in r.stderr and "not started yet" in r.stderr, r.stderr
    assert "within 0.0 s" not in r.stderr
    r = _faas(home, "result", tid, "--timeout", "0.5")
    assert r.returncode != 0 and f"no task {tid} is known" in r.stderr and "0.5 s" in r.stderr, r.stderr
    r = _faas(home, "result", "not-a-task")
    assert r.returncode == 2 and not r.stdout
    assert "'not-a-task' is not a UUID" in r.stderr and "Traceback" not in r.stderr, r.stderr
    # a real one still prints its result
    c = faas.client()
    tid = c.run(function_id=c.register_function(double), args=(21,))
    assert c.get_result(task_id=tid, timeout=30) == 42
    c.close()
    r = _faas(home, "result", tid)
    assert r.returncode == 0 and '"result": 42' in r.stdout, r.stderr
