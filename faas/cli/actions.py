"""``faas actions``: this site's actions over the Globus Action Provider API."""
from __future__ import annotations

import os

import click

from .console import _url_host, is_loopback, refuse_tokens_in_argv, token_file_values


@click.group()
def actions() -> None:
    """Serve faas's actions (compute, transfer family, notify) to other flows runners."""


@actions.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="address to bind; anything but loopback needs a token you give (--token-file)")
@click.option("--port", default=8766, show_default=True, type=int)
@click.option("--store", help="site store where action documents live [default: the profile's, "
                              "else the embedded store under FAAS_HOME]")
@click.option("--profile", help="client profile in $FAAS_HOME/config")
@click.option("--config", "config_path",
              help="site flows config (YAML/JSON) handed to every action: collections, compute, "
                   "notify.smtp (as `faas flows serve --config`)")
@click.option("--token-file", "token_files", multiple=True, metavar="FILE",
              help="a file only you can read (mode 600) holding the tokens, one a line: TOKEN or "
                   "manage:TOKEN (run, and see or stop every action), run:TOKEN (run, and see or "
                   "stop its own actions), read:TOKEN (introspect and status only). Or set "
                   "FAAS_ACTIONS_TOKEN (several, space-separated). Never on the command line: every "
                   "local account can read a process's arguments. [default: the console's manage "
                   "token in $FAAS_HOME/console.token, loopback only]")
# From the environment only: given on the command line it stops the server with what to do instead.
@click.option("--token", "tokens", multiple=True, envvar="FAAS_ACTIONS_TOKEN", hidden=True)
@click.option("--only", multiple=True, metavar="PREFIX",
              help="serve only this action path (/compute, /notify, ...); repeat for several")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, store: str | None, profile: str | None,
          config_path: str | None, token_files: tuple[str, ...], tokens: tuple[str, ...],
          only: tuple[str, ...]) -> None:
    """Serve this site's actions over the Globus Action Provider API: one path per action
    (/compute, /transfer/transfer, /transfer/delete, /notify, ...), each with introspection
    (GET), run (POST run or actions), status, cancel and release. Another site's flows use it
    through an https:// ActionUrl, with the token in their flows config's http section."""
    try:
        from ..flows.ap_server import create_app, mounts
        from ..flows.ap_server.auth import ActionTokens, parse_tokens
    except ModuleNotFoundError as e:
        raise click.ClickException(str(e)) from None
    import uvicorn

    from ..config import resolve
    from ..console.token_file import load_or_create
    from .flows import read_doc

    refuse_tokens_in_argv(ctx, {"tokens": ("--token", "FAAS_ACTIONS_TOKEN")})
    try:
        tok = parse_tokens([*tokens, *token_file_values(token_files)])
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--token-file/FAAS_ACTIONS_TOKEN") from None
    if tok is None:
        if not is_loopback(host):
            raise click.UsageError(f"--host {host} is not a loopback address: give tokens (--token-file "
                                   f"FILE, mode 600, or FAAS_ACTIONS_TOKEN: run:TOKEN, manage:TOKEN) "
                                   f"and put the server behind HTTPS")
        token, path, made = load_or_create(os.environ.get("FAAS_HOME"))
        tok = ActionTokens([("manage", token)])
        click.echo(f"  manage token {'made and kept' if made else 'kept'} in {path} (mode 600)", err=True)
    from ..flows import site_config
    config = site_config.check(read_doc(config_path, "config"), config_path) if config_path else None
    url = resolve(profile, store=store).store_url
    try:
        app = create_app(tokens=tok, store_url=url, config=config, only=list(only) or None)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--only") from None
    base = f"http://{_url_host(host)}:{port}"
    served = [m for m in mounts() if not only or m in only]
    click.echo(f"faas actions on {base} over {url} (token required):", err=True)
    for m in served:
        click.echo(f"  {base}{m}", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
