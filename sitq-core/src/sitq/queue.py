"""`TaskQueue`: the async client that enqueues tasks and reads their results."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from types import TracebackType
from typing import Any

from sitq.arguments import (
    MAX_LIST_LIMIT,
    check_bool,
    check_call,
    check_duration,
    check_id,
    check_int,
    check_name,
    check_seconds,
)
from sitq.backend import Backend
from sitq.batching import GroupCommit
from sitq.codec import Codec, accepted, task_name
from sitq.errors import (
    BackendError,
    ScheduleNotFoundError,
    TaskNotFoundError,
    ValidationError,
    WorkerError,
    WorkflowNotFoundError,
)
from sitq.limiting import limit_key
from sitq.models import (
    TASK_NAME_ATTRIBUTE,
    Compaction,
    Limits,
    NewTask,
    Result,
    Task,
    TaskInfo,
    TaskStatus,
    utcnow,
)
from sitq.plugins import plugins_with
from sitq.schedules import CatchUp, Cron, Schedule, StoredSchedule, check_catch_up
from sitq.sealing import Keys, Part, Sealer
from sitq.serializer import Serializer
from sitq.tasks import concurrency_key_of, unique_key_of
from sitq.workflow import Workflow, WorkflowRun, WorkflowStatus

# get_result re-reads at least this often, in case a backend cannot signal every change.
_RECHECK_SECONDS = 1.0


class TaskQueue:
    """Enqueue calls to run on a `Worker`, and wait for their results.

    `backend` is a backend object or a URL (``"sqlite:///tasks.db"``, ``"memory://"``); by default
    ``$SITQ_URL``, else ``sqlite:///sitq.db``. Use it as ``async with``, with `connect()`/`close()`, or
    lazily: the first call connects. A backend object shared with a worker stays open until its last
    user closes it. `limits` bounds what `enqueue` stores (`Limits()` by default), and a `Worker` built
    from this queue uses them too.

    `signing_key` (by default ``$SITQ_SIGNING_KEY``) signs every call stored and verifies every result
    read; `encryption_key` (``$SITQ_ENCRYPTION_KEY``) encrypts them too. Each is a string or bytes of at
    least 16 bytes, or a sequence of them for rotation: the first seals, every one opens. `accept` names
    the serializers whose results this queue decodes (None: any installed). See the Security guide.
    """

    eager: bool = False
    """Run each task inline when it is enqueued, for tests: `enqueue` returns once the task has finished
    and its result is stored. Every attempt runs at once, whatever its eta or retry delay, and hooks fire
    as with a worker. `TaskQueue(eager=...)` sets it for one queue; setting it on the class sets it for
    every queue built without it, before or after (the pytest fixture `sitq_eager` does that)."""

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
        if eager is not None:
            self.eager = check_bool(eager, "eager")
        self.limits = checked_limits(limits)
        self.plugins = plugins_with(plugins)
        self.backend = self.plugins.resolve_backend(backend)
        self.serializer = self.plugins.resolve_serializer(serializer)
        self._codec = Codec(
            self.plugins,
            self.serializer,
            Sealer.configured(signing_key, encryption_key),
            accepted(accept, self.plugins, self.serializer),
        )
        self._enqueuer = GroupCommit(self._write, immediate=True)
        self._holds_connection = False
        self._connecting = asyncio.Lock()

    async def connect(self) -> None:
        """Open the backend for this queue (a no-op if this queue already did)."""
        async with self._connecting:
            if not self._holds_connection:
                await self.backend.connect()
                self._holds_connection = True

    async def close(self) -> None:
        """Let go of the backend; it really closes when its last user lets go."""
        await self._enqueuer.flush()
        async with self._connecting:
            if self._holds_connection:
                self._holds_connection = False
                await self.backend.close()

    async def __aenter__(self) -> TaskQueue:
        await self.connect()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def _ready(self) -> None:
        """Connect on first use, unless someone else (the user, a worker) already holds it open."""
        if not self.backend.is_connected:
            await self.connect()

    async def enqueue(self, function: Callable[..., Any] | Task, /, *args: Any, **kwargs: Any) -> str:
        """Store a call to ``function(*args, **kwargs)`` and return its task id once it is durable.

        ``eta=`` (a timezone-aware datetime) delays the task; it is consumed here, so a function that
        takes its own ``eta`` argument receives it through ``Task(function, kwargs={"eta": ...})``.
        A `Task` may be passed instead of a function, alone.

        A call with a unique key (``Task(..., unique_key=...)`` or ``@sitq.task(unique_key=...)``) that a
        stored task holds stores nothing and returns that task's id (see the unique tasks how-to).
        """
        new_task = self._prepare(_one_task(function, args, kwargs))
        await self._ready()
        task_id = await self._enqueuer.submit(new_task)  # concurrent callers share a write
        await self._stored([new_task], [task_id])
        return task_id

    async def enqueue_many(self, tasks: Iterable[Task]) -> list[str]:
        """Store many tasks in one atomic write: all of them are durable, or none is. Returns their ids
        in order; a task whose unique key is held (by a stored task, or by a task earlier in the list)
        is not stored and gets the holder's id."""
        new_tasks = [self._prepare(task) for task in _many_tasks(tasks)]
        return await self._store(new_tasks)

    async def submit(self, workflow: Workflow) -> WorkflowRun:
        """Store every task of a workflow in one atomic write: all of them are durable, or none is."""
        run, new_tasks = self._prepare_workflow(workflow)
        await self._store(new_tasks)
        return run

    def using(self, connection: object) -> QueueInTransaction:
        """This queue, enqueueing through `connection`: the application's own open connection to the same
        store, of the driver its backend documents (a `sqlite3.Connection` to the same file for SQLite,
        an asyncpg connection for PostgreSQL). The tasks are written inside the transaction the
        connection has open, so they exist if and only if that transaction commits::

            async with pool.acquire() as conn, conn.transaction():
                await conn.execute("INSERT INTO orders ...")
                await queue.using(conn).enqueue(send_receipt, order_id)

        Raises `ConfigurationError` for a backend without `Capability.TRANSACTIONAL_ENQUEUE`."""
        return QueueInTransaction(self, connection)

    async def _store(self, new_tasks: list[NewTask]) -> list[str]:
        """One atomic write for a batch; the id each task goes by."""
        await self._ready()
        task_ids = await self._write(new_tasks)
        await self._stored(new_tasks, task_ids)
        return task_ids

    async def _write(self, new_tasks: Sequence[NewTask]) -> list[str]:
        """`Backend.enqueue`, its answer checked: a backend written before unique keys answers None."""
        return answered(self.backend, new_tasks, await self.backend.enqueue(new_tasks))

    async def _stored(
        self, new_tasks: list[NewTask], task_ids: Sequence[str], *, committed: bool = True
    ) -> None:
        """After the write: one `sitq_task_enqueued` per task stored (not for one whose key another task
        holds), and in eager mode, their runs (of committed tasks: one written in an application's
        transaction is not there to run until it commits)."""
        stored = [
            new_task for new_task, task_id in zip(new_tasks, task_ids, strict=True) if new_task.id == task_id
        ]
        for new_task in stored:
            await self.plugins.task_enqueued(
                task_id=new_task.id, task_name=new_task.name, queue=new_task.options.queue, eta=new_task.eta
            )
        if self.eager and committed:
            await self._run_now([new_task.id for new_task in stored])

    async def _run_now(self, task_ids: Sequence[str]) -> None:
        """Eager mode: run the tasks in order, each attempt after attempt until it has finished.

        A worker of this queue runs them, so results, history and hooks are what a worker would record. A
        task that cannot start (its parents have not all succeeded) stays pending, as it would.
        """
        from sitq.worker import Worker  # worker.py imports this module

        worker = Worker(self, max_concurrency=1)
        try:
            for task_id in task_ids:
                attempts = None
                while (record := await self.backend.get(task_id)) is not None and (
                    record.status is TaskStatus.PENDING and record.attempts != attempts
                ):
                    attempts = record.attempts
                    # process_task raises WorkerError for a task that is not finished after the attempt:
                    # one that will retry, which the loop runs again at once.
                    with contextlib.suppress(WorkerError):
                        await worker.process_task(task_id)
        finally:
            await worker.stop()

    async def get_workflow(self, workflow_id: str) -> WorkflowStatus:
        """Counts of a workflow's tasks by status, and whether it has finished."""
        check_id(workflow_id, "workflow_id")
        await self._ready()
        counts = await self.backend.workflow_counts(workflow_id)
        if not counts:
            raise WorkflowNotFoundError(workflow_id)
        return WorkflowStatus(workflow_id, counts)

    def _prepare_workflow(self, workflow: Workflow) -> tuple[WorkflowRun, list[NewTask]]:
        """The run a workflow will be, and its tasks as they will be stored, naming their parents' ids."""
        if not isinstance(workflow, Workflow):
            raise ValidationError(f"submit takes a sitq.Workflow, not {workflow!r:.200}")
        workflow_id = secrets.token_hex(16)
        new_tasks: list[NewTask] = []
        for task, parents in workflow.steps:
            depends_on = tuple(new_tasks[parent].id for parent in parents)
            new_tasks.append(self._prepare(task, depends_on, workflow_id))
        if keyed := next((new_task for new_task in new_tasks if new_task.unique_key is not None), None):
            raise ValidationError(
                f"a workflow's tasks cannot have unique keys ({keyed.name} has {keyed.unique_key!r}): a "
                "task left out for its key would leave its dependents waiting on a task of another run; "
                "enqueue the keyed task on its own, and pass its id in depends_on"
            )
        run = WorkflowRun(workflow_id, workflow.name, tuple(new_task.id for new_task in new_tasks), workflow)
        return run, new_tasks

    def _prepare(self, task: Task, parents: Sequence[str] = (), workflow_id: str | None = None) -> NewTask:
        """The task as it will be stored, once its call is known to fit its function and its limits.

        The `Task` checked its own fields when it was built; this checks what needs the function."""
        options = task.options()
        depends_on = (*parents, *task.depends_on) if parents or task.depends_on else ()
        check_call(task.function, task.args, task.kwargs, parent_results=bool(depends_on))
        task_id = secrets.token_hex(16)  # 32 random hex digits, at a third of a UUID's cost
        payload = self._codec.encode_call(task_id, task.function, task.args, task.kwargs)
        self.limits.check_call(len(payload))
        now = utcnow()
        name = _task_name(task)
        return NewTask(
            id=task_id,
            name=name,
            payload=payload,
            serializer=self.serializer.name,
            enqueued_at=now,
            eta=now if task.eta is None else task.eta.astimezone(now.tzinfo),
            options=options,
            depends_on=depends_on,
            workflow_id=workflow_id,
            unique_key=unique_key_of(task),
            concurrency_key=limit_key(
                name, concurrency_key_of(task), options.concurrency_limit, options.rate_limit
            ),
        )

    async def schedule(
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
        """Create, or replace whole, the schedule `name`: enqueue ``function(*args, **kwargs)`` at every
        tick of `cron` read in `timezone` (an IANA name), fired by the workers that serve its queue.

        `cron`, `timezone` and `catch_up` are consumed here (a function taking arguments of those names
        gets them through ``Task(function, kwargs=...)``). A `Task` may be passed instead of a function,
        alone, for per-call options; `@sitq.task` options apply. `catch_up` says what happens to ticks
        missed while no worker ran (`CatchUp`). Replacing a schedule starts it afresh from now.
        """
        check_name(name, "name")
        task = _one_task(function, args, kwargs)
        if task.eta is not None or task.depends_on:
            raise ValidationError(
                "a scheduled task runs at its ticks, on its own: leave eta and depends_on out of it"
            )
        if unique_key_of(task) is not None or concurrency_key_of(task) is not None:
            raise ValidationError(
                f"schedule {name!r}: a schedule's ticks cannot carry a unique_key or a concurrency_key "
                "(its own or its function's @sitq.task one); a concurrency_limit or rate_limit without a "
                "key applies, counted by the task's name"
            )
        ticks = Cron(cron, timezone)
        schedule_id = secrets.token_hex(16)
        check_call(task.function, task.args, task.kwargs, parent_results=False)
        payload = self._codec.encode_call(schedule_id, task.function, task.args, task.kwargs, Part.SCHEDULE)
        self.limits.check_call(len(payload))
        stored = StoredSchedule(
            id=schedule_id,
            name=name,
            cron=ticks.expression,
            timezone=ticks.timezone,
            catch_up=check_catch_up(catch_up),
            task_name=_task_name(task),
            payload=payload,
            serializer=self.serializer.name,
            options=task.options(),
            next_run=ticks.after(utcnow()),
        )
        await self._ready()
        await self.backend.put_schedule(stored)
        return stored.public()

    async def unschedule(self, name: str) -> None:
        """Delete the schedule `name` (the tasks it already enqueued stay); `ScheduleNotFoundError` if
        there is none, as for every schedule method given an unknown name."""
        check_name(name, "name")
        await self._ready()
        if not await self.backend.delete_schedule(name):
            raise ScheduleNotFoundError(name)

    async def schedules(self) -> list[Schedule]:
        """Every schedule, by name, with its next run."""
        await self._ready()
        return [stored.public() for stored in await self.backend.list_schedules()]

    async def pause_schedule(self, name: str) -> Schedule:
        """Stop firing the schedule `name` until `resume_schedule`; the ticks in between are not run."""
        return await self._set_paused(name, paused=True)

    async def resume_schedule(self, name: str) -> Schedule:
        """Fire the paused schedule `name` again, from its next tick after now."""
        return await self._set_paused(name, paused=False)

    async def _set_paused(self, name: str, *, paused: bool) -> Schedule:
        check_name(name, "name")
        await self._ready()
        stored = await self._stored_schedule(name)
        next_run = None if paused else Cron(stored.cron, stored.timezone).after(utcnow())
        if not await self.backend.pause_schedule(name, paused=paused, next_run=next_run):
            raise ScheduleNotFoundError(name)
        return (await self._stored_schedule(name)).public()

    async def _stored_schedule(self, name: str) -> StoredSchedule:
        found = [stored for stored in await self.backend.list_schedules() if stored.name == name]
        if not found:
            raise ScheduleNotFoundError(name)
        return found[0]

    async def get_status(self, task_id: str) -> TaskStatus:
        """Where the task is now; `TaskNotFoundError` for an id never enqueued here."""
        check_id(task_id)
        await self._ready()
        record = await self.backend.get(task_id)
        if record is None:
            raise TaskNotFoundError(task_id)
        return record.status

    async def get_result(self, task_id: str, timeout: float | None = None) -> Result | None:
        """Wait until the task has finished and return its `Result`, or None after `timeout` seconds.

        Raises `TaskNotFoundError` at once for an id never enqueued here. A task finished in this
        process is seen at once; one finished by another process as soon as the backend notices.
        """
        check_id(task_id)
        if timeout is not None:
            check_seconds(timeout, "timeout", zero=True, none="to wait as long as it takes")
        await self._ready()
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        with self.backend.subscribe() as changes:
            while True:
                record = await self.backend.get(task_id)
                if record is None:
                    raise TaskNotFoundError(task_id)
                if record.status.is_finished:
                    return self._codec.to_result(record)
                wait = _RECHECK_SECONDS if deadline is None else min(_RECHECK_SECONDS, deadline - loop.time())
                if wait <= 0:
                    return None
                await changes.wait(wait)

    async def cancel(self, task_id: str) -> TaskStatus:
        """Cancel a task and return its status: `cancelled` for a pending one, which will never run;
        `in_progress` for a running one, which its worker cancels within its `poll_interval` (an async
        task cooperatively; a sync one cannot be interrupted and is abandoned); and for a finished task
        its final status, unchanged."""
        check_id(task_id)
        await self._ready()
        before = await self.backend.get(task_id)
        status = await self.backend.cancel(task_id, now=utcnow())
        if before is None or status is None:
            raise TaskNotFoundError(task_id)
        if before.status is TaskStatus.PENDING and status is TaskStatus.CANCELLED:
            await self.plugins.task_cancelled(
                task_id=task_id, task_name=before.name, queue=before.options.queue, worker_id=None
            )
        return status

    async def get_task(self, task_id: str) -> TaskInfo:
        """Everything known about a task: its state, options, attempts, times and attempt history."""
        check_id(task_id)
        await self._ready()
        record = await self.backend.get(task_id)
        if record is None:
            raise TaskNotFoundError(task_id)
        return TaskInfo.from_record(record, await self.backend.history(task_id))

    async def list_tasks(
        self,
        status: TaskStatus | str | Iterable[TaskStatus | str] | None = None,
        *,
        queue: str | None = None,
        limit: int = 100,
        after: str | None = None,
    ) -> list[TaskInfo]:
        """A page of at most `limit` (up to 10,000) tasks in the order they were enqueued, filtered by
        status and queue; pass the last id of a page as `after` to get the next one."""
        statuses = _statuses(status)
        queues = None if queue is None else (check_name(queue, "queue"),)
        check_int(limit, "limit", low=1, high=MAX_LIST_LIMIT)
        if after is not None:
            check_id(after, "after")
        await self._ready()
        records = await self.backend.list_tasks(statuses=statuses, queues=queues, limit=limit, after=after)
        return [TaskInfo.from_record(record, await self.backend.history(record.id)) for record in records]

    async def stats(self) -> dict[str, dict[TaskStatus, int]]:
        """How many tasks each queue holds, by status."""
        await self._ready()
        by_queue: dict[str, dict[TaskStatus, int]] = {}
        for (queue, status), count in sorted((await self.backend.stats()).items()):
            by_queue.setdefault(queue, {})[status] = count
        return by_queue

    async def requeue(self, task_id: str) -> TaskStatus:
        """Run a failed, timed-out or cancelled task again, with fresh attempts; return its status
        (unchanged, and nothing done, for a task that is pending, running or succeeded)."""
        check_id(task_id)
        await self._ready()
        status = await self.backend.requeue(task_id, now=utcnow())
        if status is None:
            raise TaskNotFoundError(task_id)
        return status

    async def purge(self, older_than: timedelta, *, queue: str | None = None) -> int:
        """Delete tasks (of one queue, or all) that finished more than `older_than` ago, with their
        results and history; return how many. Tasks a pending task still depends on are kept."""
        check_duration(older_than, "older_than", "timedelta(days=7)")
        queues = None if queue is None else (check_name(queue, "queue"),)
        await self._ready()
        return await self.backend.purge(finished_before=utcnow() - older_than, queues=queues)

    async def compact(self) -> Compaction:
        """Give the space of purged tasks and of a grown write-ahead log back to the file system, now;
        return the store's size on disk before and after. Every task is kept. Safe beside running
        workers; see the operations guide for what it costs on a large file."""
        await self._ready()
        return await self.backend.compact()

    def deserialize_result(self, result: Result) -> Any:
        """The task's return value; the same as `result.value`, kept for the seed documents' spelling."""
        if not isinstance(result, Result):
            raise ValidationError(
                f"deserialize_result takes the sitq.Result of get_result(), not {result!r:.200}"
            )
        return result.value


def answered(backend: Backend, new_tasks: Sequence[NewTask], task_ids: object) -> list[str]:
    """A backend's answer to an enqueue, once known to be one id per task (see `Backend.enqueue`)."""
    if (
        not isinstance(task_ids, list)
        or len(task_ids) != len(new_tasks)
        or not all(isinstance(task_id, str) for task_id in task_ids)
    ):
        raise BackendError(
            f"{type(backend).__name__}.enqueue answered {task_ids!r:.200} for {len(new_tasks)} task(s); "
            "the protocol asks for a list of the id each task goes by (sitq.backend.Backend.enqueue): "
            "upgrade the backend's package"
        )
    return task_ids


def checked_limits(limits: Limits | None) -> Limits:
    """`limits` as given, once known to be a `Limits`; `Limits()` for None."""
    if limits is None:
        return _DEFAULT_LIMITS
    if not isinstance(limits, Limits):
        raise ValidationError(
            f"limits must be a sitq.Limits, such as Limits(call_bytes=50_000_000), not {limits!r:.200}"
        )
    return limits


_DEFAULT_LIMITS = Limits()


def _task_name(task: Task) -> str:
    """The name a task is stored under: its own, else its function's `@sitq.task(name=...)`, else the
    function's."""
    return task.name or getattr(task.function, TASK_NAME_ATTRIBUTE, None) or _name_of(task.function)


def _name_of(function: Callable[..., Any]) -> str:
    """A task's name from its function, which must follow the rule for names like one given."""
    name = task_name(function)
    try:
        return check_name(name, "name")
    except ValidationError as exc:
        raise ValidationError(
            f"the task's function has no usable name ({exc}): give one with Task(..., name=...)"
        ) from None


def _statuses(status: TaskStatus | str | Iterable[TaskStatus | str] | None) -> tuple[TaskStatus, ...]:
    if status is None:
        return tuple(TaskStatus)
    try:
        wanted = (status,) if isinstance(status, str) else tuple(status)
        return tuple(TaskStatus(each) for each in wanted)
    except (TypeError, ValueError):
        raise ValidationError(
            f"status must be one of {', '.join(TaskStatus)}, or a list of them, not {status!r:.200}"
        ) from None


class QueueInTransaction:
    """A `TaskQueue` enqueueing through an application's connection, in its transaction (`TaskQueue.using`).

    The tasks are not committed here: they exist once the application commits, and vanish if it rolls
    back. In eager mode they are not run inline, since until the commit there is nothing to run."""

    def __init__(self, queue: TaskQueue, connection: object) -> None:
        self.queue = queue
        self.connection = connection

    async def enqueue(self, function: Callable[..., Any] | Task, /, *args: Any, **kwargs: Any) -> str:
        """`TaskQueue.enqueue`, in the connection's transaction."""
        [task_id] = await self._store([self.queue._prepare(_one_task(function, args, kwargs))])
        return task_id

    async def enqueue_many(self, tasks: Iterable[Task]) -> list[str]:
        """`TaskQueue.enqueue_many`, in the connection's transaction."""
        return await self._store([self.queue._prepare(task) for task in _many_tasks(tasks)])

    async def submit(self, workflow: Workflow) -> WorkflowRun:
        """`TaskQueue.submit`, in the connection's transaction."""
        run, new_tasks = self.queue._prepare_workflow(workflow)
        await self._store(new_tasks)
        return run

    async def _store(self, new_tasks: list[NewTask]) -> list[str]:
        backend = self.queue.backend
        await self.queue._ready()
        task_ids = answered(
            backend, new_tasks, await backend.enqueue_in_transaction(self.connection, new_tasks)
        )
        await self.queue._stored(new_tasks, task_ids, committed=False)
        return task_ids


def _one_task(function: Callable[..., Any] | Task, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Task:
    """The `Task` of an `enqueue` call: the one given alone, or the call, with ``eta=`` taken out."""
    if isinstance(function, Task):
        if args or kwargs:
            raise ValidationError("pass a Task alone: its args, kwargs and eta go inside the Task")
        return function
    eta = kwargs.pop("eta", None)
    return Task(function, args, kwargs, eta)


def _many_tasks(tasks: Iterable[Task]) -> list[Task]:
    """The tasks of an `enqueue_many` call, refused unless each is a `Task`."""
    if isinstance(tasks, Task) or not isinstance(tasks, Iterable):
        raise ValidationError(f"enqueue_many takes a list of sitq.Task, not {tasks!r:.200}")
    tasks = list(tasks)
    if not all(isinstance(task, Task) for task in tasks):
        raise ValidationError(
            "enqueue_many takes a list of sitq.Task, such as [Task(f, [1]), Task(f, [2])]; "
            f"got {tasks!r:.200}"
        )
    return tasks
