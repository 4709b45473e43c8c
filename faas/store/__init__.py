"""Stores and queues, each opened from a URL (a registry by scheme, like fsspec's).

Stores: ``file:///abs/path``, ``memory://name``, ``s3://bucket/prefix``, or any other fsspec URL.
Queues: ``local:///abs/dir/NAME`` (embedded, SQLite) and ``sqs://NAME`` (or an SQS https URL).
"""
from __future__ import annotations

from .base import KeyNotFound, Store
from .queue_base import Message, Queue
from .registry import create_queue, open_queue, open_store

__all__ = ["KeyNotFound", "Store", "Message", "Queue", "open_store", "open_queue", "create_queue"]
