"""The web console: endpoints, tasks, functions, flows, runs and timers of one store, in a
browser and as a JSON API (``faas console``). The store is its only database."""
from .app import create_app
from .auth import Tokens

__all__ = ["create_app", "Tokens"]
