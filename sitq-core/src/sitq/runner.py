"""`TaskRunner`: runs one claimed task and says how it ended, for the `Worker` to record.

It decodes the call, calls it (async ones on the event loop, sync ones in a thread, or every one in a child
process in process mode), holds it to its timeout and to a requested cancellation, turns whatever it
returned or raised into the `TaskOutcome` to store, and fires the task's lifecycle hooks on the way. What to
run, when, and how outcomes are written (claims, leases, draining, signals, backoff) is the worker's.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence, Set
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sitq.backend import Backend
from sitq.codec import Codec, ParentResults, takes_parent_results
from sitq.errors import TaskCancelledError, TaskNotFoundError, TaskTimeoutError
from sitq.failures import FailedInChild, Failure
from sitq.models import AttemptOutcome, Limits, ReservedTask, TaskOutcome, TaskStatus, utcnow
from sitq.plugins import Plugins
from sitq.processes import Job, ProcessPool
from sitq.sealing import Part
from sitq.secret import Redactor
from sitq.semantics import CANCELLED_ON_REQUEST
from sitq.tasks import TaskContext, enter_task, reset_task
from sitq.threads import ThreadPool

# The worker's logger, not one of this module's own: the docs name it for these lines, and `sitq worker`
# quiets its INFO lines, which repeat what the command prints for each task.
logger = logging.getLogger("sitq.worker")

T = TypeVar("T")


class TaskRunner:
    """Runs the tasks a worker hands it, never more at once than `max_concurrency` (the worker's slots).

    With `processes=N`, calls run in a pool of N child processes; otherwise sync calls run in a pool of
    `max_concurrency` threads. `wake` is called when a slot held by an abandoned thread comes free.
    """

    def __init__(
        self,
        *,
        backend: Backend,
        codec: Codec,
        plugins: Plugins,
        limits: Limits,
        worker_id: str,
        max_concurrency: int,
        processes: int | None,
        wake: Callable[[], None],
    ) -> None:
        self._backend = backend
        self._codec = codec
        self._plugins = plugins
        self._limits = limits
        self._worker_id = worker_id
        self._max_concurrency = max_concurrency
        self._processes = processes
        self.abandoning = False
        """Set while the worker gives its running tasks back: a cancelled call is then given back, not
        recorded as cancelled."""
        # What to cancel when a running task's cancellation is requested: the asyncio task awaiting its call.
        self._calls: dict[str, asyncio.Future[Any]] = {}
        self._cancel_requested: set[str] = set()
        self._threads = ThreadPool(max_concurrency, wake) if processes is None else None
        self._pool: ProcessPool | None = None

    @property
    def held_slots(self) -> int:
        """Slots still held by the threads of abandoned tasks, which cannot be stopped."""
        return 0 if self._threads is None else self._threads.held

    async def start(self) -> None:
        """Make ready what calls run in: the child processes in process mode, else the threads."""
        if self._threads is not None:
            self._threads.start()
        elif self._pool is None:
            assert self._processes is not None
            pool = ProcessPool(self._processes, self._codec.serializer)
            await pool.start()
            self._pool = pool

    async def close(self) -> None:
        """Let go of the threads (without waiting for those still running) and stop the child processes."""
        if self._threads is not None:
            self._threads.close()
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    def cancel(self, task_ids: Set[str]) -> None:
        """Stop the calls of these running tasks, whose cancellation was requested (each only once)."""
        for task_id in task_ids - self._cancel_requested:
            self._cancel_requested.add(task_id)
            if (call := self._calls.get(task_id)) is not None:
                call.cancel()

    async def run(self, reserved: ReservedTask) -> TaskOutcome:
        """Run one claimed task and return how it ended; whatever the task does, the worker goes on."""
        identity = {
            "task_id": reserved.id,
            "task_name": reserved.name,
            "queue": reserved.options.queue,
            "worker_id": self._worker_id,
        }
        await self._plugins.task_started(
            **identity, attempt=reserved.attempt, enqueued_at=reserved.enqueued_at
        )
        options = reserved.options
        context = TaskContext(
            reserved.id, reserved.name, reserved.attempt, options.max_attempts, options.queue, self._worker_id
        )
        token = enter_task(context)
        redactor = Redactor()
        began, started = utcnow(), time.perf_counter()
        try:
            result = await self._run(reserved, context, redactor)
            self._limits.check_result(len(result))
        except asyncio.CancelledError:
            raise  # the worker stopping, or the call given back: not the task's failure
        except BaseException as exc:
            # KeyboardInterrupt, SystemExit, GeneratorExit or a custom BaseException from the task's code
            # fails that task only. Caught here, it never reaches asyncio, which would re-raise it out of
            # the event loop. A real Ctrl-C reaches the worker through its signal handler instead.
            failure: BaseException | None = exc
        else:
            failure = None
        finally:
            reset_task(token)
            self._cancel_requested.discard(reserved.id)
        duration = time.perf_counter() - started
        if failure is None:
            outcome = self._outcome(reserved, TaskStatus.SUCCESS, began, result=result)
            await self._plugins.task_succeeded(**identity, duration=duration)
            return outcome
        return await self._failed(reserved, failure, began, duration, identity, redactor)

    async def _failed(
        self,
        reserved: ReservedTask,
        failure: BaseException,
        began: datetime,
        duration: float,
        identity: dict[str, str],
        redactor: Redactor,
    ) -> TaskOutcome:
        """Decide what a failed attempt means: cancelled, retried later, timed out, or failed for good.
        Its secrets are masked first, so that no record, log line or hook sees them."""
        options = reserved.options
        described = redactor.redact(
            failure.failure if isinstance(failure, FailedInChild) else Failure.of(failure, options.retry)
        )
        error, formatted = self._limits.clip(described.error), self._limits.clip(described.traceback)
        if isinstance(failure, TaskCancelledError):
            await self._plugins.task_cancelled(**identity)
            return self._outcome(reserved, TaskStatus.CANCELLED, began, error=error)
        if isinstance(failure, TaskTimeoutError):
            assert options.timeout is not None
            await self._plugins.task_timed_out(**identity, attempt=reserved.attempt, timeout=options.timeout)
        delay = described.delay
        if delay is None and described.retryable:
            delay = options.retry.delay(reserved.attempt)
        if delay is not None and reserved.attempt < options.max_attempts:
            logger.info("task %s (%s) will retry in %.3gs: %s", reserved.id, reserved.name, delay, error)
            await self._plugins.task_retried(**identity, attempt=reserved.attempt, delay=delay, error=error)
            retry_at = utcnow() + timedelta(seconds=delay)
            retried = (
                AttemptOutcome.TIMEOUT if isinstance(failure, TaskTimeoutError) else AttemptOutcome.FAILED
            )
            return self._outcome(
                reserved,
                TaskStatus.PENDING,
                began,
                error=error,
                traceback=formatted,
                retry_at=retry_at,
                retried=retried,
            )
        logger.info("task %s (%s) failed: %s", reserved.id, reserved.name, error)
        await self._plugins.task_failed(**identity, duration=duration, error=error, traceback=formatted)
        status = TaskStatus.TIMEOUT if isinstance(failure, TaskTimeoutError) else TaskStatus.FAILED
        return self._outcome(reserved, status, began, error=error, traceback=formatted)

    async def _run(self, reserved: ReservedTask, context: TaskContext, redactor: Redactor) -> bytes:
        """Decode, call and encode the task: here, or in a child process that does all three."""
        self._check_cancelled(reserved)  # asked for while it waited for a slot
        codec = self._codec
        if self._pool is not None:
            # The child decodes and encodes without the keys: what it gets is verified here first, and
            # what it returns is sealed here.
            payload = codec.open(reserved.payload, reserved.id, Part.CALL, reserved.serializer)
            parents = codec.open_parent_results(await self._parent_results(reserved))
            job = Job(payload, reserved.serializer, context, reserved.options.retry, parents)
            async with self._pool.child() as child:  # waited for outside the task's timeout
                self._check_cancelled(reserved)  # asked for while it waited for a child process
                value = await self._call_async(reserved, self._pool.run(child, job))
            return codec.sealer.seal(value, reserved.id, Part.RESULT, reserved.serializer)
        function, args, kwargs = codec.decode_call(reserved.id, reserved.payload, reserved.serializer)
        args, kwargs = redactor.unwrap(args, kwargs)
        if reserved.depends_on and takes_parent_results(function):
            parents = await self._parent_results(reserved)
            kwargs = {**kwargs, "parent_results": codec.decode_parent_results(parents)}
        value = await self._call(reserved, function, args, kwargs)
        return codec.encode_value(reserved.id, value, reserved.serializer)

    async def _parent_results(self, reserved: ReservedTask) -> ParentResults:
        """The stored results of the task's parents (they have all succeeded)."""
        results = []
        for parent in reserved.depends_on:
            record = await self._backend.get(parent)
            if record is None or record.result is None:
                raise TaskNotFoundError(parent)
            results.append((parent, record.result, record.serializer))
        return tuple(results)

    def _outcome(
        self, reserved: ReservedTask, status: TaskStatus, began: datetime, **fields: Any
    ) -> TaskOutcome:
        """The attempt's outcome; it `began` later than its claim when the worker held the task before it
        had a slot for it."""
        return TaskOutcome(
            task_id=reserved.id,
            worker_id=self._worker_id,
            status=status,
            finished_at=utcnow(),
            started_at=began,
            **fields,
        )

    async def _call(
        self,
        reserved: ReservedTask,
        function: Callable[..., Any],
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
    ) -> Any:
        """Run the call, async on the loop or sync in a thread, within its timeout and until cancelled."""
        if inspect.iscoroutinefunction(function):
            return await self._call_async(reserved, function(*args, **kwargs))
        assert self._threads is not None
        call = self._threads.submit(function, args, kwargs)
        try:
            # Held to its timeout and cancelled as a coroutine is: cancelling this task cancels the future.
            await self._call_async(reserved, call.future)
        finally:
            if self._threads.let_go(call):
                logger.warning(
                    "task %s (%s) was abandoned, but its thread cannot be stopped: it keeps one of the %d "
                    "slots until it returns",
                    reserved.id,
                    reserved.name,
                    self._max_concurrency,
                )
        value = call.result()
        if inspect.isawaitable(value):
            value = await value
        return value

    async def _call_async(self, reserved: ReservedTask, coroutine: Awaitable[T]) -> T:
        """Await the coroutine in this very asyncio task, with no task of its own (the cheapest way to run
        many small tasks); a requested cancellation cancels this task while it awaits the coroutine."""
        running = asyncio.current_task()
        assert running is not None
        self._calls[reserved.id] = running
        timeout = reserved.options.timeout
        try:
            if timeout is None:  # no deadline to keep: the cheapest path, for the many small tasks
                return await coroutine
            async with asyncio.timeout(timeout) as deadline:
                return await coroutine
        except TimeoutError:
            if timeout is None or not deadline.expired():
                raise  # the task's own TimeoutError: an ordinary failure
            raise TaskTimeoutError(f"the attempt ran longer than its {timeout}s timeout") from None
        except asyncio.CancelledError:
            if self.abandoning or reserved.id not in self._cancel_requested:
                raise
            running.uncancel()
            raise TaskCancelledError(CANCELLED_ON_REQUEST) from None
        finally:
            del self._calls[reserved.id]

    def _check_cancelled(self, reserved: ReservedTask) -> None:
        if reserved.id in self._cancel_requested:
            raise TaskCancelledError(CANCELLED_ON_REQUEST)
