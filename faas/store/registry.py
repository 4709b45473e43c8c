"""URL scheme -> backend. Backends are imported lazily so a local run never imports boto3.

Sites add their own with :func:`register_store` and :func:`register_queue` (see
docs/site-admin.md, "Plugins"); a store scheme nobody registered goes to fsspec.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from ..exceptions import ConfigError
from ..registry import Registry
from .base import Store
from .queue_base import Queue

#: store URL scheme -> "module:Class" (the class takes the URL); "" is a plain path
STORES = Registry("store scheme", {
    "": "faas.store.file:FileStore",
    "file": "faas.store.file:FileStore",
    "memory": "faas.store.memory:MemoryStore",
    "s3": "faas.store.s3:S3Store",
    "s3a": "faas.store.s3:S3Store",
})
#: queue URL scheme -> "module:Class" (classmethods ``open(url)`` and ``create(url, ...)``)
QUEUES = Registry("queue scheme", {
    "local": "faas.store.local_queue:LocalQueue",
    "sqs": "faas.store.sqs:SQSQueue",
    "spool": "faas.endpoint.multiuser.spool:SpoolQueue",   # a multi-user endpoint's (send-only)
})


def register_store(scheme: str, target: str | type, *, clobber: bool = False,
                   hint: str | None = None) -> None:
    """Open ``scheme://`` store URLs with ``target`` (a Store subclass or "module:Class")."""
    STORES.register(scheme, target, clobber=clobber, hint=hint)


def register_queue(scheme: str, target: str | type, *, clobber: bool = False,
                   hint: str | None = None) -> None:
    """Open ``scheme://`` queue URLs with ``target`` (a Queue subclass or "module:Class" with
    classmethods ``open(url)`` and ``create(url, *, max_receives, visibility_timeout, dead_letter)``)."""
    QUEUES.register(scheme, target, clobber=clobber, hint=hint)


def open_store(url: str) -> Store:
    scheme = urlsplit(url).scheme
    if scheme in STORES:
        return STORES.get(scheme)(url)
    from .fsspec_store import FsspecStore
    return FsspecStore(url)


def _queue_class(url: str):
    parts = urlsplit(url)
    scheme = parts.scheme
    if (scheme == "https" and "sqs" in parts.netloc) or scheme == "http":   # SQS endpoint URLs
        scheme = "sqs"
    if scheme not in QUEUES:
        raise ConfigError(f"queue URL {url!r}: unknown scheme {scheme!r}; expected local:///DIR/NAME "
                          f"or sqs://NAME (known schemes: {', '.join(QUEUES.names())})")
    return QUEUES.get(scheme)


def open_queue(url: str) -> Queue:
    """Open an existing queue; raise :class:`faas.exceptions.QueueDoesNotExist` if it is not there."""
    return _queue_class(url).open(url)


def create_queue(url: str, *, max_receives: int = 5, visibility_timeout: float = 60.0,
                 dead_letter: bool = True) -> Queue:
    """Create the queue and (unless ``dead_letter=False``) its dead-letter queue if missing
    (idempotent) and open it."""
    return _queue_class(url).create(url, max_receives=max_receives,
                                    visibility_timeout=visibility_timeout, dead_letter=dead_letter)
