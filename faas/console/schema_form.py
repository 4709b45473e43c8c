"""A start form generated from a flow's input schema (JSON Schema), and the input it posts.

Each top-level property becomes a field: strings a text box (a select for ``enum``), integers
and numbers a number box, booleans a checkbox, arrays and objects a JSON text area. ``required``,
``default``, ``title``, ``description``, ``pattern``, lengths and bounds come from the schema.
The messages a person sees are the same before submit (console.js checks the constraints the
field carries) and after (the server validates with jsonschema): a schema may word them with
``errorMessage`` (a string, or one per keyword, as ajv-errors does); otherwise they are
generated from the constraint.
"""
from __future__ import annotations

import json
from typing import Any

import jsonschema

_KEYWORDS = ("required", "type", "pattern", "minLength", "maxLength", "minimum", "maximum",
             "exclusiveMinimum", "exclusiveMaximum", "enum", "format", "minItems", "maxItems", "json")


def _kind(prop: dict) -> str:
    t = prop.get("type")
    if isinstance(t, list):
        t = next((x for x in t if x != "null"), "string")
    if "enum" in prop and t in (None, "string", "integer", "number"):
        return "enum"
    return {"integer": "integer", "number": "number", "boolean": "boolean", "array": "json",
            "object": "json", "string": "string"}.get(t or "string", "json")


def message(prop: dict, title: str, keyword: str) -> str:
    """The message for ``keyword`` failing on a field: the schema's own words, else ours."""
    custom = prop.get("errorMessage")
    if isinstance(custom, str):
        return custom
    if isinstance(custom, dict) and isinstance(custom.get(keyword), str):
        return custom[keyword]
    t = prop.get("type")
    return {
        "required": f"{title} is required",
        "type": f"{title} must be {'an' if t == 'integer' else 'a'} {t}",
        "pattern": f"{title} must match the pattern {prop.get('pattern')}",
        "minLength": f"{title} must be at least {prop.get('minLength')} characters",
        "maxLength": f"{title} must be at most {prop.get('maxLength')} characters",
        "minimum": f"{title} must be at least {prop.get('minimum')}",
        "maximum": f"{title} must be at most {prop.get('maximum')}",
        "exclusiveMinimum": f"{title} must be more than {prop.get('exclusiveMinimum')}",
        "exclusiveMaximum": f"{title} must be less than {prop.get('exclusiveMaximum')}",
        "enum": f"{title} must be one of {', '.join(map(str, prop.get('enum') or []))}",
        "json": f"{title} must be JSON ({t})",
    }.get(keyword, f"{title} is not valid ({keyword})")


def fields(schema: dict | None, values: dict | None = None) -> list[dict]:
    """What a template needs to draw each field (values: what the person typed, to redisplay)."""
    schema = schema or {}
    required = set(schema.get("required") or [])
    out = []
    props = schema.get("properties") or {}
    # required fields first, in the order ``required`` lists them (stores may sort the keys)
    order = [n for n in schema.get("required") or [] if n in props] + [n for n in props if n not in required]
    for name in order:
        prop = props[name] if isinstance(props[name], dict) else {}
        kind = _kind(prop)
        title = prop.get("title") or name
        if values is not None and name in values:
            value = values[name]
        elif values is not None and kind == "boolean":   # posted back: an unticked box sends nothing
            value = False
        elif "default" in prop:
            d = prop["default"]
            value = json.dumps(d) if kind == "json" else d
        else:
            value = "" if kind != "boolean" else False
        attrs: dict[str, Any] = {}
        if kind == "string":
            attrs.update({k: prop[k] for k in ("minLength", "maxLength") if k in prop})
            if "pattern" in prop:
                attrs["pattern"] = prop["pattern"]
        if kind in ("integer", "number"):
            for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
                if isinstance(prop.get(k), (int, float)) and not isinstance(prop.get(k), bool):
                    attrs[k] = prop[k]
        input_type = {"integer": "number", "number": "number"}.get(kind, "text")
        if kind == "string" and prop.get("format") in ("email", "date", "uri"):
            input_type = {"uri": "url"}.get(prop["format"], prop["format"])
        out.append({
            "name": name, "title": title, "kind": kind, "input_type": input_type,
            "description": prop.get("description"), "required": name in required, "value": value,
            "enum": prop.get("enum"), "attrs": attrs, "step": "1" if kind == "integer" else "any",
            "messages": {k: message(prop, title, k) for k in _KEYWORDS},
            "placeholder": (json.dumps(prop.get("examples", [None])[0])
                            if kind == "json" and prop.get("examples") else ""),
        })
    return out


def parse(schema: dict | None, form: dict[str, str]) -> tuple[dict, dict[str, str]]:
    """Turn posted text into typed input and validate it: ``(input, {field: message})``."""
    schema = schema or {}
    props = schema.get("properties") or {}
    required = set(schema.get("required") or [])
    data: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, prop in props.items():
        prop = prop if isinstance(prop, dict) else {}
        kind, title = _kind(prop), prop.get("title") or name
        raw = form.get(name)
        if kind == "boolean":
            data[name] = raw not in (None, "", "false", "off")
            continue
        if raw is None or str(raw).strip() == "":
            if name in required:
                errors[name] = message(prop, title, "required")
            continue
        raw = str(raw)
        try:
            if kind == "integer" or kind == "enum" and prop.get("type") == "integer":
                data[name] = int(raw)
            elif kind == "number" or kind == "enum" and prop.get("type") == "number":
                data[name] = float(raw)
            elif kind == "json":
                data[name] = json.loads(raw)
            else:
                data[name] = raw
        except ValueError:
            errors[name] = message(prop, title, "json" if kind == "json" else "type")
    for name in list(form):   # extra fields a schema without properties allows
        if name not in props and not name.startswith("_") and not props:
            data[name] = form[name]
    if not errors:
        errors.update(validate(schema, data))
    return data, errors


def validate(schema: dict, data: Any) -> dict[str, str]:
    """jsonschema's verdict, one message per top-level field ("" for the input as a whole)."""
    if not schema:
        return {}
    cls = jsonschema.validators.validator_for(schema)
    props = schema.get("properties") or {}
    errors: dict[str, str] = {}
    for err in cls(schema).iter_errors(data):
        if err.validator == "required" and not err.path:
            missing = [p for p in schema.get("required", []) if isinstance(data, dict) and p not in data]
            for name in missing:
                prop = props.get(name) or {}
                errors.setdefault(name, message(prop, prop.get("title") or name, "required"))
            continue
        name = str(err.path[0]) if err.path else ""
        prop = props.get(name) or {}
        if len(err.path) == 1 and prop:
            errors.setdefault(name, message(prop, prop.get("title") or name, str(err.validator)))
        else:
            errors.setdefault(name, err.message)
    return errors
