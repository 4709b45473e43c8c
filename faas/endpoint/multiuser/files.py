"""The files beside a multi-user endpoint's config.yaml: written by ``faas endpoint configure NAME
--multi-user``, read (and validated) by the router and the admin commands."""
from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path

import yaml

from ...exceptions import ConfigError
from ..config import MULTI_USER_TEMPLATE as TEMPLATE
from .mapping import DEFAULT_MAPPING, check_owner_safe

SCHEMA = "user_config_schema.json"
MAPPING = "identity_mapping.json"
ENVIRONMENT = "user_environment.yaml"
#: per-identity signing keys the administrator registered (S3/SQS transport): {identity: [ID:SECRET]}
USER_KEYS = "user_signing_keys.json"
#: the router's record of its user endpoints (written by the router, read by ``faas endpoint stop``)
STATE = "user_endpoints.json"
#: ``ENV`` variables a user endpoint's environment may not set
FORBIDDEN_ENV = ("HOME", "USER", "PWD", "LOGNAME", "FAAS_HOME")


def _default(name: str) -> str:
    return resources.files(__package__).joinpath(f"default_{name}").read_text()


def write_defaults(endpoint_dir: Path, provider: str = "local", overwrite: bool = False) -> list[Path]:
    """Write the four files (those already there are kept unless ``overwrite``); mode 644, the
    folder 755: they decide who runs as whom, so only their owner (root) may change them."""
    endpoint_dir.mkdir(parents=True, exist_ok=True)
    # the template names its provider (config.yaml, a ManagerEndpointConfig, has no engine to ask)
    template = _default("user_config_template.yaml.j2").replace("type: {{ _faas.provider }}", f"type: {provider}")
    contents = {TEMPLATE: template, SCHEMA: _default("user_config_schema.json"),
                MAPPING: json.dumps(DEFAULT_MAPPING, indent=2) + "\n",
                ENVIRONMENT: _default("user_environment.yaml")}
    written = []
    for name, text in contents.items():
        path = endpoint_dir / name
        if path.exists() and not overwrite:
            continue
        path.write_text(text)
        os.chmod(path, 0o644)
        written.append(path)
    return written


def read_template(endpoint_dir: Path) -> str:
    path = endpoint_dir / TEMPLATE
    try:
        check_owner_safe(path)
        return path.read_text()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the user config template: {e.strerror}; "
                          f"`faas endpoint configure {endpoint_dir.name} --multi-user` writes one") from None


def read_environment(endpoint_dir: Path) -> dict[str, str]:
    path = endpoint_dir / ENVIRONMENT
    if not path.exists():
        return {}
    check_owner_safe(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of NAME: value")
    env = {}
    for k, v in raw.items():
        if not isinstance(k, str) or not k or "=" in k:
            raise ConfigError(f"{path}: {k!r}: not an environment variable name")
        if k in FORBIDDEN_ENV:
            raise ConfigError(f"{path}: {k}: cannot be set (the endpoint sets {', '.join(FORBIDDEN_ENV)} "
                              f"for each user)")
        if isinstance(v, (dict, list)) or v is None:
            raise ConfigError(f"{path}: {k}: expected a string or number, got {type(v).__name__}")
        env[k] = str(v)
    return env


def read_user_keys(endpoint_dir: Path) -> dict:
    """{key id: (identity, Key)} from ``user_signing_keys.json`` ({identity: ["ID:SECRET", ...]})."""
    from ... import private_files, signing
    path = endpoint_dir / USER_KEYS
    if not os.path.lexists(path):
        return {}
    text = private_files.read(path, "per-user signing keys")   # decides who runs as whom: 600, root's
    try:
        raw = json.loads(text)
    except ValueError as e:
        raise ConfigError(f"{path}: not valid JSON: {e}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected {{\"IDENTITY\": [\"ID:SECRET\", ...]}}")
    out = {}
    for identity, keys in raw.items():
        for k in signing.parse_keys(keys if isinstance(keys, list) else [keys], f"{path}: {identity}").values():
            if k.id in out:
                raise ConfigError(f"{path}: key id {k.id!r} is registered twice; key ids must be unique")
            out[k.id] = (identity, k)
    return out
