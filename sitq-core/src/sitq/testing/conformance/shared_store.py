"""`Capability.SHARED_STORE`: the store outlives a backend object and is shared by every object, and every
process, that opens its URL. The reliability suite's worker processes rely on it."""

from __future__ import annotations

import asyncio
import os
import sys

from sitq.backend import Backend, Capability
from sitq.models import TaskStatus
from sitq.queue import TaskQueue
from sitq.testing.conformance.support import (
    LEASE,
    QUEUES,
    T0,
    ConformanceFixtures,
    new_task,
    outcome,
    requires,
)
from sitq.worker import Worker

ENQUEUE_ELSEWHERE = """
import asyncio, functools, importlib, sys
from sitq import TaskQueue

module, qualname, url = sys.argv[1:]
backend_class = functools.reduce(getattr, qualname.split("."), importlib.import_module(module))

async def main():
    async with TaskQueue(backend_class.from_url(url)) as queue:
        print(await queue.enqueue(pow, 2, 10))

asyncio.run(main())
"""
"""A producer process: it enqueues one task to the store of a URL and prints the task's id. It builds the
backend from its class rather than through the plugin registry, so a backend being written need not be
installed with its entry point for the suite to run."""


async def enqueue_in_another_process(backend_class: type[Backend], url: str) -> str:
    """Run `ENQUEUE_ELSEWHERE` in a new interpreter that imports what this one does; return the task id."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        ENQUEUE_ELSEWHERE,
        backend_class.__module__,
        backend_class.__qualname__,
        url,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(child.communicate(), timeout=60)
    assert child.returncode == 0, f"the producer process failed:\n{stderr.decode(errors='replace')}"
    return stdout.decode().strip()


class SharedStoreConformance(ConformanceFixtures):
    """Needs the `backend_url` fixture: the URL of the store the `backend` fixture opens."""

    @requires(Capability.SHARED_STORE)
    async def test_a_second_backend_from_the_same_url_shares_the_store(
        self, store: Backend, backend_url: str
    ) -> None:
        first, second = new_task(), new_task()
        await store.enqueue([first])
        other = type(store).from_url(backend_url)
        await other.connect()
        try:
            seen = await other.get(first.id)
            assert seen is not None and seen.status is TaskStatus.PENDING
            await other.enqueue([second])
            [claimed] = await other.claim(worker_id="w2", now=T0, lease=LEASE, limit=1, queues=QUEUES)
            assert claimed.id == first.id
            await other.complete([outcome(first.id, "w2", result=b"done elsewhere")])
        finally:
            await other.close()
        done, also_stored = await store.get(first.id), await store.get(second.id)
        assert done is not None and (done.status, done.result) == (TaskStatus.SUCCESS, b"done elsewhere")
        assert also_stored is not None and also_stored.status is TaskStatus.PENDING

    @requires(Capability.SHARED_STORE)
    async def test_a_task_enqueued_by_another_process_is_seen_and_run(
        self, backend: Backend, backend_url: str
    ) -> None:
        async with TaskQueue(backend) as queue:
            task_id = await enqueue_in_another_process(type(backend), backend_url)
            assert await queue.get_status(task_id) == TaskStatus.PENDING
            async with Worker(queue):
                result = await queue.get_result(task_id, timeout=20)
        assert result is not None and result.value == 1024

    @requires(Capability.SHARED_STORE)
    async def test_closing_and_reopening_keeps_the_tasks(self, backend: Backend, backend_url: str) -> None:
        done, waiting = new_task(), new_task()
        await backend.connect()
        await backend.enqueue([done, waiting])
        await backend.claim_task(done.id, worker_id="w1", now=T0, lease=LEASE)
        await backend.complete([outcome(done.id, "w1", result=b"kept")])
        before = [await backend.get(task.id) for task in (done, waiting)]
        await backend.close()
        for reopened in (backend, type(backend).from_url(backend_url)):
            await reopened.connect()
            try:
                assert [await reopened.get(task.id) for task in (done, waiting)] == before
            finally:
                await reopened.close()
