"""``$FAAS_HOME/endpoints/NAME/config.yaml``: the keys Globus Compute and Parsl users know
(engine + provider + launcher), validated with errors that name the file, the key and what was
expected."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from ..config import faas_home
from ..exceptions import ConfigError, EndpointNotFound
from ..safe_open import replace_file
from . import from_globus

NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$"

# Globus Compute / Parsl spellings accepted as synonyms.
_PROVIDER_ALIASES = {"LocalProvider": "local", "SlurmProvider": "slurm", "PBSProProvider": "pbs",
                     "TorqueProvider": "pbs", "PBSProvider": "pbs"}
_LAUNCHER_ALIASES = {"SingleNodeLauncher": "single_node", "SimpleLauncher": "single_node",
                     "SrunLauncher": "srun", "MpiExecLauncher": "mpiexec"}
#: Slurm's time formats (sbatch --time): minutes, minutes:seconds, hours:minutes:seconds,
#: days-hours, days-hours:minutes, days-hours:minutes:seconds
_WALLTIME = re.compile(r"^(?:(?P<days>\d+)-(?P<dh>\d+)(?::(?P<dm>\d+)(?::(?P<ds>\d+))?)?"
                       r"|(?P<a>\d+)(?::(?P<b>\d+)(?::(?P<c>\d+))?)?)$")
#: Slurm's spellings of "no time limit"
NO_WALLTIME = ("UNLIMITED", "INFINITE", "-1", "0")


def walltime_seconds(text: str | int) -> int:
    """A walltime in any of Slurm's time formats, in seconds: ``30`` (minutes), ``30:00``
    (minutes:seconds), ``1:30:00``, ``2-0``, ``2-12:30``, ``2-12:30:00`` (days-hours...). A bare
    number is minutes, as Slurm reads it. Each provider renders it in its scheduler's format."""
    m = _WALLTIME.match(str(text).strip())
    if not m:
        raise ValueError(f"expected a walltime in one of Slurm's formats: minutes (30), minutes:seconds "
                         f"(30:00), hours:minutes:seconds (01:30:00), days-hours (2-0), days-hours:minutes "
                         f"(2-12:30) or days-hours:minutes:seconds (2-12:30:00); got {text!r}")
    g = {k: int(v) for k, v in m.groupdict().items() if v is not None}
    if "days" in g:
        return ((g["days"] * 24 + g["dh"]) * 60 + g.get("dm", 0)) * 60 + g.get("ds", 0)
    if "c" in g:
        return (g["a"] * 60 + g["b"]) * 60 + g["c"]
    return g["a"] * 60 + g.get("b", 0)


def hms(seconds: int) -> str:
    """``HH:MM:SS`` (hours may pass 24)."""
    h, rest = divmod(int(seconds), 3600)
    m, s = divmod(rest, 60)
    return f"{h:02d}:{m:02d}:{s:02d}"


def _available_memory_gb() -> float:
    """MemAvailable of this node (what Parsl's pool reads through psutil), in GB."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES") / 2**30


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


#: the provider types faas itself ships (others come from site plugins: faas.providers.register_provider)
BUILTIN_PROVIDERS = ("local", "slurm", "pbs")


def _plugin_provider_type(value: object) -> bool:
    """A provider ``type`` a site plugin registered (not one of faas's own)."""
    from ..providers import PROVIDERS
    kind = _PROVIDER_ALIASES.get(str(value), str(value))
    return kind not in BUILTIN_PROVIDERS and kind in PROVIDERS


class ProviderConfig(_Strict):
    type: str = "local"
    init_blocks: int = Field(1, ge=0)
    min_blocks: int = Field(0, ge=0)
    max_blocks: int = Field(1, ge=1)
    nodes_per_block: int = Field(1, ge=1)
    #: share of the backlog to cover with new blocks (1: a worker per queued task; 0.5: half)
    parallelism: float = Field(1.0, gt=0, le=1)
    #: job time limit in any of Slurm's formats (``01:30:00``, ``90``, ``2-12:00``, ...); each
    #: provider writes it in its scheduler's format; pools drain before it
    walltime: str | None = None
    #: seconds before the walltime at which a pool stops taking tasks and hands back what it holds
    walltime_margin: float = Field(60.0, ge=0)
    partition: str | None = None        # Slurm
    queue: str | None = None            # PBS
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    #: Slurm: the cluster(s) of a multi-cluster site (``--clusters``; every Slurm command gets it)
    clusters: str | None = None
    #: Slurm: generic resources per node (``--gres``, e.g. ``gpu:a100:4``)
    gres: str | None = None
    #: PBS: more of the chunk's resources, appended to ``-l select=`` (e.g. ``ngpus=4``)
    select_options: str = ""
    #: cores per node (Slurm --cpus-per-task, PBS ncpus; Globus's PBSProProvider calls it cpus_per_node)
    cores_per_node: int | None = Field(None, ge=1)
    #: memory per node in GB
    mem_per_node: float | None = Field(None, gt=0)
    gpus_per_node: int | None = Field(None, ge=0)
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
        v = _PROVIDER_ALIASES.get(v, v)
        if v in BUILTIN_PROVIDERS or (cls is PluginProviderConfig and _plugin_provider_type(v)):
            return v
        from ..providers import PROVIDERS
        plugins = [n for n in PROVIDERS.names() if n not in BUILTIN_PROVIDERS]
        raise ValueError("expected 'local' (LocalProvider), 'slurm' (SlurmProvider) or 'pbs' "
                         "(PBSProProvider, TorqueProvider)" +
                         (f", or one a site plugin registered ({', '.join(plugins)})" if plugins else
                          ": faas has no other provider (no Kubernetes, Condor, cloud or GridEngine "
                          "blocks) unless a site plugin registers one (faas.providers.register_provider)"))

    @field_validator("walltime", mode="before")
    @classmethod
    def _walltime(cls, v):
        if v is not None:
            v = str(v).strip()
            if v.upper() in NO_WALLTIME:   # Slurm's "no time limit"
                return None
            walltime_seconds(v)
        return v

    @model_validator(mode="after")
    def _blocks(self):
        if self.min_blocks > self.max_blocks:
            raise ValueError(f"min_blocks ({self.min_blocks}) must be <= max_blocks ({self.max_blocks})")
        if self.init_blocks > self.max_blocks:
            raise ValueError(f"init_blocks ({self.init_blocks}) must be <= max_blocks ({self.max_blocks})")
        # nodes_per_block > 1 with single_node: EngineConfig decides (GlobusMPIEngine wants it)
        if self.walltime is not None and walltime_seconds(self.walltime) <= self.walltime_margin:
            if "walltime_margin" in self.model_fields_set:
                raise ValueError(f"walltime ({self.walltime}) must be longer than walltime_margin "
                                 f"({self.walltime_margin} s)")
            # A short job (Globus's docs use a 1-minute test walltime) keeps three quarters of
            # its time for tasks rather than being refused for the default margin.
            self.walltime_margin = walltime_seconds(self.walltime) / 4
        return self

    @property
    def walltime_s(self) -> int | None:
        return walltime_seconds(self.walltime) if self.walltime else None


class PluginProviderConfig(ProviderConfig):
    """A provider a site plugin registered (``faas.providers.register_provider``): faas's common
    provider keys are checked as for its own providers; the plugin's own keys are kept as they
    are (``model_extra``) for the plugin's class to read."""

    model_config = ConfigDict(extra="allow")


class EngineConfig(_Strict):
    #: Globus Compute's engine names. GlobusComputeEngine: blocks of worker pools from the
    #: provider (``faas``, the old default, means it too). GlobusMPIEngine: one pool per block,
    #: on its first node (SimpleLauncher), running max_workers_per_block tasks at once, each
    #: given num_nodes of the block's nodes and a $PARSL_MPI_PREFIX for mpi_launcher.
    #: ThreadPoolEngine / ProcessPoolEngine: one always-on local block of max_workers worker
    #: processes (faas runs every task in a worker process, so ThreadPoolEngine's tasks do not
    #: share a process as Globus's threads do; both take no provider).
    type: str = "GlobusComputeEngine"
    max_workers_per_node: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    #: ThreadPoolEngine / ProcessPoolEngine: workers of their one block (default as Python's
    #: ThreadPoolExecutor: min(32, cores + 4); ProcessPoolExecutor: cores)
    max_workers: int | None = Field(None, ge=1)
    #: GlobusMPIEngine: the launcher in each task's $PARSL_MPI_PREFIX (default mpiexec; srun
    #: runs inside the block's Slurm job)
    mpi_launcher: Literal["mpiexec", "srun", "aprun"] | None = None
    #: GlobusMPIEngine: MPI tasks a block runs at once (default 1)
    max_workers_per_block: int | None = Field(None, ge=1)
    #: folder the tasks run in; relative to the endpoint's folder
    working_dir: str = "tasks_working_dir"
    #: run each task in working_dir/<task id> (its path in $GC_TASK_SANDBOX_DIR)
    run_in_sandbox: bool = False
    #: tasks a pool holds beyond its workers, so none waits on the queue; -1: about 0.1 s of
    #: work per worker, learnt from run times (long tasks spread over blocks instead)
    prefetch: int = Field(-1, ge=-1)
    #: seconds a pool with nothing to do waits before it exits (its block ends)
    max_idle_time: float = Field(120.0, ge=0)
    #: cores each worker needs: a node runs at most (its cores / cores_per_worker) workers
    #: (as Parsl's HighThroughputExecutor; < 1 oversubscribes)
    cores_per_worker: float | None = Field(None, gt=0)
    #: GB of memory each worker needs: a node runs at most (its available memory / mem_per_worker)
    mem_per_worker: float | None = Field(None, gt=0)
    #: accelerator ids, one per worker (CUDA_VISIBLE_DEVICES); an int N means 0..N-1.
    #: Caps the workers per node at their number.
    available_accelerators: int | list[str] | None = None
    #: address-space limit of each worker process in MB (a runaway task gets MemoryError
    #: instead of taking the node down); None: no limit
    worker_memory_limit_mb: int | None = Field(None, ge=64)
    container_type: Literal["none", "podman", "apptainer", "singularity", "docker"] = "none"
    #: image name, or for podman a root filesystem folder
    container_uri: str | None = None
    #: extra options for the container runtime's ``run`` (e.g. ``-v /scratch:/scratch``)
    container_cmd_options: str = ""
    provider: ProviderConfig = ProviderConfig()

    @field_validator("provider", mode="wrap")
    @classmethod
    def _plugin_provider(cls, v, handler):
        """A plugin's provider type: its own keys are the plugin's to read."""
        if isinstance(v, dict) and _plugin_provider_type(v.get("type")):
            return handler(PluginProviderConfig.model_validate(v))
        return handler(v)

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

    ENGINE_TYPES: ClassVar[tuple] = ("GlobusComputeEngine", "GlobusMPIEngine", "ProcessPoolEngine",
                                     "ThreadPoolEngine")

    @field_validator("type", mode="before")
    @classmethod
    def _engine_type(cls, v):
        if v == "faas":
            return "GlobusComputeEngine"
        if v in cls.ENGINE_TYPES:
            return v
        import difflib
        near = [t for t in cls.ENGINE_TYPES if str(v).lower() == t.lower()] or \
            difflib.get_close_matches(str(v), cls.ENGINE_TYPES, n=1, cutoff=0.5)
        raise ValueError(f"{v!r} is not a valid engine. Valid options are: "
                         f"{', '.join(cls.ENGINE_TYPES)}" + (f" (did you mean {near[0]}?)" if near else ""))

    @model_validator(mode="before")
    @classmethod
    def _mpi_keys_under_provider(cls, data):
        """Globus's MPI docs put max_workers_per_block under provider: take it from there."""
        if isinstance(data, dict) and data.get("type") == "GlobusMPIEngine" and \
                isinstance(data.get("provider"), dict) and "max_workers_per_block" in data["provider"]:
            data = dict(data, provider=dict(data["provider"]))
            moved = data["provider"].pop("max_workers_per_block")
            data.setdefault("max_workers_per_block", moved)
        return data

    @model_validator(mode="after")
    def _engine_shape(self):
        """Each engine's own keys, and how it maps onto blocks and pools (see ``type``)."""
        t, given, p = self.type, self.model_fields_set, self.provider
        for key, owners in (("mpi_launcher", ("GlobusMPIEngine",)),
                            ("max_workers_per_block", ("GlobusMPIEngine",)),
                            ("max_workers", ("ThreadPoolEngine", "ProcessPoolEngine"))):
            if getattr(self, key) is not None and t not in owners:
                if key == "mpi_launcher":   # Globus's own words
                    raise ValueError(f"MPI mode is not supported on {t}. Use GlobusMPIEngine instead.")
                raise ValueError(f"{key} is a key of {' and '.join(owners)}, not of {t}")
        if t == "GlobusMPIEngine":
            if p.launcher.type != "single_node":
                raise ValueError("GlobusMPIEngine needs the provider's launcher to be SimpleLauncher "
                                 "(launcher: {type: SimpleLauncher}): its one pool runs on the block's "
                                 "first node and mpi_launcher spreads each task over its nodes")
            self.mpi_launcher = self.mpi_launcher or "mpiexec"
            self.max_workers_per_block = self.max_workers_per_block or 1
            workers = self.max_workers_per_block
            if "max_workers_per_node" in given and self.max_workers_per_node != workers:
                raise ValueError(f"GlobusMPIEngine runs max_workers_per_block ({workers}) tasks at once "
                                 f"per block; max_workers_per_node ({self.max_workers_per_node}) "
                                 f"cannot differ: set max_workers_per_block instead")
            self.max_workers_per_node = workers
        elif t in ("ThreadPoolEngine", "ProcessPoolEngine"):
            if "provider" in given and (p.type != "local" or p.nodes_per_block != 1 or p.max_blocks != 1
                                        or p.launcher.type != "single_node"):
                raise ValueError(f"{t} runs its workers on the endpoint's own machine and takes no "
                                 f"provider; use GlobusComputeEngine for blocks from {p.type}")
            default = min(32, (os.cpu_count() or 1) + 4) if t == "ThreadPoolEngine" else os.cpu_count() or 1
            self.max_workers = self.max_workers or default
            if "max_workers_per_node" in given and self.max_workers_per_node != self.max_workers:
                raise ValueError(f"{t} takes max_workers ({self.max_workers}), not max_workers_per_node "
                                 f"({self.max_workers_per_node})")
            self.max_workers_per_node = self.max_workers
            self.provider = p.model_copy(update={"init_blocks": 1, "min_blocks": 1, "max_blocks": 1})
        elif p.nodes_per_block > 1 and p.launcher.type == "single_node":
            raise ValueError("nodes_per_block > 1 needs a multi-node launcher (provider.launcher: "
                             "{type: srun} or {type: mpiexec}), or type: GlobusMPIEngine")
        return self

    @property
    def workers_per_node(self) -> int:
        """Workers of one pool, on the node that asks (pools read their config on their node):
        max_workers_per_node, capped as Parsl caps it by cores_per_worker, mem_per_worker and
        the accelerators."""
        n = self.max_workers_per_node
        caps = []
        if self.cores_per_worker:
            caps.append(int(len(os.sched_getaffinity(0)) / self.cores_per_worker))
        if self.mem_per_worker:
            caps.append(int(_available_memory_gb() / self.mem_per_worker))
        if caps:   # with either, max_workers_per_node is only a cap if it was given (Parsl's: inf)
            n = max(1, min(caps + ([n] if "max_workers_per_node" in self.model_fields_set else [])))
        ids = self.available_accelerators
        if ids:
            assert not isinstance(ids, int)   # _accelerators made a count into a list of ids
            return min(n, len(ids))
        return n

    @property
    def pools_per_block(self) -> int:
        """GlobusMPIEngine: one pool a block (its tasks reach the other nodes through MPI)."""
        return 1 if self.type == "GlobusMPIEngine" else self.provider.nodes_per_block

    @property
    def workers_per_block(self) -> int:
        return self.workers_per_node * self.pools_per_block


def _embedded_store() -> str:
    return (faas_home() / "store").as_uri()


class EndpointConfig(_Strict):
    """config.yaml. Globus Compute's keys are read too (:mod:`.from_globus`): those that mean
    something here act under faas's names; the others are listed in :attr:`no_effect_here`."""

    #: how clients and consoles show the endpoint (default: its name)
    display_name: str | None = None
    #: fsspec URL of the store clients use (file:///..., s3://bucket/prefix); default: the
    #: embedded store, ``$FAAS_HOME/store`` (a single machine)
    store: str = Field(default_factory=_embedded_store)
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
    signing_keys_file: str | None = None
    signing_keys: list[str] = []
    #: function ids that may run here (None: any); anything else fails with FunctionNotAllowed
    allowed_functions: list[str] | None = None
    #: serializers whose payloads a worker will load
    allowed_serializers: list[Literal["dill"]] = ["dill"]
    #: shell lines run (``/bin/sh``, in the endpoint's folder) before the daemon starts; a failure
    #: stops the start (exit 78), as in Globus Compute. Output goes to endpoint.log.
    endpoint_setup: str | None = None
    #: shell lines run after the daemon stopped its blocks (its output goes to endpoint.log)
    endpoint_teardown: str | None = None
    #: endpoint.log at DEBUG level
    debug: bool = False
    engine: EngineConfig = EngineConfig()
    # -- multi-user endpoints (used when root starts an endpoint configured with --multi-user;
    #    see faas/endpoint/multiuser and docs/multi-user.md) -----------------------------------
    #: identity mapping rules (JSON, Globus format), relative to the endpoint's folder
    identity_mapping_path: str = "identity_mapping.json"
    #: local account names or identity patterns (``local:*``, ``arn:aws:iam::123:user/*``)
    #: allowed to run here (None: anyone who maps); denied_users wins over allowed_users
    allowed_users: list[str] | None = None
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

    _no_effect: list = PrivateAttr(default_factory=list)
    _kept: dict = PrivateAttr(default_factory=dict)
    _chosen: list = PrivateAttr(default_factory=list)

    @model_validator(mode="wrap")
    @classmethod
    def _from_globus(cls, data, handler):
        """Globus Compute's keys: moved to faas's names, or set aside as having no effect here."""
        if not isinstance(data, dict):
            return handler(data)
        data, no_effect, kept, chosen = from_globus.translate(data)
        cfg = handler(data)
        cfg._no_effect, cfg._kept, cfg._chosen = no_effect, kept, chosen
        return cfg

    @property
    def no_effect_here(self) -> list[str]:
        """``KEY (why)`` for each Globus key of this config that does nothing here."""
        return list(self._no_effect)

    @property
    def chosen_here(self) -> list[str]:
        """What faas decided where the config left it open (a multi-node block's launcher)."""
        return list(self._chosen)

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


class _YamlLoader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2's numbers: ``walltime: 1:30:00`` stays the string
    ``1:30:00`` (YAML 1.1, and so yaml.safe_load, reads it as 5400 in base 60)."""


_YamlLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"),
    list("-+0123456789"))
_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?"
               r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+0123456789."))


def yaml_load(text: str) -> Any:
    """Parse a config.yaml (also a rendered user endpoint template) the way :func:`load` does."""
    return yaml.load(text, Loader=_YamlLoader)


#: the model at each place in config.yaml, for did-you-mean
def _model_at(loc: tuple) -> type[BaseModel] | None:
    models: dict[tuple, type[BaseModel]] = {
        (): EndpointConfig, ("engine",): EngineConfig, ("engine", "provider"): ProviderConfig,
        ("engine", "provider", "launcher"): LauncherConfig}
    return models.get(tuple(loc))


def describe_errors(e: ValidationError, where: str) -> str:
    """One line per problem (the key path, what was expected, what was found); an unknown key
    gets the nearest known one (faas's or Globus's) as a did-you-mean."""
    import difflib
    lines = [f"{where}: {e.error_count()} problem(s)"]
    for err in e.errors():
        loc = tuple(str(p) for p in err["loc"])
        path = ".".join(loc) or "(top level)"
        msg, got, hint = err["msg"], err.get("input"), ""
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
            model = _model_at(loc[:-1])
            if model is not None:
                known = [k for k in model.model_fields] + list(from_globus.known_keys(loc[:-1]))
                near = difflib.get_close_matches(loc[-1], known, n=1, cutoff=0.6)
                hint = f"; did you mean {near[0]}?" if near else ""
        elif err["type"] == "missing":
            msg = "required key is missing"
        elif err["type"] == "value_error":
            msg = msg.removeprefix("Value error, ")
        shown = "" if err["type"] == "missing" or isinstance(got, dict) else f" (got {got!r})"
        lines.append(f"  {path}: {msg}{shown}{hint}")
    return "\n".join(lines)


def _home_of(path: Path) -> Path:
    """The FAAS_HOME a config.yaml lives in (``HOME/endpoints/NAME/config.yaml``)."""
    if path.parent.parent.name == "endpoints":
        return path.parent.parent.parent
    return faas_home()


def load(path: Path) -> EndpointConfig:
    """Read and validate a config.yaml; every error names the file and the key. A Globus
    Compute config.yaml loads as it is (see :mod:`.from_globus`); without ``store:`` the
    endpoint serves the embedded store of its FAAS_HOME."""
    if not path.exists():
        raise EndpointNotFound(f"no endpoint configured at {path.parent}: {path} does not exist; "
                               f"run `faas endpoint configure {path.parent.name}`")
    try:
        raw = yaml_load(path.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}:{where}: not valid YAML: {getattr(e, 'problem', e)}") from None
    if raw is None:   # an empty file (Globus writes "# The generated config file is currently empty")
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of keys (store:, engine:, ...), "
                          f"got {type(raw).__name__}")
    if raw.get("store") is None:
        raw["store"] = (_home_of(path) / "store").as_uri()
    try:
        return EndpointConfig.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(describe_errors(e, str(path)) +
                          "\n  (keys and defaults: `faas endpoint configure --help` and README)") from None


def dump(cfg: EndpointConfig, **model_dump_args: Any) -> dict:
    """``cfg`` as config.yaml's mapping, with the Globus keys that have no effect here as they
    were (so a rewritten config still lists them)."""
    data = cfg.model_dump(exclude_none=True, **model_dump_args)
    plugin_keys = cfg.engine.provider.model_extra   # a plugin provider's own keys (PluginProviderConfig)
    if plugin_keys and isinstance(data.get("engine", {}).get("provider"), dict):
        data["engine"]["provider"].update(plugin_keys)
    for dotted, value in cfg._kept.items():
        *parents, key = dotted.split(".")
        d = data
        for p in parents:
            d = d.setdefault(p, {})
        d[key] = value
    return data


def write(path: Path, cfg: EndpointConfig) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = dump(cfg)
    replace_file(path, "# faas endpoint configuration; keys are documented in the README\n" +
                 yaml.safe_dump(data, sort_keys=False))


# -- the endpoint's id -------------------------------------------------------------------------
#: beside config.yaml, as Globus Compute keeps it: ``{"endpoint_id": "<uuid>"}``
ID_FILE = "endpoint.json"


def is_uuid(text: object) -> bool:
    """A UUID in its usual 8-4-4-4-12 form (what Globus's endpoint ids look like)."""
    import uuid
    try:
        return isinstance(text, str) and str(uuid.UUID(text)) == text.strip().lower()
    except ValueError:
        return False


def endpoint_id(endpoint_dir: Path, create: bool = False) -> str | None:
    """The endpoint's UUID from ``endpoint.json`` in its folder; with ``create``, made once (by
    ``faas endpoint configure``, or at the first start of an endpoint configured without one)."""
    import json
    import uuid
    path = endpoint_dir / ID_FILE
    try:
        value = json.loads(path.read_text())["endpoint_id"]
    except FileNotFoundError:
        if not create:
            return None
        tmp = path.with_name(f".{ID_FILE}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"endpoint_id": str(uuid.uuid4())}) + "\n")
        try:
            os.link(tmp, path)   # atomic, and never replaces one another starter made first
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
        return endpoint_id(endpoint_dir)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"{path}: expected {{\"endpoint_id\": \"<uuid>\"}} ({type(e).__name__}: {e}); "
                          f"delete the file and a new id is made at the next start") from None
    if not is_uuid(value):
        raise ConfigError(f"{path}: endpoint_id {value!r} is not a UUID; delete the file and a new id is "
                          f"made at the next start")
    return value
