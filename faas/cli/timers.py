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
@store_options
@friendly
def create(flow_id, input_path, function_id, endpoint, args_json, kwargs_json, transfer, name,
           start, interval, stop_after_date, stop_after_runs, run_missed, store, profile) -> None:
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
    emit(_client(store, profile).create(
        flow_id, data, function_id=function_id, endpoint=endpoint, args=args, kwargs=kwargs,
        transfer=tuple(transfer) if transfer else None, name=name, start=start,
        interval=interval, stop_after_date=stop_after_date, stop_after_runs=stop_after_runs,
        run_missed=run_missed))


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
