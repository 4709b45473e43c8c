"""Identity mapping rules on every property of an identity, as Globus Compute's multi-user docs
write them (``docs/endpoints/multi_user.rst``: the default example file, "only_allow_my_institution",
the OIDC example, an external program), with real accounts (useradd, with a full name).

faas's identities come from the transport: ``local:NAME`` (the owner of a task's file in the
spool) or the identity an administrator registered a signing key for (S3/SQS). Each becomes a
Globus identity resource (``mapping.identity_document``); a mapping on a property the identity
does not have does not match, and says why."""
from __future__ import annotations

import json
import logging
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from faas.endpoint.multiuser import mapping
from faas.endpoint.multiuser.mapping import IdentityMapper, identity_document, load_rules
from faas.exceptions import ConfigError

GLOBUS = Path(__file__).parent / "globus"


@pytest.fixture(scope="module")
def roberto():
    """An account with a full name in its GECOS field (``useradd -c``), removed at the end."""
    if os.geteuid() != 0 or not shutil.which("useradd"):
        pytest.skip("needs root and useradd (it creates a Unix account)")
    name = "fmu" + secrets.token_hex(3) + "r"
    subprocess.run(["useradd", "-M", "-s", "/bin/sh", "-c", "Roberto Rossi,Room 101,,", name], check=True,
                   capture_output=True)
    try:
        yield pwd.getpwnam(name)
    finally:
        subprocess.run(["userdel", "-f", name], capture_output=True)


def rules(tmp_path: Path, *docs) -> Path:
    p = tmp_path / f"idmap-{secrets.token_hex(3)}.json"
    p.write_text(json.dumps(list(docs)))
    return p


def expression(*mappings) -> dict:
    return {"DATA_TYPE": "expression_identity_mapping#1.0.0", "mappings": list(mappings)}


def test_globus_default_example_file(tmp_path):
    """``example_identity_mapping_config.json`` (what Globus's configure writes), unchanged: an
    identity registered as nobody@example.com maps to nobody; a local writer does not match."""
    m = IdentityMapper(GLOBUS / "example_identity_mapping_config.json")
    assert m.map("nobody@example.com").user == "nobody"
    refused = m.map("local:nobody")
    assert refused.user is None and "no identity mapping rule" in refused.why


def test_only_allow_my_institution_example(tmp_path, roberto):
    """Caption ``only_allow_my_institution.json``: rules on ``{email}``. A registered identity
    that is an e-mail address has it; a local account has none, and the reason says so."""
    p = tmp_path / "only_allow_my_institution.json"
    p.write_text("""
   [
     {
       "DATA_TYPE": "expression_identity_mapping#1.0.0",
       "mappings": [
         {"source": "{email}", "output": "{0}", "match": "(.*)@your_institution.com"},
         {"source": "{email}", "output": "{0}", "match": "(.*)@cs.your_institution.com"}
       ]
     }
   ]
""")
    m = IdentityMapper(p)
    got = m.map(f"{roberto.pw_name}@cs.your_institution.com")
    assert got.user == roberto.pw_name and got.uid == roberto.pw_uid and "mapping [1]" in got.why
    assert got.id == str(uuid.uuid5(uuid.NAMESPACE_URL, f"{roberto.pw_name}@cs.your_institution.com"))
    assert m.map(f"{roberto.pw_name}@legal.your_institution.com").user is None
    local = m.map(f"local:{roberto.pw_name}")
    assert local.user is None
    assert f"rule [0] mapping [0] uses {{email}}, which 'local:{roberto.pw_name}' does not have" in local.why
    # an ARN registered for a key is no e-mail address either
    assert "uses {email}" in m.map("arn:aws:iam::123456789012:user/x").why


def test_oidc_example(tmp_path, roberto):
    """Caption ``identity_mapping.json`` of "With Globus OIDC", its domain filled in."""
    p = rules(tmp_path, {"comment": "Map OIDC identities to local usernames",
                         "DATA_TYPE": "expression_identity_mapping#1.0.0",
                         "mappings": [{"source": "{username}", "match": "(.*)@oidc.example.edu", "output": "{0}"}]})
    assert IdentityMapper(p).map(f"{roberto.pw_name}@oidc.example.edu").user == roberto.pw_name


def test_every_property_maps(tmp_path, roberto):
    """A rule on each property the transports fill, matching the identity's own value."""
    local, registered = f"local:{roberto.pw_name}", f"{roberto.pw_name}@hpc.example.org"
    doc = identity_document(local)
    assert doc == {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, local)), "sub": doc["id"], "username": local,
                   "name": "Roberto Rossi", "email": None, "organization": None,
                   "identity_provider": mapping.LOCAL_ACCOUNTS_PROVIDER,
                   "identity_provider_display_name": f"local accounts of {socket.gethostname()}",
                   "identity_type": "login", "status": "used", "last_authentication": None}
    # fixed, documented in docs/multi-user.md: rules may match them
    assert (mapping.LOCAL_ACCOUNTS_PROVIDER, mapping.SIGNING_KEYS_PROVIDER) == (
        "eb205a26-7337-5cc4-ae7f-b6d21c2fb2b1", "897e4939-80c6-58b1-a7be-0bf5af53000d")
    reg = identity_document(registered)
    assert reg["email"] == registered and reg["name"] is None
    assert reg["identity_provider"] == mapping.SIGNING_KEYS_PROVIDER
    literal = lambda s: s.replace("\\", "\\\\").replace(".", "\\.").replace("(", "\\(").replace(")", "\\)")  # noqa: E731
    for identity, prop in [(local, p) for p in ("id", "sub", "username", "name", "identity_provider",
                                                "identity_provider_display_name", "identity_type", "status")] + \
                          [(registered, p) for p in ("email", "username", "identity_provider", "id")]:
        value = identity_document(identity)[prop]
        m = IdentityMapper(rules(tmp_path, expression(
            {"source": f"{{{prop}}}", "match": literal(value), "output": roberto.pw_name})))
        got = m.map(identity)
        assert got.user == roberto.pw_name, (prop, got.why)
    # the output may interpolate properties too
    m = IdentityMapper(rules(tmp_path, expression(
        {"source": "{email}", "match": "(.*)@hpc.example.org", "output": "{0}"})))
    assert m.map(registered).user == roberto.pw_name


def test_properties_no_transport_knows(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        m = IdentityMapper(rules(tmp_path, expression(
            {"source": "{organization}", "match": "Your Institution, GmbH", "output": "nobody"})))
    assert "uses {organization}, which no faas transport knows" in caplog.text
    assert "uses {organization}" in m.map("nobody@example.org").why


def test_a_name_that_is_no_property_is_refused_at_start(tmp_path):
    with pytest.raises(ConfigError, match=r"rule \[0\] mapping \[0\]: source '\{emial\}' uses \{emial\}, which is "
                                          r"not a property of an identity .*did you mean \{email\}\?"):
        load_rules(rules(tmp_path, expression({"source": "{emial}", "match": "(.*)", "output": "{0}"})))
    with pytest.raises(ConfigError, match=r"output '\{nmae\}'.*did you mean \{name\}"):
        load_rules(rules(tmp_path, expression({"source": "{username}", "match": "x", "output": "{nmae}"})))


def test_a_mapping_that_cannot_apply_skips_only_itself(tmp_path, roberto):
    """A Globus file's {email} rule in front of faas's local rule: local writers still map (Globus
    would drop the whole document at the first missing property)."""
    m = IdentityMapper(rules(tmp_path, expression(
        {"source": "{email}", "match": "(.*)@example.org", "output": "{0}"},
        {"source": "{username}", "match": "local:(.*)", "output": "{0}"})))
    got = m.map(f"local:{roberto.pw_name}")
    assert got.user == roberto.pw_name and "rule [0] mapping [1]" in got.why
    assert m.map(f"{roberto.pw_name}@example.org").user == roberto.pw_name


def test_external_program_gets_globus_input(tmp_path, roberto):
    """``external_identity_mapping#1.0.0``: an ``identity_mapping_input#1.0.0`` document on stdin
    with every property (null where unknown), Globus's -c (POSIX connector) -s (endpoint) -a."""
    seen = tmp_path / "seen.json"
    prog = tmp_path / "mapper.py"
    prog.write_text(
        "import json, sys\n"
        "doc = json.load(sys.stdin)\n"
        f"open({str(seen)!r}, 'w').write(json.dumps({{'argv': sys.argv[1:], 'input': doc}}))\n"
        "out = [{'id': i['id'], 'output': i['name'].split()[0].lower() + '-' + i['username'][6:]}\n"
        "       for i in doc['identities'] if i['name']]\n"
        "print(json.dumps({'DATA_TYPE': 'identity_mapping_output#1.0.0', 'result': out}))\n")
    p = rules(tmp_path, {"DATA_TYPE": "external_identity_mapping#1.0.0",
                         "command": [sys.executable, str(prog), "--some", "flag"]},
              expression({"source": "{username}", "match": "arn:aws:iam::123456789012:user/(.*)", "output": "{0}"}))
    m = IdentityMapper(p, endpoint_id="campus")
    got = m.map(f"local:{roberto.pw_name}")
    # roberto-<name> is no account: the external rule answered, and that answer stands
    assert got.user is None and f"'roberto-{roberto.pw_name}'" in got.why and "not a local account" in got.why
    record = json.loads(seen.read_text())
    assert record["argv"] == ["--some", "flag", "-c", mapping.POSIX_CONNECTOR_ID, "-s", "campus", "-a"]
    assert record["input"]["DATA_TYPE"] == "identity_mapping_input#1.0.0"
    assert record["input"]["identities"] == [identity_document(f"local:{roberto.pw_name}")]
    # no full name (a registered ARN): the program maps nothing, the next rule does
    got = m.map("arn:aws:iam::123456789012:user/nobody")
    assert got.user == "nobody" and "rule [1]" in got.why


def test_a_failing_external_program_is_no_match(tmp_path, caplog):
    p = rules(tmp_path, {"DATA_TYPE": "external_identity_mapping#1.0.0", "command": ["/bin/false"]})
    with caplog.at_level(logging.ERROR):
        got = IdentityMapper(p).map("local:nobody")
    assert got.user is None and "rule [0] failed: IdentityMappingError" in got.why
    assert "identity mapping rule [0] failed for local:nobody" in caplog.text
