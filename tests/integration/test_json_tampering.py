"""A JSON queue whose rows someone rewrote: a stored call naming a function that the worker does not know
as a task fails that task with `SerializationError`, runs nothing, imports nothing, and the worker goes
on. Real SQLite files, rewritten with a plain `sqlite3` connection as an attacker with write access would."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import pytest
from sample_tasks import multiply
from tampering import name_in_call
from user_modules import UserModules

import sitq
from sitq import SQLiteBackend, TaskQueue, TaskStatus, Worker

UNREGISTERED = "def run(command):\n    raise AssertionError(command)\n"

REGISTERED = """
    import os


    def double(x):
        return 2 * x


    def triple(x):
        return 3 * x
"""


@pytest.mark.parametrize("target", ["os:system", "{unregistered}:run", "{registered}:os.system"])
async def test_a_row_naming_an_unknown_function_fails_and_the_worker_goes_on(
    tmp_path: Path, user_modules: UserModules, monkeypatch: pytest.MonkeyPatch, target: str
) -> None:
    calls: list[str] = []

    @functools.wraps(os.system)  # named as the real one, so the allow-list judges it as it would that
    def system(command: str) -> int:
        calls.append(command)
        return 0

    monkeypatch.setattr(os, "system", system)
    unregistered = user_modules.write("unregistered", UNREGISTERED)
    registered = user_modules.load("registered", REGISTERED)
    sitq.register_tasks(registered)
    function = target.format(unregistered=unregistered, registered=registered.__name__)
    path = tmp_path / "tasks.db"
    async with TaskQueue(SQLiteBackend(path), "json") as queue:
        tampered = await queue.enqueue(multiply, 2, 3)
        after = await queue.enqueue(multiply, 3, 4)
        name_in_call(path, tampered, function, "touch owned")
        await Worker(queue).run(burst=True)
        failed, succeeded = await queue.get_result(tampered), await queue.get_result(after)
    assert calls == []
    assert not user_modules.imported(unregistered)
    assert failed is not None and failed.status == TaskStatus.FAILED
    assert failed.error is not None and failed.error.startswith(
        f"SerializationError: the payload names the function '{function}', which this process does not "
        "know as a task: it was neither imported nor called. To allow it, decorate it with @sitq.task"
    )
    assert succeeded is not None and succeeded.status == TaskStatus.SUCCESS and succeeded.value == 12


async def test_a_child_process_knows_what_its_worker_knows_and_nothing_more(
    tmp_path: Path, user_modules: UserModules
) -> None:
    """In process mode the child decodes the call: it knows the worker's registered modules and the
    functions the worker encoded, and imports nothing else."""
    unregistered = user_modules.write("unregistered", UNREGISTERED)
    registered = user_modules.load("registered", REGISTERED)
    sitq.register_tasks(registered)
    path = tmp_path / "tasks.db"
    async with TaskQueue(SQLiteBackend(path), "json") as queue:
        encoded = await queue.enqueue(multiply, 2, 3)
        of_a_module = await queue.enqueue(multiply, 0, 0)
        unknown = await queue.enqueue(multiply, 0, 0)
        name_in_call(path, of_a_module, f"{registered.__name__}:triple", 5)
        name_in_call(path, unknown, f"{unregistered}:run", "touch owned")
        await Worker(queue, processes=1).run(burst=True)
        results = [await queue.get_result(task_id) for task_id in (encoded, of_a_module, unknown)]
    assert [result.value for result in results if result is not None] == [6, 15, None]
    failed = results[2]
    assert failed is not None and failed.error is not None
    assert failed.error.startswith(f"SerializationError: the payload names the function '{unregistered}:run'")
    assert not user_modules.imported(unregistered)
