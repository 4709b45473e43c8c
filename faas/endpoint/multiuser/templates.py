"""The user endpoint's config: the user's variables checked against the administrator's JSON
Schema, then the administrator's Jinja template rendered in a sandbox into an ordinary
single-user config.yaml, the way Globus Compute renders ``user_config_template.yaml.j2``
(``globus_compute_endpoint/endpoint/config/utils.py``, ``render_config_user_template``):

- the user's values are JSON-serialized *before* rendering (Globus's ``_sanitize_user_json``): a
  string becomes a double-quoted YAML scalar with its newlines and quotes escaped, so it can
  never close its value and add a key; numbers, booleans stay as they are, None becomes ``null``.
  A template compares with the serialized form (``{% if environment == '"test"' %}``).
- undefined variables are errors (``StrictUndefined``); ``| default(...)`` makes one optional.
- the reserved variables: ``_GC.parent_config`` (the root endpoint's config), ``_GC.user_runtime``
  (serialized like the user's values), ``_GC.mapped_identity`` (the local account, and the
  identity that mapped to it); the same three without ``_GC.`` still work and log that they are
  deprecated, as in Globus. ``_faas`` holds faas's own (endpoint name, provider, Python).
- the ``shell_escape`` filter; ``include`` / ``extends`` / ``import`` from the template's folder.
"""
from __future__ import annotations

import copy
import functools
import hashlib
import json
import logging
import os
import platform
import pwd
import shlex
import sys
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from jinja2 import FileSystemLoader, StrictUndefined, TemplateError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from pydantic import ValidationError

from ...config import read_json
from ...exceptions import ConfigError
from .. import config as ep_config
from .mapping import check_owner_safe, identity_document

log = logging.getLogger("faas.multiuser.templates")

#: config.yaml keys that only mean something to the root endpoint (dropped from a rendered config)
MULTI_USER_KEYS = set(ep_config.ManagerEndpointConfig.model_fields) - set(ep_config.BaseEndpointConfig.model_fields)

#: names a user may not send (Globus's list; faas also reserves every name starting with ``_``)
RESERVED_USER_CONFIG_TEMPLATE_VARIABLES = ("parent_config", "user_runtime", "mapped_identity", "_GC")

#: the deepest nesting of lists and objects a user's variables (or resource specification) may
#: have: the schema, the template and JSON serialization walk them recursively, and a value
#: nested hundreds deep (which json.loads and the message model accept) exhausts the stack
MAX_VARIABLES_DEPTH = 16
#: the most bytes a user's variables (or resource specification) may take as JSON: root renders
#: and validates them on every new variable set, in its routing loop
MAX_VARIABLES_BYTES = 64 * 1024


class VariablesRefused(ConfigError):
    """The variables a user sent do not satisfy the schema (or use a reserved name)."""


def variables_hash(variables: dict) -> str:
    return hashlib.sha256(json.dumps(variables, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:12]


# -- the user's variables ----------------------------------------------------------------------

def load_schema(path: Path) -> dict | None:
    """The JSON Schema of ``user_config_schema.json``; None when there is no such file (then any
    variables are accepted, as in Globus). A schema that is not one is refused at start."""
    if not Path(path).exists():
        return None
    check_owner_safe(path)
    schema = read_json(path, "user config schema")
    try:
        jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator).check_schema(schema)
    except jsonschema.SchemaError as e:
        raise ConfigError(f"{path}: not a valid JSON Schema: {e.message} at "
                          f"{'/'.join(map(str, e.path)) or 'the top'}") from None
    return schema


def check_shape(value: object, where: str, max_depth: int = MAX_VARIABLES_DEPTH,
                max_bytes: int = MAX_VARIABLES_BYTES) -> None:
    """VariablesRefused, naming the limit, if ``value`` (plain JSON data a user sent) is nested
    deeper than ``max_depth`` or takes more than ``max_bytes`` as JSON. Walked without recursion,
    so that it is safe on any depth; run before anything recursive (the schema, the template,
    json.dumps) sees the value."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: list = list(item.values())
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > max_depth:
            raise VariablesRefused(f"{where}: nested deeper than {max_depth} levels of lists and objects "
                                   f"(the endpoint's limit; send flatter values)")
        stack.extend((c, depth + 1) for c in children)
    size = len(json.dumps(value, separators=(",", ":"), default=str))
    if size > max_bytes:
        raise VariablesRefused(f"{where}: {size} bytes as JSON, over the endpoint's limit of {max_bytes} "
                               f"bytes (send fewer or shorter values)")


def check_variables(variables: object, schema: dict | None, where: str = "user_endpoint_config") -> dict:
    """The variables if the schema admits them; else VariablesRefused naming the variable (or
    the limit on nesting and size, :func:`check_shape`, checked first)."""
    if variables is None:
        variables = {}
    if not isinstance(variables, dict):
        raise VariablesRefused(f"{where}: expected an object of variables, got {type(variables).__name__}")
    check_shape(variables, where)
    for name in variables:
        if name in RESERVED_USER_CONFIG_TEMPLATE_VARIABLES or str(name).startswith("_"):
            raise VariablesRefused(f"{where}: {name!r} is a reserved word and cannot be passed in via user "
                                   f"config (reserved: {', '.join(RESERVED_USER_CONFIG_TEMPLATE_VARIABLES)} "
                                   f"and every name starting with '_')")
    if schema:
        validator = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        errors = sorted(validator(schema).iter_errors(variables), key=lambda e: list(e.path))
        if errors:
            e = errors[0]
            key = "/".join(map(str, e.absolute_path)) or "(top level)"
            raise VariablesRefused(f"{where}: {key}: {e.message} (refused by the endpoint's "
                                   f"user_config_schema.json)")
    return variables


class _JsonList(list):
    """A list of serialized values; rendered as JSON (Globus renders Python's repr, which YAML
    reads to the same values, except that a quote in an item breaks or escapes it)."""

    def __str__(self) -> str:
        return json.dumps(self)

    __repr__ = __str__


class _JsonDict(dict):
    def __str__(self) -> str:
        return json.dumps(self)

    __repr__ = __str__


def sanitize_user_json(data: Any) -> Any:
    """Globus's ``_sanitize_user_json``: every string JSON-serialized (so it renders as a
    double-quoted YAML scalar), numbers and booleans kept, None as ``null``."""
    if isinstance(data, dict):
        return _JsonDict({k: sanitize_user_json(v) for k, v in data.items()})
    if isinstance(data, list):
        return _JsonList(sanitize_user_json(v) for v in data)
    if isinstance(data, str):
        return json.dumps(data)
    if isinstance(data, (int, float)):
        return data
    if data is None:
        return "null"
    raise VariablesRefused(f"{type(data).__name__} is not a valid user config option type")


def shell_escape(val: Any) -> Any:
    """Globus's ``shell_escape`` filter: a (serialized) string made one shell word, still
    serialized so YAML keeps its quotes (``ls {{ opts|shell_escape }}`` -> ``"ls '-lh; rm'"``).
    Not a string: unchanged. A string that is not serialized (the admin's own, a reserved
    value, where Globus fails) is quoted the same way."""
    if not isinstance(val, str):
        return val
    try:
        loaded = json.loads(val)
    except ValueError:
        return json.dumps(shlex.quote(val))
    if not isinstance(loaded, str):
        return val
    return json.dumps(shlex.quote(loaded))


# -- the reserved variables -------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def user_runtime() -> dict:
    """``user_runtime`` with Globus's fields (``globus_compute_sdk/sdk/batch.py``). Globus's SDK
    sends the submitter's; here it is the Python and host the user endpoint runs on (it runs
    this interpreter; a client of another Python minor version gets its tasks refused anyway).
    ``globus_compute_sdk_version`` is faas's version; there is no Globus SDK (None)."""
    from ... import __version__
    return json.loads(json.dumps({
        "globus_compute_sdk_version": __version__,
        "globus_sdk_version": None,
        "python_version": sys.version,
        "python": {"version": platform.python_version(), "version_description": sys.version,
                   "version_tuple": sys.version_info[:3], "version_info": tuple(sys.version_info),
                   "implementation": platform.python_implementation(), "compiler": platform.python_compiler()},
        "platform": {"architecture": platform.architecture(), "machine": platform.machine(),
                     "node": platform.node(), "platform": platform.platform(),
                     "processor": platform.processor(), "release": platform.release()},
    }))


def mapped_identity(uname: str, uid: int, home: str, identity: str | None = None) -> dict:
    """Globus's ``mapped_identity``: the account (from the password database) and, as
    ``globus.id``, the id of the identity that mapped to it (mapping.identity_document)."""
    try:
        pw = pwd.getpwnam(uname)
        gid, gecos, shell, home = pw.pw_gid, pw.pw_gecos, pw.pw_shell, pw.pw_dir
        groups = os.getgrouplist(uname, gid)
    except KeyError:   # no such account (a render for a name that does not exist here)
        gid, gecos, shell, groups = None, None, None, []
    return {"local": {"uname": uname, "uid": uid, "gid": gid, "gecos": gecos, "shell": shell,
                      "dir": home, "groups": groups},
            "globus": {"id": identity_document(identity)["id"] if identity else None}}


def reserved(endpoint_name: str, uname: str, uid: int, home: str, provider: str = "local", *,
             parent_config: Any = None, identity: str | None = None, runtime: dict | None = None) -> dict:
    """What the template sees beside the user's variables (``render`` lays it out as ``_GC``, the
    deprecated bare names, and ``_faas``). ``runtime`` replaces ``user_runtime()`` (tests, the
    render command). ``provider`` is ``_faas.provider``: the router, whose config has no engine,
    leaves it ``local``, for the templates ``configure --multi-user`` wrote for the local provider
    before it wrote the provider's name into them."""
    v = sys.version_info
    ident = mapped_identity(uname, uid, home, identity)
    return {"parent_config": parent_config, "mapped_identity": ident,
            "user_runtime": user_runtime() if runtime is None else runtime,
            "endpoint_name": endpoint_name, "provider": provider,
            "python": {"version": f"{v.major}.{v.minor}.{v.micro}", "minor": f"{v.major}.{v.minor}"}}


class _Deprecated:
    """A reserved variable reached without ``_GC.``: works, and says once per render that it is
    deprecated (Globus's ``DeprecatedTemplateVar``)."""

    def __init__(self, name: str, data: Any):
        self._name, self._data, self._warned = name, data, False

    def _warn(self) -> None:
        if not self._warned:
            self._warned = True
            log.warning("Template access to `%s` is deprecated; access via `_GC` instead.  (i.e., _GC.%s)",
                        self._name, self._name)

    def __getattr__(self, key: str):
        if key.startswith("_"):
            raise AttributeError(key)
        self._warn()
        d = self._data
        if not d:
            return None
        try:
            return d[key]
        except TypeError:
            return getattr(d, key)
        except LookupError:
            raise AttributeError(key) from None

    def __bool__(self) -> bool:
        self._warn()
        return bool(self._data)

    def __str__(self) -> str:
        self._warn()
        return str(self._data)


def _namespace(variables: dict, reserved_vars: dict) -> dict:
    gc = {"parent_config": reserved_vars.get("parent_config"),
          "mapped_identity": reserved_vars.get("mapped_identity"),
          "user_runtime": sanitize_user_json(reserved_vars.get("user_runtime") or {})}
    ident = gc["mapped_identity"] or {}
    faas_vars = {"endpoint_name": reserved_vars.get("endpoint_name"), "provider": reserved_vars.get("provider"),
                 "python": reserved_vars.get("python"),
                 "mapped_identity": {**ident, "local": {**ident.get("local", {}),
                                                        "home": ident.get("local", {}).get("dir")}}}
    ns = dict(sanitize_user_json(variables))
    ns.update({name: _Deprecated(name, value) for name, value in gc.items()})
    ns.update(_GC=gc, _faas=faas_vars)
    return ns


def _environment(template_path: str) -> ImmutableSandboxedEnvironment:
    """Jinja's sandbox (immutable: root renders, where Globus renders as the user), strict about
    undefined variables; templates it includes come from the template's own folder."""
    folder = Path(template_path).parent
    loader = FileSystemLoader(str(folder)) if Path(template_path).is_absolute() and folder.is_dir() else None
    env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, loader=loader, autoescape=False)
    env.filters["shell_escape"] = shell_escape
    return env


def render(template_text: str, variables: dict, reserved_vars: dict, template_path: str = "template") -> str:
    """The template rendered with the user's (checked) variables; ConfigError saying why not."""
    try:
        namespace = _namespace(variables, reserved_vars)
        return _environment(template_path).from_string(template_text).render(namespace)
    except ConfigError:   # a value of a type no user may send (sanitize_user_json): as it is
        raise
    except UndefinedError as e:
        raise ConfigError(f"{template_path}: rendering failed: UndefinedError: {e} (a variable the template "
                          f"uses without `| default(...)`: send it in user_endpoint_config)") from None
    except (TemplateError, ArithmeticError, LookupError, TypeError, ValueError) as e:   # the template's code
        raise ConfigError(f"{template_path}: rendering failed: {type(e).__name__}: {e}") from None
    except (RecursionError, MemoryError) as e:   # a template (or values) too deep or too big to render
        raise ConfigError(f"{template_path}: rendering failed: {type(e).__name__} (the template or the "
                          f"variables are nested too deep or too large)") from None


def _drop_none(value: Any) -> Any:
    """A key rendered empty (``worker_init: {{ worker_init|default() }}``) means its default."""
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    return value


def _capped(value: Any, cap: int) -> Any:
    """``value`` as a number of blocks at most ``cap``; left as it is when it is none (the
    validation then names it)."""
    try:
        return min(int(value), cap)
    except (TypeError, ValueError):
        return value


def user_config(template_text: str, variables: dict, reserved_vars: dict, *, store: str,
                max_blocks: int, allowed_functions: list[str] | None,
                template_path: str = "template", check: bool = True) -> dict:
    """Render and validate: the config.yaml (as a dict) of one user endpoint, as the template
    wrote it (its Globus keys too: the user endpoint lists those with no effect in its log). The
    endpoint, not the template, decides the store, the queue and the limits. ``check=False``
    leaves :func:`check_user_config` to the caller (a template snippet rendered alone)."""
    text = render(template_text, variables, reserved_vars, template_path)
    try:
        raw = ep_config.yaml_load(text) or {}   # as the user endpoint's loader reads it (YAML 1.2 numbers)
    except yaml.YAMLError as e:
        raise ConfigError(f"{template_path}: the rendered config is not valid YAML: {e}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{template_path}: the rendered config is not a mapping of keys")
    raw = _drop_none(raw)
    for key in ("signing_keys", "signing_keys_file", "queue", "store", *MULTI_USER_KEYS):
        raw.pop(key, None)
    raw["store"], raw["queue"] = store, "local"
    if allowed_functions is not None:
        raw["allowed_functions"] = list(allowed_functions)
    provider = (raw.setdefault("engine", {}).setdefault("provider", {})
                if isinstance(raw.get("engine", {}), dict) else None)
    if isinstance(provider, dict):
        provider["max_blocks"] = _capped(provider.get("max_blocks", 1), max_blocks)
        cap = provider["max_blocks"] if isinstance(provider["max_blocks"], int) else max_blocks
        provider["init_blocks"] = _capped(provider.get("init_blocks", 0), cap)
        provider["min_blocks"] = _capped(provider.get("min_blocks", 0), cap)
    if check:
        check_user_config(raw, template_path)
    return raw


def check_user_config(raw: dict, template_path: str = "template") -> None:
    """VariablesRefused unless ``raw`` would start a user endpoint: what its own loader makes of it
    (Globus's keys included)."""
    try:
        ep_config.UserEndpointConfig.model_validate(copy.deepcopy(raw))
    except ValidationError as e:
        raise VariablesRefused(ep_config.describe_errors(e, f"{template_path} (rendered)")) from None
