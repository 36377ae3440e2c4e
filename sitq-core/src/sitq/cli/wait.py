"""`sitq wait`: follow tasks or a workflow with a live progress bar until they finish, then summarise.

The exit status is the answer a script wants: 0 when everything succeeded, 1 when something did not,
5 when ``--timeout`` ran out first.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections import Counter
from collections.abc import Mapping

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from sitq.cli import tables
from sitq.cli.connect import open_queue
from sitq.cli.errors import CliError, ExitCode
from sitq.cli.output import Output
from sitq.models import TaskStatus
from sitq.queue import TaskQueue

# Re-read at least this often even without a change notification (another process's writes are
# noticed by polling, and a backend may not signal everything).
_RECHECK_SECONDS = 0.5


async def wait(args: argparse.Namespace, output: Output) -> ExitCode:
    if bool(args.task_ids) == bool(args.workflow):
        raise CliError("give task ids, or --workflow ID, but not both")
    if args.timeout is not None and args.timeout < 0:
        raise CliError(f"--timeout takes seconds >= 0, not {args.timeout}")
    task_ids = list(dict.fromkeys(args.task_ids))
    async with open_queue(args.url) as queue:
        progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[counts]}"),
            TimeElapsedColumn(),
            console=output.err,
            disable=output.json_mode or not output.err.is_terminal,
        )
        described = f"workflow {args.workflow}" if args.workflow else f"{len(task_ids)} task(s)"
        # Not started when disabled: rich before 14.3 prints a blank line on stopping a disabled Progress.
        shown = contextlib.nullcontext() if progress.disable else progress
        with shown, queue.backend.subscribe() as changes:
            bar = progress.add_task(f"waiting for {described}", total=None, counts="")
            loop = asyncio.get_running_loop()
            deadline = None if args.timeout is None else loop.time() + args.timeout
            statuses = _Statuses(queue, task_ids, args.workflow)
            while True:
                counts = await statuses.counts()
                finished = sum(count for status, count in counts.items() if status.is_finished)
                total = sum(counts.values())
                progress.update(bar, total=total, completed=finished, counts=_summary(counts))
                if finished == total:
                    break
                remaining = None if deadline is None else deadline - loop.time()
                if remaining is not None and remaining <= 0:
                    break
                await changes.wait(
                    _RECHECK_SECONDS if remaining is None else min(_RECHECK_SECONDS, remaining)
                )
        infos = [await queue.get_task(task_id) for task_id in task_ids]
    succeeded = counts.get(TaskStatus.SUCCESS, 0) == total
    code = ExitCode.OK if succeeded else ExitCode.FAILED if finished == total else ExitCode.TIMEOUT
    if output.json_mode:
        summary = {
            "finished": finished == total,
            "succeeded": succeeded,
            "counts": {status.value: count for status, count in counts.items()},
        }
        if args.workflow:
            output.json({"workflow": args.workflow} | summary)
        else:
            tasks = [{"id": i.id, "name": i.name, "status": i.status.value, "error": i.error} for i in infos]
            output.json({"tasks": tasks} | summary)
        return code
    if infos:
        table = Table(box=None, header_style="bold", pad_edge=False)
        for column in ("id", "name", "status", "error"):
            table.add_column(column, overflow="fold")
        for info in infos:
            table.add_row(info.id, info.name, tables.status(info.status), Text(info.error or "", style="red"))
        output.show(table)
    if code is ExitCode.OK:
        verdict, style = "all succeeded", "bold green"
    elif code is ExitCode.FAILED:
        verdict, style = "not all succeeded", "bold red"
    else:
        verdict, style = f"gave up waiting after {args.timeout:g} s", "bold yellow"
    output.line(f"{described}: {finished} of {total} finished ({_summary(counts)}); {verdict}", style)
    return code


class _Statuses:
    """The statuses of the tasks being waited for; a finished task is not read again."""

    def __init__(self, queue: TaskQueue, task_ids: list[str], workflow: str | None) -> None:
        self._queue = queue
        self._workflow = workflow
        self._known: dict[str, TaskStatus | None] = dict.fromkeys(task_ids)

    async def counts(self) -> Mapping[TaskStatus, int]:
        if self._workflow is not None:
            return (await self._queue.get_workflow(self._workflow)).counts
        for task_id, known in self._known.items():
            if known is None or not known.is_finished:
                self._known[task_id] = await self._queue.get_status(task_id)
        return Counter(status for status in self._known.values() if status is not None)


def _summary(counts: Mapping[TaskStatus, int]) -> str:
    return ", ".join(f"{counts[status]} {status.value}" for status in TaskStatus if counts.get(status))
