"""A cache of run documents for the runs and flows pages.

``FlowsClient.list_runs`` reads every run document on every call: one GET per run, seconds on
S3 with a thousand runs. A run that has ended does not change, so the console keeps those and
re-reads only new and unfinished runs (in parallel), then filters and checks access with the
flows API's own rules (``faas.flows.access``), as ``list_runs`` does.
"""
from __future__ import annotations

import concurrent.futures as cf
import threading
import time

from ..flows.client import DONE
from ..store import KeyNotFound, Store


def get_many(store: Store, keys: list[str], threads: int = 16) -> dict[str, bytes]:
    """GET ``keys`` in parallel (object stores answer each in milliseconds; the wait is the
    round trip); missing keys are left out."""
    def one(k):
        try:
            return k, store.get(k)
        except KeyNotFound:
            return k, None
    if len(keys) <= 2:
        pairs = [one(k) for k in keys]
    else:
        with cf.ThreadPoolExecutor(min(threads, len(keys))) as ex:
            pairs = list(ex.map(one, keys))
    return {k: v for k, v in pairs if v is not None}


class RunIndex:
    def __init__(self, flows_client, *, min_interval: float = 1.0):
        self.fc = flows_client
        self.min_interval = min_interval
        self._docs: dict[str, dict] = {}     # run.json key -> run document
        self._lock = threading.Lock()
        self._at = 0.0

    def refresh(self, force: bool = False) -> None:
        import json

        from ..flows import store_layout
        with self._lock:
            if not force and time.monotonic() - self._at < self.min_interval:
                return
            keys = {k for k in self.fc.store.list(store_layout.RUNS) if k.endswith("/run.json")}
            stale = [k for k in keys if k not in self._docs or self._docs[k].get("status") not in DONE]
            for k, data in get_many(self.fc.store, stale).items():
                try:
                    self._docs[k] = json.loads(data)
                except ValueError:
                    continue
            for k in set(self._docs) - keys:
                del self._docs[k]
            self._at = time.monotonic()

    def list_runs(self, flow_id: str | None = None, status: str | None = None, label: str | None = None,
                  since: float | None = None) -> list[dict]:
        """What ``FlowsClient.list_runs`` returns (the runs this identity may monitor), newest first."""
        from ..flows import access, store_layout
        from ..flows.client import parse_time
        self.refresh()
        flows: dict = {}
        out = []
        for run in list(self._docs.values()):
            if flow_id and run.get("flow_id") != flow_id or status and run.get("status") != status \
                    or label is not None and run.get("label") != label:
                continue
            if since is not None and parse_time(run["start_time"]) < since:
                continue
            fid = run.get("flow_id")
            if fid not in flows:
                flows[fid] = store_layout.get_json(self.fc.store, store_layout.flow_key(str(fid)), None)
            if access.can_monitor(run, self.fc.identity, flows[fid]):
                out.append(run)
        return sorted(out, key=lambda r: r.get("start_time") or "", reverse=True)
