"""``faas console``: the web console over the store."""
from __future__ import annotations

import ipaddress
import os

import click
from click.core import ParameterSource


def is_loopback(host: str) -> bool:
    if host in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _url_host(host: str) -> str:
    """``host`` as it stands in a URL (an IPv6 address in brackets)."""
    if ":" in host and not host.startswith("["):
        return f"[{host}]"
    return host


def refuse_tokens_in_argv(ctx: click.Context, options: dict[str, tuple[str, str]]) -> None:
    """UsageError when a token option (``{param: (flag, env var)}``) was given on the command
    line: a process's arguments are every local account's to read (ps, /proc/PID/cmdline). Its
    environment variable is taken, and then dropped from this process's environment so that
    nothing it starts inherits the token."""
    for param, (flag, env) in options.items():
        if ctx.get_parameter_source(param) is ParameterSource.COMMANDLINE:
            raise click.UsageError(
                f"{flag} on the command line puts the token in this process's arguments, which every "
                f"account on this machine can read (ps, /proc/PID/cmdline): put the token in a file "
                f"only you can read (chmod 600 FILE) and give --token-file FILE, or set {env}")
    for _, env in options.values():
        os.environ.pop(env, None)


def token_file_values(paths: tuple[str, ...]) -> list[str]:
    """The token lines of each ``--token-file`` (each proven private first; ConfigError: exit 2)."""
    from ..console.token_file import read_token_lines
    return [t for p in paths for t in read_token_lines(p)]


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="address to bind; anything but loopback needs a token you give (--token-file)")
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--store", help="store URL [default: the profile's, else the embedded store under FAAS_HOME]")
@click.option("--profile", help="client profile in $FAAS_HOME/config")
@click.option("--token-file", "token_files", multiple=True, metavar="FILE",
              help="a file only you can read (mode 600) holding the tokens, one a line: TOKEN or "
                   "manage:TOKEN for the manage role (cancel, start, approve, pause), read:TOKEN for "
                   "a read-only one. Or set FAAS_CONSOLE_TOKEN (and FAAS_CONSOLE_READ_TOKEN for a "
                   "read-only one). Never on the command line: every local account can read a "
                   "process's arguments. [default: a manage token kept in $FAAS_HOME/console.token, "
                   "mode 600, made at the first start]")
# From the environment only: given on the command line they stop the console with what to do instead.
@click.option("--token", "tokens", multiple=True, envvar="FAAS_CONSOLE_TOKEN", hidden=True)
@click.option("--read-token", envvar="FAAS_CONSOLE_READ_TOKEN", hidden=True)
@click.option("--history-hours", default=24.0, show_default=True, type=click.FloatRange(min=1.0),
              help="hours of the task journal the tasks pages and charts cover")
@click.pass_context
def console(ctx: click.Context, host: str, port: int, store: str | None, profile: str | None,
            token_files: tuple[str, ...], tokens: tuple[str, ...], read_token: str | None,
            history_hours: float) -> None:
    """Serve the web console (endpoints, tasks, functions, flows, runs, timers) and its JSON API
    (OpenAPI document at /openapi.json).

    Every request needs a token, on loopback too (loopback is every local account's). With no
    --token-file and no FAAS_CONSOLE_TOKEN the console uses the manage token in
    $FAAS_HOME/console.token (made, mode 600, at the first start) and prints a login URL that
    holds it. A token is never given on the command line (ps shows it to every account)."""
    try:
        from ..console import create_app
    except ModuleNotFoundError as e:   # a plain install: the message says which extra
        raise click.ClickException(str(e)) from None
    import uvicorn

    from ..console.auth import Tokens, parse_token_option
    from ..console.context import Console
    from ..console.token_file import load_or_create

    refuse_tokens_in_argv(ctx, {"tokens": ("--token", "FAAS_CONSOLE_TOKEN"),
                                "read_token": ("--read-token", "FAAS_CONSOLE_READ_TOKEN")})
    try:
        tok = parse_token_option([*tokens, *token_file_values(token_files)], read_token)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--token-file/FAAS_CONSOLE_TOKEN") from None
    home = os.environ.get("FAAS_HOME")
    token_file = made = None
    if tok is None:
        if not is_loopback(host):
            raise click.UsageError(
                f"--host {host} is not a loopback address: give a token (--token-file FILE, mode "
                f"600, or FAAS_CONSOLE_TOKEN; read:TOKEN or FAAS_CONSOLE_READ_TOKEN for read-only "
                f"access) and put the console behind HTTPS; the token in $FAAS_HOME/console.token "
                f"is for a console on loopback")
        token, token_file, made = load_or_create(home)     # ConfigError (exit 2) when not private
        tok = Tokens(manage=token)
    c = Console(store, profile=profile, home=home, window_hours=history_hours)
    app = create_app(tokens=tok, console=c)
    base = f"http://{_url_host(host)}:{port}/"
    click.echo(f"faas console on {base} over {c.store_url} (token required)", err=True)
    if token_file is not None:
        click.echo(f"  manage token {'made and kept' if made else 'kept'} in {token_file} (mode 600; "
                   f"delete it to make a new one)\n"
                   f"  open {base}?token={tok.manage}", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
