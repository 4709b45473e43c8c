"""``$FAAS_HOME/endpoints/NAME/config.yaml``: the keys Globus Compute and Parsl users know
(engine + provider + launcher), validated with errors that name the file, the key and what was
expected."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal, Optional, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..config import describe_validation, faas_home
from ..exceptions import ConfigError, EndpointNotFound

NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$"

# Globus Compute / Parsl spellings accepted as synonyms.
_PROVIDER_ALIASES = {"LocalProvider": "local", "SlurmProvider": "slurm", "PBSProProvider": "pbs",
                     "TorqueProvider": "pbs", "PBSProvider": "pbs"}
_LAUNCHER_ALIASES = {"SingleNodeLauncher": "single_node", "SimpleLauncher": "single_node",
                     "SrunLauncher": "srun", "MpiExecLauncher": "mpiexec"}
_WALLTIME = re.compile(r"^(?:(\d+)-)?(\d+):(\d\d):(\d\d)$")


def walltime_seconds(text: str) -> int:
    """``[D-]HH:MM:SS`` in seconds (two-field forms are refused: Slurm reads ``10:00`` as
    minutes:seconds, PBS as hours:minutes)."""
    m = _WALLTIME.match(str(text).strip())
    if not m:
        raise ValueError(f"expected a walltime like 01:30:00 or 2-00:00:00, got {text!r}")
    days, hours, minutes, seconds = (int(g or 0) for g in m.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LauncherConfig(_Strict):
    """How a block starts one worker pool on each of its nodes."""

    type: Literal["single_node", "srun", "mpiexec"] = "single_node"
    #: extra options for srun / mpiexec (e.g. ``--cpu-bind=none``)
    overrides: str = ""

    @field_validator("type", mode="before")
    @classmethod
    def _alias(cls, v):
        return _LAUNCHER_ALIASES.get(v, v)


class ProviderConfig(_Strict):
    type: Literal["local", "slurm", "pbs"] = "local"
    init_blocks: int = Field(1, ge=0)
    min_blocks: int = Field(0, ge=0)
    max_blocks: int = Field(1, ge=1)
    nodes_per_block: int = Field(1, ge=1)
    #: share of the backlog to cover with new blocks (1: a worker per queued task; 0.5: half)
    parallelism: float = Field(1.0, gt=0, le=1)
    #: job time limit, ``HH:MM:SS`` or ``D-HH:MM:SS``; pools drain before it
    walltime: Optional[str] = None
    #: seconds before the walltime at which a pool stops taking tasks and hands back what it holds
    walltime_margin: float = Field(60.0, ge=0)
    partition: Optional[str] = None        # Slurm
    queue: Optional[str] = None            # PBS
    account: Optional[str] = None
    qos: Optional[str] = None
    constraint: Optional[str] = None
    cores_per_node: Optional[int] = Field(None, ge=1)
    #: memory per node in GB
    mem_per_node: Optional[float] = Field(None, gt=0)
    gpus_per_node: Optional[int] = Field(None, ge=0)
    exclusive: bool = False
    #: extra lines for the submit script's header (``#SBATCH ...`` / ``#PBS ...``)
    scheduler_options: str = ""
    #: shell lines run before the pool starts (``module load ...; conda activate ...``)
    worker_init: str = ""
    #: seconds a scheduler command (sbatch, squeue, qsub, ...) may take before it counts as failed
    cmd_timeout: float = Field(30.0, gt=0)
    launcher: LauncherConfig = LauncherConfig()

    @field_validator("type", mode="before")
    @classmethod
    def _alias(cls, v):
        return _PROVIDER_ALIASES.get(v, v)

    @field_validator("walltime", mode="before")
    @classmethod
    def _walltime(cls, v):
        if v is not None:
            v = str(v)
            walltime_seconds(v)
        return v

    @model_validator(mode="after")
    def _blocks(self):
        if self.min_blocks > self.max_blocks:
            raise ValueError(f"min_blocks ({self.min_blocks}) must be <= max_blocks ({self.max_blocks})")
        if self.init_blocks > self.max_blocks:
            raise ValueError(f"init_blocks ({self.init_blocks}) must be <= max_blocks ({self.max_blocks})")
        if self.nodes_per_block > 1 and self.launcher.type == "single_node":
            raise ValueError("nodes_per_block > 1 needs a multi-node launcher (launcher: {type: srun} "
                             "or {type: mpiexec})")
        if self.walltime is not None and walltime_seconds(self.walltime) <= self.walltime_margin:
            raise ValueError(f"walltime ({self.walltime}) must be longer than walltime_margin "
                             f"({self.walltime_margin} s)")
        return self

    @property
    def walltime_s(self) -> Optional[int]:
        return walltime_seconds(self.walltime) if self.walltime else None


class EngineConfig(_Strict):
    type: str = "faas"
    max_workers_per_node: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    #: tasks a pool holds beyond its workers, so none waits on the queue; -1: about 0.1 s of
    #: work per worker, learnt from run times (long tasks spread over blocks instead)
    prefetch: int = Field(-1, ge=-1)
    #: seconds a pool with nothing to do waits before it exits (its block ends)
    max_idle_time: float = Field(120.0, ge=0)
    #: accelerator ids, one per worker (CUDA_VISIBLE_DEVICES); an int N means 0..N-1.
    #: Caps the workers per node at their number.
    available_accelerators: Union[int, list[str], None] = None
    #: address-space limit of each worker process in MB (a runaway task gets MemoryError
    #: instead of taking the node down); None: no limit
    worker_memory_limit_mb: Optional[int] = Field(None, ge=64)
    container_type: Literal["none", "podman", "apptainer", "singularity", "docker"] = "none"
    #: image name, or for podman a root filesystem folder
    container_uri: Optional[str] = None
    #: extra options for the container runtime's ``run`` (e.g. ``-v /scratch:/scratch``)
    container_cmd_options: str = ""
    provider: ProviderConfig = ProviderConfig()

    @field_validator("available_accelerators")
    @classmethod
    def _accelerators(cls, v):
        if isinstance(v, int):
            if v < 0:
                raise ValueError("expected a number of accelerators >= 0 or a list of ids")
            return [str(i) for i in range(v)]
        return [str(x) for x in v] if v is not None else None

    @model_validator(mode="after")
    def _container(self):
        if self.container_type != "none" and not self.container_uri:
            raise ValueError(f"container_type {self.container_type!r} needs container_uri "
                             f"(an image name, or a rootfs folder for podman)")
        return self

    @property
    def workers_per_node(self) -> int:
        if self.available_accelerators:
            return min(self.max_workers_per_node, len(self.available_accelerators))
        return self.max_workers_per_node


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
    #: seconds a pool's or daemon's loop (receiver, outbox, monitor, main, daemon step) may go
    #: without progress before it is logged with every thread's stack and the process is
    #: stopped and replaced: a stall is never silent
    stall_timeout: float = Field(120.0, ge=1)
    #: file of ``ID:SECRET`` task-signing keys, one per line (relative to the endpoint's folder);
    #: keys can also come from ``signing_keys`` or $FAAS_SIGNING_KEYS. With any key, unsigned,
    #: wrongly signed or expired tasks never run.
    signing_keys_file: Optional[str] = None
    signing_keys: list[str] = []
    #: function ids that may run here (None: any); anything else fails with FunctionNotAllowed
    allowed_functions: Optional[list[str]] = None
    #: serializers whose payloads a worker will load
    allowed_serializers: list[Literal["dill"]] = ["dill"]
    engine: EngineConfig = EngineConfig()
    # -- multi-user endpoints (used when root starts an endpoint configured with --multi-user;
    #    see faas/endpoint/multiuser and docs/multi-user.md) -----------------------------------
    #: identity mapping rules (JSON, Globus format), relative to the endpoint's folder
    identity_mapping_path: str = "identity_mapping.json"
    #: local account names or identity patterns (``local:*``, ``arn:aws:iam::123:user/*``)
    #: allowed to run here (None: anyone who maps); denied_users wins over allowed_users
    allowed_users: Optional[list[str]] = None
    denied_users: list[str] = []
    #: running user endpoints at once, over all users (one per user and variable set)
    max_user_endpoints: int = Field(64, ge=1)
    #: caps engine.provider.max_blocks of every user endpoint
    max_blocks_per_user: int = Field(1, ge=1)
    #: what a task over a limit gets: wait in the spool until there is room, or refuse
    over_limit: Literal["wait", "refuse"] = "wait"
    #: seconds without tasks after which a user endpoint stops (it comes back with the next task)
    user_endpoint_idle_timeout: float = Field(300.0, gt=0)
    #: one line per task (time, identity, mapped user, function id, outcome), relative to the
    #: endpoint's folder or absolute
    audit_log_path: str = "audit.log"

    @field_validator("store")
    @classmethod
    def _store(cls, v: str):
        if "://" not in v and not v.startswith("/"):
            raise ValueError("expected a store URL such as file:///abs/path or s3://bucket/prefix")
        return v if "://" in v else Path(v).as_uri()

    def keyring(self, endpoint_dir: Path) -> dict:
        """Every key this endpoint accepts (file, config, $FAAS_SIGNING_KEYS); may be empty."""
        from .. import signing
        keys = signing.parse_keys(self.signing_keys, "signing_keys in config.yaml")
        if self.signing_keys_file:
            keys.update(signing.read_key_file(endpoint_dir / self.signing_keys_file))
        if os.environ.get("FAAS_SIGNING_KEYS"):
            keys.update(signing.parse_keys(os.environ["FAAS_SIGNING_KEYS"], "$FAAS_SIGNING_KEYS"))
        return keys

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
