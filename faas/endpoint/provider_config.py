"""``engine.provider`` of config.yaml: one model per provider type, as Parsl's providers each
take their own arguments (``LocalProvider``, ``SlurmProvider``, ``PBSProProvider``), joined into
:data:`ProviderConfig`, a union told apart by ``type``. Each model holds only the keys its
provider reads, so the model of a type is also the list of what that type reads (from_globus
uses it to tell a key of another scheduler, "no effect here", from a typo).
"""
from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator

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
#: what ends or breaks a line of the job script: control characters (C0, DEL, C1) and Unicode's
#: line and paragraph separators
_NOT_IN_A_LINE = r"\x00-\x1f\x7f-\x9f\u2028\u2029"
#: a scheduler value is written into one line of the job script (``#SBATCH --account=VALUE``,
#: ``#PBS -q VALUE``, the launcher's command line): a line break there starts a directive or a
#: shell command of the value's own. A directive's value must also be one word: sbatch and qsub
#: split a directive line into options as a shell would (a space starts another option, quotes
#: join words) and qsub continues one that ends in a backslash on the next line.
_BREAKS_A_LINE = re.compile(f"[{_NOT_IN_A_LINE}]")
_BREAKS_A_WORD = re.compile(f"[\\s\"'\\\\{_NOT_IN_A_LINE}]")
_CHARACTER_NAMES = {"\n": "a line break", "\r": "a carriage return", "\t": "a tab", "\x00": "a NUL character",
                    " ": "a space", '"': "a double quote", "'": "a single quote", "\\": "a backslash"}


def _continues_the_line(value: str, at: int) -> bool:
    """Whether the line break at ``at`` follows an unescaped backslash: the shell drops both and
    reads on (Globus's docs end a folded ``launcher.overrides`` so)."""
    return (at - len(value[:at].rstrip("\\"))) % 2 == 1


def _scheduler_value(value: str, word: bool) -> str:
    """``value`` if it fits in one line (``word``: one word) of the job script; else ValueError
    naming what it found, where, and what is expected (the error's location names the key)."""
    breaks = (_BREAKS_A_WORD if word else _BREAKS_A_LINE).finditer(value)
    bad = next((m for m in breaks if word or m.group() != "\n" or not _continues_the_line(value, m.start())), None)
    if bad is None:
        return value
    found = bad.group()
    what = _CHARACTER_NAMES.get(found, "a control or line-separator character" if _BREAKS_A_LINE.match(found)
                                else "whitespace")
    if word:
        expected = ("one word with no spaces, quotes, backslashes or control characters (it is written into a "
                    "#SBATCH / #PBS directive, where these would add options or lines)")
        fix = "remove it; extra directives belong in scheduler_options"
    else:
        expected = ("one line with no line breaks (but a backslash's continuation) or other control characters "
                    "(it is written into one line of the job script)")
        fix = "remove it; commands to run before the pools belong in worker_init"
    raise ValueError(f"expected {expected}; found {what} ({found!r}) at character {bad.start() + 1}: {fix}")


#: a value of one ``#SBATCH`` / ``#PBS`` directive (``account``, ``partition``, ``queue``, ...): one word
DirectiveValue = Annotated[str, AfterValidator(lambda v: _scheduler_value(v, word=True))]
#: a value written into one line of the job script, spaces allowed (``launcher.overrides``)
ScriptLine = Annotated[str, AfterValidator(lambda v: _scheduler_value(v, word=False))]


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


def provider_type(value: object) -> str:
    """A provider ``type`` in faas's spelling (``SlurmProvider`` -> ``slurm``)."""
    return _PROVIDER_ALIASES.get(str(value), str(value))


def is_plugin_type(kind: str) -> bool:
    """A provider type a site plugin registered (``faas.providers.register_provider``), not
    one of faas's own."""
    # the registry (with jinja2 and the provider base) is imported only for a type not faas's own
    from ..providers import PROVIDERS
    return kind not in BUILTIN_PROVIDERS and kind in PROVIDERS


def _unknown_type(value: object) -> ValueError:
    from ..providers import PROVIDERS
    plugins = [n for n in PROVIDERS.names() if n not in BUILTIN_PROVIDERS]
    return ValueError("expected 'local' (LocalProvider), 'slurm' (SlurmProvider) or 'pbs' "
                      "(PBSProProvider, TorqueProvider)" +
                      (f", or one a site plugin registered ({', '.join(plugins)})" if plugins else
                       ": faas has no other provider (no Kubernetes, Condor, cloud or GridEngine "
                       "blocks) unless a site plugin registers one (faas.providers.register_provider)"))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LauncherConfig(_Strict):
    """How a block starts one worker pool on each of its nodes."""

    type: Literal["single_node", "srun", "mpiexec"] = "single_node"
    #: extra options for srun / mpiexec (e.g. ``--cpu-bind=none``), on the launch command's line
    overrides: ScriptLine = ""

    @field_validator("type", mode="before")
    @classmethod
    def _alias(cls, v: object) -> object:
        return _LAUNCHER_ALIASES.get(str(v), v)


class BaseProviderConfig(_Strict):
    """The keys every provider reads: how many blocks, of how many nodes, for how long, and
    what runs on each node before its pool."""

    type: str
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
    #: shell lines run before the pool starts (``module load ...; conda activate ...``)
    worker_init: str = ""
    launcher: LauncherConfig = LauncherConfig()

    @classmethod
    def _takes(cls, kind: str) -> bool:
        """Whether this model holds a provider of type ``kind`` (faas's spelling)."""
        return kind == cls.model_fields["type"].default

    @field_validator("type", mode="before")
    @classmethod
    def _type(cls, v: object) -> str:
        kind = provider_type(v)
        if cls._takes(kind):
            return kind
        if kind in BUILTIN_PROVIDERS or is_plugin_type(kind):   # only when built by hand: the union picks by type
            raise ValueError(f"{cls.__name__} does not hold a {kind!r} provider; "
                             f"{PROVIDER_MODELS[_tag_of(kind)].__name__} does")
        raise _unknown_type(v)

    @field_validator("walltime", mode="before")
    @classmethod
    def _walltime(cls, v: object) -> object:
        if v is not None:
            v = str(v).strip()
            if v.upper() in NO_WALLTIME:   # Slurm's "no time limit"
                return None
            walltime_seconds(v)
        return v

    @model_validator(mode="after")
    def _blocks(self) -> BaseProviderConfig:
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


class LocalProviderConfig(BaseProviderConfig):
    """``type: local`` (Parsl's LocalProvider): blocks are process groups on this host; no
    scheduler, so none of a scheduler's keys."""

    type: Literal["local"] = "local"


class ClusterProviderConfig(BaseProviderConfig):
    """The keys every batch scheduler's provider reads (Parsl's ClusterProvider): the job's
    account, its resources per node, extra header lines, and how long a command may take."""

    account: DirectiveValue | None = None
    #: cores per node (Slurm --cpus-per-task, PBS ncpus; Globus's PBSProProvider calls it cpus_per_node)
    cores_per_node: int | None = Field(None, ge=1)
    #: memory per node in GB
    mem_per_node: float | None = Field(None, gt=0)
    gpus_per_node: int | None = Field(None, ge=0)
    exclusive: bool = False
    #: extra lines for the submit script's header (``#SBATCH ...`` / ``#PBS ...``), verbatim
    scheduler_options: str = ""
    #: seconds a scheduler command (sbatch, squeue, qsub, ...) may take before it counts as failed
    cmd_timeout: float = Field(30.0, gt=0)


class SlurmProviderConfig(ClusterProviderConfig):
    """``type: slurm`` (Parsl's and Globus's SlurmProvider)."""

    type: Literal["slurm"] = "slurm"
    partition: DirectiveValue | None = None
    qos: DirectiveValue | None = None
    #: node features (``--constraint``, e.g. ``intel&(ib|opa)``)
    constraint: DirectiveValue | None = None
    #: the cluster(s) of a multi-cluster site (``--clusters``; every Slurm command gets it)
    clusters: DirectiveValue | None = None
    #: generic resources per node (``--gres``, e.g. ``gpu:a100:4``)
    gres: DirectiveValue | None = None


class PBSProviderConfig(ClusterProviderConfig):
    """``type: pbs`` (PBS Pro / OpenPBS; Parsl's PBSProProvider and TorqueProvider)."""

    type: Literal["pbs"] = "pbs"
    queue: DirectiveValue | None = None
    #: more of the chunk's resources, appended to ``-l select=`` (e.g. ``ngpus=4``)
    select_options: DirectiveValue = ""


class PluginProviderConfig(ClusterProviderConfig):
    """A provider a site plugin registered (``faas.providers.register_provider``): faas's common
    and batch-scheduler keys are checked as for its own providers; the plugin's own keys are
    kept as they are (``model_extra``) for the plugin's class to read."""

    model_config = ConfigDict(extra="allow")

    @classmethod
    def _takes(cls, kind: str) -> bool:
        return is_plugin_type(kind)


#: the provider types faas itself ships, each with its model (others come from site plugins)
BUILTIN_MODELS: dict[str, type[BaseProviderConfig]] = {
    "local": LocalProviderConfig, "slurm": SlurmProviderConfig, "pbs": PBSProviderConfig}
BUILTIN_PROVIDERS = tuple(BUILTIN_MODELS)
#: each member of the union by its tag (pydantic puts the tag in an error's location, after
#: ``provider``: describe_errors reads the model there and leaves the tag out of the path)
PROVIDER_MODELS: dict[str, type[BaseProviderConfig]] = {**BUILTIN_MODELS, "plugin": PluginProviderConfig}


def _tag_of(kind: str) -> str:
    return kind if kind in BUILTIN_MODELS else "plugin"


def _provider_tag(value: Any) -> str | None:
    """Which model reads an ``engine.provider`` (the discriminator of :data:`ProviderConfig`):
    its type's. An unknown type goes to the built-in model that knows most of its keys: its
    ``type`` check names the types there are, and the keys it lacks are reported beside (a
    scheduler's keys under a misspelt type are not errors of their own)."""
    if isinstance(value, BaseModel):
        return next((tag for tag, model in PROVIDER_MODELS.items() if type(value) is model), None)
    if not isinstance(value, dict):
        return "local"   # its model says what was expected
    kind = provider_type(value.get("type", "local"))
    if kind in BUILTIN_MODELS or is_plugin_type(kind):
        return _tag_of(kind)
    return max(BUILTIN_MODELS, key=lambda tag: len(value.keys() & BUILTIN_MODELS[tag].model_fields.keys()))


#: ``engine.provider``: the model of its ``type``
ProviderConfig = Annotated[
    Annotated[LocalProviderConfig, Tag("local")] | Annotated[SlurmProviderConfig, Tag("slurm")]
    | Annotated[PBSProviderConfig, Tag("pbs")] | Annotated[PluginProviderConfig, Tag("plugin")],
    Discriminator(_provider_tag)]

