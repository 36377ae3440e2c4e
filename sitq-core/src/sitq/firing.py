"""A worker's side of periodic tasks: fire the due schedules of its queues, each tick exactly once.

Every worker fires the schedules of the queues it serves (a schedule whose queue no worker serves piles
up nothing). There is no elected scheduler: each worker that sees a due schedule computes the same tick
and next run (`sitq.schedules.Cron.firing`) and asks the backend to fire it by compare-and-set
(`Backend.fire_schedule`); one wins, the others change nothing. A worker that dies mid-fire either
committed the task and the schedule's next run together or neither, so nothing is lost or doubled.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sitq.backend import Backend
from sitq.backoff import Backoff
from sitq.codec import Codec
from sitq.errors import SerializationError, ValidationError
from sitq.limiting import limit_key
from sitq.models import NewTask, utcnow
from sitq.plugins import Plugins
from sitq.schedules import Cron, StoredSchedule

logger = logging.getLogger(__name__)

_MIN_SLEEP = 0.001  # a timer may fire a hair before its tick: look again at once, without spinning


@dataclass(frozen=True, slots=True)
class Fired:
    """What one look at the schedules did: the tasks this worker enqueued, and when the next one is due."""

    task_ids: tuple[str, ...]
    next_due: datetime | None


class ScheduleFirer:
    """Fires the due schedules of `queues`, in the background of a worker or once on request."""

    def __init__(
        self,
        *,
        backend: Backend,
        codec: Codec,
        plugins: Plugins,
        queues: Sequence[str],
        poll_interval: float,
        worker_id: str,
    ) -> None:
        self._backend = backend
        self._codec = codec
        self._plugins = plugins
        self._queues = frozenset(queues)
        self._poll_interval = poll_interval
        self._worker_id = worker_id
        self._refused: set[tuple[str, datetime]] = set()  # ticks it could not fire, logged once each
        self._looks = Backoff(f"worker {worker_id}: firing schedules")

    async def run(self) -> None:
        """Fire schedules as they fall due, forever; sleep until the next tick, but look again at least
        every `poll_interval`, so a schedule added or changed by another process is seen that soon."""
        while True:
            try:
                fired = await self.fire_due(utcnow())
            except Exception as exc:
                delay = self._looks.failed(exc)
            else:
                self._looks.succeeded()
                delay = self._poll_interval
                if fired.next_due is not None:
                    due_in = (fired.next_due - utcnow()).total_seconds()
                    delay = min(delay, max(due_in, _MIN_SLEEP))
            await asyncio.sleep(delay)

    async def fire_due(self, now: datetime) -> Fired:
        """Fire every schedule of these queues due at `now`; say what this worker enqueued."""
        task_ids: list[str] = []
        next_due: datetime | None = None
        for stored in await self._backend.list_schedules():
            if stored.paused or stored.options.queue not in self._queues:
                continue
            upcoming = stored.next_run
            if upcoming <= now:
                fired = await self._fire(stored, now)
                if fired is None:
                    continue
                task_id, upcoming = fired
                if task_id is not None:
                    task_ids.append(task_id)
            next_due = upcoming if next_due is None else min(next_due, upcoming)
        return Fired(tuple(task_ids), next_due)

    async def _fire(self, stored: StoredSchedule, now: datetime) -> tuple[str | None, datetime] | None:
        """Fire one due schedule: the id of the task this worker enqueued (None when it skipped the tick
        or another worker fired it first) and the schedule's next run; None for a tick it cannot fire.

        A tick whose stored cron or call this worker cannot use (the payload fails verification under
        its keys, or was altered) is logged once and left to the other workers, never skipped: a worker
        with the wrong keys must not eat the ticks of those with the right ones. It tries again at each
        look, so a schedule put right is fired."""
        try:
            firing = Cron(stored.cron, stored.timezone).firing(stored.next_run, now, stored.catch_up)
            task = None
            if firing.tick is not None:
                task_id = secrets.token_hex(16)
                payload = self._codec.reseal_scheduled_call(
                    stored.id, stored.payload, stored.serializer, task_id
                )
                task = NewTask(
                    id=task_id,
                    name=stored.task_name,
                    payload=payload,
                    serializer=stored.serializer,
                    enqueued_at=now,
                    eta=firing.tick,
                    options=stored.options,
                    concurrency_key=limit_key(
                        stored.task_name, None, stored.options.concurrency_limit, stored.options.rate_limit
                    ),
                )
        except (SerializationError, ValidationError) as exc:
            refusal = (stored.id, stored.next_run)
            if refusal in self._refused:
                return None
            self._refused.add(refusal)
            logger.error(
                "worker %s cannot fire schedule %r for its tick at %s, and leaves it to other workers: %s",
                self._worker_id,
                stored.name,
                stored.next_run.isoformat(),
                exc,
            )
            return None
        won = await self._backend.fire_schedule(
            stored.id, due=stored.next_run, next_run=firing.next_run, task=task
        )
        if not won or task is None:
            if won:
                logger.info("schedule %r skipped its missed tick(s) (catch_up='skip')", stored.name)
            return None, firing.next_run
        logger.info(
            "schedule %r enqueued task %s for its tick at %s", stored.name, task.id, task.eta.isoformat()
        )
        await self._plugins.task_enqueued(
            task_id=task.id, task_name=task.name, queue=task.options.queue, eta=task.eta
        )
        return task.id, firing.next_run
