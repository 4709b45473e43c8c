"""Results, arguments, functions, notices and cancel markers only their client can read or make.

The store is shared ground: other users of a site, other sites and anyone with read or write
access to the bucket can read and put objects in it, so a client must never unpickle a result it
merely found at the right key, and nothing a client keeps there may be readable by anyone else.
Each task message carries a per-task secret ``rk`` (covered by the message's signature, and as
private as the message: the queue or the spool file, mode 600). The endpoint that runs the task
seals what it stores for it with that secret: a result frame is encrypted and authenticated
(AES-GCM, :func:`encrypt`); a notice (started or done) and a cancel marker get a MAC over their
few fields. The client derives the same secret again from its own result key
(``$FAAS_HOME/result.key``, or ``FAAS_RESULT_KEY``) and the task id, so another process of the
same user (``faas result``, the flows runner, the console) opens a result as well as the one that
sent the task. A result that does not open under its task's secret is never loaded.

The same key names the client's cancel epoch (``cid``), so no one else can hold it down.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from . import private_files, random_ids
from .exceptions import ConfigError

RESULT_KEY_FILE = "result.key"
_TASK = b"faas-task-secret:v1:"
_CLIENT = b"faas-client-id:v1"
_FUNCTION = b"faas-function-secret:v1:"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# -- the client's side: one secret per user (per FAAS_HOME), one derived per task ---------------

def load_user_key(home: Path, explicit: str | None = None) -> bytes:
    """The client's result key: ``explicit`` (FAAS_RESULT_KEY), else ``home/result.key``, made on
    first use (mode 600) and refused if anyone else could read or replace it."""
    if explicit:
        raw = _decode_key(explicit.strip(), "FAAS_RESULT_KEY (result_key)")
        return raw
    path = Path(home) / RESULT_KEY_FILE
    private_files.create(path, "# faas result key: proves results come from the endpoint that ran "
                               "your task; keep private (mode 600)\n" + _b64(secrets.token_bytes(32)) + "\n")
    text = private_files.read(path, "result key")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if not lines:
        raise ConfigError(f"{path}: the result key file holds no key; delete it and a new one is made")
    return _decode_key(lines[-1], str(path))


def _decode_key(text: str, where: str) -> bytes:
    try:
        raw = _unb64(text)
    except ValueError:
        raise ConfigError(f"{where}: the result key is not URL-safe base64") from None
    if len(raw) < 16:
        raise ConfigError(f"{where}: the result key is too short (need >= 16 bytes)")
    return raw


def task_secret(user_key: bytes, task_id: str) -> str:
    """The per-task secret that travels (signed) in the task message as ``rk``."""
    return _b64(hmac.new(user_key, _TASK + task_id.encode(), hashlib.sha256).digest())


def function_secret(user_key: bytes, function_id: str) -> str:
    """The secret a function's stored bytes are sealed with (``fk`` in each task message that
    runs it): one per function, not per task, since one stored copy serves all its tasks."""
    return _b64(hmac.new(user_key, _FUNCTION + function_id.encode(), hashlib.sha256).digest())


def client_id(user_key: bytes) -> str:
    """A stable, unguessable name for this user's cancel epoch (``cid`` in each message)."""
    return hmac.new(user_key, _CLIENT, hashlib.sha256).hexdigest()[:32]


# -- MACs -------------------------------------------------------------------------------------

def _mac(rk: str, *parts: str | bytes) -> str:
    m = hmac.new(_unb64(rk), digestmod=hashlib.sha256)
    for p in parts:
        b = p.encode() if isinstance(p, str) else p
        m.update(len(b).to_bytes(4, "big") + b)   # length-prefixed: no two part lists collide
    return m.hexdigest()


# -- sealing: what the store keeps for a client, readable and writable only with its secret --------

#: what a sealed frame's header names in its ``seal`` field: the AEAD and how its key is derived
SEAL = "aesgcm-v1"
_SEAL_KEY = b"faas-seal-key:v1:"
_NONCE = 12   # random per object: a task's or function's secret seals a handful of objects, never 2**32
_TAG = 16


def _aead(secret: str, purpose: str) -> AESGCM:
    """One key per secret and purpose (result, args, function): an object sealed for one
    purpose never opens as another."""
    return AESGCM(hmac.new(_unb64(secret), _SEAL_KEY + purpose.encode(), hashlib.sha256).digest())


def encrypt(plain: bytes, secret: str, purpose: str, associated: bytes) -> bytes:
    """``nonce + ciphertext`` of ``plain``, authenticated together with ``associated`` (the
    object's header, which names the task or function: it is read, never altered)."""
    nonce = random_ids.random_bytes(_NONCE)   # no GIL release per result (faas.random_ids)
    return nonce + _aead(secret, purpose).encrypt(nonce, plain, associated)


def decrypt(sealed: bytes, secret: str, purpose: str, associated: bytes) -> bytes | None:
    """The plaintext of what :func:`encrypt` made with the same secret, purpose and associated
    data; None for anything else (planted, altered, copied from another task): nothing of it
    is used."""
    if len(sealed) < _NONCE + _TAG:
        return None
    try:
        return _aead(secret, purpose).decrypt(sealed[:_NONCE], sealed[_NONCE:], associated)
    except InvalidTag:
        return None


def notice_mac(rk: str, task_id: str, event: str, status: str | None, size: int | None = None,
               where: dict | None = None) -> str:
    """``size``: the length of the result frame stored for the task (None: none stored, or the
    frame rides in the notice). Under the MAC, it bounds the client's read of the store: an object
    someone planted there, however large, costs the client ``size + 1`` bytes. ``where``: a
    started notice's place (endpoint, host, pid), so what the client shows is the endpoint's word."""
    sized = () if size is None else (str(int(size)),)   # without one: the MAC of notices before sizes
    # a JSON object's text never reads as a size, so the two optional parts cannot collide
    placed = () if where is None else (json.dumps(where, sort_keys=True, separators=(",", ":")),)
    return _mac(rk, "notice", task_id, event, status or "", *sized, *placed)


def check_notice(mac: str | None, rk: str, task_id: str, event: str, status: str | None,
                 size: int | None = None, where: dict | None = None) -> bool:
    return isinstance(mac, str) and hmac.compare_digest(mac, notice_mac(rk, task_id, event, status, size, where))


#: the most a reader takes of ``cancels/<cid>/<task id>``: a marker is a time and a MAC (~85
#: bytes); anything longer is not one, and is never read whole
CANCEL_MARKER_MAX = 256


def cancel_marker(rk: str, task_id: str, when: float) -> bytes:
    """The content of ``cancels/<task id>``: only the task's own client can write one that counts."""
    return f"{when!r} {_mac(rk, 'cancel', task_id)}".encode()


def check_cancel(data: bytes, rk: str | None, task_id: str) -> bool:
    """True if ``data`` is a cancel marker written by the task's client."""
    if rk is None:
        return False
    try:
        _, mac = data.decode("ascii").split(" ", 1)
    except (UnicodeDecodeError, ValueError):
        return False
    return hmac.compare_digest(mac.strip(), _mac(rk, "cancel", task_id))


# -- task groups: which tasks a group holds, for a process that did not send them (reload_tasks) --
# One record per send round (not per task: a store write per task would cost more than the submit
# itself), at ``task_group_key(tg, cid, first task id)``, written once its tasks are sent (so it
# never names a task that was not). It lists the round's task ids under a MAC of the client's own
# key: an id planted in a shared bucket is not taken for one of ours.
_GROUP = b"faas-task-group:v1:"


def _group_mac(user_key: bytes, tg: str, ids: list[str]) -> str:
    return hmac.new(user_key, _GROUP + tg.encode() + b"\n" + "\n".join(ids).encode(), hashlib.sha256).hexdigest()


def group_record(user_key: bytes, tg: str, ids: list[str]) -> bytes:
    return json.dumps({"v": 1, "tg": tg, "tasks": ids, "at": time.time(),
                       "mac": _group_mac(user_key, tg, ids)}, separators=(",", ":")).encode()


def read_group_record(user_key: bytes, data: bytes) -> tuple[str, float, list[str]] | None:
    """``(task group id, time written, task ids)`` of a record this client's key wrote, else None."""
    try:
        rec = json.loads(data)
        tg, ids, at = rec["tg"], rec["tasks"], float(rec.get("at", 0))
        ok = isinstance(tg, str) and isinstance(ids, list) and all(isinstance(i, str) for i in ids)
        if ok and hmac.compare_digest(str(rec.get("mac")), _group_mac(user_key, tg, ids)):
            return tg, at, ids
    except (ValueError, KeyError, TypeError):
        pass
    return None
