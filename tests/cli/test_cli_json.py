"""`sitq worker MODULE` with the json serializer: the module's own functions are its tasks; a stored call
naming anything else fails without being imported or called, in the worker and in its child processes."""

from __future__ import annotations

import pytest
from sitq_command import Sitq
from tampering import name_in_call
from user_modules import UserModules

from sitq import SQLiteBackend, SyncTaskQueue


@pytest.mark.parametrize("processes", [(), ("--processes", "1")], ids=["in the worker", "in a child"])
def test_sitq_worker_runs_its_modules_functions_and_refuses_the_rest(
    sitq: Sitq, user_modules: UserModules, processes: tuple[str, ...]
) -> None:
    jobs = user_modules.load("jobs", "import os\n\n\ndef double(x):\n    return 2 * x\n")
    other = user_modules.write("other", "def run(command):\n    raise AssertionError(command)\n")
    path = sitq.cwd / "tasks.db"
    with SyncTaskQueue(SQLiteBackend(path), "json") as queue:
        good, borrowed, unknown = (queue.enqueue(jobs.double, 21) for _ in range(3))
    name_in_call(path, borrowed, f"{jobs.__name__}:os.system", "touch owned")
    name_in_call(path, unknown, f"{other}:run", "touch owned")

    sitq.ok("worker", jobs.__name__, "--burst", *processes)

    assert sitq.json("show", good)["result"] == 42
    for task_id, function in ((borrowed, f"{jobs.__name__}:os.system"), (unknown, f"{other}:run")):
        shown = sitq.json("show", task_id)
        assert shown["status"] == "failed"
        assert shown["error"].startswith(f"SerializationError: the payload names the function '{function}'")
    assert not (sitq.cwd / "owned").exists()
    assert not user_modules.imported(other)
