"""What every route needs: the store, the client over it, the journal index, the flows and timers
clients. One per app; the store is the only database."""
from __future__ import annotations

import threading
from pathlib import Path

from ..api import Client
from ..config import faas_home, resolve
from ..store import Queue, open_queue
from .journal_index import JournalIndex
from .running_index import RunningIndex


class Console:
    def __init__(self, store_url: str | None = None, *, home: str | Path | None = None,
                 profile: str | None = None, window_hours: float = 24.0):
        self.home = faas_home(home)
        self.settings = resolve(profile, store=store_url, home=self.home, autostart=False)
        self.client = Client(self.settings)
        self.store = self.client.store
        self.store_url = self.settings.store_url
        self.journal = JournalIndex(self.store, window_hours=window_hours)
        self.running = RunningIndex(self.store, self.journal, self.client.client_id, window_hours=window_hours)
        self.functions: dict[str, dict] = {}     # id -> {name, size}: content-addressed, never changes
        self._queues: dict[str, Queue] = {}
        self._lock = threading.Lock()
        self._flows = self._timers = self._runs = None

    def queue(self, url: str) -> Queue:
        q = self._queues.get(url)
        if q is None:
            q = self._queues[url] = open_queue(url)
        return q

    @property
    def flows(self):
        """``faas.flows.FlowsClient`` over this store, or None while flows are not installed."""
        if self._flows is None:
            try:
                from ..flows import FlowsClient
            except ImportError:
                return None
            self._flows = FlowsClient(store=self.store_url)
        return self._flows

    @property
    def runs(self):
        """The run documents cache (:mod:`faas.console.run_index`) over :attr:`flows`."""
        if self._runs is None and self.flows is not None:
            from .run_index import RunIndex
            self._runs = RunIndex(self.flows)
        return self._runs

    @property
    def timers(self):
        if self._timers is None:
            try:
                from ..flows import TimersClient
            except ImportError:
                return None
            self._timers = TimersClient(store=self.store_url)
        return self._timers

    def warm_up(self) -> None:
        """Fill the journal index and the run cache (errors are the pages' to report)."""
        import logging
        try:
            self.journal.refresh()      # a first refresh reads the whole window anyway
            if self.runs is not None:
                self.runs.refresh()
        except Exception as e:  # noqa: BLE001 - a page load retries and shows the error
            logging.getLogger("faas.console").warning("warming up the console failed: %s", e)

    def close(self) -> None:
        self.client.close()
