"""Outcomes: what a finished attempt records, retries and timeouts, and the history of attempts."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

from sitq.backend import Backend
from sitq.models import AttemptOutcome, RetryPolicy, Task, TaskStatus
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
    FAST_RETRY,
    add,
    block_for,
    explode,
    flaky,
    multiply,
    retried_at_once,
    retry_once,
    sleep_for,
    slow_first_time,
)
from sitq.worker import Worker


class OutcomeConformance(ConformanceFixtures):
    """Success, failure and retries are recorded with each attempt in the history, also when a claim
    carries them; retries and timeouts behave as their policies say, end to end."""

    async def test_success_and_failure_are_recorded(self, store: Backend) -> None:
        good, bad = new_task(), new_task()
        await store.enqueue([good, bad])
        await store.claim(worker_id="w1", now=T0, lease=LEASE, limit=2, queues=QUEUES)
        await store.complete(
            [
                outcome(good.id, "w1", result=b"\x00value"),
                outcome(bad.id, "w1", TaskStatus.FAILED, error="ValueError: boom", traceback="Traceback ..."),
            ]
        )
        done, failed = await store.get(good.id), await store.get(bad.id)
        assert done is not None and failed is not None
        assert (done.status, done.result, done.error) == (TaskStatus.SUCCESS, b"\x00value", None)
        assert (failed.status, failed.error, failed.traceback) == (
            TaskStatus.FAILED,
            "ValueError: boom",
            "Traceback ...",
        )
        assert_same_instant(done.finished_at, T0)
        assert_same_instant(done.started_at, T0)
        later = T0 + timedelta(days=1)
        assert await store.claim(worker_id="w2", now=later, lease=LEASE, limit=5, queues=QUEUES) == []
        assert await store.claim_task(good.id, worker_id="w2", now=later, lease=LEASE) is None

    async def test_a_claim_records_outcomes_first_in_the_same_write(self, store: Backend) -> None:
        parent, child, failing, dependent, late = (new_task(T0 - timedelta(seconds=5 - n)) for n in range(5))
        child = dataclasses.replace(child, depends_on=(parent.id,))
        dependent = dataclasses.replace(dependent, depends_on=(failing.id,))
        await store.enqueue([parent, child, failing, dependent, late])
        claimed = await store.claim(worker_id="w", now=T0, lease=LEASE, limit=2, queues=QUEUES)
        assert [task.id for task in claimed] == [parent.id, failing.id]
        with store.subscribe() as changes:
            again = await store.claim(
                worker_id="w",
                now=T0,
                lease=LEASE,
                limit=2,
                queues=QUEUES,
                outcomes=[
                    outcome(parent.id, "w", result=b"parent"),
                    outcome(failing.id, "w", TaskStatus.FAILED, error="boom"),
                    outcome(late.id, "someone-else", result=b"ignored"),
                ],
            )
            assert await changes.wait(timeout=5)
        # The parent's success made its child claimable in the same write; the failure cancelled its own.
        assert [task.id for task in again] == [child.id, late.id]
        records = {task.id: await store.get(task.id) for task in (parent, failing, dependent)}
        assert {task_id: (r.status if r else None) for task_id, r in records.items()} == {
            parent.id: TaskStatus.SUCCESS,
            failing.id: TaskStatus.FAILED,
            dependent.id: TaskStatus.CANCELLED,
        }
        assert [attempt.outcome for attempt in await store.history(parent.id)] == [AttemptOutcome.SUCCESS]

    async def test_an_outcome_says_when_its_attempt_started(self, store: Backend) -> None:
        """A worker that held a claimed task before it had a slot for it reports the real start, which
        the task and the attempt's history keep instead of the claim's time; without one, they keep the
        claim's, in a batch as alone, in a claim's write as in `complete`."""
        held, plain, retried = new_task(), new_task(), new_task(max_attempts=2)
        await store.enqueue([held, plain, retried])
        await store.claim(worker_id="w", now=T0, lease=LEASE, limit=3, queues=QUEUES)
        began = T0 + timedelta(seconds=2)
        finished = T0 + timedelta(seconds=3)
        retry_at = T0 + timedelta(seconds=10)
        await store.claim(
            worker_id="w",
            now=T0,
            lease=LEASE,
            limit=0,
            queues=QUEUES,
            outcomes=[
                outcome(held.id, "w", started_at=began, finished_at=finished),
                outcome(plain.id, "w", finished_at=finished),
            ],
        )
        await store.complete(
            [
                outcome(
                    retried.id,
                    "w",
                    TaskStatus.PENDING,
                    started_at=began,
                    retry_at=retry_at,
                    finished_at=finished,
                )
            ]
        )
        for task, start in ((held, began), (plain, T0), (retried, began)):
            record = await store.get(task.id)
            [attempt] = await store.history(task.id)
            assert record is not None
            assert_same_instant(record.started_at, start)
            assert_same_instant(attempt.started_at, start)
            assert_same_instant(attempt.finished_at, finished)

    async def test_a_retry_is_pending_again_at_its_time_with_the_attempt_in_history(
        self, store: Backend
    ) -> None:
        task = new_task(max_attempts=3)
        await store.enqueue([task])
        await store.claim(worker_id="w1", now=T0, lease=LEASE, limit=1, queues=QUEUES)
        retry_at = T0 + timedelta(seconds=10)
        failure = {"error": "OSError: flaky", "traceback": "Traceback ..."}
        await store.complete([outcome(task.id, "w1", TaskStatus.PENDING, retry_at=retry_at, **failure)])
        record = await store.get(task.id)
        assert record is not None
        assert (record.status, record.attempts, record.error, record.finished_at) == (
            TaskStatus.PENDING,
            1,
            "OSError: flaky",
            None,
        )
        assert_same_instant(record.eta, retry_at)
        assert_same_instant(await store.next_due(QUEUES), retry_at)
        assert (
            await store.claim(
                worker_id="w2", now=retry_at - timedelta(seconds=1), lease=LEASE, limit=1, queues=QUEUES
            )
            == []
        )
        [again] = await store.claim(worker_id="w2", now=retry_at, lease=LEASE, limit=1, queues=QUEUES)
        assert again.attempt == 2
        await store.complete([outcome(again.id, "w2", result=b"ok")])
        history = await store.history(task.id)
        assert [(a.attempt, a.worker_id, a.outcome, a.error) for a in history] == [
            (1, "w1", AttemptOutcome.FAILED, "OSError: flaky"),
            (2, "w2", AttemptOutcome.SUCCESS, None),
        ]

    async def test_failure_is_recorded_and_the_worker_goes_on(self, backend: Backend) -> None:
        async with TaskQueue(backend) as queue, Worker(queue):
            failing = await queue.enqueue(explode)
            after = await queue.enqueue(multiply, 6, 7)
            failed = await queue.get_result(failing, timeout=10)
            fine = await queue.get_result(after, timeout=10)
        assert failed is not None and failed.is_error and failed.status == "failed"
        assert failed.error == "ValueError: boom"
        assert failed.traceback is not None and 'raise ValueError("boom")' in failed.traceback
        assert fine is not None and fine.value == 42

    async def test_failures_retry_with_backoff_until_success_and_history_shows_each(
        self, backend: Backend
    ) -> None:
        async with TaskQueue(backend) as queue, Worker(queue):
            task_id = await queue.enqueue(Task(flaky, [3], max_attempts=3, retry=FAST_RETRY))
            result = await queue.get_result(task_id, timeout=10)
            info = await queue.get_task(task_id)
        assert result is not None and result.value == "succeeded on attempt 3"
        assert info.attempts == 3
        assert [(a.attempt, a.outcome) for a in info.history] == [
            (1, AttemptOutcome.FAILED),
            (2, AttemptOutcome.FAILED),
            (3, AttemptOutcome.SUCCESS),
        ]
        assert info.history[0].error == "ConnectionError: attempt 1 failed"

    async def test_only_the_chosen_exceptions_retry_and_the_last_failure_is_final(
        self, backend: Backend
    ) -> None:
        policy = RetryPolicy(backoff=0.01, jitter=0, retry_on=[ConnectionError])
        async with TaskQueue(backend) as queue, Worker(queue):
            not_retried = await queue.enqueue(Task(explode, max_attempts=5, retry=policy))
            exhausted = await queue.enqueue(Task(flaky, [9], max_attempts=2, retry=policy))
            first = await queue.get_result(not_retried, timeout=10)
            last = await queue.get_result(exhausted, timeout=10)
            attempts = (await queue.get_task(not_retried)).attempts
        assert first is not None and first.status == "failed" and first.error == "ValueError: boom"
        assert (
            last is not None and last.status == "failed" and last.error == "ConnectionError: attempt 2 failed"
        )
        assert attempts == 1

    async def test_a_task_can_ask_for_its_own_retry_and_see_its_context(self, backend: Backend) -> None:
        async with TaskQueue(backend) as queue, Worker(queue):
            task_id = await queue.enqueue(Task(retry_once, max_attempts=2))
            result = await queue.get_result(task_id, timeout=10)
        assert result is not None and result.value == {"task_id": task_id, "attempt": 2, "max_attempts": 2}

    async def test_a_retry_due_at_once_runs_again_in_the_same_burst(self, backend: Backend) -> None:
        async with TaskQueue(backend) as queue:
            task_id = await queue.enqueue(Task(retried_at_once, max_attempts=2))
            await asyncio.wait_for(Worker(queue).run(burst=True), timeout=30)
            result = await queue.get_result(task_id, timeout=0)
            assert result is not None and (result.status, result.value) == (TaskStatus.SUCCESS, 2)

    async def test_an_async_task_past_its_timeout_is_cancelled_and_recorded(self, backend: Backend) -> None:
        async with TaskQueue(backend) as queue, Worker(queue):
            task_id = await queue.enqueue(Task(sleep_for, [30], timeout=0.1))
            result = await queue.get_result(task_id, timeout=10)
            info = await queue.get_task(task_id)
        assert result is not None and result.status == "timeout"
        assert result.error == "TaskTimeoutError: the attempt ran longer than its 0.1s timeout"
        assert [a.outcome for a in info.history] == [AttemptOutcome.TIMEOUT]

    async def test_a_timed_out_attempt_is_retried_when_attempts_remain(self, backend: Backend) -> None:
        async with TaskQueue(backend) as queue, Worker(queue):
            task_id = await queue.enqueue(
                Task(slow_first_time, timeout=0.2, max_attempts=2, retry=FAST_RETRY)
            )
            result = await queue.get_result(task_id, timeout=10)
            info = await queue.get_task(task_id)
        assert result is not None and result.value == "fast the second time"
        assert [a.outcome for a in info.history] == [AttemptOutcome.TIMEOUT, AttemptOutcome.SUCCESS]

    async def test_a_sync_task_past_its_timeout_keeps_its_thread_slot_until_it_returns(
        self, backend: Backend
    ) -> None:
        async with TaskQueue(backend) as queue, Worker(queue, max_concurrency=1):
            stuck = await queue.enqueue(Task(block_for, [0.5], timeout=0.05))
            after = await queue.enqueue(add, 1, 1)
            timed_out = await queue.get_result(stuck, timeout=10)
            result = await queue.get_result(after, timeout=10)
        assert timed_out is not None and timed_out.status == "timeout"
        assert timed_out.started_at is not None and result is not None and result.started_at is not None
        assert result.started_at - timed_out.started_at >= timedelta(seconds=0.5)
