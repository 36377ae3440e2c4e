"""One SQLite backend object and event loops: used from a second loop while open in a first, it refuses at
once with a clear error instead of hanging; handed on from a loop that has ended, it keeps working.

Each scenario runs in a thread joined with a deadline, so that a hang fails the test instead of CI."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from sample_tasks import add

from sitq import ConfigurationError, SyncTaskQueue, TaskQueue, TaskStatus, Worker
from sitq_sqlite import SQLiteBackend

DEADLINE = 30.0


def within_deadline(scenario: Callable[[], None]) -> None:
    """Run `scenario` in a daemon thread; fail if it raises or has not returned by the deadline."""
    failures: list[BaseException] = []

    def run() -> None:
        try:
            scenario()
        except BaseException as exc:  # handed to the test's thread
            failures.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(DEADLINE)
    assert not thread.is_alive(), f"hung for {DEADLINE}s"
    if failures:
        raise failures[0]


def test_a_worker_in_another_loop_is_refused_at_once_and_the_sync_queue_closes(tmp_path: Path) -> None:
    def scenario() -> None:
        backend = SQLiteBackend(tmp_path / "tasks.db")
        queue = SyncTaskQueue(backend)
        task_id = queue.enqueue(add, 1, 2)
        refused: list[BaseException] = []

        def serve() -> None:
            try:
                asyncio.run(Worker(backend).run(burst=True))
            except ConfigurationError as exc:
                refused.append(exc)

        worker = threading.Thread(target=serve)
        worker.start()
        worker.join(DEADLINE)
        [error] = refused
        assert "open in another event loop (in thread 'sitq-sync')" in str(error)
        assert "give each event loop its own" in str(error)
        assert queue.get_status(task_id) is TaskStatus.PENDING
        queue.close()
        # With a backend object of its own (here: from the URL), the same worker runs the task.
        asyncio.run(Worker(f"sqlite:///{tmp_path / 'tasks.db'}").run(burst=True))
        with SyncTaskQueue(f"sqlite:///{tmp_path / 'tasks.db'}") as fresh:
            result = fresh.get_result(task_id, timeout=5)
        assert result is not None and result.value == 3

    within_deadline(scenario)


def test_a_queue_in_another_loop_is_refused_while_a_worker_holds_the_backend(tmp_path: Path) -> None:
    def scenario() -> None:
        backend = SQLiteBackend(tmp_path / "tasks.db")
        started, stop = threading.Event(), threading.Event()

        async def serve() -> None:
            async with Worker(backend, poll_interval=60):
                started.set()
                await asyncio.to_thread(stop.wait)

        worker = threading.Thread(target=asyncio.run, args=(serve(),))
        worker.start()
        try:
            assert started.wait(DEADLINE)
            with pytest.raises(ConfigurationError, match="open in another event loop"):
                SyncTaskQueue(backend).enqueue(add, 1, 2)
        finally:
            stop.set()
            worker.join(DEADLINE)

    within_deadline(scenario)


def test_a_backend_left_open_by_an_ended_loop_carries_on_in_the_next(tmp_path: Path) -> None:
    def scenario() -> None:
        queue = TaskQueue(SQLiteBackend(tmp_path / "tasks.db"))  # module-level, never closed

        async def enqueue_and_run() -> object:
            task_id = await queue.enqueue(add, 2, 2)
            async with Worker(queue):
                result = await queue.get_result(task_id, timeout=10)
            return None if result is None else result.value

        assert asyncio.run(enqueue_and_run()) == 4
        assert asyncio.run(enqueue_and_run()) == 4
        asyncio.run(queue.close())

    within_deadline(scenario)
