"""The console application: ``create_app`` wires the store, the tokens, the pages and the API."""
from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from urllib.parse import quote, urlencode

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from .. import __version__
from ..exceptions import FaasError
from ..flows.schema import InputInvalid
from . import api, pages
from .auth import NeedLogin, Tokens, require_read, safe_next
from .context import Console
from .flows import FlowsUnavailable, InputErrors

STATIC = Path(__file__).parent / "static"


#: a faas error's HTTP status, by type (the first that matches; any other: 400)
HTTP_STATUS: tuple[tuple[type[BaseException], int], ...] = (
    (LookupError, 404),        # EndpointNotFound, TaskNotFound, FlowNotFound, RunNotFound, TimerNotFound, ...
    (PermissionError, 403),    # faas.flows.access.AccessDenied
    (InputErrors, 422),        # a start form's input, key by key
    (InputInvalid, 422),       # a run's input against the flow's input schema
    (FlowsUnavailable, 501),
)


def _status_of(exc: Exception) -> int:
    return next((code for kind, code in HTTP_STATUS if isinstance(exc, kind)), 400)


class TokenInURL:
    """A page visit with ``?token=T`` (the URL ``faas console`` prints) logs the browser in: the
    cookie is set and the browser is sent on to the same page without the token in its URL. A
    wrong token goes to the login page. The API takes tokens in a header only."""

    def __init__(self, app, tokens: Tokens):
        self.app, self.tokens = app, tokens

    async def __call__(self, scope, receive, send) -> None:
        if (scope["type"] == "http" and scope["method"] in ("GET", "HEAD")
                and b"token=" in scope.get("query_string", b"")):
            request = Request(scope)
            path = request.url.path
            token = request.query_params.get("token")
            if token is not None and not path.startswith(("/api/", "/static/")):
                if path == "/login":
                    target = safe_next(request.query_params.get("next"))
                else:
                    rest = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "token"])
                    target = safe_next(quote(path) + ("?" + rest if rest else ""))
                if self.tokens.role_of(token) is None:
                    response: Response = RedirectResponse(
                        "/login?" + urlencode({"error": "that token is not valid for this console",
                                               "next": target}), status_code=303)
                else:
                    response = pages.logged_in(request, token, target)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(store_url: str | None = None, *, tokens: Tokens, home: str | Path | None = None,
               profile: str | None = None, console: Console | None = None) -> FastAPI:
    """The console over ``store_url`` (else the profile's store, else the embedded one).

    ``tokens`` is required: every request needs the manage or the read-only token, on loopback
    too (a loopback address is every local account's). ``faas console`` makes a manage token in
    ``$FAAS_HOME/console.token`` when given none (:func:`faas.console.token_file.load_or_create`)."""
    if not isinstance(tokens, Tokens):
        raise TypeError(f"create_app(tokens=...) needs faas.console.Tokens(manage=..., read=...), "
                        f"not {type(tokens).__name__}: the console has no open mode")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        # Build the journal index and the run cache in the background at start: on S3 the first
        # build reads every journal object and run document once (seconds), not a visitor.
        threading.Thread(target=app.state.console.warm_up, name="console-warm-up", daemon=True).start()
        yield
        app.state.console.close()

    # No /docs or /redoc (their pages load Swagger UI and ReDoc from a CDN into the console's
    # origin), and the OpenAPI document only with a token, like every other answer. Only the
    # static files (the console's own CSS and JavaScript, no data) are served without one.
    app = FastAPI(title="faas console", version=__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url=None,
                  description="Endpoints, tasks, functions, flows, runs and timers of one faas store. "
                              "Every request needs a console token: send `Authorization: Bearer TOKEN`.")
    app.state.console = console or Console(store_url, home=home, profile=profile)
    app.state.tokens = tokens
    app.add_middleware(TokenInURL, tokens=tokens)
    app.include_router(api.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")

    @app.get("/openapi.json", include_in_schema=False)
    def openapi(role: str = Depends(require_read)) -> JSONResponse:
        return JSONResponse(app.openapi())

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
