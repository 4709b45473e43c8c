"""The task journal: one JSON line per finished task, written by the worker pool in batches.

It is what the console lists and charts (tasks per minute, recent tasks with filters) without a
database and without one store request per task: a pool buffers records and writes them as one
object per flush, under ``journal/<endpoint>/<YYYYMMDDHH>/<block>-<host>-<pid>-<seq>.jsonl``.
The hour folder is the hour (UTC) the tasks *finished*, so a reader asking for a time window
lists only the hours it covers. Objects are never rewritten: a reader may cache them by key.
"""
from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import threading
import time
from collections.abc import Iterator

from ..store import KeyNotFound, Store

log = logging.getLogger("faas.journal")

PREFIX = "journal/"
STATUSES = ("success", "failed", "cancelled", "timeout")
#: a failed flush keeps its records; beyond this many the oldest are dropped (and logged)
MAX_BUFFERED = 100_000


_ENCODE = json.JSONEncoder(separators=(",", ":")).encode


def line(task_id: str, function_id: str, *, n: int, sent: float, started: float, finished: float,
         status: str, endpoint: str, block: str, host: str, pid: int, error: str | None = None) -> str:
    """One task's record as the journal stores it (a JSON line), made where the task ended: by
    its worker for the tasks it ran (so the pool's one process spends nothing on them: issue
    18), by the pool for the others (timeouts, lost workers, cancels)."""
    rec = {"task_id": task_id, "function_id": function_id, "n": n, "sent": sent, "started": started,
           "finished": finished, "status": status, "endpoint": endpoint, "block": block,
           "host": host, "pid": pid}
    if error:
        rec["error"] = error
    return _ENCODE(rec) + "\n"


def hour_of(t: float) -> str:
    return _dt.datetime.fromtimestamp(t, _dt.timezone.utc).strftime("%Y%m%d%H")


def _safe(part: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in str(part)) or "_"


class Journal:
    """Buffers task records and writes them to the store, one object per flush and hour.

    ``record`` and ``add`` only append under a lock (the pool's hot path); ``flush_if_due`` writes when
    ``flush_every`` seconds have passed since the last flush or ``max_batch`` records wait;
    ``close`` writes what is left. A failed write keeps the records for the next flush."""

    def __init__(self, store: Store, endpoint: str, block: str, host: str, *,
                 flush_every: float = 5.0, max_batch: int = 500):
        self.store, self.endpoint, self.block, self.host = store, endpoint, block, host
        self.flush_every, self.max_batch = flush_every, max_batch
        self._buf: list[tuple[float, str]] = []   # (finished, its JSON line)
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()   # one writer at a time keeps ``seq`` unique
        self._seq = 0
        self._last = time.monotonic()
        self._pid = os.getpid()

    def record(self, task_id: str, function_id: str, *, n: int, sent: float, started: float,
               finished: float, status: str, error: str | None = None) -> None:
        self.add(finished, line(task_id, function_id, n=n, sent=sent, started=started, finished=finished,
                                status=status, endpoint=self.endpoint, block=self.block, host=self.host,
                                pid=self._pid, error=error))

    def add(self, finished: float, text: str) -> None:
        """A record made elsewhere with :func:`line` (a worker's), finished at ``finished``."""
        with self._lock:
            self._buf.append((finished, text))

    def pending(self) -> int:
        with self._lock:
            return len(self._buf)

    def flush_if_due(self) -> None:
        with self._lock:
            due = bool(self._buf) and (len(self._buf) >= self.max_batch
                                       or time.monotonic() - self._last >= self.flush_every)
        if due:
            self.flush()

    def flush(self) -> None:
        """Write every buffered record now (one PUT per hour the records finished in)."""
        with self._flush_lock:
            with self._lock:
                batch, self._buf = self._buf, []
                self._last = time.monotonic()
            if not batch:
                return
            by_hour: dict[str, list[tuple[float, str]]] = {}
            hours: dict[int, str] = {}   # hour_of once per hour, not per record (the pool's CPU: issue 18)
            for rec in batch:
                n = int(rec[0] // 3600)
                hour = hours.get(n) or hours.setdefault(n, hour_of(rec[0]))
                by_hour.setdefault(hour, []).append(rec)
            failed: list[tuple[float, str]] = []
            for hour, recs in sorted(by_hour.items()):
                self._seq += 1
                key = (f"{PREFIX}{_safe(self.endpoint)}/{hour}/{_safe(self.block)}-{_safe(self.host)}-"
                       f"{self._pid}-{self._seq:06d}.jsonl")
                body = "".join(text for _, text in recs).encode()
                try:
                    self.store.put(key, body)
                except Exception as e:  # noqa: BLE001 - the journal must never stop the pool
                    log.warning("writing %d journal record(s) to %s failed (%s); keeping them for "
                                "the next flush", len(recs), key, e)
                    failed.extend(recs)
            if failed:
                with self._lock:
                    self._buf[:0] = failed
                    if len(self._buf) > MAX_BUFFERED:
                        drop = len(self._buf) - MAX_BUFFERED
                        log.error("journal buffer full: dropping the %d oldest record(s)", drop)
                        del self._buf[:drop]

    def close(self) -> None:
        self.flush()


# -- readers ---------------------------------------------------------------------------------

def _hours(since: float, until: float) -> list[str]:
    t = _dt.datetime.fromtimestamp(since, _dt.timezone.utc).replace(minute=0, second=0, microsecond=0)
    end = _dt.datetime.fromtimestamp(until, _dt.timezone.utc)
    out = []
    while t <= end:
        out.append(t.strftime("%Y%m%d%H"))
        t += _dt.timedelta(hours=1)
    return out


def journal_endpoints(store: Store) -> list[str]:
    """Endpoints with a record in the store (``endpoints/NAME.json``): whose journals to read."""
    return sorted(k[len("endpoints/"):-len(".json")] for k in store.list("endpoints/") if k.endswith(".json"))


def journal_keys(store: Store, endpoint: str | None = None, since: float | None = None,
                 until: float | None = None) -> list[str]:
    """Keys of the journal objects that may hold records finished in [since, until].

    With ``since``, only the hour folders of the window are listed (for every registered
    endpoint, or ``endpoint``); without it, the whole journal (of ``endpoint``)."""
    if since is None:
        prefix = PREFIX + (f"{_safe(endpoint)}/" if endpoint else "")
        return sorted(store.list(prefix))
    until = time.time() if until is None else until
    names = [endpoint] if endpoint else journal_endpoints(store)
    keys: list[str] = []
    for name in names:
        for hour in _hours(since, until):
            keys.extend(store.list(f"{PREFIX}{_safe(name)}/{hour}/"))
    return sorted(keys)


def parse(data: bytes, key: str) -> list[dict]:
    out = []
    for i, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except ValueError:
            log.warning("journal object %s line %d is not JSON; skipped", key, i)
    return out


def read_journal(store: Store, endpoint: str | None = None, since: float | None = None,
                 until: float | None = None) -> Iterator[dict]:
    """Records of tasks that finished in [since, until] (epoch seconds; either may be None),
    oldest object first."""
    for key in journal_keys(store, endpoint, since, until):
        try:
            data = store.get(key)
        except KeyNotFound:   # expired by a lifecycle rule while we listed
            continue
        for rec in parse(data, key):
            t = rec.get("finished", 0)
            if (since is None or t >= since) and (until is None or t <= until):
                yield rec


def find_task(store: Store, task_id: str) -> dict | None:
    """The journal record of ``task_id`` (its last, if it ran twice), or None. Reads the whole
    journal: for one-off lookups; the console keeps an index instead."""
    found = None
    for rec in read_journal(store):
        if rec.get("task_id") == task_id and (found is None or rec["finished"] >= found["finished"]):
            found = rec
    return found
