"""URL scheme -> backend. Backends are imported lazily so a local run never imports boto3.

Sites add their own with :func:`register_store` and :func:`register_queue` (see
docs/site-admin.md, "Plugins"); a store scheme nobody registered goes to fsspec.
"""
from __future__ import annotations

from urllib.parse import unquote, urlsplit

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


def message_limit(url: str) -> int:
    """The largest message body a queue of ``url``'s kind takes, known without opening it (0:
    unknown): what an endpoint may put in a reply it has not opened yet."""
    try:
        limit = getattr(_queue_class(url), "max_message_bytes", None)
    except Exception:  # noqa: BLE001 - any scheme or plugin's own failure: unknown
        return 0
    return limit if isinstance(limit, int) else 0


def beside(queue_url: str, other_url: str) -> bool:
    """Whether ``other_url`` names a queue where ``queue_url``'s is: the same folder of a local
    queue, the same SQS endpoint and account (``sqs://NAME`` beside ``sqs://NAME``: both resolved
    by the site's own settings). A client's reply queue is made beside its endpoint's queue."""
    a, b = urlsplit(queue_url), urlsplit(other_url)
    if a.scheme != b.scheme or b.query or b.fragment:
        return False
    if a.scheme == "sqs":
        return not a.path.strip("/") and not b.path.strip("/") and "@" not in b.netloc
    head_a, _, _ = unquote(a.path).rpartition("/")
    head_b, _, tail_b = unquote(b.path).rpartition("/")
    return a.netloc == b.netloc and head_a == head_b and bool(tail_b)


def open_queue(url: str) -> Queue:
    """Open an existing queue; raise :class:`faas.exceptions.QueueDoesNotExist` if it is not there."""
    return _queue_class(url).open(url)


def create_queue(url: str, *, max_receives: int = 5, visibility_timeout: float = 60.0,
                 dead_letter: bool = True) -> Queue:
    """Create the queue and (unless ``dead_letter=False``) its dead-letter queue if missing
    (idempotent) and open it."""
    return _queue_class(url).create(url, max_receives=max_receives,
                                    visibility_timeout=visibility_timeout, dead_letter=dead_letter)
