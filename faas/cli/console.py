"""``faas console``: the web console over the store."""
from __future__ import annotations

import ipaddress
import os

import click


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


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="address to bind; anything but loopback needs a token you give (--token)")
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--store", help="store URL [default: the profile's, else the embedded store under FAAS_HOME]")
@click.option("--profile", help="client profile in $FAAS_HOME/config")
@click.option("--token", "tokens", multiple=True, envvar="FAAS_CONSOLE_TOKEN",
              help="TOKEN or manage:TOKEN for the manage role (cancel, start, approve, pause); "
                   "read:TOKEN for a read-only token. Repeat for both. [env FAAS_CONSOLE_TOKEN] "
                   "[default: a manage token kept in $FAAS_HOME/console.token, mode 600, made at "
                   "the first start]")
@click.option("--read-token", envvar="FAAS_CONSOLE_READ_TOKEN",
              help="a read-only token (same as --token read:TOKEN) [env FAAS_CONSOLE_READ_TOKEN]")
@click.option("--history-hours", default=24.0, show_default=True, type=click.FloatRange(min=1.0),
              help="hours of the task journal the tasks pages and charts cover")
def console(host: str, port: int, store: str | None, profile: str | None, tokens: tuple[str, ...],
            read_token: str | None, history_hours: float) -> None:
    """Serve the web console (endpoints, tasks, functions, flows, runs, timers) and its JSON API
    (OpenAPI document at /openapi.json).

    Every request needs a token, on loopback too (loopback is every local account's). With no
    --token the console uses the manage token in $FAAS_HOME/console.token (made, mode 600, at the
    first start) and prints a login URL that holds it."""
    try:
        from ..console import create_app
    except ModuleNotFoundError as e:   # a plain install: the message says which extra
        raise click.ClickException(str(e)) from None
    import uvicorn

    from ..console.auth import Tokens, parse_token_option
    from ..console.context import Console
    from ..console.token_file import load_or_create

    try:
        tok = parse_token_option(tokens, read_token)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--token/--read-token") from None
    home = os.environ.get("FAAS_HOME")
    token_file = made = None
    if tok is None:
        if not is_loopback(host):
            raise click.UsageError(
                f"--host {host} is not a loopback address: give a token (--token TOKEN or "
                f"FAAS_CONSOLE_TOKEN, and --read-token for read-only access) and put the console "
                f"behind HTTPS; the token in $FAAS_HOME/console.token is for a console on loopback")
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
