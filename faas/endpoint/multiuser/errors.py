"""The error a client's future gets when a multi-user endpoint refuses its task (a light module:
clients unpickle it)."""
from __future__ import annotations

from ...exceptions import TaskFailed


class TaskRefused(TaskFailed):
    """A multi-user endpoint refused the task (identity not mapped or not allowed, variables
    refused by the schema, a limit); it did not run."""

    code = "TaskRefused"
