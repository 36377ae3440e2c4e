"""`Worker`: claims due tasks from a backend and runs them, async ones on the loop, sync ones in threads."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import functools
import inspect
import logging
import os
import signal
import socket
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from types import TracebackType
from typing import Any

from sitq.backend import Backend
from sitq.batching import GroupCommit
from sitq.changes import Subscription
from sitq.codec import Codec
from sitq.errors import TaskNotFoundError, ValidationError, WorkerError
from sitq.models import ReservedTask, Result, TaskOutcome, TaskStatus, utcnow
from sitq.plugins import plugins_with
from sitq.queue import TaskQueue
from sitq.serializer import Serializer

logger = logging.getLogger(__name__)


class Worker:
    """Runs tasks from a backend, never more than `max_concurrency` at once.

    `backend` is a backend object, a URL, or a `TaskQueue` (whose backend, serializer and plugins it
    then shares). `poll_interval` bounds how long an idle worker trusts the backend's change
    notifications before looking again. A claimed task is leased for `lease` seconds and the lease is
    renewed while it runs, so that if this process dies another worker picks the task up.
    """

    def __init__(
        self,
        backend: Backend | TaskQueue | str | None = None,
        serializer: Serializer | str | None = None,
        *,
        max_concurrency: int = 10,
        poll_interval: float = 1.0,
        lease: float = 60.0,
        plugins: Sequence[object] = (),
    ) -> None:
        if isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int) or max_concurrency < 1:
            raise ValidationError(f"max_concurrency must be a whole number >= 1, not {max_concurrency!r}")
        for name, seconds in (("poll_interval", poll_interval), ("lease", lease)):
            if not isinstance(seconds, int | float) or seconds <= 0:
                raise ValidationError(f"{name} must be a number of seconds > 0, not {seconds!r}")
        if isinstance(backend, TaskQueue):
            self.plugins = plugins_with(plugins) if plugins else backend.plugins
            self.backend = backend.backend
            serializer = serializer or backend.serializer
        else:
            self.plugins = plugins_with(plugins)
            self.backend = self.plugins.resolve_backend(backend)
        self._codec = Codec(self.plugins, self.plugins.resolve_serializer(serializer))
        self.max_concurrency = max_concurrency
        self.poll_interval = float(poll_interval)
        self.lease = timedelta(seconds=lease)
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._completions = GroupCommit(self.backend.complete)
        self._in_flight: dict[str, asyncio.Task[TaskOutcome]] = {}
        self._executor: ThreadPoolExecutor | None = None
        self._holds_connection = False
        self._stopping = False
        self._wakeup: Subscription | None = None
        self._serving: asyncio.Task[None] | None = None
        self._renewing: asyncio.Task[None] | None = None

    @property
    def is_running(self) -> bool:
        return self._serving is not None and not self._serving.done()

    # Lifecycle

    async def start(self) -> None:
        """Connect and begin taking tasks in the background; returns once the worker is running."""
        if self._serving is not None:
            raise WorkerError("this worker is already running; stop() it before starting it again")
        await self._ready()
        self._stopping = False
        await self.plugins.worker_started(worker_id=self.worker_id, max_concurrency=self.max_concurrency)
        self._wakeup = self.backend.subscribe()
        self._serving = asyncio.create_task(self._serve(self._wakeup), name=f"sitq-worker {self.worker_id}")
        self._renewing = asyncio.create_task(self._renew_leases(), name=f"sitq-leases {self.worker_id}")
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

    async def run(self) -> None:
        """Run until `stop()` is called or the process gets SIGINT or SIGTERM, then stop gracefully."""
        await self.start()
        assert self._serving is not None
        loop = asyncio.get_running_loop()
        handled = []
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(signum, self._request_stop)
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
        if self._wakeup is not None:
            self._wakeup.set()

    async def _shut_down(self) -> None:
        if self._renewing is not None:
            self._renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewing
            self._renewing = None
        if self._wakeup is not None:
            self._wakeup.close()
            self._wakeup = None
        await self.plugins.worker_stopped(worker_id=self.worker_id)
        logger.info("worker %s stopped", self.worker_id)

    async def _ready(self) -> None:
        if not self._holds_connection:
            await self.backend.connect()
            self._holds_connection = True
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.max_concurrency, thread_name_prefix="sitq-task")

    async def _release(self) -> None:
        await self._completions.flush()
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None
        if self._holds_connection:
            self._holds_connection = False
            await self.backend.close()

    # Serving

    async def _serve(self, wakeup: Subscription) -> None:
        while not self._stopping:
            free = self.max_concurrency - len(self._in_flight)
            timeout: float | None = None
            if free > 0:
                claimed = await self._claim(free)
                for reserved in claimed:
                    self._spawn(reserved, wakeup)
                if len(claimed) == free:
                    continue
                timeout = await self._idle_timeout()
            await wakeup.wait(timeout)
        if self._in_flight:
            await asyncio.wait(list(self._in_flight.values()))

    async def _claim(self, limit: int) -> list[ReservedTask]:
        try:
            return await self.backend.claim(
                worker_id=self.worker_id, now=utcnow(), lease=self.lease, limit=limit
            )
        except Exception:
            logger.exception(
                "worker %s could not claim tasks; retrying in %ss", self.worker_id, self.poll_interval
            )
            return []

    async def _idle_timeout(self) -> float:
        """Sleep until the next task is due or a lease runs out, but never longer than `poll_interval`."""
        try:
            next_due = await self.backend.next_due()
        except Exception:
            logger.exception("worker %s could not read the next due time", self.worker_id)
            return self.poll_interval
        if next_due is None:
            return self.poll_interval
        return max(0.0, min(self.poll_interval, (next_due - utcnow()).total_seconds()))

    def _spawn(self, reserved: ReservedTask, wakeup: Subscription) -> None:
        running = asyncio.create_task(self._execute(reserved), name=f"sitq-task {reserved.id}")
        self._in_flight[reserved.id] = running

        def finished(_: asyncio.Task[TaskOutcome]) -> None:
            del self._in_flight[reserved.id]
            wakeup.set()

        running.add_done_callback(finished)

    async def _renew_leases(self) -> None:
        interval = self.lease.total_seconds() / 3
        while True:
            await asyncio.sleep(interval)
            if not self._in_flight:
                continue
            try:
                await self.backend.renew(
                    list(self._in_flight), worker_id=self.worker_id, now=utcnow(), lease=self.lease
                )
            except Exception:
                logger.exception("worker %s could not renew its leases", self.worker_id)

    # Running one task

    async def process_task(self, task_id: str) -> Result:
        """Run this one task now, whatever its eta, and return its `Result`.

        A task that has already finished is not run again: its stored result is returned, and one this
        worker is already running is waited for.
        """
        await self._ready()
        reserved = await self.backend.claim_task(
            task_id, worker_id=self.worker_id, now=utcnow(), lease=self.lease
        )
        if reserved is not None:
            await self._execute(reserved)
        elif (running := self._in_flight.get(task_id)) is not None:
            await asyncio.shield(running)  # this worker's own loop claimed it first
        record = await self.backend.get(task_id)
        if record is None:
            raise TaskNotFoundError(task_id)
        if not record.status.is_finished:
            raise WorkerError(
                f"task {task_id} is running on worker {record.worker_id}; wait for it with queue.get_result()"
            )
        return self._codec.to_result(record)

    async def _execute(self, reserved: ReservedTask) -> TaskOutcome:
        """Run one claimed task and record how it ended; whatever the task does, the worker goes on."""
        identity = {"task_id": reserved.id, "task_name": reserved.name, "worker_id": self.worker_id}
        await self.plugins.task_started(
            **identity, attempt=reserved.attempt, enqueued_at=reserved.enqueued_at
        )
        started = time.perf_counter()
        try:
            function, args, kwargs = self._codec.decode_call(reserved.payload, reserved.serializer)
            value = await self._call(function, args, kwargs)
            result = self._codec.encode_value(value, reserved.serializer)
        except (Exception, SystemExit) as exc:
            failure: BaseException | None = exc
        else:
            failure = None
        duration = time.perf_counter() - started
        if failure is None:
            outcome = self._outcome(reserved, TaskStatus.SUCCESS, result=result)
            await self.plugins.task_succeeded(**identity, duration=duration)
        else:
            error, formatted = f"{type(failure).__name__}: {failure}", _format_traceback(failure)
            outcome = self._outcome(reserved, TaskStatus.FAILED, error=error, traceback=formatted)
            logger.info("task %s (%s) failed: %s", reserved.id, reserved.name, error)
            await self.plugins.task_failed(**identity, duration=duration, error=error, traceback=formatted)
        try:
            await self._completions.submit(outcome)
        except Exception:
            logger.exception(
                "worker %s could not record the outcome of task %s; it will run again once its lease expires",
                self.worker_id,
                reserved.id,
            )
        return outcome

    def _outcome(self, reserved: ReservedTask, status: TaskStatus, **fields: Any) -> TaskOutcome:
        return TaskOutcome(
            task_id=reserved.id, worker_id=self.worker_id, status=status, finished_at=utcnow(), **fields
        )

    async def _call(
        self, function: Callable[..., Any], args: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> Any:
        if inspect.iscoroutinefunction(function):
            return await function(*args, **kwargs)
        context = contextvars.copy_context()
        call = functools.partial(context.run, function, *args, **kwargs)
        value = await asyncio.get_running_loop().run_in_executor(self._executor, call)
        if inspect.isawaitable(value):
            value = await value
        return value


# Frames of sitq's machinery, and of the executor that ran a sync task, say nothing about a task's failure.
_MACHINERY = tuple(
    os.path.dirname(module.__file__ or "") + os.sep
    for module in (sys.modules["sitq"], concurrent.futures, asyncio)
)


def _format_traceback(exc: BaseException) -> str:
    """The traceback from the task's own code down, or whole if the failure was inside sitq itself."""
    frames = exc.__traceback__
    while frames is not None and frames.tb_frame.f_code.co_filename.startswith(_MACHINERY):
        frames = frames.tb_next
    return "".join(traceback.format_exception(type(exc), exc, frames or exc.__traceback__))
