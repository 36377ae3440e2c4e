"""`Worker`: claims due tasks from a backend and runs them, async ones on the loop, sync ones in threads, or
every one in child processes (process mode, `sitq.processes`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import uuid
from collections import deque
from collections.abc import Iterable, Mapping, Sequence, Set
from datetime import datetime, timedelta
from types import TracebackType

from sitq.arguments import (
    MAX_CONCURRENCY,
    check_duration,
    check_id,
    check_int,
    check_name,
    check_names,
    check_seconds,
)
from sitq.backend import Backend
from sitq.backoff import Backoff
from sitq.batching import GroupCommit
from sitq.changes import Subscription
from sitq.codec import Codec, accepted
from sitq.errors import TaskNotFoundError, ValidationError, WorkerError
from sitq.firing import ScheduleFirer
from sitq.models import Limits, ReservedTask, Result, TaskOutcome, TaskStatus, utcnow
from sitq.plugins import plugins_with
from sitq.prefetch import PATIENCE, Prefetch
from sitq.queue import TaskQueue, checked_limits
from sitq.runner import TaskRunner
from sitq.sealing import Keys, Sealer
from sitq.serializer import Serializer

logger = logging.getLogger(__name__)


class Worker:
    """Runs tasks of its `queues` from a backend, never more than `max_concurrency` at once.

    `backend` is a backend object, a URL, or a `TaskQueue` (whose backend, serializer and plugins it
    then shares). `poll_interval` bounds how long an idle worker trusts the backend's change
    notifications before looking again, and how soon a running task sees its cancellation. A claimed
    task is leased for `lease` seconds and the lease is renewed while it runs, so that if this process
    dies another worker picks the task up. On stop, running tasks get `grace_period` seconds to finish;
    the rest are given back to the queue. With `retention` (one duration, or one per queue), the worker
    deletes its queues' tasks that finished longer ago than that, about once a minute. `limits` bound
    the return values and errors it stores (by default those of the `TaskQueue` it was built from, else
    `Limits()`).

    `signing_key` and `encryption_key` (by default those of the `TaskQueue` it was built from, else
    ``$SITQ_SIGNING_KEY`` and ``$SITQ_ENCRYPTION_KEY``) make it refuse, before decoding a byte, any call
    not sealed with one of them, and seal the results it stores. `accept` names the serializers whose
    calls it decodes (None: any installed); a task written with another fails unread.

    With `processes=N` (process mode), tasks run in N child processes, one at a time each, instead of in
    this process: a task that kills its process (a signal, `os._exit`, a crash in native code) costs only
    its own attempt, recorded as `TaskCrashedError`, and its child is replaced; a timeout or a cancellation
    kills the child running the task; CPU-bound tasks use one core per child. Hooks still fire in this
    process. `max_concurrency` defaults to 10 in thread mode and to `processes` in process mode, which it
    cannot exceed.

    When its recent tasks were short, a worker claims a few more than its free slots, so that a slot
    coming free starts the next task without waiting for a claim (`sitq.prefetch`). Each holds an attempt:
    a graceful stop gives the ones not yet started back uncounted, and a worker that dies costs them an
    attempt, as it does the tasks it was running.
    """

    def __init__(
        self,
        backend: Backend | TaskQueue | str | None = None,
        serializer: Serializer | str | None = None,
        *,
        max_concurrency: int | None = None,
        processes: int | None = None,
        poll_interval: float = 1.0,
        lease: float = 60.0,
        queues: Sequence[str] = ("default",),
        grace_period: float = 30.0,
        retention: timedelta | Mapping[str, timedelta] | None = None,
        plugins: Sequence[object] = (),
        limits: Limits | None = None,
        signing_key: Keys | None = None,
        encryption_key: Keys | None = None,
        accept: Iterable[str] | None = None,
    ) -> None:
        if processes is not None and (
            isinstance(processes, bool) or not isinstance(processes, int) or processes < 1
        ):
            raise ValidationError(f"processes must be a whole number >= 1 or None, not {processes!r}")
        if max_concurrency is None:
            max_concurrency = processes or 10
        check_int(max_concurrency, "max_concurrency", low=1, high=MAX_CONCURRENCY)
        if processes is not None and max_concurrency > processes:
            raise ValidationError(
                f"max_concurrency={max_concurrency} cannot exceed processes={processes}: each child process "
                "runs one task at a time; leave max_concurrency out to run one task per process"
            )
        for name, seconds in (
            ("poll_interval", poll_interval),
            ("lease", lease),
            ("grace_period", grace_period),
        ):
            check_seconds(seconds, name)
        if lease < _MIN_LEASE:
            raise ValidationError(f"lease must be at least {_MIN_LEASE} seconds, not {lease!r}")
        if isinstance(backend, TaskQueue):
            self.plugins = plugins_with(plugins) if plugins else backend.plugins
            self.backend = backend.backend
            serializer = serializer or backend.serializer
            limits = backend.limits if limits is None else limits
            queue_codec = backend._codec
        else:
            self.plugins = plugins_with(plugins)
            self.backend = self.plugins.resolve_backend(backend)
            queue_codec = None
        inherited = None if queue_codec is None else queue_codec.sealer
        sealer = Sealer.configured(signing_key, encryption_key, inherited)
        if accept is None and queue_codec is not None:
            accept = queue_codec.accept
        self._codec = Codec(
            self.plugins, self.plugins.resolve_serializer(serializer), sealer, accepted(accept, self.plugins)
        )
        self.limits = checked_limits(limits)
        """What this worker stores at most: a return value over `result_bytes` fails its task."""
        self.max_concurrency = max_concurrency
        self.processes = processes
        self.poll_interval = float(poll_interval)
        self.lease = timedelta(seconds=lease)
        self.queues = check_names(queues, "queues")
        self.grace_period = float(grace_period)
        self.retention = _retention_by_queue(retention, self.queues)
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        """Names this worker in task records, attempt history and hooks: host, process id, a random part."""
        self._completions = GroupCommit(self._record)
        self._claiming = asyncio.Lock()
        self._in_flight: dict[str, asyncio.Task[TaskOutcome]] = {}
        self._calling: set[asyncio.Task[TaskOutcome]] = set()  # those of _in_flight that hold a slot
        self._waiting: deque[tuple[ReservedTask, float]] = deque()  # claimed ahead, and since when
        self._prefetch = Prefetch(max_concurrency)
        self._runner = TaskRunner(
            backend=self.backend,
            codec=self._codec,
            plugins=self.plugins,
            limits=self.limits,
            worker_id=self.worker_id,
            max_concurrency=max_concurrency,
            processes=processes,
            wake=self._wake,
        )
        self._schedules = ScheduleFirer(
            backend=self.backend,
            codec=self._codec,
            plugins=self.plugins,
            queues=self.queues,
            poll_interval=self.poll_interval,
            worker_id=self.worker_id,
        )
        self._holds_connection = False
        self._stopping = False
        self._taking = False
        self._burst = False
        self._wakeup: Subscription | None = None
        self._serving: asyncio.Task[None] | None = None
        self._background: list[asyncio.Task[None]] = []
        self._give_back = asyncio.Event()  # set: stop waiting for running tasks, give them back now
        # Backend operations that fail are retried with backoff, each logged once when it starts failing.
        self._claims = Backoff(f"worker {self.worker_id}: claiming tasks")
        self._recording = Backoff(f"worker {self.worker_id}: recording finished tasks")
        self._renewals = Backoff(f"worker {self.worker_id}: renewing leases")
        self._lookups = Backoff(f"worker {self.worker_id}: reading when the next task is due")
        self._rescues = Backoff(f"worker {self.worker_id}: recovering the tasks of dead workers")

    @property
    def is_running(self) -> bool:
        """True between `start()` and the end of `stop()`'s drain."""
        return self._serving is not None and not self._serving.done()

    # Lifecycle

    async def start(self) -> None:
        """Connect and begin taking tasks in the background; returns once the worker is running."""
        if self._serving is not None:
            raise WorkerError("this worker is already running; stop() it before starting it again")
        await self._ready()
        self._stopping = self._runner.abandoning = False
        self._give_back = asyncio.Event()
        await self.plugins.worker_started(worker_id=self.worker_id, max_concurrency=self.max_concurrency)
        self._wakeup = self.backend.subscribe()
        self._serving = asyncio.create_task(self._serve(self._wakeup), name=f"sitq-worker {self.worker_id}")
        self._background = [
            asyncio.create_task(self._renew_leases(), name=f"sitq-leases {self.worker_id}"),
            asyncio.create_task(self._schedules.run(), name=f"sitq-schedules {self.worker_id}"),
        ]
        if self.retention:
            self._background.append(
                asyncio.create_task(self._keep_retention(), name=f"sitq-retention {self.worker_id}")
            )
        logger.info("worker %s started (max_concurrency=%s)", self.worker_id, self.max_concurrency)

    async def stop(self) -> None:
        """Stop taking tasks, wait for the in-flight ones to finish and be recorded, then let go."""
        serving = self._serving
        if serving is not None:
            self._request_stop()
            await asyncio.shield(serving)
            if self._serving is serving:
                self._serving = None
                await self._shut_down()
        await self._release()

    async def run(self, *, burst: bool = False) -> None:
        """Run until `stop()` is called or the process gets SIGINT or SIGTERM, then stop gracefully.

        The first signal stops taking tasks and lets the running ones finish for up to `grace_period`
        seconds; a second one gives them back to the queue at once, as the end of the grace period does.
        With `burst=True`, also return once no task is due and none is running: a script or a test drains
        what is due without sleeping, and tasks scheduled for later stay queued.
        """
        self._burst = burst
        await self.start()
        assert self._serving is not None
        loop = asyncio.get_running_loop()
        handled = []
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(signum, self._on_signal, signum)
                handled.append(signum)
        try:
            await asyncio.shield(self._serving)
        finally:
            for signum in handled:
                loop.remove_signal_handler(signum)
            await self.stop()

    async def __aenter__(self) -> Worker:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def _request_stop(self) -> None:
        self._stopping = True
        self._wake()

    def _wake(self) -> None:
        """Have the serving loop look again now (a slot came free, or it should stop)."""
        if self._wakeup is not None:
            self._wakeup.set()

    def _on_signal(self, signum: int) -> None:
        """The first SIGINT or SIGTERM stops gracefully, the next gives the running tasks back at once;
        each says so in one line, since the person who pressed Ctrl-C is waiting for an answer."""
        name = signal.Signals(signum).name
        running = len(self._in_flight)
        if not self._stopping:
            if running:
                logger.warning(
                    "worker %s got %s: stopping; waiting up to %gs for %d running task(s) to finish "
                    "(press Ctrl-C again or send SIGTERM to give them back to the queue at once)",
                    self.worker_id,
                    name,
                    self.grace_period,
                    running,
                )
            else:
                logger.info("worker %s got %s: stopping; no task is running", self.worker_id, name)
            self._request_stop()
        elif not self._give_back.is_set():
            logger.warning(
                "worker %s got %s again: giving back %d running task(s) to the queue now",
                self.worker_id,
                name,
                running,
            )
            self._give_back.set()

    async def _shut_down(self) -> None:
        for background in self._background:
            background.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        self._background = []
        if self._wakeup is not None:
            self._wakeup.close()
            self._wakeup = None
        await self.plugins.worker_stopped(worker_id=self.worker_id)
        logger.info("worker %s stopped", self.worker_id)

    async def _ready(self) -> None:
        if not self._holds_connection:
            await self.backend.connect()
            self._holds_connection = True
        try:
            await self._runner.start()
        except BaseException:
            await self._release()  # a worker that cannot start holds nothing
            raise

    async def _release(self) -> None:
        await self._completions.flush()
        await self._runner.close()
        if self._holds_connection:
            self._holds_connection = False
            await self.backend.close()

    # Serving

    async def _serve(self, wakeup: Subscription) -> None:
        self._taking = True
        try:
            while not self._stopping:
                self._start_waiting()  # an abandoned thread's slot may have come free
                timeout: float | None = None
                # While outcomes are being written, that write claims for the slots it frees.
                if not self._completions.busy and self._room() > 0:
                    async with self._claiming:
                        room = self._room()
                        claimed = await self._claim(room)
                        self._take(claimed or ())
                    if claimed is None:
                        await self._pause(wakeup, self._claims.delay)
                        continue
                    if len(claimed) == room:
                        continue
                    timeout = await self._idle_timeout()
                    idle = not claimed and not self._in_flight and not self._runner.held_slots
                    if self._burst and idle and timeout > 0:
                        break
                await wakeup.wait(timeout)
        finally:
            self._taking = False
        await self._drain()

    def _free_slots(self) -> int:
        return self.max_concurrency - len(self._calling) - self._runner.held_slots

    def _room(self) -> int:
        """How many tasks to claim now: the free slots, and the tasks to hold ahead, less those held."""
        return self._free_slots() + self._prefetch.extra - len(self._waiting)

    def _take(self, claimed: Sequence[ReservedTask]) -> None:
        """Start claimed tasks in the free slots; hold the rest until slots come free."""
        now = asyncio.get_running_loop().time()
        self._waiting.extend((reserved, now) for reserved in claimed)
        self._start_waiting()

    def _start_waiting(self) -> None:
        while self._waiting and self._free_slots() > 0 and not self._stopping:
            reserved, _ = self._waiting.popleft()
            self._spawn(reserved, self._wakeup)

    def _unhold(self, task_id: str) -> ReservedTask | None:
        """The task this worker holds ahead with this id, no longer held; None if it holds none."""
        for held in self._waiting:
            if held[0].id == task_id:
                self._waiting.remove(held)
                return held[0]
        return None

    def _let_go_of_held(self, cancelled: Set[str]) -> list[str]:
        """Stop holding the tasks whose cancellation was requested, and those that waited too long for a
        slot (tasks have slowed down: another worker may have one free); return their ids."""
        oldest = asyncio.get_running_loop().time() - PATIENCE
        kept: deque[tuple[ReservedTask, float]] = deque()
        dropped = []
        for reserved, since in self._waiting:
            if reserved.id in cancelled:
                dropped.append(reserved.id)
            elif since < oldest:
                dropped.append(reserved.id)
                self._prefetch.stalled()
            else:
                kept.append((reserved, since))
        self._waiting = kept
        return dropped

    async def _record(self, outcomes: Sequence[TaskOutcome]) -> None:
        """Record finished attempts; while serving, claim the next tasks for their slots in the same write."""
        if not self._taking or self._stopping:
            await self.backend.complete(outcomes)
            return
        async with self._claiming:
            claimed = await self.backend.claim(
                worker_id=self.worker_id,
                now=utcnow(),
                lease=self.lease,
                limit=self._room(),
                queues=self.queues,
                outcomes=outcomes,
            )
            self._take(claimed)

    async def _drain(self) -> None:
        """Give back the tasks claimed ahead; let running tasks finish within the grace period, and give
        the others back to the queue."""
        await self._give_back_held()  # at once: another worker may run them meanwhile
        await self._finish_running()
        await self._give_back_held()  # claimed by the write of an outcome, under way when the stop came

    async def _give_back_held(self) -> None:
        if self._waiting:
            held = [reserved.id for reserved, _ in self._waiting]
            self._waiting.clear()
            await self._give_back_tasks(held)

    async def _finish_running(self) -> None:
        if not self._in_flight:
            return
        waiting = list(self._in_flight.values())
        finished = asyncio.ensure_future(asyncio.wait(waiting))
        hurried = asyncio.ensure_future(self._give_back.wait())
        await asyncio.wait(
            (finished, hurried), timeout=self.grace_period, return_when=asyncio.FIRST_COMPLETED
        )
        finished.cancel()  # stops only the waiting, not the tasks waited for
        hurried.cancel()
        unfinished = {task for task in waiting if not task.done()}
        if not unfinished:
            return
        abandoned = [task_id for task_id, running in self._in_flight.items() if running in unfinished]
        self._runner.abandoning = True  # from here on, a cancelled call is given back, not recorded cancelled
        for running in unfinished:
            running.cancel()
        await asyncio.wait(unfinished)
        logger.warning(
            "worker %s gives back %d unfinished task(s) at shutdown", self.worker_id, len(abandoned)
        )
        await self._give_back_tasks(abandoned)

    async def _give_back_tasks(self, task_ids: list[str]) -> None:
        try:
            await self.backend.release(task_ids, worker_id=self.worker_id, now=utcnow())
        except Exception:
            logger.exception(
                "worker %s could not give back its tasks; they rerun when their leases expire", self.worker_id
            )

    async def _claim(self, limit: int) -> list[ReservedTask] | None:
        """The claimed tasks, or None if the claim failed (wait `self._claims.delay` before the next)."""
        try:
            claimed = await self.backend.claim(
                worker_id=self.worker_id, now=utcnow(), lease=self.lease, limit=limit, queues=self.queues
            )
        except Exception as exc:
            self._claims.failed(exc)
            return None
        self._claims.succeeded()
        return claimed

    async def _pause(self, wakeup: Subscription, seconds: float) -> None:
        """Wait out a backoff: only stopping cuts it short, not the changes that wake an idle worker."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while not self._stopping and (left := deadline - loop.time()) > 0:
            await wakeup.wait(left)

    async def _idle_timeout(self) -> float:
        """Sleep until the next task is due or a lease runs out, but never longer than `poll_interval`."""
        try:
            next_due = await self.backend.next_due(self.queues)
        except Exception as exc:
            return min(self.poll_interval, self._lookups.failed(exc))
        self._lookups.succeeded()
        if next_due is None:
            return self.poll_interval
        due_in = (next_due - utcnow()).total_seconds()
        if due_in > 0:
            return min(self.poll_interval, due_in)
        # Due already, yet the claim took nothing: a dead worker's lease ran out on a task that ends
        # instead of running again.
        return await self._recover_lost()

    async def _recover_lost(self) -> float:
        """End the tasks of dead workers that cannot run again, and tell the plugins, as if this worker had
        run their last attempt: metrics count them. Return how long to wait before claiming again."""
        try:
            ended = await self.backend.recover_lost(now=utcnow())
        except Exception as exc:
            return min(self.poll_interval, self._rescues.failed(exc))
        self._rescues.succeeded()
        for record in ended:
            identity = {
                "task_id": record.id,
                "task_name": record.name,
                "queue": record.options.queue,
                "worker_id": self.worker_id,
            }
            if record.status is TaskStatus.CANCELLED:
                await self.plugins.task_cancelled(**identity)
                continue
            logger.info("task %s (%s) failed: %s", record.id, record.name, record.error)
            started, finished = record.started_at, record.finished_at
            duration = (finished - started).total_seconds() if started and finished else 0.0
            await self.plugins.task_failed(
                **identity, duration=duration, error=record.error or "", traceback=""
            )
        return 0.0

    def _spawn(self, reserved: ReservedTask, wakeup: Subscription | None) -> None:
        """Run a claimed task in the background, in flight (its lease renewed) until it is recorded."""
        running = asyncio.create_task(self._execute(reserved), name=f"sitq-task {reserved.id}")
        self._in_flight[reserved.id] = running
        self._calling.add(running)

        def finished(_: asyncio.Task[TaskOutcome]) -> None:
            self._calling.discard(running)  # cancelled before its call began, it never gave its slot back
            # A retry due at once may already run again, claimed in the write that recorded this attempt.
            if self._in_flight.get(reserved.id) is running:
                del self._in_flight[reserved.id]
            if wakeup is not None:
                wakeup.set()

        running.add_done_callback(finished)

    async def _renew_leases(self) -> None:
        """Keep the leases of running tasks alive, and stop those whose cancellation was requested.

        Also, once per lease, end the tasks of dead workers that cannot run again: a worker does so when
        it finds nothing to claim, which one with every slot busy never does.
        """
        interval = min(self.lease.total_seconds() / 3, self.poll_interval)
        loop = asyncio.get_running_loop()
        recovered = loop.time()
        delay = interval
        while True:
            await asyncio.sleep(delay)
            delay = interval
            if held := [*self._in_flight, *(reserved.id for reserved, _ in self._waiting)]:
                try:
                    cancelled = await self.backend.renew(
                        held, worker_id=self.worker_id, now=utcnow(), lease=self.lease
                    )
                except Exception as exc:
                    delay = min(interval, self._renewals.failed(exc))
                else:
                    self._renewals.succeeded()
                    given_back = self._let_go_of_held(cancelled)
                    self._runner.cancel(cancelled.difference(given_back))
                    if given_back:
                        await self._give_back_tasks(given_back)  # those cancelled end so
            if loop.time() - recovered >= self.lease.total_seconds():
                recovered = loop.time()
                await self._recover_lost()

    async def _keep_retention(self) -> None:
        interval = min(60.0, *(keep.total_seconds() for keep in self.retention.values()))
        while True:
            for queue, keep in self.retention.items():
                try:
                    purged = await self.backend.purge(finished_before=utcnow() - keep, queues=(queue,))
                except Exception:
                    logger.exception("worker %s could not purge old tasks of queue %s", self.worker_id, queue)
                    continue
                if purged:
                    logger.info(
                        "worker %s purged %d finished task(s) of queue %s", self.worker_id, purged, queue
                    )
            await asyncio.sleep(max(interval, 0.01))

    async def fire_schedules(self, now: datetime | None = None) -> list[str]:
        """Fire the due schedules of this worker's queues once, as a running worker does at each tick,
        and return the ids of the tasks this call enqueued (none for a tick another worker fired first).

        `now` (aware; by default the current time) lets a test or a script see what firing at a given
        moment does without waiting for it. A running worker fires schedules by itself."""
        if now is not None and (not isinstance(now, datetime) or now.utcoffset() is None):
            raise ValidationError(f"now must be a timezone-aware datetime, not {now!r:.100}")
        await self._ready()
        fired = await self._schedules.fire_due(utcnow() if now is None else now.astimezone(utcnow().tzinfo))
        return list(fired.task_ids)

    # Running one task

    async def process_task(self, task_id: str) -> Result:
        """Run this one task now, whatever its eta, and return its `Result`.

        A task that has already finished is not run again: its stored result is returned, and one this
        worker is already running is waited for. A task its limits hold back (`concurrency_limit`,
        `rate_limit`) is not run: `WorkerError` says so, and it stays pending, to start when its key has
        room.
        """
        check_id(task_id)
        await self._ready()
        reserved = await self.backend.claim_task(
            task_id, worker_id=self.worker_id, now=utcnow(), lease=self.lease
        )
        if reserved is None:
            async with self._claiming:
                pass  # a claim of this worker's own loop may have taken it, and not yet started it
            reserved = self._unhold(task_id)  # or holds it ahead: it starts now
        if reserved is not None:
            self._spawn(reserved, self._wakeup)
        if (running := self._in_flight.get(task_id)) is not None:
            await asyncio.shield(running)  # claimed just now, or earlier by this worker's own loop
        record = await self.backend.get(task_id)
        if record is not None and record.status is TaskStatus.IN_PROGRESS and reserved is None:
            await self._recover_lost()  # its worker may be dead, with no attempt left for this one
            record = await self.backend.get(task_id)
        if record is None:
            raise TaskNotFoundError(task_id)
        if record.status is TaskStatus.PENDING and record.concurrency_key and not record.depends_on:
            raise WorkerError(
                f"task {task_id} is held back by the limits of its key {record.concurrency_key!r} (its "
                "concurrency or rate limit is reached): it stays pending and starts when its key has room; "
                "wait for it with queue.get_result()"
            )
        if not record.status.is_finished:
            raise WorkerError(
                f"task {task_id} is running on worker {record.worker_id}; wait for it with queue.get_result()"
            )
        return self._codec.to_result(record)

    async def _execute(self, reserved: ReservedTask) -> TaskOutcome:
        """Run one claimed task, then record its outcome, retrying with backoff while the backend fails:
        while this worker lives, a finished attempt is not lost (the task stays in flight, its lease
        renewed, until it is recorded). Its slot is free, and the next task held ahead starts, as soon as
        the call has ended."""
        try:
            outcome = await self._runner.run(reserved)
        finally:
            if (this := asyncio.current_task()) is not None:  # it is: this runs in the task _spawn made
                self._calling.discard(this)
        if outcome.started_at is not None:  # always, from the runner: how long the call took
            self._prefetch.ran((outcome.finished_at - outcome.started_at).total_seconds())
        self._start_waiting()
        while True:
            try:
                await self._completions.submit(outcome)
            except Exception as exc:
                delay = self._recording.failed(exc)
            else:
                self._recording.succeeded()
                return outcome
            await asyncio.sleep(delay)


_MIN_LEASE = 0.001  # a shorter lease rounds to nothing: its task would be lost as soon as claimed


def _retention_by_queue(
    retention: timedelta | Mapping[str, timedelta] | None, queues: Sequence[str]
) -> dict[str, timedelta]:
    if retention is None:
        return {}
    if isinstance(retention, timedelta):
        retention = dict.fromkeys(queues, retention)
    elif not isinstance(retention, Mapping):
        raise ValidationError(
            f"retention must be a timedelta, or a dict of one per queue name, not {retention!r:.200}"
        )
    return {
        check_name(queue, "each queue of retention"): check_duration(
            keep, f"retention of queue {queue!r}", "timedelta(days=7)"
        )
        for queue, keep in retention.items()
    }
