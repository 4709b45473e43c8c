"""HMAC signatures on task messages: a worker runs only what a holder of one of the endpoint's
keys sent, unaltered and unexpired.

A key is ``ID:SECRET`` (SECRET is URL-safe base64 of >= 16 random bytes); the endpoint accepts
several (rotation: add the new key, move clients to it, drop the old), a client signs with one.
The signature covers every field of the message, including the function id (the SHA-256 of the
function's bytes, checked by the worker) and the SHA-256 of arguments spilled to the store, so
neither a forged message nor a payload swapped in the store runs.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from .exceptions import ConfigError
from .safe_open import replace_file


@dataclass(frozen=True)
class Key:
    id: str
    secret: bytes

    def __repr__(self) -> str:   # never print the secret
        return f"Key({self.id!r})"


def new_key(key_id: str | None = None) -> str:
    return f"{key_id or secrets.token_hex(4)}:{base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip('=')}"


def parse_key(text: str, where: str = "signing key") -> Key:
    key_id, sep, secret = text.strip().partition(":")
    if not sep or not key_id or not secret:
        raise ConfigError(f"{where}: expected ID:SECRET (make one with `faas endpoint configure "
                          f"NAME --signing-key new`), got {'an empty value' if not text.strip() else 'no ID:'}")
    try:
        raw = base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4))
    except ValueError:
        raise ConfigError(f"{where}: the secret of key {key_id!r} is not base64") from None
    if len(raw) < 16:
        raise ConfigError(f"{where}: the secret of key {key_id!r} is too short (need >= 16 bytes)")
    return Key(key_id, raw)


def parse_keys(texts: list[str] | str, where: str = "signing keys") -> dict[str, Key]:
    items = [t for t in (texts.replace(",", "\n").splitlines() if isinstance(texts, str) else texts) if t.strip()]
    keys = {}
    for t in items:
        k = parse_key(t, where)
        keys[k.id] = k
    return keys


def read_key_file(path: Path) -> dict[str, Key]:
    """The keys in ``path``, once it is proven private (mode 600, ours, not a link)."""
    from . import private_files
    try:
        text = private_files.read(path, "task signing key")
    except OSError as e:
        raise ConfigError(f"cannot read signing keys from {path}: {e.strerror}") from None
    return parse_keys([line for line in text.splitlines() if not line.startswith("#")], str(path))


def write_key_file(path: Path, key: str) -> None:
    """A new file of mode 600 in place of ``path``: never written through a link, and never an
    old file's content truncated under its old mode (one someone made readable stayed so)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_file(path, "# faas task signing key(s), ID:SECRET, one per line; keep private (mode 600)\n"
                 + key + "\n", mode=0o600)


def _canonical(fields: dict) -> bytes:
    return json.dumps({k: v for k, v in fields.items() if k != "sig" and v is not None},
                      sort_keys=True, separators=(",", ":")).encode()


def sign(fields: dict, key: Key) -> str:
    return f"{key.id}:{hmac.new(key.secret, _canonical(fields), hashlib.sha256).hexdigest()}"


def check_signature(fields: dict, keys: dict[str, Key]) -> str | None:
    """:func:`check` with its expiry aside: whether the message's fields (its task id, its reply
    queue) are its sender's signed word, for telling that sender why it does not run."""
    return check(fields, keys, 0.0)


def check(fields: dict, keys: dict[str, Key], now: float) -> str | None:
    """None if the message is signed by one of ``keys`` and unexpired, else why not."""
    sig = fields.get("sig")
    if not sig:
        return "unsigned"
    key_id, _, mac = str(sig).partition(":")
    key = keys.get(key_id)
    if key is None:
        return f"signed with unknown key {key_id!r}"
    good = hmac.new(key.secret, _canonical(fields), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(good, mac):
        return "bad signature (forged or altered)"
    expires = fields.get("expires")
    if expires is None:
        return "no expiry"
    if now > float(expires):
        return f"expired {now - float(expires):.0f} s ago (replayed?)"
    return None


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
