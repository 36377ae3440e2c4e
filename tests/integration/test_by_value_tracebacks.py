"""A task defined in a script travels by value, and its traceback still names the script's file and line.

cloudpickle 3.1.3 and later write `<dynamic-code>` as the file of every by-value function; sitq's
serializers keep the real one, so the traceback a user reads points at their source. What by-value
functions rely on (globals, closures, nested functions, lambdas, classes) still travels with them.
"""

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from sitq import Result, TaskQueue, Worker

SCRIPT = """\
import sys

from sitq import SyncTaskQueue


def check_stock(item):
    shelf = {"paint": 0}
    return (lambda count: 1 // count)(shelf[item])  # the line that raises


TAX = 0.5


class Order:
    def __init__(self, price):
        self.price = price

    def total(self):
        return self.price * (1 + TAX)


def priced(discount):
    def apply(order):
        return order.total() - discount

    return apply


def restock(prices):
    return sorted(map(priced(1), map(Order, prices)), key=lambda total: -total)


with SyncTaskQueue(sys.argv[1], serializer=sys.argv[2]) as queue:
    print(queue.enqueue(check_stock, "paint"))
    print(queue.enqueue(restock, [2, 4]))
"""
RAISING_LINE = 8


async def run_tasks(url: str, task_ids: list[str]) -> list[Result | None]:
    """Run what the script enqueued in this process, a worker that never imported the script."""
    async with TaskQueue(url) as queue:
        await Worker(queue).run(burst=True)
        return [await queue.get_result(task_id, timeout=10) for task_id in task_ids]


@pytest.mark.parametrize("serializer", ["cloudpickle", "dill"])
def test_a_script_task_traceback_names_the_script_and_line(tmp_path: Path, serializer: str) -> None:
    script = tmp_path / "inventory.py"
    script.write_text(SCRIPT)
    url = f"sqlite:///{tmp_path / 'tasks.db'}"
    enqueued = subprocess.run(
        [sys.executable, str(script), url, serializer],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    failed, succeeded = asyncio.run(run_tasks(url, enqueued.stdout.split()))

    assert failed is not None and failed.status == "failed", failed
    assert failed.error == "ZeroDivisionError: integer division or modulo by zero"
    assert failed.traceback is not None
    for function in ("check_stock", "<lambda>"):
        assert f'File "{script}", line {RAISING_LINE}, in {function}' in failed.traceback
    assert "return (lambda count: 1 // count)(shelf[item])  # the line that raises" in failed.traceback
    assert succeeded is not None and succeeded.status == "success", succeeded
    assert succeeded.value == [5.0, 2.0]
