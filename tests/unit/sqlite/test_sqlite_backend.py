"""SQLiteBackend against the Backend protocol, on real files: it must behave exactly as the memory backend."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import aiosqlite
import pytest

from sitq import Task, TaskQueue
from sitq.backend import Backend
from sitq.backends.memory import MemoryBackend
from sitq.errors import BackendError, TaskNotFoundError
from sitq.models import NewTask, RetryPolicy, TaskOptions, TaskOutcome, TaskStatus
from sitq_sqlite import SQLiteBackend

T0 = datetime(2030, 1, 1, tzinfo=UTC)
LEASE = timedelta(seconds=30)
QUEUES = ("default",)


def new_task(task_id: str, eta: datetime = T0, **options: Any) -> NewTask:
    return NewTask(
        id=task_id,
        name="tests.job",
        payload=f"call {task_id}".encode(),
        serializer="pickle",
        enqueued_at=T0 - timedelta(minutes=1),
        eta=eta,
        options=TaskOptions(**options),
    )


def flow(task_id: str, *parents: str, eta: datetime | None = None, **options: Any) -> NewTask:
    """A task of workflow "wf" in the queue "flow", waiting for `parents`."""
    task = new_task(task_id, T0 + timedelta(hours=10) if eta is None else eta, queue="flow", **options)
    return dataclasses.replace(task, depends_on=parents, workflow_id="wf")


def outcome(
    task_id: str,
    worker_id: str,
    status: TaskStatus = TaskStatus.SUCCESS,
    *,
    at: datetime = T0 + timedelta(minutes=5),
    error: str = "boom",
    retry_at: datetime | None = None,
) -> TaskOutcome:
    succeeded = status is TaskStatus.SUCCESS
    return TaskOutcome(
        task_id=task_id,
        worker_id=worker_id,
        status=status,
        finished_at=at,
        result=b"result" if succeeded else None,
        error=None if succeeded else error,
        traceback=None if succeeded else "Traceback ...",
        retry_at=retry_at,
    )


async def scenario(backend: Backend) -> list[object]:
    """Every protocol method through its edge cases; the transcript must not depend on the backend."""
    seen: list[object] = []
    s = timedelta(seconds=1)
    q = QUEUES

    async def claim(worker_id: str, now: datetime, limit: int = 10, queues: Sequence[str] = q) -> None:
        seen.append(
            await backend.claim(worker_id=worker_id, now=now, lease=LEASE, limit=limit, queues=queues)
        )

    async def claim_task(task_id: str, worker_id: str, now: datetime) -> None:
        seen.append(await backend.claim_task(task_id, worker_id=worker_id, now=now, lease=LEASE))

    await backend.enqueue([new_task("a", T0 + 2 * s), new_task("b"), new_task("c", T0 + s)])
    await backend.enqueue([new_task("d", T0 + s), new_task("e", T0 + timedelta(hours=1))])
    seen.append(await backend.next_due(QUEUES))
    # Earliest eta first, ties in enqueue order, never a task that is not due.
    await claim("w1", T0 + 1.5 * s, limit=2)
    await claim("w2", T0 + 1.5 * s)
    await claim("w2", T0 + 1.5 * s)
    # Only the holder renews; only the holder's outcome counts, and only its first one in a batch.
    seen.append(await backend.renew(["b", "c"], worker_id="w1", now=T0 + 2 * s, lease=LEASE))
    seen.append(await backend.renew(["d"], worker_id="w1", now=T0 + 2 * s, lease=timedelta(hours=1)))
    await backend.complete(
        [
            outcome("c", "w2"),
            outcome("c", "w1"),
            outcome("c", "w1", TaskStatus.FAILED),
            outcome("d", "w2", TaskStatus.FAILED),
        ]
    )
    await backend.complete([outcome("c", "w1", TaskStatus.FAILED)])
    await claim("w3", T0 + 31.6 * s)
    # b's renewed lease runs out at T0+32s: still held at that instant; after it b's worker is lost and,
    # with its one attempt used, b fails.
    await claim("w3", T0 + 32 * s)
    await claim("w4", T0 + 33 * s)
    await backend.complete([outcome("b", "w1")])
    # claim_task ignores eta, but not a live lease, a finished task or an unknown id.
    await claim_task("e", "w5", T0 + 33 * s)
    await claim_task("e", "w6", T0 + 33 * s)
    await claim_task("c", "w6", T0 + 33 * s)
    await claim_task("nope", "w6", T0 + 33 * s)
    # A lease is held up to and including its expiry instant.
    await claim_task("a", "w6", T0 + 61.6 * s)
    await claim_task("a", "w6", T0 + 61.600001 * s)
    seen.append(await backend.next_due(QUEUES))

    # Priorities and queues: higher priority first, only the queues asked for.
    t1 = T0 + timedelta(hours=2)
    await backend.enqueue(
        [
            new_task("low", t1, priority=-1),
            new_task("plain", t1),
            new_task("high", t1 + s, priority=5),
            new_task("other-high", t1, queue="other", priority=9),
            new_task("other", t1 - s, queue="other"),
            new_task("high-later", t1 + timedelta(hours=1), priority=7),
        ]
    )
    await claim("w7", t1 + s, limit=0)
    await claim("w7", t1 + s, queues=())
    await claim("w7", t1 + s, queues=("nowhere",))
    await claim("w7", t1 + s, limit=2, queues=("other", "default", "other"))
    await claim("w7", t1 + s, limit=3, queues=("default", "other"))
    await claim("w7", t1 + s)
    # Retries: pending again at retry_at with the attempt counted and the error kept; a timeout retried.
    flaky = TaskOptions(
        max_attempts=3, retry=RetryPolicy(backoff=2, factor=3, retry_on=[OSError]), timeout=5, description="d"
    )
    t2 = T0 + timedelta(hours=4)
    await backend.enqueue([new_task("flaky", t2, **vars_of(flaky)), new_task("slow", t2, max_attempts=2)])
    await claim("w8", t2)
    await backend.complete(
        [
            outcome(
                "flaky", "w8", TaskStatus.PENDING, at=t2 + s, error="OSError: flaky", retry_at=t2 + 10 * s
            ),
            outcome("slow", "w8", TaskStatus.PENDING, at=t2 + 5 * s, error="TimeoutError: took 5s"),
        ]
    )
    seen.extend([await backend.get("flaky"), await backend.get("slow"), await backend.next_due(QUEUES)])
    await claim("w9", t2 + 9 * s)
    await claim("w9", t2 + 10 * s)
    await backend.complete([outcome("flaky", "w9", TaskStatus.TIMEOUT, at=t2 + 16 * s, error="TimeoutError")])
    await backend.complete([outcome("slow", "w9", TaskStatus.SUCCESS, at=t2 + 11 * s)])
    # Cancel: a pending task at once, a running one by its worker, finished and unknown ones not at all.
    t3 = T0 + timedelta(hours=6)
    await backend.enqueue(
        [new_task(name, t3) for name in ("waits", "runs", "runs-on", "given-back")]
        + [new_task("later", t3 + timedelta(hours=1))]
    )
    await claim("w10", t3, limit=3)
    for task_id in ("later", "runs", "runs-on", "flaky", "nope", "later"):
        seen.append(await backend.cancel(task_id, now=t3 + s))
    seen.append(
        await backend.renew(
            ["waits", "runs", "runs-on", "given-back"], worker_id="w10", now=t3 + s, lease=LEASE
        )
    )
    await backend.complete(
        [outcome("runs", "w10", TaskStatus.CANCELLED, at=t3 + 2 * s, error="CancelledError")]
    )
    # Release: only the holder's, pending again at once, the attempt uncounted, a cancel request dropped.
    await backend.release(["runs-on", "given-back", "nope"], worker_id="someone", now=t3 + 3 * s)
    await backend.release(["runs-on", "given-back", "runs", "nope"], worker_id="w10", now=t3 + 3 * s)
    seen.extend([await backend.get("runs-on"), await backend.get("given-back")])
    await claim("w11", t3 + 3 * s)
    # Lost workers: with attempts left the task is pending again (and claimed at once), else it fails.
    t4 = t3 + 3 * s + LEASE + s
    await backend.enqueue([new_task("spare", t3, max_attempts=2)])
    await claim("w12", t3 + 3 * s)
    seen.append(await backend.cancel("spare", now=t3 + 4 * s))
    seen.append(await backend.next_due(QUEUES))
    await claim_task("spare", "w13", t4)
    await claim("w14", t4, queues=("nowhere",))
    seen.append(await backend.renew(["spare"], worker_id="w13", now=t4, lease=LEASE))
    await backend.complete([outcome("spare", "w13", TaskStatus.FAILED, at=t4 + s)])
    seen.append(await backend.next_due(QUEUES))
    # A lost task with attempts left is pending again, and the same claim can take it at once.
    await backend.enqueue([new_task("second-chance", t4, max_attempts=2, priority=1), new_task("after", t4)])
    await claim("w15", t4, limit=1)
    await claim("w16", t4 + LEASE + s)
    await backend.complete([outcome("second-chance", "w16")])

    await workflows(backend, seen, claim, claim_task)
    await administration(backend, seen, claim)

    ids = [
        "a", "b", "c", "d", "e", "low", "plain", "high", "other-high", "other", "high-later", "flaky", "slow",
        "waits", "runs", "runs-on", "given-back", "later", "spare", "second-chance", "after", "nope",
        "root", "side", "fa", "fb", "fc", "fd", "fe", "okp", "ok", "waits-long", "p1", "p2", "p3", "p4",
        "p5", "pp", "pc", "f1", "f2", "f12", "tc", "dies", "lets-go", "after-dies", "after-lets-go",
        "flaky-flow", "after-flaky", "lost-last", "after-lost",
    ]  # fmt: skip
    seen.extend([await backend.get(task_id) for task_id in ids])
    seen.extend([await backend.history(task_id) for task_id in ids])
    return seen


async def workflows(
    backend: Backend,
    seen: list[object],
    claim: Callable[..., Awaitable[None]],
    claim_task: Callable[[str, str, datetime], Awaitable[None]],
) -> None:
    """Dependencies, the cancelling of dependents, next_due per queue, and running tasks asked to cancel."""
    s = timedelta(seconds=1)
    t5 = T0 + timedelta(hours=10)
    f = ("flow",)

    async def enqueue(batch: list[NewTask]) -> None:
        try:
            await backend.enqueue(batch)
        except TaskNotFoundError as exc:
            seen.append(("TaskNotFoundError", exc.task_id, str(exc)))
        except BackendError:
            seen.append("BackendError")  # worded differently by each backend
        else:
            seen.append("stored")

    # A parent neither stored nor earlier in the batch refuses the whole batch; a duplicate id comes first.
    await enqueue([flow("root"), flow("orphan", "nope")])
    await enqueue([flow("early", "root"), flow("root")])
    await enqueue([flow("self", "self")])
    await enqueue([flow("root"), flow("a", "nope")])
    seen.extend([await backend.get("root"), await backend.workflow_counts("wf"), await backend.next_due(f)])
    # Depth first from root, in enqueue order, fd is reached through fc before fb (breadth first would
    # name fb): its error must name fc.
    await enqueue(
        [
            flow("root"),
            flow("side", eta=t5 + timedelta(hours=1)),
            flow("fa", "root"),
            flow("fb", "root"),
            flow("fc", "fa"),
            flow("fd", "fb", "fc"),
            flow("fe", "side", "root"),
            flow("okp"),
            flow("ok", "okp", "okp"),
            flow("waits-long", "root", eta=t5 - timedelta(hours=1)),
        ]
    )
    # A waiting task is not due, nor claimable even by id; next_due reads only the queues asked for.
    for queues in (f, ("default", "flow"), (), ("nowhere",), ("other",)):
        seen.append(await backend.next_due(queues))
    await claim_task("fa", "w20", t5)
    await claim("w20", t5, queues=f)
    seen.extend([await backend.next_due(f), await backend.workflow_counts("wf")])
    # A parent named twice is met by one success.
    await backend.complete([outcome("okp", "w20", at=t5 + s)])
    await claim("w21", t5 + s, queues=f)
    await backend.complete([outcome("root", "w20", TaskStatus.FAILED, at=t5 + 2 * s)])
    seen.extend([await backend.next_due(f), await backend.workflow_counts("wf")])
    # Parents that already ended without success: stored cancelled, task by task, p3 through p1 (reached
    # first) although p2 comes first in its depends_on; p4 waits on a running task too.
    await enqueue(
        [
            flow("p1", "fa"),
            flow("p2", "fb"),
            flow("p3", "p2", "p1"),
            flow("p4", "ok", "p3"),
            flow("p5", "okp"),
        ]
    )
    # Cancelling a pending parent, a timeout, and two parents ending in one batch (the first names f12).
    await enqueue(
        [
            flow("pp", eta=t5 + timedelta(hours=1)),
            flow("pc", "pp"),
            flow("f1"),
            flow("f2"),
            flow("f12", "f2", "f1"),
            flow("tc", "f2"),
        ]
    )
    seen.append(await backend.cancel("pp", now=t5 + 3 * s))
    seen.append(await backend.cancel("pc", now=t5 + 3 * s))
    await claim("w22", t5 + 3 * s, queues=f)
    await backend.complete(
        [
            outcome("f1", "w22", TaskStatus.FAILED, at=t5 + 4 * s),
            outcome("f2", "w22", TaskStatus.TIMEOUT, at=t5 + 5 * s, error="TimeoutError"),
            outcome("p5", "w22", at=t5 + 6 * s),
            outcome("ok", "w21", at=t5 + 6 * s),
        ]
    )
    # Asked to cancel while running: released (twice in one call) or lost, it ends cancelled, and so do
    # its dependents; lost with no attempts left, it fails, and they are cancelled; lost with attempts
    # left, it keeps no traceback.
    t6 = t5 + timedelta(minutes=10)
    await enqueue(
        [
            flow("dies", max_attempts=3),
            flow("lets-go", max_attempts=3),
            flow("after-dies", "dies"),
            flow("after-lets-go", "lets-go"),
            flow("flaky-flow", max_attempts=3),
            flow("after-flaky", "flaky-flow"),
            flow("lost-last"),
            flow("after-lost", "lost-last"),
        ]
    )
    await claim("w23", t6, queues=f)
    await backend.complete(
        [outcome("flaky-flow", "w23", TaskStatus.PENDING, at=t6 + s, error="OSError", retry_at=t6 + s)]
    )
    await claim("w24", t6 + s, queues=f)
    for task_id in ("dies", "lets-go"):
        seen.append(await backend.cancel(task_id, now=t6 + 2 * s))
    seen.append(await backend.renew(["dies", "lets-go"], worker_id="w23", now=t6 + 2 * s, lease=LEASE))
    await backend.release(["lets-go", "dies"], worker_id="w24", now=t6 + 3 * s)
    await backend.release(["lets-go", "nope", "lets-go"], worker_id="w23", now=t6 + 3 * s)
    seen.extend([await backend.get("lets-go"), await backend.get("after-lets-go"), await backend.next_due(f)])
    await claim("w25", t6 + 2 * s + LEASE + s, queues=("nowhere",))
    seen.extend([await backend.get("flaky-flow"), await backend.next_due(f)])
    await claim("w26", t6 + 2 * s + LEASE + s, queues=f)
    seen.append(await backend.workflow_counts("wf"))


async def administration(backend: Backend, seen: list[object], claim: Callable[..., Awaitable[None]]) -> None:
    """Listing, counting, requeueing (with the parents of requeued tasks) and purging."""
    s = timedelta(seconds=1)
    t7 = T0 + timedelta(hours=12)
    f = ("flow",)
    everything = tuple(TaskStatus)

    async def list_tasks(
        statuses: Sequence[TaskStatus] = everything,
        queues: Sequence[str] | None = None,
        limit: int = 1000,
        after: str | None = None,
    ) -> list[str] | None:
        try:
            records = await backend.list_tasks(statuses=statuses, queues=queues, limit=limit, after=after)
        except TaskNotFoundError as exc:
            seen.append(("TaskNotFoundError", exc.task_id, str(exc)))
            return None
        seen.append(records)
        return [record.id for record in records]

    async def pages(size: int, **filters: Any) -> None:
        after = None
        while page := await list_tasks(limit=size, after=after, **filters):
            after = page[-1]

    seen.append(await backend.stats())
    await pages(7)
    await pages(2, statuses=(TaskStatus.FAILED, TaskStatus.TIMEOUT, TaskStatus.CANCELLED), queues=f)
    await list_tasks(queues=("other", "nowhere", "other"))
    await list_tasks(statuses=(TaskStatus.SUCCESS,), after="after")
    for limit in (0, -1):
        await list_tasks(limit=limit)
    await list_tasks(statuses=())
    await list_tasks(queues=())
    await list_tasks(after="nope")
    await list_tasks(statuses=(), after="nope")
    # Only failed, timed-out and cancelled tasks are requeued; what a requeued task waits for is counted
    # from its parents as they are now: p4 was cancelled before ok succeeded, and waits only for p3.
    for task_id in ("c", "flaky", "runs", "slow", "second-chance", "nope", "c", "p4", "p3", "pc", "fd"):
        seen.append(await backend.requeue(task_id, now=t7))
    seen.extend([await backend.get("c"), await backend.get("p4"), await backend.next_due(f)])
    seen.extend([await backend.next_due(QUEUES), await backend.stats()])
    await claim("w30", t7, queues=("default", "flow"))
    # A requeued parent that succeeds frees its requeued dependents; one that fails cancels them again.
    for task_id in ("root", "fa", "dies", "after-dies"):
        seen.append(await backend.requeue(task_id, now=t7 + s))
    await claim("w31", t7 + s, queues=f)
    await backend.complete([outcome("root", "w31", at=t7 + 2 * s), outcome("dies", "w31", TaskStatus.FAILED)])
    await claim("w32", t7 + 2 * s, queues=f)
    await backend.complete([outcome("fa", "w32", at=t7 + 3 * s)])
    seen.extend([await backend.next_due(f), await backend.workflow_counts("wf"), await backend.stats()])
    await claim("w33", t7 + 3 * s, queues=f)
    # A task cancelled by one parent while another went on to succeed waits, requeued, for the first only.
    await backend.enqueue([flow("x", eta=t7), flow("y", eta=t7), flow("z", "x", "y", eta=t7)])
    await claim("w34", t7 + 4 * s, queues=f)
    await backend.complete([outcome("x", "w34", TaskStatus.FAILED, at=t7 + 5 * s)])
    await backend.complete([outcome("y", "w34", at=t7 + 6 * s)])
    for task_id in ("z", "x"):
        seen.append(await backend.requeue(task_id, now=t7 + 7 * s))
    await claim("w35", t7 + 7 * s, queues=f)
    await backend.complete([outcome("x", "w35", at=t7 + 8 * s)])
    await claim("w36", t7 + 8 * s, queues=f)
    seen.extend([await backend.get("z"), await backend.history("x"), await backend.history("z")])
    # Purging: before the cutoff only, of the queues asked for, never a parent a pending task waits for.
    t5 = T0 + timedelta(hours=10)
    seen.append(await backend.purge(finished_before=T0, queues=None))
    seen.append(await backend.purge(finished_before=t7, queues=("other", "nowhere")))
    seen.append(await backend.purge(finished_before=t7, queues=()))
    seen.append(await backend.purge(finished_before=t5 + 5 * s, queues=("default", "flow")))
    seen.append(await backend.stats())
    await pages(5)
    await list_tasks(after="a")
    seen.append(await backend.purge(finished_before=t7 + timedelta(days=1), queues=None))
    await pages(4)
    seen.append(await backend.stats())


def vars_of(options: TaskOptions) -> dict[str, Any]:
    return {field.name: getattr(options, field.name) for field in dataclasses.fields(options)}


async def test_behaves_exactly_like_the_memory_backend(backend: SQLiteBackend) -> None:
    memory = MemoryBackend()
    await memory.connect()
    expected = await scenario(memory)
    assert await scenario(backend) == expected


async def test_purge_leaves_no_history_or_dependency_rows_behind(backend: SQLiteBackend) -> None:
    child = dataclasses.replace(new_task("child"), depends_on=("parent",))
    await backend.enqueue([new_task("parent"), child, new_task("kept")])
    await backend.claim(worker_id="w", now=T0, lease=LEASE, limit=3, queues=QUEUES)
    await backend.complete([outcome("parent", "w", TaskStatus.FAILED), outcome("kept", "w")])
    assert await backend.purge(finished_before=T0 + timedelta(minutes=5), queues=None) == 0
    assert await backend.requeue("parent", now=T0) is TaskStatus.PENDING
    assert await backend.purge(finished_before=T0 + timedelta(minutes=6), queues=None) == 2
    assert [
        record.id
        for record in await backend.list_tasks(statuses=tuple(TaskStatus), queues=None, limit=10, after=None)
    ] == ["parent"]
    conn = sqlite3.connect(backend.path)
    try:
        orphans = conn.execute(
            "SELECT (SELECT count(*) FROM attempts WHERE task_seq NOT IN (SELECT seq FROM tasks)),"
            " (SELECT count(*) FROM dependencies WHERE parent_seq NOT IN (SELECT seq FROM tasks)"
            " OR task_seq NOT IN (SELECT seq FROM tasks)),"
            " (SELECT count(*) FROM payloads WHERE task_seq NOT IN (SELECT seq FROM tasks)),"
            " (SELECT count(*) FROM results WHERE task_seq NOT IN (SELECT seq FROM tasks)),"
            " (SELECT count(*) FROM results)"
        ).fetchall()
    finally:
        conn.close()
    assert orphans == [(0, 0, 0, 0, 0)]  # the requeued parent's traceback went with its requeue


async def test_claims_earliest_eta_first_within_limit(backend: SQLiteBackend) -> None:
    s = timedelta(seconds=1)
    await backend.enqueue([new_task("late", T0 + 3 * s), new_task("first"), new_task("tie1", T0 + s)])
    await backend.enqueue([new_task("tie2", T0 + s), new_task("future", T0 + timedelta(days=1))])

    claimed = await backend.claim(worker_id="w", now=T0 + 5 * s, lease=LEASE, limit=3, queues=QUEUES)
    rest = await backend.claim(worker_id="w", now=T0 + 5 * s, lease=LEASE, limit=3, queues=QUEUES)

    assert [t.id for t in claimed] == ["first", "tie1", "tie2"]
    assert [t.id for t in rest] == ["late"]
    assert await backend.claim(worker_id="w", now=T0 + 5 * s, lease=LEASE, limit=3, queues=QUEUES) == []
    assert (
        await backend.claim(worker_id="w", now=T0 + timedelta(days=2), lease=LEASE, limit=0, queues=QUEUES)
        == []
    )


async def test_reserved_task_carries_the_lease(backend: SQLiteBackend) -> None:
    await backend.enqueue([new_task("a")])
    now = T0 + timedelta(seconds=1)

    (task,) = await backend.claim(worker_id="w1", now=now, lease=LEASE, limit=1, queues=QUEUES)

    assert task == task.__class__(
        id="a",
        name="tests.job",
        payload=b"call a",
        serializer="pickle",
        attempt=1,
        worker_id="w1",
        enqueued_at=T0 - timedelta(minutes=1),
        eta=T0,
        started_at=now,
        lease_expires_at=now + LEASE,
    )


async def test_expired_lease_is_reclaimed_and_the_stale_outcome_ignored(backend: SQLiteBackend) -> None:
    await backend.enqueue([new_task("a", max_attempts=2)])
    await backend.claim(worker_id="dead", now=T0, lease=LEASE, limit=1, queues=QUEUES)

    assert await backend.claim(worker_id="w2", now=T0 + LEASE, lease=LEASE, limit=1, queues=QUEUES) == []
    (again,) = await backend.claim(
        worker_id="w2", now=T0 + LEASE + timedelta(microseconds=1), lease=LEASE, limit=1, queues=QUEUES
    )
    await backend.complete([outcome("a", "dead", TaskStatus.FAILED)])
    record = await backend.get("a")

    assert (again.attempt, again.worker_id) == (2, "w2")
    assert record is not None
    assert (record.status, record.attempts, record.worker_id, record.error) == (
        TaskStatus.IN_PROGRESS,
        2,
        "w2",
        "WorkerLostError: worker dead stopped renewing its lease",  # the last attempt's error, as on a retry
    )

    await backend.complete([outcome("a", "w2")])
    record = await backend.get("a")
    assert record is not None
    assert (record.status, record.result, record.finished_at) == (
        TaskStatus.SUCCESS,
        b"result",
        T0 + timedelta(minutes=5),
    )


async def test_renew_keeps_the_task_from_being_reclaimed(backend: SQLiteBackend) -> None:
    await backend.enqueue([new_task("a", max_attempts=2), new_task("b", max_attempts=2)])
    await backend.claim(worker_id="w1", now=T0, lease=LEASE, limit=2, queues=QUEUES)

    await backend.renew(["a", "b", "unknown"], worker_id="w1", now=T0 + LEASE, lease=LEASE)
    await backend.renew(["a"], worker_id="intruder", now=T0 + LEASE, lease=timedelta(0))

    assert await backend.claim(worker_id="w2", now=T0 + 2 * LEASE, lease=LEASE, limit=5, queues=QUEUES) == []
    later = await backend.claim(worker_id="w2", now=T0 + 3 * LEASE, lease=LEASE, limit=5, queues=QUEUES)
    assert sorted(t.id for t in later) == ["a", "b"]


async def test_round_trip_returns_aware_utc_times(backend: SQLiteBackend) -> None:
    plus_two = timezone(timedelta(hours=2))
    eta = datetime(2031, 6, 1, 14, 30, 15, 123457, tzinfo=plus_two)
    task = NewTask("a", "tests.job", b"\x00\xff", "json", datetime(2031, 6, 1, 12, 0, 0, 1, tzinfo=UTC), eta)
    await backend.enqueue([task])

    record = await backend.get("a")
    next_due = await backend.next_due(QUEUES)

    assert record is not None
    assert (record.status, record.serializer, record.attempts, record.started_at) == (
        TaskStatus.PENDING,
        "json",
        0,
        None,
    )
    assert record.eta == eta
    assert record.eta.tzinfo is UTC
    assert record.eta.microsecond == 123457
    assert record.enqueued_at == task.enqueued_at
    assert next_due == eta
    assert next_due is not None
    assert next_due.tzinfo is UTC
    assert await backend.get("missing") is None


async def test_next_due_considers_pending_tasks_and_running_leases(backend: SQLiteBackend) -> None:
    assert await backend.next_due(QUEUES) is None
    await backend.enqueue([new_task("soon"), new_task("later", T0 + timedelta(hours=1))])
    await backend.claim(worker_id="w", now=T0, lease=LEASE, limit=1, queues=QUEUES)

    assert await backend.next_due(QUEUES) == min(T0 + timedelta(hours=1), T0 + LEASE)


async def test_a_batch_is_stored_whole_or_not_at_all(backend: SQLiteBackend) -> None:
    await backend.enqueue([new_task("a")])

    with pytest.raises(BackendError, match=r"storing 3 new task\(s\).*UNIQUE") as raised:
        await backend.enqueue([new_task("b"), new_task("c"), new_task("a")])

    assert isinstance(raised.value.__cause__, sqlite3.IntegrityError)
    assert await backend.get("b") is None
    await backend.enqueue([])
    await backend.enqueue([new_task("b")])
    assert await backend.get("b") is not None


def _is_driver_thread(thread: threading.Thread) -> bool:
    """aiosqlite 0.22 runs a connection in a thread named after its target; before, the connection was
    itself the thread."""
    return "_connection_worker_thread" in thread.name or isinstance(thread, aiosqlite.Connection)


async def driver_threads(before: set[threading.Thread]) -> list[threading.Thread]:
    """aiosqlite's connection threads started since `before` and still running, after giving a stopping
    one a moment to finish."""
    for _ in range(100):
        threads = [t for t in threading.enumerate() if _is_driver_thread(t) and t not in before]
        if not threads:
            break
        await asyncio.sleep(0.01)
    return threads


async def test_connect_and_close_are_counted(tmp_path: Path) -> None:
    threads = set(threading.enumerate())
    backend = SQLiteBackend(tmp_path / "tasks.db")
    assert isinstance(backend, Backend)
    connected = [backend.is_connected]

    await backend.connect()
    await backend.connect()
    await backend.enqueue([new_task("a")])
    await backend.close()
    connected.append(backend.is_connected)
    assert await backend.get("a") is not None

    await backend.close()
    await backend.close()
    connected.append(backend.is_connected)
    assert connected == [False, True, False]
    assert await driver_threads(threads) == []  # aiosqlite's thread is not a daemon: it must be stopped

    await backend.connect()
    assert await backend.get("a") is not None
    await backend.close()


async def test_using_an_unconnected_backend_says_so(tmp_path: Path) -> None:
    backend = SQLiteBackend(tmp_path / "tasks.db")

    with pytest.raises(BackendError, match="not connected; call connect"):
        await backend.get("a")


async def test_a_failed_connect_leaves_nothing_open(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "theirs.db")
    conn.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY)")
    conn.close()
    threads = set(threading.enumerate())
    backend = SQLiteBackend(tmp_path / "theirs.db")

    with pytest.raises(BackendError, match="another application"):
        await backend.connect()

    assert not backend.is_connected
    assert await driver_threads(threads) == []


FORGETFUL_PROGRAM = """
import asyncio, sys
from sitq import TaskQueue

queue = TaskQueue(f"sqlite:///{sys.argv[1]}")  # module level, as in a web app, and never closed

async def main():
    print(await queue.enqueue(divmod, 7, 2))

asyncio.run(main())
"""


async def test_a_queue_never_closed_lets_the_process_exit_and_keeps_its_task(tmp_path: Path) -> None:
    path = tmp_path / "tasks.db"
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", FORGETFUL_PROGRAM, str(path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    backend = SQLiteBackend(path)
    await backend.connect()
    record = await backend.get(done.stdout.strip())
    await backend.close()
    assert record is not None and record.status is TaskStatus.PENDING


async def test_a_cancelled_enqueue_is_stored_whole_once_it_reached_sqlite_and_not_at_all_before(
    tmp_path: Path,
) -> None:
    """A lone `enqueue` writes in its caller's task: cancelled while it waits for the connection, it has
    stored nothing; cancelled once its transaction is on aiosqlite's thread, its task is stored whole."""
    path = tmp_path / "tasks.db"
    async with TaskQueue(SQLiteBackend(path)) as queue:
        async with queue.backend._lock():  # another coroutine's statement holds the connection
            waiting = asyncio.create_task(queue.enqueue(Task(len, (b"x",), name="waiting")))
            await asyncio.sleep(0)
            waiting.cancel()
        on_its_way = asyncio.create_task(queue.enqueue(Task(len, (b"x",), name="on-its-way")))
        await asyncio.sleep(0)
        on_its_way.cancel()
        for cancelled in (waiting, on_its_way):
            with pytest.raises(asyncio.CancelledError):
                await cancelled
        await queue.enqueue(Task(len, (b"x",), name="after"))
        assert [task.name for task in await queue.list_tasks()] == ["on-its-way", "after"]
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT count(*) FROM tasks JOIN payloads ON task_seq = seq").fetchall() == [(2,)]
