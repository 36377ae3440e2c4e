"""Periodic tasks: schedules stored, listed, paused, replaced and deleted, and each tick fired exactly once.

At the protocol, with explicit times: `fire_schedule` is a compare-and-set that many racing callers win
once. End to end, through `TaskQueue.schedule` and `Worker.fire_schedules(now)` with chosen moments: the
catch-up rules, time zones across DST changes, hooks, and sealing (a schedule's stored call is verified
before a tick's task is enqueued).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from sitq.backend import Backend, Capability
from sitq.errors import ScheduleNotFoundError, SignatureError, ValidationError
from sitq.models import TaskOptions, TaskStatus
from sitq.queue import TaskQueue
from sitq.schedules import CatchUp, Cron, StoredSchedule
from sitq.testing.conformance.support import T0, ConformanceFixtures, new_task, requires
from sitq.testing.conformance.tasks import Recorder, add
from sitq.worker import Worker

PARIS = ZoneInfo("Europe/Paris")
KEY = "conformance-schedule-key-0123456789"


def stored(name: str = "nightly", next_run: datetime = T0, **fields: Any) -> StoredSchedule:
    schedule = StoredSchedule(
        id=f"{name}-1",
        name=name,
        cron="0 * * * *",
        timezone="UTC",
        catch_up=CatchUp.ONCE,
        task_name="tests.task",
        payload=b"call",
        serializer="pickle",
        options=TaskOptions(queue="reports", priority=3, max_attempts=2, timeout=9.5),
        next_run=next_run,
    )
    return dataclasses.replace(schedule, **fields)


@contextlib.asynccontextmanager
async def idle_worker(queue: TaskQueue, **options: Any) -> AsyncIterator[Worker]:
    """A worker that is not started: it fires schedules only when the test says so, at the moment it
    says (a started one would also fire them on the real clock)."""
    worker = Worker(queue, **options)
    try:
        yield worker
    finally:
        await worker.stop()


async def rewound(queue: TaskQueue, name: str, moment: datetime) -> StoredSchedule:
    """The schedule `name`, stored again as if it had been created at `moment` (its next run the first
    tick after it), so a test fires it at chosen moments whatever the real date."""
    [found] = [each for each in await queue.backend.list_schedules() if each.name == name]
    again = dataclasses.replace(found, next_run=Cron(found.cron, found.timezone).after(moment))
    await queue.backend.put_schedule(again)
    return again


class ScheduleConformance(ConformanceFixtures):
    """What periodic tasks rely on from a backend, and what workers make of it."""

    async def test_schedules_are_stored_listed_by_name_replaced_and_deleted(self, store: Backend) -> None:
        assert await store.list_schedules() == []
        second, first = (
            stored("weekly", payload=b"\x00weekly"),
            stored("daily", last_run=T0 - timedelta(hours=1)),
        )
        await store.put_schedule(second)
        await store.put_schedule(first)
        assert await store.list_schedules() == [first, second]
        replaced = stored("weekly", id="weekly-2", cron="5 4 * * 1", timezone="Europe/Paris", paused=True)
        await store.put_schedule(replaced)
        assert await store.list_schedules() == [first, replaced]
        assert await store.delete_schedule("weekly") is True
        assert await store.delete_schedule("weekly") is False
        assert await store.list_schedules() == [first]

    async def test_pause_and_resume_set_the_flag_and_the_next_run(self, store: Backend) -> None:
        await store.put_schedule(stored())
        assert await store.pause_schedule("nightly", paused=True, next_run=None) is True
        [paused] = await store.list_schedules()
        assert paused.paused and paused.next_run == T0
        assert not await store.fire_schedule(paused.id, due=T0, next_run=T0 + timedelta(hours=1), task=None)
        later = T0 + timedelta(days=1)
        assert await store.pause_schedule("nightly", paused=False, next_run=later) is True
        [resumed] = await store.list_schedules()
        assert not resumed.paused and resumed.next_run == later
        assert await store.pause_schedule("no-such-schedule", paused=True, next_run=None) is False

    async def test_fire_stores_the_task_and_moves_the_schedule_on_once(self, store: Backend) -> None:
        schedule = stored()
        await store.put_schedule(schedule)
        following = T0 + timedelta(hours=1)
        task = new_task(eta=T0, options=schedule.options)
        assert not await store.fire_schedule("other-id", due=T0, next_run=following, task=task)
        assert not await store.fire_schedule(schedule.id, due=T0 - timedelta(hours=1), next_run=T0, task=task)
        assert await store.get(task.id) is None
        with store.subscribe() as changes:
            assert await store.fire_schedule(schedule.id, due=T0, next_run=following, task=task)
            assert await changes.wait(5)
        record = await store.get(task.id)
        assert (
            record is not None and record.status is TaskStatus.PENDING and record.options == schedule.options
        )
        [fired] = await store.list_schedules()
        assert fired.next_run == following and fired.last_run == T0
        again = new_task(eta=T0)
        assert not await store.fire_schedule(schedule.id, due=T0, next_run=following, task=again)
        assert await store.get(again.id) is None

    async def test_fire_without_a_task_skips_the_tick(self, store: Backend) -> None:
        await store.put_schedule(stored(last_run=T0 - timedelta(days=1)))
        following = T0 + timedelta(hours=5)
        assert await store.fire_schedule("nightly-1", due=T0, next_run=following, task=None)
        [skipped] = await store.list_schedules()
        assert skipped.next_run == following and skipped.last_run == T0 - timedelta(days=1)
        assert await store.stats() == {}

    async def test_a_replaced_schedule_is_not_fired_by_who_read_the_old_one(self, store: Backend) -> None:
        await store.put_schedule(stored())
        await store.put_schedule(stored(id="nightly-2"))
        task = new_task()
        assert not await store.fire_schedule("nightly-1", due=T0, next_run=T0 + timedelta(hours=1), task=task)
        assert await store.get(task.id) is None

    async def test_many_racing_fires_of_one_tick_enqueue_one_task(self, store: Backend) -> None:
        await store.put_schedule(stored())
        tasks = [new_task() for _ in range(20)]
        following = T0 + timedelta(hours=1)
        won = await asyncio.gather(
            *(store.fire_schedule("nightly-1", due=T0, next_run=following, task=task) for task in tasks)
        )
        assert sum(won) == 1
        assert await store.stats() == {("default", TaskStatus.PENDING): 1}

    @requires(Capability.SHARED_STORE)
    async def test_racing_fires_through_separate_connections_enqueue_one_task(
        self, store: Backend, backend_url: str
    ) -> None:
        await store.put_schedule(stored())
        others = [type(store).from_url(backend_url) for _ in range(4)]
        for other in others:
            await other.connect()
        try:
            following = T0 + timedelta(hours=1)
            won = await asyncio.gather(
                *(
                    backend.fire_schedule("nightly-1", due=T0, next_run=following, task=new_task())
                    for backend in [store, *others]
                    for _ in range(3)
                )
            )
        finally:
            for other in others:
                await other.close()
        assert sum(won) == 1
        assert await store.stats() == {("default", TaskStatus.PENDING): 1}

    # End to end: TaskQueue.schedule and Worker.fire_schedules at chosen moments.

    async def test_a_tick_enqueues_the_call_which_a_worker_runs(self, backend: Backend) -> None:
        recorder = Recorder()
        async with TaskQueue(backend, "pickle") as queue, idle_worker(queue, plugins=[recorder]) as worker:
            made = await queue.schedule("adder", add, 2, 3, cron="*/15 * * * *")
            assert made.next_run.minute % 15 == 0 and made.next_run > datetime.now(UTC)
            assert await worker.fire_schedules(made.next_run - timedelta(seconds=1)) == []
            [task_id] = await worker.fire_schedules(made.next_run)
            assert ("enqueued", task_id, "default") in recorder.events
            assert (await worker.process_task(task_id)).value == 5
            assert await worker.fire_schedules(made.next_run) == []  # the tick is fired: never again
            [listed] = await queue.schedules()
            assert listed.last_run == made.next_run and listed.next_run == made.next_run + timedelta(
                minutes=15
            )

    async def test_missed_ticks_run_once_or_are_skipped_by_their_rule(self, backend: Backend) -> None:
        async with TaskQueue(backend, "pickle") as queue, idle_worker(queue) as worker:
            await queue.schedule("once", add, 1, 1, cron="0 * * * *")
            await queue.schedule("skip", add, 1, 1, cron="0 * * * *", catch_up="skip")
            await rewound(queue, "once", T0)
            await rewound(queue, "skip", T0)
            back = T0 + timedelta(hours=5, minutes=30)  # five ticks were missed
            [task_id] = await worker.fire_schedules(back)
            task = await queue.get_task(task_id)
            assert task.eta == T0 + timedelta(hours=5)  # the latest missed tick, once
            schedules = {schedule.name: schedule for schedule in await queue.schedules()}
            assert schedules["once"].next_run == schedules["skip"].next_run == T0 + timedelta(hours=6)
            assert schedules["skip"].last_run is None
            # A tick fired within a minute of its time is not missed, whatever the rule.
            assert len(await worker.fire_schedules(T0 + timedelta(hours=6, seconds=30))) == 2

    async def test_ticks_follow_the_time_zone_across_dst_changes(self, backend: Backend) -> None:
        async with TaskQueue(backend, "pickle") as queue, idle_worker(queue) as worker:
            await queue.schedule("paris", add, 1, 2, cron="30 2 * * *", timezone="Europe/Paris")

            async def ticks(start: datetime, days: int) -> list[datetime]:
                """The moments the schedule fires over `days` days from `start`, in Paris time."""
                schedule = await rewound(queue, "paris", start)
                fired = []
                for _ in range(days):
                    [task_id] = await worker.fire_schedules(schedule.next_run)
                    fired.append((await queue.get_task(task_id)).eta.astimezone(PARIS))
                    [schedule] = [
                        each for each in await queue.backend.list_schedules() if each.name == "paris"
                    ]
                return fired

            # Spring forward (2030-03-31): 2:30 does not exist that day, so it runs at 3:00, once.
            spring = await ticks(datetime(2030, 3, 30, 12, tzinfo=PARIS), 3)
            assert [moment.isoformat() for moment in spring] == [
                "2030-03-31T03:00:00+02:00",
                "2030-04-01T02:30:00+02:00",
                "2030-04-02T02:30:00+02:00",
            ]
            # Fall back (2030-10-27): 2:30 happens twice that day, and runs once.
            autumn = await ticks(datetime(2030, 10, 26, 12, tzinfo=PARIS), 3)
            assert [moment.isoformat() for moment in autumn] == [
                "2030-10-27T02:30:00+02:00",
                "2030-10-28T02:30:00+01:00",
                "2030-10-29T02:30:00+01:00",
            ]

    async def test_paused_schedules_do_not_fire_and_resume_from_the_next_tick(self, backend: Backend) -> None:
        async with TaskQueue(backend, "pickle") as queue, idle_worker(queue) as worker:
            made = await queue.schedule("adder", add, 2, 3, cron="* * * * *")
            assert (await queue.pause_schedule("adder")).paused
            assert await worker.fire_schedules(made.next_run + timedelta(minutes=10)) == []
            resumed = await queue.resume_schedule("adder")
            assert not resumed.paused and resumed.next_run <= made.next_run + timedelta(minutes=1)
            await queue.unschedule("adder")
            assert await queue.schedules() == []
            for call in (queue.unschedule, queue.pause_schedule, queue.resume_schedule):
                with pytest.raises(ScheduleNotFoundError, match="no schedule named 'adder'"):
                    await call("adder")

    async def test_workers_fire_only_the_schedules_of_their_queues(self, backend: Backend) -> None:
        async with TaskQueue(backend, "pickle") as queue, idle_worker(queue, queues=["other"]) as worker:
            made = await queue.schedule("adder", add, 2, 3, cron="* * * * *")
            assert await worker.fire_schedules(made.next_run) == []
            assert (await queue.schedules())[0].next_run == made.next_run

    async def test_bad_cron_time_zone_and_catch_up_are_refused_naming_the_fix(self, backend: Backend) -> None:
        async with TaskQueue(backend, "pickle") as queue:
            with pytest.raises(ValidationError, match=r"cron '61 \* \* \* \*' is not a valid.*such as"):
                await queue.schedule("bad", add, 1, 2, cron="61 * * * *")
            with pytest.raises(ValidationError, match="timezone 'Mars/Olympus' is not a known IANA"):
                await queue.schedule("bad", add, 1, 2, cron="* * * * *", timezone="Mars/Olympus")
            with pytest.raises(ValidationError, match="catch_up must be 'once' or 'skip'"):
                await queue.schedule("bad", add, 1, 2, cron="* * * * *", catch_up="always")
            assert await queue.schedules() == []

    async def test_a_tampered_schedule_call_fails_verification_and_enqueues_nothing(
        self, backend: Backend
    ) -> None:
        async with TaskQueue(backend, "pickle", signing_key=KEY) as queue, idle_worker(queue) as worker:
            made = await queue.schedule("adder", add, 2, 3, cron="* * * * *")
            [genuine] = await queue.backend.list_schedules()
            tampered = genuine.payload[:-1] + bytes([genuine.payload[-1] ^ 1])
            await queue.backend.put_schedule(dataclasses.replace(genuine, payload=tampered))
            assert await worker.fire_schedules(made.next_run) == []
            assert await queue.stats() == {}
            assert (await queue.schedules())[0].next_run == made.next_run  # left for a worker that can

            # Genuine bytes re-sealed for the task verify; copied as a task's call as they are, they do not.
            await queue.backend.put_schedule(genuine)
            [task_id] = await worker.fire_schedules(made.next_run)
            assert (await worker.process_task(task_id)).value == 5
            copied = new_task(payload=genuine.payload)
            await queue.backend.enqueue([copied])
            result = await worker.process_task(copied.id)
            assert result.status is TaskStatus.FAILED and SignatureError.__name__ in (result.error or "")
