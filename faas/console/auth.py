"""Who may do what: two bearer tokens, one per role.

* ``manage`` token: everything (cancel tasks and runs, start flows, approve, pause timers).
* ``read`` token: every page and GET of the API, no action.
* No token configured: everyone manages; allowed only on a loopback address (the CLI checks),
  and then only requests addressed to a loopback host name are served (no DNS rebinding).

A token travels as ``Authorization: Bearer T`` (scripts), or as a cookie that ``/login`` (or a
first visit with ``?token=T``) sets. Forms post back to the console itself: a cross-site post
(``Sec-Fetch-Site: cross-site`` or a foreign ``Origin``) is refused, so a cookie cannot be
ridden by another site.
"""
from __future__ import annotations

import hmac
from dataclasses import dataclass
from urllib.parse import urlsplit

from fastapi import HTTPException, Request

COOKIE = "faas_console_token"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1", "[::1]")


@dataclass(frozen=True)
class Tokens:
    manage: str | None = None
    read: str | None = None

    @property
    def open(self) -> bool:
        return not (self.manage or self.read)

    def role_of(self, token: str | None) -> str | None:
        if self.open:
            return "manage"
        if not token:
            return None
        if self.manage and hmac.compare_digest(token.encode(), self.manage.encode()):
            return "manage"
        if self.read and hmac.compare_digest(token.encode(), self.read.encode()):
            return "read"
        return None


def parse_token_option(values: tuple[str, ...] | list[str]) -> Tokens:
    """``--token`` values: ``T`` or ``manage:T`` for the manage role, ``read:T`` for read-only."""
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
            manage = v
    return Tokens(manage=manage, read=read)


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
