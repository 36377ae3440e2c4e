"""`Capability.TRANSACTIONAL_ENQUEUE`: tasks written through the application's own connection, inside its
transaction, exist if and only if that transaction commits (`TaskQueue.using`)."""

from __future__ import annotations

import dataclasses

import pytest

from sitq.backend import Backend, Capability
from sitq.errors import ConfigurationError, TaskNotFoundError
from sitq.models import Task, TaskStatus
from sitq.queue import TaskQueue
from sitq.testing.conformance.support import (
    LEASE,
    QUEUES,
    T0,
    ApplicationTransaction,
    ConformanceFixtures,
    lacking,
    new_task,
    outcome,
    requires,
)
from sitq.testing.conformance.tasks import add, multiply
from sitq.worker import Worker
from sitq.workflow import Workflow


class RolledBack(Exception):
    """Raised inside an application's transaction to roll it back."""


class TransactionalEnqueueConformance(ConformanceFixtures):
    """Needs the `application_transaction` fixture: the application's own transactions on the store."""

    @requires(Capability.TRANSACTIONAL_ENQUEUE)
    async def test_tasks_of_a_committed_transaction_are_stored_and_claimable(
        self, store: Backend, application_transaction: ApplicationTransaction
    ) -> None:
        parent = new_task()
        await store.enqueue([parent])
        first, child = new_task(), dataclasses.replace(new_task(), depends_on=(parent.id,))
        async with application_transaction() as connection:
            await store.enqueue_in_transaction(connection, [first, child])
            assert await store.get(first.id) is None, "a task must not exist before its transaction commits"
        for stored in (first, child):
            record = await store.get(stored.id)
            assert record is not None and record.status is TaskStatus.PENDING
        claimed = await store.claim(worker_id="w1", now=T0, lease=LEASE, limit=10, queues=QUEUES)
        assert [task.id for task in claimed] == [parent.id, first.id]
        await store.complete([outcome(parent.id, "w1")])
        [ready] = await store.claim(worker_id="w1", now=T0, lease=LEASE, limit=10, queues=QUEUES)
        assert ready.id == child.id and ready.depends_on == (parent.id,)

    @requires(Capability.TRANSACTIONAL_ENQUEUE)
    async def test_a_queue_using_the_applications_connection_enqueues_in_its_transaction(
        self, backend: Backend, application_transaction: ApplicationTransaction
    ) -> None:
        workflow = Workflow("in a transaction")
        first = workflow.add(add, 1, 2)
        last = workflow.add(multiply, 2, 5, depends_on=[first])
        async with TaskQueue(backend) as queue:
            async with application_transaction() as connection:
                in_transaction = queue.using(connection)
                one = await in_transaction.enqueue(add, 1, 2)
                many = await in_transaction.enqueue_many([Task(multiply, [2, 3]), Task(add, [4, 5])])
                run = await in_transaction.submit(workflow)
            async with Worker(queue):
                results = [
                    await queue.get_result(task_id, timeout=10)
                    for task_id in (one, *many, run.id_of(first), run.id_of(last))
                ]
        assert [result.value if result else None for result in results] == [3, 6, 9, 3, 10]

    @requires(Capability.TRANSACTIONAL_ENQUEUE)
    async def test_a_rolled_back_transaction_stores_nothing(
        self, store: Backend, application_transaction: ApplicationTransaction
    ) -> None:
        task, written = new_task(), []

        async def enqueue_then_fail(queue: TaskQueue) -> None:
            async with application_transaction() as connection:
                await store.enqueue_in_transaction(connection, [task])
                written.append(await queue.using(connection).enqueue(add, 1, 2))
                raise RolledBack

        async with TaskQueue(store) as queue:
            with pytest.raises(RolledBack):
                await enqueue_then_fail(queue)
        assert [await store.get(task_id) for task_id in (task.id, *written)] == [None, None]
        assert await store.stats() == {}

    @requires(Capability.TRANSACTIONAL_ENQUEUE)
    async def test_a_refused_batch_leaves_the_rest_of_the_transaction_to_commit(
        self, store: Backend, application_transaction: ApplicationTransaction
    ) -> None:
        before, refused, after = new_task(), new_task(), new_task()
        orphan = dataclasses.replace(new_task(), depends_on=("no-such-task",))
        async with application_transaction() as connection:
            await store.enqueue_in_transaction(connection, [before])
            with pytest.raises(TaskNotFoundError, match="no-such-task"):
                await store.enqueue_in_transaction(connection, [refused, orphan])
            await store.enqueue_in_transaction(connection, [after])
        assert await store.get(before.id) is not None and await store.get(after.id) is not None
        assert await store.get(refused.id) is None and await store.get(orphan.id) is None

    @requires(Capability.TRANSACTIONAL_ENQUEUE)
    async def test_an_object_that_is_not_a_connection_of_the_backends_driver_is_refused(
        self, store: Backend
    ) -> None:
        await self._assert_refused(store)

    @lacking(Capability.TRANSACTIONAL_ENQUEUE)
    async def test_a_backend_without_transactional_enqueue_refuses_it(self, store: Backend) -> None:
        await self._assert_refused(store)

    @staticmethod
    async def _assert_refused(store: Backend) -> None:
        """Whatever `enqueue_in_transaction` cannot use raises `ConfigurationError` and stores nothing."""
        task = new_task()
        for connection in (object(), "not a connection"):
            with pytest.raises(ConfigurationError):
                await store.enqueue_in_transaction(connection, [task])
        async with TaskQueue(store) as queue:
            with pytest.raises(ConfigurationError):
                await queue.using(object()).enqueue(add, 1, 1)
        assert await store.get(task.id) is None and await store.stats() == {}
