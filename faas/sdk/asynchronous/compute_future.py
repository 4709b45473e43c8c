"""``globus_compute_sdk.sdk.asynchronous.compute_future``: ``ComputeFuture`` (faas's
``TaskFuture``)."""
from __future__ import annotations

from ..executor import ComputeFuture

__all__ = ["ComputeFuture"]
