"""The JSON API under ``/api``: the same functions the pages call (OpenAPI at ``/openapi.json``)."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from . import endpoints, flows, functions, tasks
from .auth import require_manage, require_read

router = APIRouter(prefix="/api")


def _c(request: Request):
    return request.app.state.console


class StartRun(BaseModel):
    input: Any = Field(default_factory=dict, description="the run's input; checked against the flow's input schema")
    label: str | None = None
    tags: list[str] = []


class Decision(BaseModel):
    comment: str | None = None


@router.get("/whoami", tags=["console"], summary="The role of the token you sent (read or manage)")
def whoami(role: str = Depends(require_read)) -> dict:
    return {"role": role}


@router.get("/endpoints", tags=["endpoints"], summary="Every endpoint in the store, with queue depth, "
            "blocks and tasks per minute over the last hour")
def api_endpoints(request: Request, _: str = Depends(require_read)) -> list[dict]:
    return endpoints.list_endpoints(_c(request))


@router.get("/endpoints/{name}", tags=["endpoints"])
def api_endpoint(name: str, request: Request, _: str = Depends(require_read)) -> dict:
    return endpoints.get_endpoint(_c(request), name)


@router.get("/tasks", tags=["tasks"], summary="Finished tasks from the journal, newest first")
def api_tasks(request: Request, endpoint: str | None = None, status: str | None = None,
              function: str | None = None, limit: int = 100, offset: int = 0,
              _: str = Depends(require_read)) -> dict:
    return tasks.list_tasks(_c(request), endpoint=endpoint, status=status, function=function,
                            limit=max(1, min(limit, 1000)), offset=max(0, offset))


@router.get("/tasks/{task_id}", tags=["tasks"], summary="One task: status, timings, where it ran, "
            "argument summary, result preview or remote traceback")
def api_task(task_id: str, request: Request, _: str = Depends(require_read)) -> dict:
    return tasks.get_task(_c(request), task_id)


@router.post("/tasks/{task_id}/cancel", tags=["tasks"])
def api_cancel_task(task_id: str, request: Request, _: str = Depends(require_manage)) -> dict:
    return tasks.cancel_task(_c(request), task_id)


@router.get("/functions", tags=["functions"])
def api_functions(request: Request, _: str = Depends(require_read)) -> list[dict]:
    return functions.list_functions(_c(request))


@router.get("/flows", tags=["flows"])
def api_flows(request: Request, _: str = Depends(require_read)) -> list[dict]:
    return flows.list_flows(_c(request))


@router.get("/flows/{flow_id}", tags=["flows"])
def api_flow(flow_id: str, request: Request, version: int | None = None,
             _: str = Depends(require_read)) -> dict:
    return flows.get_flow(_c(request), flow_id, version)


@router.post("/flows/{flow_id}/runs", tags=["flows"], status_code=201,
             summary="Start a run; 422 with a message per field when the input fails the schema")
def api_start(flow_id: str, body: StartRun, request: Request, _: str = Depends(require_manage)) -> dict:
    return flows.start(_c(request), flow_id, body.input, body.label, body.tags)


@router.get("/runs", tags=["runs"])
def api_runs(request: Request, flow_id: str | None = None, status: str | None = None,
             label: str | None = None, since: str | None = None, limit: int = 100,
             offset: int = 0, _: str = Depends(require_read)) -> dict:
    return flows.list_runs(_c(request), flow_id=flow_id, status=status, label=label, since=since,
                           limit=max(1, min(limit, 1000)), offset=max(0, offset))


@router.get("/runs/{run_id}", tags=["runs"])
def api_run(run_id: str, request: Request, _: str = Depends(require_read)) -> dict:
    return flows.get_run(_c(request), run_id)


@router.get("/runs/{run_id}/log", tags=["runs"], summary="The run's event log; `after` a seq for "
            "only the later entries (what the event log tab polls)")
def api_log(run_id: str, request: Request, after: int | None = None,
            _: str = Depends(require_read)) -> dict:
    c = _c(request)
    run = flows.get_run(c, run_id)
    return {"run_id": run_id, "status": run.get("status"), "entries": flows.get_log(c, run_id, after)}


def _run_action(action: str):
    def handler(run_id: str, request: Request, body: Decision | None = None,
                _: str = Depends(require_manage)) -> dict:
        out = flows.run_action(_c(request), run_id, action, body.comment if body else None)
        return out if isinstance(out, dict) else {"run_id": run_id, "action": action, "result": out}
    handler.__name__ = f"api_run_{action}"
    return handler


for _a in ("cancel", "resume", "approve", "reject"):
    router.add_api_route(f"/runs/{{run_id}}/{_a}", _run_action(_a), methods=["POST"], tags=["runs"])


@router.get("/timers", tags=["timers"])
def api_timers(request: Request, _: str = Depends(require_read)) -> list[dict]:
    return flows.list_timers(_c(request))


@router.get("/timers/{timer_id}", tags=["timers"])
def api_timer(timer_id: str, request: Request, _: str = Depends(require_read)) -> dict:
    return flows.get_timer(_c(request), timer_id)


def _timer_action(action: str):
    def handler(timer_id: str, request: Request, _: str = Depends(require_manage)) -> Any:
        out = flows.timer_action(_c(request), timer_id, action)
        return out if isinstance(out, dict) else {"timer_id": timer_id, "action": action}
    handler.__name__ = f"api_timer_{action}"
    return handler


router.add_api_route("/timers/{timer_id}/pause", _timer_action("pause"), methods=["POST"], tags=["timers"])
router.add_api_route("/timers/{timer_id}/resume", _timer_action("resume"), methods=["POST"], tags=["timers"])
router.add_api_route("/timers/{timer_id}", _timer_action("delete"), methods=["DELETE"], tags=["timers"])
