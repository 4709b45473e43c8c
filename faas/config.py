"""Client configuration, resolved like boto3's: explicit arguments, then ``FAAS_*`` environment
variables, then a named profile in ``$FAAS_HOME/config`` (INI: ``[default]``, ``[profile NAME]``).
AWS credentials are boto3's business; nothing here stores them.
"""
from __future__ import annotations

import configparser
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from pydantic import ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from .exceptions import ConfigError

# -- how much of an object a reader takes from the store ---------------------------------------
# The store is shared ground (faas.sealing): anyone with bucket write can plant an object,
# however large, where a reader looks. Where no authenticated size is at hand (a result read
# without its sealed done notice: get_result/get_task of a task another process sent,
# reload_tasks, the console; a function, whose id is only checked after the read), the read is
# capped by these. 256 MiB: far above what Globus Compute allows a result (10 MiB,
# MaxResultSizeExceeded), so results that worked there work here, and still small enough that a
# planted object costs a notebook or a worker a bounded, survivable read. Bigger data belongs in
# a transfer (faas.flows' Transfer action), or raise the limit on both sides.
DEFAULT_MAX_RESULT_BYTES = 256 << 20
#: a function's dill bytes; a closure over a large array is better passed as an argument
DEFAULT_MAX_FUNCTION_BYTES = 64 << 20


def size_limit(name: str) -> int:
    """``max_result_bytes`` or ``max_function_bytes`` from ``FAAS_<NAME>``, else the default: for
    the endpoint's side (worker pools), which has no client Settings."""
    default = {"max_result_bytes": DEFAULT_MAX_RESULT_BYTES,
               "max_function_bytes": DEFAULT_MAX_FUNCTION_BYTES}[name]
    var = f"FAAS_{name.upper()}"
    text = os.environ.get(var)
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"{var}={text!r}: expected a number of bytes (default {default})") from None
    if value <= 0:
        raise ConfigError(f"{var}={text!r}: expected a positive number of bytes (default {default})")
    return value


def read_json(path: Path, what: str, hint: str = "") -> Any:
    """A JSON file's content; otherwise a ConfigError naming the file and what it should hold."""
    try:
        return json.loads(Path(path).read_text())
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the {what}: {e.strerror or e}") from None
    except ValueError as e:
        raise ConfigError(f"{path}: not valid JSON ({e}){hint}") from None


def faas_home(explicit: str | os.PathLike | None = None) -> Path:
    return Path(explicit or os.environ.get("FAAS_HOME") or Path.home() / ".faas").expanduser()


class _ProfileSource(PydanticBaseSettingsSource):
    """Values from the profile section of ``$FAAS_HOME/config``; below init args and env."""

    def __init__(self, settings_cls, init_kwargs: dict):
        super().__init__(settings_cls)
        home = faas_home(init_kwargs.get("home"))
        self.path = home / "config"
        self.profile = init_kwargs.get("profile") or os.environ.get("FAAS_PROFILE") or "default"

    def get_field_value(self, field, field_name):  # required by the ABC; __call__ does the work
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        if not self.path.exists():
            if self.profile != "default":
                raise ConfigError(f"profile {self.profile!r} not found: {self.path} does not exist "
                                  f"(create it with a [profile {self.profile}] section)")
            return {}
        cp = configparser.ConfigParser()
        try:
            cp.read(self.path)
        except configparser.Error as e:
            raise ConfigError(f"{self.path}: cannot parse: {e}") from None
        section = "default" if self.profile == "default" else f"profile {self.profile}"
        if not cp.has_section(section):
            if self.profile == "default":
                return {}
            raise ConfigError(f"profile {self.profile!r} not found in {self.path}; "
                              f"sections there: {', '.join(cp.sections()) or 'none'}")
        values = dict(cp.items(section))
        known = set(self.settings_cls.model_fields)
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"{self.path} [{section}]: unknown key(s) {', '.join(unknown)}; "
                              f"expected some of {', '.join(sorted(known - {'profile'}))}")
        return values


class Settings(BaseSettings):
    """Resolved client settings. ``store`` defaults to the embedded store under ``home``."""

    model_config = SettingsConfigDict(env_prefix="FAAS_", extra="forbid")

    profile: str | None = None
    home: Path = Path.home() / ".faas"
    store: str | None = None
    endpoint: str = "local"
    #: name prefix of per-client SQS reply queues (IAM policies can scope to it)
    reply_queue_prefix: str = "faas-reply-"
    #: start the embedded ``local`` endpoint when it is not running
    autostart: bool = True
    #: ``ID:SECRET`` key that signs task messages (the endpoint must hold the same key)
    signing_key: str | None = None
    #: URL-safe base64 secret that proves results come from the endpoint that ran your task
    #: (default: ``$FAAS_HOME/result.key``, made on first use, mode 600; see faas.sealing)
    result_key: str | None = None
    #: seconds after sending that a task may still start (a replay after that never runs)
    task_ttl: float = 14 * 24 * 3600.0
    #: the most bytes read of a result no sealed notice announced, and the largest result an
    #: endpoint stores (FAAS_MAX_RESULT_BYTES; see DEFAULT_MAX_RESULT_BYTES for why this default)
    max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES
    #: the largest function (its serialized bytes) a client stores and a worker reads
    max_function_bytes: int = DEFAULT_MAX_FUNCTION_BYTES
    #: seconds after sending a task without its done notice before the client looks for its
    #: result in the store (a notice can be lost: another principal of a shared SQS role may
    #: take it from the reply queue), then at doubling intervals while the oldest are not done
    notice_grace: float = 60.0

    @field_validator("max_result_bytes", "max_function_bytes")
    @classmethod
    def _positive(cls, v: int) -> int:
        if v <= 0:
            raise ValueError("expected a positive number of bytes")
        return v

    @field_validator("notice_grace")
    @classmethod
    def _seconds(cls, v: float) -> float:
        if not v > 0:
            raise ValueError("expected a positive number of seconds")
        return v

    @field_validator("home", mode="before")
    @classmethod
    def _expand(cls, v):
        return Path(v).expanduser()

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings],
                                   init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings,
                _ProfileSource(settings_cls, getattr(init_settings, "init_kwargs", {})))

    @property
    def store_url(self) -> str:
        return self.store or (self.home / "store").as_uri()

    @property
    def is_embedded(self) -> bool:
        return self.store is None or self.store == (self.home / "store").as_uri()


def resolve(profile: str | None = None, **overrides: Any) -> Settings:
    kwargs = {k: v for k, v in overrides.items() if v is not None}
    if profile is not None:
        kwargs["profile"] = profile
    try:
        return Settings(**kwargs)
    except ValidationError as e:
        raise ConfigError(describe_validation(e, "client settings (arguments, FAAS_* variables, "
                                                 "or the profile in $FAAS_HOME/config)")) from None


def describe_validation(e: ValidationError, where: str, *,
                        place: Callable[[tuple[str, ...]], tuple[str, ...]] | None = None,
                        known: Callable[[tuple[str, ...]], Iterable[str]] | None = None) -> str:
    """One line per problem: the key path, what was expected, what was found. ``place``: the
    path a reader knows for pydantic's location of a problem (default: as it is); ``known``: for
    that location, the keys allowed beside it, so an unknown key gets the nearest as a
    did-you-mean."""
    import difflib
    lines = [f"{where}: {e.error_count()} problem(s)"]
    for err in e.errors():
        raw = tuple(str(p) for p in err["loc"])
        loc = place(raw) if place else raw
        msg, got, hint = err["msg"], err.get("input"), ""
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
            near = difflib.get_close_matches(loc[-1], list(known(raw)), n=1, cutoff=0.6) if known and loc else []
            hint = f"; did you mean {near[0]}?" if near else ""
        elif err["type"] == "missing":
            msg = "required key is missing"
        elif err["type"] == "value_error":
            msg = msg.removeprefix("Value error, ")
        shown = "" if err["type"] == "missing" or isinstance(got, dict) else f" (got {got!r})"
        lines.append(f"  {'.'.join(loc) or '(top level)'}: {msg}{shown}{hint}")
    return "\n".join(lines)
