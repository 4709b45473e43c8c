"""What travels on the queues, and where things live in the store.

Task messages go client -> endpoint queue; notices go worker pool -> the client's reply queue.
Both are JSON text (SQS carries text); binary payloads are base64 inside.
"""
from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

# What may stand where a store key or a file name is built from a message field. A sender writes
# these fields, so nothing else (a folder, a "..", a newline) may reach a path.
_TASK_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_FUNCTION_ID = re.compile(r"[0-9a-f]{64}")
_CLIENT_ID = re.compile(r"[0-9a-f]{32}")
_SECRET = re.compile(r"[A-Za-z0-9_-]{22,88}")


def check_task_id(task_id: str) -> str:
    """``task_id`` if it is a lower-case UUID (what clients make), else :class:`ValueError`."""
    if not isinstance(task_id, str) or not _TASK_ID.fullmatch(task_id):
        raise ValueError(f"task id {str(task_id)[:80]!r} is not a UUID (like "
                         f"'0c1d2e3f-0000-4000-8000-123456789abc')")
    return task_id


def check_function_id(function_id: str) -> str:
    if not isinstance(function_id, str) or not _FUNCTION_ID.fullmatch(function_id):
        raise ValueError(f"function id {str(function_id)[:80]!r} is not a SHA-256 (64 hex digits)"
                         f"{_globus_function_hint(function_id)}")
    return function_id


def _globus_function_hint(function_id: object) -> str:
    """Why a Globus Compute function UUID (a public one from Globus's docs, a shared one, one
    registered there) cannot name a function here: there is no hosted registry to look it up."""
    if isinstance(function_id, str) and _TASK_ID.fullmatch(function_id.lower()):
        return (": it is a Globus Compute function UUID, which names a function in Globus's hosted "
                "registry (public and shared ones included); faas has no hosted service, so no such "
                "registry. Register the function's code here (register_function): its id is the "
                "SHA-256 of its bytes, private to the user who registered it")
    return ""


def check_client_id(client_id: str) -> str:
    if not isinstance(client_id, str) or not _CLIENT_ID.fullmatch(client_id):
        raise ValueError(f"client id {str(client_id)[:80]!r} is not 32 hex digits")
    return client_id


def _size(v: int | None, name: str) -> int | None:
    if v is not None and v < 0:
        raise ValueError(f"{name} {v} is negative")
    return v


class TaskMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    v: Literal[1] = 1
    id: str                          # task id
    fn: str                          # function id (sha256 of its frame)
    n: int = 1                       # calls in this task (map chunks > 1)
    args: str | None = None       # base64 of the framed calls, when small enough
    args_key: str | None = None   # else their store key
    reply: str | None = None      # queue URL for notices
    timeout: float | None = None  # seconds per task, enforced by the worker pool
    sent: float = 0.0
    expires: float | None = None  # epoch seconds after which no worker runs it (replays)
    args_sha256: str | None = None  # digest of spilled arguments (covered by the signature)
    args_size: int | None = None  # their length in bytes: the worker reads no more (signed too)
    sig: str | None = None        # "KEYID:HMAC-SHA256" over every other field (faas.signing)
    uec: dict | None = None       # user_endpoint_config: variables for a multi-user endpoint's template
    rk: str                          # per-task secret: seals the result and spilled arguments (faas.sealing)
    cid: str                         # the client's id: names its folders in the store (below)
    res: dict | None = None       # resource_specification (Globus): MPI ranks/nodes for this task
    tg: str | None = None         # task group id (a UUID): reload_tasks() finds the group's tasks
    fk: str | None = None         # the function's secret: its stored bytes are sealed with it (faas.sealing)

    _id = field_validator("id")(classmethod(lambda cls, v: check_task_id(v)))
    _fn = field_validator("fn")(classmethod(lambda cls, v: check_function_id(v)))

    _args_size = field_validator("args_size")(classmethod(lambda cls, v: _size(v, "args_size")))
    _cid = field_validator("cid")(classmethod(lambda cls, v: check_client_id(v)))
    _tg = field_validator("tg")(classmethod(lambda cls, v: v if v is None else check_task_id(v)))

    @field_validator("rk", "fk")
    @classmethod
    def _secret(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is None and info.field_name == "fk":
            return v
        if not isinstance(v, str) or not _SECRET.fullmatch(v):
            raise ValueError(f"{info.field_name} is not a URL-safe base64 secret")
        return v


class Notice(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    event: Literal["started", "done"]
    status: str | None = None     # done: success | failed | cancelled
    result: str | None = None     # base64 result frame when small enough, else read the store
    where: dict | None = None     # started: endpoint, host, block, pid
    size: int | None = None       # done, result in the store: its length (the client reads no more)
    mac: str | None = None        # over id, event, status, size and where, with the task's rk (faas.sealing)

    _size = field_validator("size")(classmethod(lambda cls, v: _size(v, "size")))


# -- store layout: one prefix per kind, so lifecycle rules can expire each ------------------

# Every key built from a task or function id checks the id first: a key never gains a folder or
# a ".." from what a sender wrote. What a client sends and its endpoint writes back lives under
# the client's own folder of each prefix (``results/<client id>/<task id>``): on a shared file
# store the first writer of that folder is the client's own account (mode 700), so no other
# user can list it or plant a file in it, even one who learned a task id; on any store the
# names stay apart per client. The client id is as private as the messages that carry it.

def function_key(function_id: str, client_id: str) -> str:
    """A function's bytes are private to whoever sent it, so one user's copy never stands in
    for another's (its id is the SHA-256 of its bytes, checked by the worker)."""
    return f"functions/{check_client_id(client_id)}/{check_function_id(function_id)}"


def args_key(task_id: str, client_id: str) -> str:
    return f"args/{check_client_id(client_id)}/{check_task_id(task_id)}"


def result_key(task_id: str, client_id: str) -> str:
    return f"results/{check_client_id(client_id)}/{check_task_id(task_id)}"


def cancel_key(task_id: str, client_id: str) -> str:
    return f"cancels/{check_client_id(client_id)}/{check_task_id(task_id)}"


# The time of the latest cancel of one client (one user's result key). Pools read it at most once
# a second per client and look for a task's own cancel marker only when a cancel came after (or
# shortly before) the task was sent, so the common case costs no store request per task.
def cancel_epoch_key(client_id: str) -> str:
    return f"cancels/{check_client_id(client_id)}/_epoch"


CANCEL_SKEW = 60.0   # seconds of clock skew between clients and sites (and racing cancel writers)


def cancel_may_apply(epoch: float, sent: float) -> bool:
    """Could a cancel at ``epoch`` (the latest one known) concern a task sent at ``sent``?"""
    return epoch >= sent - CANCEL_SKEW


def running_key(task_id: str, client_id: str) -> str:
    return f"running/{check_client_id(client_id)}/{check_task_id(task_id)}"


def task_group_key(task_group_id: str, client_id: str, task_id: str) -> str:
    """The record of one send round of a task group (named by its first task): the ids it sent,
    under a MAC of the client's key (faas.sealing.group_record), so a new process finds them."""
    return f"groups/{check_client_id(client_id)}/{check_task_id(task_group_id)}/{check_task_id(task_id)}"


def client_prefixes(client_id: str) -> list[str]:
    """The folders a client claims (``Store.claim``) before it sends its first task."""
    check_client_id(client_id)
    return [f"{p}/{client_id}/" for p in ("functions", "args", "results", "cancels", "running", "groups")]


def dead_letter_key(name: str) -> str:
    """``name``: a task id, or ``refused-<queue message id>`` (never a path)."""
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.:-]{1,200}", name) or name.startswith("."):
        raise ValueError(f"dead letter name {str(name)[:80]!r} is not a plain name")
    return f"dead-letters/{name}"


def endpoint_key(name: str) -> str:
    return f"endpoints/{name}.json"


def inline_limit(max_message_bytes: int) -> int:
    """Largest raw payload that fits a message once base64'd beside the other fields."""
    return (max_message_bytes - 2048) * 3 // 4
