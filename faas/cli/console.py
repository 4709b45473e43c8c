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


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="address to bind; anything but loopback needs a token")
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--store", help="store URL [default: the profile's, else the embedded store under FAAS_HOME]")
@click.option("--profile", help="client profile in $FAAS_HOME/config")
@click.option("--token", "tokens", multiple=True, envvar="FAAS_CONSOLE_TOKEN",
              help="TOKEN or manage:TOKEN for the manage role (cancel, start, approve, pause); "
                   "read:TOKEN for a read-only token. Repeat for both. [env FAAS_CONSOLE_TOKEN]")
@click.option("--read-token", envvar="FAAS_CONSOLE_READ_TOKEN",
              help="a read-only token (same as --token read:TOKEN) [env FAAS_CONSOLE_READ_TOKEN]")
@click.option("--history-hours", default=24.0, show_default=True, type=click.FloatRange(min=1.0),
              help="hours of the task journal the tasks pages and charts cover")
def console(host: str, port: int, store: str | None, profile: str | None, tokens: tuple[str, ...],
            read_token: str | None, history_hours: float) -> None:
    """Serve the web console (endpoints, tasks, functions, flows, runs, timers) and its JSON API
    (OpenAPI document at /openapi.json)."""
    import uvicorn

    from ..console import create_app
    from ..console.auth import Tokens, parse_token_option
    from ..console.context import Console

    try:
        tok = parse_token_option(tokens)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--token") from None
    if read_token:
        tok = Tokens(manage=tok.manage, read=read_token)
    if tok.open and not is_loopback(host):
        raise click.UsageError(
            f"--host {host} is not a loopback address: give a token (--token TOKEN or "
            f"FAAS_CONSOLE_TOKEN, and --read-token for read-only access) so the console is not "
            f"open to anyone who can reach it")
    if tok.manage and tok.read and tok.manage == tok.read:
        raise click.BadParameter("the manage and read-only tokens are the same", param_hint="--read-token")
    c = Console(store, profile=profile, home=os.environ.get("FAAS_HOME"), window_hours=history_hours)
    app = create_app(tokens=tok, console=c)
    click.echo(f"faas console on http://{host}:{port}/ over {c.store_url} "
               f"({'no token: loopback only' if tok.open else 'token required'})", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
