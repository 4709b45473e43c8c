"""``$FAAS_HOME/endpoints/NAME/config.yaml``: the keys Globus Compute and Parsl users know
(engine + provider + launcher), validated with errors that name the file, the key and what was
expected."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..config import describe_validation, faas_home
from ..exceptions import ConfigError, EndpointNotFound

NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$"

# Globus Compute / Parsl spellings accepted as synonyms.
_PROVIDER_ALIASES = {"LocalProvider": "local"}
_LAUNCHER_ALIASES = {"SingleNodeLauncher": "single_node", "SimpleLauncher": "single_node"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LauncherConfig(_Strict):
    type: Literal["single_node"] = "single_node"

    @field_validator("type", mode="before")
    @classmethod
    def _alias(cls, v):
        return _LAUNCHER_ALIASES.get(v, v)


class ProviderConfig(_Strict):
    type: Literal["local"] = "local"
    init_blocks: int = Field(1, ge=0)
    min_blocks: int = Field(0, ge=0)
    max_blocks: int = Field(1, ge=1)
    nodes_per_block: int = Field(1, ge=1)
    worker_init: str = ""
    launcher: LauncherConfig = LauncherConfig()

    @field_validator("type", mode="before")
    @classmethod
    def _alias(cls, v):
        return _PROVIDER_ALIASES.get(v, v)

    @model_validator(mode="after")
    def _blocks(self):
        if self.min_blocks > self.max_blocks:
            raise ValueError(f"min_blocks ({self.min_blocks}) must be <= max_blocks ({self.max_blocks})")
        if self.init_blocks > self.max_blocks:
            raise ValueError(f"init_blocks ({self.init_blocks}) must be <= max_blocks ({self.max_blocks})")
        return self


class EngineConfig(_Strict):
    type: str = "faas"
    max_workers_per_node: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    #: tasks a pool holds beyond its workers, so none waits on the queue; -1: about 0.1 s of
    #: work per worker, learnt from run times (long tasks spread over blocks instead)
    prefetch: int = Field(-1, ge=-1)
    #: seconds a pool with nothing to do waits before it exits (its block ends)
    max_idle_time: float = Field(120.0, ge=0)
    provider: ProviderConfig = ProviderConfig()


class EndpointConfig(_Strict):
    display_name: Optional[str] = None
    #: fsspec URL of the store clients use (file:///..., s3://bucket/prefix)
    store: str
    #: ``local``, ``sqs``, or a full queue URL
    queue: str = "local"
    max_receives: int = Field(5, ge=1, le=1000)
    visibility_timeout: float = Field(60.0, ge=2, le=43200)
    #: seconds between scaling decisions of the daemon
    strategy_period: float = Field(1.0, gt=0)
    #: seconds a stopping pool lets running tasks finish before it hands them back
    stop_grace: float = Field(30.0, ge=0)
    engine: EngineConfig = EngineConfig()

    @field_validator("store")
    @classmethod
    def _store(cls, v: str):
        if "://" not in v and not v.startswith("/"):
            raise ValueError("expected a store URL such as file:///abs/path or s3://bucket/prefix")
        return v if "://" in v else Path(v).as_uri()

    def queue_url(self, name: str, home: Path) -> str:
        if self.queue == "local":
            return f"local://{home / 'queues'}/{name}"
        if self.queue == "sqs":
            return f"sqs://faas-{name}"
        return self.queue


def endpoint_dir(name: str, home: Path | None = None) -> Path:
    return faas_home(home) / "endpoints" / name


def check_name(name: str) -> str:
    import re
    if not re.match(NAME_RE, name or ""):
        raise ConfigError(f"endpoint name {name!r}: use 1-63 letters, digits, '-' or '_', "
                          f"starting with a letter or digit")
    return name


def load(path: Path) -> EndpointConfig:
    """Read and validate a config.yaml; every error names the file and the key."""
    if not path.exists():
        raise EndpointNotFound(f"no endpoint configured at {path.parent}: {path} does not exist; "
                               f"run `faas endpoint configure {path.parent.name}`")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}:{where}: not valid YAML: {getattr(e, 'problem', e)}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of keys (store:, engine:, ...), "
                          f"got {type(raw).__name__}")
    try:
        return EndpointConfig.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(describe_validation(e, str(path)) +
                          "\n  (keys and defaults: `faas endpoint configure --help` and README)") from None


def write(path: Path, cfg: EndpointConfig) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = cfg.model_dump(exclude_none=True)
    tmp = path.with_suffix(".yaml.tmp")
    tmp.write_text("# faas endpoint configuration; keys are documented in the README\n" +
                   yaml.safe_dump(data, sort_keys=False))
    os.replace(tmp, path)
