"""``faas timers``: scheduled and recurring flow runs, tasks and transfers."""
from __future__ import annotations

import json

import click

from faas.cli.flows import emit, friendly, read_doc, store_options, table


def _client(store, profile):
    from faas.flows.timers import TimersClient
    return TimersClient(store, profile)


@click.group()
def timers() -> None:
    """Timers: once or recurring runs of a flow, a function or a transfer."""


@timers.command()
@click.option("--flow", "flow_id", help="start a run of this flow")
@click.option("--input", "input_path", help="with --flow: input JSON/YAML file")
@click.option("--function", "function_id", help="run this registered function")
@click.option("--endpoint", help="with --function: the endpoint to run it on")
@click.option("--args", "args_json", help="with --function: JSON list of arguments")
@click.option("--kwargs", "kwargs_json", help="with --function: JSON object of keyword arguments")
@click.option("--transfer", nargs=2, metavar="SRC DST", help="copy SRC to DST (fsspec URLs)")
@click.option("--name")
@click.option("--start", help="first run (ISO 8601) [default: now]")
@click.option("--interval", help="repeat every N seconds, or 1h / 30m / 1h30m / 2d")
@click.option("--stop-after-date", help="no run after this ISO 8601 time")
@click.option("--stop-after-runs", type=int, help="end after this many runs")
@click.option("--run-missed", type=click.Choice(["once", "skip"]), default="once",
              help="ticks missed while no runner was up: run one of them, or none")
@click.option("--recursive/--no-recursive", default=None,
              help="with --transfer: copy a folder [default: when SRC ends with /]")
@click.option("--sync-level", type=click.Choice(["exists", "size", "mtime", "checksum",
                                                 "0", "1", "2", "3"]),
              help="with --transfer: copy only files missing (exists), of another size, newer "
                   "(mtime) or with another checksum at the destination")
@click.option("--verify-checksum/--no-verify-checksum", default=None,
              help="with --transfer: check each copy's checksum [default: check]")
@click.option("--preserve-timestamp", is_flag=True, default=None,
              help="with --transfer: give copies their source's modification time")
@click.option("--delete-destination-extra", is_flag=True, default=None,
              help="with --transfer: delete files at the destination that the source lacks")
@click.option("--skip-source-errors", is_flag=True, default=None,
              help="with --transfer: skip (and record) sources that cannot be read")
@click.option("--filter-rule", "filter_rule", multiple=True, metavar="METHOD:[TYPE:]NAME",
              help="with --transfer: include or exclude names, in order, first match decides "
                   "(e.g. exclude:file:*.tmp, exclude:dir:cache, include:*.txt)")
@click.option("--label", help="with --transfer: the transfer's label")
@click.option("--deadline", help="with --transfer: ISO 8601 time after which a copy fails")
@store_options
@friendly
def create(flow_id, input_path, function_id, endpoint, args_json, kwargs_json, transfer, name,
           start, interval, stop_after_date, stop_after_runs, run_missed, recursive, sync_level,
           verify_checksum, preserve_timestamp, delete_destination_extra, skip_source_errors,
           filter_rule, label, deadline, store, profile) -> None:
    """Create a timer; print it (its id)."""
    def parse(text, what, kind):
        try:
            v = json.loads(text)
        except json.JSONDecodeError as e:
            raise click.ClickException(f"--{what}: not valid JSON: {e}") from None
        if not isinstance(v, kind):
            raise click.ClickException(f"--{what}: expected a JSON {kind.__name__}")
        return v
    args = parse(args_json, "args", list) if args_json else []
    kwargs = parse(kwargs_json, "kwargs", dict) if kwargs_json else {}
    data = read_doc(input_path, "input") if input_path else None
    rules = [_filter_rule(r) for r in filter_rule] or None
    emit(_client(store, profile).create(
        flow_id, data, function_id=function_id, endpoint=endpoint, args=args, kwargs=kwargs,
        transfer=tuple(transfer) if transfer else None, name=name, start=start,
        interval=interval, stop_after_date=stop_after_date, stop_after_runs=stop_after_runs,
        run_missed=run_missed, recursive=recursive,
        sync_level=int(sync_level) if sync_level and sync_level.isdigit() else sync_level,
        verify_checksum=verify_checksum, preserve_timestamp=preserve_timestamp,
        delete_destination_extra=delete_destination_extra, skip_source_errors=skip_source_errors,
        filter_rules=rules, label=label, deadline=deadline))


def _filter_rule(text: str) -> dict:
    """``METHOD:[TYPE:]NAME`` -> Globus's ``{method, type, name}``."""
    method, sep, rest = text.partition(":")
    kind: str | None
    kind, sep2, name = rest.partition(":")
    if not sep2 or kind not in ("file", "dir"):
        kind, name = None, rest
    if not sep or method not in ("include", "exclude") or not name:
        raise click.ClickException(f"--filter-rule {text!r}: expected METHOD:[TYPE:]NAME with "
                                   f"METHOD include or exclude, TYPE file or dir "
                                   f"(e.g. exclude:file:*.tmp)")
    return {"method": method, "name": name, **({"type": kind} if kind else {})}


@timers.command("list")
@click.option("--json", "as_json", is_flag=True)
@store_options
@friendly
def list_(as_json, store, profile) -> None:
    """Your timers."""
    found = _client(store, profile).list()
    if as_json:
        emit(found)
    else:
        table(found, [("ID", "id"), ("NAME", "name"), ("KIND", "kind"), ("STATUS", "status"),
                      ("NEXT RUN", "next_run"), ("RUNS", "runs"), ("SKIPPED", "skipped"),
                      ("ERRORS", "errors")])


@timers.command()
@click.argument("timer_id")
@store_options
@friendly
def show(timer_id, store, profile) -> None:
    """A timer: status, last_ran_at, next_run, runs, errors, recent ticks."""
    emit(_client(store, profile).get(timer_id))


@timers.command()
@click.argument("timer_id")
@store_options
@friendly
def pause(timer_id, store, profile) -> None:
    """Stop firing a timer until resumed."""
    emit(_client(store, profile).pause(timer_id))


@timers.command()
@click.argument("timer_id")
@store_options
@friendly
def resume(timer_id, store, profile) -> None:
    """Fire a paused timer again, from its next scheduled time."""
    emit(_client(store, profile).resume(timer_id))


@timers.command()
@click.argument("timer_id")
@store_options
@friendly
def delete(timer_id, store, profile) -> None:
    """Delete a timer (its runs stay)."""
    _client(store, profile).delete(timer_id)
    click.echo(f"deleted timer {timer_id}")
