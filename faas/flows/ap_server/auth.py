"""Who may do what on the Action Provider server: bearer tokens with roles, as the console's
(:mod:`faas.console.auth`: ``T`` or ``manage:T``, ``read:T``, from ``--token-file`` or
``FAAS_ACTIONS_TOKEN``, never the command line; the manage token in
``$FAAS_HOME/console.token`` when none is given), plus a ``run`` role for callers such as another
site's runner.

* ``manage``: run actions, and status / cancel / release of every action (the site's admin).
* ``run``: run actions, and status / cancel / release of the actions it started.
* ``read``: introspection, and the status of every action; nothing that changes anything.

Each token is its own caller: an action is its creator's, named ``creator_id`` =
``<role>:<first 12 hex digits of the token's SHA-256>`` (never the token). Another caller's
action answers 404, as Globus's action-provider-tools do, so ids cannot be probed.
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from fastapi import Request

ROLES = ("manage", "run", "read")
MAY_RUN = ("manage", "run")


class APError(Exception):
    """An error answer in the Action Provider API's shape: ``{"code", "description"}``."""

    def __init__(self, status: int, code: str, description: str, headers: dict | None = None):
        super().__init__(description)
        self.status, self.code, self.description, self.headers = status, code, description, headers


@dataclass(frozen=True)
class Caller:
    role: str
    identity: str

    @property
    def admin(self) -> bool:
        return self.role == "manage"


class ActionTokens:
    """The server's tokens: ``(role, token)`` pairs, at least one, no token given twice."""

    def __init__(self, pairs: list[tuple[str, str]]):
        if not pairs:
            raise ValueError("the Action Provider server needs a token: --token-file FILE (mode 600, "
                             "lines [manage:|run:|read:]TOKEN) or FAAS_ACTIONS_TOKEN; "
                             "with none, `faas actions serve` uses the manage token in "
                             "$FAAS_HOME/console.token (loopback only)")
        seen: set[str] = set()
        for role, tok in pairs:
            if role not in ROLES:
                raise ValueError(f"token role {role!r}: expected one of {', '.join(ROLES)}")
            if not isinstance(tok, str) or not tok.strip():
                raise ValueError(f"the {role} token is empty")
            if tok in seen:
                raise ValueError("the same token is given twice (one token has one role)")
            seen.add(tok)
        self._pairs = [(r, t.encode()) for r, t in pairs]

    def __repr__(self) -> str:          # never print a secret in a log or a traceback
        return f"ActionTokens({', '.join(f'{r}=***' for r, _ in self._pairs)})"

    def caller(self, token: str | None) -> Caller | None:
        if not token:
            return None
        got = token.encode()
        for role, want in self._pairs:
            if hmac.compare_digest(got, want):
                return Caller(role, f"{role}:{hashlib.sha256(want).hexdigest()[:12]}")
        return None


def parse_tokens(values: tuple[str, ...] | list[str]) -> ActionTokens | None:
    """Token values (``--token-file`` lines, ``FAAS_ACTIONS_TOKEN``), the console's spelling plus
    ``run:``: ``T`` or ``manage:T``, ``run:T``, ``read:T``. None when none is given."""
    pairs = []
    for v in values:
        role, sep, tok = v.partition(":")
        if sep and role in ROLES:
            pairs.append((role, tok))
        else:
            pairs.append(("manage", v))
    return ActionTokens(pairs) if pairs else None


def caller(request: Request) -> Caller:
    """The caller of ``request`` (``Authorization: Bearer T``); 401 without a known token."""
    auth = request.headers.get("authorization", "")
    token = auth[7:].strip() if auth.lower().startswith("bearer ") else None
    c = request.app.state.tokens.caller(token)
    if c is None:
        raise APError(401, "UnauthorizedRequest", "a token is required: send 'Authorization: "
                      "Bearer TOKEN' with a token this server was given",
                      headers={"WWW-Authenticate": "Bearer"})
    return c


def require_run(c: Caller) -> None:
    if c.role not in MAY_RUN:
        raise APError(403, "ForbiddenRequest", f"a {c.role} token may not run or change actions; "
                      "use a run or manage token")
