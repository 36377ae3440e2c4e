"""Ticks of cron expressions in time zones, the catch-up rules, and the checks of a schedule's arguments;
and `SyncTaskQueue`'s schedule methods, which mirror `TaskQueue`'s."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sample_tasks import multiply

from sitq import (
    CatchUp,
    ScheduleNotFoundError,
    SyncTaskQueue,
    Task,
    TaskOptions,
    TaskQueue,
    ValidationError,
    Worker,
)
from sitq.models import RetryPolicy
from sitq.schedules import SKIP_AFTER, Cron, options_from_json, options_to_json

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
T0 = datetime(2030, 1, 1, tzinfo=UTC)


def ticks(cron: Cron, start: datetime, count: int) -> list[str]:
    found, moment = [], start
    for _ in range(count):
        moment = cron.after(moment)
        found.append(moment.astimezone(ZoneInfo(cron.timezone)).isoformat())
    return found


def test_a_tick_in_the_hour_spring_skips_runs_once_at_the_change() -> None:
    assert ticks(Cron("30 2 * * *", "Europe/Paris"), datetime(2030, 3, 30, 12, tzinfo=PARIS), 3) == [
        "2030-03-31T03:00:00+02:00",
        "2030-04-01T02:30:00+02:00",
        "2030-04-02T02:30:00+02:00",
    ]


def test_a_tick_in_the_hour_autumn_repeats_runs_once() -> None:
    assert ticks(Cron("30 1 * * *", "America/New_York"), datetime(2030, 11, 2, 12, tzinfo=NEW_YORK), 2) == [
        "2030-11-03T01:30:00-04:00",
        "2030-11-04T01:30:00-05:00",
    ]


def test_an_every_hour_expression_follows_the_wall_clock_through_both_repeated_hours() -> None:
    start = datetime(2030, 10, 27, 1, 50, tzinfo=PARIS)
    assert ticks(Cron("*/30 * * * *", "Europe/Paris"), start, 5) == [
        "2030-10-27T02:00:00+02:00",
        "2030-10-27T02:30:00+02:00",
        "2030-10-27T02:00:00+01:00",
        "2030-10-27T02:30:00+01:00",
        "2030-10-27T03:00:00+01:00",
    ]


def test_ticks_come_back_in_utc() -> None:
    tick = Cron("0 9 * * *", "Europe/Paris").after(T0)
    assert tick.tzinfo is UTC and tick == datetime(2030, 1, 1, 8, tzinfo=UTC)


@pytest.mark.parametrize(
    ("catch_up", "late", "runs"),
    [
        (CatchUp.ONCE, timedelta(seconds=5), True),
        (CatchUp.SKIP, timedelta(seconds=5), True),
        (CatchUp.SKIP, SKIP_AFTER, True),
        (CatchUp.SKIP, SKIP_AFTER + timedelta(seconds=1), False),
        (CatchUp.ONCE, timedelta(days=3), True),
    ],
)
def test_a_late_tick_runs_by_its_rule(catch_up: CatchUp, late: timedelta, runs: bool) -> None:
    cron = Cron("0 0 * * *")
    firing = cron.firing(T0, T0 + late, catch_up)
    latest = T0 + timedelta(days=late.days)
    assert firing.tick == (latest if runs else None)
    assert firing.next_run == latest + timedelta(days=1)


@given(
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)),
    st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=40)),
    st.sampled_from(["*/7 * * * *", "30 2 * * *", "0 9 * * 1-5", "15 3 1 * *"]),
    st.sampled_from(["UTC", "Europe/Paris", "America/New_York", "Australia/Lord_Howe"]),
)
def test_firing_runs_the_latest_due_tick_and_moves_past_now(
    created: datetime, downtime: timedelta, expression: str, zone: str
) -> None:
    cron = Cron(expression, zone)
    due = cron.after(created)
    now = due + downtime
    firing = cron.firing(due, now, CatchUp.ONCE)
    assert firing.tick is not None and due <= firing.tick <= now < firing.next_run
    assert cron.after(firing.tick) == firing.next_run  # no tick between the one run and the next run


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"expression": "* * *"}, r"cron '\* \* \*' is not a valid cron expression .*five fields"),
        ({"expression": 5}, "cron must be a string"),
        ({"expression": ["*"]}, "cron must be a string"),
        (
            {"expression": "0 0 30 2 *"},
            r"cron '0 0 30 2 \*' is not a valid cron expression \(Bad day-of-month\)",
        ),
        (
            {"expression": "* * * * *", "timezone": "Europe/Pariss"},
            "timezone 'Europe/Pariss' is not a known IANA",
        ),
        ({"expression": "* * * * *", "timezone": None}, "timezone must be an IANA name"),
        ({"expression": "* * * * *", "timezone": ["UTC"]}, "timezone must be an IANA name"),
        ({"expression": "* * * * *", "timezone": "../etc/passwd"}, "is not a known IANA time zone"),
    ],
)
def test_bad_crons_and_zones_are_refused_saying_how_to_fix_them(
    arguments: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        Cron(**arguments)  # type: ignore[arg-type]  # the wrong types are the test


def test_options_survive_their_json() -> None:
    options = TaskOptions(queue="q", priority=-3, max_attempts=4, retry=RetryPolicy(backoff=2), timeout=1.5)
    assert options_from_json(options_to_json(options)) == options
    assert options_from_json(options_to_json(TaskOptions())) == TaskOptions()


def test_the_sync_queue_mirrors_the_schedule_methods() -> None:
    with SyncTaskQueue("memory://sync-schedules") as queue:
        made = queue.schedule("product", Task(multiply, [6, 7], priority=2), cron="*/5 * * * *")
        assert made.next_run.minute % 5 == 0 and made.catch_up is CatchUp.ONCE
        assert [schedule.name for schedule in queue.schedules()] == ["product"]
        assert queue.pause_schedule("product").paused
        assert not queue.resume_schedule("product").paused
        queue.unschedule("product")
        with pytest.raises(ScheduleNotFoundError):
            queue.unschedule("product")


def test_a_scheduled_task_takes_no_eta_or_parents() -> None:
    with SyncTaskQueue("memory://") as queue:
        with pytest.raises(ValidationError, match="leave eta and depends_on out"):
            queue.schedule("late", multiply, 1, 2, cron="* * * * *", eta=T0)
        with pytest.raises(ValidationError, match="name must be"):
            queue.schedule("", multiply, 1, 2, cron="* * * * *")


@pytest.mark.parametrize(
    "keyed",
    [
        Task(multiply, [1, 2], unique_key="once"),
        Task(multiply, [1, 2], concurrency_key="k", concurrency_limit=1),
    ],
    ids=["unique_key", "concurrency_key"],
)
def test_a_scheduled_task_takes_no_keys(keyed: Task) -> None:
    with (
        SyncTaskQueue("memory://") as queue,
        pytest.raises(ValidationError, match="cannot carry a unique_key"),
    ):
        queue.schedule("keyed", keyed, cron="* * * * *")
    assert queue.schedules() == []


async def test_a_tick_counts_against_its_task_names_limits() -> None:
    async with TaskQueue("memory://tick-limits") as queue:
        made = await queue.schedule("limited", Task(multiply, [6, 7], concurrency_limit=1), cron="* * * * *")
        worker = Worker(queue)
        try:
            [task_id] = await worker.fire_schedules(made.next_run)
            assert (await queue.get_task(task_id)).concurrency_key == made.task_name
        finally:
            await worker.stop()


async def test_an_encrypted_schedule_is_stored_unreadable_and_each_tick_sealed_for_its_task() -> None:
    key = "unit-test-encryption-key-0123456789"
    async with TaskQueue("memory://", "pickle", encryption_key=key, signing_key=key) as queue:
        made = await queue.schedule("product", multiply, 6, 7, cron="* * * * *")
        [stored] = await queue.backend.list_schedules()
        assert b"multiply" not in stored.payload
        worker = Worker(queue)
        try:
            [task_id] = await worker.fire_schedules(made.next_run)
            assert (await worker.process_task(task_id)).value == 42
            # A worker without the key cannot open the schedule, and leaves its tick alone.
            keyless = Worker(queue, encryption_key=["another-encryption-key-0123456789"])
            later = made.next_run + timedelta(minutes=1)
            assert await keyless.fire_schedules(later) == []
            assert (await queue.schedules())[0].next_run == later
            await keyless.stop()
        finally:
            await worker.stop()
