"""Input schemas: JSON Schema (2020-12 unless the schema's ``$schema`` names another draft)."""
from __future__ import annotations

from typing import Any

import jsonschema
from jsonschema.validators import validator_for

from faas.exceptions import FaasError


class InputInvalid(FaasError, ValueError):
    """A run's input does not match its flow's input schema; ``violations`` lists each."""

    code = "InputInvalid"

    def __init__(self, message: str, violations: list[dict]):
        super().__init__(message)
        self.violations = violations


def _validator_cls(schema: dict):
    return validator_for(schema, default=jsonschema.Draft202012Validator)


def check_schema(schema: Any) -> list[dict]:
    """Problems with the schema itself: ``[{location, message}]`` (empty if it is valid)."""
    if schema is None:
        return []
    if not isinstance(schema, dict):
        return [{"location": "$", "message": f"an input schema is a JSON object, not "
                                              f"{type(schema).__name__}"}]
    cls = _validator_cls(schema)
    out = []
    for e in sorted(cls(cls.META_SCHEMA).iter_errors(schema), key=lambda e: list(e.path)):
        out.append({"location": _json_path(e.absolute_path), "message": e.message})
    return out


def violations(schema: dict | None, data: Any) -> list[dict]:
    """Each way ``data`` breaks ``schema``: ``[{path, message}]`` (``path`` a JSONPath)."""
    if not schema:
        return []
    cls = _validator_cls(schema)
    errors = sorted(cls(schema).iter_errors(data), key=lambda e: (list(map(str, e.path)), e.message))
    return [{"path": _json_path(e.absolute_path), "message": e.message} for e in errors]


def require_valid(schema: dict | None, data: Any) -> None:
    found = violations(schema, data)
    if found:
        lines = "\n".join(f"  {v['path']}: {v['message']}" for v in found)
        raise InputInvalid(f"the input does not match the flow's input schema "
                           f"({len(found)} violation(s)):\n{lines}", found)


def _json_path(parts) -> str:
    out = "$"
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out
