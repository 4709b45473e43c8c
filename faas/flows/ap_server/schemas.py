"""Introspection documents: Globus's Action Provider description (the fields of
action-provider-tools' ``ActionProviderDescription``) for each action the server mounts.

A provider may carry its own body schema (``input_schema``) and ``synchronous`` flag; those that
do not get the schemas below, which list what the provider reads (it checks the body itself and
names the key at fault, so these are documentation as much as validation).
"""
from __future__ import annotations

from typing import Any

_ENDPOINT = {"type": "string", "description": "an endpoint name, or an id the site maps to one"}
_FUNCTION = {"type": "string", "description": "a function id (faas.client().register_function)"}
_TASK: dict[str, Any] = {"type": "object", "properties": {
    "endpoint": _ENDPOINT, "endpoint_id": _ENDPOINT, "function": _FUNCTION, "function_id": _FUNCTION,
    "args": {}, "kwargs": {"type": "object"}, "payload": {"type": "object"}}}

SCHEMAS: dict[str, dict] = {
    "faas://compute": {"type": "object", "properties": {
        **_TASK["properties"], "tasks": {"type": "array", "items": _TASK},
        "user_endpoint_config": {"type": "object"}, "resource_specification": {"type": "object"},
        "task_group_id": {"type": "string"}}},
    "faas://transfer": {"type": "object", "required": ["transfer_items"], "properties": {
        "source_endpoint_id": {"type": "string"}, "destination_endpoint_id": {"type": "string"},
        "source_endpoint": {"type": "string"}, "destination_endpoint": {"type": "string"},
        "transfer_items": {"type": "array", "items": {"type": "object", "required": [
            "source_path", "destination_path"], "properties": {
            "source_path": {"type": "string"}, "destination_path": {"type": "string"},
            "recursive": {"type": "boolean"}}}},
        "label": {"type": "string"}, "sync_level": {}, "verify_checksum": {"type": "boolean"},
        "delete_source": {"type": "boolean"}}},
    "faas://transfer/delete": {"type": "object", "required": ["items"], "properties": {
        "endpoint_id": {"type": "string"}, "endpoint": {"type": "string"},
        "items": {"type": "array", "items": {}}, "recursive": {"type": "boolean"},
        "label": {"type": "string"}}},
}
SYNCHRONOUS = {"faas://notify"}


def describe(prefix: str, url: str, provider) -> dict:
    """The introspection document of the action at ``prefix`` (faas ``url``)."""
    name = url.removeprefix("faas://")
    return {
        "api_version": "1.0",
        "types": ["ACTION"],
        "title": f"faas {name}",
        "subtitle": f"faas's {name} action over the Globus Action Provider API",
        "description": (provider.__class__.__doc__ or "").strip() or None,
        "admin_contact": None,
        "globus_auth_scope": None,          # bearer tokens of this server, not Globus Auth
        "synchronous": bool(getattr(provider, "synchronous", url in SYNCHRONOUS)),
        "input_schema": getattr(provider, "input_schema", None) or SCHEMAS.get(url) or {"type": "object"},
        "log_supported": False,
        "maximum_deadline": "P30D",
        "visible_to": ["all_authenticated_users"],
        "runnable_by": ["all_authenticated_users"],
        "administered_by": [],
        "keywords": ["faas", name.split("/")[0]],
        "action_url": url,
        "path": prefix,
    }
