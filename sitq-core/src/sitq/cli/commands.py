"""The commands that enqueue, inspect and administer a queue: one coroutine per command, each taking the
parsed arguments and an `Output`, and returning the exit code."""

from __future__ import annotations

import argparse
from typing import Any

from sitq.cli import jsonable, tables
from sitq.cli.connect import open_queue, resolve_url
from sitq.cli.errors import ExitCode
from sitq.cli.inputs import import_function, parse_argument, parse_duration, parse_eta, parse_kwargs
from sitq.cli.output import Output
from sitq.errors import SerializationError
from sitq.models import Task, TaskStatus, utcnow
from sitq.plugins import default_plugins
from sitq.queue import TaskQueue
from sitq.sealing import Sealer
from sitq.urls import redacted

_REQUEUEABLE = frozenset({TaskStatus.FAILED, TaskStatus.TIMEOUT, TaskStatus.CANCELLED})
SHOWN_RESULT_BYTES = 1024 * 1024
"""`sitq show` decodes a stored result up to this size; a larger one it describes by its size, since
decoding and drawing it can take minutes and gigabytes."""


async def enqueue(args: argparse.Namespace, output: Output) -> ExitCode:
    """Store a call to a function from the user's code; print its task id (alone, for `$(...)`)."""
    function = import_function(args.function)
    task = Task(
        function,
        [parse_argument(argument) for argument in args.arguments],
        parse_kwargs(args.kwargs) if args.kwargs is not None else {},
        eta=None if args.eta is None else parse_eta(args.eta, utcnow()),
        queue=args.queue,
        priority=args.priority,
        unique_key=args.unique_key,
        unique_for=None if args.unique_for is None else parse_duration(args.unique_for, "--unique-for"),
    )
    async with open_queue(args.url) as queue:
        task_id = await queue.enqueue(task)
        if output.json_mode:
            output.json(jsonable.task(await queue.get_task(task_id)))
    if not output.json_mode:
        output.line(task_id)
    return ExitCode.OK


async def list_tasks(args: argparse.Namespace, output: Output) -> ExitCode:
    """A page of tasks, oldest first, with the cursor for the next page."""
    async with open_queue(args.url) as queue:
        infos = await queue.list_tasks(args.status, queue=args.queue, limit=args.limit, after=args.after)
    after = infos[-1].id if len(infos) == args.limit else None
    if output.json_mode:
        output.json({"tasks": [jsonable.task(info) for info in infos], "next_after": after})
        return ExitCode.OK
    if not infos:
        output.note("no tasks" + (" match" if args.status or args.queue or args.after else ""))
        return ExitCode.OK
    output.show(tables.tasks(infos, output.out.width))
    if after is not None:
        output.note(f"more may follow: sitq list --after {after} (with the same filters)")
    return ExitCode.OK


async def show(args: argparse.Namespace, output: Output) -> ExitCode:
    """One task in full: options, times, attempt history, traceback, and a successful task's value."""
    async with open_queue(args.url) as queue:
        info = await queue.get_task(args.task_id)
        has_result = info.status is TaskStatus.SUCCESS
        size, value = await _result(queue, args.task_id) if has_result else (0, None)
    if output.json_mode:
        result = {"result": jsonable.plain(value), "result_bytes": size} if has_result else {}
        output.json(jsonable.task(info) | result)
    elif not has_result:
        output.show(tables.task_detail(info))
    elif size <= SHOWN_RESULT_BYTES:
        output.show(tables.task_detail(info, tables.result_value(value)))
    else:
        output.show(tables.task_detail(info, tables.result_not_shown(size, SHOWN_RESULT_BYTES)))
    return ExitCode.OK


async def _result(queue: TaskQueue, task_id: str) -> tuple[int, Any]:
    """A successful task's result: its stored size, and its value when small enough to show."""
    record = await queue.backend.get(task_id)  # the size, without decoding what may be huge
    size = 0 if record is None or record.result is None else len(record.result)
    if size > SHOWN_RESULT_BYTES:
        return size, None
    try:
        result = await queue.get_result(task_id, timeout=0)
    except SerializationError as exc:  # its type may live in code this process cannot import
        return size, f"<cannot decode the result here: {type(exc).__name__}: {exc}>"
    return size, None if result is None else result.value


async def stats(args: argparse.Namespace, output: Output) -> ExitCode:
    async with open_queue(args.url) as queue:
        by_queue = await queue.stats()
    if output.json_mode:
        output.json(jsonable.stats(by_queue))
    elif by_queue:
        output.show(tables.stats(by_queue))
    else:
        output.note("no tasks")
    return ExitCode.OK


async def cancel(args: argparse.Namespace, output: Output) -> ExitCode:
    """Cancel a task; exit 1 when it had already finished otherwise, so a script notices."""
    async with open_queue(args.url) as queue:
        before = await queue.get_status(args.task_id)
        after = await queue.cancel(args.task_id)
    if after is TaskStatus.CANCELLED:
        message, code = ("cancelled" if before is not after else "was already cancelled"), ExitCode.OK
    elif after is TaskStatus.IN_PROGRESS:
        message, code = "is running: its worker has been asked to stop it", ExitCode.OK
    else:
        message, code = f"had already finished as {after}; nothing to cancel", ExitCode.FAILED
    _report(output, args.task_id, before, after, message)
    return code


async def requeue(args: argparse.Namespace, output: Output) -> ExitCode:
    """Run a failed, timed-out or cancelled task again; exit 1 for any other task, which is left alone."""
    async with open_queue(args.url) as queue:
        before = await queue.get_status(args.task_id)
        after = await queue.requeue(args.task_id)
    if before in _REQUEUEABLE:
        message, code = "requeued: pending again, from attempt 1", ExitCode.OK
    else:
        message, code = (
            f"is {before}; only failed, timed-out or cancelled tasks are requeued",
            ExitCode.FAILED,
        )
    _report(output, args.task_id, before, after, message)
    return code


def _report(output: Output, task_id: str, before: TaskStatus, after: TaskStatus, message: str) -> None:
    if output.json_mode:
        output.json({"id": task_id, "status_before": before.value, "status": after.value})
    else:
        output.line(f"task {task_id} {message}")


async def purge(args: argparse.Namespace, output: Output) -> ExitCode:
    older_than = parse_duration(args.older_than, "--older-than")
    async with open_queue(args.url) as queue:
        purged = await queue.purge(older_than, queue=args.queue)
    if output.json_mode:
        output.json({"purged": purged})
    else:
        where = "" if args.queue is None else f" of queue {args.queue}"
        output.line(f"purged {purged} task(s){where} that finished more than {args.older_than} ago")
    return ExitCode.OK


async def compact(args: argparse.Namespace, output: Output) -> ExitCode:
    async with open_queue(args.url) as queue:
        done = await queue.compact()
    if output.json_mode:
        output.json({"bytes_before": done.bytes_before, "bytes_after": done.bytes_after})
    else:
        output.line(
            f"compacted: {_size(done.bytes_before)} on disk before, {_size(done.bytes_after)} after"
            f" ({_size(done.bytes_freed)} given back)"
        )
    return ExitCode.OK


def _size(count: int) -> str:
    """Bytes for a person: 512 B, 4.2 MB (decimal units, as `df -H` shows them)."""
    if count < 1000:
        return f"{count} B"
    size = count / 1000
    for unit in ("kB", "MB", "GB"):
        if size < 1000:
            return f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"


async def info(args: argparse.Namespace, output: Output) -> ExitCode:
    """The backend in use, where its URL came from, how durable it is, and what it holds."""
    url, source = resolve_url(args.url)
    async with open_queue(url) as queue:
        facts = await queue.backend.describe()
        by_queue = await queue.stats()
    backend = {"url": redacted(url), "url_from": source, "backend": queue.backend.name}
    protection = Sealer.configured(None, None).describe()  # from the environment, as the queue's
    if output.json_mode:
        output.json(backend | protection | {"details": facts, "queues": jsonable.stats(by_queue)})
        return ExitCode.OK
    output.show(tables.facts(backend | protection | facts))
    if by_queue:
        output.show(tables.stats(by_queue))
    else:
        output.note("no tasks")
    return ExitCode.OK


async def plugins(args: argparse.Namespace, output: Output) -> ExitCode:
    """Every registered plugin: the built-ins, installed entry points, with what each provides."""
    installed = default_plugins().installed()
    if output.json_mode:
        output.json([jsonable.plain(plugin) for plugin in installed])
    else:
        output.show(tables.plugins(installed))
    return ExitCode.OK
