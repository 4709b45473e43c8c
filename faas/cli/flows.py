"""``faas flows``: validate, deploy, start and watch flows (see faas/flows/ and docs/flows.md)."""
from __future__ import annotations

import functools
import json
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import click

from faas.exceptions import FaasError

F = TypeVar("F", bound=Callable[..., Any])   # a click command function, kept as it is typed


def read_doc(path: str, what: str, yaml_ok: bool = True) -> Any:
    """A JSON (or YAML) document from ``path`` (``-``: stdin), with an error naming the file."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except OSError as e:
        raise click.ClickException(f"{what} {path}: cannot read: {e.strerror or e}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as je:
        if not yaml_ok:
            raise click.ClickException(f"{what} {path}: not valid JSON: {je}") from None
        import yaml
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as ye:
            raise click.ClickException(f"{what} {path}: neither JSON ({je}) nor YAML ({ye})") from None


def emit(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=True, default=str))


def table(rows: list[dict], cols: list[tuple[str, str]]) -> None:
    """A short table: ``cols`` is ``[(header, key)]``."""
    cells = [[h for h, _ in cols]] + [[("" if r.get(k) is None else str(r.get(k))) for _, k in cols]
                                      for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cols))]
    for row in cells:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def friendly(fn: F) -> F:
    """Errors as one clear line (exit 1), never a traceback."""
    @functools.wraps(fn)
    def wrapper(*a: Any, **kw: Any) -> Any:
        try:
            return fn(*a, **kw)
        except (FaasError, ValueError, LookupError, PermissionError, TimeoutError) as e:
            raise click.ClickException(str(e)) from None
    return cast(F, wrapper)


def store_options(fn: F) -> F:
    fn = click.option("--profile", help="profile in $FAAS_HOME/config")(fn)
    fn = click.option("--store", help="store URL [default: the profile's, else the embedded one]")(fn)
    return fn


def _client(store, profile):
    from faas.flows.client import FlowsClient
    return FlowsClient(store, profile)


@click.group()
def flows() -> None:
    """Flows in the Globus Flows language: validate, deploy, start, watch."""


@flows.command()
@click.argument("definition")
@click.option("--input-schema", "input_schema", help="JSON Schema file for the flow's input")
def validate(definition: str, input_schema: str | None) -> None:
    """Check DEFINITION (JSON or YAML): every error with its location; exit 1 if any."""
    from faas.flows.client import problems_of
    d = read_doc(definition, "definition")
    s = read_doc(input_schema, "input schema") if input_schema else None
    found = problems_of(d, s)
    for p in found:
        where = input_schema if p["location"].startswith("input_schema") else definition
        click.echo(f"{where}: {p['location']}: {p['message']}", err=True)
    if found:
        click.echo(f"{len(found)} problem(s)", err=True)
        sys.exit(1)
    click.echo(f"{definition}: valid")


@flows.command()
@click.argument("definition")
@click.option("--input-schema", "input_schema", help="JSON Schema file for the flow's input")
@click.option("--title")
@click.option("--subtitle")
@click.option("--description")
@click.option("--keyword", "keywords", multiple=True)
@click.option("--viewer", "viewers", multiple=True, help="user or identity (repeatable)")
@click.option("--starter", "starters", multiple=True, help="user or identity (repeatable)")
@click.option("--administrator", "administrators", multiple=True,
              help="user or identity (repeatable)")
@store_options
@friendly
def deploy(definition, input_schema, title, subtitle, description, keywords, viewers, starters,
           administrators, store, profile) -> None:
    """Deploy DEFINITION to the store; print the flow document (its id is the flow id)."""
    d = read_doc(definition, "definition")
    s = read_doc(input_schema, "input schema") if input_schema else None
    emit(_client(store, profile).deploy(d, s, title=title, subtitle=subtitle,
                                        description=description, keywords=keywords,
                                        viewers=viewers, starters=starters,
                                        administrators=administrators))


@flows.command("list")
@click.option("--json", "as_json", is_flag=True, help="print JSON, not a table")
@store_options
@friendly
def list_(as_json, store, profile) -> None:
    """The flows you can see."""
    found = _client(store, profile).list_flows()
    if as_json:
        emit(found)
    else:
        table(found, [("ID", "id"), ("VERSION", "version"), ("TITLE", "title"),
                      ("OWNER", "owner"), ("UPDATED", "updated_at")])


@flows.command()
@click.argument("flow_id")
@click.option("--version", type=int)
@store_options
@friendly
def show(flow_id, version, store, profile) -> None:
    """One flow document (the latest version unless --version)."""
    emit(_client(store, profile).get_flow(flow_id, version))


@flows.command()
@click.argument("flow_id")
@click.option("--definition", help="new definition file (JSON or YAML)")
@click.option("--input-schema", "input_schema", help="new input schema file")
@click.option("--title")
@click.option("--subtitle")
@click.option("--description")
@click.option("--keyword", "keywords", multiple=True)
@click.option("--viewer", "viewers", multiple=True)
@click.option("--starter", "starters", multiple=True)
@click.option("--administrator", "administrators", multiple=True)
@store_options
@friendly
def update(flow_id, definition, input_schema, title, subtitle, description, keywords, viewers,
           starters, administrators, store, profile) -> None:
    """Change a flow (a new version); print it."""
    changes: dict = {"title": title, "subtitle": subtitle, "description": description}
    if definition:
        changes["definition"] = read_doc(definition, "definition")
    if input_schema:
        changes["input_schema"] = read_doc(input_schema, "input schema")
    for name, value in (("keywords", keywords), ("viewers", viewers), ("starters", starters),
                        ("administrators", administrators)):
        if value:
            changes[name] = list(value)
    emit(_client(store, profile).update_flow(flow_id, **changes))


@flows.command()
@click.argument("flow_id")
@store_options
@friendly
def delete(flow_id, store, profile) -> None:
    """Delete a flow (runs in progress finish)."""
    _client(store, profile).delete_flow(flow_id)
    click.echo(f"deleted flow {flow_id}")


@flows.command()
@click.argument("flow_id")
@click.option("--input", "input_path", help="input JSON/YAML file ('-': stdin) [default: {}]")
@click.option("--label")
@click.option("--tag", "tags", multiple=True)
@click.option("--manager", "managers", multiple=True)
@click.option("--monitor", "monitors", multiple=True)
@click.option("--wait", is_flag=True, help="wait for the run to end; exit 1 unless it succeeded")
@click.option("--timeout", type=float, help="with --wait: give up after this many seconds")
@store_options
@friendly
def start(flow_id, input_path, label, tags, managers, monitors, wait, timeout, store,
          profile) -> None:
    """Start a run of FLOW_ID; print the run document (run_id)."""
    data = read_doc(input_path, "input") if input_path else {}
    c = _client(store, profile)
    run = c.start(flow_id, data, label=label, tags=tags, managers=managers, monitors=monitors)
    if wait:
        run = c.wait(run["run_id"], timeout)
    emit(run)
    if wait and run["status"] != "SUCCEEDED":
        sys.exit(1)


@flows.command()
@click.option("--flow", "flow_id", help="only runs of this flow")
@click.option("--status", "statuses", multiple=True,
              type=click.Choice(["ACTIVE", "INACTIVE", "SUCCEEDED", "FAILED", "ENDED"]))
@click.option("--label")
@click.option("--since", help="only runs started at or after this ISO 8601 time")
@click.option("--json", "as_json", is_flag=True)
@store_options
@friendly
def runs(flow_id, statuses, label, since, as_json, store, profile) -> None:
    """The runs you can see."""
    found = _client(store, profile).list_runs(flow_id, statuses or None, label, since)
    if as_json:
        emit(found)
    else:
        table(found, [("RUN", "run_id"), ("FLOW", "flow_id"), ("STATUS", "status"),
                      ("LABEL", "label"), ("STARTED", "start_time")])


@flows.command()
@click.argument("run_id")
@store_options
@friendly
def status(run_id, store, profile) -> None:
    """A run document."""
    emit(_client(store, profile).get_run(run_id))


def _line(e: dict) -> str:
    return f"{e['seq']:>4} {e['time']} {e['code']:<22} {e['description']}"


@flows.command("log")
@click.argument("run_id")
@click.option("--follow", "-f", is_flag=True, help="keep printing until the run ends")
@click.option("--after", type=int, help="only entries after this seq")
@click.option("--json", "as_json", is_flag=True, help="one JSON object a line, with details")
@store_options
@friendly
def log_(run_id, follow, after, as_json, store, profile) -> None:
    """A run's event log."""
    from faas.flows.client import DONE
    c = _client(store, profile)
    last = after or 0
    while True:
        for e in c.get_log(run_id, last):
            click.echo(json.dumps(e, sort_keys=True, default=str) if as_json else _line(e))
            last = e["seq"]
        if not follow:
            return
        if c.get_run(run_id)["status"] in DONE:
            for e in c.get_log(run_id, last):   # what came with the end
                click.echo(json.dumps(e, sort_keys=True, default=str) if as_json else _line(e))
            return
        time.sleep(0.5)


@flows.command()
@click.argument("run_id")
@store_options
@friendly
def cancel(run_id, store, profile) -> None:
    """Cancel a run (its actions are canceled; it ends as ENDED)."""
    _client(store, profile).cancel_run(run_id)
    click.echo(f"cancel of run {run_id} sent")


@flows.command()
@click.argument("run_id")
@store_options
@friendly
def resume(run_id, store, profile) -> None:
    """Check a run's waiting actions now."""
    _client(store, profile).resume_run(run_id)
    click.echo(f"resume of run {run_id} sent")


@flows.command()
@click.argument("run_id")
@click.option("--comment")
@store_options
@friendly
def approve(run_id, comment, store, profile) -> None:
    """Approve the run's waiting approval action."""
    emit({"run_id": run_id, "approved": _client(store, profile).approve(run_id, comment)})


@flows.command()
@click.argument("run_id")
@click.option("--comment")
@store_options
@friendly
def reject(run_id, comment, store, profile) -> None:
    """Reject the run's waiting approval action (the action fails)."""
    emit({"run_id": run_id, "rejected": _client(store, profile).reject(run_id, comment)})


@flows.command()
@click.option("--once", is_flag=True, help="one pass over what is due now, then exit")
@click.option("--queue", "queue_url", help="command queue URL (recorded in the store for clients)")
@click.option("--config", "config_path", help="site config (YAML/JSON) handed to every action, "
                                              "e.g. collections")
@click.option("--import", "imports", multiple=True,
              help="import this module first (it registers action providers)")
@click.option("--idle-exit", type=float, default=None, metavar="SECONDS",
              help="exit after this long with no run and no active timer (autostarted runners)")
@click.option("-v", "--verbose", is_flag=True)
@store_options
@friendly
def serve(once, queue_url, config_path, imports, idle_exit, verbose, store, profile) -> None:
    """Run the durable runner for a store (one active runner a store; others stand by)."""
    import importlib
    import logging

    from faas.config import resolve
    from faas.flows.runner import Runner
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    for m in imports:
        importlib.import_module(m)
    from faas.flows import site_config
    config = site_config.check(read_doc(config_path, "config"), config_path) if config_path else None
    url = resolve(profile, store=store).store_url
    runner = Runner(url, config=config, queue_url=queue_url)
    signal.signal(signal.SIGTERM, lambda *_: setattr(runner, "stopping", True))
    should_stop = None
    if idle_exit is not None:
        from faas.flows.control import idle_stopper
        root = getattr(runner.store, "root", None)
        should_stop = idle_stopper(runner, idle_exit, Path(root) if root else None)
    runner.serve(once=once, should_stop=should_stop)
