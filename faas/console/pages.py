"""The HTML pages: server-rendered, readable with JavaScript off; actions are plain form posts
that redirect back (Post/Redirect/Get)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from . import endpoints, flows, functions, tasks
from .auth import COOKIE, require_manage, require_read, safe_next
from .schema_form import fields as form_fields
from .svg import bar_chart, flow_graph
from .timefmt import ago, clock, duration, interval, when

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
templates.env.filters.update(when=when, ago=ago, clock=clock, interval=interval,
                             tojson_pretty=lambda v: json.dumps(v, indent=2, default=str))
templates.env.globals.update(bar_chart=bar_chart, duration=duration)


def _c(request: Request):
    return request.app.state.console


def render(request: Request, name: str, role: str, status_code: int = 200, **ctx: Any) -> HTMLResponse:
    return templates.TemplateResponse(request, name, dict(ctx, role=role, flows_enabled=_c(request).flows is not None),
                                       status_code=status_code)


def back(url: str, **flash: Any) -> RedirectResponse:
    q = urlencode({k: v for k, v in flash.items() if v})
    return RedirectResponse(url + (("&" if "?" in url else "?") + q if q else ""), status_code=303)


@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/endpoints", status_code=307)


# -- login -----------------------------------------------------------------------------------

@router.get("/login")
def login_page(request: Request, error: str | None = None) -> HTMLResponse:
    return render(request, "login.html", role="", error=error)


@router.post("/login")
async def login(request: Request) -> RedirectResponse:
    form = await request.form()
    token = str(form.get("token") or "")
    if request.app.state.tokens.role_of(token) is None:
        return back("/login", error="that token is not valid for this console")
    nxt = form.get("next")   # a str, or an uploaded file from a forged form: then the default
    return logged_in(request, token, safe_next(nxt if isinstance(nxt, str) else None))   # only into the console


def logged_in(request: Request, token: str, nxt: str) -> RedirectResponse:
    """A redirect to ``nxt`` that sets the session cookie (HTTP-only, same-site)."""
    resp = RedirectResponse(nxt, status_code=303)
    resp.set_cookie(COOKIE, token, httponly=True, samesite="strict",
                    secure=request.url.scheme == "https")
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Referrer-Policy"] = "no-referrer"
    return resp


@router.post("/logout")
def logout() -> RedirectResponse:
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(COOKIE)
    return resp


# -- endpoints -------------------------------------------------------------------------------

@router.get("/endpoints")
def endpoints_page(request: Request, role: str = Depends(require_read)) -> HTMLResponse:
    return render(request, "endpoints.html", role, endpoints=endpoints.list_endpoints(_c(request)), nav="endpoints")


@router.get("/endpoints/{name}")
def endpoint_page(name: str, request: Request, role: str = Depends(require_read)) -> HTMLResponse:
    c = _c(request)
    ep = endpoints.get_endpoint(c, name)
    recent = tasks.list_tasks(c, endpoint=name, limit=20)
    return render(request, "endpoint.html", role, ep=ep, recent=recent, nav="endpoints")


# -- tasks -----------------------------------------------------------------------------------

@router.get("/tasks")
def tasks_page(request: Request, id: str | None = None, endpoint: str | None = None,
               status: str | None = None, function: str | None = None, page: int = 1,
               role: str = Depends(require_read)) -> Response:
    if id and id.strip():
        return RedirectResponse(f"/tasks/{id.strip()}", status_code=303)
    c = _c(request)
    page = max(1, page)
    result = tasks.list_tasks(c, endpoint=endpoint or None, status=status or None,
                              function=function or None, limit=50, offset=(page - 1) * 50)
    names = sorted({r.get("endpoint") for r in c.journal.records() if r.get("endpoint")})
    filters = {"endpoint": endpoint or "", "status": status or "", "function": function or ""}
    return render(request, "tasks.html", role, result=result, page=page, filters=filters,
                  endpoints=names, statuses=("running",) + tasks.TERMINAL, nav="tasks",
                  query=urlencode({k: v for k, v in filters.items() if v}))


@router.get("/tasks/{task_id}")
def task_page(task_id: str, request: Request, msg: str | None = None,
              role: str = Depends(require_read)) -> HTMLResponse:
    task = tasks.get_task(_c(request), task_id)
    return render(request, "task.html", role, task=task, msg=msg, nav="tasks",
                  live=task["status"] in ("pending", "running"))


@router.post("/tasks/{task_id}/cancel")
def task_cancel(task_id: str, request: Request, _: str = Depends(require_manage)) -> RedirectResponse:
    out = tasks.cancel_task(_c(request), task_id)
    return back(f"/tasks/{task_id}", msg=f"cancel requested: {out['status']}")


# -- functions -------------------------------------------------------------------------------

@router.get("/functions")
def functions_page(request: Request, role: str = Depends(require_read)) -> HTMLResponse:
    return render(request, "functions.html", role, functions=functions.list_functions(_c(request)), nav="functions")


# -- flows and runs --------------------------------------------------------------------------

@router.get("/flows")
def flows_page(request: Request, role: str = Depends(require_read)) -> HTMLResponse:
    return render(request, "flows.html", role, flows=flows.list_flows(_c(request)), nav="flows")


def _flow_page(request: Request, role: str, flow_id: str, values: dict | None = None,
               errors: dict | None = None, label: str = "", tags: str = "", status_code: int = 200):
    c = _c(request)
    flow = flows.get_flow(c, flow_id)
    runs = flows.list_runs(c, flow_id=flow_id, limit=10)
    return render(request, "flow.html", role, status_code=status_code, flow=flow,
                  graph=flow_graph(flow.get("definition") or {}),
                  fields=form_fields(flow.get("input_schema"), values), errors=errors or {},
                  label=label, tags=tags, runs=runs, nav="flows")


@router.get("/flows/{flow_id}")
def flow_page(flow_id: str, request: Request, role: str = Depends(require_read)) -> HTMLResponse:
    return _flow_page(request, role, flow_id)


@router.post("/flows/{flow_id}/start")
async def flow_start(flow_id: str, request: Request, role: str = Depends(require_manage)):
    form = {k: str(v) for k, v in (await request.form()).items()}
    run, data, errors = flows.start_from_form(_c(request), flow_id, form)
    if errors:
        return _flow_page(request, role, flow_id, values={k: v for k, v in form.items() if not k.startswith("_")},
                          errors=errors, label=form.get("_label", ""), tags=form.get("_tags", ""),
                          status_code=422)
    assert run is not None   # no errors: start_from_form started it
    return back(f"/runs/{run['run_id']}", tab="log")


@router.get("/runs")
def runs_page(request: Request, flow_id: str | None = None, status: str | None = None,
              label: str | None = None, since: str | None = None, page: int = 1,
              role: str = Depends(require_read)) -> HTMLResponse:
    c = _c(request)
    page = max(1, page)
    error = None
    try:
        result = flows.list_runs(c, flow_id=flow_id, status=status, label=label, since=since,
                                 limit=50, offset=(page - 1) * 50)
    except ValueError as e:
        result, error = {"runs": [], "total": 0}, str(e)
    titles = {f["id"]: f.get("title") for f in flows.flows_client(c).list_flows()}
    filters = {"flow_id": flow_id or "", "status": status or "", "label": label or "", "since": since or ""}
    return render(request, "runs.html", role, result=result, page=page, filters=filters, error=error,
                  titles=titles, statuses=flows.RUN_STATUSES, nav="runs",
                  query=urlencode({k: v for k, v in filters.items() if v}))


@router.get("/runs/{run_id}")
def run_page(run_id: str, request: Request, tab: str = "overview", msg: str | None = None,
             role: str = Depends(require_read)) -> HTMLResponse:
    c = _c(request)
    run = flows.get_run(c, run_id)
    log = flows.get_log(c, run_id)
    try:
        flow = flows.get_flow(c, run["flow_id"], run.get("flow_version"))
    except Exception:  # noqa: BLE001 - a deleted flow: the run is still worth showing
        flow = None
    current = run.get("current_state")
    highlight = {current: "current"} if current and run.get("status") not in flows.RUN_DONE else {}
    return render(request, "run.html", role, run=run, log=log, flow=flow, tab=tab, msg=msg,
                  done=run.get("status") in flows.RUN_DONE, waiting_approval=flows.waiting_approval(run, log),
                  graph=flow_graph(flow["definition"], highlight) if flow else None, nav="runs")


@router.post("/runs/{run_id}/{action}")
async def run_action(run_id: str, action: str, request: Request, _: str = Depends(require_manage)):
    form = await request.form()
    flows.run_action(_c(request), run_id, action, str(form.get("comment") or "") or None)
    return back(f"/runs/{run_id}", tab=str(form.get("_tab") or "overview"), msg=f"{action} requested")


# -- timers ----------------------------------------------------------------------------------

@router.get("/timers")
def timers_page(request: Request, msg: str | None = None, role: str = Depends(require_read)) -> HTMLResponse:
    return render(request, "timers.html", role, timers=flows.list_timers(_c(request)), msg=msg, nav="timers")


@router.get("/timers/{timer_id}")
def timer_page(timer_id: str, request: Request, msg: str | None = None,
               role: str = Depends(require_read)) -> HTMLResponse:
    return render(request, "timer.html", role, t=flows.get_timer(_c(request), timer_id), msg=msg, nav="timers")


@router.post("/timers/{timer_id}/{action}")
def timer_action(timer_id: str, action: str, request: Request, _: str = Depends(require_manage)):
    flows.timer_action(_c(request), timer_id, action)
    referer = request.headers.get("referer", "")
    if action != "delete" and f"/timers/{timer_id}" in referer:
        return back(f"/timers/{timer_id}", msg=f"{action}: done")
    return back("/timers", msg=f"{action}: done")
