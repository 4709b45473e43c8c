"""``faas console``: the web console over the store."""
from __future__ import annotations

import click


@click.command()
def console() -> None:
    """Serve the web console (endpoints, tasks, functions, flows, runs, timers)."""
    raise click.ClickException("the console is not built yet")
