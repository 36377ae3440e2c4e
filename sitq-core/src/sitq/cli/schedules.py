"""``sitq schedule``: list, add, pause, resume and remove periodic tasks (`TaskQueue.schedule` and kin).

One command with an action each, so that ``sitq schedule --help`` shows them together; `add` names its
function and reads its arguments as `sitq enqueue` does.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from rich.table import Table
from rich.text import Text

from sitq.cli import jsonable, tables
from sitq.cli.connect import open_queue
from sitq.cli.errors import ExitCode
from sitq.cli.inputs import import_function, parse_argument, parse_kwargs
from sitq.cli.output import Output
from sitq.models import Task
from sitq.schedules import CatchUp, Schedule

Handler = Callable[[argparse.Namespace, Output], Coroutine[Any, Any, ExitCode]]


def add_actions(parser: argparse.ArgumentParser, parents: Sequence[argparse.ArgumentParser]) -> None:
    """The actions of ``sitq schedule``, each with the shared options (`parents`) of every command;
    without one, it lists."""
    actions = parser.add_subparsers(title="actions", dest="action", metavar="ACTION")

    def action(name: str, handler: Handler, summary: str) -> argparse.ArgumentParser:
        sub = actions.add_parser(name, help=summary, description=summary, parents=list(parents))
        sub.set_defaults(handler=handler)
        return sub

    action("list", list_schedules, "list the schedules with their next run")
    sub = action("add", add, "create or replace a schedule that enqueues a call at every tick of a cron")
    sub.add_argument("name", metavar="NAME", help="the schedule's name; an existing one is replaced")
    sub.add_argument("function", metavar="MODULE:FUNCTION", help="the task function, such as tasks:report")
    sub.add_argument("arguments", nargs="*", metavar="ARG", help="positional arguments, as for sitq enqueue")
    sub.add_argument("--cron", required=True, metavar="EXPR", help="when, such as '*/5 * * * *' (quoted)")
    sub.add_argument("--timezone", default="UTC", metavar="TZ", help="IANA zone of the cron (default: UTC)")
    sub.add_argument(
        "--catch-up",
        choices=[choice.value for choice in CatchUp],
        default=CatchUp.ONCE.value,
        help="after downtime, run the latest missed tick once, or skip missed ticks (default: once)",
    )
    sub.add_argument("--kwargs", metavar="JSON", help='keyword arguments as a JSON object: \'{"to": "ann"}\'')
    sub.add_argument("--priority", type=int, metavar="N", help="higher runs first (default: the function's)")
    sub.add_argument("--queue", metavar="Q", help="the queue (default: the function's, else default)")
    for name, handler, summary in (
        ("pause", pause, "stop firing a schedule until it is resumed"),
        ("resume", resume, "fire a paused schedule again, from its next tick"),
        ("remove", remove, "delete a schedule (the tasks it enqueued stay)"),
    ):
        action(name, handler, summary).add_argument("name", metavar="NAME")


async def list_schedules(args: argparse.Namespace, output: Output) -> ExitCode:
    async with open_queue(args.url) as queue:
        schedules = await queue.schedules()
    if output.json_mode:
        output.json({"schedules": [jsonable.plain(schedule) for schedule in schedules]})
    elif schedules:
        output.show(_table(schedules))
    else:
        output.note("no schedules")
    return ExitCode.OK


async def add(args: argparse.Namespace, output: Output) -> ExitCode:
    task = Task(
        import_function(args.function),
        [parse_argument(argument) for argument in args.arguments],
        parse_kwargs(args.kwargs) if args.kwargs is not None else {},
        queue=args.queue,
        priority=args.priority,
    )
    async with open_queue(args.url) as queue:
        schedule = await queue.schedule(
            args.name, task, cron=args.cron, timezone=args.timezone, catch_up=args.catch_up
        )
    _report(output, schedule, "saved")
    return ExitCode.OK


async def pause(args: argparse.Namespace, output: Output) -> ExitCode:
    async with open_queue(args.url) as queue:
        _report(output, await queue.pause_schedule(args.name), "paused")
    return ExitCode.OK


async def resume(args: argparse.Namespace, output: Output) -> ExitCode:
    async with open_queue(args.url) as queue:
        _report(output, await queue.resume_schedule(args.name), "resumed")
    return ExitCode.OK


async def remove(args: argparse.Namespace, output: Output) -> ExitCode:
    async with open_queue(args.url) as queue:
        await queue.unschedule(args.name)
    if output.json_mode:
        output.json({"name": args.name, "removed": True})
    else:
        output.line(f"schedule {args.name} removed")
    return ExitCode.OK


def _report(output: Output, schedule: Schedule, done: str) -> None:
    if output.json_mode:
        output.json(jsonable.plain(schedule))
    elif schedule.paused:
        output.line(f"schedule {schedule.name} {done}")
    else:
        next_run = schedule.next_run.astimezone().strftime("%Y-%m-%d %H:%M:%S")
        output.line(f"schedule {schedule.name} {done}: next run {next_run} (local time)")


def _table(schedules: Sequence[Schedule]) -> Table:
    """The schedules, one a row; times in local time, as every table of the command shows them."""
    table = tables.table()
    for column in ("name", "cron", "timezone", "task", "queue", "next run", "last run", "catch-up"):
        table.add_column(column, no_wrap=column in ("name", "next run", "last run"))
    for schedule in schedules:
        next_run = Text("paused", style="dim") if schedule.paused else tables.when(schedule.next_run)
        table.add_row(
            schedule.name,
            schedule.cron,
            schedule.timezone,
            schedule.task_name,
            schedule.queue,
            next_run,
            tables.when(schedule.last_run),
            schedule.catch_up.value,
        )
    return table
