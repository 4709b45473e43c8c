"""``globus_compute_sdk.sdk.client``: Globus's Client (faas/globus_client.py)."""
from __future__ import annotations

from ..globus_client import Client

__all__ = ["Client"]
