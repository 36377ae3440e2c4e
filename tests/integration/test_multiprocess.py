"""Many processes on one SQLite file: two producers and two workers, 2,000 tasks, each run exactly once."""

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

from sitq import TaskQueue

TESTS = Path(__file__).parent.parent
TASKS = 2000
PRODUCERS = 2

WORKER = """
import asyncio, sys
from sitq import Worker
asyncio.run(Worker(sys.argv[1], max_concurrency=16).run())
"""

PRODUCER = """
import asyncio, sys
from sample_tasks import record_run
from sitq import TaskQueue

async def main(url, name, count, log):
    async with TaskQueue(url) as queue:
        for start in range(0, count, 50):
            ids = await asyncio.gather(
                *(queue.enqueue(record_run, f"{name}-{i}", log) for i in range(start, min(start + 50, count)))
            )
            print("\\n".join(ids), flush=True)

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]))
"""


def spawn(program: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(TESTS)}
    return subprocess.Popen(
        [sys.executable, "-c", program, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def test_two_producers_and_two_workers_run_every_task_exactly_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    log = tmp_path / "runs.log"
    workers = [spawn(WORKER, url) for _ in range(2)]
    producers = [spawn(PRODUCER, url, f"p{n}", str(TASKS // PRODUCERS), str(log)) for n in range(PRODUCERS)]
    task_ids: list[str] = []
    for producer in producers:
        out, err = producer.communicate(timeout=120)
        assert producer.returncode == 0, err
        assert err == ""
        task_ids += out.split()
    assert len(set(task_ids)) == TASKS

    async with TaskQueue(url) as queue:
        results = [await queue.get_result(task_id, timeout=120) for task_id in task_ids]
    for worker in workers:
        worker.send_signal(signal.SIGTERM)
    for worker in workers:
        _, err = worker.communicate(timeout=30)
        assert worker.returncode == 0, err
        assert "Traceback" not in err and "locked" not in err, err

    assert all(result is not None and result.status == "success" for result in results)
    runs = Counter(log.read_text().split())
    assert len(runs) == TASKS
    assert set(runs.values()) == {1}
