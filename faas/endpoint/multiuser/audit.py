"""The audit log of a multi-user endpoint (JSON Lines, one line per task: time, identity, mapped
user, function id, outcome) and the usage summary read from it."""
from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any


class AuditLog:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        self.f = os.fdopen(fd, "a", buffering=1)

    def write(self, *, identity: str, user: str | None, function: str | None, task: str | None,
              outcome: str, reason: str | None = None, **extra: Any) -> None:
        now = time.time()
        line = {"time": datetime.fromtimestamp(now, timezone.utc).isoformat(timespec="milliseconds"),
                "identity": identity, "user": user, "function": function, "task": task, "outcome": outcome}
        if reason:
            line["reason"] = reason
        line.update({k: v for k, v in extra.items() if v is not None})
        self.f.write(json.dumps(line, separators=(",", ":")) + "\n")

    def close(self) -> None:
        self.f.close()


def parse_since(text: str | None) -> float | None:
    if not text:
        return None
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        from ...exceptions import ConfigError
        raise ConfigError(f"--since {text!r}: expected a date or time like 2026-11-01 or "
                          f"2026-11-01T12:00") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def usage(path: Path, since: float | None = None, blocks_path: Path | None = None) -> dict:
    """Per mapped user: tasks by outcome (audit log), task-hours (run time of the calls) and
    node-hours (nodes x run time of the blocks of the user's endpoints, from ``blocks_path``)."""
    out: dict = defaultdict(lambda: {"tasks": 0, "success": 0, "failed": 0, "cancelled": 0,
                                     "refused": 0, "task_hours": 0.0, "node_hours": 0.0})
    lines = []
    for p in (path, blocks_path):
        try:
            lines += Path(p).read_text().splitlines() if p else []
        except FileNotFoundError:
            pass
    for raw in lines:
        try:
            rec = json.loads(raw)
            t = datetime.fromisoformat(rec["time"]).timestamp()
        except (ValueError, KeyError):
            continue
        if since is not None and t < since:
            continue
        who = rec.get("user") or f"(unmapped) {rec.get('identity')}"
        row = out[who]
        if rec.get("outcome") == "block":
            row["node_hours"] += float(rec.get("node_seconds") or 0) / 3600
            continue
        row["tasks"] += 1
        kind = rec.get("outcome", "")
        row[kind if kind in ("success", "failed", "cancelled", "refused") else "failed"] += 1
        row["task_hours"] += float(rec.get("run_seconds") or 0) / 3600
    return {k: dict(v, task_hours=round(v["task_hours"], 6), node_hours=round(v["node_hours"], 6))
            for k, v in sorted(out.items())}
