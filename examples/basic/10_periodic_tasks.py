"""09: periodic tasks. Schedule a call with a cron expression in a time zone; workers enqueue each tick once.

Run it with ``python examples/basic/10_periodic_tasks.py``. It works in a temporary SQLite database that
is deleted when it finishes. A running worker fires due schedules by itself; so that this program need
not wait for a real tick, it asks a worker to fire them at chosen moments (`Worker.fire_schedules(now)`)
and runs the tasks they enqueue with `process_task`.
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sitq import SQLiteBackend, TaskQueue, Worker

PARIS = ZoneInfo("Europe/Paris")


def sales_report(region: str) -> str:
    return f"sales report for {region}"


async def main(database: Path) -> None:
    async with TaskQueue(SQLiteBackend(database)) as queue:
        # Every day at 2:30 in Paris, whatever the DST offset that day; stored in the database, so it
        # survives restarts and every worker sees it.
        nightly = await queue.schedule(
            "nightly-report", sales_report, "emea", cron="30 2 * * *", timezone="Europe/Paris"
        )
        print(f"{nightly.name}: next run {nightly.next_run.astimezone(PARIS):%H:%M} Europe/Paris")
        for schedule in await queue.schedules():
            print(f"listed: {schedule.name} {schedule.cron!r} catch_up={schedule.catch_up}")

        worker = Worker(queue)  # not started: it fires only when asked, below
        try:
            # At the tick, one task is enqueued, however many workers fire at once.
            [task_id] = await worker.fire_schedules(nightly.next_run)
            due = (await queue.get_task(task_id)).eta.astimezone(PARIS)
            print(f"fired at its tick: 1 task, due {due:%H:%M}")
            print(
                f"fired again for the same tick: {len(await worker.fire_schedules(nightly.next_run))} tasks"
            )
            print(f"result: {(await worker.process_task(task_id)).value!r}")

            # Paused, it fires nothing; resumed, it carries on from its next tick after now.
            print(f"paused: {(await queue.pause_schedule('nightly-report')).paused}")
            while_paused = await worker.fire_schedules(nightly.next_run + timedelta(days=3))
            print(f"fired while paused: {len(while_paused)}")
            print(f"resumed: {not (await queue.resume_schedule('nightly-report')).paused}")

            # After three days without a worker: catch_up="once" runs the latest missed tick once,
            # catch_up="skip" drops the missed ticks.
            hourly = await queue.schedule("hourly", sales_report, "apac", cron="0 * * * *", catch_up="skip")
            back = max(hourly.next_run, nightly.next_run) + timedelta(days=3, minutes=10)
            fired = await worker.fire_schedules(back)
            names = sorted([(await queue.get_task(each)).name for each in fired])
            print(f"after three days down: {len(fired)} task(s) enqueued ({', '.join(names)})")
            print("the nightly schedule (once) ran its latest missed tick; the hourly one (skip) did not")

            await queue.unschedule("hourly")
            print(f"left: {[schedule.name for schedule in await queue.schedules()]}")
        finally:
            await worker.stop()


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as directory:
        asyncio.run(main(Path(directory) / "tasks.db"))
