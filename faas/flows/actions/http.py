"""Any service that speaks the Globus Action Provider API over HTTP(S), so a site adds actions
with no code in faas: ``POST {url}/run`` with ``{"request_id", "body"}``, ``GET
{url}/{action_id}/status``, ``POST {url}/{action_id}/cancel`` and ``.../release``.

A bearer token comes from the site's flows config, ``http: {url_prefix: {"token": ...}}``: it
is sent only to a URL with the prefix's scheme, host (any case) and port (80 and 443 when none
is written), under the prefix's path at a ``/`` boundary (``/a`` covers ``/a`` and ``/a/...``,
not ``/ab``); the longest such path wins. Matching the text of the URL would hand the token for
``https://actions.example.org`` to ``https://actions.example.org.attacker.net`` and the one for
port 1876 to a server on port 18765. A runner serving other users' runs calls only the
providers its site lists there (:func:`check_allowed`). Network errors and 5xx replies are retried a few times;
the provider dedupes ``run`` by request id, so a retried ``run`` starts nothing twice.
"""
from __future__ import annotations

from typing import NamedTuple
from urllib.parse import unquote, urlsplit

import httpx
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from .base import ActionConflict, ActionContext, ActionError, ActionNotFound, ActionUnableToRun, for_runner_account

TIMEOUT = httpx.Timeout(30.0, connect=5.0)
ATTEMPTS = 3
_DEFAULT_PORTS = {"http": 80, "https": 443}


class _Transient(Exception):
    pass


class _Origin(NamedTuple):
    scheme: str
    host: str
    port: int
    path: str   # no trailing slash; "" for the root


def _origin(url: str) -> _Origin | None:
    """What a token is bound to, from ``url``; None for anything that is not a plain http(s)
    URL, or whose path climbs with ``.``/``..`` (``/a/../b`` is not under ``/a``)."""
    try:
        p = urlsplit(str(url).strip())
        port = p.port
    except ValueError:   # a port that is not a number, a bad IPv6 literal
        return None
    scheme = p.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not p.hostname:
        return None
    segments = unquote(p.path).split("/")
    if "." in segments or ".." in segments:
        return None
    return _Origin(scheme, p.hostname.lower().rstrip("."), port or _DEFAULT_PORTS[scheme],
                   p.path.rstrip("/"))


def url_matches(configured: str, url: str) -> bool:
    """Whether a token configured for ``configured`` may go with a request to ``url``: same
    scheme, host and effective port, and ``url``'s path under the configured one."""
    want, got = _origin(configured), _origin(url)
    if want is None or got is None or want[:3] != got[:3]:
        return False
    return got.path == want.path or got.path.startswith(want.path + "/")


def token_for(url: str, tokens: dict) -> str | None:
    """The bearer token for a request to ``url`` from the config's ``http`` section (``{prefix:
    {"token": ...}}`` or ``{prefix: token}``): the matching prefix with the longest path."""
    paths = {p: o.path for p in tokens if url_matches(p, url) and (o := _origin(p)) is not None}
    best = max(paths, key=lambda p: len(paths[p]), default=None)
    if best is None:
        return None
    entry = tokens[best]
    token = entry.get("token") if isinstance(entry, dict) else entry
    return token or None


#: Globus's hosts of its own action providers: a URL there that no alias covers needs Globus's cloud
GLOBUS_ACTION_HOSTS = ("actions.globus.org", "actions.automate.globus.org",
                       "transfer.actions.globus.org")
#: path prefixes on those hosts -> the hosted service they need (Globus's hosted provider docs)
GLOBUS_HOSTED = {
    "/search/": "Globus Search (ingest and delete act on an index in Globus's hosted Search service)",
    "/weboption/": "Wait For User Selection (the choice is made on a web page Globus hosts; "
                   "faas://approval waits for `faas flows approve|reject` instead)",
    "/datacite/": "DataCite Mint (Globus's service holds the DataCite account that mints the DOI)",
    "/expression_eval": "Expression Evaluation (Globus's docs prefer `.=` parameters and "
                        "ExpressionEval states, which faas evaluates itself)",
}


def refuse_globus_hosted(url: str, ctx: ActionContext) -> None:
    """ActionUnableToRun for a URL on Globus's own action hosts that the site does not list under
    ``http:``: those providers run in Globus's cloud and take Globus Auth tokens, so without a
    token the site configured for them a call could only fail (a DNS or 401 error after retries);
    say which hosted service the state needs instead. A listed one is called like any other."""
    parts = urlsplit(url)
    if parts.scheme != "https" or parts.netloc not in GLOBUS_ACTION_HOSTS:
        return
    if any(url_matches(prefix, url) for prefix in (ctx.config.get("http") or {})):
        return
    what = next((why for prefix, why in GLOBUS_HOSTED.items()
                 if (parts.path + "/").startswith(prefix)), "an action provider of Globus's")
    raise ActionUnableToRun(
        f"ActionUrl {url!r}: {what} is hosted in Globus's cloud and called with Globus Auth "
        f"tokens; faas has no counterpart of it. Serve this URL with a site provider "
        f"(faas.flows.actions.register, loaded by `faas flows serve --import`), list it under http: "
        f"in the site's flows config with a token Globus issued for it, or change the state")


def check_allowed(url: str, ctx: ActionContext) -> None:
    """A run of another user than the runner's account calls only the Action Providers the
    site lists (a prefix in ``http:``, with or without a token) unless the site sets
    ``http_allow_any_url: true``: the runner's network (loopback services, a cloud's metadata
    address, hosts behind the site's firewall) is not the flow author's to reach, and an error
    reply's text goes into the run."""
    if for_runner_account(ctx):
        return
    allow_any = ctx.config.get("http_allow_any_url", False)
    if not isinstance(allow_any, bool):
        raise ActionUnableToRun(f"http_allow_any_url in the site's flows config: expected true or false, "
                                f"got {allow_any!r}")
    if allow_any or any(url_matches(prefix, url) for prefix in (ctx.config.get("http") or {})):
        return
    listed = ", ".join(sorted(ctx.config.get("http") or {})) or "none"
    raise ActionUnableToRun(f"ActionUrl {url}: this runner acts for other users than its own account, and "
                            f"calls only the Action Providers its site lists under http: ({listed}); the site "
                            f"may list this one (a prefix, with or without a token) or set "
                            f"http_allow_any_url: true")


class HttpProvider:
    def __init__(self, url: str):
        self.url = url.rstrip("/")

    @staticmethod
    def _headers(ctx: ActionContext, url: str) -> dict:
        """Headers for a request to ``url`` (the one really sent, so the token follows it)."""
        h = {"Accept": "application/json"}
        token = token_for(url, ctx.config.get("http") or {})
        if token:
            h["Authorization"] = f"Bearer {token}"
        return h

    def _call(self, method: str, path: str, ctx: ActionContext, json: dict | None = None) -> httpx.Response:
        url = f"{self.url}/{path}"
        refuse_globus_hosted(url, ctx)
        check_allowed(url, ctx)

        def once() -> httpx.Response:
            try:
                r = httpx.request(method, url, json=json, headers=self._headers(ctx, url),
                                  timeout=TIMEOUT)
            except httpx.TransportError as e:
                raise _Transient(f"{method} {url}: {type(e).__name__}: {e}") from e
            if r.status_code >= 500 or r.status_code == 429:
                raise _Transient(f"{method} {url}: HTTP {r.status_code}: {r.text[:300]}")
            return r
        try:
            return Retrying(stop=stop_after_attempt(ATTEMPTS), wait=wait_exponential(0.2, max=2),
                            retry=retry_if_exception(lambda e: isinstance(e, _Transient)),
                            reraise=True)(once)
        except _Transient as e:
            raise ActionError(f"action provider unreachable or failing after {ATTEMPTS} tries: {e}") from None

    @staticmethod
    def _doc(r: httpx.Response, what: str) -> dict:
        try:
            doc = r.json()
        except ValueError:
            raise ActionError(f"{what}: the provider answered HTTP {r.status_code} with no JSON: "
                              f"{r.text[:300]}") from None
        if not isinstance(doc, dict) or "action_id" not in doc or "status" not in doc:
            raise ActionError(f"{what}: the provider's answer is not an action status document "
                              f"(no action_id/status): {str(doc)[:300]}")
        return doc

    @staticmethod
    def _reason(r: httpx.Response) -> str:
        try:
            j = r.json()
            return str(j.get("description") or j.get("detail") or j.get("message") or j)
        except ValueError:
            return r.text[:300]

    def run(self, body: dict, request_id: str, ctx: ActionContext) -> dict:
        try:
            r = self._call("POST", "run", ctx, {"request_id": request_id, "body": body})
        except ActionError as e:
            raise ActionUnableToRun(str(e)) from None
        if r.status_code >= 400:
            raise ActionUnableToRun(f"POST {self.url}/run: HTTP {r.status_code}: {self._reason(r)}")
        try:
            return self._doc(r, f"POST {self.url}/run")
        except ActionError as e:
            raise ActionUnableToRun(str(e)) from None

    def _action(self, method: str, action_id: str, op: str, ctx: ActionContext) -> dict:
        r = self._call(method, f"{action_id}/{op}", ctx)
        what = f"{method} {self.url}/{action_id}/{op}"
        if r.status_code == 404:
            raise ActionNotFound(f"{what}: no such action ({self._reason(r)})")
        if r.status_code == 409:
            raise ActionConflict(f"{what}: {self._reason(r)}")
        if r.status_code >= 400:
            raise ActionError(f"{what}: HTTP {r.status_code}: {self._reason(r)}")
        return self._doc(r, what)

    def status(self, action_id: str, ctx: ActionContext) -> dict:
        return self._action("GET", action_id, "status", ctx)

    def cancel(self, action_id: str, ctx: ActionContext) -> dict:
        return self._action("POST", action_id, "cancel", ctx)

    def release(self, action_id: str, ctx: ActionContext) -> dict:
        return self._action("POST", action_id, "release", ctx)
