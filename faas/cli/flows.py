"""``faas flows``: validate, deploy, start and watch flows (see faas/flows/)."""
from __future__ import annotations

import click


@click.group()
def flows() -> None:
    """Flows in the Globus Flows language: validate, deploy, start, watch."""
