"""Transactional enqueue: through the application's own asyncpg connection, a task exists if and only if
the application's transaction commits."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import asyncpg
import pytest
from postgres_server import server_url
from sample_tasks import add

from sitq import TaskQueue, TaskStatus, Worker
from sitq.errors import ConfigurationError, TaskNotFoundError
from sitq_postgres import PostgresBackend


@pytest.fixture
async def app(backend: PostgresBackend) -> AsyncIterator[asyncpg.Connection]:
    """The application's own connection, with a table of its own beside sitq's schema."""
    connection = await asyncpg.connect(server_url())
    await connection.execute(f'CREATE TABLE "{backend.schema}".orders (id int PRIMARY KEY)')
    yield connection
    await connection.close()


@pytest.fixture
async def queue(backend: PostgresBackend) -> AsyncIterator[TaskQueue]:
    async with TaskQueue(backend) as queue:
        yield queue


async def _orders(app: asyncpg.Connection, schema: str) -> list[int]:
    return [row["id"] for row in await app.fetch(f'SELECT id FROM "{schema}".orders ORDER BY id')]


async def test_a_committed_transaction_stores_a_task_a_worker_then_runs(
    app: asyncpg.Connection, queue: TaskQueue, backend: PostgresBackend
) -> None:
    async with app.transaction():
        await app.execute(f'INSERT INTO "{backend.schema}".orders VALUES (1)')
        task_id = await queue.using(app).enqueue(add, 1, 2)
        assert await backend.get(task_id) is None  # not committed yet: invisible to others
    await Worker(queue).run(burst=True)
    result = await queue.get_result(task_id, timeout=5)
    assert result is not None and (result.status, result.value) == (TaskStatus.SUCCESS, 3)


async def test_a_rolled_back_transaction_leaves_no_task(
    app: asyncpg.Connection, queue: TaskQueue, backend: PostgresBackend
) -> None:
    enqueued: list[str] = []

    async def place_order() -> None:
        async with app.transaction():
            await app.execute(f'INSERT INTO "{backend.schema}".orders VALUES (1)')
            enqueued.append(await queue.using(app).enqueue(add, 1, 2))
            raise RuntimeError("the application changed its mind")

    with pytest.raises(RuntimeError, match="the application changed its mind"):
        await place_order()
    assert await backend.get(enqueued[0]) is None
    assert await _orders(app, backend.schema) == []
    assert await queue.stats() == {}


async def test_a_refused_batch_leaves_the_applications_own_writes_intact(
    app: asyncpg.Connection, queue: TaskQueue, backend: PostgresBackend
) -> None:
    from sitq import Task

    async with app.transaction():
        await app.execute(f'INSERT INTO "{backend.schema}".orders VALUES (1)')
        with pytest.raises(TaskNotFoundError, match=r"no-such-parent"):
            await queue.using(app).enqueue_many(
                [Task(add, [1, 2]), Task(add, [3, 4], depends_on=["no-such-parent"])]
            )
        kept = await queue.using(app).enqueue(add, 5, 6)  # the transaction is still usable
    assert await _orders(app, backend.schema) == [1]
    assert [
        record.id
        for record in await backend.list_tasks(statuses=list(TaskStatus), queues=None, limit=10, after=None)
    ] == [kept]


async def test_a_pooled_connection_works_too(queue: TaskQueue, backend: PostgresBackend) -> None:
    async with (
        asyncpg.create_pool(server_url(), min_size=1, max_size=1) as pool,
        pool.acquire() as connection,
        connection.transaction(),
    ):
        task_id = await queue.using(connection).enqueue(add, 1, 1)
    assert await backend.get(task_id) is not None


async def test_other_objects_and_a_connection_outside_a_transaction_are_refused(
    app: asyncpg.Connection, queue: TaskQueue
) -> None:
    import sqlite3

    with (
        contextlib.closing(sqlite3.connect(":memory:")) as other_driver,
        pytest.raises(ConfigurationError, match=r"asyncpg Connection .*not through Connection"),
    ):
        await queue.using(other_driver).enqueue(add, 1, 1)
    with pytest.raises(ConfigurationError, match=r"no transaction open.*connection.transaction"):
        await queue.using(app).enqueue(add, 1, 1)


async def test_a_connection_to_another_database_is_refused(queue: TaskQueue) -> None:
    other = await asyncpg.connect(server_url().rpartition("/")[0] + "/postgres")
    try:
        async with other.transaction():
            with pytest.raises(ConfigurationError, match=r"does not see sitq's schema|database 'postgres'"):
                await queue.using(other).enqueue(add, 1, 1)
            assert await other.fetchval("SELECT 1") == 1  # the application's transaction goes on
    finally:
        await other.close()
