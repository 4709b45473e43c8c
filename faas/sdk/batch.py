"""``globus_compute_sdk.sdk.batch``: Batch (faas/globus_client.py)."""
from __future__ import annotations

from ..globus_client import Batch

__all__ = ["Batch"]
