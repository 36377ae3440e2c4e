"""A concurrency limit holds across worker processes: four workers, each with room for four tasks, never
run more than two tasks of a key at once, as the execution ledger (outside sitq) shows."""

from __future__ import annotations

from reliability.harness import BackendUnderTest, Fleet, Ledger, settle
from reliability.tasks import work

from sitq import Task, TaskQueue, TaskStatus


def most_at_once(ledger: Ledger, prefix: str) -> int:
    """The most executions of keys starting with `prefix` under way at once. Lines are appended in the
    order they happened (single O_APPEND writes), so counting along the file is counting along time; a
    task's end line comes before its worker reports it, so this never overstates what the store held."""
    running = peak = 0
    for line in ledger.path.read_text().splitlines():
        event, key, *_ = line.split()
        if key.startswith(prefix):
            running += 1 if event == "start" else -1
            peak = max(peak, running)
    return peak


async def test_a_limit_of_two_is_never_exceeded_by_four_worker_processes(
    backend: BackendUnderTest, fleet: Fleet, ledger: Ledger, queue: TaskQueue
) -> None:
    limited = [
        Task(work, args=[str(ledger), f"limited-{n}", 0.05], concurrency_key="tenant", concurrency_limit=2)
        for n in range(40)
    ]
    free = [Task(work, args=[str(ledger), f"free-{n}", 0.05]) for n in range(16)]
    await queue.enqueue_many([*limited, *free])
    workers = [fleet.start_worker(concurrency=4, poll_interval=0.05) for _ in range(4)]
    tasks = await settle(queue, alive=workers)
    assert {info.status for info in tasks.values()} == {TaskStatus.SUCCESS}
    assert most_at_once(ledger, "limited-") == 2
    assert most_at_once(ledger, "free-") > 2  # the workers had room: the limit, not they, held back
