"""An in-memory index of the recent task journal, refreshed incrementally.

Journal objects are never rewritten, so each is read once and kept; a refresh only lists the
hour folders of the window (the current and previous hour on every refresh, older hours now
and then, since a pool that could not write for a while flushes late). This is what keeps the
tasks pages fast with many thousands of tasks and costs a few LIST requests per refresh.
"""
from __future__ import annotations

import threading
import time

from ..endpoint.journal import PREFIX, _hours, _safe, journal_endpoints, parse
from ..store import Store


class JournalIndex:
    def __init__(self, store: Store, *, window_hours: float = 24.0, min_interval: float = 2.0,
                 old_hours_every: float = 60.0, max_records: int = 500_000):
        self.store = store
        self.window = window_hours * 3600.0
        self.min_interval, self.old_hours_every, self.max_records = min_interval, old_hours_every, max_records
        self._seen_keys: set[str] = set()
        self._by_id: dict[str, dict] = {}
        self._sorted: list[dict] = []      # newest finished first
        self._lock = threading.Lock()
        self._refreshed = 0.0
        self._old_listed = 0.0

    def refresh(self, force: bool = False) -> None:
        now = time.time()
        with self._lock:
            if not force and now - self._refreshed < self.min_interval:
                return
            self._refreshed = now
            hours = _hours(now - self.window, now)
            if force or now - self._old_listed >= self.old_hours_every:
                self._old_listed = now
            else:
                hours = hours[-2:]
            new_keys: list[str] = []
            for name in journal_endpoints(self.store):
                for hour in hours:
                    new_keys.extend(k for k in self.store.list(f"{PREFIX}{_safe(name)}/{hour}/")
                                    if k not in self._seen_keys)
            if not new_keys:
                return
            from .run_index import get_many
            fetched = get_many(self.store, sorted(new_keys))   # in parallel: S3 round trips
            for key in sorted(new_keys):
                self._seen_keys.add(key)
                if key not in fetched:
                    continue
                for rec in parse(fetched[key], key):
                    task_id = rec["task_id"]
                    old = self._by_id.get(task_id)
                    if old is None or rec.get("finished", 0) >= old.get("finished", 0):
                        self._by_id[task_id] = rec
            horizon = now - self.window
            recs = sorted((r for r in self._by_id.values() if r.get("finished", 0) >= horizon),
                          key=lambda r: r.get("finished", 0), reverse=True)[:self.max_records]
            self._sorted = recs
            if len(recs) != len(self._by_id):
                self._by_id = {r["task_id"]: r for r in recs}

    def records(self) -> list[dict]:
        """Newest first (a snapshot; do not modify)."""
        self.refresh()
        return self._sorted

    def get(self, task_id: str) -> dict | None:
        self.refresh()
        return self._by_id.get(task_id)
