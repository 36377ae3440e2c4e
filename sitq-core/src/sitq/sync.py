"""`SyncTaskQueue`: `TaskQueue` for code without an event loop, such as scripts and threaded web apps."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterable, Sequence
from datetime import timedelta
from types import TracebackType
from typing import Any, Generic, TypeVar

from sitq.backend import Backend
from sitq.errors import SyncTaskQueueError
from sitq.models import Compaction, Limits, Result, Task, TaskInfo, TaskStatus
from sitq.queue import TaskQueue
from sitq.schedules import CatchUp, Schedule
from sitq.sealing import Keys
from sitq.serializer import Serializer
from sitq.workflow import Workflow, WorkflowRun, WorkflowStatus

T = TypeVar("T")


class SyncTaskQueue:
    """The same methods as `TaskQueue`, blocking. Its event loop runs in a private thread, so one
    instance can be shared by many threads. Inside a running event loop, use `TaskQueue` instead."""

    def __init__(
        self,
        backend: Backend | str | None = None,
        serializer: Serializer | str | None = None,
        *,
        plugins: Sequence[object] = (),
        eager: bool | None = None,
        limits: Limits | None = None,
        signing_key: Keys | None = None,
        encryption_key: Keys | None = None,
        accept: Iterable[str] | None = None,
    ) -> None:
        self.queue = TaskQueue(
            backend,
            serializer,
            plugins=plugins,
            eager=eager,
            limits=limits,
            signing_key=signing_key,
            encryption_key=encryption_key,
            accept=accept,
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _call(self, method: Callable[..., Coroutine[Any, Any, T]], *args: Any, **kwargs: Any) -> T:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise SyncTaskQueueError(
                "SyncTaskQueue blocks, so it cannot be used inside a running event loop (an async web "
                "handler, a notebook cell); use `await` on a TaskQueue there instead"
            )
        call = _BlockingCall(method(*args, **kwargs))
        self._running_loop().call_soon_threadsafe(call.start)
        return call.result()

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=loop.run_forever, name="sitq-sync", daemon=True)
                self._thread.start()
                self._loop = loop
            return self._loop

    def connect(self) -> None:
        """Open the backend; the first call does it otherwise, and `with SyncTaskQueue(...)` does it too."""
        self._call(self.queue.connect)

    def close(self) -> None:
        """Close the queue and stop its private event loop."""
        if self._loop is None:
            return
        self._call(self.queue.close)
        with self._lock:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
            loop.close()

    def __enter__(self) -> SyncTaskQueue:
        self.connect()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def enqueue(self, function: Callable[..., Any] | Task, /, *args: Any, **kwargs: Any) -> str:
        """See `TaskQueue.enqueue`."""
        return self._call(self.queue.enqueue, function, *args, **kwargs)

    def enqueue_many(self, tasks: Iterable[Task]) -> list[str]:
        """See `TaskQueue.enqueue_many`."""
        return self._call(self.queue.enqueue_many, tasks)

    def schedule(
        self,
        name: str,
        function: Callable[..., Any] | Task,
        /,
        *args: Any,
        cron: str,
        timezone: str = "UTC",
        catch_up: CatchUp | str = CatchUp.ONCE,
        **kwargs: Any,
    ) -> Schedule:
        """See `TaskQueue.schedule`."""
        return self._call(
            self.queue.schedule,
            name,
            function,
            *args,
            cron=cron,
            timezone=timezone,
            catch_up=catch_up,
            **kwargs,
        )

    def unschedule(self, name: str) -> None:
        """See `TaskQueue.unschedule`."""
        self._call(self.queue.unschedule, name)

    def schedules(self) -> list[Schedule]:
        """See `TaskQueue.schedules`."""
        return self._call(self.queue.schedules)

    def pause_schedule(self, name: str) -> Schedule:
        """See `TaskQueue.pause_schedule`."""
        return self._call(self.queue.pause_schedule, name)

    def resume_schedule(self, name: str) -> Schedule:
        """See `TaskQueue.resume_schedule`."""
        return self._call(self.queue.resume_schedule, name)

    def get_status(self, task_id: str) -> TaskStatus:
        """See `TaskQueue.get_status`."""
        return self._call(self.queue.get_status, task_id)

    def get_result(self, task_id: str, timeout: float | None = None) -> Result | None:
        """See `TaskQueue.get_result`."""
        return self._call(self.queue.get_result, task_id, timeout)

    def cancel(self, task_id: str) -> TaskStatus:
        """See `TaskQueue.cancel`."""
        return self._call(self.queue.cancel, task_id)

    def get_task(self, task_id: str) -> TaskInfo:
        """See `TaskQueue.get_task`."""
        return self._call(self.queue.get_task, task_id)

    def submit(self, workflow: Workflow) -> WorkflowRun:
        """See `TaskQueue.submit`."""
        return self._call(self.queue.submit, workflow)

    def get_workflow(self, workflow_id: str) -> WorkflowStatus:
        """See `TaskQueue.get_workflow`."""
        return self._call(self.queue.get_workflow, workflow_id)

    def list_tasks(
        self,
        status: TaskStatus | str | Iterable[TaskStatus | str] | None = None,
        *,
        queue: str | None = None,
        limit: int = 100,
        after: str | None = None,
    ) -> list[TaskInfo]:
        """See `TaskQueue.list_tasks`."""
        return self._call(self.queue.list_tasks, status, queue=queue, limit=limit, after=after)

    def stats(self) -> dict[str, dict[TaskStatus, int]]:
        """See `TaskQueue.stats`."""
        return self._call(self.queue.stats)

    def requeue(self, task_id: str) -> TaskStatus:
        """See `TaskQueue.requeue`."""
        return self._call(self.queue.requeue, task_id)

    def purge(self, older_than: timedelta, *, queue: str | None = None) -> int:
        """See `TaskQueue.purge`."""
        return self._call(self.queue.purge, older_than, queue=queue)

    def compact(self) -> Compaction:
        """See `TaskQueue.compact`."""
        return self._call(self.queue.compact)

    def deserialize_result(self, result: Result) -> Any:
        """See `TaskQueue.deserialize_result`."""
        return self.queue.deserialize_result(result)


class _BlockingCall(Generic[T]):
    """A coroutine run on the private loop for a thread that blocks until it ends.

    Leaner than `asyncio.run_coroutine_threadsafe`, which matters for a call as short as an enqueue: the
    coroutine itself lets the caller go as it ends, a loop turn before a task's done callbacks would,
    and the caller waits on a bare lock rather than a future's condition."""

    def __init__(self, coroutine: Coroutine[Any, Any, T]) -> None:
        self._coroutine = coroutine
        self._ended = threading.Lock()
        self._ended.acquire()
        self._task: asyncio.Task[None] | None = None  # held here, since the loop holds its tasks weakly
        self._value: T | None = None
        self._error: BaseException | None = None

    def start(self) -> None:
        """On the loop."""
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        try:
            self._value = await self._coroutine
        except BaseException as exc:  # every outcome, even an interrupt, goes to the caller
            self._error = exc
        finally:
            self._ended.release()

    def result(self) -> T:
        """In the calling thread: wait for the coroutine; return what it returned, or raise what it raised."""
        self._ended.acquire()
        if self._error is not None:
            try:
                raise self._error
            finally:
                self._error = None  # no cycle from the error, through its traceback's frames, back to it
        return self._value  # type: ignore[return-value]  # the coroutine's value, once it raised nothing
