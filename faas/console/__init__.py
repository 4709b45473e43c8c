"""The web console: endpoints, tasks, functions, flows, runs and timers of one store, in a
browser and as a JSON API (``faas console``). The store is its only database."""
from faas.extras import require

require("console", "the web console", "fastapi", "uvicorn")

from .app import create_app  # noqa: E402
from .auth import Tokens  # noqa: E402

__all__ = ["create_app", "Tokens"]
