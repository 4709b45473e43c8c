"""Any service that speaks the Globus Action Provider API over HTTP(S), so a site adds actions
with no code in faas: ``POST {url}/run`` with ``{"request_id", "body"}``, ``GET
{url}/{action_id}/status``, ``POST {url}/{action_id}/cancel`` and ``.../release``.

A bearer token comes from the site's flows config, ``http: {url_prefix: {"token": ...}}`` (the
longest prefix of the ActionUrl wins). Network errors and 5xx replies are retried a few times;
the provider dedupes ``run`` by request id, so a retried ``run`` starts nothing twice.
"""
from __future__ import annotations

import httpx
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from .base import ActionConflict, ActionContext, ActionError, ActionNotFound, ActionUnableToRun

TIMEOUT = httpx.Timeout(30.0, connect=5.0)
ATTEMPTS = 3


class _Transient(Exception):
    pass


class HttpProvider:
    def __init__(self, url: str):
        self.url = url.rstrip("/")

    def _headers(self, ctx: ActionContext) -> dict:
        tokens = ctx.config.get("http") or {}
        best = max((p for p in tokens if self.url.startswith(p.rstrip("/"))), key=len, default=None)
        h = {"Accept": "application/json"}
        if best is not None:
            entry = tokens[best]
            token = entry.get("token") if isinstance(entry, dict) else entry
            if token:
                h["Authorization"] = f"Bearer {token}"
        return h

    def _call(self, method: str, path: str, ctx: ActionContext, json: dict | None = None) -> httpx.Response:
        url = f"{self.url}/{path}"

        def once() -> httpx.Response:
            try:
                r = httpx.request(method, url, json=json, headers=self._headers(ctx), timeout=TIMEOUT)
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
