"""Who may do what: two bearer tokens, one per role. Every request needs one of them.

* ``manage`` token: everything (cancel tasks and runs, start flows, approve, pause timers).
* ``read`` token: every page and GET of the API, no action.

There is no open mode, not even on loopback: a loopback address is every local account's, so on
a shared login node a console without a token would be every user's. ``faas console`` with no
``--token`` makes a manage token and keeps it in ``$FAAS_HOME/console.token`` (mode 600, see
:mod:`faas.console.token_file`); :func:`faas.console.create_app` refuses to build a console
without :class:`Tokens`.

A token travels as ``Authorization: Bearer T`` (scripts), or as a cookie that ``/login`` (or a
first visit with ``?token=T``, the URL ``faas console`` prints) sets. Forms post back to the
console itself: a cross-site post (``Sec-Fetch-Site: cross-site`` or a foreign ``Origin``) is
refused, so a cookie cannot be ridden by another site.
"""
from __future__ import annotations

import hmac
from dataclasses import dataclass
from urllib.parse import urlsplit

from fastapi import HTTPException, Request

COOKIE = "faas_console_token"


@dataclass(frozen=True)
class Tokens:
    """The console's tokens: at least one, and two different ones when both are given."""

    manage: str | None = None
    read: str | None = None

    def __post_init__(self) -> None:
        for name in ("manage", "read"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, str) or not v.strip()):
                raise ValueError(f"the console's {name} token is empty")
        if not (self.manage or self.read):
            raise ValueError("a console needs a token: Tokens(manage=...) and/or Tokens(read=...); "
                             "`faas console` makes one in $FAAS_HOME/console.token when given none")
        if self.manage and self.manage == self.read:
            raise ValueError("the manage and read-only tokens are the same")

    def __repr__(self) -> str:          # never print a secret in a log or a traceback
        return (f"Tokens(manage={'***' if self.manage else None}, "
                f"read={'***' if self.read else None})")

    def role_of(self, token: str | None) -> str | None:
        if not token:
            return None
        if self.manage and hmac.compare_digest(token.encode(), self.manage.encode()):
            return "manage"
        if self.read and hmac.compare_digest(token.encode(), self.read.encode()):
            return "read"
        return None


def parse_token_option(values: tuple[str, ...] | list[str], read_token: str | None = None) -> Tokens | None:
    """``--token`` values: ``T`` or ``manage:T`` for the manage role, ``read:T`` for read-only
    (``read_token``: ``--read-token``). None when no token is given at all."""
    manage = read = None
    for v in values:
        role, sep, tok = v.partition(":")
        if sep and role in ("manage", "read"):
            if not tok:
                raise ValueError(f"--token {v!r}: the token after {role}: is empty")
            if role == "manage":
                manage = tok
            else:
                read = tok
        else:
            if not v.strip():
                raise ValueError("--token: the token is empty")
            manage = v
    if read_token is not None:
        if not read_token.strip():
            raise ValueError("--read-token: the token is empty")
        read = read_token
    if manage is None and read is None:
        return None
    return Tokens(manage=manage, read=read)


def safe_next(nxt: str | None, default: str = "/endpoints") -> str:
    """``nxt`` when it is a path inside the console, else ``default`` (no open redirect)."""
    nxt = str(nxt or "")
    if not nxt.startswith("/") or nxt.startswith("//") or "\\" in nxt:
        return default
    return nxt


def request_token(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.cookies.get(COOKIE)


class NeedLogin(Exception):
    """Raised for a page request without a valid token: the app redirects to /login."""


def role(request: Request) -> str:
    tokens: Tokens = request.app.state.tokens
    r = tokens.role_of(request_token(request))
    if r is None:
        if request.url.path.startswith("/api/"):
            raise HTTPException(401, "a console token is required: send 'Authorization: Bearer TOKEN'",
                                headers={"WWW-Authenticate": "Bearer"})
        raise NeedLogin()
    return r


def require_read(request: Request) -> str:
    return role(request)


def require_manage(request: Request) -> str:
    r = role(request)
    if r != "manage":
        raise HTTPException(403, "this action needs the console's manage token; the token you "
                                 "gave is read-only")
    if request.headers.get("sec-fetch-site") == "cross-site":
        raise HTTPException(403, "cross-site request refused")
    origin = request.headers.get("origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host"):
        raise HTTPException(403, f"request from origin {origin} refused")
    return r
