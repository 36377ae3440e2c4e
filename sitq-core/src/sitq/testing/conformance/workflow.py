"""Workflows: tasks that wait for their parents, the cascade of a failure, and a workflow's counts."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from sitq.backend import Backend
from sitq.errors import TaskNotFoundError, ValidationError, WorkflowNotFoundError
from sitq.models import Task, TaskStatus
from sitq.queue import TaskQueue
from sitq.testing.conformance.support import (
    LEASE,
    QUEUES,
    T0,
    ConformanceFixtures,
    assert_same_instant,
    new_task,
    outcome,
)
from sitq.testing.conformance.tasks import (
    add,
    archive_results,
    download_data,
    explode,
    generate_report,
    process_data,
    send_notifications,
)
from sitq.worker import Worker
from sitq.workflow import Workflow


class WorkflowConformance(ConformanceFixtures):
    """A task runs once all its parents succeeded; one whose parent ended without success is cancelled,
    transitively, with an error naming that parent; an unknown parent is refused."""

    async def test_a_task_waits_until_all_its_parents_succeed(self, store: Backend) -> None:
        first, second = new_task(), new_task()
        child = dataclasses.replace(new_task(), depends_on=(first.id, second.id))
        await store.enqueue([first, second, child])
        claimed = await store.claim(worker_id="w1", now=T0, lease=LEASE, limit=10, queues=QUEUES)
        assert {task.id for task in claimed} == {first.id, second.id}
        await store.complete([outcome(first.id, "w1", result=b"1")])
        assert await store.claim(worker_id="w1", now=T0, lease=LEASE, limit=10, queues=QUEUES) == []
        assert await store.claim_task(child.id, worker_id="w1", now=T0, lease=LEASE) is None
        await store.complete([outcome(second.id, "w1", result=b"2")])
        [ready] = await store.claim(worker_id="w1", now=T0, lease=LEASE, limit=10, queues=QUEUES)
        assert ready.id == child.id and ready.depends_on == (first.id, second.id)

    async def test_a_waiting_task_is_not_due(self, store: Backend) -> None:
        parent = new_task(T0 + timedelta(hours=1))
        child = dataclasses.replace(new_task(T0 - timedelta(hours=1)), depends_on=(parent.id,))
        await store.enqueue([parent, child])
        assert_same_instant(await store.next_due(QUEUES), parent.eta)

    async def test_an_unknown_parent_is_refused_and_nothing_stored(self, store: Backend) -> None:
        fine, orphan = new_task(), dataclasses.replace(new_task(), depends_on=("no-such-task",))
        with pytest.raises(TaskNotFoundError, match="no-such-task"):
            await store.enqueue([fine, orphan])
        assert await store.get(fine.id) is None

    async def test_a_parent_ending_without_success_cancels_its_descendants(self, store: Backend) -> None:
        root = new_task()
        child = dataclasses.replace(new_task(), depends_on=(root.id,))
        grandchild = dataclasses.replace(new_task(), depends_on=(child.id,))
        bystander = new_task()
        await store.enqueue([root, child, grandchild, bystander])
        await store.claim(worker_id="w1", now=T0, lease=LEASE, limit=1, queues=QUEUES)
        with store.subscribe() as changes:
            await store.complete([outcome(root.id, "w1", TaskStatus.FAILED, error="ValueError: bad")])
            assert await changes.wait(5)
        for dependent, parent, ended in ((child, root, "failed"), (grandchild, child, "cancelled")):
            record = await store.get(dependent.id)
            assert record is not None and record.status is TaskStatus.CANCELLED
            assert record.error == f"TaskCancelledError: parent task {parent.id} ended {ended}"
        late = dataclasses.replace(new_task(), depends_on=(root.id,))
        await store.enqueue([late])
        late_record = await store.get(late.id)
        assert late_record is not None and late_record.status is TaskStatus.CANCELLED
        bystanding = await store.get(bystander.id)
        assert bystanding is not None and bystanding.status is TaskStatus.PENDING

    async def test_workflow_tasks_are_counted_by_status(self, store: Backend) -> None:
        tasks = [dataclasses.replace(new_task(), workflow_id="wf") for _ in range(3)]
        await store.enqueue([*tasks, new_task()])
        await store.claim(worker_id="w1", now=T0, lease=LEASE, limit=1, queues=QUEUES)
        counts = await store.workflow_counts("wf")
        assert sum(counts.values()) == 3 and counts[TaskStatus.PENDING] >= 2
        assert await store.workflow_counts("no-such-workflow") == {}
        record = await store.get(tasks[0].id)
        assert record is not None and record.workflow_id == "wf"

    async def test_seed_003_pipeline_runs_in_order_with_parent_results(self, backend: Backend) -> None:
        workflow = Workflow("data_pipeline")
        download_job = Task(name="download", function=download_data)
        process_job = Task(name="process", function=process_data)
        report_job = Task(name="report", function=generate_report)
        notify_job = Task(name="notify", function=send_notifications)
        archive_job = Task(name="archive", function=archive_results)
        workflow.add(download_job)
        workflow.add(process_job, depends_on=[download_job])
        workflow.add(report_job, depends_on=[process_job])
        workflow.add(notify_job, depends_on=[process_job])
        workflow.add(archive_job, depends_on=[report_job, notify_job])
        async with TaskQueue(backend) as queue, Worker(queue, max_concurrency=4):
            run = await queue.submit(workflow)
            archived = await queue.get_result(run.id_of(archive_job), timeout=20)
            status = await queue.get_workflow(run.id)
        assert archived is not None and archived.value == ["notified about 3 rows", "report of 3 rows"]
        assert status.finished and status.succeeded and status.total == 5
        assert len(run.task_ids) == 5 and run.name == "data_pipeline"

    async def test_a_failing_step_cancels_the_rest_and_the_workflow_finishes(self, backend: Backend) -> None:
        workflow = Workflow("doomed")
        first = workflow.add(explode)
        second = workflow.add(add, 1, 2, depends_on=[first])
        third = workflow.add(add, 3, 4, depends_on=[second])
        async with TaskQueue(backend) as queue, Worker(queue):
            run = await queue.submit(workflow)
            last = await queue.get_result(run.id_of(third), timeout=10)
            status = await queue.get_workflow(run.id)
        assert last is not None and last.status == "cancelled"
        assert last.error is not None and "TaskCancelledError: parent task" in last.error
        assert status.finished and not status.succeeded
        assert dict(status.counts) == {TaskStatus.FAILED: 1, TaskStatus.CANCELLED: 2}

    async def test_bad_workflows_and_parents_are_refused_at_submit(self, backend: Backend) -> None:
        workflow = Workflow("bad")
        outsider = Task(add, [1, 1])
        with pytest.raises(ValidationError, match="add a task's parents before it"):
            workflow.add(add, 1, 2, depends_on=[outsider])
        async with TaskQueue(backend) as queue:
            with pytest.raises(TaskNotFoundError, match="no-such-task"):
                await queue.enqueue(Task(add, [1, 2], depends_on=["no-such-task"]))
            with pytest.raises(WorkflowNotFoundError):
                await queue.get_workflow("no-such-workflow")
