"""``globus_compute_sdk.sdk.mpi_function``: MPIFunction."""
from __future__ import annotations

from ..shell_function import MPIFunction

__all__ = ["MPIFunction"]
