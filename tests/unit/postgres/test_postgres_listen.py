"""Wake-ups through LISTEN/NOTIFY: other processes' enqueues wake a subscriber at once, the listener comes
back by itself when the server drops it, and without LISTEN the worker's periodic look still finds work."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from postgres_server import execute, with_options
from sample_tasks import add

from sitq import TaskQueue, TaskStatus, Worker
from sitq.models import NewTask, utcnow
from sitq_postgres import PostgresBackend


def _new_task() -> NewTask:
    now = utcnow()
    return NewTask(id=uuid.uuid4().hex, name="t", payload=b"x", serializer="pickle", enqueued_at=now, eta=now)


async def _listening(backend: PostgresBackend) -> int:
    """The server process id of the backend's listening connection, once it is open."""
    for _ in range(500):
        connection = None if backend.listener is None else backend.listener.connection
        if connection is not None:
            return int(connection.get_server_pid())
        await asyncio.sleep(0.01)
    raise AssertionError("the listener never connected")


async def test_an_enqueue_by_another_backend_wakes_a_subscriber(postgres_url: str) -> None:
    waiter, producer = PostgresBackend.from_url(postgres_url), PostgresBackend.from_url(postgres_url)
    await waiter.connect()
    await producer.connect()
    try:
        with waiter.subscribe() as subscription:
            await _listening(waiter)
            await subscription.wait(0.2)  # the wake-up of the listener's own connect
            assert not await subscription.wait(0.1)
            await producer.enqueue([_new_task()])
            assert await subscription.wait(5)
    finally:
        await producer.close()
        await waiter.close()


async def test_backend_objects_of_one_process_share_one_listening_connection(postgres_url: str) -> None:
    first, second = PostgresBackend.from_url(postgres_url), PostgresBackend.from_url(postgres_url)
    producer = PostgresBackend.from_url(postgres_url)
    for backend in (first, second, producer):
        await backend.connect()
    try:
        with first.subscribe() as one, second.subscribe() as two:
            pid = await _listening(first)
            assert await _listening(second) == pid
            listening = await execute(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'LISTEN %' AND pid = ANY($1)",
                [pid],
            )
            assert listening[0][0] == 1
            while await one.wait(0.2) or await two.wait(0.05):  # the wake-ups of the listener's connect
                pass
            await producer.enqueue([_new_task()])
            assert await one.wait(5) and await two.wait(5)
        await first.close()  # the other still listens, on the same connection
        assert await _listening(second) == pid
    finally:
        await producer.close()
        await second.close()
        await first.close()
    assert second.listener is None


async def test_the_listener_reconnects_after_the_server_drops_it(postgres_url: str) -> None:
    waiter, producer = PostgresBackend.from_url(postgres_url), PostgresBackend.from_url(postgres_url)
    await waiter.connect()
    await producer.connect()
    try:
        with waiter.subscribe() as subscription:
            first = await _listening(waiter)
            await execute("SELECT pg_terminate_backend($1)", first)
            for _ in range(500):
                if (second := await _listening(waiter)) != first:
                    break
                await asyncio.sleep(0.01)
            assert second != first
            while await subscription.wait(0.2):  # the wake-ups of losing and regaining the connection
                pass
            await producer.enqueue([_new_task()])
            assert await subscription.wait(5)
    finally:
        await producer.close()
        await waiter.close()


async def test_without_listen_no_listening_connection_is_opened_and_workers_still_drain(
    postgres_url: str,
) -> None:
    url = with_options(postgres_url, listen="false")
    async with TaskQueue(url) as producer, TaskQueue(url) as consumer:
        worker = Worker(consumer, poll_interval=0.1)
        running = asyncio.create_task(worker.run())
        try:
            await asyncio.sleep(0.3)  # the worker is idle, waiting
            task_id = await producer.enqueue(add, 2, 3)
            result = await asyncio.wait_for(consumer.get_result(task_id, timeout=5), 10)
            assert result is not None and (result.status, result.value) == (TaskStatus.SUCCESS, 5)
            assert isinstance(consumer.backend, PostgresBackend)
            assert consumer.backend.listener is None
        finally:
            await worker.stop()
            await running


async def test_a_due_later_task_is_found_by_the_periodic_look(postgres_url: str) -> None:
    async with TaskQueue(postgres_url) as queue:
        task_id = await queue.enqueue(add, 1, 1, eta=utcnow() + timedelta(seconds=0.3))
        worker = Worker(queue, poll_interval=5)
        running = asyncio.create_task(worker.run())
        try:
            result = await queue.get_result(task_id, timeout=5)
            assert result is not None and result.value == 2
        finally:
            await worker.stop()
            await running
