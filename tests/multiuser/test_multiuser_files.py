"""The files of a multi-user endpoint, validated with clear errors; identity mapping; the
sandboxed template; the spool's checks. No accounts or processes needed."""
from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from faas.cli.main import main
from faas.endpoint import config as ep_config
from faas.endpoint.multiuser import files, spool, templates
from faas.endpoint.multiuser.mapping import IdentityMapper, load_rules
from faas.exceptions import ConfigError


@pytest.fixture
def configured(faas_home, tmp_path):
    store = tmp_path / "shared-store"
    r = CliRunner().invoke(main, ["endpoint", "configure", "campus", "--multi-user", "--store", store.as_uri()])
    assert r.exit_code == 0, r.output
    return ep_config.endpoint_dir("campus", faas_home)


def test_configure_multi_user_writes_the_files_and_keys(configured):
    d = configured
    for name in (files.TEMPLATE, files.SCHEMA, files.MAPPING, files.ENVIRONMENT):
        assert (d / name).exists(), name
        assert (d / name).stat().st_mode & 0o022 == 0
    assert json.loads((d / files.MAPPING).read_text()) == [
        {"DATA_TYPE": "expression_identity_mapping#1.0.0",
         "mappings": [{"source": "{username}", "match": "local:(.*)", "output": "{0}"}]}]
    cfg = ep_config.load(d / "config.yaml")
    assert cfg.identity_mapping_path == "identity_mapping.json" and cfg.audit_log_path == "audit.log"
    assert cfg.user_endpoint_idle_timeout > 0 and cfg.max_user_endpoints >= 1
    assert not (d / "signing.key").exists()   # identity comes from the transport
    templates.load_schema(d / files.SCHEMA)   # a valid 2020-12 schema


def test_multi_user_needs_a_shared_file_store(faas_home):
    r = CliRunner().invoke(main, ["endpoint", "configure", "campus", "--multi-user"])
    assert r.exit_code == 2 and "--store file:///shared/path" in r.output
    r = CliRunner().invoke(main, ["endpoint", "configure", "campus", "--multi-user", "--store", "s3://b/p"])
    assert r.exit_code == 2 and "--queue sqs" in r.output
    r = CliRunner().invoke(main, ["endpoint", "configure", "campus", "--multi-user", "--store", "s3://b/p",
                                  "--queue", "sqs"])
    assert r.exit_code == 0, r.output


def test_bad_new_keys_are_named(configured):
    path = configured / "config.yaml"
    data = yaml.safe_load(path.read_text())
    data.update(user_endpoint_idle_timeout=0, over_limit="maybe")
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as e:
        ep_config.load(path)
    assert "user_endpoint_idle_timeout" in str(e.value) and "over_limit" in str(e.value)


def test_user_environment_cannot_set_home_user_pwd(configured):
    (configured / files.ENVIRONMENT).write_text("HOME: /tmp\n")
    with pytest.raises(ConfigError, match="HOME: cannot be set"):
        files.read_environment(configured)
    (configured / files.ENVIRONMENT).write_text("OMP_NUM_THREADS: 4\n")
    assert files.read_environment(configured) == {"OMP_NUM_THREADS": "4"}


def test_bad_schema_is_refused_with_the_file(tmp_path):
    p = tmp_path / "s.json"
    p.write_text(json.dumps({"type": "object", "properties": {"a": {"type": "strnig"}}}))
    with pytest.raises(ConfigError, match="not a valid JSON Schema"):
        templates.load_schema(p)


@pytest.mark.parametrize("doc, msg", [
    ("not json", "not valid JSON"),
    ("[]", "non-empty JSON list"),
    ('[{"DATA_TYPE": "regex#1"}]', "DATA_TYPE must be"),
    ('[{"DATA_TYPE": "expression_identity_mapping#1.0.0", "mappings": [{"source": "x"}]}]', "source, match and output"),
    ('[{"DATA_TYPE": "expression_identity_mapping#1.0.0", '
     '"mappings": [{"source": "{username}", "match": "*a", "output": "x"}]}]', "leading wildcard"),
])
def test_invalid_mapping_files(tmp_path, doc, msg):
    p = tmp_path / "m.json"
    p.write_text(doc)
    with pytest.raises(ConfigError, match=msg):
        load_rules(p)


def test_mapping_rules_first_match_wins_and_checks_the_account(tmp_path):
    p = tmp_path / "m.json"
    p.write_text(json.dumps([
        {"DATA_TYPE": "expression_identity_mapping#1.0.0", "mappings": [
            {"source": "{username}", "match": "(.*)@example.org", "output": "{0}"},
            {"source": "{username}", "match": "arn:aws:iam::123456789012:user/(.*)", "output": "{0}"},
            {"source": "{username}", "match": "svc@example.org", "output": "never-reached"}]},
    ]))
    m = IdentityMapper(p)
    assert m.map("nobody@example.org").user == "nobody"
    assert m.map("arn:aws:iam::123456789012:user/nobody").user == "nobody"
    assert m.map("nobody@example.org.evil.com").user is None          # anchored
    assert "root never runs" in m.map("root@example.org").why
    assert "not a local account" in m.map("no-such-xyz@example.org").why
    assert "no identity mapping rule" in m.map("someone@elsewhere").why
    assert "denied_users" in IdentityMapper(p, denied_users=["nob*"]).map("nobody@example.org").why
    assert "allowed_users" in IdentityMapper(p, allowed_users=["alice"]).map("nobody@example.org").why
    assert IdentityMapper(p, allowed_users=["*@example.org"]).map("nobody@example.org").user == "nobody"


def test_external_mapping_command(tmp_path):
    prog = tmp_path / "mapper.py"
    prog.write_text(
        "import json, sys\n"
        "doc = json.load(sys.stdin)\n"
        "out = [{'id': i['id'], 'output': 'nobody'} for i in doc['identities'] if i['username'].endswith('@hpc')]\n"
        "print(json.dumps({'DATA_TYPE': 'identity_mapping_output#1.0.0', 'result': out}))\n")
    p = tmp_path / "m.json"
    p.write_text(json.dumps([{"DATA_TYPE": "external_identity_mapping#1.0.0",
                              "command": [sys.executable, str(prog)]}]))
    m = IdentityMapper(p)
    assert m.map("x@hpc").user == "nobody"
    assert m.map("x@elsewhere").user is None


def test_mapping_file_reloads_and_a_bad_new_file_keeps_the_old(tmp_path, caplog):
    p = tmp_path / "m.json"
    p.write_text(json.dumps([{"DATA_TYPE": "expression_identity_mapping#1.0.0", "mappings": [
        {"source": "{username}", "match": "a", "output": "nobody"}]}]))
    m = IdentityMapper(p)
    assert m.map("a").user == "nobody" and m.map("b").user is None
    p.write_text(json.dumps([{"DATA_TYPE": "expression_identity_mapping#1.0.0", "mappings": [
        {"source": "{username}", "match": "b", "output": "nobody"}]}]))
    os.utime(p, ns=(1, 10**18))
    assert m.reload_if_changed()
    assert m.map("b").user == "nobody" and m.map("a").user is None
    p.write_text("[{broken")
    with caplog.at_level(logging.ERROR):
        assert not m.reload_if_changed()
    assert "NOT reloaded" in caplog.text
    assert m.map("b").user == "nobody"


def test_check_mapping_command(configured):
    r = CliRunner().invoke(main, ["endpoint", "check-mapping", "campus", "local:nobody"])
    assert r.exit_code == 0 and json.loads(r.output)["user"] == "nobody"
    r = CliRunner().invoke(main, ["endpoint", "check-mapping", "campus", "local:root"])
    assert r.exit_code == 1 and "root never runs" in r.output
    r = CliRunner().invoke(main, ["endpoint", "check-mapping", "campus", "alice@example.org"])
    assert r.exit_code == 1 and "no identity mapping rule" in r.output


def test_user_strings_cannot_add_yaml_keys(configured, tmp_path):
    v = tmp_path / "v.json"
    v.write_text(json.dumps({"worker_init": "echo hi\"\nsigning_keys: []\nstore: file:///evil\n  x: {",
                             "walltime": "01:00:00"}))
    r = CliRunner().invoke(main, ["endpoint", "render-user-config", "campus", "--vars", str(v), "--user", "nobody"])
    assert r.exit_code == 0, r.output
    out = yaml.safe_load(r.output)
    assert out["engine"]["provider"]["worker_init"].startswith("echo hi\"\nsigning_keys")
    assert out["store"] != "file:///evil" and out["queue"] == "local"
    assert out["engine"]["provider"]["walltime"] == "01:00:00"
    assert out["display_name"] == "campus for nobody"
    assert "identity_mapping_path" not in out     # root's keys stay root's


def test_variables_refused_with_the_key(configured, tmp_path):
    schema = templates.load_schema(configured / files.SCHEMA)
    with pytest.raises(templates.VariablesRefused, match="nodes_per_block: 9 is greater than the maximum of 4"):
        templates.check_variables({"nodes_per_block": 9}, schema)
    with pytest.raises(templates.VariablesRefused, match="'_faas'.*reserved"):
        templates.check_variables({"_faas": {}}, schema)
    with pytest.raises(templates.VariablesRefused, match="Additional properties"):
        templates.check_variables({"queue": "x"}, schema)
    with pytest.raises(templates.VariablesRefused, match="expected an object"):
        templates.check_variables(["a"], schema)


def test_sandbox_refuses_unsafe_templates():
    with pytest.raises(ConfigError, match="rendering failed"):
        templates.render("{{ ''.__class__.__mro__[1].__subclasses__() }}", {}, {})


def test_spool_entry_checks(tmp_path):
    good = tmp_path / "a.json"
    good.write_text("{}")
    os.chmod(good, 0o600)
    assert spool.read_entry(str(good)).problem is None
    assert spool.read_entry(str(good)).uid == os.getuid()
    loose = tmp_path / "b.json"
    loose.write_text("{}")
    os.chmod(loose, 0o666)
    assert "writable by group or others" in spool.read_entry(str(loose)).problem
    os.link(good, tmp_path / "c.json")
    assert "hard links" in spool.read_entry(str(tmp_path / "c.json")).problem
    os.symlink(good, tmp_path / "d.json")
    assert "symbolic link" in spool.read_entry(str(tmp_path / "d.json")).problem
    os.mkfifo(tmp_path / "e.json")
    assert "not a regular file" in spool.read_entry(str(tmp_path / "e.json")).problem


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs root")
def test_run_as_drops_uid_gid_and_groups_for_good():
    import pwd
    import shutil
    import tempfile

    from faas.endpoint.multiuser.privileges import run_as
    nobody = pwd.getpwnam("nobody")
    d = Path(tempfile.mkdtemp(prefix="faas-mu-probe-", dir="/tmp"))
    os.chmod(d, 0o777)
    out = d / "ids"

    def probe():
        ids = (os.getresuid(), os.getresgid(), os.getgroups(), os.umask(0))
        try:
            os.setuid(0)
            regained = True
        except PermissionError:
            regained = False
        out.write_text(json.dumps([ids, regained]))
    ok, why = run_as("nobody", nobody.pw_uid, nobody.pw_gid, probe)
    assert ok, why
    (uids, gids, groups, umask), regained = json.loads(out.read_text())
    shutil.rmtree(d)
    assert uids == [nobody.pw_uid] * 3 and gids == [nobody.pw_gid] * 3
    assert 0 not in groups and umask == 0o077 and regained is False
    ok, why = run_as("nobody", nobody.pw_uid, nobody.pw_gid, lambda: open("/root/.faas-probe", "w"))
    assert not ok and "PermissionError" in why
    with pytest.raises(PermissionError):
        from faas.endpoint.multiuser.privileges import drop_to
        drop_to("root", 0, 0)
