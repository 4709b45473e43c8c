"""The ``faas`` command: endpoints on the site, batches and results for CI jobs."""
from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import click

from ..config import faas_home
from ..exceptions import FaasError
from . import from_globus
from . import terraform as tf_cli


class FaasGroup(click.Group):
    """Print faas errors as one clear message and exit 2, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except FaasError as e:
            click.echo(f"faas: error: {e}", err=True)
            sys.exit(2)


@click.group(cls=FaasGroup)
@click.version_option(package_name="faas")
def main() -> None:
    """faas: run Python functions on HPC and cloud sites through an object store and queues."""


def _client(profile, store, endpoint=None):
    import faas
    return faas.client(profile, store=store, endpoint=endpoint)


# -- endpoints ---------------------------------------------------------------------------

@main.group(context_settings={"help_option_names": ["-h", "--help"]})
@from_globus.config_dir_option
def endpoint() -> None:
    """Configure, start and stop endpoints on this machine (the site's login node)."""
    from_globus.globus_user_dir_warning()


@endpoint.command(cls=from_globus.ConfigureCommand)
@from_globus.name_argument
@click.option("--provider", type=click.Choice(["local", "slurm", "pbs"]), default=None,
              help="how blocks are started")
@click.option("--store", help="store URL clients use: file:///abs/path or s3://bucket/prefix "
                              "[default: the embedded store under FAAS_HOME]")
@click.option("--queue", help="local, sqs, or a queue URL [default: local]")
@click.option("--max-workers-per-node", type=int)
@click.option("--pools-per-node", type=int, help="pools sharing a node's workers, each its own process "
                                                 "(many workers, short tasks) [default: 1]")
@click.option("--init-blocks", type=int)
@click.option("--min-blocks", type=int)
@click.option("--max-blocks", type=int)
@click.option("--max-idle-time", type=float)
@click.option("--max-receives", type=int)
@click.option("--partition", help="Slurm partition")
@click.option("--pbs-queue", help="PBS queue")
@click.option("--account", help="account / project to charge")
@click.option("--walltime", help="block time limit in any of Slurm's formats: 90, 01:30:00, 2-12:00, ...")
@click.option("--nodes-per-block", type=int)
@click.option("--launcher", type=click.Choice(["single_node", "srun", "mpiexec"]))
@click.option("--worker-init", help="shell lines run before each pool (module load ...)")
@click.option("--signing-key", "signing_key", metavar="new|none",
              help="new: add a fresh task-signing key (rotation: older keys stay until you delete "
                   "their line); none: turn signing off [default for a new endpoint: new]")
@click.option("--multi-user/--no-multi-user", "multi_user", default=None,
              help="also write the files of a multi-user endpoint (template, schema, identity "
                   "mapping, environment); run it as root (docs/multi-user.md). Globus's "
                   "`--multi-user true|false` works too")
@from_globus.configure_options
@tf_cli.from_terraform_option
@from_globus.common_options
def configure(name, provider, store, queue, max_workers_per_node, pools_per_node, init_blocks, min_blocks,
              max_blocks, max_idle_time, max_receives, partition, pbs_queue, account, walltime,
              nodes_per_block, launcher, worker_init, signing_key, multi_user, from_terraform,
              **globus) -> None:
    """Write (or update) $FAAS_HOME/endpoints/NAME/config.yaml: a single-user endpoint's, or
    with --multi-user (or in a multi-user endpoint's folder) a multi-user endpoint's, whose user
    endpoints take their engine from the template written beside it."""
    from ..endpoint import config as ep_config
    ep_config.check_name(from_globus.not_a_uuid(name))
    if signing_key not in (None, "new", "none"):
        raise click.BadParameter("expected new or none", param_hint="--signing-key")
    from_globus.refuse_policy_creation(globus)
    from_globus.check_high_assurance(globus["high_assurance"], globus["subscription_id"], globus["auth_policy"])
    home = faas_home()
    path = ep_config.endpoint_dir(name, home) / "config.yaml"
    custom_files = from_globus.multi_user_files(globus)   # a template given: its user endpoints render it
    multi = ep_config.is_multi_user(path.parent) or bool(custom_files) if multi_user is None else multi_user
    if multi_user is False and ep_config.is_multi_user(path.parent):
        raise click.UsageError(f"--multi-user false: endpoint {name} is multi-user "
                               f"({path.parent / ep_config.MULTI_USER_TEMPLATE}); delete it to start over")
    if not multi:
        from_globus.refuse_multi_user_files_on_single_user(name, globus)
    manager_config = from_globus.manager_config_file(globus["manager_config"], globus["endpoint_config"])
    if path.exists():
        if manager_config is not None:
            raise click.UsageError(f"--manager-config: endpoint {name} is already configured ({path}); "
                                   f"edit that file, or `faas endpoint delete {name}` first")
        data = ep_config.dump(ep_config.load(path))
        action = "updated"
    else:
        data = {"display_name": name, "store": (home / "store").as_uri(), "queue": "local"}
        if manager_config is not None:
            data.update(from_globus.read_manager_config(manager_config))
        action = "wrote"
    role_note = ""
    if from_terraform:
        data.update(tf_cli.endpoint_settings(from_terraform, name))
        role_note = tf_cli.site_role_note(from_terraform, name)
    data.update(from_globus.globus_keys(globus["display_name"], globus["contact_email"], globus["auth_policy"],
                                        globus["subscription_id"], globus["high_assurance"]))
    for key, value in (("store", store), ("queue", queue), ("max_receives", max_receives)):
        if value is not None:
            data[key] = value
    engine_keys = {"max_workers_per_node": max_workers_per_node, "pools_per_node": pools_per_node,
                   "max_idle_time": max_idle_time}
    provider_keys = {"type": provider, "init_blocks": init_blocks, "min_blocks": min_blocks,
                     "max_blocks": max_blocks, "partition": partition, "queue": pbs_queue, "account": account,
                     "walltime": walltime, "nodes_per_block": nodes_per_block, "worker_init": worker_init,
                     "launcher": None if launcher is None else {"type": launcher}}
    if multi:
        _refuse_engine_options(name, path, engine_keys, provider_keys, signing_key)
        data.pop("signing_keys_file", None)   # a single-user endpoint made multi-user: its shared key goes
    else:
        eng = data.setdefault("engine", {})
        prov = eng.setdefault("provider", {"type": "local"})
        eng.update({k: v for k, v in engine_keys.items() if v is not None})
        prov.update({k: v for k, v in provider_keys.items() if v is not None})
    model = ep_config.ManagerEndpointConfig if multi else ep_config.UserEndpointConfig
    from pydantic import ValidationError
    try:
        cfg = model.model_validate(data)
    except ValidationError as e:
        raise click.UsageError(ep_config.describe_errors(e, f"options for {path}", model)) from e
    if isinstance(cfg, ep_config.ManagerEndpointConfig):   # identity comes from the transport, not a shared key
        key_note = ""
        if multi_user or custom_files:
            from .multiuser import configure_multi_user
            key_note = configure_multi_user(name, path.parent, cfg, provider or "local", custom_files)
    else:
        key_note = _signing_key(cfg, path, signing_key if signing_key or action == "updated" else "new")
    ep_config.write(path, cfg)
    ep_id = ep_config.endpoint_id(path.parent, create=True)
    # what Globus's `globus-compute-endpoint configure` prints, and the id faas has already
    head = f"Created profile for endpoint named <{name}>" if action == "wrote" else \
        f"Updated profile for endpoint named <{name}>"
    click.echo(f"{head}\n\n\tConfiguration file: {path}\n\tEndpoint ID: {ep_id}\n"
               f"\nUse the `start` subcommand to run it:\n\n\t$ faas endpoint start {name}{key_note}{role_note}")


def _refuse_engine_options(name: str, path: Path, engine_keys: dict, provider_keys: dict,
                           signing_key: str | None) -> None:
    """A multi-user endpoint's user endpoints take their engine from its template, and their
    identity from the transport: options for either are errors that say where they go."""
    from ..endpoint import config as ep_config
    given = [k for k, v in {**engine_keys, **provider_keys}.items() if v is not None and k != "type"]
    if given:
        raise click.UsageError(
            f"{', '.join('--' + ('pbs-queue' if k == 'queue' else k.replace('_', '-')) for k in given)}: "
            f"engine options; the user endpoints of multi-user endpoint {name} take their engine from "
            f"{path.parent / ep_config.MULTI_USER_TEMPLATE}: set them there (max_blocks_per_user in "
            f"config.yaml caps their blocks)")
    if signing_key == "new":
        raise click.UsageError("--signing-key new: a multi-user endpoint takes no shared signing key; "
                               "who sends a task comes from the transport (per-user keys on S3/SQS: "
                               "user_signing_keys.json, docs/multi-user.md)")


def _signing_key(cfg, path: Path, signing_key: str | None) -> str:
    """``--signing-key`` on a single-user endpoint (new: a fresh key added, older ones kept for
    rotation; none: signing off); what to tell the user."""
    if signing_key == "none":
        cfg.signing_keys_file = None
    if signing_key != "new":
        return ""
    from .. import signing
    key_path = path.parent / "signing.key"
    key = signing.new_key()
    kept: list[str] = []
    if key_path.is_symlink() or key_path.exists():   # rotation: the keys there (proven private) stay
        from .. import private_files
        kept = [line.strip() for line in private_files.read(key_path, "task signing key").splitlines()
                if line.strip() and not line.startswith("#")]
    signing.write_key_file(key_path, "\n".join([*kept, key]))
    cfg.signing_keys_file = "signing.key"
    return (f"\ntask signing key added to {key_path} (mode 600); clients elsewhere need it:\n"
            f"  export FAAS_SIGNING_KEY='{key}'")


@endpoint.command()
@from_globus.name_argument
@click.option("--detach", is_flag=True, help="run in the background and return")
@from_globus.endpoint_uuid_option
@from_globus.common_options
def start(name, detach, endpoint_uuid) -> None:
    """Start the endpoint NAME (or UUID)'s daemon (in the foreground unless --detach)."""
    from ..endpoint import config as ep_config
    from ..endpoint import control
    name = ep_config.check_name(control.local_name(name))
    d = ep_config.endpoint_dir(name)
    from_globus.check_endpoint_uuid(endpoint_uuid, d)
    debug = bool(click.get_current_context().meta.get(from_globus.DEBUG_META))
    if detach:
        pid = control.start_detached(name, debug=debug)
        click.echo(f"Starting endpoint; registered ID: {ep_config.endpoint_id(d)}\n"
                   f"endpoint {name} running (pid {pid}); log: {d / 'endpoint.log'}")
        return
    from ..endpoint.__main__ import main as run_endpoint
    ep_config.load(d / "config.yaml")
    click.echo(f"Starting endpoint; registered ID: {ep_config.endpoint_id(d, create=True)}")
    sys.exit(run_endpoint([name, "--foreground", *(["--debug"] if debug else [])]))


@endpoint.command()
@from_globus.name_argument
@from_globus.common_options
@click.option("--timeout", default=90.0, show_default=True, help="seconds to wait for it to stop")
@from_globus.remote_option
def stop(name, timeout) -> None:
    """Stop the daemon of NAME (or UUID); its blocks hand back the tasks they hold."""
    from ..endpoint import control
    name = control.local_name(name)
    if control.stop(name, wait=timeout):
        click.echo(f"endpoint {name} stopped")
    else:
        click.echo(f"endpoint {name} was not running")


@endpoint.command()
@from_globus.name_argument
@click.option("--detach", is_flag=True, help="accepted: restart always starts the endpoint in the background")
@from_globus.endpoint_uuid_option
@from_globus.common_options
def restart(name, detach, endpoint_uuid) -> None:
    """Stop, then start detached (NAME or UUID)."""
    from ..endpoint import config as ep_config
    from ..endpoint import control
    name = control.local_name(name)
    from_globus.check_endpoint_uuid(endpoint_uuid, ep_config.endpoint_dir(name))
    control.stop(name)
    pid = control.start_detached(name, debug=bool(click.get_current_context().meta.get(from_globus.DEBUG_META)))
    click.echo(f"endpoint {name} restarted (pid {pid})")


@endpoint.command("list")
@from_globus.common_options
def list_() -> None:
    """Endpoints configured on this machine, and whether they run."""
    from ..endpoint import config as ep_config
    from ..endpoint import control
    from ..locks import daemon_pid, is_running
    names = control.local_endpoints()
    if not names:
        click.echo(f"no endpoints configured under {faas_home() / 'endpoints'}; "
                   f"`faas endpoint configure NAME` makes one")
        return
    click.echo(f"{'ENDPOINT ID':36}  {'NAME':20} {'STATE':8} {'PID':>7}  STORE")
    for n in names:
        d = ep_config.endpoint_dir(n)
        running = is_running(d)
        try:
            store = ep_config.load(d / "config.yaml").store
        except FaasError as e:
            store = f"(bad config: {str(e).splitlines()[0]})"
        try:   # an endpoint configured before ids existed gets its id at its next start
            ep_id = ep_config.endpoint_id(d) or "(at next start)"
        except FaasError:
            ep_id = "(bad endpoint.json)"
        click.echo(f"{ep_id:36}  {n:20} {'running' if running else 'stopped':8} "
                   f"{(daemon_pid(d) or '') if running else '':>7}  {store}")


def pool_health(pool: dict, stall_timeout: float) -> dict:
    """``health``: ok, or unhealthy with why (a loop that died or stopped, or a status file its
    monitor stopped writing)."""
    problem = pool.get("problem")
    age = time.time() - float(pool.get("time") or 0)
    if not problem and pool.get("state") not in ("stopped",) and age > max(30.0, stall_timeout / 4):
        problem = f"its status has not been written for {age:.0f} s (monitor stuck, or the pool died)"
    return dict(pool, health=f"unhealthy: {problem}" if problem else "ok")


@endpoint.command()
@from_globus.name_argument
@from_globus.common_options
def status(name) -> None:
    """The endpoint NAME (or UUID)'s daemon, blocks and queue depth, and the keys of its
    config.yaml that have no effect here (Globus Compute's, for its hosted service)."""
    from ..endpoint import config as ep_config
    from ..endpoint import control
    from ..locks import daemon_pid, is_running
    from ..store import open_queue
    name = control.local_name(name)
    d = ep_config.endpoint_dir(name)
    cfg = ep_config.load(d / "config.yaml")
    running = is_running(d)
    info = {"name": name, "endpoint_id": ep_config.endpoint_id(d), "display_name": cfg.display_name or name,
            "state": "running" if running else "stopped",
            "pid": daemon_pid(d) if running else None, "store": cfg.store,
            "queue": cfg.queue_url(name, faas_home())}
    if isinstance(cfg, ep_config.UserEndpointConfig):   # a multi-user endpoint's engines are its template's
        info.update({"provider": cfg.engine.provider.type, "launcher": cfg.engine.provider.launcher.type,
                     "nodes_per_block": cfg.engine.provider.nodes_per_block,
                     "max_workers_per_node": cfg.engine.max_workers_per_node})
    info.update({"no_effect_here": cfg.no_effect_here, "chosen_here": cfg.chosen_here, "blocks": []})
    try:
        daemon = json.loads((d / "daemon.status.json").read_text()) if running else {}
    except (OSError, ValueError):
        daemon = {}
    if daemon.get("last_error"):
        info["last_error"] = daemon["last_error"]
    for bid, b in daemon.get("blocks", {}).items():
        pools = []
        for sf in sorted((d / "blocks" / bid).glob("**/status.json")):
            try:
                pools.append(pool_health(json.loads(sf.read_text()), cfg.stall_timeout))
            except (OSError, ValueError):
                continue
        info["blocks"].append({"block": bid, "job": b.get("job"), "state": b.get("state"),
                               "keep_alive": b.get("keep_alive"), "pools": pools})
    if daemon.get("ended_blocks"):   # newest first; "timeout" is a pilot job's normal end
        info["ended_blocks"] = daemon["ended_blocks"][::-1]
    from .multiuser import multi_user_status
    if not multi_user_status(d, info, running):
        try:
            info["queue_depth"] = open_queue(info["queue"]).depth()
        except FaasError as e:
            info["queue_depth"] = f"unavailable: {e}"
    click.echo(json.dumps(info, indent=2))


@endpoint.command()
@from_globus.name_argument
@from_globus.common_options
@click.option("--yes", is_flag=True, help="do not ask")
@click.option("--force", is_flag=True, help="delete the folder even when its config.yaml does not load or its "
                                            "record cannot be deleted from the store (Globus's --force)")
def delete(name, yes, force) -> None:
    """Stop the endpoint NAME (or UUID), delete its queue, registry record and folder."""
    from ..endpoint import config as ep_config
    from ..endpoint import control
    name = ep_config.check_name(control.local_name(name))   # --force removes the folder it names
    d = ep_config.endpoint_dir(name)
    try:
        cfg = ep_config.load(d / "config.yaml")
    except FaasError as e:
        if not force or not d.is_dir():
            raise _with_force_hint(e, name) from None
        click.echo(f"warning: {e}\n(--force: its queue and its record in the store are left)", err=True)
        cfg = None
    if not yes:
        click.confirm(f"delete endpoint {name} ({d}) and its queue?", abort=True)
    control.stop(name)
    if cfg is not None:
        _delete_queue_and_record(name, cfg, force)
    shutil.rmtree(d)
    click.echo(f"endpoint {name} deleted")


def _with_force_hint(e: FaasError, name: str) -> FaasError:
    return FaasError(f"{e}\n`faas endpoint delete {name} --force` deletes the endpoint's folder anyway")


def _delete_queue_and_record(name: str, cfg, force: bool) -> None:
    """The endpoint's queue (gone already is fine) and its record in the store (an error unless
    ``force``, which goes on with a warning)."""
    from ..messages import endpoint_key
    from ..store import open_queue, open_store
    try:
        open_queue(cfg.queue_url(name, faas_home())).destroy()
    except FaasError:
        pass
    try:
        open_store(cfg.store).delete(endpoint_key(name))
    except FaasError as e:
        if not force:
            raise _with_force_hint(e, name) from None
        click.echo(f"warning: its record in {cfg.store} is left: {e}", err=True)


# -- tasks -----------------------------------------------------------------------------

def _load_callable(spec: str):
    import importlib
    module, sep, attr = spec.partition(":")
    if not sep or not module or not attr:
        raise click.BadParameter(f"{spec!r}: expected module:callable, e.g. mypkg.tasks:score",
                                 param_hint="--function")
    # The user's own module may be in the current folder (as with `python -m`), but that folder
    # may be one others can write into (a shared 1777 project folder): searched last, and only
    # for this import, so no module planted there (secrets.py, hmac.py, json.py) shadows a
    # standard or installed one, neither now nor in what faas imports later.
    cwd = os.getcwd()
    added = not any(p in ("", ".", cwd) for p in sys.path)
    if added:
        sys.path.append(cwd)
    try:
        mod = importlib.import_module(module)
    except ImportError as e:
        raise click.BadParameter(f"cannot import module {module!r}: {e}", param_hint="--function") from e
    finally:
        if added:
            try:
                sys.path.remove(cwd)
            except ValueError:
                pass
    obj = mod
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise click.BadParameter(f"module {module!r} has no attribute {attr!r}", param_hint="--function")
        obj = getattr(obj, part)
    if not callable(obj):
        raise click.BadParameter(f"{spec} is a {type(obj).__name__}, not a callable", param_hint="--function")
    return obj


def _read_calls(path: str) -> list[tuple[tuple, dict]]:
    calls = []
    stream = sys.stdin if path == "-" else open(path)
    with stream:
        for lineno, line in enumerate(stream, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                item = json.loads(line)
            except ValueError as e:
                raise click.BadParameter(f"{where}: not JSON: {e}", param_hint="--input") from e
            if not isinstance(item, dict) or set(item) - {"args", "kwargs"}:
                raise click.BadParameter(
                    f'{where}: expected {{"args": [...], "kwargs": {{...}}}}, got {line.strip()[:80]}',
                    param_hint="--input")
            args, kwargs = item.get("args", []), item.get("kwargs", {})
            if not isinstance(args, list) or not isinstance(kwargs, dict):
                raise click.BadParameter(f"{where}: 'args' must be a list and 'kwargs' an object",
                                         param_hint="--input")
            calls.append((tuple(args), kwargs))
    return calls


@main.command()
@click.option("--endpoint", "endpoint_name", help="endpoint name or UUID [default: the profile's, else local]")
@click.option("--function", "function_spec", required=True, help="module:callable to run")
@click.option("--input", "input_path", required=True,
              help="JSON Lines of calls: {\"args\": [...], \"kwargs\": {...}} ('-' for stdin)")
@click.option("--output", "output_path", help="JSON Lines of results, in input order [default: stdout]")
@click.option("--chunksize", default=1, show_default=True, type=click.IntRange(1), help="calls per task message")
@click.option("--timeout", type=float, help="seconds per task before it is stopped")
@click.option("--profile", help="profile in $FAAS_HOME/config")
@click.option("--store", help="store URL [default: the profile's, else the embedded store]")
@click.option("--progress/--no-progress", default=None, help="progress bar [default: on a terminal]")
@click.option("--user-endpoint-config", "uec_path", metavar="VARS.json",
              help="variables for a multi-user endpoint's template (a JSON object)")
def submit(endpoint_name, function_spec, input_path, output_path, chunksize, timeout, profile, store,
           progress, uec_path) -> None:
    """Run a batch of calls; exit 1 if any call failed (a summary says which)."""
    from concurrent.futures import as_completed

    from tqdm import tqdm

    import faas

    from .multiuser import read_vars
    fn = _load_callable(function_spec)
    calls = _read_calls(input_path)
    uec = read_vars(uec_path, "--user-endpoint-config") if uec_path else None
    client = _client(profile, store, endpoint_name)
    ex = faas.Executor(client=client, task_timeout=timeout, user_endpoint_config=uec)
    chunks = [calls[i:i + chunksize] for i in range(0, len(calls), chunksize)]
    futures = ex._submit_chunks(fn, chunks) if chunks else []
    show = sys.stderr.isatty() if progress is None else progress
    failed = []
    with tqdm(total=len(futures), disable=not show, unit="call", file=sys.stderr) as bar:
        for _ in as_completed(futures):
            bar.update(1)
    out = open(output_path, "w") if output_path else sys.stdout
    with out if output_path else _nullctx(out):
        for i, f in enumerate(futures):
            rec = {"index": i, "task_id": f.task_id}
            try:
                rec["result"] = f.result()
                json.dumps(rec["result"])
            except TypeError:
                rec["result"] = repr(rec["result"])
            except BaseException as e:  # noqa: BLE001 - reported per call
                rec["error"] = {"type": type(e).__name__, "message": str(e)}
                failed.append((i, f.task_id, e))
            out.write(json.dumps(rec) + "\n")
    ex.shutdown()
    client.close()
    click.echo(f"{len(futures)} call(s): {len(futures) - len(failed)} succeeded, {len(failed)} failed", err=True)
    for i, tid, exc in failed[:20]:
        click.echo(f"  line {i + 1} (task {tid}): {type(exc).__name__}: {str(exc)[:200]}", err=True)
    if len(failed) > 20:
        click.echo(f"  ... and {len(failed) - 20} more", err=True)
    sys.exit(1 if failed else 0)


class _nullctx:
    def __init__(self, obj):
        self.obj = obj

    def __enter__(self):
        return self.obj

    def __exit__(self, *exc):
        self.obj.flush()


@main.command()
@click.argument("task_id")
@click.option("--timeout", type=float, default=0.0, show_default=True, help="seconds to wait for it")
@click.option("--profile")
@click.option("--store")
def result(task_id, timeout, profile, store) -> None:
    """Print a task's result as JSON (exit 1 if it failed)."""
    from ..exceptions import TaskNotFound, TaskTimeout
    from ..messages import check_task_id
    try:
        check_task_id(task_id)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="'TASK_ID'") from None
    client = _client(profile, store)
    try:
        value = client.get_result(task_id, timeout=timeout)
    except TaskTimeout:
        if client.get_task(task_id)["status"] != "pending":
            raise
        # Nothing in the store: no worker took it (the queue is not searched), so it never
        # existed for this user, or it is still waiting in a queue.
        waited = f" after {timeout:g} s" if timeout else ""
        hint = "" if timeout else " (pass --timeout SECONDS to wait for it)"
        raise TaskNotFound(f"no task {task_id} is known to store {client.store.url}{waited}: none with "
                           f"that id was submitted with this user's result key, or it has not started "
                           f"yet{hint}") from None
    except FaasError:
        raise
    except BaseException as e:  # noqa: BLE001 - the task's own exception
        click.echo(json.dumps({"task_id": task_id, "status": "failed",
                               "error": {"type": type(e).__name__, "message": str(e)}}))
        tb = getattr(e.__cause__, "tb", None)
        if tb:
            click.echo(tb, err=True)
        sys.exit(1)
    try:
        text = json.dumps({"task_id": task_id, "status": "success", "result": value})
    except TypeError:
        text = json.dumps({"task_id": task_id, "status": "success", "result": repr(value)})
    click.echo(text)


@main.command("status")
@click.argument("task_id")
@click.option("--profile")
@click.option("--store")
def task_status(task_id, profile, store) -> None:
    """Print a task's status as JSON."""
    click.echo(json.dumps(_client(profile, store).get_task(task_id), indent=2))


@main.command()
@click.argument("task_id")
@click.option("--profile")
@click.option("--store")
def cancel(task_id, profile, store) -> None:
    """Cancel a task: if not started it never runs; if running it is stopped."""
    click.echo(json.dumps(_client(profile, store).cancel(task_id)))


main.add_command(tf_cli.profile)
# The command families import `main`'s groups (endpoint, ...): they come after them (E402).
from .multiuser import register as _register_multiuser  # noqa: E402

_register_multiuser(endpoint)
from_globus.register(endpoint)
# Each command family lives in its own module (faas/cli/<family>.py).
from .actions import actions as _actions  # noqa: E402
from .console import console as _console  # noqa: E402
from .flows import flows as _flows  # noqa: E402
from .timers import timers as _timers  # noqa: E402

main.add_command(_flows)
main.add_command(_timers)
main.add_command(_console)
main.add_command(_actions)


if __name__ == "__main__":
    main()
