"""``faas actions serve``: faas's own actions (compute, the transfer family, notify) over the
Globus Action Provider API, so a Globus flow or another site's faas runner (through an
``https://`` ActionUrl) can drive this site.

It needs the web extra: ``pip install 'faas[console]'`` (FastAPI and uvicorn)."""
from faas.extras import require

require("console", "the Action Provider server", "fastapi", "uvicorn")

from .app import create_app, mounts  # noqa: E402 - after require(): it names the extra to install
from .auth import ActionTokens  # noqa: E402 - after require(), as above

__all__ = ["create_app", "mounts", "ActionTokens"]
