"""URL scheme -> backend. Backends are imported lazily so a local run never imports boto3."""
from __future__ import annotations

from urllib.parse import urlsplit

from ..exceptions import ConfigError
from .base import Store
from .queue_base import Queue


def open_store(url: str) -> Store:
    scheme = urlsplit(url).scheme
    if scheme in ("file", ""):
        from .file import FileStore
        return FileStore(url)
    if scheme == "memory":
        from .memory import MemoryStore
        return MemoryStore(url)
    if scheme in ("s3", "s3a"):
        from .s3 import S3Store
        return S3Store(url)
    from .fsspec_store import FsspecStore
    return FsspecStore(url)


def _queue_class(url: str):
    scheme = urlsplit(url).scheme
    if scheme == "local":
        from .local_queue import LocalQueue
        return LocalQueue
    if scheme == "sqs" or (scheme == "https" and "sqs" in urlsplit(url).netloc) or scheme == "http":
        from .sqs import SQSQueue
        return SQSQueue
    raise ConfigError(
        f"queue URL {url!r}: unknown scheme {scheme!r}; expected local:///DIR/NAME or sqs://NAME")


def open_queue(url: str) -> Queue:
    """Open an existing queue; raise :class:`faas.exceptions.QueueDoesNotExist` if it is not there."""
    return _queue_class(url).open(url)


def create_queue(url: str, *, max_receives: int = 5, visibility_timeout: float = 60.0,
                 dead_letter: bool = True) -> Queue:
    """Create the queue and (unless ``dead_letter=False``) its dead-letter queue if missing
    (idempotent) and open it."""
    return _queue_class(url).create(url, max_receives=max_receives,
                                    visibility_timeout=visibility_timeout, dead_letter=dead_letter)
