"""Process mode (`Worker(processes=N)`) with real child processes and real signals: a task that kills its
own process costs only its own attempt, time-outs and cancellations kill the child, and the pool keeps
its size."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from process_tasks import (
    add_parents,
    burn,
    context_of_async_task,
    exit_at_once,
    innocent,
    kill_itself,
    kill_itself_on_first_attempt,
    segfault,
    sleep_forever,
)
from programs import is_gone, run_program
from sample_tasks import add, multiply

from sitq import (
    AttemptOutcome,
    RetryPolicy,
    Task,
    TaskQueue,
    TaskStatus,
    ValidationError,
    Worker,
    Workflow,
    current_task,
)

DEADLINE = 30.0  # generous: a loaded 2-core machine starts processes slowly


def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'tasks.db'}"


class Hooks:
    """Records lifecycle events with the process they fired in."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, int]] = []

    def sitq_task_started(self, task_id: str) -> None:
        self.events.append(("started", task_id, os.getpid()))

    def sitq_task_succeeded(self, task_id: str) -> None:
        self.events.append(("succeeded", task_id, os.getpid()))

    def sitq_task_failed(self, task_id: str, error: str) -> None:
        self.events.append(("failed", task_id, os.getpid()))

    def sitq_task_retried(self, task_id: str) -> None:
        self.events.append(("retried", task_id, os.getpid()))


async def eventually(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, f"not within {DEADLINE}s: {what}"
        await asyncio.sleep(0.02)


def children() -> set[int]:
    return {child.pid for child in multiprocessing.active_children() if child.pid is not None}


async def pid_in(path: Path) -> int:
    """The process id a task wrote to `path`, once it has."""
    await eventually(lambda: path.exists() and path.stat().st_size > 0, f"{path.name} is written")
    return int(await asyncio.to_thread(path.read_text))


@pytest.mark.parametrize(
    ("poison", "how"),
    [
        (kill_itself, "killed by SIGKILL (signal 9)"),
        (exit_at_once, "exited with code 3"),
        (segfault, "killed by SIGSEGV (signal 11)"),
    ],
    ids=["SIGKILL", "os._exit", "segfault"],
)
async def test_a_task_that_kills_its_process_costs_only_its_own_attempt(
    tmp_path: Path, poison: Callable[[str], None], how: str
) -> None:
    flag = tmp_path / "dying"
    hooks = Hooks()
    async with TaskQueue(url(tmp_path)) as queue:
        # Higher priority: the innocent tasks are claimed with the poison, and run until it is dying.
        innocents = [await queue.enqueue(Task(innocent, [str(flag)], priority=1)) for _ in range(2)]
        poisoned = await queue.enqueue(poison, str(flag))
        async with Worker(queue, processes=3, poll_interval=0.1, plugins=[hooks]):
            crashed = await queue.get_result(poisoned, timeout=DEADLINE)
            survivors = [await queue.get_result(task_id, timeout=DEADLINE) for task_id in innocents]
            dead = int(flag.read_text())
            # The dead child is replaced: the pool is back to three.
            await eventually(lambda: len(children()) == 3 and dead not in children(), "the pool is refilled")
        info = await queue.get_task(poisoned)
    assert [(result.status, result.error) for result in survivors if result] == [("success", None)] * 2
    pids = {result.value for result in survivors if result}
    assert len(pids) == 2 and os.getpid() not in pids and dead not in pids
    assert crashed is not None and crashed.status == TaskStatus.FAILED
    assert crashed.error == f"TaskCrashedError: the process running the task died: {how}"
    assert [(attempt.outcome, attempt.error) for attempt in info.history] == [
        (AttemptOutcome.FAILED, crashed.error)
    ]
    if poison is segfault:  # faulthandler's stack of the dying task is kept as its traceback
        assert crashed.traceback is not None and "Segmentation fault" in crashed.traceback
        assert "in segfault" in crashed.traceback and "process_tasks.py" in crashed.traceback
    # The hooks fire in the worker's own process, for the poison as for the others.
    assert {(event, task_id) for event, task_id, _ in hooks.events} == {
        *(("started", task_id) for task_id in [*innocents, poisoned]),
        *(("succeeded", task_id) for task_id in innocents),
        ("failed", poisoned),
    }
    assert {pid for _, _, pid in hooks.events} == {os.getpid()}


class ExitWhenLoaded:
    """A poison payload: unpickling it ends the process that does so."""

    def __reduce__(self) -> tuple[Callable[[int], None], tuple[int]]:
        return os._exit, (7,)


async def test_a_payload_that_kills_its_deserializer_costs_only_that_attempt(tmp_path: Path) -> None:
    """The worker never unpickles a call: the child that does dies, and the worker goes on."""
    async with TaskQueue(url(tmp_path)) as queue, Worker(queue, processes=1, poll_interval=0.1):
        poisoned = await queue.get_result(
            await queue.enqueue(multiply, ExitWhenLoaded(), 2), timeout=DEADLINE
        )
        after = await queue.get_result(await queue.enqueue(multiply, 3, 2), timeout=DEADLINE)
    assert poisoned is not None and poisoned.status == TaskStatus.FAILED
    assert poisoned.error == "TaskCrashedError: the process running the task died: exited with code 7"
    assert after is not None and after.value == 6


async def test_a_crash_is_retried_when_the_policy_retries_it(tmp_path: Path) -> None:
    at_once = RetryPolicy(backoff=0, jitter=0)
    hooks = Hooks()
    async with TaskQueue(url(tmp_path)) as queue:
        retried = await queue.enqueue(Task(kill_itself_on_first_attempt, max_attempts=2, retry=at_once))
        left_out = await queue.enqueue(
            Task(
                kill_itself_on_first_attempt,
                max_attempts=2,
                retry=RetryPolicy(backoff=0, jitter=0, retry_on=[ConnectionError]),
            )
        )
        async with Worker(queue, processes=1, poll_interval=0.1, plugins=[hooks]):
            survived = await queue.get_result(retried, timeout=DEADLINE)
            not_retried = await queue.get_result(left_out, timeout=DEADLINE)
        history = (await queue.get_task(retried)).history
    assert survived is not None and survived.value == "survived"
    crash = "TaskCrashedError: the process running the task died: killed by SIGKILL (signal 9)"
    assert [(attempt.outcome, attempt.error) for attempt in history] == [
        (AttemptOutcome.FAILED, crash),
        (AttemptOutcome.SUCCESS, None),
    ]
    assert not_retried is not None and (not_retried.status, not_retried.error) == ("failed", crash)
    assert ("retried", retried, os.getpid()) in hooks.events


async def test_a_timeout_kills_the_child_and_a_new_one_takes_its_place(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    async with TaskQueue(url(tmp_path)) as queue:
        stuck = await queue.enqueue(Task(sleep_forever, [str(pid_file)], timeout=0.5))
        async with Worker(queue, processes=1, poll_interval=0.1):
            [stuck_in] = children()
            timed_out = await queue.get_result(stuck, timeout=DEADLINE)
            assert is_gone(stuck_in)
            await eventually(lambda: len(children()) == 1 and stuck_in not in children(), "a new child")
            after = await queue.get_result(await queue.enqueue(add, 2, 3), timeout=DEADLINE)
    assert timed_out is not None and timed_out.status == TaskStatus.TIMEOUT
    assert timed_out.error == "TaskTimeoutError: the attempt ran longer than its 0.5s timeout"
    assert after is not None and after.value == 5


async def test_cancelling_a_running_task_kills_its_child(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    async with TaskQueue(url(tmp_path)) as queue:
        running = await queue.enqueue(sleep_forever, str(pid_file))
        async with Worker(queue, processes=1, poll_interval=0.1):
            pid = await pid_in(pid_file)
            await queue.cancel(running)
            cancelled = await queue.get_result(running, timeout=DEADLINE)
            assert is_gone(pid)
    assert cancelled is not None and cancelled.status == TaskStatus.CANCELLED


async def test_a_stopping_worker_kills_children_past_the_grace_period_and_gives_their_tasks_back(
    tmp_path: Path,
) -> None:
    pid_file = tmp_path / "pid"
    async with TaskQueue(url(tmp_path)) as queue:
        running = await queue.enqueue(sleep_forever, str(pid_file))
        worker = Worker(queue, processes=2, poll_interval=0.1, grace_period=0.2)
        await worker.start()
        pid = await pid_in(pid_file)
        assert len(children()) == 2
        await asyncio.wait_for(worker.stop(), timeout=DEADLINE)
        info = await queue.get_task(running)
    assert is_gone(pid) and not children()
    assert info.status == TaskStatus.PENDING
    assert [attempt.outcome for attempt in info.history] == [AttemptOutcome.RELEASED]


async def test_cpu_bound_tasks_run_at_the_same_time_in_processes_of_their_own(tmp_path: Path) -> None:
    """Two tasks that hold the CPU overlap in time, in two processes: the GIL, which serializes the
    threads of one process, does not hold them back. How much faster that makes them depends on the free
    cores (docs/how-to/process-mode.md measures it), so this test does not time it."""
    async with TaskQueue(url(tmp_path)) as queue, Worker(queue, processes=2, poll_interval=0.1):
        task_ids = [await queue.enqueue(burn, 0.3) for _ in range(2)]
        runs = [(await queue.get_result(task_id, timeout=DEADLINE)) for task_id in task_ids]
    first, second = (run.value for run in runs if run is not None)
    assert os.getpid() != first["pid"] != second["pid"] != os.getpid()
    assert first["started"] < second["ended"] and second["started"] < first["ended"]


async def test_closures_async_tasks_workflows_and_the_task_context_work_in_children(tmp_path: Path) -> None:
    offset = 10

    def add_offset(x: int) -> tuple[int, int, int]:  # a closure: cloudpickle sends it by value
        return x + offset, os.getpid(), current_task().attempt

    workflow = Workflow("sum")
    parents = [workflow.add(add, 1, 2), workflow.add(add, 3, 4)]
    workflow.add(add_parents, depends_on=parents)
    async with TaskQueue(url(tmp_path)) as queue, Worker(queue, processes=2, poll_interval=0.1) as worker:
        closure = await queue.get_result(await queue.enqueue(add_offset, 5), timeout=DEADLINE)
        in_async = await queue.enqueue(context_of_async_task)
        context = await queue.get_result(in_async, timeout=DEADLINE)
        run = await queue.submit(workflow)
        summed = await queue.get_result(run.task_ids[2], timeout=DEADLINE)
    assert closure is not None and closure.value[0] == 15 and closure.value[2] == 1
    assert closure.value[1] != os.getpid()
    assert context is not None and context.value["pid"] != os.getpid()
    assert (context.value["task_id"], context.value["attempt"]) == (in_async, 1)
    assert context.value["worker"] == worker.worker_id
    assert summed is not None and summed.value == 10


async def test_process_task_runs_the_task_in_a_child(tmp_path: Path) -> None:
    async with TaskQueue(url(tmp_path)) as queue:
        task_id = await queue.enqueue(context_of_async_task)
        worker = Worker(queue, processes=1)
        try:
            result = await worker.process_task(task_id)
        finally:
            await worker.stop()
    assert result.value["pid"] != os.getpid() and result.value["task_id"] == task_id
    assert not children()


def test_a_script_runs_its_own_functions_in_process_mode(tmp_path: Path) -> None:
    """Functions of `__main__` travel by value; the children import the script again (as `__mp_main__`),
    so it starts its worker under `if __name__ == "__main__":`."""
    script, database = tmp_path / "script.py", tmp_path / "script.db"
    script.write_text(
        textwrap.dedent(
            f"""
            import asyncio, os
            from sitq import TaskQueue, Worker

            def where(x):
                return x, os.getpid()

            async def main():
                queue = TaskQueue("sqlite:///{database}")
                async with queue, Worker(queue, processes=2):
                    result = await queue.get_result(await queue.enqueue(where, 7), timeout=30)
                print(result.status, result.value[0], result.value[1] != os.getpid())

            if __name__ == "__main__":
                asyncio.run(main())
            """
        )
    )
    completed = run_program(script, tmp_path)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == ["success", "7", "True"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"processes": 0}, "processes must be a whole number >= 1 or None"),
        ({"processes": True}, "processes must be a whole number >= 1 or None"),
        ({"processes": 1.5}, "processes must be a whole number >= 1 or None"),
        ({"processes": 2, "max_concurrency": 3}, "max_concurrency=3 cannot exceed processes=2"),
    ],
)
def test_bad_process_options_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Worker("memory://", **options)


def test_max_concurrency_follows_processes_unless_given() -> None:
    assert Worker("memory://").max_concurrency == 10
    assert Worker("memory://", processes=3).max_concurrency == 3
    assert Worker("memory://", processes=3, max_concurrency=2).max_concurrency == 2
