"""The site's flows config (``faas flows serve --config``, ``faas actions serve --config``,
``faas.flows.run(..., config=)``), checked once when it is loaded: a misspelt key would
otherwise do nothing, silently, and several of its keys are the site's security settings
(``transfer.allow_urls``, ``http_allow_any_url``, ``notify.recipients``...). The actions read the
checked mapping as it was written (:class:`faas.flows.actions.ActionContext`'s ``config``)."""
from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, ValidationError

from faas.config import describe_validation
from faas.exceptions import ConfigError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)   # "yes" is no boolean here


class Transfer(_Section):
    #: raw URLs as endpoint ids: true, false, or unset (only in runs of the runner's own account)
    allow_urls: bool | None = None


class Compute(_Section):
    profile: str | None = None
    store: str | None = None
    home: str | None = None
    #: Globus endpoint ids -> faas endpoint names
    endpoints: dict[str, str] = {}
    #: the endpoints (names, or ids listed under ``endpoints``) that runs of other users than the
    #: runner's own account may send tasks to; unset: none (each would run as the runner's faas
    #: identity, signed with its keys, on whatever account those endpoints run as); "*": any
    allowed_endpoints: list[str] | None = None


class Smtp(_Section):
    host: str
    port: int | None = None
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = None
    password_env: str | None = None
    sender: str | None = None
    timeout: float | None = None
    ca_file: str | None = None


class Notify(_Section):
    smtp: Smtp | None = None
    recipients: list[str] | None = None
    senders: list[str] | None = None
    allow_body_credentials: bool = False


class HttpToken(_Section):
    token: str | None = None


class SiteConfig(_Section):
    #: collection name (or a Globus collection UUID) -> base URL
    collections: dict[str, str] = {}
    transfer: Transfer = Transfer()
    compute: Compute = Compute()
    #: Action Provider URL prefix -> its bearer token ({token: ...}, a bare string, or {})
    http: dict[str, HttpToken | str] = {}
    http_allow_any_url: bool = False
    notify: Notify = Notify()
    #: collection -> the users and groups who may set permissions there
    permission_managers: dict[str, list[str]] = {}
    #: identity mapping rules (Globus's JSON) for set_permission's identities
    identity_mapping: Any = None
    #: group principal -> local group name
    groups: dict[str, str] = {}


def _model_at(loc: tuple[str, ...]) -> type[BaseModel]:
    """The section model at ``loc`` (``("notify", "smtp")`` -> Smtp), for did-you-mean."""
    model: type[BaseModel] = SiteConfig
    for part in loc:
        field = model.model_fields.get(part)
        if field is None:
            break
        inner = [a for a in (get_args(field.annotation) or (field.annotation,))
                 if isinstance(a, type) and issubclass(a, BaseModel)]
        if not inner:
            break
        model = inner[0]
    return model


def check(config: Any, where: str) -> dict:
    """``config`` if it is a valid site flows config, else ConfigError naming ``where`` (the
    file, or the argument), each bad key and what was expected."""
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise ConfigError(f"{where}: expected a mapping (collections:, transfer:, compute:, http:, "
                          f"notify:, ...), got {type(config).__name__}")
    try:
        SiteConfig.model_validate(config)
    except ValidationError as e:
        raise ConfigError(describe_validation(e, where, known=lambda loc: _model_at(loc[:-1]).model_fields)
                          + "\n  (the site's flows config; keys: docs/flows-actions.md)") from None
    return config
