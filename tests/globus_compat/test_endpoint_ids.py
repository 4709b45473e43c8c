"""Every endpoint has a UUID, as a Globus Compute endpoint does: made at `configure` (kept in
``endpoint.json`` in its folder, Globus's file and key), printed by `configure` and `start`,
shown by `list` and `status`, published in its record in the store; clients take it wherever
they take a name (Globus's ``Executor(endpoint_id=...)``).

What Globus prints is in compute_endpoint/globus_compute_endpoint/endpoint/endpoint.py
(``configure_endpoint``, ``start_endpoint``, ``print_endpoint_table``).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

import faas
from faas.endpoint import config as ep_config
from faas.exceptions import EndpointNotFound

UNKNOWN = "00000000-0000-4000-8000-000000000000"


def faas_cmd(home, *args, cwd=None, timeout=120):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAAS_")}
    env["FAAS_HOME"] = str(home)
    return subprocess.run([sys.executable, "-m", "faas.cli.main", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Endpoint `ids`, configured and started with the CLI: (home, its id, what configure and
    start printed)."""
    home = tmp_path_factory.mktemp("ids") / "home"
    configured = faas_cmd(home, "endpoint", "configure", "ids", "--max-workers-per-node", "1")
    assert configured.returncode == 0, configured.stderr
    started = faas_cmd(home, "endpoint", "start", "ids", "--detach")
    assert started.returncode == 0, started.stderr
    endpoint_id = json.loads((home / "endpoints" / "ids" / "endpoint.json").read_text())["endpoint_id"]
    yield home, endpoint_id, configured.stdout, started.stdout
    assert faas_cmd(home, "endpoint", "stop", endpoint_id).returncode == 0   # stopped by its id


@pytest.fixture
def at_site(site, monkeypatch):
    """This process as a client on the site's machine (same FAAS_HOME, so the same store)."""
    home, endpoint_id, _, _ = site
    for k in list(os.environ):
        if k.startswith("FAAS_"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("FAAS_HOME", str(home))
    return home, endpoint_id


def test_configure_and_start_print_the_id(site):
    home, endpoint_id, configured, started = site
    assert ep_config.is_uuid(endpoint_id)
    path = home / "endpoints" / "ids" / "config.yaml"
    assert configured.startswith(f"Created profile for endpoint named <ids>\n\n\tConfiguration file: {path}\n"
                                 f"\tEndpoint ID: {endpoint_id}\n\nUse the `start` subcommand to run it:\n"
                                 f"\n\t$ faas endpoint start ids\n")
    assert started.startswith(f"Starting endpoint; registered ID: {endpoint_id}\n")
    # configuring again keeps the id
    again = faas_cmd(home, "endpoint", "configure", "ids", "--max-blocks", "1")
    assert again.returncode == 0 and f"Endpoint ID: {endpoint_id}\n" in again.stdout


def test_list_and_status_show_the_id(site):
    home, endpoint_id, _, _ = site
    r = faas_cmd(home, "endpoint", "list")
    header, row = r.stdout.splitlines()[:2]
    assert header.split()[:3] == ["ENDPOINT", "ID", "NAME"]
    assert row.split()[:3] == [endpoint_id, "ids", "running"]
    for ref in ("ids", endpoint_id):
        info = json.loads(faas_cmd(home, "endpoint", "status", ref).stdout)
        assert (info["name"], info["endpoint_id"], info["state"]) == ("ids", endpoint_id, "running")


def test_clients_take_the_id_wherever_they_take_a_name(at_site):
    home, endpoint_id = at_site
    with faas.Executor(endpoint_id=endpoint_id) as ex:   # the Globus way
        assert ex.submit(pow, 2, 10).result(timeout=120) == 1024
    c = faas.client(endpoint=endpoint_id)
    try:
        records = {r["name"]: r for r in c.list_endpoints()}
        assert records["ids"]["endpoint_id"] == endpoint_id
        assert c.describe_endpoint(endpoint_id)["name"] == "ids"
        fid = c.register_function(divmod)
        assert c.get_result(c.run(function_id=fid, args=(17, 5)), timeout=120) == (3, 2)
    finally:
        c.close()


def test_the_cli_takes_the_id(site, tmp_path):
    home, endpoint_id, _, _ = site
    (tmp_path / "tasks.py").write_text(textwrap.dedent("""
        def double(x):
            return 2 * x
    """))
    (tmp_path / "calls.jsonl").write_text('{"args": [4]}\n{"args": [5]}\n')
    r = faas_cmd(home, "submit", "--endpoint", endpoint_id, "--function", "tasks:double",
                 "--input", "calls.jsonl", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert [json.loads(line)["result"] for line in r.stdout.splitlines()] == [8, 10]


def test_an_unknown_id_is_a_clear_error_listing_the_endpoints(at_site):
    home, endpoint_id = at_site
    with pytest.raises(EndpointNotFound) as e:
        with faas.Executor(endpoint_id=UNKNOWN) as ex:
            ex.submit(abs, 1).result(timeout=30)
    assert f"no endpoint with id {UNKNOWN} is registered in store {(home / 'store').as_uri()}" in str(e.value)
    assert f"known endpoints: ids ({endpoint_id})" in str(e.value)
    with pytest.raises(EndpointNotFound, match=f"known endpoints: ids \\({endpoint_id}\\)"):
        faas.client().describe_endpoint(UNKNOWN)


@pytest.mark.slow
def test_an_endpoint_without_an_id_gets_one_at_its_next_start(site):
    """Endpoints configured before ids existed (or a Globus folder copied over)."""
    home, endpoint_id, _, _ = site
    assert faas_cmd(home, "endpoint", "configure", "old", "--max-workers-per-node", "1").returncode == 0
    (home / "endpoints" / "old" / "endpoint.json").unlink()
    row = [ln for ln in faas_cmd(home, "endpoint", "list").stdout.splitlines() if " old " in ln][0]
    assert row.startswith("(at next start)")
    r = faas_cmd(home, "endpoint", "start", "old", "--detach")
    try:
        assert r.returncode == 0, r.stderr
        new_id = json.loads((home / "endpoints" / "old" / "endpoint.json").read_text())["endpoint_id"]
        assert ep_config.is_uuid(new_id) and new_id != endpoint_id
        assert r.stdout.startswith(f"Starting endpoint; registered ID: {new_id}\n")
        assert json.loads(faas_cmd(home, "endpoint", "status", new_id).stdout)["name"] == "old"
    finally:
        assert faas_cmd(home, "endpoint", "stop", "old").returncode == 0
