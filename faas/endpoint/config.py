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
from pydantic_core import InitErrorDetails, PydanticCustomError

from .. import private_files
from ..config import describe_validation, faas_home
from ..exceptions import ConfigError, EndpointNotFound
from ..messages import check_function_id
from ..safe_open import replace_file
from . import from_globus
from .provider_config import PROVIDER_MODELS, LauncherConfig, LocalProviderConfig, ProviderConfig

NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$"


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
    #: worker pools on each node, the node's workers shared among them (faas's own key). A pool's
    #: supervising process hands out tasks and files their reports on one core (about 50 us a
    #: no-op task): many workers of short tasks need several to keep every core busy
    pools_per_node: int = Field(1, ge=1)
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
    #: the model of its ``type`` (provider_config.py): each provider's own keys
    provider: ProviderConfig = LocalProviderConfig()

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
            if self.pools_per_node != 1:
                raise ValueError("GlobusMPIEngine runs one pool a block (it lends the block's nodes "
                                 "to its tasks); pools_per_node must be 1")
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
        """GlobusMPIEngine: one pool a block (its tasks reach the other nodes through MPI);
        else one per node (each node's own: :meth:`node_pools`)."""
        return 1 if self.type == "GlobusMPIEngine" else self.provider.nodes_per_block

    def node_pools(self) -> tuple[int, int]:
        """``(pools, workers)`` of the node that asks: pools_per_node, each with at least one
        worker, and the node's workers. Read once per node and handed to its pools: the
        mem_per_worker cap moves with the memory free at the moment."""
        workers = self.workers_per_node
        return min(self.pools_per_node, workers), workers

    def pool_share(self, index: int, pools: int, workers: int) -> tuple[int, list[str]]:
        """The workers and accelerator ids of pool ``index`` of a node's ``pools`` that share its
        ``workers``: split as evenly as they go, each pool a run of consecutive ids."""
        if not 0 <= index < pools <= workers:
            raise ValueError(f"pool {index} of {pools} sharing {workers} workers: no such pool")
        first = index * (workers // pools) + min(index, workers % pools)
        n = workers // pools + (index < workers % pools)
        ids = self.available_accelerators
        assert not isinstance(ids, int)   # _accelerators made a count into a list of ids
        return n, ids[first:first + n] if ids else []

    @property
    def workers_per_block(self) -> int:
        return self.workers_per_node * self.pools_per_block


def _embedded_store() -> str:
    return (faas_home() / "store").as_uri()


#: the file whose presence beside config.yaml makes an endpoint multi-user (as Globus's
#: ``configure`` writes it beside a ManagerEndpointConfig); faas/endpoint/multiuser writes it
MULTI_USER_TEMPLATE = "user_config_template.yaml.j2"


def is_multi_user(endpoint_dir: Path) -> bool:
    """The endpoint in ``endpoint_dir`` is multi-user: its config.yaml is a
    :class:`ManagerEndpointConfig` (see :func:`load`)."""
    return (endpoint_dir / MULTI_USER_TEMPLATE).exists()


class BaseEndpointConfig(_Strict):
    """The keys of both kinds of config.yaml (Globus's ``BaseConfig``): where the endpoint's
    tasks come from, how long a message is held, how it stops. Globus Compute's keys are read
    too (:mod:`.from_globus`): those that mean something here act under faas's names; the
    others are listed in :attr:`no_effect_here`. A key of the other kind is accepted at its
    default (every config.yaml faas wrote before the kinds were split holds them all) and is an
    error otherwise (:meth:`_other_kind`)."""

    #: what a key of the other kind in this kind's config.yaml gets ({key}: the key)
    OTHER_KIND_ERROR: ClassVar[str] = ""

    #: how clients and consoles show the endpoint (default: its name)
    display_name: str | None = None
    #: fsspec URL of the store clients use (file:///..., s3://bucket/prefix); default: the
    #: embedded store, ``$FAAS_HOME/store`` (a single machine)
    store: str = Field(default_factory=_embedded_store)
    #: ``local``, ``sqs``, or a full queue URL
    queue: str = "local"
    max_receives: int = Field(5, ge=1, le=1000)
    visibility_timeout: float = Field(60.0, ge=2, le=43200)
    #: seconds a stopping pool lets running tasks finish before it hands them back (a stopping
    #: router: its user endpoints)
    stop_grace: float = Field(30.0, ge=0)
    #: seconds a pool's, daemon's or router's loop (receiver, outbox, monitor, main, daemon step)
    #: may go without progress before it is logged with every thread's stack and the process is
    #: stopped and replaced: a stall is never silent
    stall_timeout: float = Field(120.0, ge=1)
    #: function ids that may run here (None: any); anything else fails with FunctionNotAllowed
    allowed_functions: list[str] | None = None
    #: endpoint.log at DEBUG level
    debug: bool = False

    _no_effect: list = PrivateAttr(default_factory=list)
    _kept: dict = PrivateAttr(default_factory=dict)
    _chosen: list = PrivateAttr(default_factory=list)

    @model_validator(mode="wrap")
    @classmethod
    def _from_globus(cls, data, handler):
        """Globus Compute's keys: moved to faas's names, or set aside as having no effect here;
        then the other kind's keys (:meth:`_other_kind`)."""
        if not isinstance(data, dict):
            return handler(data)
        translated, no_effect, kept, chosen = from_globus.translate(data)
        cfg = handler(cls._other_kind(translated, data))
        cfg._no_effect, cfg._kept, cfg._chosen = no_effect, kept, chosen
        return cfg

    @classmethod
    def _other_kind(cls, data: dict, raw: dict) -> dict:
        """``data`` without the keys only the other kind has, when they hold that kind's default
        (dump() wrote every default until the kinds were split); a key set to anything else is
        an error that names it, the kinds, and what to do."""
        if cls is BaseEndpointConfig:
            return data
        other = ManagerEndpointConfig if issubclass(cls, UserEndpointConfig) else UserEndpointConfig
        data = dict(data)
        errors = []
        for key in [k for k in data if k in other.model_fields and k not in cls.model_fields]:
            value = data.pop(key)
            if _at_default(other, key, value):
                continue
            shown = key   # as config.yaml wrote it (Globus's identity_mapping_config_path is moved)
            if key not in raw and key == "identity_mapping_path" and "identity_mapping_config_path" in raw:
                shown = "identity_mapping_config_path"
            why = PydanticCustomError("other_kind", "{why}", {"why": cls.OTHER_KIND_ERROR.format(key=shown)})
            errors.append(InitErrorDetails(type=why, loc=(shown,), input=value))
        if errors:
            raise ValidationError.from_exception_data(cls.__name__, errors)
        return data

    @property
    def no_effect_here(self) -> list[str]:
        """``KEY (why)`` for each Globus key of this config that does nothing here."""
        return list(self._no_effect)

    @property
    def chosen_here(self) -> list[str]:
        """What faas decided where the config left it open (a multi-node block's launcher)."""
        return list(self._chosen)

    @field_validator("allowed_functions")
    @classmethod
    def _function_ids(cls, ids: list[str] | None) -> list[str] | None:
        """Each a faas function id: one that can never match (a Globus function UUID copied from
        a Globus config.yaml, a typo) would have every task refused, quietly, so it is refused
        here, saying why."""
        for fid in ids or ():
            check_function_id(fid)
        return ids

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


class UserEndpointConfig(BaseEndpointConfig):
    """A single-user endpoint's config.yaml (Globus's ``UserEndpointConfig``): the daemon that
    runs blocks of worker pools through its engine's provider; also what a multi-user
    endpoint's template renders for each user endpoint."""

    OTHER_KIND_ERROR: ClassVar[str] = (
        f"a multi-user endpoint's key, in the config.yaml of a single-user endpoint (one without "
        f"{MULTI_USER_TEMPLATE} beside it); to make it multi-user run `faas endpoint configure NAME "
        f"--multi-user` (it writes the template), else remove {{key}}")

    #: seconds between scaling decisions of the daemon
    strategy_period: float = Field(1.0, gt=0)
    #: file of ``ID:SECRET`` task-signing keys, one per line (relative to the endpoint's folder);
    #: keys can also come from ``signing_keys`` or $FAAS_SIGNING_KEYS. With any key, unsigned,
    #: wrongly signed or expired tasks never run.
    signing_keys_file: str | None = None
    signing_keys: list[str] = []
    #: serializers whose payloads a worker will load
    allowed_serializers: list[Literal["dill"]] = ["dill"]
    #: shell lines run (``/bin/sh``, in the endpoint's folder) before the daemon starts; a failure
    #: stops the start (exit 78), as in Globus Compute. Output goes to endpoint.log.
    endpoint_setup: str | None = None
    #: shell lines run after the daemon stopped its blocks (its output goes to endpoint.log)
    endpoint_teardown: str | None = None
    engine: EngineConfig = EngineConfig()

    def keyring(self, endpoint_dir: Path) -> dict:
        """Every key this endpoint accepts (file, config, $FAAS_SIGNING_KEYS); may be empty."""
        from .. import signing
        keys = signing.parse_keys(self.signing_keys, "signing_keys in config.yaml")
        if self.signing_keys_file:
            keys.update(signing.read_key_file(endpoint_dir / self.signing_keys_file))
        if os.environ.get("FAAS_SIGNING_KEYS"):
            keys.update(signing.parse_keys(os.environ["FAAS_SIGNING_KEYS"], "$FAAS_SIGNING_KEYS"))
        return keys


class ManagerEndpointConfig(BaseEndpointConfig):
    """A multi-user endpoint's config.yaml (Globus's ``ManagerEndpointConfig``): what its root
    router and the admin commands read. It has no engine: each user endpoint's comes from the
    template beside it (see faas/endpoint/multiuser and docs/multi-user.md)."""

    OTHER_KIND_ERROR: ClassVar[str] = (
        f"a single-user endpoint's key, in the config.yaml of a multi-user endpoint (one with "
        f"{MULTI_USER_TEMPLATE} beside it), whose root router runs no blocks and no tasks: what each "
        f"user endpoint runs with comes from that template; move {{key}} there (per-user signing keys: "
        f"user_signing_keys.json) and remove it from config.yaml")

    #: identity mapping rules (JSON, Globus format), relative to the endpoint's folder
    identity_mapping_path: str = "identity_mapping.json"
    #: local account names or identity patterns (``local:*``, ``arn:aws:iam::123:user/*``)
    #: allowed to run here (None: anyone who maps); denied_users wins over allowed_users
    allowed_users: list[str] | None = None
    denied_users: list[str] = []
    #: running user endpoints at once, over all users (one per user and variable set)
    max_user_endpoints: int = Field(64, ge=1)
    #: running user endpoints of one user at once: no user can take every place
    max_user_endpoints_per_user: int = Field(4, ge=1)
    #: caps engine.provider.max_blocks of every user endpoint
    max_blocks_per_user: int = Field(1, ge=1)
    #: what a task over a limit gets: wait in the spool until there is room, or refuse
    over_limit: Literal["wait", "refuse"] = "wait"
    #: seconds without tasks after which a user endpoint stops (it comes back with the next task)
    user_endpoint_idle_timeout: float = Field(300.0, gt=0)
    #: one line per task (time, identity, mapped user, function id, outcome), relative to the
    #: endpoint's folder or absolute
    audit_log_path: str = "audit.log"


#: what :func:`load` returns: the config of a single-user or of a multi-user endpoint
EndpointConfig = UserEndpointConfig | ManagerEndpointConfig


def _at_default(model: type[BaseEndpointConfig], key: str, value: object) -> bool:
    """``value`` is what ``model`` holds for ``key`` by default (as dump() wrote it). A multi-user
    config.yaml that `faas endpoint configure --multi-user` wrote holds a whole default engine:
    its provider type is the one the template was written for; its other keys are defaults."""
    if key == "engine":
        if not isinstance(value, dict):
            return False
        provider = value.get("provider")
        kind = provider.get("type", "local") if isinstance(provider, dict) else "local"
        # max_workers_per_node's default is the cores of the host that wrote the file: any count
        # written there is that default (the file may be older than this host's cores)
        host_default = {k: value[k] for k in ("max_workers_per_node",) if k in value}
        try:
            given = EngineConfig.model_validate(value)
            default = EngineConfig.model_validate({"provider": {"type": kind}, **host_default})
        except ValidationError:
            return False
        return given.model_dump() == default.model_dump()
    return bool(value == model.model_fields[key].get_default(call_default_factory=True))


def as_single_user(cfg: EndpointConfig) -> UserEndpointConfig:
    """The config a single-user daemon and its pools run with. A multi-user endpoint's folder
    started by anyone but root runs single-user (faas/endpoint/__main__.py): as an endpoint of
    its shared keys, with the default engine (local blocks on this host), which it says in
    endpoint.log; its user endpoints' engines are in the template, for root's router."""
    if isinstance(cfg, UserEndpointConfig):
        return cfg
    shared = cfg.model_dump(include=set(BaseEndpointConfig.model_fields))
    out = UserEndpointConfig.model_validate(shared)
    out._no_effect, out._kept = list(cfg._no_effect), dict(cfg._kept)
    out._chosen = [*cfg._chosen, f"engine: the default (local provider, blocks on this host): the config of a "
                                 f"multi-user endpoint, run single-user (only root runs it multi-user, each "
                                 f"user endpoint with the engine of {MULTI_USER_TEMPLATE})"]
    return out


def endpoint_dir(name: str, home: Path | None = None) -> Path:
    """``FAAS_HOME/endpoints/NAME``, once FAAS_HOME is proven the user's own private folder (its
    configs' ``endpoint_setup`` runs as the user): :func:`faas.private_files.ensure_home`."""
    return private_files.ensure_home(faas_home(home)) / "endpoints" / name


def endpoint_path(name: str, home: Path) -> Path:
    """The same folder, not proven again: for a block's pool, which the daemon that proved it
    started (in a container, FAAS_HOME itself is the runtime's, only its parts are mounted)."""
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
def _model_at(loc: tuple, top: type[BaseModel] = UserEndpointConfig,
              provider: type[BaseModel] = LocalProviderConfig) -> type[BaseModel] | None:
    models: dict[tuple, type[BaseModel]] = {
        (): top, ("engine",): EngineConfig, ("engine", "provider"): provider,
        ("engine", "provider", "launcher"): LauncherConfig}
    return models.get(tuple(loc))


def _untagged(loc: tuple[str, ...]) -> tuple[tuple[str, ...], type[BaseModel]]:
    """An error's location as a path in config.yaml, and the provider model that judged it:
    pydantic names the member of the provider union (its tag) after ``engine.provider``, a
    level config.yaml does not have."""
    if loc[:2] == ("engine", "provider") and len(loc) > 2 and loc[2] in PROVIDER_MODELS:
        return loc[:2] + loc[3:], PROVIDER_MODELS[loc[2]]
    return loc, LocalProviderConfig


def describe_errors(e: ValidationError, where: str, top: type[BaseModel] = UserEndpointConfig) -> str:
    """One line per problem (:func:`faas.config.describe_validation`); an unknown key gets the
    nearest known one of ``top`` (the kind of config; faas's or Globus's) as a did-you-mean."""
    def known(raw: tuple[str, ...]) -> list[str]:
        loc, provider = _untagged(raw)
        model = _model_at(loc[:-1], top, provider)
        return [] if model is None else [*model.model_fields, *from_globus.known_keys(loc[:-1])]
    return describe_validation(e, where, place=lambda raw: _untagged(raw)[0], known=known)


def _home_of(path: Path) -> Path:
    """The FAAS_HOME a config.yaml lives in (``HOME/endpoints/NAME/config.yaml``)."""
    if path.parent.parent.name == "endpoints":
        return path.parent.parent.parent
    return faas_home()


def load(path: Path) -> EndpointConfig:
    """Read and validate a config.yaml; every error names the file and the key. A Globus
    Compute config.yaml loads as it is (see :mod:`.from_globus`); without ``store:`` the
    endpoint serves the embedded store of its FAAS_HOME.

    The kind is the folder's: with the user config template beside it (:func:`is_multi_user`)
    a :class:`ManagerEndpointConfig`, else a :class:`UserEndpointConfig`. Globus decides by the
    file (no ``engine``: a manager) and writes the template beside every manager's config.yaml,
    so its folders load as the same kind here; an ``engine`` beside the template (faas wrote a
    default one before the kinds were split) is accepted at its defaults and refused otherwise,
    and a single-user config.yaml with no ``engine`` is one with the default engine, as faas has
    always read it (and a Globus manager's keys in it are errors that say to add the template)."""
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
    model = ManagerEndpointConfig if is_multi_user(path.parent) else UserEndpointConfig
    try:
        return model.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(describe_errors(e, str(path), model) +
                          "\n  (keys and defaults: `faas endpoint configure --help` and README)") from None


def dump(cfg: EndpointConfig, **model_dump_args: Any) -> dict:
    """``cfg`` as config.yaml's mapping: the keys of its kind only, with the Globus keys that
    have no effect here as they were (so a rewritten config still lists them)."""
    data = cfg.model_dump(exclude_none=True, **model_dump_args)   # a plugin provider's own keys too
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
                 yaml.safe_dump(data, sort_keys=False), mode=0o600)   # it may hold signing keys


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
