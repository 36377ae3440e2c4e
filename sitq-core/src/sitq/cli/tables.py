"""What a person sees: rich tables and panels for tasks, statistics, plugins and the backend.

Times are shown in local time, to the second; `jsonable` gives scripts the exact UTC values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.pretty import Pretty
from rich.table import Table
from rich.text import Text

from sitq.models import AttemptOutcome, TaskInfo, TaskStatus
from sitq.plugins import PluginInfo

STATUS_STYLES = {
    TaskStatus.PENDING: "yellow",
    TaskStatus.IN_PROGRESS: "cyan",
    TaskStatus.SUCCESS: "green",
    TaskStatus.FAILED: "bold red",
    TaskStatus.TIMEOUT: "magenta",
    TaskStatus.CANCELLED: "dim",
}
_OUTCOME_STYLES = {
    AttemptOutcome.SUCCESS: "green",
    AttemptOutcome.FAILED: "red",
    AttemptOutcome.TIMEOUT: "magenta",
    AttemptOutcome.CANCELLED: "dim",
    AttemptOutcome.LOST: "yellow",
    AttemptOutcome.RELEASED: "dim",
}
_NONE = Text("-", style="dim")


def _table(**options: Any) -> Table:
    """The one table style: a heavy rule under bold headers, two spaces between columns."""
    return Table(box=box.SIMPLE_HEAVY, header_style="bold", collapse_padding=True, **options)


def table(**options: Any) -> Table:
    """The one table style, for a table drawn outside this module (`sitq schedule list`'s)."""
    return _table(**options)


def status(value: TaskStatus | str) -> Text:
    """A status in its colour, the same everywhere."""
    status = TaskStatus(value)
    return Text(status.value, style=STATUS_STYLES[status])


def when(moment: datetime | None, *, compact: bool = False) -> Text:
    """A time in local time; `compact` gives only the time of day for today, only the date otherwise."""
    if moment is None:
        return _NONE
    local = moment.astimezone()
    if not compact:
        return Text(local.strftime("%Y-%m-%d %H:%M:%S"))
    today = local.date() == datetime.now().astimezone().date()
    return Text(local.strftime("%H:%M:%S" if today else "%Y-%m-%d"))


def seconds(duration: float) -> str:
    """A duration as a person reads it: ``12 ms``, ``3.4 s``, ``2 min 5 s``."""
    if duration < 1:
        return f"{duration * 1000:.2f} ms" if duration < 0.01 else f"{duration * 1000:.0f} ms"
    if duration < 60:
        return f"{duration:.3g} s"
    minutes, rest = divmod(round(duration), 60)
    return f"{minutes} min {rest} s"


def _text(value: str | None) -> Text:
    return _NONE if not value else Text(value)


def tasks(infos: Sequence[TaskInfo], width: int) -> Table:
    """One row per task, for `sitq list`; a narrow terminal (`width` columns) gets the essential ones."""
    table = _table()
    table.add_column("id", no_wrap=True, style="bold")
    table.add_column("name", overflow="fold")
    table.add_column("status", no_wrap=True)
    table.add_column("tries", justify="right", no_wrap=True)
    wide, wider = width >= 100, width >= 120
    if wide:
        table.add_column("queue", overflow="fold")
        table.add_column("enqueued", no_wrap=True)
    if wider:
        table.add_column("finished", no_wrap=True)
        table.add_column("error", overflow="ellipsis", no_wrap=True, ratio=1)
    for info in infos:
        cells: list[RenderableType] = [
            info.id,
            info.name,
            status(info.status),
            f"{info.attempts}/{info.options.max_attempts}",
        ]
        if wide:
            cells += [info.options.queue, when(info.enqueued_at, compact=True)]
        if wider:
            cells += [when(info.finished_at, compact=True), Text(info.error or "", style="red")]
        table.add_row(*cells)
    return table


def result_value(result: Any) -> Pretty:
    """A task's return value, cut to a screenful: long containers and strings end in what was left out."""
    return Pretty(result, max_length=_SHOWN_ITEMS, max_string=_SHOWN_CHARS, max_depth=_SHOWN_DEPTH)


_SHOWN_ITEMS, _SHOWN_CHARS, _SHOWN_DEPTH = 50, 2000, 8


def result_not_shown(size: int, limit: int) -> Text:
    """In place of a result too large to decode for a terminal."""
    return Text(
        f"{size:,} bytes, not shown: over the {limit:,} bytes sitq show decodes "
        "(read it with TaskQueue.get_result())",
        style="dim",
    )


def task_detail(info: TaskInfo, result: RenderableType | None = None) -> Group:
    """Everything about one task, for `sitq show`: its fields, its attempts, its traceback, and its
    `result` (drawn by `result_value` or `result_not_shown`) when it succeeded."""
    fields = Table.grid(padding=(0, 2))
    fields.add_column(style="bold")
    fields.add_column(overflow="fold")
    options = info.options
    rows: list[tuple[str, RenderableType]] = [
        ("id", Text(info.id)),
        ("name", Text(info.name)),
        ("status", status(info.status)),
        ("queue", Text(f"{options.queue} (priority {options.priority})")),
        ("attempts", Text(f"{info.attempts} of at most {options.max_attempts}")),
        ("timeout", _NONE if options.timeout is None else Text(seconds(options.timeout))),
        ("description", _text(options.description)),
        ("enqueued", when(info.enqueued_at)),
        ("due", when(info.eta)),
        ("started", when(info.started_at)),
        ("finished", when(info.finished_at)),
        ("workflow", _text(info.workflow_id)),
        ("depends on", _text(", ".join(info.depends_on))),
        ("unique key", _text(info.unique_key)),
    ]
    if info.cancel_requested:
        rows.append(("cancel", Text("requested; its worker will stop it", style="yellow")))
    if info.error:
        rows.append(("error", Text(info.error, style="red")))
    if result is not None:
        rows.append(("result", result))
    for label, value in rows:
        fields.add_row(label, value)
    parts: list[RenderableType] = [Panel(fields, title=f"task {info.id}", title_align="left", expand=False)]
    if info.history:
        parts.append(attempts(info))
    if info.traceback:
        parts.append(
            Panel(
                Text(info.traceback.rstrip()),
                title="traceback",
                title_align="left",
                border_style="red",
                expand=False,
            )
        )
    return Group(*parts)


def attempts(info: TaskInfo) -> Table:
    """A task's attempt history, oldest first."""
    table = _table(title="attempts", title_justify="left", title_style="bold")
    for column in ("#", "worker", "started", "took", "outcome"):
        table.add_column(column, justify="right" if column in ("#", "took") else "left", no_wrap=True)
    table.add_column("error", overflow="fold")
    for record in info.history:
        took = (record.finished_at - record.started_at).total_seconds()
        table.add_row(
            str(record.attempt),
            record.worker_id,
            when(record.started_at),
            seconds(took),
            Text(record.outcome.value, style=_OUTCOME_STYLES[record.outcome]),
            Text(record.error or "", style="red"),
        )
    return table


def stats(by_queue: Mapping[str, Mapping[TaskStatus, int]]) -> Table:
    """Tasks by queue and status, with totals, for `sitq stats` and `sitq info`."""
    table = _table(show_footer=len(by_queue) > 1)
    totals = {each: sum(counts.get(each, 0) for counts in by_queue.values()) for each in TaskStatus}
    table.add_column("queue", footer="all")
    for each in TaskStatus:
        table.add_column(
            Text(each.value, style=STATUS_STYLES[each]), justify="right", footer=str(totals[each])
        )
    table.add_column("total", justify="right", style="bold", footer=str(sum(totals.values())))
    for queue, counts in by_queue.items():
        cells = [str(counts[each]) if counts.get(each) else "-" for each in TaskStatus]
        table.add_row(queue, *cells, str(sum(counts.values())))
    return table


def plugins(infos: Iterable[PluginInfo]) -> Table:
    """Every plugin, its distribution and what it provides, for `sitq plugins`."""
    table = _table()
    table.add_column("plugin", no_wrap=True)
    table.add_column("distribution")
    table.add_column("backends")
    table.add_column("serializers")
    table.add_column("lifecycle hooks", min_width=14)
    for info in infos:
        table.add_row(
            Text(info.name, style="bold"),
            info.distribution if info.version is None else f"{info.distribution} {info.version}",
            ", ".join(info.backends) or "-",
            ", ".join(info.serializers) or "-",
            "\n".join(hook.removeprefix("sitq_") for hook in info.hooks) or "-",
        )
    return table


def facts(pairs: Mapping[str, str]) -> Table:
    """Labelled values, one a row: what `sitq info` says about the backend."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for label, value in pairs.items():
        table.add_row(label.replace("_", " "), value)
    return table
