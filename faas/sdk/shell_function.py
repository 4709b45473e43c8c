"""``globus_compute_sdk.sdk.shell_function``: ShellFunction and ShellResult."""
from __future__ import annotations

from ..shell_function import ShellFunction, ShellResult

__all__ = ["ShellFunction", "ShellResult"]
