"""A Globus Compute endpoint's ``config.yaml`` read as it is.

Every key of Globus's schema (``UserEndpointConfig`` / ``ManagerEndpointConfig`` in
``globus_compute_endpoint/endpoint/config/config.py``, ``GlobusComputeEngine``, and the Parsl
``HighThroughputExecutor``, providers and launchers it passes its keys to) either acts here,
under faas's own name (:func:`translate` moves it there), or means something only to Globus's
hosted service or to Parsl's interchange: those are accepted, and listed once in endpoint.log
and ``faas endpoint status`` as "no effect here: KEY (why)". Any other key stays an error.
"""
from __future__ import annotations

import copy

from .provider_config import BUILTIN_MODELS, provider_type, walltime_seconds

#: Globus keys that do nothing here, by where they sit in config.yaml, with why.
NO_EFFECT: dict[tuple[str, ...], dict[str, str]] = {
    (): {
        "amqp_port": "the port of Globus's hosted AMQP service; tasks come from the queue named by `queue`",
        "heartbeat_period": "heartbeats to Globus's hosted service; the daemon publishes its record in the "
                            "store every 30 s",
        "heartbeat_threshold": "how long without a heartbeat from Globus's hosted service before reconnecting; "
                               "there is no hosted service here",
        "idle_heartbeats_soft": "Globus stops an idle endpoint because its hosted service restarts it on demand; "
                                "here idle blocks end after engine.max_idle_time, and a multi-user endpoint "
                                "stops idle user endpoints after user_endpoint_idle_timeout",
        "idle_heartbeats_hard": "catches tasks a vanished worker never returns; here such a task comes back "
                                "through the queue's visibility timeout",
        "environment": "which Globus service to connect to (for Globus's developers)",
        "local_compute_services": "a local copy of Globus's services (for Globus's developers)",
        "public": "visibility in Globus's web app; there is none here",
        "subscription_id": "a Globus subscription; nothing here needs one",
        "authentication_policy": "a Globus Auth policy, checked by Globus's hosted service; here who may run "
                                 "tasks is who may send to the queue and holds a signing key (on a "
                                 "multi-user endpoint: whom identity mapping and allowed_users admit)",
        "admins": "Globus identities that manage the endpoint through the hosted service; here whoever "
                  "can write the endpoint's folder",
        "high_assurance": "Globus's high-assurance mode is enforced by its hosted service; here tasks are "
                          "always signed and results sealed, and a multi-user endpoint writes audit_log_path",
        "log_dir": "Globus Compute keeps it without using it; the log is endpoint.log in the endpoint's folder",
        "stdout": "Globus Compute keeps it without using it; a detached daemon's own output goes to daemon.out",
        "stderr": "Globus Compute keeps it without using it; a detached daemon's own output goes to daemon.out",
        "user_config_template_path": "faas reads user_config_template.yaml.j2 beside config.yaml: put the "
                                     "template there",
        "user_config_schema_path": "faas reads user_config_schema.json beside config.yaml: put the schema there",
        "mu_child_ep_grace_period_s": "covers a race with the hosted service's start requests; here the root "
                                      "endpoint starts user endpoints itself, from their tasks",
        "email": "a contact shown in Globus's web app",
        "pam": "PAM authorization is off in this config (enable: false)",
    },
    ("engine",): {
        "address": "where Parsl's workers reach the interchange; faas's pools reach the queue and the store, "
                   "and nothing listens on this host",
        "loopback_address": "between Parsl's executor and its interchange; there is no interchange here",
        "worker_port": "a port the interchange listens on; nothing listens here",
        "worker_port_range": "ports the interchange listens on; nothing listens here",
        "interchange_port_range": "ports the interchange listens on; nothing listens here",
        "encrypted": "CurveZMQ between interchange and workers; here tasks travel signed and results sealed "
                     "through the queue and the store",
        "label": "names Globus's log folders and batch jobs; faas names them after the block "
                 "(faas-<block>, blocks/<block>/)",
        "launch_cmd": "Parsl's worker-pool command; faas starts its own pool",
        "interchange_launch_cmd": "there is no interchange here",
        "storage_access": "Parsl's file staging; arguments and results travel through the store",
        "worker_debug": "Parsl's worker-pool debug logs; faas's pools log to blocks/<block>/pool.log",
        "cpu_affinity": "faas does not pin worker processes to cores",
        "heartbeat_threshold": "between Parsl's interchange and its managers; here a pool's liveness is the "
                               "visibility heartbeat of its tasks on the queue, and stall_timeout",
        "heartbeat_period": "between Parsl's interchange and its managers; here a pool's liveness is the "
                            "visibility heartbeat of its tasks on the queue, and stall_timeout",
        "poll_period": "Parsl's ZeroMQ polling; faas's pools block on the queue",
        "address_probe_timeout": "workers probing the interchange's addresses; nothing listens here",
        "worker_logdir_root": "faas's pools log to blocks/<block>/ in the endpoint's folder",
        "manager_selector": "how the interchange picks a manager; here pools take tasks from the queue",
        "block_error_handler": "faas resubmits a failed block with backoff and shows the error in "
                               "`faas endpoint status`",
        "remote_monitoring_radio": "Parsl monitoring",
        "endpoint_id": "the endpoint's id is kept in endpoint.json beside config.yaml",
        "max_tasks_per_child": "ProcessPoolEngine's worker recycling; faas's workers live as long as their "
                               "pool (bound a leaking task with worker_memory_limit_mb or task_timeout)",
    },
    ("engine", "provider"): {
        "regex_job_id": "faas reads the job id from `sbatch --parsable`",
        "status_batch_size": "faas asks squeue once for all its jobs",
    },
    ("engine", "provider", "launcher"): {
        "debug": "Parsl's launcher echo lines; faas's block script always logs its start",
        "bind_cmd": "faas's mpiexec launcher passes no binding option (Parsl passes `BIND_CMD none`); put "
                    "binding options in overrides",
        "fail_on_any": "faas starts one pool per node, each on its own; a pool that fails shows in "
                       "`faas endpoint status`",
    },
}

#: Globus keys that act here under another name or shape (handled by :func:`translate`).
ACTS: dict[tuple[str, ...], tuple[str, ...]] = {
    (): ("identity_mapping_config_path",),
    ("engine",): ("prefetch_capacity", "max_retries_on_system_failure", "strategy", "job_status_kwargs",
                  "drain_period", "allowed_serializers"),
    ("engine", "provider"): ("cpus_per_node",),
    ("engine", "provider", "launcher"): (),
}

#: Globus serialization strategies whose payloads are what faas sends (dill functions, dill data)
_DILL_CODE = ("globus_compute_sdk.*Code", "globus_compute_sdk.serialize.DillCode",
              "globus_compute_sdk.serialize.CombinedCode", "globus_compute_sdk.serialize.AllCodeStrategies")
_DILL_DATA = ("globus_compute_sdk.*Data", "globus_compute_sdk.serialize.DillDataBase64",
              "globus_compute_sdk.serialize.AllDataStrategies")
_MULTI_NODE_LAUNCHER = {"slurm": "srun", "pbs": "mpiexec"}


def known_keys(where: tuple[str, ...]) -> tuple[str, ...]:
    """The Globus keys accepted at ``where`` beyond faas's own (for did-you-mean)."""
    return tuple(NO_EFFECT.get(where, {})) + ACTS.get(where, ())


def _walltime_s(provider: dict) -> int | None:
    try:
        return walltime_seconds(provider["walltime"]) if provider.get("walltime") is not None else None
    except ValueError:
        return None   # the provider's own validation says what is wrong with it


def _drop_none(d):
    """Globus builds engines, providers and launchers from their non-null keys only."""
    if isinstance(d, dict):
        return {k: _drop_none(v) for k, v in d.items() if v is not None}
    return d


def _take(src: dict, key: str, dst: dict, dst_key: str, value, where: str) -> None:
    """``src[key]`` acts as ``dst[dst_key]`` (as ``value``); both given and different: an error
    naming both."""
    given = src.pop(key)
    if dst_key in dst and dst[dst_key] != value:
        raise ValueError(f"{where + '.' if where else ''}{key} ({given!r}) and {dst_key} ({dst[dst_key]!r}) "
                         f"say different things; keep one")
    dst[dst_key] = value


def translate(raw: dict) -> tuple[dict, list[str], dict, list[str]]:
    """Globus's config.yaml -> (the same in faas's keys, the "KEY (why)" notes of keys with no
    effect here, those keys' values by path (so a rewrite keeps them), what was chosen for the
    user). Raises ValueError naming the key for a Globus setting faas cannot honour."""
    data = _drop_none(copy.deepcopy(raw))
    notes: list[str] = []
    kept: dict[str, object] = {}
    chosen: list[str] = []

    def no_effect(d: dict, where: tuple[str, ...], key: str, why: str | None = None) -> None:
        path = ".".join(where + (key,))
        kept[path] = d.pop(key)
        notes.append(f"{path} ({why or NO_EFFECT[where][key]})")

    def sweep(d: dict, where: tuple[str, ...]) -> None:
        for key in [k for k in d if k in NO_EFFECT.get(where, {})]:
            no_effect(d, where, key)

    if data.get("display_name") == "None":   # Globus's own special case (configs of mid-2023)
        data["display_name"] = None
    pam = data.get("pam")
    if isinstance(pam, dict) and pam.get("enable"):
        raise ValueError("pam: faas cannot run PAM account checks on a multi-user endpoint; use "
                         "allowed_users / denied_users, and remove pam (or set enable: false)")
    sweep(data, ())
    if "identity_mapping_config_path" in data:
        _take(data, "identity_mapping_config_path", data, "identity_mapping_path",
              data["identity_mapping_config_path"], "")

    engine = data.get("engine")
    if not isinstance(engine, dict):
        return data, notes, kept, chosen
    sweep(engine, ("engine",))
    provider = engine.get("provider") if isinstance(engine.get("provider"), dict) else None
    if "prefetch_capacity" in engine:
        _take(engine, "prefetch_capacity", engine, "prefetch", engine["prefetch_capacity"], "engine")
    if "max_retries_on_system_failure" in engine:
        retries = engine["max_retries_on_system_failure"]
        if not isinstance(retries, int) or retries < 0:
            raise ValueError(f"engine.max_retries_on_system_failure: expected a whole number >= 0, got {retries!r}")
        _take(engine, "max_retries_on_system_failure", data, "max_receives", retries + 1, "engine")
    _strategy(engine, provider, data, no_effect, chosen)
    if "drain_period" in engine:
        wall = _walltime_s(provider or {})
        if wall is None:
            no_effect(engine, ("engine",), "drain_period",
                      "faas drains a pool only before its walltime, and engine.provider.walltime is not set")
        else:
            assert provider is not None   # the walltime came from it
            drain = engine["drain_period"]
            if not isinstance(drain, (int, float)) or not 0 < drain < wall:
                raise ValueError(f"engine.drain_period: expected seconds between 0 and the walltime "
                                 f"({wall} s), got {drain!r}")
            _take(engine, "drain_period", provider, "walltime_margin", wall - drain, "engine")
    if "allowed_serializers" in engine:
        data["allowed_serializers"] = _serializers(engine.pop("allowed_serializers"))
    if provider is not None:
        _provider(engine, provider, no_effect, chosen)
    return data, notes, kept, chosen


def _strategy(engine: dict, provider: dict | None, data: dict, no_effect, chosen: list[str]) -> None:
    """``strategy`` (Parsl's name, or Globus 1.x's ``{type, max_idletime}``) and
    ``job_status_kwargs`` (``strategy``, ``max_idletime``, ``strategy_period``)."""
    kwargs = engine.pop("job_status_kwargs", None)
    if kwargs is not None and not isinstance(kwargs, dict):
        raise ValueError(f"engine.job_status_kwargs: expected a mapping (strategy, max_idletime, "
                         f"strategy_period), got {kwargs!r}")
    kwargs = dict(kwargs or {})
    strategy = engine.pop("strategy", None)
    if isinstance(strategy, dict):   # Globus 1.x: strategy: {type: SimpleStrategy, max_idletime: 90}
        strategy = dict(strategy)
        if "max_idletime" in strategy:
            kwargs.setdefault("max_idletime", strategy.pop("max_idletime"))
        strategy = strategy.pop("type", None) if not strategy.keys() - {"type"} else strategy
    if "strategy" in kwargs:
        strategy = kwargs.pop("strategy")
    if "max_idletime" in kwargs:
        _take(kwargs, "max_idletime", engine, "max_idle_time", kwargs["max_idletime"], "engine.job_status_kwargs")
    if "strategy_period" in kwargs:
        _take(kwargs, "strategy_period", data, "strategy_period", kwargs["strategy_period"],
              "engine.job_status_kwargs")
    if kwargs:
        raise ValueError(f"engine.job_status_kwargs: unknown key(s) {', '.join(map(str, kwargs))} "
                         f"(expected strategy, max_idletime, strategy_period)")
    if strategy is None:
        return
    name = str(strategy)
    if name in ("none", "None"):   # Parsl's "none": the init_blocks, never scaled
        p = provider if provider is not None else engine.setdefault("provider", {})
        blocks = p.get("init_blocks", 1)
        if not blocks:
            raise ValueError("engine.strategy: none with init_blocks 0 would never start a block")
        p["min_blocks"] = p["max_blocks"] = blocks
        chosen.append(f"engine.provider.min_blocks, max_blocks: {blocks} (strategy none: the init_blocks, "
                      f"kept and never scaled, as Parsl's)")
        return
    if name in ("simple", "htex_auto_scale", "SimpleStrategy"):
        engine["strategy"] = name
        no_effect(engine, ("engine",), "strategy",
                  "faas scales its own way: blocks follow the queue's depth (parallelism) and end "
                  "after max_idle_time idle, as Parsl's htex_auto_scale does")
        return
    raise ValueError(f"engine.strategy: expected simple, htex_auto_scale or none, got {strategy!r}")


def _serializers(value) -> list[str]:
    """Globus's allowlist of serialization strategies -> faas's (faas sends dill code and data)."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"engine.allowed_serializers: expected a list of strategy import paths, got {value!r}")
    if any(v in _DILL_CODE for v in value) and any(v in _DILL_DATA for v in value):
        return ["dill"]
    raise ValueError(f"engine.allowed_serializers: faas sends every function and argument as dill "
                     f"(Globus's DillCode and DillDataBase64), which {value} does not allow, so no "
                     f"task could run here; add those two (or globus_compute_sdk.*Code and "
                     f"globus_compute_sdk.*Data), or remove the key")


def _provider(engine: dict, provider: dict, no_effect, chosen: list[str]) -> None:
    where = ("engine", "provider")
    for key in [k for k in provider if k in NO_EFFECT[where]]:
        no_effect(provider, where, key)
    if "cpus_per_node" in provider:
        _take(provider, "cpus_per_node", provider, "cores_per_node", provider["cpus_per_node"], "engine.provider")
    launcher = provider.get("launcher")
    if isinstance(launcher, dict):
        for key in [k for k in launcher if k in NO_EFFECT[where + ("launcher",)]]:
            no_effect(launcher, where + ("launcher",), key)
    kind = provider_type(provider.get("type", "local"))
    model = BUILTIN_MODELS.get(kind)
    if model is None:
        return   # a plugin's keys are its own; else the provider's validation names the types there are
    for key in [k for k in provider if k not in model.model_fields]:
        # a key of another provider's model (none: an unknown key, which validation names)
        owners = {other: m.model_fields[key] for other, m in BUILTIN_MODELS.items() if key in m.model_fields}
        if not owners:
            continue
        if all(provider[key] == field.default for field in owners.values()):
            del provider[key]   # its default (faas wrote every provider's keys in every config): nothing asked for
        elif kind == "local":
            no_effect(provider, where, key, "the local provider starts processes on this host; no scheduler "
                                            "reads it")
        else:
            no_effect(provider, where, key, f"a {'/'.join(owners)} key; the {kind} provider does not read it")
    nodes = provider.get("nodes_per_block", 1)
    given = isinstance(launcher, dict) and "type" in launcher
    if isinstance(nodes, int) and nodes > 1 and not given and kind in _MULTI_NODE_LAUNCHER \
            and engine.get("type") != "GlobusMPIEngine":
        use = _MULTI_NODE_LAUNCHER[kind]
        provider["launcher"] = dict(launcher or {}, type=use)
        chosen.append(f"engine.provider.launcher: {use} (not given; nodes_per_block {nodes} on {kind}: one "
                      f"pool on each node, where Globus's default SingleNodeLauncher would start all "
                      f"{nodes} on the first)")
