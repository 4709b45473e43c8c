"""The one way faas.flows writes a time: RFC 3339 in UTC with milliseconds and ``Z``
(``2026-12-05T03:04:05.678Z``), in run documents, action statuses and timers alike."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import overload


@overload
def iso(t: float) -> str: ...
@overload
def iso(t: None) -> None: ...


def iso(t: float | None) -> str | None:
    """Epoch seconds as RFC 3339 UTC (None stays None: an optional time not set)."""
    if t is None:
        return None
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
