"""The user endpoint's config: the user's variables checked against the administrator's JSON
Schema (2020-12), then the administrator's Jinja template rendered in a sandbox into an ordinary
single-user config.yaml.

Every ``{{ expression }}`` becomes a JSON value (YAML reads JSON): a user's string is quoted and
escaped, so it can never close a value and add a key. Reserved variables live under ``_faas``
(the mapped account, the Python version, the endpoint) and cannot be sent by a user.
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import jsonschema
import yaml
from jinja2 import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from pydantic import ValidationError

from ...config import describe_validation, read_json
from ...exceptions import ConfigError
from .. import config as ep_config


#: config.yaml keys that only mean something to the root endpoint
MULTI_USER_KEYS = {"identity_mapping_path", "allowed_users", "denied_users", "max_user_endpoints",
                   "max_blocks_per_user", "over_limit", "user_endpoint_idle_timeout", "audit_log_path"}


class VariablesRefused(ConfigError):
    """The variables a user sent do not satisfy the schema (or use a reserved name)."""


def _finalize(value):
    if value is None:
        return "null"
    if isinstance(value, (str, bool, list, dict, tuple)):
        return json.dumps(value)
    return value


def _environment() -> ImmutableSandboxedEnvironment:
    return ImmutableSandboxedEnvironment(finalize=_finalize, autoescape=False, keep_trailing_newline=True)


def variables_hash(variables: dict) -> str:
    return hashlib.sha256(json.dumps(variables, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:12]


def load_schema(path: Path) -> dict:
    schema = read_json(path, "user config schema")
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as e:
        raise ConfigError(f"{path}: not a valid JSON Schema (2020-12): {e.message} at "
                          f"{'/'.join(map(str, e.path)) or 'the top'}") from None
    return schema


def check_variables(variables: object, schema: dict, where: str = "user_endpoint_config") -> dict:
    """The variables if the schema admits them; else VariablesRefused with the key and the reason."""
    if variables is None:
        variables = {}
    if not isinstance(variables, dict):
        raise VariablesRefused(f"{where}: expected an object of variables, got {type(variables).__name__}")
    reserved = [k for k in variables if str(k).startswith("_")]
    if reserved:
        raise VariablesRefused(f"{where}: {reserved[0]!r}: names starting with '_' are reserved for the endpoint")
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(variables), key=lambda e: list(e.path))
    if errors:
        e = errors[0]
        key = "/".join(map(str, e.absolute_path)) or "(top level)"
        raise VariablesRefused(f"{where}: {key}: {e.message} (refused by the endpoint's user_config_schema.json)")
    return variables


def reserved(endpoint_name: str, uname: str, uid: int, home: str, provider: str = "local") -> dict:
    v = sys.version_info
    return {"endpoint_name": endpoint_name, "provider": provider,
            "mapped_identity": {"local": {"uname": uname, "uid": uid, "home": home}},
            "python": {"version": f"{v.major}.{v.minor}.{v.micro}", "minor": f"{v.major}.{v.minor}"}}


def render(template_text: str, variables: dict, reserved_vars: dict, template_path: str = "template") -> str:
    try:
        return _environment().from_string(template_text).render(**variables, _faas=reserved_vars)
    except TemplateError as e:
        raise ConfigError(f"{template_path}: rendering failed: {type(e).__name__}: {e}") from None


def user_config(template_text: str, variables: dict, reserved_vars: dict, *, store: str,
                max_blocks: int, allowed_functions: list[str] | None,
                template_path: str = "template") -> dict:
    """Render and validate: the config.yaml (as a dict) of one user endpoint. The endpoint, not
    the template, decides the store, the queue and the limits."""
    text = render(template_text, variables, reserved_vars, template_path)
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{template_path}: the rendered config is not valid YAML: {e}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{template_path}: the rendered config is not a mapping of keys")
    for key in ("signing_keys", "signing_keys_file", "queue", "store"):
        raw.pop(key, None)
    raw["store"], raw["queue"] = store, "local"
    if allowed_functions is not None:
        raw["allowed_functions"] = list(allowed_functions)
    provider = raw.setdefault("engine", {}).setdefault("provider", {}) if isinstance(raw.get("engine", {}), dict) else None
    if isinstance(provider, dict):
        provider["max_blocks"] = min(int(provider.get("max_blocks", 1) or 1), max_blocks)
        provider["init_blocks"] = min(int(provider.get("init_blocks", 0) or 0), provider["max_blocks"])
        provider["min_blocks"] = min(int(provider.get("min_blocks", 0) or 0), provider["max_blocks"])
    try:
        cfg = ep_config.EndpointConfig.model_validate(raw)
    except ValidationError as e:
        raise VariablesRefused(describe_validation(e, f"{template_path} (rendered)")) from None
    return cfg.model_dump(exclude_none=True, exclude=MULTI_USER_KEYS)
