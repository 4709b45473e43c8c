"""``faas endpoint`` commands of multi-user endpoints: check-mapping, render-user-config, usage
(configure --multi-user and status live in main.py and call in here)."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..config import faas_home
from ..exceptions import ConfigError

if TYPE_CHECKING:
    from ..endpoint.config import ManagerEndpointConfig


def read_vars(path: str, what: str = "--vars") -> dict:
    try:
        text = sys_stdin_or_file(path)
        data = json.loads(text)
    except OSError as e:
        raise ConfigError(f"{what} {path}: cannot read: {e.strerror}") from None
    except ValueError as e:
        raise ConfigError(f"{what} {path}: not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{what} {path}: expected a JSON object of variables, got {type(data).__name__}")
    return data


def sys_stdin_or_file(path: str) -> str:
    if path == "-":
        import sys
        return sys.stdin.read()
    return Path(path).read_text()


def configure_multi_user(name: str, endpoint_dir: Path, cfg: ManagerEndpointConfig, provider: str,
                         custom_files: dict[str, Path] | None = None) -> str:
    """Check the config suits a multi-user endpoint and write the files beside it: those given
    (configure's --template-config, ...: by their name there) in place of the defaults."""
    from ..endpoint.multiuser import files, spool
    root = spool.store_root(cfg.store)
    if root is None and cfg.queue == "local":
        raise ConfigError(f"store {cfg.store}: a multi-user endpoint on a remote store takes tasks from a "
                          f"queue its users can reach, signed with per-user keys: pass --queue sqs (or a "
                          f"queue URL); or use a shared --store file:///shared/path")
    if root is not None and Path(root).resolve().is_relative_to(faas_home().resolve()):
        raise ConfigError(f"store {cfg.store} is inside {faas_home()}, which its users cannot reach: "
                          f"pass --store file:///shared/path (a folder all users can reach)")
    from .from_globus import copy_files
    copy_files(endpoint_dir, custom_files or {})
    written = files.write_defaults(endpoint_dir, provider if provider in ("local", "slurm", "pbs") else "local")
    names = ", ".join([*(custom_files or {}), *(p.name for p in written)]) or "none (all were there; kept)"
    return (f"\nmulti-user files written: {names}\n"
            f"  edit {endpoint_dir / files.TEMPLATE} and {files.SCHEMA}; identity mapping in "
            f"{files.MAPPING}\n  start it as root: faas endpoint start {name}")


def multi_user_status(endpoint_dir: Path, info: dict, running: bool) -> bool:
    """Add the user endpoints to ``faas endpoint status``; False for a single-user endpoint."""
    from ..endpoint import config as ep_config
    from ..endpoint.multiuser import router
    if not ep_config.is_multi_user(endpoint_dir):
        return False
    info["multi_user"] = True
    try:
        st = json.loads((endpoint_dir / router.STATUS).read_text())
        info["queue"] = st.get("tasks_from", info.get("queue"))
        info["user_endpoints"] = st.get("user_endpoints", [])
    except (OSError, ValueError):
        info["user_endpoints"] = []
    return True


def _endpoint_dir(name: str) -> Path:
    from ..endpoint import config as ep_config
    d = ep_config.endpoint_dir(ep_config.check_name(name))
    if not (d / "config.yaml").exists():
        raise ConfigError(f"endpoint {name!r} is not configured in {d.parent}")
    return d


def _manager_config(d: Path) -> ManagerEndpointConfig:
    """The multi-user endpoint's config.yaml in ``d``; a clear error for a single-user one."""
    from ..endpoint import config as ep_config
    cfg = ep_config.load(d / "config.yaml")
    if not isinstance(cfg, ep_config.ManagerEndpointConfig):
        raise ConfigError(f"endpoint {d.name!r} is single-user (no {ep_config.MULTI_USER_TEMPLATE} in {d}): it "
                          f"has no identity mapping, user endpoints or audit log; `faas endpoint configure "
                          f"{d.name} --multi-user` makes it multi-user")
    return cfg


@click.command("check-mapping")
@click.argument("name")
@click.argument("identity")
def check_mapping(name, identity) -> None:
    """What IDENTITY (local:alice, an IAM ARN, ...) maps to on endpoint NAME, and why."""
    from ..endpoint.multiuser.mapping import IdentityMapper
    d = _endpoint_dir(name)
    cfg = _manager_config(d)
    path = Path(cfg.identity_mapping_path)
    mapper = IdentityMapper(path if path.is_absolute() else d / path, cfg.allowed_users, cfg.denied_users)
    m = mapper.map(identity)
    click.echo(json.dumps({"identity": identity, "user": m.user, "uid": m.uid, "allowed": m.user is not None,
                           "why": m.why}, indent=2))
    if m.user is None:
        raise SystemExit(1)


@click.command("render-user-config")
@click.argument("name", required=False)
@click.option("--endpoint", "-e", "endpoint_name", metavar="NAME",
              help="the endpoint whose template, schema and config to render with (Globus's -e; or NAME)")
@click.option("--template", "-t", "template_file", type=click.File(),
              help="a template to render in place of the endpoint's (none needed then; '-': stdin)")
@click.option("--vars", "--user-options", "--user-options-file", "-o", "vars_file", type=click.File(),
              metavar="VARS.json", help="the user's variables (a JSON object; '-' for stdin)")
@click.option("--user-schema", "-s", "schema_file", type=click.File(),
              help="the JSON schema the variables are checked against, in place of the endpoint's")
@click.option("--user-runtime", "runtime_file", type=click.File(),
              help="JSON for the reserved `user_runtime` [default: this Python and host]")
@click.option("--user", "user", help="render for this local account [default: the one running this]")
def render_user_config(name, endpoint_name, template_file, vars_file, schema_file, runtime_file, user) -> None:
    """Show the config.yaml a user with these variables would get (schema checked, rendered): an
    endpoint's (NAME or --endpoint; one that would not start a user endpoint is an error), or a
    template's alone (--template, as Globus's command does: what it lacks is a warning)."""
    import yaml

    from ..endpoint.multiuser import files, templates
    if sum(f is not None and f.name == "<stdin>" for f in (template_file, vars_file, schema_file, runtime_file)) > 1:
        raise click.UsageError("At most one input may be read from stdin across all options.")
    name = name or endpoint_name
    if name is None and template_file is None:
        raise click.UsageError("Must provide at least one of --endpoint or --template.")
    d = _endpoint_dir(name) if name else None
    cfg = _manager_config(d) if d else None
    schema = _read_json(schema_file, "--user-schema") if schema_file else \
        templates.load_schema(d / files.SCHEMA) if d else None
    variables = _read_json(vars_file, "--user-options") if vars_file else {}
    templates.check_variables(variables, schema, "--user-options")
    pw = _account(user)
    runtime = _read_json(runtime_file, "--user-runtime") if runtime_file else None
    reserved = templates.reserved(name or files.TEMPLATE, pw.pw_name, pw.pw_uid, pw.pw_dir, parent_config=cfg,
                                  identity=f"local:{pw.pw_name}", runtime=runtime)
    template_text, template_path = _template(template_file, d)
    out = templates.user_config(template_text, variables, reserved,
                                store=cfg.store if cfg else (faas_home() / "store").as_uri(),
                                max_blocks=cfg.max_blocks_per_user if cfg else 1,
                                allowed_functions=cfg.allowed_functions if cfg else None,
                                template_path=template_path, check=template_file is None)
    if template_file is not None:   # a snippet may be part of a config: say what it lacks, as a warning
        try:
            templates.check_user_config(out, template_path)
        except templates.VariablesRefused as e:
            click.echo(f"warning: as a user endpoint's config.yaml: {e}", err=True)
    click.echo(yaml.safe_dump(out, sort_keys=False), nl=False)


def _template(template_file, endpoint_dir: Path | None) -> tuple[str, str]:
    """The template to render (``--template``'s, else the endpoint's) and the path it is named by."""
    if template_file is not None:
        return template_file.read(), template_file.name
    assert endpoint_dir is not None   # render_user_config asks for one or the other
    from ..endpoint.multiuser import files
    return files.read_template(endpoint_dir), str(endpoint_dir / files.TEMPLATE)


def _read_json(file, option: str) -> dict:
    """A JSON object from an option's file ('-': stdin)."""
    try:
        data = json.load(file)
    except ValueError as e:
        raise ConfigError(f"{option} {file.name}: not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{option} {file.name}: expected a JSON object, got {type(data).__name__}")
    return data


def _account(user: str | None):
    """The password entry to render for: ``user``'s, or this process's account."""
    import pwd
    try:
        return pwd.getpwnam(user) if user else pwd.getpwuid(os.getuid())
    except KeyError:
        raise ConfigError(f"--user {user!r}: no such local account") from None


@click.command("usage")
@click.argument("name")
@click.option("--since", help="only tasks from this date or time on (ISO, UTC: 2026-11-01 or 2026-11-01T12:00)")
def usage(name, since) -> None:
    """Tasks (by outcome), task-hours and node-hours per user, from the audit log."""
    from ..endpoint.multiuser import audit
    d = _endpoint_dir(name)
    cfg = _manager_config(d)
    path = Path(cfg.audit_log_path)
    from ..endpoint.multiuser.router import BLOCKS_LOG
    click.echo(json.dumps(audit.usage(path if path.is_absolute() else d / path, audit.parse_since(since),
                                      d / BLOCKS_LOG), indent=2))


def register(group: click.Group) -> None:
    for cmd in (check_mapping, render_user_config, usage):
        group.add_command(cmd)
