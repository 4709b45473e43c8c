"""``faas timers``: scheduled and recurring flow runs, tasks and transfers."""
from __future__ import annotations

import click


@click.group()
def timers() -> None:
    """Timers: once or recurring runs of a flow, a function or a transfer."""
