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


def configure_multi_user(name: str, endpoint_dir: Path, cfg: ManagerEndpointConfig, provider: str) -> str:
    """Check the config suits a multi-user endpoint and write the files beside it."""
    from ..endpoint.multiuser import files, spool
    root = spool.store_root(cfg.store)
    if root is None and cfg.queue == "local":
        raise ConfigError(f"store {cfg.store}: a multi-user endpoint on a remote store takes tasks from a "
                          f"queue its users can reach, signed with per-user keys: pass --queue sqs (or a "
                          f"queue URL); or use a shared --store file:///shared/path")
    if root is not None and str(root).startswith(str(faas_home())):
        raise ConfigError(f"store {cfg.store} is inside {faas_home()}, which its users cannot reach: "
                          f"pass --store file:///shared/path (a folder all users can reach)")
    written = files.write_defaults(endpoint_dir, provider if provider in ("local", "slurm", "pbs") else "local")
    names = ", ".join(p.name for p in written) or "none (all were there; kept)"
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
@click.argument("name")
@click.option("--vars", "vars_path", metavar="VARS.json", help="the user's variables (JSON object; '-' for stdin)")
@click.option("--user", "user", help="render for this local account [default: the one running this]")
def render_user_config(name, vars_path, user) -> None:
    """Show the config.yaml a user with these variables would get (schema checked, rendered)."""
    import pwd

    import yaml

    from ..endpoint.multiuser import files, templates
    d = _endpoint_dir(name)
    cfg = _manager_config(d)
    variables = read_vars(vars_path) if vars_path else {}
    templates.check_variables(variables, templates.load_schema(d / files.SCHEMA), "--vars")
    try:
        pw = pwd.getpwnam(user) if user else pwd.getpwuid(os.getuid())
    except KeyError:
        raise ConfigError(f"--user {user!r}: no such local account") from None
    reserved = templates.reserved(name, pw.pw_name, pw.pw_uid, pw.pw_dir, parent_config=cfg,
                                  identity=f"local:{pw.pw_name}")
    out = templates.user_config(files.read_template(d), variables, reserved, store=cfg.store,
                                max_blocks=cfg.max_blocks_per_user, allowed_functions=cfg.allowed_functions,
                                template_path=str(d / files.TEMPLATE))
    click.echo(yaml.safe_dump(out, sort_keys=False), nl=False)


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
