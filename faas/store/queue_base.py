"""The queue interface, with SQS's semantics: at-least-once delivery, visibility timeout,
receive count, a dead-letter queue after ``max_receives``, long polling.

Bodies are ``str`` (SQS carries text); callers encode binary themselves.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass


@dataclass(frozen=True)
class Message:
    id: str
    body: str
    receipt: str            # handle for delete / change_visibility of *this* receive
    receive_count: int      # 1 on first delivery
    sent_at: float          # epoch seconds


class Queue(ABC):
    url: str
    #: largest body this queue accepts, in bytes of UTF-8 (SQS: 262,144)
    max_message_bytes: int
    #: messages one request moves (SQS: 10); callers batch to it to save requests
    max_batch: int = 10
    #: seconds a sender may hold a message back to share a request with others: worth it where
    #: each request is billed (SQS), not on the embedded queue
    linger: float = 0.0

    @abstractmethod
    def send(self, bodies: list[str]) -> list[str]:
        """Send messages (batched as the backend allows); return their ids in order."""

    @abstractmethod
    def receive(self, max_messages: int = 10, wait: float = 0.0,
                visibility_timeout: float | None = None) -> list[Message]:
        """Up to ``max_messages`` visible messages, blocking up to ``wait`` seconds for the first.

        Received messages stay invisible for ``visibility_timeout`` (the queue's default if None).
        A message received more than ``max_receives`` times goes to the dead-letter queue instead.
        """

    @abstractmethod
    def delete(self, receipts: list[str]) -> None: ...

    @abstractmethod
    def change_visibility(self, receipts: list[str], timeout: float) -> None:
        """Extend (heartbeat) or end (``timeout=0``: hand back) the invisibility of received messages."""

    @abstractmethod
    def depth(self) -> dict[str, int]:
        """``{"visible": n, "in_flight": m}`` (approximate on SQS)."""

    @abstractmethod
    def dead_letters(self) -> Queue:
        """The dead-letter queue beside this one."""

    @abstractmethod
    def destroy(self) -> None:
        """Delete the queue (and its dead-letter queue)."""

    def close(self) -> None:  # noqa: B027 - optional hook: queues with resources override
        pass

    def wait_on_locks_at_most(self, seconds: float) -> None:  # noqa: B027 - optional hook
        """Bound how long one call waits on a lock another writer holds (then it fails with
        QueueError): for a queue other accounts may write too. Only the embedded queue has locks."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"
