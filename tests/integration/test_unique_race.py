"""The race of issue 13: two processes enqueueing the same 1,000 unique keys at once end with exactly
1,000 tasks, one per key, and both are told the same id for each key; nobody sees an integrity error.

Real processes on a shared store (SQLite file, PostgreSQL schema): each racer is `unique_racer`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sitq import TaskQueue, TaskStatus

KEYS = 1000
TESTS = Path(__file__).resolve().parent.parent


def race(url: str) -> list[dict[str, str]]:
    """Start two racers on `url`, let them go at once, and return what each was told."""
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
    }
    racers = [
        subprocess.Popen(
            [sys.executable, "-m", "integration.unique_racer", url, str(KEYS), str(seed)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environment,
        )
        for seed in (1, 2)
    ]
    try:
        for racer in racers:
            assert racer.stdout is not None and racer.stdout.readline().strip() == "ready", racer.stderr
        for racer in racers:
            assert racer.stdin is not None
            racer.stdin.write("go\n")
            racer.stdin.flush()
        told = []
        for racer in racers:
            out, err = racer.communicate(timeout=120)
            assert racer.returncode == 0, err
            told.append(json.loads(out))
        return told
    finally:
        for racer in racers:
            if racer.poll() is None:
                racer.kill()
                racer.wait()


async def check(url: str) -> None:
    first, second = race(url)
    assert first == second, "both racers must be told the same id for every key"
    assert len(first) == KEYS and len(set(first.values())) == KEYS
    async with TaskQueue(url) as queue:
        assert await queue.stats() == {"default": {TaskStatus.PENDING: KEYS}}
        stored = await queue.list_tasks(limit=KEYS + 1)
    assert {info.unique_key: info.id for info in stored} == first


async def test_two_processes_racing_on_sqlite_store_one_task_per_key(tmp_path: Path) -> None:
    await check(f"sqlite:///{tmp_path / 'race.db'}")


async def test_two_processes_racing_on_postgres_store_one_task_per_key(postgres_url: str) -> None:
    await check(postgres_url)
