"""Who may do what: two bearer tokens, one per role. Every request needs one of them.

* ``manage`` token: everything (cancel tasks and runs, start flows, approve, pause timers).
* ``read`` token: every page and GET of the API, no action.

There is no open mode, not even on loopback: a loopback address is every local account's, so on
a shared login node a console without a token would be every user's. ``faas console`` given no
token (``--token-file`` or ``FAAS_CONSOLE_TOKEN``; never on its command line) makes a manage
token and keeps it in ``$FAAS_HOME/console.token`` (mode 600, see :mod:`faas.console.token_file`);
:func:`faas.console.create_app` refuses to build a console without :class:`Tokens`.

A token travels as ``Authorization: Bearer T`` (scripts), or as a cookie that ``/login`` (or a
first visit with ``?token=T``, the URL ``faas console`` prints) sets. Forms post back to the
console itself: an action that comes with the cookie must carry the console's own ``Origin``
(``null``, none, or another port of the same host is refused, and so is any ``Sec-Fetch-Site``
but ``same-origin``), so a cookie cannot be ridden by another page, not even one on another
port of 127.0.0.1 that redirects its own form post here. With the header, a cross-site post
(``Sec-Fetch-Site: cross-site`` or a foreign ``Origin``) is refused too.
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
    """Token values (``--token-file`` lines, ``FAAS_CONSOLE_TOKEN``): ``T`` or ``manage:T`` for the
    manage role, ``read:T`` for read-only (``read_token``: ``FAAS_CONSOLE_READ_TOKEN``). None when
    no token is given at all."""
    manage = read = None
    for v in values:
        role, sep, tok = v.partition(":")
        if sep and role in ("manage", "read"):
            if not tok:
                raise ValueError(f"the token after {role}: is empty")
            if role == "manage":
                manage = tok
            else:
                read = tok
        else:
            if not v.strip():
                raise ValueError("a token is empty")
            manage = v
    if read_token is not None:
        if not read_token.strip():
            raise ValueError("the read-only token (FAAS_CONSOLE_READ_TOKEN) is empty")
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
        if request.url.path.startswith("/api/") or request.url.path == "/openapi.json":
            raise HTTPException(401, "a console token is required: send 'Authorization: Bearer TOKEN'",
                                headers={"WWW-Authenticate": "Bearer"})
        raise NeedLogin()
    return r


def require_read(request: Request) -> str:
    return role(request)


def _bearer(request: Request) -> bool:
    return request.headers.get("authorization", "").lower().startswith("bearer ")


def require_manage(request: Request) -> str:
    r = role(request)
    if r != "manage":
        raise HTTPException(403, "this action needs the console's manage token; the token you "
                                 "gave is read-only")
    site = request.headers.get("sec-fetch-site")
    origin = request.headers.get("origin")
    host = request.headers.get("host")
    if not _bearer(request):
        # The cookie: a browser sends it with whatever a page makes it post, and a page on another
        # port of this host is the same site (a cookie for 127.0.0.1 is every port's). Only the
        # console's own pages may post: an Origin of the console itself. "null" (a sandboxed
        # frame, or a post that another port's server redirected here) is foreign; so is none at
        # all, unless the browser says the post is same-origin.
        if site not in (None, "same-origin"):
            raise HTTPException(403, f"a {site} request refused: the console's actions are posted "
                                     f"from its own pages (or sent with 'Authorization: Bearer TOKEN')")
        if origin is None and site != "same-origin" or origin is not None and (
                origin == "null" or urlsplit(origin).netloc != host):
            raise HTTPException(403, f"a request from origin {origin or '(none given)'} refused: the "
                                     f"console's actions are posted from its own pages (or sent with "
                                     f"'Authorization: Bearer TOKEN')")
        return r
    if site == "cross-site":
        raise HTTPException(403, "cross-site request refused")
    if origin and origin != "null" and urlsplit(origin).netloc != host:
        raise HTTPException(403, f"request from origin {origin} refused")
    return r
