"""The SQLite backend's schedules (periodic tasks): rows to `StoredSchedule` and back, and the firing
transaction. Statements are in `queries`; `backend` runs these in its transactions."""

from __future__ import annotations

import sqlite3
from typing import Any

from sitq.models import NewTask
from sitq.schedules import CatchUp, StoredSchedule, options_from_json, options_to_json
from sitq_sqlite import queries, transitions
from sitq_sqlite.rows import task_row, utc_time


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
        schedule.next_run.timestamp(),
        int(schedule.paused),
        None if schedule.last_run is None else schedule.last_run.timestamp(),
    )


def stored_schedule(row: Any) -> StoredSchedule:
    """A `StoredSchedule` from a row of `queries.LIST_SCHEDULES`."""
    (id_, name, cron, timezone, catch_up, task_name, payload, serializer, options, next_run, paused, last) = (
        row
    )
    return StoredSchedule(
        id=id_,
        name=name,
        cron=cron,
        timezone=timezone,
        catch_up=CatchUp(catch_up),
        task_name=task_name,
        payload=bytes(payload),
        serializer=serializer,
        options=options_from_json(options),
        next_run=utc_time(next_run),
        paused=bool(paused),
        last_run=None if last is None else utc_time(last),
    )


def fire(db: sqlite3.Connection, params: dict[str, object], task: NewTask | None) -> bool:
    """`Backend.fire_schedule` in the caller's write transaction: move the schedule on if it is still as
    the firing worker saw it, then store its task; False, with nothing changed, if it is not."""
    if db.execute(queries.FIRE_SCHEDULE, params).rowcount != 1:
        return False
    if task is not None:
        transitions.store(db, [task], [task_row(task, unmet=0)])
    return True
