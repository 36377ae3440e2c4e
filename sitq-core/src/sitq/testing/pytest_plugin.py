"""pytest fixtures for testing an application's tasks.

sitq-core registers this module with pytest through its ``pytest11`` entry point, so the fixtures are there
in every test suite of an environment that has sitq-core installed, with nothing to import
(``-p no:sitq`` turns them off):

- ``sitq_url``: the URL of an empty store of the test's own, also set as ``$SITQ_URL`` during the test;
- ``sitq_queue``: a connected `TaskQueue` on that store;
- ``sitq_worker``: a `Worker` of that queue, not started; ``await sitq_worker.run(burst=True)`` runs what is
  due and returns;
- ``sitq_eager``: eager mode for every `TaskQueue` and `SyncTaskQueue` during the test, including those the
  application built before it: ``enqueue`` runs the task inline and returns once its result is stored.

``sitq_queue`` and ``sitq_worker`` are async fixtures, which need pytest-asyncio (``pip install
"sitq-core[testing]"``); the others work without it.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from sitq.backends import memory
from sitq.plugins import URL_VARIABLE
from sitq.queue import TaskQueue
from sitq.worker import Worker

STORES = ("memory", "sqlite")


def _async_fixture(function: Callable[..., Any]) -> Any:
    """pytest-asyncio's fixture, or without pytest-asyncio a fixture that says it is needed."""
    try:
        import pytest_asyncio
    except ImportError:
        message = (
            f"the fixture {function.__name__} is async and needs pytest-asyncio: "
            'pip install "sitq-core[testing]"'
        )

        @pytest.fixture(name=function.__name__)
        def missing() -> None:
            pytest.fail(message, pytrace=False)

        return missing
    return pytest_asyncio.fixture(function)


@pytest.fixture
def sitq_url(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The URL of an empty store for this test alone, also set as ``$SITQ_URL`` while the test runs, so
    that a `TaskQueue()` or `Worker()` built during the test without a URL uses it too.

    A named memory store by default; parametrize it indirectly for a SQLite file in the test's `tmp_path`
    (which needs sitq-sqlite): ``@pytest.mark.parametrize("sitq_url", ["memory", "sqlite"], indirect=True)``.
    """
    store = getattr(request, "param", "memory")
    if store == "memory":
        name = f"sitq-test-{uuid.uuid4().hex}"
        url = f"memory://{name}"
    elif store == "sqlite":
        url = f"sqlite:///{request.getfixturevalue('tmp_path') / 'sitq.db'}"
    else:
        raise pytest.UsageError(f"sitq_url is parametrized with one of {', '.join(STORES)}, not {store!r}")
    monkeypatch.setenv(URL_VARIABLE, url)
    yield url
    if store == "memory":
        # A named memory store lives as long as the process; this one is of no use after its test.
        memory._named_stores.pop(name, None)


@_async_fixture
async def sitq_queue(sitq_url: str) -> AsyncIterator[TaskQueue]:
    """A connected `TaskQueue` on the store of ``sitq_url``, closed after the test."""
    async with TaskQueue(sitq_url) as queue:
        yield queue


@_async_fixture
async def sitq_worker(sitq_queue: TaskQueue) -> AsyncIterator[Worker]:
    """A `Worker` of ``sitq_queue`` for the queue ``"default"``, not started.

    ``await sitq_worker.run(burst=True)`` runs every task that is due, and those they enqueue, then
    returns; ``async with sitq_worker:`` runs it in the background instead. Stopped after the test.
    """
    worker = Worker(sitq_queue, poll_interval=0.1)
    yield worker
    await worker.stop()


@pytest.fixture
def sitq_eager(sitq_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Eager mode for the test: every `TaskQueue` and `SyncTaskQueue` runs each task inline when it is
    enqueued, retries included, and stores its result, as a worker would, before ``enqueue`` returns.

    It reaches queues built before the test (an application's module-level queue) and after it, except
    those built with ``eager=False``. A queue built during the test without a URL uses ``sitq_url``'s store.
    """
    monkeypatch.setattr(TaskQueue, "eager", True)
