"""Times as people read them: UTC, to the second, and how long ago."""
from __future__ import annotations

import datetime as _dt
import time
from typing import Any

#: a time as the store's documents hold it: epoch seconds, an ISO 8601 string, or None
Time = float | str | None


def _ts(t: Time) -> float | None:
    if t is None or t == "":
        return None
    if isinstance(t, (int, float)):
        return float(t)
    try:
        d = _dt.datetime.fromisoformat(str(t).replace("Z", "+00:00"))
    except ValueError:
        return None
    if d.tzinfo is None:
        d = d.replace(tzinfo=_dt.timezone.utc)
    return d.timestamp()


def _utc(t: Time, fmt: str) -> str:
    s = _ts(t)
    return "—" if s is None else _dt.datetime.fromtimestamp(s, _dt.timezone.utc).strftime(fmt)


def when(t: Time) -> str:
    return _utc(t, "%Y-%m-%d %H:%M:%S UTC")


def ago(t: Time) -> str:
    s = _ts(t)
    if s is None:
        return "—"
    d = time.time() - s
    future = d < 0
    d = abs(d)
    if d < 60:
        text = f"{d:.0f} s"
    elif d < 3600:
        text = f"{d / 60:.0f} min"
    elif d < 86400:
        text = f"{d / 3600:.1f} h"
    else:
        text = f"{d / 86400:.1f} d"
    return f"in {text}" if future else f"{text} ago"


def duration(a: Time, b: Time) -> str:
    x, y = _ts(a), _ts(b)
    if x is None or y is None:
        return "—"
    d = y - x
    return f"{d * 1000:.0f} ms" if d < 1 else f"{d:.2f} s"


def clock(t: Time) -> str:
    """``HH:MM:SS`` (UTC), for lists where the date is in the tooltip."""
    return _utc(t, "%H:%M:%S")


def interval(seconds: Any) -> str:
    """``86400`` -> ``1 d``, ``5400`` -> ``1 h 30 min``, ``45`` -> ``45 s``; anything else (a
    template filter sees any value) as ``str`` writes it."""
    try:
        left = int(round(float(seconds)))
    except (TypeError, ValueError):
        return str(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if left >= size:
            n, left = divmod(left, size)
            parts.append(f"{n} {unit}")
    return " ".join(parts) or "0 s"
