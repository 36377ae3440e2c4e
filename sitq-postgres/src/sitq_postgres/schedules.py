"""The PostgreSQL backend's schedules (periodic tasks): rows to `StoredSchedule` and back, and the firing
transaction. Statements are in `queries`; `backend` runs these on its pooled connections."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sitq.models import NewTask
from sitq.schedules import CatchUp, StoredSchedule, options_from_json, options_to_json
from sitq_postgres import queries
from sitq_postgres.rows import TASK_WIDTH, columns, task_row


def schedule_row(schedule: StoredSchedule) -> tuple[object, ...]:
    """The parameters of `queries.PUT_SCHEDULE`."""
    return (
        schedule.id,
        schedule.name,
        schedule.cron,
        schedule.timezone,
        schedule.catch_up.value,
        schedule.task_name,
        schedule.payload,
        schedule.serializer,
        options_to_json(schedule.options),
        schedule.next_run,
        schedule.paused,
        schedule.last_run,
    )


def stored_schedule(row: Any) -> StoredSchedule:
    """A `StoredSchedule` from a row of `queries.LIST_SCHEDULES`."""
    return StoredSchedule(
        id=row["id"],
        name=row["name"],
        cron=row["cron"],
        timezone=row["timezone"],
        catch_up=CatchUp(row["catch_up"]),
        task_name=row["task_name"],
        payload=bytes(row["payload"]),
        serializer=row["serializer"],
        options=options_from_json(row["options"]),
        next_run=row["next_run"],
        paused=row["paused"],
        last_run=row["last_run"],
    )


async def fire(
    connection: Any,
    sql: Callable[[str], str],
    channel: str,
    schedule: tuple[object, ...],
    task: NewTask | None,
) -> bool:
    """`Backend.fire_schedule` in the caller's transaction: move the schedule on if it is still as the
    firing worker saw it (`schedule`: its id, due, next run and last run), then store its task and notify
    the listeners; False, with nothing changed, if it is not."""
    if await connection.execute(sql(queries.FIRE_SCHEDULE), *schedule) != "UPDATE 1":
        return False
    if task is not None:
        arrays = columns([task_row(task, unmet=0)], TASK_WIDTH)
        await connection.execute(sql(queries.INSERT_AND_NOTIFY), *arrays, channel)
    return True
