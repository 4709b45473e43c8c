"""The console application: ``create_app`` wires the store, the tokens, the pages and the API."""
from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.trustedhost import TrustedHostMiddleware

from .. import __version__
from ..exceptions import EndpointNotFound, FaasError
from . import api, pages
from .auth import LOOPBACK_NAMES, NeedLogin, Tokens
from .context import Console
from .flows import FlowsUnavailable, InputErrors

STATIC = Path(__file__).parent / "static"


def _status_of(exc: Exception) -> int:
    name = type(exc).__name__
    if isinstance(exc, (EndpointNotFound, LookupError)) or name.endswith("NotFound"):
        return 404
    if isinstance(exc, PermissionError) or name == "AccessDenied":
        return 403
    if isinstance(exc, InputErrors) or name == "InputInvalid":
        return 422
    if isinstance(exc, FlowsUnavailable):
        return 501
    return 400


def create_app(store_url: str | None = None, *, tokens: Tokens | None = None, home: str | Path | None = None,
               profile: str | None = None, console: Console | None = None) -> FastAPI:
    """The console over ``store_url`` (else the profile's store, else the embedded one).

    With no token the console answers only requests addressed to a loopback host name (the CLI
    refuses to bind elsewhere without one)."""
    tokens = tokens or Tokens()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        # Build the journal index and the run cache in the background at start: on S3 the first
        # build reads every journal object and run document once (seconds), not a visitor.
        threading.Thread(target=app.state.console.warm_up, name="console-warm-up", daemon=True).start()
        yield
        app.state.console.close()

    app = FastAPI(title="faas console", version=__version__, lifespan=lifespan,
                  description="Endpoints, tasks, functions, flows, runs and timers of one faas store. "
                              "Send `Authorization: Bearer TOKEN` when the console has tokens.")
    app.state.console = console or Console(store_url, home=home, profile=profile)
    app.state.tokens = tokens
    if tokens.open:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=[h.strip("[]") for h in LOOPBACK_NAMES]
                           + list(LOOPBACK_NAMES))
    app.include_router(api.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")

    def is_api(request: Request) -> bool:
        return request.url.path.startswith("/api/")

    @app.exception_handler(NeedLogin)
    async def need_login(request: Request, exc: NeedLogin) -> Response:
        return RedirectResponse(f"/login?next={quote(str(request.url.path))}", status_code=303)

    @app.exception_handler(FaasError)
    async def faas_error(request: Request, exc: FaasError) -> Response:
        code = _status_of(exc)
        body = {"detail": str(exc), "code": getattr(exc, "code", type(exc).__name__)}
        if isinstance(exc, InputErrors):
            body["errors"] = exc.errors
        if is_api(request):
            return JSONResponse(body, status_code=code)
        return pages.render(request, "error.html", role=_role_quiet(request), status_code=code,
                            code=code, message=str(exc))

    @app.exception_handler(ValueError)
    async def value_error(request: Request, exc: ValueError) -> Response:
        if is_api(request):
            return JSONResponse({"detail": str(exc)}, status_code=400)
        return pages.render(request, "error.html", role=_role_quiet(request), status_code=400,
                            code=400, message=str(exc))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if is_api(request):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        return pages.render(request, "error.html", role=_role_quiet(request), status_code=exc.status_code,
                            code=exc.status_code, message=str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        if is_api(request):
            return JSONResponse({"detail": problems, "errors": exc.errors()}, status_code=422)
        return pages.render(request, "error.html", role=_role_quiet(request), status_code=422,
                            code=422, message=problems)

    return app


def _role_quiet(request: Request) -> str:
    from .auth import request_token
    return request.app.state.tokens.role_of(request_token(request)) or ""
