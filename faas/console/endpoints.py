"""The endpoints view: the store's records, queue depth, blocks and workers, tasks per minute."""
from __future__ import annotations

import json
import time
from pathlib import Path

from ..endpoint import config as ep_config
from ..endpoint import registry
from ..exceptions import FaasError
from .context import Console


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def local_blocks(home: Path, name: str) -> list[dict] | None:
    """Blocks of an endpoint whose daemon runs under this FAAS_HOME (its ``daemon.status.json``
    and each pool's ``status.json``); None when it is not on this machine."""
    d = ep_config.endpoint_dir(name, home)
    status = _read_json(d / "daemon.status.json")
    if status is None:
        return None
    out = []
    for bid, b in sorted((status.get("blocks") or {}).items()):
        pools = []
        for f in sorted((d / "blocks" / bid).glob("**/status.json")):
            p = _read_json(f)
            if p is not None:
                pools.append({k: p.get(k) for k in ("host", "pid", "state", "workers", "busy", "held",
                                                    "idle_for", "counts", "time")})
        workers = sum(p.get("workers") or 0 for p in pools)
        busy = sum(p.get("busy") or 0 for p in pools)
        out.append({"id": bid, "job": b.get("job"), "state": b.get("state", "unknown"),
                    "keep_alive": b.get("keep_alive", False), "workers": workers, "busy": busy,
                    "idle": max(0, workers - busy), "pools": pools})
    return out


def multi_user(home: Path, name: str) -> dict | None:
    """A multi-user endpoint's user endpoints (its router's state file) and usage per user (its
    audit log), when its router runs under this FAAS_HOME and the console may read them."""
    d = ep_config.endpoint_dir(name, home)
    state = _read_json(d / "user_endpoints.json")
    if state is None:
        return None
    keep = ("user", "name", "state", "pid", "started_at", "last_activity", "routed", "done", "failed",
            "last_error")
    ues = sorted(({k: u.get(k) for k in keep} for u in (state.get("endpoints") or {}).values()),
                 key=lambda u: (u["user"] or "", u["name"] or ""))
    try:
        cfg = ep_config.load(d / "config.yaml")
        path = Path(cfg.audit_log_path if isinstance(cfg, ep_config.ManagerEndpointConfig) else "audit.log")
    except Exception:  # noqa: BLE001 - no readable config here: the default place
        path = Path("audit.log")
    try:
        from ..endpoint.multiuser.audit import usage as audit_usage
        usage = audit_usage(path if path.is_absolute() else d / path)
    except Exception:  # noqa: BLE001 - usage is a bonus (an unreadable log); the endpoints still show
        usage = None
    return {"user_endpoints": ues, "usage": usage}


def per_minute(records: list[dict], endpoint: str | None, now: float, minutes: int = 60) -> list[int]:
    """Tasks finished in each of the last ``minutes`` minutes, oldest first."""
    counts = [0] * minutes
    start = now - minutes * 60
    for r in records:            # newest first: stop at the window's start
        t = r.get("finished", 0)
        if t < start:
            break
        if endpoint is None or r.get("endpoint") == endpoint:
            counts[min(minutes - 1, int((t - start) // 60))] += 1
    return counts


def _blocks(c: Console, rec: dict) -> list[dict] | None:
    """From the daemon's status files when it runs on this machine (live), else from the
    block details its store record carries (up to the daemon's publish period old)."""
    local = local_blocks(c.home, rec["name"])
    if local is not None:
        return local
    detail = rec.get("block_detail")
    if detail is None:
        return None
    return [dict(b, pools=[], remote=True) for b in detail]


def list_endpoints(c: Console) -> list[dict]:
    records = c.journal.records()
    now = time.time()
    out = []
    for rec in registry.list_all(c.store):
        out.append(_describe(c, rec, records, now))
    return out


def get_endpoint(c: Console, name: str) -> dict:
    return _describe(c, registry.read(c.store, name), c.journal.records(), time.time())


def _describe(c: Console, rec: dict, records: list[dict], now: float) -> dict:
    name = rec["name"]
    depth: int | dict | None = None
    if rec.get("queue"):
        try:
            depth = c.queue(rec["queue"]).depth()
        except (FaasError, OSError) as e:
            depth = {"error": str(e)}
    tpm = per_minute(records, name, now)
    return {"name": name, "status": rec.get("status"), "display_name": rec.get("display_name"),
            "provider": rec.get("provider"), "host": rec.get("host"), "pid": rec.get("pid"),
            "started_at": rec.get("started_at"), "heartbeat_at": rec.get("heartbeat_at"),
            "version": rec.get("version"), "queue": rec.get("queue"), "queue_depth": depth,
            "max_blocks": rec.get("max_blocks"), "nodes_per_block": rec.get("nodes_per_block"),
            "max_workers_per_node": rec.get("max_workers_per_node"), "block_count": rec.get("blocks"),
            "blocks": _blocks(c, rec), "tasks_per_minute": tpm,
            "tasks_last_hour": sum(tpm), "multi_user": bool(rec.get("multi_user")),
            "user_endpoint_count": rec.get("user_endpoints"),
            "users": multi_user(c.home, name) if rec.get("multi_user") else None}
