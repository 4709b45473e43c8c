"""Globus SDK's flows clients, so a script written for Globus Flows runs with its import changed:
``from globus_sdk import FlowsClient, SpecificFlowClient`` becomes
``from faas.flows.sdk import FlowsClient, SpecificFlowClient``.

Methods and keywords are globus-sdk 3.x's (``create_flow``, ``get_flow``, ``list_flows``,
``delete_flow``, ``get_run``, ``get_run_logs``, ``cancel_run``; ``SpecificFlowClient(flow_id)
.run_flow(body, label=, tags=, run_monitors=, run_managers=)``), working on faas's store through
:class:`faas.flows.client.FlowsClient`. Keywords that only steer Globus's hosted listing
(``filter_role``, ``orderby``, ``marker``, ``query_params``) are not taken (a TypeError).
Answers are dicts in Globus's shapes (flow roles as ``flow_viewers``, ``flow_starters``,
``flow_administrators``, ``flow_owner``; runs with ``run_managers``, ``run_monitors``), with
``.data`` as a GlobusHTTPResponse has. Globus's connection keywords (``app``, ``authorizer``,
``environment``, ...) are accepted and have no effect: there is no hosted service to reach.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from faas.flows.client import FlowsClient as _FaasFlowsClient

#: Globus's BaseClient keywords: which service and how to authenticate; nothing here uses them
_CONNECTION_KEYWORDS = ("app", "authorizer", "environment", "app_name", "transport_params",
                        "base_url", "app_scopes")


class Response(dict):
    """A Globus API answer: a dict, and ``.data`` as globus_sdk's GlobusHTTPResponse has."""

    @property
    def data(self) -> dict:
        return dict(self)


class IterableResponse(Response):
    """A listing: iterating gives its items (``flows``, ``entries``), as globus_sdk's do."""

    items_key = "flows"

    def __iter__(self) -> Iterator[Any]:   # type: ignore[override]
        return iter(self[self.items_key])


def _faas_client(store: str | None, profile: str | None, connection: dict) -> _FaasFlowsClient:
    unknown = sorted(set(connection) - set(_CONNECTION_KEYWORDS))
    if unknown:
        raise TypeError(f"unexpected keyword argument(s): {', '.join(unknown)}")
    return _FaasFlowsClient(store, profile)


def _no_additional_fields(additional_fields: dict | None) -> None:
    if additional_fields:
        raise ValueError(f"additional_fields {sorted(additional_fields)}: sent as-is to Globus's "
                         f"API, which faas does not have; use the method's own keywords")


def flow_doc(flow: dict) -> Response:
    """A faas flow as Globus's Flows API describes one."""
    roles = {"flow_viewers": flow.get("viewers", []), "flow_starters": flow.get("starters", []),
             "flow_administrators": flow.get("administrators", []),
             "flow_owner": flow.get("owner")}
    skip = {"viewers", "starters", "administrators", "owner"}
    return Response({**{k: v for k, v in flow.items() if k not in skip}, **roles})


def run_doc(run: dict) -> Response:
    """A faas run with Globus's names for its roles (the rest is faas's run document:
    ``status``, ``output``, ``error``, ``cause``, docs/flows.md)."""
    skip = {"managers", "monitors"}
    return Response({**{k: v for k, v in run.items() if k not in skip},
                     "run_managers": run.get("managers", []),
                     "run_monitors": run.get("monitors", [])})


class FlowsClient:
    """globus_sdk.FlowsClient on faas's store (``store``/``profile`` as faas's own client)."""

    def __init__(self, store: str | None = None, profile: str | None = None, **connection: Any):
        self.faas = _faas_client(store, profile, connection)

    def create_flow(self, title: str, definition: dict[str, Any], input_schema: dict[str, Any],
                    subtitle: str | None = None, description: str | None = None,
                    flow_viewers: list[str] | None = None, flow_starters: list[str] | None = None,
                    flow_administrators: list[str] | None = None,
                    keywords: list[str] | None = None,
                    additional_fields: dict[str, Any] | None = None) -> Response:
        """Deploy a flow (validated as ``faas flows validate`` does); the answer holds its ``id``."""
        _no_additional_fields(additional_fields)
        return flow_doc(self.faas.deploy(
            definition, input_schema=input_schema, title=title, subtitle=subtitle,
            description=description, keywords=keywords or (), viewers=flow_viewers or (),
            starters=flow_starters or (), administrators=flow_administrators or ()))

    def get_flow(self, flow_id: str) -> Response:
        return flow_doc(self.faas.get_flow(str(flow_id)))

    def list_flows(self, *, filter_fulltext: str | None = None) -> IterableResponse:
        """Every flow this identity may view (one page: ``has_next_page`` is false)."""
        flows = [flow_doc(f) for f in self.faas.list_flows()]
        if filter_fulltext:
            text = filter_fulltext.lower()
            flows = [f for f in flows if text in " ".join(
                str(f.get(k) or "") for k in ("title", "subtitle", "description")).lower()]
        return IterableResponse({"flows": flows, "has_next_page": False, "marker": None})

    def delete_flow(self, flow_id: str) -> Response:
        flow = self.faas.get_flow(str(flow_id))
        self.faas.delete_flow(str(flow_id))
        return flow_doc(flow)

    def get_run(self, run_id: str) -> Response:
        return run_doc(self.faas.get_run(str(run_id)))

    def get_run_logs(self, run_id: str, *, limit: int | None = None,
                     reverse_order: bool | None = None) -> IterableResponse:
        """The run's event log (``entries``: ``code``, ``description``, ``details``, ``time``)."""
        entries = self.faas.get_log(str(run_id))
        if reverse_order:
            entries.reverse()
        if limit is not None:
            entries = entries[:limit]
        response = IterableResponse({"entries": entries, "has_next_page": False, "marker": None})
        response.items_key = "entries"
        return response

    def cancel_run(self, run_id: str) -> Response:
        return run_doc(self.faas.cancel_run(str(run_id)))


class SpecificFlowClient:
    """globus_sdk.SpecificFlowClient: runs one flow."""

    def __init__(self, flow_id: str, *, store: str | None = None, profile: str | None = None,
                 **connection: Any):
        self.flow_id = str(flow_id)
        self.faas = _faas_client(store, profile, connection)

    def run_flow(self, body: dict[str, Any], *, label: str | None = None,
                 tags: list[str] | None = None, run_monitors: list[str] | None = None,
                 run_managers: list[str] | None = None,
                 additional_fields: dict[str, Any] | None = None) -> Response:
        """Start a run with ``body`` as its input (checked against the flow's input schema)."""
        _no_additional_fields(additional_fields)
        return run_doc(self.faas.start(self.flow_id, body, label=label, tags=tags or (),
                                       managers=run_managers or (), monitors=run_monitors or ()))
