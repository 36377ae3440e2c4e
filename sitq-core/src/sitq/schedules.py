"""Periodic tasks: what a schedule is, and when its ticks fall.

A schedule is stored in the queue's backend, like a task: a cron expression read in an IANA time zone,
the call to enqueue at each tick (encoded by the queue's codec and sealed for the schedule's own id), and
the next tick it is due at. Core computes ticks (here, with `cronsim`); a backend stores schedules and
fires each tick by an atomic compare-and-set (`Backend.fire_schedule`), so that any number of workers
may fire them and every tick is enqueued exactly once. `sitq.firing` is the worker's side.

Why cronsim rather than croniter: cronsim is small, typed, pure Python without dependencies, maintained by
the Healthchecks.io project that runs it against millions of cron checks, and evaluates expressions in a
time zone as Debian's cron does across DST changes (a tick in the hour that spring skips runs once at the
change; one in the hour autumn repeats runs once). croniter was declared abandoned by its author in
2024-2025 and only later taken over by a new organisation.
"""

from __future__ import annotations

import enum
import functools
import json
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cronsim import CronSim, CronSimError

from sitq.errors import ValidationError
from sitq.models import TaskOptions
from sitq.semantics import option_fields, task_options


class CatchUp(enum.StrEnum):
    """What a schedule does with the ticks it missed while no worker fired it (all were down, or busy).

    Either way a schedule never enqueues more than one task for its missed ticks."""

    ONCE = "once"
    """Run the most recent missed tick once, however late, then carry on from the next tick to come."""
    SKIP = "skip"
    """Drop the missed ticks: a tick runs only if a worker fires it within `SKIP_AFTER` of its time."""


SKIP_AFTER = timedelta(minutes=1)
"""How late a tick of a `CatchUp.SKIP` schedule may be fired and still run: cron's own resolution, so a
worker that wakes a few seconds after a tick still runs it, and one that comes back after an outage
does not."""


@dataclass(frozen=True)
class Schedule:
    """A periodic task as stored, returned by `TaskQueue.schedule` and listed by `TaskQueue.schedules`."""

    name: str
    cron: str
    timezone: str
    """The IANA time zone the cron expression is read in, such as ``"Europe/Paris"``."""
    task_name: str
    queue: str
    next_run: datetime
    """The next tick to fire, timezone-aware UTC."""
    paused: bool
    catch_up: CatchUp
    last_run: datetime | None
    """The tick of the last task this schedule enqueued (UTC), None before its first."""


@dataclass(frozen=True, slots=True)
class StoredSchedule:
    """A schedule as core hands it to `Backend.put_schedule` and a backend returns it.

    `payload` is the call, as the queue's codec encoded and sealed it for `id` (a fresh one each time a
    schedule is created or replaced); a backend stores it as opaque bytes, like a task's payload.
    """

    id: str
    name: str
    cron: str
    timezone: str
    catch_up: CatchUp
    task_name: str
    payload: bytes
    serializer: str
    options: TaskOptions
    next_run: datetime
    paused: bool = False
    last_run: datetime | None = None

    def public(self) -> Schedule:
        return Schedule(
            name=self.name,
            cron=self.cron,
            timezone=self.timezone,
            task_name=self.task_name,
            queue=self.options.queue,
            next_run=self.next_run,
            paused=self.paused,
            catch_up=self.catch_up,
            last_run=self.last_run,
        )


@dataclass(frozen=True, slots=True)
class Firing:
    """What firing a due schedule at some moment does: enqueue the task of `tick` (None: skip the missed
    ticks and enqueue nothing), and move the schedule on to `next_run`."""

    tick: datetime | None
    next_run: datetime


class Cron:
    """A cron expression read in a time zone; every datetime in and out is aware, and out is UTC."""

    def __init__(self, expression: str, timezone: str = "UTC") -> None:
        self.expression = check_cron(expression)
        self.timezone = check_timezone(timezone)
        self._zone = zoneinfo.ZoneInfo(self.timezone)

    def after(self, moment: datetime) -> datetime:
        """The first tick strictly after `moment`."""
        return next(CronSim(self.expression, moment.astimezone(self._zone))).astimezone(UTC)

    def firing(self, due: datetime, now: datetime, catch_up: CatchUp) -> Firing:
        """What to do for a schedule stored as due at `due`, seen by a worker at `now` (`due <= now`).

        The tick to run is the latest one at or before `now` (the ones before it were missed); the next
        run is the first tick after `now`, so a schedule never fires for a tick twice or for a tick to
        come."""
        tick, following = due, self.after(due)
        if following <= now:  # more than one tick passed unfired: find the latest, from the far end
            tick = self._latest(now)
            following = self.after(now)
        late = now - tick
        run = catch_up is CatchUp.ONCE or late <= SKIP_AFTER
        return Firing(tick if run else None, following)

    def _latest(self, moment: datetime) -> datetime:
        """The last tick at or before `moment`. cronsim walks back from a whole minute (it drops seconds)
        and yields the ticks strictly before it, so the walk starts a minute later and passes over a
        tick after `moment`, if it meets one."""
        start = (moment + _MINUTE).astimezone(self._zone)
        for tick in CronSim(self.expression, start, reverse=True):
            if tick <= moment:
                return tick.astimezone(UTC)
        raise AssertionError("unreachable: cronsim's reverse walk is endless")


_MINUTE = timedelta(minutes=1)


def check_cron(expression: object) -> str:
    """`expression`, once cronsim accepts it; else `ValidationError` saying why and what a good one is."""
    if not isinstance(expression, str):
        raise ValidationError(f"cron must be a string such as '*/5 * * * *', not {expression!r:.100}")
    return _valid_cron(expression)


@functools.lru_cache(maxsize=256)  # a worker reads each stored schedule's cron at every look
def _valid_cron(expression: str) -> str:
    try:
        CronSim(expression, datetime(2000, 1, 1, tzinfo=UTC))
    except CronSimError as exc:
        raise ValidationError(
            f"cron {expression!r} is not a valid cron expression ({exc}): give five fields, minute hour "
            "day-of-month month day-of-week, such as '*/5 * * * *' (every 5 minutes) or '30 2 * * 1-5' "
            "(2:30 on weekdays)"
        ) from None
    return expression


def check_timezone(timezone: object) -> str:
    """`timezone`, once known to name an IANA time zone; else `ValidationError` saying how to fix it."""
    if not isinstance(timezone, str):
        raise ValidationError(f"timezone must be an IANA name such as 'Europe/Paris', not {timezone!r:.100}")
    try:
        zoneinfo.ZoneInfo(timezone)  # cached by zoneinfo itself
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            f"timezone {timezone!r} is not a known IANA time zone: give a name such as 'UTC', "
            "'Europe/Paris' or 'America/New_York' (on a system without a time zone database, "
            "pip install tzdata)"
        ) from None
    return timezone


def check_catch_up(catch_up: object) -> CatchUp:
    """`catch_up` as a `CatchUp`; else `ValidationError` naming the choices."""
    try:
        return CatchUp(catch_up)  # type: ignore[arg-type]  # any value: the enum refuses what is not one
    except ValueError:
        raise ValidationError(
            f"catch_up must be {' or '.join(repr(str(choice)) for choice in CatchUp)} (sitq.CatchUp), "
            f"not {catch_up!r:.100}"
        ) from None


def options_to_json(options: TaskOptions) -> str:
    """A schedule's task options as one JSON text to store: the fields `sitq.semantics.option_fields`
    gives, in its order, so that a backend needs no column per option for its schedules."""
    return json.dumps(option_fields(options), separators=(",", ":"))


def options_from_json(stored: str) -> TaskOptions:
    """The options `options_to_json` stored."""
    return task_options(*json.loads(stored))
