"""Claiming ahead: a worker whose recent tasks were short holds a few claimed tasks beyond its free slots.

A held task is leased and counts an attempt; these tests show that it is renewed, that a graceful stop or a
long wait gives it back uncounted, and that one cancelled while it waited never runs.
"""

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from sitq import MemoryBackend, Task, TaskQueue, Worker
from sitq.models import AttemptOutcome, TaskStatus
from sitq.prefetch import HORIZON, PATIENCE, Prefetch

# What the held tasks do, in this process: the test lets the first one end when it chooses.
_GATE: dict[str, asyncio.Event] = {}
_RAN: list[str] = []
_STARTED: dict[str, asyncio.Event] = {}


async def quick() -> None:
    return None


async def gated(name: str) -> str:
    _RAN.append(name)
    _STARTED[name].set()
    await _GATE[name].wait()
    return name


async def record(name: str) -> str:
    _RAN.append(name)
    return name


def test_nothing_is_held_before_a_task_has_run() -> None:
    assert Prefetch(slots=4).extra == 0


@pytest.mark.parametrize(
    ("seconds", "extra"),
    [
        (0.0, 4),  # no-op tasks: a full batch ahead
        (HORIZON / 40, 4),  # capped at the slots
        (HORIZON * 2, 2),  # 4 slots start 2 more within the horizon
        (HORIZON * 5, 0),  # long tasks are left to other workers
    ],
)
def test_the_slots_hold_what_they_start_within_the_horizon(seconds: float, extra: int) -> None:
    prefetch = Prefetch(slots=4)
    prefetch.ran(seconds)
    assert prefetch.extra == extra


def test_a_stall_holds_none_until_a_task_ends() -> None:
    prefetch = Prefetch(slots=2)
    prefetch.ran(0.0)
    prefetch.stalled()
    assert prefetch.extra == 0
    prefetch.ran(0.0)
    assert prefetch.extra == 2


def test_the_average_follows_the_recent_tasks() -> None:
    prefetch = Prefetch(slots=2)
    for _ in range(30):
        prefetch.ran(0.0001)
    assert prefetch.extra == 2
    for _ in range(30):
        prefetch.ran(10.0)  # the tasks became long: stop holding any back
    assert prefetch.extra == 0


@pytest.fixture(params=["memory", "sqlite"])
async def queue(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[TaskQueue]:
    backend = MemoryBackend() if request.param == "memory" else f"sqlite:///{tmp_path / 'queue.db'}"
    _GATE.clear()
    _RAN.clear()
    _STARTED.clear()
    async with TaskQueue(backend) as opened:
        yield opened


async def _holding_one_ahead(queue: TaskQueue, worker: Worker) -> tuple[str, str]:
    """Start `worker` with short recent tasks behind it, then give it a task that waits at the gate, then
    one more, which it holds ahead of its one busy slot."""
    await worker.start()
    warm_up = await queue.enqueue_many([Task(quick) for _ in range(20)])
    for task_id in warm_up:
        await queue.get_result(task_id, timeout=10)
    _GATE["first"], _STARTED["first"] = asyncio.Event(), asyncio.Event()
    first = await queue.enqueue(gated, "first")
    async with asyncio.timeout(10):
        await _STARTED["first"].wait()
        second = await queue.enqueue(record, "second")  # a slot is busy: it can only be held ahead
        while (await queue.get_task(second)).status is not TaskStatus.IN_PROGRESS:  # noqa: ASYNC110 - the store's state
            await asyncio.sleep(0.01)
    assert _RAN == ["first"]
    return first, second


async def test_a_held_task_is_given_back_uncounted_on_a_graceful_stop(queue: TaskQueue) -> None:
    worker = Worker(queue, max_concurrency=1, poll_interval=0.05)
    first, second = await _holding_one_ahead(queue, worker)
    stopping = asyncio.create_task(worker.stop())
    await asyncio.sleep(0.2)  # the stop gives the held task back while the first still runs
    held = await queue.get_task(second)
    assert held.status is TaskStatus.PENDING
    assert held.attempts == 0
    assert [attempt.outcome for attempt in held.history] == [AttemptOutcome.RELEASED]
    _GATE["first"].set()
    await stopping
    assert (await queue.get_task(first)).status is TaskStatus.SUCCESS
    assert _RAN == ["first"]  # the held task never started


async def test_a_held_task_cancelled_never_runs(queue: TaskQueue) -> None:
    worker = Worker(queue, max_concurrency=1, poll_interval=0.05, lease=0.3)
    first, second = await _holding_one_ahead(queue, worker)
    await queue.cancel(second)
    cancelled = await queue.get_result(second, timeout=10)
    _GATE["first"].set()
    assert (await queue.get_result(first, timeout=10)).value == "first"
    await worker.stop()
    assert cancelled.status is TaskStatus.CANCELLED
    assert _RAN == ["first"]


async def test_a_held_task_is_renewed_then_given_back_when_it_waited_too_long(queue: TaskQueue) -> None:
    """Tasks became slow: the held one goes back uncounted for another worker, and this one holds no
    other until a task ends."""
    worker = Worker(queue, max_concurrency=1, poll_interval=0.05, lease=0.3)
    _, second = await _holding_one_ahead(queue, worker)
    await asyncio.sleep(PATIENCE / 2)  # longer than the lease: renewed, it stays this worker's
    assert (await queue.get_task(second)).status is TaskStatus.IN_PROGRESS
    await asyncio.sleep(PATIENCE)
    given_back = await queue.get_task(second)
    assert (given_back.status, given_back.attempts) == (TaskStatus.PENDING, 0)
    assert [attempt.outcome for attempt in given_back.history] == [AttemptOutcome.RELEASED]
    _GATE["first"].set()
    assert (await queue.get_result(second, timeout=10)).value == "second"
    await worker.stop()
    assert _RAN == ["first", "second"]
    ran = await queue.get_task(second)
    assert [attempt.outcome for attempt in ran.history] == [AttemptOutcome.RELEASED, AttemptOutcome.SUCCESS]


async def test_process_task_runs_a_held_task_at_once(queue: TaskQueue) -> None:
    worker = Worker(queue, max_concurrency=1, poll_interval=0.05)
    first, second = await _holding_one_ahead(queue, worker)
    result = await worker.process_task(second)  # while the one slot is still busy
    assert (result.status, result.value) == (TaskStatus.SUCCESS, "second")
    _GATE["first"].set()
    assert (await queue.get_result(first, timeout=10)).value == "first"
    await worker.stop()
    assert _RAN == ["first", "second"]


def block(seconds: float) -> None:
    time.sleep(seconds)


async def test_a_held_task_starts_when_an_abandoned_thread_gives_its_slot_back(queue: TaskQueue) -> None:
    """A sync task past its timeout keeps its thread's slot until its function returns; the task held
    behind it starts then, not when its wait runs out of patience."""
    async with Worker(queue, max_concurrency=1, poll_interval=0.05):
        warm_up = await queue.enqueue_many([Task(quick) for _ in range(20)])
        for task_id in warm_up:
            await queue.get_result(task_id, timeout=10)
        # The timeout makes the recent tasks look slow: the worker holds no more, and claims none for a
        # while, so only the returning thread can start the held task.
        stuck, after = await queue.enqueue_many([Task(block, [0.6], timeout=0.2), Task(record, ["after"])])
        ran = await queue.get_result(after, timeout=10)
        timed_out = await queue.get_task(stuck)
    assert timed_out.status is TaskStatus.TIMEOUT and timed_out.started_at and ran.started_at
    assert timedelta(seconds=0.6) <= ran.started_at - timed_out.started_at < timedelta(seconds=0.9)
    assert [attempt.outcome for attempt in (await queue.get_task(after)).history] == [AttemptOutcome.SUCCESS]
