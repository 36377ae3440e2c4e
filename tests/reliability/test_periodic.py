"""Periodic tasks under real workers: three worker processes for three minutes of a ``* * * * *``
schedule enqueue each tick exactly once, so exactly three runs, on SQLite and on PostgreSQL.

Both backends run at the same time, in one test, so the suite waits out the three minutes once. The
window is chosen so that exactly three minute boundaries fall inside it: the schedule's first tick is
the first boundary after it is created, and the workers are stopped a few seconds after the third, well
before the fourth. Runs are counted from the ledger, which sitq never writes.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

from reliability.harness import BACKENDS, DEADLINE, Fleet, Ledger, settle
from reliability.tasks import tick

from sitq import TaskQueue, TaskStatus

WORKERS = 3
TICKS = 3
AFTER_LAST_TICK = timedelta(seconds=10)
"""How long the workers go on after the last tick inside the window: time to fire and run it, and far
from the next boundary."""
SETUP = timedelta(seconds=10)
"""Time enough to start the workers and create both schedules before the next minute boundary."""


async def test_three_workers_enqueue_each_minute_tick_exactly_once(tmp_path: Path) -> None:
    with contextlib.ExitStack() as stack:
        runs = []
        for name in ("sqlite", "postgres"):
            directory = tmp_path / name
            directory.mkdir()
            under_test = stack.enter_context(BACKENDS[name](directory))
            fleet = Fleet(under_test.url, directory)
            stack.callback(fleet.close)
            runs.append((name, under_test.url, fleet, Ledger(directory / "ledger")))
        now = datetime.now(UTC)
        boundary = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
        if boundary - now < SETUP:  # so that both schedules are created between the same two boundaries
            await asyncio.sleep((boundary - now).total_seconds() + 0.5)
        first_ticks = []
        for _, url, fleet, ledger in runs:
            for _ in range(WORKERS):
                fleet.start_worker()
            async with TaskQueue(url) as queue:
                schedule = await queue.schedule(
                    "each-minute", tick, str(ledger), "each-minute", cron="* * * * *"
                )
            first_ticks.append(schedule.next_run)
        assert first_ticks[0] == first_ticks[1], "the schedules were created across a minute boundary"
        last_tick = first_ticks[0] + timedelta(minutes=TICKS - 1)
        await asyncio.sleep((last_tick + AFTER_LAST_TICK - datetime.now(UTC)).total_seconds())
        for name, url, fleet, ledger in runs:
            for worker in fleet.workers():
                assert await fleet.stop(worker) == 0, f"{name}: {worker.describe()}"
            async with TaskQueue(url) as queue:
                tasks = await settle(queue, timeout=DEADLINE)
                schedule = (await queue.schedules())[0]
            expected = [first_ticks[0] + timedelta(minutes=n) for n in range(TICKS)]
            assert sorted(task.eta for task in tasks.values()) == expected, name
            assert all(task.status is TaskStatus.SUCCESS for task in tasks.values()), name
            runs_by_key = ledger.executions()
            assert sorted(runs_by_key) == sorted(f"each-minute:{task_id}" for task_id in tasks), name
            assert all([run.completed for run in each] == [True] for each in runs_by_key.values()), name
            assert schedule.last_run == expected[-1] and schedule.next_run == expected[-1] + timedelta(
                minutes=1
            )
