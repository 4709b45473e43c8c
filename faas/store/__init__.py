"""Stores and queues, each opened from a URL (a registry by scheme, like fsspec's).

Stores: ``file:///abs/path``, ``memory://name``, ``s3://bucket/prefix``, or any other fsspec URL.
Queues: ``local:///abs/dir/NAME`` (embedded, SQLite), ``sqs://NAME`` (or an SQS https URL) and
``spool:///abs/dir`` (a multi-user endpoint's, send-only). Sites add schemes with
:func:`register_store` and :func:`register_queue`.
"""
from __future__ import annotations

from .base import KeyNotFound, Store
from .queue_base import Message, Queue
from .registry import beside, create_queue, message_limit, open_queue, open_store, register_queue, register_store

__all__ = ["KeyNotFound", "Store", "Message", "Queue", "open_store", "open_queue", "create_queue",
           "register_store", "register_queue", "beside", "message_limit"]
