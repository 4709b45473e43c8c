"""What ``faas endpoint`` takes from Globus's ``globus-compute-endpoint`` as it is, so the command
lines of a site's scripts and of Globus's docs run with only the command's name changed
(docs/from-globus.md, "Endpoints"): the optional endpoint name (``default``), the common options,
``configure``'s options and its files in place of the defaults, on-boot persistence, and the
options and commands that need Globus's hosted services, which say why they have no counterpart."""
from __future__ import annotations

import logging
import os
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ..safe_open import replace_file

F = TypeVar("F", bound=Callable[..., Any])

#: the name every ``globus-compute-endpoint`` command takes when none is given
DEFAULT_NAME = "default"
#: ``ctx.meta`` key: ``--debug`` was given (``start`` passes it to the daemon)
DEBUG_META = "faas.debug"
#: where docs/from-globus.md says what has no counterpart here
DOC = "docs/from-globus.md"

#: Globus's options that make a Globus Auth policy at configure time
POLICY_OPTIONS = ("auth_policy_project_id", "auth_policy_display_name", "auth_policy_mfa_required",
                  "auth_policy_description", "allowed_domains", "excluded_domains", "auth_timeout")

#: configure's file options of a multi-user endpoint (:func:`multi_user_files` names their files)
MULTI_USER_FILE_OPTIONS = ("template_config", "schema_config", "user_env_config", "id_mapping_config")


def name_argument(f: F) -> F:
    """NAME, optional as in Globus (``default`` when left out)."""
    return click.argument("name", required=False, default=DEFAULT_NAME, metavar="[NAME]")(f)


def _log_to_stderr(level: int) -> None:
    """faas's log lines at ``level`` on stderr for a command that runs no daemon in this process
    (a foreground ``start`` sets up its own handlers, which log to the console too)."""
    if click.get_current_context().info_name == "start":
        return
    logging.getLogger("faas").setLevel(min(level, logging.getLogger("faas").getEffectiveLevel()))
    if not logging.getLogger().handlers:
        logging.basicConfig(stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s %(message)s")


def _debug(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.meta[DEBUG_META] = True
        logging.getLogger("faas").setLevel(logging.DEBUG)
        _log_to_stderr(logging.DEBUG)


def _log_to_console(_ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        _log_to_stderr(logging.INFO)


def common_options(f: F) -> F:
    """Globus's ``common_options`` (``-h`` comes from the group's context settings)."""
    f = click.option("--debug", is_flag=True, expose_value=False, is_eager=True, callback=_debug,
                     help="faas's log lines at DEBUG (start: the endpoint's log, as `debug: true`)")(f)
    f = click.option("--log-to-console", is_flag=True, expose_value=False, is_eager=True,
                     callback=_log_to_console,
                     help="log lines on stderr too (a foreground start always logs to the console)")(f)
    return click.option("--no-color", is_flag=True, expose_value=False,
                        help="accepted: faas's log lines have no colours")(f)


def _refuse_config_dir(_ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        raise click.UsageError(
            f"--config-dir {value}: faas keeps endpoints in $FAAS_HOME/endpoints/NAME (now "
            f"{_endpoints_folder()}), beside the embedded store its clients find through FAAS_HOME: set "
            f"FAAS_HOME for the endpoint and its clients alike. See {DOC}")


def _endpoints_folder() -> Path:
    from ..config import faas_home
    return faas_home() / "endpoints"


def globus_user_dir_warning() -> None:
    """GLOBUS_COMPUTE_USER_DIR (Globus's folder of endpoints) is not where faas looks: say where."""
    if os.environ.get("GLOBUS_COMPUTE_USER_DIR"):
        click.echo(f"warning: GLOBUS_COMPUTE_USER_DIR has no effect here: faas keeps endpoints in "
                   f"$FAAS_HOME/endpoints (now {_endpoints_folder()}); set FAAS_HOME instead", err=True)


def config_dir_option(f: F) -> F:
    """Globus's group option ``-c/--config-dir`` (its folder of endpoints): refused, saying why."""
    return click.option("-c", "--config-dir", expose_value=False, callback=_refuse_config_dir,
                        help="Globus's folder of endpoints: here FAAS_HOME (the option says so)")(f)


def remote_option(f: F) -> F:
    """``stop --remote``: Globus stops the endpoint wherever it runs through its hosted service."""
    def refuse(_ctx: click.Context, _param: click.Parameter, value: bool) -> None:
        if value:
            raise click.UsageError(
                "--remote: Globus stops an endpoint wherever it runs through its hosted service, which faas "
                "does not have; run `faas endpoint stop NAME` on the machine the endpoint runs on")
    return click.option("--remote", is_flag=True, expose_value=False, callback=refuse,
                        help="Globus's (through its hosted service): says to stop it where it runs")(f)


def endpoint_uuid_option(f: F) -> F:
    return click.option("--endpoint-uuid", metavar="UUID",
                        help="the endpoint's id, checked against the one made at configure (endpoint.json)")(f)


def check_endpoint_uuid(endpoint_uuid: str | None, endpoint_dir: Path) -> None:
    """Globus registers the endpoint under ``--endpoint-uuid``; here its id was made at configure:
    the option must name that one."""
    if endpoint_uuid is None:
        return
    from ..endpoint import config as ep_config
    have = ep_config.endpoint_id(endpoint_dir) if (endpoint_dir / "config.yaml").exists() else None
    if have is None or have != endpoint_uuid.lower():
        raise click.UsageError(
            f"--endpoint-uuid {endpoint_uuid}: endpoint {endpoint_dir.name}'s id is {have or '(none yet)'}, made "
            f"at `faas endpoint configure` and kept in {endpoint_dir / ep_config.ID_FILE}; faas does not "
            f"register endpoints under another id")


def not_a_uuid(name: str) -> str:
    """Globus's configure takes a name, never an id (an id names an endpoint that exists)."""
    try:
        uuid.UUID(name)
    except ValueError:
        return name
    raise click.BadParameter(f"'faas endpoint configure' requires an endpoint name that is not a UUID "
                             f"(got: '{name}')", param_hint="NAME")


_TRUE_WORDS, _FALSE_WORDS = {"1", "true", "t", "yes", "y", "on"}, {"0", "false", "f", "no", "n", "off"}


def multi_user_words(args: list[str]) -> list[str]:
    """Globus's ``--multi-user true|false`` (a value) as faas's ``--multi-user`` /
    ``--no-multi-user`` flags; ``--multi-user NAME`` stays the flag and the name."""
    out: list[str] = []
    i = 0
    while i < len(args):
        arg, following = args[i], args[i + 1] if i + 1 < len(args) else None
        word = arg.partition("=")[2] if arg.startswith("--multi-user=") else \
            following if arg == "--multi-user" and following is not None else None
        if word is not None and word.lower() in _TRUE_WORDS | _FALSE_WORDS:
            out.append("--multi-user" if word.lower() in _TRUE_WORDS else "--no-multi-user")
            i += 1 if arg.startswith("--multi-user=") else 2
            continue
        out.append(arg)
        i += 1
    return out


class ConfigureCommand(click.Command):
    """``configure``, reading Globus's ``--multi-user true|false`` too."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, multi_user_words(args))


def configure_options(f: F) -> F:
    """``globus-compute-endpoint configure``'s options that ``faas endpoint configure`` lacks."""
    path = click.Path(exists=True, dir_okay=False, path_type=Path)
    options: list[tuple[str, dict[str, Any]]] = [
        ("--display-name", {"help": "a human readable name for the endpoint (display_name)"}),
        ("--contact-email", {"help": "written as `email` (Globus's web app shows it; no effect here)"}),
        ("--auth-policy", {"help": "a Globus Auth policy id, written as `authentication_policy` (no effect here)"}),
        ("--subscription-id", {"help": "a Globus subscription id, written as `subscription_id` (no effect here)"}),
        ("--high-assurance", {"is_flag": True, "help": "written as `high_assurance` (no effect here)"}),
        ("--manager-config", {"type": path, "help": "config.yaml to start from in place of the default"}),
        ("--endpoint-config", {"type": path, "help": "deprecated (Globus): use --manager-config"}),
        ("--template-config", {"type": path, "help": "user_config_template.yaml.j2 (multi-user)"}),
        ("--schema-config", {"type": path, "help": "user_config_schema.json (multi-user)"}),
        ("--user-env-config", {"type": path, "help": "user_environment.yaml (multi-user)"}),
        ("--id-mapping-config", {"type": path, "help": "the identity mapping (multi-user)"}),
        ("--auth-policy-project-id", {"hidden": True}),
        ("--auth-policy-display-name", {"hidden": True}),
        ("--auth-policy-mfa-required", {"is_flag": True, "default": None, "hidden": True}),
        ("--auth-policy-description", {"hidden": True}),
        ("--allowed-domains", {"hidden": True}),
        ("--excluded-domains", {"hidden": True}),
        ("--auth-timeout", {"type": click.IntRange(min=0), "hidden": True}),
    ]
    for decl, kwargs in reversed(options):
        f = click.option(decl, **kwargs)(f)
    return f


def refuse_policy_creation(given: dict[str, Any]) -> None:
    """Globus makes an auth policy through Globus Auth's service at configure time: there is none."""
    named = [f"--{k.replace('_', '-')}" for k in POLICY_OPTIONS if given.get(k) is not None]
    if named:
        raise click.UsageError(
            f"{', '.join(named)}: these make a Globus Auth policy through Globus Auth's hosted service, "
            f"which faas does not have; who may run tasks here is who may send to the endpoint's queue and "
            f"holds a signing key (a multi-user endpoint: whom identity mapping, allowed_users and "
            f"denied_users admit). See {DOC}")


def check_high_assurance(high_assurance: bool, subscription_id: str | None, auth_policy: str | None) -> None:
    """Globus's rule, so a command line that fails there fails here."""
    if high_assurance and not (subscription_id and auth_policy):
        raise click.UsageError("High Assurance(HA) endpoints require both a HA policy and a HA subscription id")


def manager_config_file(manager_config: Path | None, endpoint_config: Path | None) -> Path | None:
    """``--manager-config``, or Globus's deprecated ``--endpoint-config``, with Globus's warnings."""
    if endpoint_config is None:
        return manager_config
    click.echo("--endpoint-config is deprecated; use --manager-config instead. If you want to configure "
               "user endpoint processes, use --template-config.", err=True)
    if manager_config is None:
        return endpoint_config
    click.echo("Both --endpoint-config and --manager-config were provided; --endpoint-config will be ignored.",
               err=True)
    return manager_config


def read_manager_config(path: Path) -> dict:
    """The mapping of a config.yaml given with ``--manager-config``."""
    from ..endpoint import config as ep_config
    from ..exceptions import ConfigError
    try:
        data = ep_config.yaml_load(path.read_text())
    except (OSError, ValueError) as e:
        raise ConfigError(f"--manager-config {path}: cannot read it as YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"--manager-config {path}: must be a YAML mapping (got {type(data).__name__})")
    return data


def globus_keys(display_name: str | None, contact_email: str | None, auth_policy: str | None,
                subscription_id: str | None, high_assurance: bool) -> dict[str, Any]:
    """config.yaml's keys for configure's options, named as Globus writes them."""
    keys = {"display_name": display_name, "email": contact_email, "authentication_policy": auth_policy,
            "subscription_id": subscription_id, "high_assurance": True if high_assurance else None}
    return {k: v for k, v in keys.items() if v is not None}


def multi_user_files(given: dict[str, Any]) -> dict[str, Path]:
    """The multi-user files given on the command line, by their name in the endpoint's folder."""
    from ..endpoint.multiuser import files
    names = {"template_config": files.TEMPLATE, "schema_config": files.SCHEMA,
             "user_env_config": files.ENVIRONMENT, "id_mapping_config": files.MAPPING}
    return {names[k]: given[k] for k in MULTI_USER_FILE_OPTIONS if given.get(k) is not None}


def refuse_multi_user_files_on_single_user(name: str, given: dict[str, Any]) -> None:
    named = [f"--{k.replace('_', '-')}" for k in MULTI_USER_FILE_OPTIONS if given.get(k) is not None]
    if named:
        raise click.UsageError(
            f"{', '.join(named)}: files of a multi-user endpoint, whose user endpoints render the template "
            f"(faas tells the kind by the folder: the template beside config.yaml); leave out --multi-user "
            f"false to configure {name} as one, or leave them out for a single-user endpoint, whose "
            f"config.yaml holds its engine. See {DOC}")


def copy_files(endpoint_dir: Path, by_name: dict[str, Path]) -> None:
    """Copy the given files into the endpoint's folder, as ``write_defaults`` writes its own (644)."""
    endpoint_dir.mkdir(parents=True, exist_ok=True)
    for name, source in by_name.items():   # never through a link at the target's name
        replace_file(endpoint_dir / name, Path(source).read_bytes(), mode=0o644)


# -- on-boot persistence (systemd), as Globus's boot_persistence.py ---------------------------

#: where enable-on-boot writes the unit (Globus's place)
SYSTEMD_UNIT_DIR = Path("/etc/systemd/system")

SYSTEMD_UNIT = """[Unit]
Description=faas endpoint "{name}"
After=network.target
StartLimitIntervalSec=0

[Service]
ExecStart={python} -m faas.cli.main endpoint start {name}
Environment="FAAS_HOME={home}"
User={user}
Type=simple
Restart=always
RestartSec=1

[Install]
WantedBy=multi-user.target
"""


def service_name(name: str) -> str:
    return f"faas-endpoint-{name}"


def _unit_path(name: str) -> Path:
    if not SYSTEMD_UNIT_DIR.exists():
        raise click.ClickException("Systemd not found. On-boot persistence is currently only implemented for "
                                   "systemd; check this machine's init system documentation for alternatives.")
    return SYSTEMD_UNIT_DIR / f"{service_name(name)}.service"


def _unit_text(name: str, home: Path) -> str:
    """The unit that starts the endpoint as this account (its uid's name: not $USER, which the
    caller sets), with this FAAS_HOME and this Python."""

    from ..accounts import user_name
    unsafe = [v for v in (str(home), sys.executable)
              if any(c in v for c in '"\\%$ ') or any(ord(c) < 32 or ord(c) == 127 for c in v)]
    if unsafe:   # systemd would split or expand them: say so rather than write a unit that runs another thing
        raise click.ClickException(f"{unsafe[0]!r}: a path with spaces, quotes, '%', '$' or control characters "
                                   f"cannot go into a systemd unit as it is; write the unit yourself "
                                   f"(docs/site-admin.md)")
    return SYSTEMD_UNIT.format(name=name, python=sys.executable, home=home, user=user_name(os.geteuid()))


@click.command("enable-on-boot")
@name_argument
@common_options
def enable_on_boot(name: str) -> None:
    """Install a systemd unit that starts endpoint NAME when the machine boots (and restarts it)."""
    from ..config import faas_home
    from ..endpoint import config as ep_config
    from ..endpoint import control
    from ..locks import is_running
    name = ep_config.check_name(control.local_name(name))
    d = ep_config.endpoint_dir(name)
    if not (d / "config.yaml").exists():
        raise click.ClickException(f"endpoint {name!r} is not configured: run `faas endpoint configure {name}`")
    if is_running(d):
        raise click.ClickException("Cannot enable on-boot persistence for an endpoint that is currently running. "
                                   f"Stop endpoint {name} and try again.")
    path, text = _unit_path(name), _unit_text(name, faas_home())
    try:
        # never over a unit that is there (another's, or a link); 644 whatever the umask
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        with os.fdopen(fd, "w") as unit:
            os.fchmod(fd, 0o644)
            unit.write(text)
    except FileExistsError:
        raise click.ClickException(f"Cannot create systemd unit file - a file with the name {path} already exists") \
            from None
    except PermissionError as e:
        raise click.ClickException(f"{e}\n\nUnable to create systemd unit file.  (Do you need to be root?)\n"
                                   f"\n----- Systemd unit file content -----\n{text}") from None
    click.echo(f"Systemd service installed at {path}. Run\n\tsudo systemctl enable {service_name(name)} --now"
               f"\nto enable the service and start the endpoint.")


@click.command("disable-on-boot")
@name_argument
@common_options
def disable_on_boot(name: str) -> None:
    """The commands that undo enable-on-boot for endpoint NAME (run them as root)."""
    from ..endpoint import config as ep_config
    path = _unit_path(ep_config.check_name(name))
    if not path.exists():
        raise click.ClickException(f"There does not appear to be an existing systemd unit for endpoint {name} "
                                   f"(unit file {path} not found)")
    service = service_name(name)
    click.echo(f"Run the following to disable on-boot-persistence:\n\tsystemctl stop {service}\n"
               f"\tsystemctl disable {service}\n\trm {path}")


# -- python-exec, migrate-to-template-capable -------------------------------------------------

@click.command("python-exec", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("module")
@click.pass_context
def python_exec(ctx: click.Context, module: str) -> None:
    """Run a Python module as a script with faas's Python (Globus's: fewer PATH issues)."""
    os.execv(sys.executable, [sys.executable, "-m", module, *ctx.args])


@click.command("migrate-to-template-capable")
@name_argument
@click.option("--yes", is_flag=True, help="accepted, as Globus's")
def migrate_to_template_capable(name: str, yes: bool) -> None:
    """Globus's one-way move of an endpoint's engine into a template: says what to do here."""
    raise click.UsageError(
        f"migrate-to-template-capable: a single-user faas endpoint keeps its engine in config.yaml and "
        f"needs no template; a template is a multi-user endpoint's (`faas endpoint configure {name} "
        f"--multi-user`, run as root, with the engine in its user_config_template.yaml.j2). See {DOC}")


# -- commands that need Globus Auth, and version ----------------------------------------------

def _globus_auth_command(name: str, what: str) -> click.Command:
    def refuse() -> None:
        raise click.UsageError(
            f"{name}: {what} Globus Auth, which faas does not have: who you are comes from the transport "
            f"(the account that wrote the task file; over S3/SQS the identity a signing key is registered "
            f"for). See {DOC}")
    return click.command(name, help=f"Globus's `{name}` ({what} Globus Auth): says why there is none here.")(refuse)


@click.command("version")
@common_options
def version() -> None:
    """The version of faas (Globus's `globus-compute-endpoint version`)."""
    from .. import __version__
    click.echo(f"faas endpoint version: {__version__}")


def register(group: click.Group) -> None:
    for command in (version, enable_on_boot, disable_on_boot, python_exec, migrate_to_template_capable):
        group.add_command(command)
    for name, what in (("login", "logs in to"), ("logout", "logs out of"), ("whoami", "shows who is logged in to")):
        group.add_command(_globus_auth_command(name, what))
