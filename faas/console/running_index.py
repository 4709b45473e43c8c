"""Running tasks of this user, from the pools' ``running/<client id>/`` markers (written once, for tasks that run over a
second): what the journal, which holds finished tasks, cannot show yet.

Markers are never rewritten, so each is read once; a marker whose task has finished (in the
journal, or with a result object) is remembered as done and never looked at again. A page load
then costs one LIST of ``running/<client id>/`` plus a HEAD per task still running."""
from __future__ import annotations

import json
import threading
import time

from ..messages import result_key
from ..store import Store


class RunningIndex:
    def __init__(self, store: Store, journal, client_id: str, *, window_hours: float = 24.0, min_interval: float = 2.0):
        self.store, self.journal, self.client_id = store, journal, client_id
        self.prefix = f"running/{client_id}/"
        self.window, self.min_interval = window_hours * 3600.0, min_interval
        self._markers: dict[str, dict] = {}   # task id -> marker (where it runs, since when)
        self._done: set[str] = set()
        self._running: list[dict] = []
        self._lock = threading.Lock()
        self._refreshed = 0.0

    def tasks(self) -> list[dict]:
        """Tasks running now, newest start first, as journal-shaped rows with status running."""
        now = time.time()
        with self._lock:
            if now - self._refreshed < self.min_interval:
                return self._running
            self._refreshed = now
            running = []
            for key in self.store.list(self.prefix):
                tid = key[len(self.prefix):]
                if tid in self._done:
                    continue
                marker = self._markers.get(tid)
                if marker is None:
                    try:
                        marker = json.loads(self.store.get(key))
                    except Exception:  # noqa: BLE001 - vanished or unreadable: look again later
                        continue
                    self._markers[tid] = marker
                if marker.get("started", 0) < now - self.window or self.journal.get(tid) \
                        or self.store.exists(result_key(tid, self.client_id)):
                    self._done.add(tid)
                    self._markers.pop(tid, None)
                    continue
                running.append({"task_id": tid, "status": "running", "endpoint": marker.get("endpoint"),
                                "block": marker.get("block"), "host": marker.get("host"),
                                "started": marker.get("started")})
            self._running = sorted(running, key=lambda r: r.get("started") or 0, reverse=True)
            return self._running
