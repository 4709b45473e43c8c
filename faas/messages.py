"""What travels on the queues, and where things live in the store.

Task messages go client -> endpoint queue; notices go worker pool -> the client's reply queue.
Both are JSON text (SQS carries text); binary payloads are base64 inside.
"""
from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict


class TaskMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    v: Literal[1] = 1
    id: str                          # task id
    fn: str                          # function id (sha256 of its frame)
    n: int = 1                       # calls in this task (map chunks > 1)
    args: Optional[str] = None       # base64 of the framed calls, when small enough
    args_key: Optional[str] = None   # else their store key
    reply: Optional[str] = None      # queue URL for notices
    timeout: Optional[float] = None  # seconds per task, enforced by the worker pool
    sent: float = 0.0
    expires: Optional[float] = None  # epoch seconds after which no worker runs it (replays)
    args_sha256: Optional[str] = None  # digest of spilled arguments (covered by the signature)
    sig: Optional[str] = None        # "KEYID:HMAC-SHA256" over every other field (faas.signing)
    uec: Optional[dict] = None       # user_endpoint_config: variables for a multi-user endpoint's template


class Notice(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    event: Literal["started", "done"]
    status: Optional[str] = None     # done: success | failed | cancelled
    result: Optional[str] = None     # base64 result frame when small enough, else read the store
    where: Optional[dict] = None     # started: endpoint, host, block, pid


# -- store layout: one prefix per kind, so lifecycle rules can expire each ------------------

def function_key(function_id: str) -> str:
    return f"functions/{function_id}"


def args_key(task_id: str) -> str:
    return f"args/{task_id}"


def result_key(task_id: str) -> str:
    return f"results/{task_id}"


def cancel_key(task_id: str) -> str:
    return f"cancels/{task_id}"


# The time of the latest cancel in this store. Pools read it at most once a second and look for a
# task's own cancel marker only when a cancel came after (or shortly before) the task was sent, so
# the common case costs no store request per task.
CANCEL_EPOCH_KEY = "cancels/_epoch"
CANCEL_SKEW = 60.0   # seconds of clock skew between clients and sites (and racing cancel writers)


def cancel_may_apply(epoch: float, sent: float) -> bool:
    """Could a cancel at ``epoch`` (the latest one known) concern a task sent at ``sent``?"""
    return epoch >= sent - CANCEL_SKEW


def running_key(task_id: str) -> str:
    return f"running/{task_id}"


def dead_letter_key(task_id: str) -> str:
    return f"dead-letters/{task_id}"


def endpoint_key(name: str) -> str:
    return f"endpoints/{name}.json"


def inline_limit(max_message_bytes: int) -> int:
    """Largest raw payload that fits a message once base64'd beside the other fields."""
    return (max_message_bytes - 2048) * 3 // 4
